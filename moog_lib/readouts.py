"""Readouts on a MooG backbone, and depth.

`ReadoutModel` (a frozen or fine-tuned backbone and a head reading
`token_features`), `ReadoutTask`, the readout loss and optimiser, and building,
training, evaluating and loading readouts (`build_readout`, `train_readout`,
`evaluate_readout`, `load_tutorial_readout`); the depth task `DEPTH`: its head,
the masked L2 loss on log depth, AbsRel and the mean-depth baseline.

Generated from chapters/07_depth_readout.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "token_features",
    "ReadoutModel",
    "ReadoutTask",
    "readout_loss",
    "depth_targets",
    "masked_l2",
    "abs_rel",
    "make_depth_head",
    "dense_readout",
    "depth_loss",
    "depth_statistics",
    "depth_baseline",
    "DEPTH",
    "check_backbone",
    "readout_run_config",
    "build_readout",
    "train_readout",
    "evaluate_readout",
    "load_tutorial_readout",
    "manifest_batches",
    "baseline_verdict",
]


import dataclasses
import json
import typing
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, ArrayLike, Float, Shaped

from moog_lib import (
    checkpoint,
    configs,
    data,
    datasets,
    decoder,
    encoder,
    optimization,
    runs,
    train,
)
from moog_lib.model import MooG
from moog_lib.shapes import typed


# chapters/07_depth_readout.py, cell 5
def token_features(moog: MooG, frames: jnp.ndarray, key: jax.Array) -> jnp.ndarray:
    """The readouts' input: [z_p, z_c] per frame, float [B, T, 2K, D].

    `frames` float [B, T, H, W, 3] in [0, 1]; `key` draws the initial noise.
    """
    encoder.check_frames(frames, stride=moog.encoder.stride)
    state = moog.initial_state(key, frames.shape[0])
    out = moog.dynamics.unroll(moog.encoder(jnp.asarray(frames, jnp.float32)), state)
    return jnp.concatenate([out["z_p"], out["z_c"]], axis=2)


# chapters/07_depth_readout.py, cell 8
class ReadoutModel(nnx.Module):
    """A readout `head` on the tokens of a MooG `backbone`; `frozen`: only the head trains."""

    def __init__(self, backbone: MooG, head: nnx.Module, *, frozen: bool):
        self.backbone = backbone
        self.head = head
        self.frozen = frozen

    @property
    def trainable(self):
        """The NNX filter of what the optimiser updates (`optimization.split_model`)."""
        return nnx.All(nnx.Param, nnx.PathContains("head")) if self.frozen else nnx.Param

    def tokens(self, frames: jnp.ndarray, key: jax.Array) -> jnp.ndarray:
        """[z_p, z_c] of every frame, [B, T, 2K, D] (see `token_features`); a backbone
        with a `readout_tokens(frames, key)` method (chapter 10's baselines) gives its own."""
        read = getattr(self.backbone, "readout_tokens", None)
        return token_features(self.backbone, frames, key) if read is None else read(frames, key)


# chapters/07_depth_readout.py, cell 10
@dataclasses.dataclass(frozen=True)
class ReadoutTask:
    """Everything that makes one readout (depth, points, boxes).

    - `make_head(config, rngs)`: the head module.
    - `loss(head, tokens, batch, key, config=, training=) -> (loss, metrics)`.
    - `keys`: the batch entries (besides "video") the loss reads.
    - `statistics(batches, config) -> dict`: numbers the baseline needs from
      training batches (e.g. the mean depth), `baseline(batch, stats, config)
      -> metrics` the trivial baseline on one held-out batch.
    - `metric`: the headline metric; `higher_is_better` its direction.
    """

    name: str
    make_head: typing.Callable
    loss: typing.Callable
    keys: tuple[str, ...]
    baseline: typing.Callable
    metric: str
    higher_is_better: bool
    statistics: typing.Callable = lambda batches, config: {}


def readout_loss(task: ReadoutTask, config: configs.Config):
    """`loss_fn(model, batch, key, training=True)` of `task` for `train.fit`."""

    def loss_fn(readout_model: ReadoutModel, batch: dict, key: jax.Array, *,
                training: bool = True):
        token_key, head_key = jax.random.split(key)
        tokens = readout_model.tokens(optimization.video_batch(batch), token_key)
        return task.loss(readout_model.head, tokens, batch, head_key, config=config,
                         training=training)

    return loss_fn


# chapters/07_depth_readout.py, cell 12
def depth_targets(depth: jnp.ndarray) -> jnp.ndarray:
    """log(1 + depth); depth must be > −1 (checked when the values are concrete)."""
    if data.is_concrete(depth) and not bool(jnp.all(jnp.asarray(depth) > -1)):
        raise ValueError("depth_targets: depth must be > -1 everywhere (log(1 + depth) is "
                         f"undefined otherwise); the smallest value is {float(jnp.min(depth))}")
    return jnp.log1p(depth)


@typed
def masked_l2(prediction: Float[ArrayLike, "*shape"], target: Float[ArrayLike, "*shape"],
              mask: Shaped[ArrayLike, "*shape"]) -> Float[Array, ""]:
    """Mean squared error over the elements where `mask` is true (0 if there are none)."""
    mask = mask.astype(jnp.float32)
    return jnp.sum(mask * jnp.square(prediction - target)) / jnp.maximum(jnp.sum(mask), 1.0)


@typed
def abs_rel(predicted_depth: Float[ArrayLike, "B *pixels"],  # noqa: F821 (axis names)
            depth: Float[ArrayLike, "B *pixels"],  # noqa: F821
            mask: Shaped[ArrayLike, "B *pixels"],  # noqa: F821
            ) -> Float[np.ndarray | Array, "B"]:  # noqa: F821
    """AbsRel per clip: mean |d̂ − d| / d over valid pixels with d > 0 (NaN if none).

    Depth in depth units (not log-depth). Concrete inputs: computed with NumPy in
    their own precision (float64 depth gives a float64 AbsRel); traced inputs
    (inside `jax.jit`): with `jax.numpy`.
    """
    xp = np if data.is_concrete(predicted_depth, depth, mask) else jnp
    predicted_depth, depth = xp.asarray(predicted_depth), xp.asarray(depth)
    valid = xp.asarray(mask).astype(bool) & (depth > 0)
    relative = xp.where(valid, xp.abs(predicted_depth - depth) / xp.where(valid, depth, 1), 0)
    axes = tuple(range(1, depth.ndim))
    with np.errstate(invalid="ignore"):  # 0 / 0 = NaN: no valid pixel
        return xp.sum(relative, axes) / xp.sum(valid, axes).astype(relative.dtype)


# chapters/07_depth_readout.py, cell 16
def make_depth_head(config: configs.Config, rngs: nnx.Rngs) -> decoder.Decoder:
    """The grid readout: the decoder design with `config.readout.grid` layers, 1 output."""
    return decoder.Decoder(config.model, rngs=rngs, layers=config.readout.grid, outputs=1)


def dense_readout(head: decoder.Decoder, tokens: jnp.ndarray, height: int, width: int,
                  key: jax.Array, *, subsample: int, training: bool):
    """Run a grid head on every frame at subsampled pixels.

    Returns (outputs [B, T, H/S, W/S, C], offsets [B, T, 2]); offsets are random
    when training, zero otherwise (as the pixel decoder's).
    """
    batch, num_frames = tokens.shape[:2]
    offsets = (decoder.subsample_offsets(key, batch, num_frames, subsample) if training
               else jnp.zeros((batch, num_frames, 2), jnp.int32))
    coords = decoder.sample_coordinates(height, width, offsets, subsample)
    h, w = coords.shape[2:4]
    flat = head(tokens.reshape((batch * num_frames,) + tokens.shape[2:]),
                coords.reshape(batch * num_frames, h * w, 2))
    return flat.astype(jnp.float32).reshape(batch, num_frames, h, w, -1), offsets


def depth_loss(head, tokens, batch, key, *, config: configs.Config, training: bool = True):
    """Masked L2 on log(1 + depth) at S = 8 (training) or 4; metrics include AbsRel."""
    depth = jnp.asarray(batch["depth"], jnp.float32)
    if depth.ndim != 5 or depth.shape[-1] != 1 or depth.shape[:2] != tokens.shape[:2]:
        raise ValueError(f"depth must be [B, T, H, W, 1] matching the tokens' [B, T] = "
                         f"{tokens.shape[:2]}, got {depth.shape}")
    subsample = config.model.train_subsample if training else config.model.eval_subsample
    predicted, offsets = dense_readout(head, tokens, depth.shape[2], depth.shape[3], key,
                                       subsample=subsample, training=training)
    sampled_depth = decoder.subsample_frames(depth, offsets, subsample)
    mask = decoder.subsample_frames(jnp.asarray(batch["depth_mask"], jnp.float32), offsets,
                                    subsample) > 0.5
    loss = masked_l2(predicted, depth_targets(sampled_depth), mask)
    per_clip = abs_rel(jnp.expm1(predicted), sampled_depth, mask)
    return loss, {"loss": loss, "abs_rel": jnp.nanmean(per_clip)}


# chapters/07_depth_readout.py, cell 19
def depth_statistics(batches, config: configs.Config) -> dict:
    """The mean of log(1 + depth) over the valid pixels of training `batches`."""
    total, count = 0.0, 0
    for batch in batches:
        mask = np.asarray(batch["depth_mask"], bool)
        total += float(np.log1p(np.asarray(batch["depth"], np.float64))[mask].sum())
        count += int(mask.sum())
    if not count:
        raise ValueError("depth_statistics: no valid depth pixel in the training batches")
    return {"mean_log_depth": total / count}


def depth_baseline(batch: dict, stats: dict, config: configs.Config) -> dict:
    """AbsRel (S = 4) of predicting the mean training depth everywhere."""
    subsample = config.model.eval_subsample
    depth = np.asarray(batch["depth"], np.float32)[:, :, ::subsample, ::subsample]
    mask = np.asarray(batch["depth_mask"], bool)[:, :, ::subsample, ::subsample]
    constant = np.full_like(depth, np.expm1(stats["mean_log_depth"]))
    return {"abs_rel": float(np.nanmean(abs_rel(jnp.asarray(constant), jnp.asarray(depth),
                                                jnp.asarray(mask))))}


DEPTH = ReadoutTask(name="depth", make_head=make_depth_head, loss=depth_loss,
                    keys=("depth", "depth_mask"), baseline=depth_baseline, metric="abs_rel",
                    higher_is_better=False, statistics=depth_statistics)


# chapters/07_depth_readout.py, cell 21
def check_backbone(config: configs.Config, backbone_dir) -> MooG:
    """The pretrained MooG in `backbone_dir`; its model config must be `config.model`."""
    if (Path(backbone_dir) / "baseline.json").exists():  # written by chapter 10
        raise ValueError(f"{backbone_dir} holds an on-the-grid baseline, not MooG; load it with "
                         "baselines.load_baseline and pass it as backbone=")
    loaded = train.load_trained(backbone_dir)
    if loaded is None:
        raise ValueError(f"{backbone_dir} has no readable checkpoint; pretrain first "
                         f"(moog train --workdir {backbone_dir})")
    backbone, backbone_config = loaded
    if backbone_config.model != config.model:
        raise ValueError(f"the run in {backbone_dir} was trained with another model config "
                         f"than preset {config.name!r}; pass the config it was trained with")
    return backbone


def _own_copy(backbone: nnx.Module, frozen: bool) -> nnx.Module:
    """End to end, `backbone` with arrays of its own (`train.fit` donates the arrays it
    trains); frozen, `backbone` itself (its arrays are read, never donated)."""
    if frozen:
        return backbone
    graphdef, state = nnx.split(backbone)
    return nnx.merge(graphdef, jax.tree.map(jnp.copy, state))


def readout_run_config(config: configs.Config) -> configs.Config:
    """`config` with the readouts' optimiser and schedule as its `train` section."""
    return dataclasses.replace(config, train=config.readout.train)


def build_readout(task: ReadoutTask, config: configs.Config, backbone: MooG, *,
                  frozen: bool):
    """(ReadoutModel, optimiser) for `task` on `backbone`."""
    head = task.make_head(config, nnx.Rngs(config.readout.train.seed))
    return (ReadoutModel(backbone, head, frozen=frozen),
            optimization.make_optimizer(config.readout.train))


# chapters/07_depth_readout.py, cell 25
def train_readout(task: ReadoutTask, config: configs.Config, backbone_dir, workdir, *,
                  frozen: bool = True, steps: int | None = None, minutes: float | None = None,
                  resume: bool = True, sources=None, progress: bool = True,
                  backbone=None) -> dict:
    """Train `task`'s head on the MooG run in `backbone_dir` (or on a copy of `backbone`,
    a pretrained model passed in, e.g. a baseline of chapter 10); returns `fit`'s records.
    `minutes`: train for that long instead of `readout.train.steps` (chapter 06a)."""
    backbone = (check_backbone(config, backbone_dir) if backbone is None
                else _own_copy(backbone, frozen))
    readout_model, tx = build_readout(task, config, backbone, frozen=frozen)
    run_config = readout_run_config(config)
    train_source, eval_source = (train.make_sources(run_config, progress=progress)
                                 if sources is None else sources)
    if minutes is not None:
        if steps is not None:
            raise ValueError("give a number of steps or a budget in minutes, not both")
        total = train.budget_steps(run_config, readout_model, tx, readout_loss(task, config),
                                   minutes, train_source=train_source, keys=("video",) + task.keys,
                                   start=train.last_step(workdir) if resume else 0)
        config = configs.override(config, [f"readout.train.steps={total}"])
        readout_model, tx = build_readout(task, config, backbone, frozen=frozen)
        run_config = readout_run_config(config)
    d = config.data
    return train.fit(run_config, workdir, readout_model, tx, readout_loss(task, config),
                     keys=("video",) + task.keys, steps=steps, resume=resume,
                     train_source=train_source,
                     eval_sources={"eval": (eval_source, d.num_frames),
                                   "eval_long": (eval_source, d.clip_frames)},
                     progress=progress, desc=f"{task.name} ({'frozen' if frozen else 'e2e'})")


# chapters/07_depth_readout.py, cell 27
def evaluate_readout(task: ReadoutTask, config: configs.Config, backbone_dir, workdir, *,
                     frozen: bool = True, sources=None, statistics_batches: int = 16,
                     backbone=None) -> dict:
    """Held-out metrics of the trained readout in `workdir` and of the baseline.

    Returns {"readout": {...}, "baseline": {...}} for 8-frame windows and
    {"readout_long": ..., "baseline_long": ...} for whole clips. `backbone`: as
    in `train_readout`.
    """
    run_config = readout_run_config(config)
    backbone = (check_backbone(config, backbone_dir) if backbone is None
                else _own_copy(backbone, frozen))
    readout_model, tx = build_readout(task, config, backbone, frozen=frozen)
    readout_model = train.restore_model(readout_model, tx, Path(workdir) / "checkpoints")
    if readout_model is None:
        raise ValueError(f"{workdir} has no readable readout checkpoint; train it first")
    train_source, eval_source = (train.make_sources(run_config, progress=False)
                                 if sources is None else sources)
    keys = ("video",) + task.keys
    first = range(min(len(train_source), statistics_batches * run_config.data.batch_size))
    training_batches = train.held_out_batches([train_source[i] for i in first], run_config,
                                              keys=keys)  # only the clips the statistics read
    stats = task.statistics(training_batches, config)
    results = {}
    for suffix, num_frames in (("", config.data.num_frames), ("_long", config.data.clip_frames)):
        batches = train.held_out_batches(eval_source, run_config, keys=keys,
                                         num_frames=num_frames)
        results["readout" + suffix] = train.evaluate_model(
            readout_model, batches, readout_loss(task, config))
        baselines = [task.baseline(jax.device_get(b), stats, config) for b in batches]
        results["baseline" + suffix] = {k: float(np.nanmean([b[k] for b in baselines]))
                                        for k in baselines[0]}
    return results


# chapters/07_depth_readout.py, cell 33
def load_tutorial_readout(task: ReadoutTask, name: str | None = None, *, directory=None):
    """(readout_model, config, manifest): the shipped frozen readout for `task`.

    Reads `<directory>/<name>.npz/.json` (default name `cpu_<task.name>`, default
    directory `train.TRAINED_DIR`). The file holds only the **head**'s parameters;
    the backbone is the shipped MooG named in the manifest's "backbone" (default
    `cpu_moog`), loaded with `train.load_tutorial_model`, and the readout is
    frozen, as it was trained. `config` is the readout run's (its `train` section
    is the readout schedule, see `readout_run_config`).
    """
    name = f"cpu_{task.name}" if name is None else name
    directory = train.TRAINED_DIR if directory is None else Path(directory)
    meta = directory / f"{name}.json"
    if not meta.exists():
        raise FileNotFoundError(
            f"no shipped readout {meta}. It is made from a finished frozen readout run with "
            f"`python tools/ship_weights.py readout --task {task.name} --workdir READOUT_RUN "
            f"--name {name} --command \"the command that trained it\"`")
    manifest = json.loads(meta.read_text())
    if manifest.get("task", task.name) != task.name:
        raise ValueError(f"{meta} holds a {manifest['task']!r} readout, not {task.name!r}")
    backbone, backbone_config, _ = train.load_tutorial_model(
        manifest.get("backbone", "cpu_moog"), directory=directory)
    config = runs.config_from_dict(manifest["config"]) if "config" in manifest else backbone_config
    if config.model != backbone_config.model:
        raise ValueError(f"{meta}: the readout was trained on another model config than the "
                         f"shipped backbone {manifest.get('backbone', 'cpu_moog')!r}")
    readout_model, _ = build_readout(task, config, backbone, frozen=True)
    checkpoint.load_weights(readout_model.head, directory / name)
    return readout_model, config, manifest


def manifest_batches(manifest: dict, config: configs.Config, keys: tuple[str, ...]) -> list[dict]:
    """The held-out clips shipped weights (a MooG or a readout) were scored on (the
    manifest's `held_out` record), rendered again, as the evaluation batches of `evaluate_readout`:
    windows of `num_frames` frames from frame 0 of the whole rendered clips."""
    h = manifest["held_out"]
    if h["clips"] != list(range(h["num_clips"])):
        raise ValueError(f"manifest_batches renders clips 0 … n−1, the manifest names {h['clips']}")
    source = datasets.SyntheticSource(h["scene_preset"], h["split"], h["num_clips"], seed=h["seed"],
                                  resolution=h["resolution"], num_frames=config.data.clip_frames)
    return train.held_out_batches(source, config, keys=keys, num_frames=h["num_frames"])


def baseline_verdict(task: ReadoutTask, readout: float, baseline: float, manifest: dict, *,
                     directory=None) -> str:
    """One or two sentences: does the readout beat its trivial baseline, by how much, and
    (when it misses) the likely reasons, from the head's and its backbone's manifests."""
    gap = readout - baseline if task.higher_is_better else baseline - readout
    scores = f"{readout:.3f} against {baseline:.3f}"
    if gap > 0:
        return f"The readout beats its baseline by {gap:.3f} {task.metric} ({scores})."
    directory = train.TRAINED_DIR if directory is None else Path(directory)
    backbone_file = directory / f"{manifest.get('backbone', 'cpu_moog')}.json"
    backbone = json.loads(backbone_file.read_text()) if backbone_file.exists() else {}
    following = backbone.get("held_out", {}).get("metrics", {}).get("following")
    reasons = [f"its backbone is MooG after {backbone.get('steps', '?')} steps at "
               f"{manifest['held_out']['resolution']}² on a CPU, far from the paper's compute"
               + (f" (its tokens do not yet follow objects: F = {following:.2f}, chapter 11)"
                  if following is not None and following <= 0 else ""),
               f"and the head was trained for only {manifest.get('steps', '?')} steps"]
    return (f"The readout misses its baseline by {-gap:.3f} {task.metric} ({scores}). "
            f"Likely reasons: {' '.join(reasons)}.")
