"""Pretraining MooG: the training loop, its time budget, the report, and the shipped model.

`train` (on `fit`) trains a config in a run folder and resumes it; `fit` is
`open_run` and `restore_run` (a `FitRun`), `run_steps` and `close_run`;
`restore_model` and `load_trained` read a run's newest checkpoint;
`budget_steps` turns minutes into steps; `write_report` draws a finished run;
`load_tutorial_model` loads the MooG shipped in `moog_lib/trained/`. The pieces
are in `optimization` (optimiser, loss, steps), `parallel` (devices and hosts),
`checkpoint` (checkpoints and weights files) and `runs` (the run folder).

Generated from chapters/06a_training_loop.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "make_sources",
    "held_out_batches",
    "evaluate_model",
    "evaluate_batches",
    "FitRun",
    "open_run",
    "restore_run",
    "log_train_window",
    "evaluate_held_out",
    "save_checkpoint",
    "run_steps",
    "close_run",
    "fit",
    "train",
    "restore_model",
    "load_trained",
    "time_train_step",
    "steps_for_budget",
    "last_step",
    "budget_steps",
    "predict_frames",
    "write_report",
    "TRAINED_DIR",
    "load_tutorial_model",
]


import dataclasses
import functools
import itertools
import json
import math
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import moog_lib
from moog_lib import configs, data, datasets
from moog_lib.checkpoint import Checkpointer, load_weights
from moog_lib.model import MooG
from moog_lib.optimization import (
    TrainState,
    learning_rate_schedule,
    make_eval_step,
    make_optimizer,
    make_train_step,
    merge_model,
    pretraining_loss,
    split_model,
)
from moog_lib.parallel import HostShard, local_batch_size, replicate
from moog_lib.runs import (
    _WAYS_OUT,
    MetricsLog,
    check_config,
    check_count,
    config_from_dict,
    plot_metrics,
    prepare_run_folder,
    read_config,
)


# chapters/06a_training_loop.py, cell 7
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


# chapters/06a_training_loop.py, cell 9
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


# chapters/06a_training_loop.py, cell 13
@dataclasses.dataclass
class FitRun:
    """What `fit`'s loop works on, made by `open_run`: the run's config, folder and
    length, the mesh, the `TrainState` (replaced at every step), the jitted train and
    eval steps, the schedule, the training pipeline's iterator (a grain
    `DatasetIterator`, checkpointed by grain's handler), the held-out batches per
    split, the checkpoints and the log."""

    config: configs.Config
    workdir: Path
    total_steps: int
    keys: tuple[str, ...]
    mesh: jax.sharding.Mesh
    state: TrainState
    train_step: Callable
    evaluate: Callable
    schedule: optax.Schedule
    batches: Iterator[dict]
    held_out: dict[str, list[dict]]
    checkpoints: Checkpointer
    log: MetricsLog
    base_key: jax.Array


def open_run(config: configs.Config, workdir, model: nnx.Module,
             tx: optax.GradientTransformation, loss_fn, *, keys: tuple[str, ...] = ("video",),
             steps: int | None = None, resume: bool = True, force_new_run: bool = False,
             train_source=None, eval_source=None, eval_sources=None,
             progress: bool = True) -> FitRun:
    """Check `config`, `steps` and the folder, then build what `fit` trains with (see
    `fit` for the arguments). Creates the folder and its checkpoints/ (and builds
    the dataset when `data.data_dir` is set), writes nothing else."""
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
    state, rest = replicate(state, mesh), replicate(rest, mesh)  # rest: a frozen backbone
    train_step = make_train_step(graphdef, rest, tx, loss_fn)
    evaluate = make_eval_step(graphdef, rest, loss_fn)
    schedule = learning_rate_schedule(t)
    pipeline = data.make_pipeline(HostShard(train_source), batch_size=local_batch_size(
        d.batch_size, mesh), seed=t.seed, num_frames=d.num_frames, resolution=d.resolution)
    batches = iter(pipeline)
    held_out = {split: held_out_batches(source, config, keys=keys, num_frames=num_frames,
                                        mesh=mesh)
                for split, (source, num_frames) in eval_sources.items()}
    checkpoints = Checkpointer(workdir / "checkpoints", keep=t.keep_checkpoints)
    return FitRun(config, workdir, total_steps, keys, mesh, state, train_step, evaluate,
                  schedule, batches, held_out, checkpoints,
                  MetricsLog(workdir / "metrics.jsonl"), jax.random.key(t.seed))


# chapters/06a_training_loop.py, cell 15
def restore_run(run: FitRun, *, resume: bool = True) -> None:
    """With `resume`, continue `run` from its newest readable checkpoint (state and
    data position); then write the run's config.json."""
    if resume and (restored := run.checkpoints.restore(run.state,
                                                         iterator=run.batches)) is not None:
        run.state, _ = restored
        print(f"resumed from step {int(run.state.step)} in {run.workdir}")
    elif resume and run.checkpoints.unreadable:  # starting over would rotate them away
        run.checkpoints.close()
        raise ValueError(f"none of the checkpoints in {run.checkpoints.directory} (steps "
                         f"{', '.join(map(str, sorted(run.checkpoints.unreadable)))}) can be "
                         f"read as this model ({next(iter(run.checkpoints.unreadable.values()))}"
                         f"); {_WAYS_OUT}")
    (run.workdir / "config.json").write_text(json.dumps(dataclasses.asdict(run.config), indent=1))


# chapters/06a_training_loop.py, cell 19
def log_train_window(run: FitRun, step: int, pending: list, window_start: float,
                     data_seconds: float) -> dict:
    """Log, at `step` + 1, the mean of the step metrics `pending` (the window since
    `window_start`), with the learning rate, frames per second and the share of the
    window spent waiting for data; returns the record."""
    d = run.config.data
    values = jax.device_get(pending)  # waits for the device to finish the window
    seconds = time.perf_counter() - window_start
    mean = {k: float(np.mean([v[k] for v in values])) for k in values[0]}
    mean.update(learning_rate=float(run.schedule(step)),
                frames_per_second=len(values) * d.batch_size * d.num_frames / seconds,
                data_wait_share=data_seconds / seconds)
    return run.log.write(step + 1, "train", mean)


def evaluate_held_out(run: FitRun, done: int) -> dict:
    """{split: record} of the current parameters on every held-out split, logged at `done`."""
    key = jax.random.key(run.config.train.seed + 1)
    return {split: run.log.write(done, split, evaluate_batches(run.evaluate, run.state.params,
                                                                split_batches, key))
            for split, split_batches in run.held_out.items()}


def save_checkpoint(run: FitRun) -> None:
    """Checkpoint the state with the data position, the seed and the base key."""
    run.checkpoints.save(run.state, {
        "seed": run.config.train.seed,
        "rng_key": np.asarray(jax.random.key_data(run.base_key)).tolist()},
        iterator=run.batches)


# chapters/06a_training_loop.py, cell 21
def run_steps(run: FitRun, *, progress: bool = True, desc: str = "pretraining") -> dict:
    """Train `run` from its state's step to `run.total_steps`, with a progress bar;
    returns the last record of "train" and of every held-out split (None if none)."""
    from tqdm.auto import tqdm

    t = run.config.train
    start = int(run.state.step)
    last = {"train": None, **{split: None for split in run.held_out}}
    pending, data_seconds, window_start = [], 0.0, time.perf_counter()
    bar = tqdm(total=run.total_steps, initial=start, disable=not progress, desc=desc)
    for step in range(start, run.total_steps):
        tic = time.perf_counter()
        clips = next(run.batches)
        batch = data.shard_clip_batch({k: clips[k] for k in run.keys}, run.mesh)
        data_seconds += time.perf_counter() - tic
        run.state, metrics = run.train_step(run.state, batch,
                                            jax.random.fold_in(run.base_key, step))
        pending.append(metrics)
        done = step + 1
        if done % t.log_every == 0 or done == run.total_steps:
            last["train"] = log_train_window(run, step, pending, window_start, data_seconds)
            shown = {k: f"{last['train'][k]:.4g}" for k in ("loss", "psnr")
                     if k in last["train"]}  # the model's own
            bar.set_postfix(**shown, fps=f"{last['train']['frames_per_second']:.0f}")
        if done % t.eval_every == 0 or done == run.total_steps:
            last.update(evaluate_held_out(run, done))
        if done % t.checkpoint_every == 0 or done == run.total_steps:
            save_checkpoint(run)
        if done % t.log_every == 0 or done == run.total_steps:  # evaluation and saving not timed
            pending, data_seconds, window_start = [], 0.0, time.perf_counter()
        bar.update(1)
    bar.close()
    return last


# chapters/06a_training_loop.py, cell 23
def close_run(run: FitRun) -> None:
    """Close the run's checkpoints and draw its metrics log into `curves.png`."""
    run.checkpoints.close()
    if run.log.read():
        import matplotlib.pyplot as plt

        plt.close(plot_metrics(run.log, run.workdir / "curves.png"))


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
    In parts: `open_run`, `restore_run`, `run_steps`, `close_run`.
    """
    run = open_run(config, workdir, model, tx, loss_fn, keys=keys, steps=steps, resume=resume,
                   force_new_run=force_new_run, train_source=train_source,
                   eval_source=eval_source, eval_sources=eval_sources, progress=progress)
    restore_run(run, resume=resume)
    last = run_steps(run, progress=progress, desc=desc)
    close_run(run)
    return {"step": int(run.state.step), **last}


# chapters/06a_training_loop.py, cell 25
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


# chapters/06a_training_loop.py, cell 31
def time_train_step(model: nnx.Module, tx: optax.GradientTransformation, loss_fn, batches,
                    *, repeats: int = 5) -> tuple[float, float]:
    """(seconds to compile, seconds per step) of `fit`'s train step. `batches`: one batch
    (sharded as `fit` shards it), used for every step, or an iterator of such batches,
    one per step, so that waiting for the data counts; `model` is left as it was."""
    batches = itertools.repeat(batches) if isinstance(batches, dict) else iter(batches)
    graphdef, rest, state = split_model(model, tx)
    mesh = data.data_parallel_mesh()
    state = jax.tree.map(jnp.copy, replicate(state, mesh))  # it is donated
    rest = replicate(rest, mesh)
    step = make_train_step(graphdef, rest, tx, loss_fn)
    key = jax.random.key(0)
    tic = time.perf_counter()
    state, metrics = step(state, next(batches), key)
    jax.block_until_ready(metrics)
    compile_seconds = time.perf_counter() - tic
    for _ in range(2):  # untimed: the batches a pipeline prepared while the step compiled
        state, metrics = step(state, next(batches), key)
    jax.block_until_ready(metrics)
    tic = time.perf_counter()
    for _ in range(repeats):
        state, metrics = step(state, next(batches), key)
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
    `fit`'s step is timed on batches of `train_source` drawn as `fit` draws them (data
    preparation included); the estimate is printed."""
    d = config.data
    mesh = data.data_parallel_mesh()
    pipeline = data.make_pipeline(HostShard(train_source), batch_size=local_batch_size(
        d.batch_size, mesh), seed=config.train.seed, num_frames=d.num_frames,
        resolution=d.resolution)
    batches = (data.shard_clip_batch({k: v for k, v in batch.items() if k in keys}, mesh)
               for batch in pipeline)
    compile_seconds, step_seconds = time_train_step(model, tx, loss_fn, batches)
    steps = steps_for_budget(minutes, compile_seconds, step_seconds)
    print(f"≈ {steps:,} steps in {minutes:.3g} min at {step_seconds:.3g} s/step (compiling took "
          f"{compile_seconds:.0f} s){f', after step {start:,}' if start else ''}; evaluation "
          "and checkpoints come on top")
    if start + steps <= 2 * config.train.warmup_steps:
        warnings.warn(f"the budget ends at step {start + steps:,}, in or near the warm-up of "
                      f"{config.train.warmup_steps:,} steps: give more minutes or lower "
                      "train.warmup_steps", stacklevel=2)
    return start + steps


# chapters/06a_training_loop.py, cell 35
@functools.partial(jax.jit, static_argnums=0)
def _predict_frames(graphdef, variables, frames, key):
    model = nnx.merge(graphdef, variables)
    batch, num_frames, height, width, _ = frames.shape
    z_p = model(frames, key=key, training=False)["z_p"]
    dense = model.decoder.decode_frame(z_p.reshape((batch * num_frames,) + z_p.shape[2:]),
                                       height, width)
    return jnp.clip(dense.reshape(batch, num_frames, height, width, 3), 0.0, 1.0)


def predict_frames(model, frames: jnp.ndarray, key: jax.Array) -> jnp.ndarray:
    """Dense next-frame predictions [B, T, H, W, 3]: every z_p decoded at every pixel.

    Frame t is predicted from frames 0 … t−1 only (the state before the corrector
    has seen frame t); frame 0 is decoded from the initial noise.
    """
    return _predict_frames(*nnx.split(model), frames, key)


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
    predicted = np.asarray(predict_frames(model, jnp.asarray(frames), jax.random.key(0)))
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


# chapters/06a_training_loop.py, cell 42
# The package's own folder (moog_lib/trained), also when this code runs in a notebook.
TRAINED_DIR = Path(moog_lib.__file__).parent / "trained"


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
