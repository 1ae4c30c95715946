"""Pretraining.

Generated from chapters/06_pretraining.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "learning_rate_schedule",
    "make_optimizer",
    "TrainState",
    "split_model",
    "merge_model",
    "video_batch",
    "frame_metrics",
    "pretraining_loss",
    "make_train_step",
    "make_eval_step",
    "initialize_distributed",
    "replicate",
    "local_batch_size",
    "HostShard",
    "compiled_memory",
    "step_memory",
    "Checkpointer",
    "MetricsLog",
    "plot_metrics",
    "make_sources",
    "held_out_batches",
    "evaluate_model",
    "evaluate_batches",
    "fit",
    "train",
    "restore_model",
    "load_trained",
    "read_config",
    "config_from_dict",
    "RESUMABLE_FIELDS",
    "COMPUTE_DTYPES",
    "check_count",
    "check_config",
    "config_differences",
    "move_run_aside",
    "prepare_run_folder",
    "time_train_step",
    "steps_for_budget",
    "last_step",
    "budget_steps",
    "predict_frames",
    "write_report",
    "WEIGHTS_FORMAT",
    "TRAINED_DIR",
    "save_weights",
    "load_weights",
    "load_tutorial_model",
]


# chapters/06_pretraining.py, cell 5
import dataclasses
import json
import math
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx, struct

from moog_lib import configs, data, datasets, decoder
from moog_lib.model import MooG


def learning_rate_schedule(train: configs.TrainConfig) -> optax.Schedule:
    """Linear warm-up from 0 to the peak, then cosine decay to `final_learning_rate`."""
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=train.peak_learning_rate, warmup_steps=train.warmup_steps,
        decay_steps=max(train.steps, train.warmup_steps + 1), end_value=train.final_learning_rate)


def make_optimizer(train: configs.TrainConfig) -> optax.GradientTransformation:
    """Clip the global norm, then Adam with Nesterov momentum (paper) or AdamW (release)."""
    schedule = learning_rate_schedule(train)
    if train.optimizer == "adam_nesterov":
        step = optax.adam(schedule, b1=train.b1, b2=train.b2, nesterov=True)
    elif train.optimizer == "adamw":
        step = optax.adamw(schedule, b1=train.b1, b2=train.b2, weight_decay=train.weight_decay)
    else:
        raise ValueError(f"unknown optimizer {train.optimizer!r}; expected 'adam_nesterov' "
                         "(the paper's) or 'adamw' (the release's)")
    return optax.chain(optax.clip_by_global_norm(train.grad_clip_norm), step)


# chapters/06_pretraining.py, cell 8
@struct.dataclass
class TrainState:
    """Everything that changes during training, as one pytree: jit it, shard it, save it."""

    step: jax.Array
    params: nnx.State
    opt_state: optax.OptState


def split_model(model: nnx.Module, tx: optax.GradientTransformation):
    """Split an NNX model once: (graphdef, rest, TrainState). `rest` holds non-parameters."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return graphdef, rest, TrainState(jnp.zeros((), jnp.int32), params, tx.init(params))


def merge_model(graphdef, rest, state: TrainState) -> nnx.Module:
    """The NNX model at `state`, e.g. for inspection or figures."""
    return nnx.merge(graphdef, state.params, rest)


# chapters/06_pretraining.py, cell 10
def video_batch(batch: dict) -> jnp.ndarray:
    """The clips of a batch as float32 [B, T, H, W, 3] in [0, 1] (uint8 is divided by 255)."""
    video = batch["video"]
    if jnp.issubdtype(video.dtype, jnp.integer):
        return video.astype(jnp.float32) / 255.0
    return video.astype(jnp.float32)


def frame_metrics(out: dict, frames: jnp.ndarray) -> dict:
    """PSNR of the predictions and of copying the previous frame, on frames 1 … T−1.

    Both are measured at the same sampled pixels: the target of frame t against
    the prediction for t, and against frame t−1 rolled and subsampled with
    frame t's offsets. Frame 0 is left out (there is nothing to copy, and the
    model predicts it from noise).
    """
    subsample = frames.shape[2] // out["target"].shape[2]
    previous = decoder.subsample_frames(frames[:, :-1], out["offsets"][:, 1:], subsample)
    target = out["target"][:, 1:]
    return {
        "psnr": decoder.reconstruction_psnr(out["prediction"][:, 1:], target),
        "copy_psnr": decoder.reconstruction_psnr(previous, target),
    }


def pretraining_loss(model, batch: dict, key: jax.Array, *, training: bool = True):
    """Next-frame prediction: MooG's L2 loss at S = 8 (training) or S = 4 (evaluation)."""
    frames = video_batch(batch)
    out = model(frames, key=key, training=training)
    return out["loss"], dict(loss=out["loss"], **frame_metrics(out, frames))


# chapters/06_pretraining.py, cell 11
def make_train_step(graphdef, rest, tx: optax.GradientTransformation, loss_fn=pretraining_loss):
    """A jitted `step(state, batch, key) -> (state, metrics)`.

    The model is split once (`split_model`); the step is a pure function of
    arrays, so `jax.jit` compiles it once and shards it by its inputs: a
    replicated state and a batch split over the "data" axis make it data-parallel.
    `loss_fn(model, batch, key) -> (loss, metrics)`.
    """

    def step(state: TrainState, batch: dict, key: jax.Array):
        def objective(params):
            return loss_fn(nnx.merge(graphdef, params, rest), batch, key)

        (_, metrics), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(metrics, grad_norm=optax.global_norm(grads))
        return TrainState(state.step + 1, params, opt_state), metrics

    return jax.jit(step, donate_argnums=0)


def make_eval_step(graphdef, rest, loss_fn=pretraining_loss):
    """A jitted `evaluate(params, batch, key) -> metrics` at evaluation settings (S = 4)."""

    def evaluate(params, batch, key):
        return loss_fn(nnx.merge(graphdef, params, rest), batch, key, training=False)[1]

    return jax.jit(evaluate)


# chapters/06_pretraining.py, cell 15
def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
    """Join a multi-host run (a TPU pod, or several CPU processes) before anything else uses JAX.

    On Cloud TPU pods every argument is detected automatically; elsewhere pass
    them (or set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID).
    On CPU the processes exchange data through gloo collectives.
    """
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # ignored on TPU
    jax.distributed.initialize(coordinator_address, num_processes, process_id)


def replicate(tree, mesh: jax.sharding.Mesh):
    """Place every array of `tree` on every device of `mesh` (parameters, optimiser state)."""
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    return jax.tree.map(lambda x: jax.device_put(x, replicated), tree)


def local_batch_size(global_batch_size: int, mesh: jax.sharding.Mesh) -> int:
    """This host's share of the global batch; it must split evenly over every device."""
    devices = mesh.devices.size
    if global_batch_size % devices:
        raise ValueError(f"batch_size {global_batch_size} must be divisible by the {devices} "
                         f"devices of the mesh; use a multiple of {devices}")
    return global_batch_size // jax.process_count()


class HostShard(data.ClipSource):
    """Every `jax.process_count()`-th clip of `source`, starting at this host's index."""

    def __init__(self, source, index: int | None = None, count: int | None = None):
        self.source = source
        self.index = jax.process_index() if index is None else index
        self.count = jax.process_count() if count is None else count

    def __len__(self):
        return len(range(self.index, len(self.source), self.count))

    def __getitem__(self, i):
        return self.source[self.index + i * self.count]


# chapters/06_pretraining.py, cell 18
def compiled_memory(compiled) -> dict:
    """GiB of a compiled step's arguments, outputs and temporaries (XLA's
    `memory_analysis()`), and "peak": their sum, donated buffers counted once."""
    analysis = compiled.memory_analysis()
    if analysis is None:
        raise ValueError(f"the {jax.default_backend()} backend gives no memory analysis")
    sizes = {name: getattr(analysis, f"{name}_size_in_bytes") / 2**30
             for name in ("argument", "output", "temp", "alias")}
    sizes["peak"] = sizes["argument"] + sizes["output"] + sizes["temp"] - sizes["alias"]
    return sizes


def step_memory(config: configs.Config) -> dict:
    """`compiled_memory` of the train step `fit` runs for `config` (its batch, clip length
    and resolution), compiled for the default device and not run."""
    d = config.data
    tx = make_optimizer(config.train)
    graphdef, rest, state = split_model(MooG(config.model, rngs=nnx.Rngs(0)), tx)
    video = jax.ShapeDtypeStruct((d.batch_size, d.num_frames, d.resolution, d.resolution, 3),
                                 jnp.float32)
    step = make_train_step(graphdef, rest, tx)
    return compiled_memory(step.lower(state, {"video": video}, jax.random.key(0)).compile())


# chapters/06_pretraining.py, cell 22
def _flat(tree) -> dict:
    """{"path": array} for any pytree: a checkpoint layout that does not depend on node types."""
    return {jax.tree_util.keystr(path): leaf for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


class Checkpointer:
    """Atomic, rotating checkpoints of a `TrainState` plus JSON metadata, with orbax.

    Orbax writes each step into a temporary folder and renames it only when every
    file is complete, so a run killed mid-save leaves the previous checkpoints
    intact. `restore` walks back from the newest step and skips (with a warning)
    any it cannot read.
    """

    def __init__(self, directory, keep: int = 3):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                               enable_async_checkpointing=False)
        self.manager = ocp.CheckpointManager(self.directory, options=options)
        self.unreadable: dict[int, str] = {}  # step: why `restore` could not read it

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def save(self, state: TrainState, metadata: dict) -> None:
        step = int(state.step)
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(_flat(state)), metadata=ocp.args.JsonSave(metadata)),
            force=True)
        self.manager.wait_until_finished()

    def restore(self, like: TrainState):
        """(state, metadata) of the newest readable step, shaped and sharded like `like`; or
        None, with the reason each step could not be read in `self.unreadable`."""
        treedef = jax.tree_util.tree_structure(like)
        abstract = {key: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
                    for key, x in _flat(like).items()}
        self.unreadable = {}
        for step in reversed(self.steps()):
            try:
                restored = self.manager.restore(step, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), metadata=ocp.args.JsonRestore()))
                arrays = [restored["state"][key] for key in abstract]
            except Exception as err:  # a corrupt or partial step: use the one before
                self.unreadable[step] = f"{type(err).__name__}: {' '.join(str(err).split())[:200]}"
                continue
            for bad, reason in self.unreadable.items():  # say which newer steps were skipped
                warnings.warn(f"checkpoint step {bad} in {self.directory} cannot be read "
                              f"({reason}); using step {step}", stacklevel=2)
            return jax.tree_util.tree_unflatten(treedef, arrays), restored["metadata"]
        return None

    def close(self):
        self.manager.close()


# chapters/06_pretraining.py, cell 26
class MetricsLog:
    """Append-only JSON lines, one record per log or evaluation: `{"step", "split", ...}`."""

    def __init__(self, path):
        self.path = Path(path)

    def write(self, step: int, split: str, metrics: dict) -> dict:
        record = {"step": int(step), "split": split, "time": time.time()}
        record.update({k: float(v) for k, v in metrics.items()})
        if jax.process_index() == 0:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")
        return record

    def read(self, split: str | None = None) -> list[dict]:
        if not self.path.exists():
            return []
        records = [json.loads(line) for line in self.path.read_text().splitlines() if line]
        return [r for r in records if split is None or r["split"] == split]


_NOT_PLOTTED = {"step", "split", "time", "loss", "grad_norm", "learning_rate",
                "frames_per_second", "data_wait_share", "copy_psnr"}


def plot_metrics(log: MetricsLog, path=None):
    """Loss and metric curves, train and every held-out split.

    The metric panel shows PSNR with the copy-the-last-frame baseline for
    pretraining, or a readout's first metric (e.g. AbsRel) otherwise.
    """
    import matplotlib.pyplot as plt

    records = log.read()
    splits = list(dict.fromkeys(r["split"] for r in records))
    metric = "psnr" if any("psnr" in r for r in records) else next(
        (k for r in records for k in r if k not in _NOT_PLOTTED), None)
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 3.8))
    for split in splits:
        rows = log.read(split)
        steps, style = [r["step"] for r in rows], "-" if split == "train" else "o-"
        ax_loss.plot(steps, [r["loss"] for r in rows], style, label=split)
        if metric is not None:
            ax_metric.plot(steps, [r.get(metric, float("nan")) for r in rows], style,
                           label=f"model, {split}")
        if metric == "psnr":
            ax_metric.plot(steps, [r["copy_psnr"] for r in rows], style, alpha=0.5,
                           label=f"copy last frame, {split}")
    ax_loss.set(xlabel="step", ylabel="loss", yscale="log", title="loss")
    ax_metric.set(xlabel="step", ylabel=metric or "", title=metric or "")
    if metric == "psnr":
        ax_metric.set(ylabel="PSNR (dB), frames 1…T−1", title="next-frame PSNR")
    for ax in (ax_loss, ax_metric):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


# chapters/06_pretraining.py, cell 28
def make_sources(config: configs.Config, *, progress: bool = True):
    """(train, held-out) clip sources for `config.data`.

    With `data_dir` set, the rendered dataset is built there first if it is not
    yet (resumable, both cores) and read back through tfds/array_record;
    otherwise clips are rendered on the fly. The held-out source is the test
    split, whose textures never appear in training.
    """
    d = config.data
    if d.source != "synthetic":
        raise ValueError(f"make_sources builds the rendered data; for source {d.source!r} pass "
                         "train_source/eval_source made with datasets.make_source to train()")
    splits = (("train", d.num_clips), ("test", d.eval_clips))
    common = dict(resolution=d.resolution, num_frames=d.clip_frames, seed=config.train.seed)
    if not d.data_dir:
        return tuple(datasets.SyntheticSource(d.scene_preset, split, num, **common)
                     for split, num in splits)
    for split, num in splits:
        datasets.build_dataset(d.scene_preset, split, num, d.resolution, d.data_dir,
                           d.clip_frames, seed=config.train.seed, progress=progress)
    return tuple(datasets.load_dataset(d.scene_preset, split, num, d.resolution, d.data_dir,
                                   d.clip_frames, seed=config.train.seed) for split, num in splits)


def held_out_batches(source, config: configs.Config, *, keys: tuple[str, ...] = ("video",),
                     num_frames: int | None = None, mesh=None) -> list[dict]:
    """Every full batch of this host's share of `source`, in order and without
    augmentation, as `num_frames`-frame windows (default: the training length)
    from frame 0, sharded over `mesh`."""
    d = config.data
    mesh = data.data_parallel_mesh() if mesh is None else mesh
    batch_size = local_batch_size(d.batch_size, mesh)
    pipeline = data.make_pipeline(HostShard(source), batch_size=batch_size, seed=config.train.seed,
                                  num_frames=num_frames or d.num_frames,
                                  resolution=d.resolution, augment=False, shuffle=False,
                                  num_epochs=1)
    batches = [data.shard_clip_batch({k: b[k] for k in keys}, mesh) for b in pipeline]
    if not batches:
        raise ValueError(f"{len(source)} held-out clips give no full batch of {batch_size}; "
                         "raise data.eval_clips")
    return batches


def evaluate_model(model: nnx.Module, batches: list[dict], loss_fn=pretraining_loss,
                   seed: int = 1) -> dict:
    """Held-out metrics of `model` (evaluation settings, e.g. S = 4) over `batches`."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return evaluate_batches(make_eval_step(graphdef, rest, loss_fn), params, batches,
                            jax.random.key(seed))


def evaluate_batches(evaluate, params, batches, key) -> dict:
    """Metrics of `evaluate(params, batch, key)` averaged over equal-sized batches
    (NaN-aware: a batch where a metric is undefined, e.g. no visible point, is skipped)."""
    results = [jax.device_get(evaluate(params, batch, key)) for batch in batches]
    return {k: float(np.nanmean([r[k] for r in results])) for k in results[0]}


def fit(config: configs.Config, workdir, model: nnx.Module, tx: optax.GradientTransformation,
        loss_fn, *, keys: tuple[str, ...] = ("video",), steps: int | None = None,
        resume: bool = True, force_new_run: bool = False, train_source=None, eval_source=None,
        eval_sources=None, progress: bool = True, desc: str = "pretraining") -> dict:
    """Train `model` on `loss_fn` with `tx`; returns the last train and eval records.

    The loop behind `train` (pretraining) and the readouts of chapters 07–09:
    `loss_fn(model, batch, key, training=...) -> (loss, metrics)` reads the
    batch entries `keys`; `config.train` sets the schedule and cadence and
    `config.data` the clips. Writes `config.json`, `metrics.jsonl`,
    `checkpoints/` (every `checkpoint_every` steps and at the end, the last
    `keep_checkpoints` kept) and `curves.png` to `workdir`. With `resume`,
    continues from the newest readable checkpoint: parameters, optimiser state,
    step and data position, so the run goes on exactly as if it had never
    stopped. A folder holds one run: `prepare_run_folder` refuses, before anything
    is written, to resume a run of another config or to start a fresh run over
    one; `force_new_run` moves the old run aside instead. `steps` overrides the
    config's total (the schedule follows `config.train.steps`). `eval_sources`
    maps a split name to (source, num_frames) for extra held-out evaluations
    (default: "eval" on `eval_source` with the training window length).
    """
    from tqdm.auto import tqdm

    if steps is not None:
        check_count("steps", steps, "training steps; None for config.train.steps")
    check_config(config)
    workdir = prepare_run_folder(config, workdir, resume=resume, force_new_run=force_new_run)
    workdir.mkdir(parents=True, exist_ok=True)
    total_steps = config.train.steps if steps is None else steps
    t, d = config.train, config.data
    mesh = data.data_parallel_mesh()
    if train_source is None or eval_source is None:
        default_train, default_eval = make_sources(config, progress=progress)
        train_source = default_train if train_source is None else train_source
        eval_source = default_eval if eval_source is None else eval_source
    if eval_sources is None:
        eval_sources = {"eval": (eval_source, d.num_frames)}

    graphdef, rest, state = split_model(model, tx)
    state = replicate(state, mesh)
    train_step = make_train_step(graphdef, rest, tx, loss_fn)
    evaluate = make_eval_step(graphdef, rest, loss_fn)
    schedule = learning_rate_schedule(t)

    def select(batch):
        return data.shard_clip_batch({k: batch[k] for k in keys}, mesh)

    pipeline = data.make_pipeline(HostShard(train_source), batch_size=local_batch_size(
        d.batch_size, mesh), seed=t.seed, num_frames=d.num_frames, resolution=d.resolution)
    batches = iter(pipeline)
    held_out = {split: held_out_batches(source, config, keys=keys, num_frames=num_frames,
                                        mesh=mesh)
                for split, (source, num_frames) in eval_sources.items()}

    checkpoints = Checkpointer(workdir / "checkpoints", keep=t.keep_checkpoints)
    log = MetricsLog(workdir / "metrics.jsonl")
    base_key = jax.random.key(t.seed)
    if resume and (restored := checkpoints.restore(state)) is not None:
        state, metadata = restored
        batches.set_state(metadata["data_state"])
        print(f"resumed from step {int(state.step)} in {workdir}")
    elif resume and checkpoints.unreadable:  # starting over would rotate them away
        checkpoints.close()
        raise ValueError(f"none of the checkpoints in {checkpoints.directory} (steps "
                         f"{', '.join(map(str, sorted(checkpoints.unreadable)))}) can be read as "
                         f"this model ({next(iter(checkpoints.unreadable.values()))}); {_WAYS_OUT}")
    (workdir / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=1))

    def checkpoint():
        checkpoints.save(state, {"data_state": batches.get_state(), "seed": t.seed,
                                 "rng_key": np.asarray(jax.random.key_data(base_key)).tolist()})

    start = int(state.step)
    last = {"train": None, **{split: None for split in held_out}}
    pending, data_seconds, window_start = [], 0.0, time.perf_counter()
    bar = tqdm(total=total_steps, initial=start, disable=not progress, desc=desc)
    for step in range(start, total_steps):
        tic = time.perf_counter()
        batch = select(next(batches))
        data_seconds += time.perf_counter() - tic
        state, metrics = train_step(state, batch, jax.random.fold_in(base_key, step))
        pending.append(metrics)
        done = step + 1
        if done % t.log_every == 0 or done == total_steps:
            values = jax.device_get(pending)  # waits for the device to finish the window
            seconds = time.perf_counter() - window_start
            mean = {k: float(np.mean([v[k] for v in values])) for k in values[0]}
            mean.update(learning_rate=float(schedule(step)),
                        frames_per_second=len(values) * d.batch_size * d.num_frames / seconds,
                        data_wait_share=data_seconds / seconds)
            last["train"] = log.write(done, "train", mean)
            shown = {k: f"{mean[k]:.4g}" for k in ("loss", "psnr") if k in mean}  # the model's own
            bar.set_postfix(**shown, fps=f"{mean['frames_per_second']:.0f}")
        if done % t.eval_every == 0 or done == total_steps:
            for split, split_batches in held_out.items():
                last[split] = log.write(done, split, evaluate_batches(
                    evaluate, state.params, split_batches, jax.random.key(t.seed + 1)))
        if done % t.checkpoint_every == 0 or done == total_steps:
            checkpoint()
        if done % t.log_every == 0 or done == total_steps:  # evaluation and saving not timed
            pending, data_seconds, window_start = [], 0.0, time.perf_counter()
        bar.update(1)
    bar.close()
    checkpoints.close()
    if log.read():
        import matplotlib.pyplot as plt

        plt.close(plot_metrics(log, workdir / "curves.png"))
    return {"step": int(state.step), **last}


def train(config: configs.Config, workdir, *, steps: int | None = None,
          minutes: float | None = None, resume: bool = True, force_new_run: bool = False,
          train_source=None, eval_source=None, progress: bool = True) -> dict:
    """Pretrain MooG on next-frame prediction (see `fit`); returns the last records.
    `minutes`: train for that long instead of `config.train.steps` (`budget_steps`)."""
    model = MooG(check_config(config).model, rngs=nnx.Rngs(config.train.seed))
    if minutes is not None:
        if steps is not None:
            raise ValueError("give a number of steps or a budget in minutes, not both")
        if train_source is None or eval_source is None:
            train_source, eval_source = make_sources(config, progress=progress)
        total = budget_steps(config, model, make_optimizer(config.train), pretraining_loss,
                             minutes, train_source=train_source,
                             start=last_step(workdir) if resume else 0)
        config = configs.override(config, [f"train.steps={total}"])
    return fit(config, workdir, model, make_optimizer(config.train), pretraining_loss,
               steps=steps, resume=resume, force_new_run=force_new_run,
               train_source=train_source, eval_source=eval_source, progress=progress)


def restore_model(model: nnx.Module, tx: optax.GradientTransformation, directory,
                  keep: int = 3):
    """`model` with the parameters of the newest readable checkpoint in `directory`
    (None if there is none); `tx` must be the optimiser the run was trained with."""
    graphdef, rest, like = split_model(model, tx)
    checkpoints = Checkpointer(directory, keep=keep)
    restored = checkpoints.restore(replicate(like, data.data_parallel_mesh()))
    checkpoints.close()
    if restored is None and checkpoints.unreadable:
        raise ValueError(f"none of the checkpoints in {checkpoints.directory} (steps "
                         f"{', '.join(map(str, sorted(checkpoints.unreadable)))}) fits this model "
                         f"({next(iter(checkpoints.unreadable.values()))}): they are damaged, or "
                         "the config they are read with (a run's config.json) was edited")
    return None if restored is None else merge_model(graphdef, rest, restored[0])


def load_trained(workdir, config: configs.Config | None = None):
    """(model, config) of the newest readable checkpoint in `workdir` (None if there is none)."""
    workdir = Path(workdir)
    config = read_config(workdir) if config is None else config
    model = restore_model(MooG(config.model, rngs=nnx.Rngs(0)),
                          make_optimizer(config.train), workdir / "checkpoints",
                          config.train.keep_checkpoints)
    return None if model is None else (model, config)


def read_config(workdir) -> configs.Config:
    """The config a run in `workdir` was trained with (its config.json)."""
    config_path = Path(workdir) / "config.json"
    if Path(workdir).is_file():
        raise ValueError(f"{workdir} is a file, not a run folder; pass the folder a run was "
                         "trained in")
    if not config_path.exists():
        raise ValueError(f"{workdir} has no config.json; pass the config it was trained with")
    try:
        values = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_path} is not JSON ({err.msg}, line {err.lineno} column "
                         f"{err.colno}); restore the run's config (json.dumps of "
                         "dataclasses.asdict(config))") from None
    return config_from_dict(values, source=str(config_path))


def config_from_dict(values: dict, source: str = "config") -> configs.Config:
    """Rebuild a `configs.Config` from `dataclasses.asdict` output (e.g. a run's config.json).

    A missing field takes its default (a run written before the field existed); an
    unknown field or a value of another type is a ValueError naming `source` and the
    dotted field."""
    import typing

    def value_of(kind, value, name):
        if typing.get_origin(kind) is tuple and isinstance(value, list | tuple):
            item = typing.get_args(kind)[0]
            if all(type(v) is item for v in value):
                return tuple(value)
        elif kind is float and type(value) is int:
            return float(value)
        elif type(value) is kind:
            return value
        expected = "a list of numbers" if typing.get_origin(kind) is tuple else kind.__name__
        raise ValueError(f"{source}: {name} is {value!r}; expected {expected}")

    def build(cls, fields, prefix):
        section = prefix[:-1] or "the top level"
        if not isinstance(fields, dict):
            raise ValueError(f"{source}: {section} is {fields!r}; expected a section of "
                             f"{cls.__name__} fields")
        hints = typing.get_type_hints(cls)
        unknown = [prefix + name for name in fields if name not in hints]
        if unknown:
            raise ValueError(f"{source}: unknown field {', '.join(unknown)} (a typo, or a "
                             "newer version's); remove it or correct its name")
        kwargs = {name: build(hints[name], value, f"{prefix}{name}.")
                  if dataclasses.is_dataclass(hints[name])
                  else value_of(hints[name], value, prefix + name)
                  for name, value in fields.items()}
        try:
            return cls(**kwargs)
        except TypeError as err:  # a field without a default is missing
            raise ValueError(f"{source}: {section} lacks a field ({err})") from None

    return build(configs.Config, values, "")


# chapters/06_pretraining.py, cell 30
# What may change when a run is resumed, in `train` and in the readouts' `readout.train`.
RESUMABLE_FIELDS = tuple(f"{section}.{field}" for section in ("train", "readout.train")
                         for field in ("steps", "log_every", "eval_every", "checkpoint_every",
                                       "keep_checkpoints")) + ("data.data_dir",)
COMPUTE_DTYPES = ("float32", "bfloat16")
_WAYS_OUT = ("choose another workdir, or pass --force-new-run (force_new_run=True) to move "
             "the old run to <workdir>.old-<time> and start afresh")


def check_count(name: str, value, what: str) -> None:
    """A ValueError unless `value` is a positive whole number; `what` says what it counts."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}={value!r}: expected a positive whole number ({what})")


def check_config(config: configs.Config) -> configs.Config:
    """`config`, once its counts, cadences and dtype are checked; else a ValueError
    naming the dotted field and what it expects."""
    for section, t in (("train", config.train), ("readout.train", config.readout.train)):
        for field, what in (("steps", "training steps"), ("log_every", "steps per log record"),
                            ("eval_every", "steps between evaluations"),
                            ("checkpoint_every", "steps between checkpoints"),
                            ("keep_checkpoints", "checkpoints kept")):
            check_count(f"{section}.{field}", getattr(t, field), what)
        if not 0 <= t.warmup_steps or not 0 < t.peak_learning_rate < math.inf:
            raise ValueError(f"{section}: warmup_steps={t.warmup_steps}, peak_learning_rate="
                             f"{t.peak_learning_rate}; expected warmup >= 0 and a positive rate")
    for field in ("resolution", "num_frames", "batch_size", "clip_frames", "num_clips",
                  "eval_clips"):
        check_count(f"data.{field}", getattr(config.data, field), "a count of clips, frames "
                     "or pixels")
    for field in ("token_dim", "num_tokens"):
        check_count(f"model.{field}", getattr(config.model, field), "model size")
    if config.model.compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(f"model.compute_dtype={config.model.compute_dtype!r}: expected one of "
                         f"{', '.join(map(repr, COMPUTE_DTYPES))}")
    return config


def config_differences(old: configs.Config, new: configs.Config) -> dict:
    """{dotted field: (old value, new value)} for every field where `new` differs."""
    def flat(node, prefix=""):
        return {k: v for f in dataclasses.fields(node) for k, v in (
            flat(getattr(node, f.name), f"{prefix}{f.name}.").items()
            if dataclasses.is_dataclass(getattr(node, f.name))
            else [(prefix + f.name, getattr(node, f.name))])}

    a, b = flat(old), flat(new)
    return {k: (a[k], b[k]) for k in a if a[k] != b[k]}


def move_run_aside(workdir) -> Path:
    """Rename `workdir` to `<workdir>.old-<time>` (deleting nothing); returns the new name."""
    workdir = Path(workdir).absolute()
    if Path.cwd().resolve().is_relative_to(workdir.resolve()):
        raise ValueError(f"cannot move {workdir} aside while it holds the current directory; "
                         "run the command from elsewhere")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, n = workdir.with_name(f"{workdir.name}.old-{stamp}"), 1
    while target.exists():
        target, n = workdir.with_name(f"{workdir.name}.old-{stamp}-{n}"), n + 1
    if jax.process_index() == 0:
        workdir.rename(target)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("moog: old run moved aside")
    return target


def prepare_run_folder(config: configs.Config, workdir, *, resume: bool,
                       force_new_run: bool = False) -> Path:
    """`workdir` as a Path, once it may take this run; writes nothing except with
    `force_new_run`, which moves a run already there aside (`move_run_aside`).

    A folder holds a run when it has a config.json or checkpoints. Resuming needs
    its config to equal `config` except for `RESUMABLE_FIELDS`; a fresh run needs
    a folder without a run. Otherwise a one-line ValueError names the differing
    fields (old → new) and the ways out.
    """
    workdir = Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise ValueError(f"workdir {workdir} is a file; pass a folder (created if missing)")
    checkpoint_dir = workdir / "checkpoints"
    saved = sorted(p.name for p in checkpoint_dir.iterdir()) if checkpoint_dir.is_dir() else []
    if not saved and not (workdir / "config.json").exists():
        return workdir
    if force_new_run:
        print(f"moved the run in {workdir} to {move_run_aside(workdir)}; starting afresh")
        return workdir
    if not resume:
        raise ValueError(f"{workdir} already holds a run (checkpoints: {', '.join(saved) or 'none'}"
                         f"); pass --resume (resume=True) to continue it, or {_WAYS_OUT}")
    if not (workdir / "config.json").exists():
        raise ValueError(f"{workdir} holds checkpoints but no config.json to check them "
                         f"against; {_WAYS_OUT}")
    differences = {k: v for k, v in config_differences(read_config(workdir), config).items()
                   if k not in RESUMABLE_FIELDS}
    if differences:
        shown = [f"{k} {old!r} → {new!r}" for k, (old, new) in differences.items()]
        if len(shown) > 6:
            shown = shown[:6] + [f"and {len(shown) - 6} more"]
        raise ValueError(f"{workdir} holds a run of another config ({'; '.join(shown)}); to "
                         f"resume it pass the config it was trained with, or {_WAYS_OUT}")
    return workdir


# chapters/06_pretraining.py, cell 37
def time_train_step(model: nnx.Module, tx: optax.GradientTransformation, loss_fn, batch: dict,
                    *, repeats: int = 3) -> tuple[float, float]:
    """(seconds to compile, seconds per step) of `fit`'s train step on `batch` (sharded as
    `fit` shards it); `model` is left as it was."""
    graphdef, rest, state = split_model(model, tx)
    state = jax.tree.map(jnp.copy, replicate(state, data.data_parallel_mesh()))  # it is donated
    step = make_train_step(graphdef, rest, tx, loss_fn)
    key = jax.random.key(0)
    tic = time.perf_counter()
    state, metrics = step(state, batch, key)
    jax.block_until_ready(metrics)
    compile_seconds = time.perf_counter() - tic
    tic = time.perf_counter()
    for _ in range(repeats):
        state, metrics = step(state, batch, key)
    jax.block_until_ready(metrics)
    return compile_seconds, (time.perf_counter() - tic) / repeats


def steps_for_budget(minutes: float, compile_seconds: float, step_seconds: float) -> int:
    """How many steps of `step_seconds` fit in `minutes` after one compile."""
    if not 0 < minutes < math.inf:
        raise ValueError(f"a budget of {minutes} minutes: expected a positive number")
    steps = int((60 * minutes - compile_seconds) // step_seconds)
    if steps < 1:
        raise ValueError(f"a budget of {minutes:g} min fits no step: compiling takes "
                         f"{compile_seconds:.0f} s and a step {step_seconds:.2f} s")
    return steps


def last_step(workdir) -> int:
    """The newest checkpointed step in `workdir` (0 if none), read without writing."""
    directory = Path(workdir) / "checkpoints"
    return max((int(p.name) for p in directory.iterdir() if p.name.isdigit()), default=0) if (
        directory.is_dir()) else 0


def budget_steps(config: configs.Config, model: nnx.Module, tx: optax.GradientTransformation,
                 loss_fn, minutes: float, *, train_source, keys: tuple[str, ...] = ("video",),
                 start: int = 0) -> int:
    """The `train.steps` with which a run from step `start` trains for `minutes`:
    `fit`'s step is timed on one batch of `train_source`; the estimate is printed."""
    d = config.data
    mesh = data.data_parallel_mesh()
    pipeline = data.make_pipeline(HostShard(train_source), batch_size=local_batch_size(
        d.batch_size, mesh), seed=config.train.seed, num_frames=d.num_frames,
        resolution=d.resolution)
    batch = data.shard_clip_batch({k: v for k, v in next(iter(pipeline)).items() if k in keys},
                                  mesh)
    compile_seconds, step_seconds = time_train_step(model, tx, loss_fn, batch)
    steps = steps_for_budget(minutes, compile_seconds, step_seconds)
    print(f"≈ {steps:,} steps in {minutes:.3g} min at {step_seconds:.3g} s/step (compiling took "
          f"{compile_seconds:.0f} s){f', after step {start:,}' if start else ''}; evaluation "
          "and checkpoints come on top")
    if start + steps <= 2 * config.train.warmup_steps:
        warnings.warn(f"the budget ends at step {start + steps:,}, in or near the warm-up of "
                      f"{config.train.warmup_steps:,} steps: give more minutes or lower "
                      "train.warmup_steps", stacklevel=2)
    return start + steps


# chapters/06_pretraining.py, cell 41
def predict_frames(model, frames: jnp.ndarray, key: jax.Array) -> jnp.ndarray:
    """Dense next-frame predictions [B, T, H, W, 3]: every z_p decoded at every pixel.

    Frame t is predicted from frames 0 … t−1 only (the state before the corrector
    has seen frame t); frame 0 is decoded from the initial noise.
    """
    batch, num_frames, height, width, _ = frames.shape
    z_p = model(frames, key=key, training=False)["z_p"]
    dense = model.decoder.decode_frame(z_p.reshape((batch * num_frames,) + z_p.shape[2:]),
                                       height, width)
    return jnp.clip(dense.reshape(batch, num_frames, height, width, 3), 0.0, 1.0)


def write_report(workdir, out_dir, *, num_clips: int = 4, fps: int = 4) -> Path:
    """A folder a person opens: curves.png, predictions.mp4/.gif and summary.md.

    The video shows held-out clips: ground truth | predicted next frame |
    absolute error, one clip per row, frames 1 … T−1.
    """
    import imageio_ffmpeg
    import matplotlib.pyplot as plt
    import mediapy

    mediapy.set_ffmpeg(imageio_ffmpeg.get_ffmpeg_exe())
    workdir, out_dir = Path(workdir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    loaded = load_trained(workdir)
    if loaded is None:
        raise ValueError(f"{workdir} has no readable checkpoint; train first "
                         f"(moog train --workdir {workdir})")
    model, config = loaded
    _, eval_source = make_sources(config, progress=False)
    clips = [eval_source[i] for i in range(min(num_clips, len(eval_source)))]
    frames = np.stack([c["video"][: config.data.num_frames] for c in clips]).astype(np.float32) / 255
    predicted = np.asarray(nnx.jit(predict_frames)(model, jnp.asarray(frames), jax.random.key(0)))
    error = np.abs(predicted - frames)
    panel = np.concatenate([frames, predicted, error], axis=3)[:, 1:]  # [B, T-1, H, 3W, 3]
    video = np.concatenate(list(panel), axis=1)  # clips stacked vertically
    video = np.repeat(np.repeat(video, 2, axis=1), 2, axis=2)  # easier to see
    mediapy.write_video(out_dir / "predictions.mp4", video, fps=fps)
    mediapy.write_video(out_dir / "predictions.gif", video, fps=fps, codec="gif")
    log = MetricsLog(workdir / "metrics.jsonl")
    plt.close(plot_metrics(log, out_dir / "curves.png"))
    train_records, eval_records = log.read("train"), log.read("eval")
    final = eval_records[-1] if eval_records else {}
    seconds = train_records[-1]["time"] - train_records[0]["time"] if len(train_records) > 1 else 0
    lines = [
        f"# MooG pretraining: preset `{config.name}`",
        "",
        f"- steps: {train_records[-1]['step'] if train_records else 0:,}; wall time of the "
        f"logged steps: {seconds / 60:.1f} min; model: K = {config.model.num_tokens} tokens × "
        f"D = {config.model.token_dim}, {config.data.resolution}² frames, "
        f"{config.data.num_frames}-frame clips, batch {config.data.batch_size}",
        f"- held-out next-frame PSNR (test-split clips, S = 4, frames 1…T−1): "
        f"**{final.get('psnr', float('nan')):.2f} dB**; copying the previous frame: "
        f"**{final.get('copy_psnr', float('nan')):.2f} dB**",
        "",
        "![curves](curves.png)",
        "",
        "Held-out clips — ground truth | predicted next frame | |error|:",
        "",
        "![predictions](predictions.gif)",
        "",
    ]
    (out_dir / "summary.md").write_text("\n".join(lines))
    return out_dir


# chapters/06_pretraining.py, cell 48
import hashlib
import io
import os
import tempfile

import moog_lib

WEIGHTS_FORMAT = 1
# The package's own folder (moog_lib/trained), also when this code runs in a notebook.
TRAINED_DIR = Path(moog_lib.__file__).parent / "trained"


def _weights_files(path) -> tuple[Path, Path]:
    """(`<path>.npz`, `<path>.json`), with or without the .npz suffix on `path`."""
    path = Path(path)
    stem = path.name[:-len(".npz")] if path.name.endswith(".npz") else path.name
    return path.with_name(stem + ".npz"), path.with_name(stem + ".json")


def _param_leaves(module: nnx.Module):
    """(the pure dict of `module`'s nnx.Params, its flat [('a/b/c', array)], its treedef)."""
    pure = nnx.to_pure_dict(nnx.state(module, nnx.Param))
    leaves, treedef = jax.tree_util.tree_flatten_with_path(pure)
    return [("/".join(str(k.key) for k in path), leaf) for path, leaf in leaves], treedef


def _write_atomic(path: Path, write) -> None:
    """`write(file)` into a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def save_weights(module: nnx.Module, path, *, manifest: dict) -> Path:
    """Write every nnx.Param of `module` to `<path>.npz` (float32, keyed by '/'-joined
    parameter path) and `manifest` plus format, counts and the npz's SHA-256 to
    `<path>.json`; both atomically. Returns the .npz path."""
    npz, meta = _weights_files(path)
    leaves, _ = _param_leaves(module)
    arrays = {name: np.asarray(jax.device_get(leaf), np.float32) for name, leaf in leaves}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    payload = buffer.getvalue()
    _write_atomic(npz, lambda f: f.write(payload))
    record = {**manifest, "format": WEIGHTS_FORMAT, "arrays": len(arrays),
              "parameters": int(sum(a.size for a in arrays.values())),
              "sha256": hashlib.sha256(payload).hexdigest()}
    _write_atomic(meta, lambda f: f.write((json.dumps(record, indent=1) + "\n").encode()))
    return npz


def load_weights(module: nnx.Module, path) -> dict:
    """Fill `module`'s nnx.Params, in place, from `<path>.npz`; returns the manifest.

    Refuses (ValueError) a file whose SHA-256 differs from its manifest's,
    arrays whose names or shapes differ from the module's parameters, and NaN or Inf.
    """
    npz, meta = _weights_files(path)
    for file in (meta, npz):
        if not file.exists():
            raise FileNotFoundError(f"load_weights: {file} does not exist")
    manifest = json.loads(meta.read_text())
    if manifest.get("format") != WEIGHTS_FORMAT:
        raise ValueError(f"{meta}: weights format {manifest.get('format')!r}, expected "
                         f"{WEIGHTS_FORMAT}")
    payload = npz.read_bytes()
    digest = hashlib.sha256(payload).hexdigest()
    if digest != manifest.get("sha256"):
        raise ValueError(f"{npz}: SHA-256 {digest} differs from the {manifest.get('sha256')} "
                         f"recorded in {meta.name}: the file is damaged or belongs to other "
                         "weights (re-download it or ship both files again)")
    with np.load(io.BytesIO(payload), allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    leaves, treedef = _param_leaves(module)
    expected = dict(leaves)
    missing = [n for n in expected if n not in arrays]
    unexpected = [f"{n} {list(arrays[n].shape)}" for n in arrays if n not in expected]
    mismatched = [f"{n}: file {list(arrays[n].shape)}, module {list(expected[n].shape)}"
                  for n in expected if n in arrays and arrays[n].shape != expected[n].shape]
    if missing or unexpected or mismatched:
        problems = [f"{len(found)} {kind}: " + ", ".join(found) for kind, found in
                    (("missing", [f"{n} {list(expected[n].shape)}" for n in missing]),
                     ("unexpected", unexpected), ("with another shape", mismatched)) if found]
        raise ValueError(f"{npz} does not fit {type(module).__name__} "
                         f"({len(expected)} parameters): " + "; ".join(problems))
    for name in expected:
        data.check_finite(f"{npz}: array {name!r}", arrays[name],
                          "these weights were saved from a diverged run")
    values = [jnp.asarray(arrays[name], dtype=leaf.dtype) for name, leaf in leaves]
    state = nnx.state(module, nnx.Param)
    nnx.replace_by_pure_dict(state, jax.tree_util.tree_unflatten(treedef, values))
    nnx.update(module, state)
    return manifest


def load_tutorial_model(name: str = "cpu_moog", *, directory=None):
    """(model, config, manifest): the MooG shipped as `<directory>/<name>.npz/.json`
    (default directory: `TRAINED_DIR`, inside the installed package)."""
    directory = TRAINED_DIR if directory is None else Path(directory)
    meta = directory / f"{name}.json"
    if not meta.exists():
        shipped = sorted(p.stem for p in directory.glob("*.json")) if directory.exists() else []
        raise FileNotFoundError(
            f"no shipped weights {meta} (shipped here: {', '.join(shipped) or 'none'}). They are "
            f"made from a finished training run with `python tools/ship_weights.py backbone "
            f"--workdir RUN --name {name} --command \"the command that trained RUN\"`")
    config = config_from_dict(json.loads(meta.read_text())["config"])
    model = MooG(config.model, rngs=nnx.Rngs(0))
    manifest = load_weights(model, directory / name)
    return model, config, manifest
