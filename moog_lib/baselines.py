"""On the grid: the paper's baselines.

Generated from chapters/10_on_the_grid.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "MODEL_KINDS",
    "MODEL_NAMES",
    "grid_transformer_config",
    "Grid",
    "GridRecurrence",
    "GridRec",
    "build_model",
    "count_parameters",
    "num_tokens",
    "capacity_table",
    "BASELINE_FILE",
    "run_kind",
    "run_decodes_corrected",
    "train_baseline",
    "with_steps",
    "load_baseline",
    "token_following_sums",
    "following_score",
    "token_following",
    "segmentation_attention",
    "binding_ceiling",
    "adjusted_rand_index",
    "cross_clip_agreement",
    "scene_motion",
]


import dataclasses
import functools
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from moog_lib import (
    attention,
    configs,
    decoder,
    dynamics,
    encoder,
    optimization,
    runs,
    train,
)
from moog_lib.model import MooG, check_offsets

# chapters/10_on_the_grid.py, cell 5
MODEL_KINDS = ("moog", "grid", "grid_rec")
MODEL_NAMES = {"moog": "MooG", "grid": "Grid", "grid_rec": "Grid Rec."}


def grid_transformer_config(config: configs.ModelConfig) -> configs.TransformerConfig:
    """The baselines' transformer on the grid tokens, derived from MooG's sizes.

    The corrector's layer design (heads, q/k/v width, MLP) at the predictor's
    depth: the paper's 3 layers, 8 heads × 64, MLP 2048 (width D = 512).
    """
    corrector = config.corrector
    return configs.TransformerConfig(config.predictor.num_layers, corrector.num_heads,
                                     corrector.qkv_size, corrector.mlp_size)


# chapters/10_on_the_grid.py, cell 7
class _OnTheGrid(nnx.Module):
    """Encoder → transformer over the h·w grid tokens → (Grid Rec.: recurrence) → decoder.

    `model(frames, key=..., training=..., return_attention=...)` returns the
    dict of `model.MooG` (prediction, target, loss, offsets, attention on
    request) plus "tokens", the tokens the decoder read, [B, T, h·w, D].
    """

    def __init__(self, config: configs.ModelConfig, *, rngs: nnx.Rngs, dtype=None,
                 param_dtype=jnp.float32, layers: configs.TransformerConfig | None = None):
        self.config = config
        self.grid_layers = grid_transformer_config(config) if layers is None else layers
        self.dtype = jnp.dtype(config.compute_dtype if dtype is None else dtype)
        kwargs = dict(rngs=rngs, dtype=self.dtype, param_dtype=param_dtype)
        self.encoder = encoder.Encoder(config, **kwargs)
        self.grid_transformer = attention.Transformer.from_config(
            config.token_dim, self.grid_layers, qk_norm_scale=config.qk_norm_scale, **kwargs)
        self.decoder = decoder.Decoder(config, **kwargs)

    def grid_tokens(self, frames) -> jnp.ndarray:
        """g_t = G(E(x_t)) for every frame, each on its own: [B, T, h·w, D]."""
        encoder.check_frames(frames, stride=self.encoder.stride)
        return self.grid_transformer(self.encoder(jnp.asarray(frames, jnp.float32)))

    def num_grid_tokens(self, height: int, width: int) -> int:
        """h·w: one token per encoder cell of an H×W frame."""
        return (height // self.encoder.stride) * (width // self.encoder.stride)

    def __call__(self, frames, *, key: jax.Array | None = None, state=None,
                 training: bool = False, subsample: int | None = None, offsets=None,
                 return_attention: bool = False, average_attention: bool = True) -> dict:
        """Run the model on a clip `frames` float [B, T, H, W, 3] in [0, 1] (see `model.MooG`)."""
        cfg, name = self.config, type(self).__name__
        if subsample is None:
            subsample = cfg.train_subsample if training else cfg.eval_subsample
        encoder.check_frames(frames, stride=self.encoder.stride)
        batch, num_frames, height, width, _ = frames.shape
        decoder.check_subsample(height, width, subsample)
        self._check_state(state, batch, self.num_grid_tokens(height, width))
        if key is None and ((offsets is None and training) or self._needs_key(state)):
            raise ValueError(f"{name}: pass key=jax.random.key(...) for the random offsets "
                             "(training) and the initial state (Grid Rec.)")
        if offsets is not None:
            check_offsets(offsets, batch, num_frames, subsample)
        state_key, offset_key = jax.random.split(key) if key is not None else (None, None)
        if offsets is None:
            offsets = (decoder.subsample_offsets(offset_key, batch, num_frames, subsample)
                       if training else jnp.zeros((batch, num_frames, 2), jnp.int32))
        offsets = jnp.asarray(offsets, jnp.int32)
        frames = jnp.asarray(frames, jnp.float32)

        out = self.represent(frames, state_key, state)
        target = decoder.subsample_frames(frames, offsets, subsample)  # [B, T, h', w', 3]
        coords = decoder.sample_coordinates(height, width, offsets, subsample)
        result = decoder.decode_clip(self.decoder, out["tokens"], coords, target,
                                     return_attention=return_attention,
                                     average_attention=average_attention)
        return result | {"offsets": offsets, **out}

    def _needs_key(self, state) -> bool:
        return False

    def _check_state(self, state, batch: int, num_tokens: int) -> None:
        if state is not None:
            raise ValueError(f"{type(self).__name__} has no recurrent state; do not pass state=")


class Grid(_OnTheGrid):
    """The on-the-grid auto-encoder: frame t → E → G → decoder → frame t (no state)."""

    def represent(self, frames, key=None, state=None) -> dict:
        """{"tokens": g_t}: what the decoder reads, [B, T, h·w, D]."""
        return {"tokens": self.grid_tokens(frames)}

    def readout_tokens(self, frames, key=None) -> jnp.ndarray:
        """What readouts read: the grid tokens g_t of every frame, [B, T, h·w, D]."""
        return self.grid_tokens(frames)


# chapters/10_on_the_grid.py, cell 13
class GridRecurrence(nnx.Module):
    """c_t = LN(g_t + C(g_t, kv = c_{t−1})): MooG's corrector with the grid tokens as queries."""

    def __init__(self, config: configs.ModelConfig, *, rngs: nnx.Rngs, dtype=None,
                 param_dtype=jnp.float32):
        width = config.token_dim
        self.token_dim = width
        self.initial_state_scale = config.initial_state_scale
        self.fixed_initial_state = config.fixed_initial_state
        kwargs = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        self.corrector = attention.Transformer.from_config(
            width, config.corrector, kv_size=width, qk_norm_scale=config.qk_norm_scale, **kwargs)
        self.correction_norm = nnx.LayerNorm(width, epsilon=config.correction_norm_eps,
                                             use_bias=False, use_scale=True, **kwargs)

    def initial_state(self, key: jax.Array, batch_size: int, num_tokens: int) -> jnp.ndarray:
        """The past before frame 0: LN(1e-4 · N(0, I)), [B, N, D], drawn as MooG's initial
        state is (the small-world switches of chapter 03 included)."""
        if self.fixed_initial_state:
            noise = dynamics.fixed_noise(batch_size, num_tokens, self.token_dim,
                                         self.initial_state_scale)
        else:
            noise = dynamics.initial_noise(key, batch_size, num_tokens, self.token_dim,
                                           self.initial_state_scale)
        return self.correction_norm(noise)

    def correct(self, grid_tokens: jnp.ndarray, previous: jnp.ndarray) -> jnp.ndarray:
        """c_t from g_t [B, N, D] and c_{t−1} [B, N', D]."""
        return self.correction_norm(grid_tokens + self.corrector(grid_tokens, previous))

    def unroll(self, grid_tokens: jnp.ndarray, state: jnp.ndarray):
        """Scan over frames: g [B, T, N, D], c_{−1} [B, N', D] -> (c [B, T, N, D], c_{T−1})."""
        if grid_tokens.ndim != 4 or grid_tokens.shape[-1] != self.token_dim:
            raise ValueError(f"GridRecurrence: grid tokens must be [B, T, N, {self.token_dim}], "
                             f"got {grid_tokens.shape}")
        def step(module, previous, tokens):
            corrected = module.correct(tokens, previous)
            return corrected, corrected

        state, corrected = dynamics.scan_over_time(self, step, state.astype(grid_tokens.dtype),
                                                   grid_tokens)
        return corrected, state


class GridRec(_OnTheGrid):
    """Grid with a recurrence: frame t's grid tokens cross-attend into the corrected tokens
    of frame t−1. The decoder reconstructs frame t from the grid tokens g_t, as in the paper
    (Appendix C.3.2); with `config.grid_rec_decode_corrected` from the corrected tokens c_t."""

    def __init__(self, config: configs.ModelConfig, *, rngs: nnx.Rngs, dtype=None,
                 param_dtype=jnp.float32, layers: configs.TransformerConfig | None = None):
        super().__init__(config, rngs=rngs, dtype=dtype, param_dtype=param_dtype, layers=layers)
        self.recurrence = GridRecurrence(config, rngs=rngs, dtype=self.dtype,
                                         param_dtype=param_dtype)

    def represent(self, frames, key=None, state=None) -> dict:
        """{"tokens": what the decoder reads (g_t; c_t with `grid_rec_decode_corrected`),
        "grid_tokens": g_t, "corrected_tokens": c_t, "state": c_{T−1} (to carry on)}."""
        grid_tokens = self.grid_tokens(frames)
        if state is None:
            state = self.recurrence.initial_state(key, grid_tokens.shape[0],
                                                  grid_tokens.shape[2])
        corrected, last = self.recurrence.unroll(grid_tokens, state)
        decoded = corrected if self.config.grid_rec_decode_corrected else grid_tokens
        return {"tokens": decoded, "grid_tokens": grid_tokens, "corrected_tokens": corrected,
                "state": last}

    def readout_tokens(self, frames, key) -> jnp.ndarray:
        """What readouts read: [g_t, c_t] along the token axis, [B, T, 2·h·w, D] (as MooG's
        [z_p, z_c]); `key` draws the initial state."""
        out = self.represent(frames, key)
        return jnp.concatenate([out["grid_tokens"], out["corrected_tokens"]], axis=2)

    def _needs_key(self, state) -> bool:
        return state is None

    def _check_state(self, state, batch: int, num_tokens: int) -> None:
        if state is None:
            return
        width = self.config.token_dim
        if state.ndim != 3 or state.shape[0] != batch or state.shape[2] != width:
            raise ValueError(f"GridRec: the carried state must be [B, N, D] = [{batch}, "
                             f"{num_tokens}, {width}], got shape {state.shape}")


# chapters/10_on_the_grid.py, cell 19
def build_model(kind: str, config: configs.ModelConfig, *, rngs: nnx.Rngs, dtype=None):
    """MooG ("moog"), Grid ("grid") or Grid Rec. ("grid_rec") for `config`."""
    classes = {"moog": MooG, "grid": Grid, "grid_rec": GridRec}
    if kind not in classes:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}")
    return classes[kind](config, rngs=rngs, dtype=dtype)


# chapters/10_on_the_grid.py, cell 24
def count_parameters(module) -> int:
    """Number of trainable numbers in `module` (works on abstract `nnx.eval_shape` modules)."""
    return sum(math.prod(p.shape) for p in jax.tree.leaves(nnx.state(module, nnx.Param)))


def num_tokens(kind: str, config: configs.Config) -> int:
    """Tokens per frame the decoder reads: K for MooG, h·w for the grid models."""
    if kind == "moog":
        return config.model.num_tokens
    side = config.data.resolution // encoder.encoder_stride(config.model)
    return side * side


def capacity_table(presets=("tiny", "cpu", "paper")) -> list[dict]:
    """Parameters and tokens of the three models at each preset, counted abstractly."""
    rows = []
    for preset in presets:
        config = configs.get(preset)
        for kind in MODEL_KINDS:
            abstract = nnx.eval_shape(lambda k=kind, m=config.model: build_model(
                k, m, rngs=nnx.Rngs(0)))
            readout_tokens = num_tokens(kind, config) * (1 if kind == "grid" else 2)
            rows.append({"preset": preset, "kind": kind, "parameters": count_parameters(abstract),
                         "tokens": num_tokens(kind, config), "readout_tokens": readout_tokens})
    return rows


# chapters/10_on_the_grid.py, cell 27
BASELINE_FILE = "baseline.json"


def run_kind(workdir) -> str:
    """The model kind of the run in `workdir`: "grid" or "grid_rec" if it has a
    baseline.json, else "moog"."""
    path = Path(workdir) / BASELINE_FILE
    return json.loads(path.read_text())["kind"] if path.exists() else "moog"


def run_decodes_corrected(workdir) -> bool:
    """Whether the decoder of the Grid Rec. run in `workdir` reads c_t, as its
    baseline.json records (runs written before the switch existed did)."""
    record = json.loads((Path(workdir) / BASELINE_FILE).read_text())
    return bool(record.get("grid_rec_decode_corrected", True))


def train_baseline(config: configs.Config, workdir, kind: str, *, steps: int | None = None,
                   minutes: float | None = None, resume: bool = True, train_source=None,
                   eval_source=None, eval_sources=None, progress: bool = True) -> dict:
    """Pretrain the model `kind` (MooG or a baseline) with `train.fit` and
    `optimization.pretraining_loss`; returns the last train and eval records (`eval_sources`:
    as in `train.fit`; `{}` evaluates nothing). `minutes`: train for that long instead of
    `config.train.steps` (chapter 06a's `budget_steps`, timed on this model's own step)."""
    if minutes is not None and steps is not None:
        raise ValueError("give a number of steps or a budget in minutes, not both")
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}")
    workdir = Path(workdir)
    checkpoints = workdir / "checkpoints"
    if checkpoints.exists() and any(checkpoints.iterdir()) and run_kind(workdir) != kind:
        raise ValueError(f"{workdir} holds a {MODEL_NAMES[run_kind(workdir)]} run; train "
                         f"{MODEL_NAMES[kind]} in another workdir")
    decode_corrected = config.model.grid_rec_decode_corrected
    if (kind == "grid_rec" and checkpoints.exists() and any(checkpoints.iterdir())
            and run_decodes_corrected(workdir) != decode_corrected):
        raise ValueError(f"{workdir} holds a Grid Rec. run whose decoder reads "
                         f"{'c_t' if not decode_corrected else 'g_t'}; set model."
                         f"grid_rec_decode_corrected={not decode_corrected} or use another workdir")
    workdir.mkdir(parents=True, exist_ok=True)
    if kind != "moog":
        record = {"kind": kind}
        if kind == "grid_rec":
            record["grid_rec_decode_corrected"] = decode_corrected
        (workdir / BASELINE_FILE).write_text(json.dumps(record) + "\n")
    net = build_model(kind, config.model, rngs=nnx.Rngs(config.train.seed))
    if minutes is not None:
        if train_source is None:
            train_source, eval_source = train.make_sources(config, progress=progress)
        total = train.budget_steps(config, net, optimization.make_optimizer(config.train),
                                   optimization.pretraining_loss, minutes,
                                   train_source=train_source,
                                   start=train.last_step(workdir) if resume else 0)
        config = with_steps(config, total)
    return train.fit(config, workdir, net, optimization.make_optimizer(config.train),
                     optimization.pretraining_loss, steps=steps, resume=resume,
                     train_source=train_source, eval_source=eval_source,
                     eval_sources=eval_sources, progress=progress,
                     desc=f"pretraining {MODEL_NAMES[kind]}")


def with_steps(config: configs.Config, steps: int | None = None,
               readout_steps: int | None = None) -> configs.Config:
    """`config` with `steps` pretraining and `readout_steps` readout steps; the
    schedules (warm-up at most a tenth of the run, cosine decay) follow them."""

    def shorten(t: configs.TrainConfig, n: int | None) -> configs.TrainConfig:
        if n is None:
            return t
        if n < 1:
            raise ValueError(f"steps must be >= 1, got {n}")
        return dataclasses.replace(t, steps=n, warmup_steps=min(t.warmup_steps, max(n // 10, 1)),
                                   eval_every=min(t.eval_every, n),
                                   checkpoint_every=min(t.checkpoint_every, n))

    readout = dataclasses.replace(config.readout, train=shorten(config.readout.train,
                                                                readout_steps))
    return dataclasses.replace(config, train=shorten(config.train, steps), readout=readout)


def load_baseline(workdir, config: configs.Config | None = None):
    """(model, config) of the newest readable checkpoint of a run of any kind (None if none).
    A Grid Rec. run is rebuilt with the decoder input it was trained with."""
    workdir = Path(workdir)
    config = runs.read_config(workdir) if config is None else config
    kind = run_kind(workdir)
    if kind == "grid_rec":
        config = dataclasses.replace(config, model=dataclasses.replace(
            config.model, grid_rec_decode_corrected=run_decodes_corrected(workdir)))
    net = build_model(kind, config.model, rngs=nnx.Rngs(0))
    restored = train.restore_model(net, optimization.make_optimizer(config.train),
                                   workdir / "checkpoints", config.train.keep_checkpoints)
    return None if restored is None else (restored, config)


# chapters/10_on_the_grid.py, cell 31
def token_following_sums(attention, target_points, occluded, point_valid, *, height: int,
                         width: int, first_frame: int = 1) -> dict:
    """The sums behind `following_score` for one batch.

    attention [B, T, h', w', K] (the decoder's, over layers and heads, zero
    offsets); target_points [B, N, T, 2] raster (x, y); occluded [B, N, T];
    point_valid [B, N]; frames H×W. Frame pairs (t, t+1) with t >= first_frame.
    """
    batch, num_frames, h, w, _ = attention.shape
    if target_points.shape[:1] + target_points.shape[2:] != (batch, num_frames, 2):
        raise ValueError(f"target_points must be [B, N, T, 2] = [{batch}, N, {num_frames}, 2] "
                         f"to match the attention {attention.shape}, got {target_points.shape}")
    weights = attention.astype(jnp.float32)
    step_y, step_x = height // h, width // w
    ys = step_y * jnp.arange(h) + step_y // 2 + 0.5  # centres of the decoded pixels
    xs = step_x * jnp.arange(w) + step_x // 2 + 0.5
    mass = weights.sum(axis=(2, 3))  # [B, T, K]
    safe = jnp.maximum(mass, 1e-12)
    centroid = jnp.stack([jnp.einsum("bthwk,w->btk", weights, xs) / safe,
                          jnp.einsum("bthwk,h->btk", weights, ys) / safe], -1)  # (x, y)
    points = jnp.asarray(target_points, jnp.float32)
    rows = jnp.clip(jnp.floor(points[..., 1] / step_y), 0, h - 1).astype(jnp.int32)  # [B, N, T]
    cols = jnp.clip(jnp.floor(points[..., 0] / step_x), 0, w - 1).astype(jnp.int32)
    at_points = weights[jnp.arange(batch)[:, None, None], jnp.arange(num_frames)[None, None],
                        rows, cols]  # [B, N, T, K]
    inside = ((points >= 0) & (points < jnp.array([width, height], jnp.float32))).all(-1)
    seen = ~jnp.asarray(occluded, bool) & jnp.asarray(point_valid, bool)[..., None] & inside
    pair = (seen[..., :-1] & seen[..., 1:]).astype(jnp.float32)  # [B, N, T-1]
    moved = points[:, :, 1:] - points[:, :, :-1]  # [B, N, T-1, 2]
    footprint = at_points[:, :, :-1] * pair[..., None]  # [B, N, T-1, K]
    cover = footprint.sum(axis=1)  # [B, T-1, K]
    content = jnp.einsum("bntk,bntc->btkc", footprint, moved) / jnp.maximum(cover, 1e-12)[
        ..., None]
    token = centroid[:, 1:] - centroid[:, :-1]  # [B, T-1, K, 2]
    counted = (jnp.arange(num_frames - 1) >= first_frame)[None, :, None] & (cover > 0)
    omega = jnp.where(counted, mass[:, :-1] / (h * w), 0.0)
    return {"error": jnp.sum(omega * jnp.sum(jnp.square(token - content), -1)),
            "content": jnp.sum(omega * jnp.sum(jnp.square(content), -1)),
            "token_speed": jnp.sum(omega * jnp.linalg.norm(token, axis=-1)),
            "content_speed": jnp.sum(omega * jnp.linalg.norm(content, axis=-1)),
            "weight": jnp.sum(omega)}


def following_score(sums: dict) -> dict:
    """F = 1 − Σω|δ − u|² / Σω|u|², and the mean token and content speeds (px/frame)."""
    content = float(sums["content"])
    weight = max(float(sums["weight"]), 1e-12)
    return {"following": 1.0 - float(sums["error"]) / content if content > 0 else float("nan"),
            "token_speed": float(sums["token_speed"]) / weight,
            "content_speed": float(sums["content_speed"]) / weight}


@functools.partial(nnx.jit, static_argnames="first_frame")
def _following_scores(m, batch, key, first_frame: int):
    """One batch's `token_following_sums` and frame scores (compiled once per shape)."""
    frames = optimization.video_batch(batch)
    out = m(frames, key=key, training=False, return_attention=True)
    sums = token_following_sums(out["attention"], batch["target_points"], batch["occluded"],
                                batch["point_valid"], height=frames.shape[2],
                                width=frames.shape[3], first_frame=first_frame)
    weights = out["attention"][:, first_frame:].astype(jnp.float32)
    entropy = -jnp.sum(weights * jnp.log(jnp.maximum(weights, 1e-12)), axis=-1).mean()
    sharpness = 1.0 - entropy / jnp.log(weights.shape[-1])
    return sums, dict(loss=out["loss"], sharpness=sharpness,
                      cross_clip_ari=cross_clip_agreement(out["attention"], first_frame),
                      **optimization.frame_metrics(out, frames))


def token_following(net, batches, *, seed: int = 0, first_frame: int = 1) -> dict:
    """Held-out scores of `net` (any of the three models) in one pass over `batches`
    (with "video", "target_points", "occluded", "point_valid"): `following_score`,
    and chapter 06's loss, PSNR and copy-the-last-frame PSNR (S = 4, frames 1 … T−1),
    the decoder attention's sharpness (chapter 11's `attention_sharpness`, the same
    frames: 1 − mean entropy / log K) and `cross_clip_agreement` (needs ≥ 2 clips a batch)."""
    keys = ("video", "target_points", "occluded", "point_valid")
    totals, frame_scores = None, []
    for batch in batches:
        sums, metrics = jax.device_get(_following_scores(
            net, {k: batch[k] for k in keys}, jax.random.key(seed), first_frame=first_frame))
        totals = sums if totals is None else jax.tree.map(np.add, totals, sums)
        frame_scores.append(metrics)
    if totals is None:
        raise ValueError("token_following: no batches")
    means = {k: float(np.mean([m[k] for m in frame_scores])) for k in frame_scores[0]}
    return {**following_score(totals), **means}


# chapters/10_on_the_grid.py, cell 35
def segmentation_attention(segmentations, stride: int, tiles: int = 1) -> np.ndarray:
    """Perfect binding as one-hot attention [B, T, h', w', K] on the decoded grid (every
    `stride`-th pixel from `stride // 2`, the zero-offset evaluation grid): object o
    (segmentation 1 … O) is token o − 1; background pixels (0) belong to one of
    tiles × tiles still tiles (tokens O …). segmentations [B, T, H, W(, 1)]."""
    seg = np.asarray(segmentations)
    seg = seg[..., 0] if seg.ndim == 5 else seg
    seg = seg[:, :, stride // 2::stride, stride // 2::stride].astype(np.int64)
    h, w = seg.shape[2:]
    ys, xs = np.mgrid[:h, :w]
    num_objects = int(seg.max())
    tile = num_objects + (ys * tiles // h) * tiles + xs * tiles // w
    return np.eye(num_objects + tiles * tiles, dtype=np.float32)[np.where(seg > 0, seg - 1, tile)]


def binding_ceiling(batches, stride: int, tiles: int = 1, first_frame: int = 1) -> dict:
    """`following_score` of `segmentation_attention` over `batches` (each with "video",
    "segmentations", "target_points", "occluded", "point_valid"): the F of perfect binding."""
    totals = None
    for batch in batches:
        height, width = batch["video"].shape[2:4]
        sums = jax.device_get(token_following_sums(
            jnp.asarray(segmentation_attention(batch["segmentations"], stride, tiles)),
            batch["target_points"], batch["occluded"], batch["point_valid"], height=height,
            width=width, first_frame=first_frame))
        totals = sums if totals is None else jax.tree.map(np.add, totals, sums)
    if totals is None:
        raise ValueError("binding_ceiling: no batches")
    return following_score(totals)


# chapters/10_on_the_grid.py, cell 39
def adjusted_rand_index(labels_a, labels_b, num_labels: int) -> jnp.ndarray:
    """ARI of two labelings [P] (integers in [0, num_labels)) of the same P items."""
    table = jax.nn.one_hot(labels_a, num_labels).T @ jax.nn.one_hot(labels_b, num_labels)
    pairs = lambda n: n * (n - 1) / 2  # noqa: E731
    index = pairs(table).sum()
    rows, cols = pairs(table.sum(1)).sum(), pairs(table.sum(0)).sum()
    expected = rows * cols / pairs(table.sum())
    spread = (rows + cols) / 2 - expected
    return jnp.where(spread > 0, (index - expected) / jnp.where(spread > 0, spread, 1.0), 1.0)


def cross_clip_agreement(attention, first_frame: int = 1) -> jnp.ndarray:
    """Mean ARI between the argmax-token maps of every two clips of a batch at the same
    frame (frames ≥ first_frame): near 1, a content-blind partition; near 0, chosen
    by content. attention [B, T, h', w', K]; NaN for a single clip."""
    batch, _, _, _, num_tokens = attention.shape
    ids = jnp.argmax(attention[:, first_frame:], axis=-1)
    ids = ids.reshape(batch, ids.shape[1], -1)  # [B, T', P]
    first, second = np.triu_indices(batch, 1)
    per_frame = jax.vmap(jax.vmap(adjusted_rand_index, (0, 0, None)), (0, 0, None))
    return jnp.mean(per_frame(ids[first], ids[second], num_tokens))


# chapters/10_on_the_grid.py, cell 43
def scene_motion(source, num_clips: int = 8) -> float:
    """Mean displacement (pixels per frame) of tracked points visible in consecutive frames."""
    speeds = []
    for i in range(min(num_clips, len(source))):
        clip = source[i]
        seen = ~clip["occluded"] & clip["point_valid"][:, None]
        both = seen[:, 1:] & seen[:, :-1]
        step = np.linalg.norm(np.diff(clip["target_points"], axis=1), axis=-1)
        speeds.append(step[both])
    return float(np.concatenate(speeds).mean())
