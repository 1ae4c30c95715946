"""The paper's on-the-grid baselines, built from MooG's parts.

`Grid` (an auto-encoder: each frame's h·w grid tokens through a transformer,
decoded) and `GridRec` (the same tokens with a recurrent memory,
`GridRecurrence`) share MooG's interface; `build_model` makes any of the three
kinds (`MODEL_KINDS`), `grid_transformer_config`, `count_parameters`,
`num_tokens` and `capacity_table` size them alike, and `train_baseline` /
`load_baseline` train and reload one in a run folder.

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
    "with_steps",
    "train_baseline",
    "load_baseline",
]


import dataclasses
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, ArrayLike, Float, Int

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
from moog_lib.shapes import typed

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
        self.dtype = attention.resolve_dtype(dtype, config.compute_dtype)
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

    @typed
    def __call__(self, frames: Float[ArrayLike, "B T H W 3"], *, key: jax.Array | None = None,
                 state: Float[ArrayLike, "B N D"] | None = None, training: bool = False,
                 subsample: int | None = None, offsets: Int[ArrayLike, "B T 2"] | None = None,
                 return_attention: bool = False, average_attention: bool = True) -> dict:
        """Run the model on a clip `frames` with values in [0, 1] (see `model.MooG`)."""
        cfg, name = self.config, type(self).__name__
        if subsample is None:
            subsample = cfg.train_subsample if training else cfg.eval_subsample
        encoder.check_frames(frames, stride=self.encoder.stride)
        batch, num_frames, height, width, _ = frames.shape
        decoder.check_subsample(height, width, subsample)
        self._check_state(state)
        if key is None and ((offsets is None and training) or self._needs_key(state)):
            raise ValueError(f"{name}: pass key=jax.random.key(...) for the random offsets "
                             "(training) and the initial state (Grid Rec.)")
        if offsets is not None:
            check_offsets(offsets, subsample)
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

    def _check_state(self, state) -> None:
        if state is not None:
            raise ValueError(f"{type(self).__name__} has no recurrent state; do not pass state=")


# chapters/10_on_the_grid.py, cell 9
class Grid(_OnTheGrid):
    """The on-the-grid auto-encoder: frame t → E → G → decoder → frame t (no state)."""

    def represent(self, frames, key=None, state=None) -> dict:
        """{"tokens": g_t}: what the decoder reads, [B, T, h·w, D]."""
        return {"tokens": self.grid_tokens(frames)}

    def readout_tokens(self, frames, key=None) -> jnp.ndarray:
        """What readouts read: the grid tokens g_t of every frame, [B, T, h·w, D]."""
        return self.grid_tokens(frames)


# chapters/10_on_the_grid.py, cell 15
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
        self.correction_norm = attention.scale_only_norm(width, config.correction_norm_eps, rngs,
                                                         dtype, param_dtype)

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

    @typed
    def correct(self, grid_tokens: Float[ArrayLike, "B N D"],
                previous: Float[ArrayLike, "B N_prev D"]) -> Float[Array, "B N D"]:
        """c_t from g_t and c_{t−1}."""
        return self.correction_norm(grid_tokens + self.corrector(grid_tokens, previous))

    @typed
    def unroll(self, grid_tokens: Float[ArrayLike, "B T N D"],
               state: Float[ArrayLike, "B N_prev D"],
               ) -> tuple[Float[Array, "B T N D"], Float[Array, "B N D"]]:
        """Scan over frames from c_{−1} = `state`: (c of every frame, c_{T−1})."""
        if grid_tokens.shape[-1] != self.token_dim:
            raise ValueError(f"GridRecurrence: the tokens must have the module's width "
                             f"D = {self.token_dim} (config.token_dim), got {grid_tokens.shape[-1]}")

        def step(module, previous, tokens):
            corrected = module.correct(tokens, previous)
            return corrected, corrected

        state, corrected = dynamics.scan_over_time(self, step, state.astype(grid_tokens.dtype),
                                                   grid_tokens)
        return corrected, state


# chapters/10_on_the_grid.py, cell 17
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

    def _check_state(self, state) -> None:
        """The signature has checked the carried state's shape [B, N, D]; D is the config's."""
        width = self.config.token_dim
        if state is not None and state.shape[2] != width:
            raise ValueError(f"GridRec: the carried state's tokens must be D = {width} wide "
                             f"(config.token_dim), got {state.shape[2]}")


# chapters/10_on_the_grid.py, cell 23
def build_model(kind: str, config: configs.ModelConfig, *, rngs: nnx.Rngs, dtype=None):
    """MooG ("moog"), Grid ("grid") or Grid Rec. ("grid_rec") for `config`."""
    classes = {"moog": MooG, "grid": Grid, "grid_rec": GridRec}
    if kind not in classes:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}")
    return classes[kind](config, rngs=rngs, dtype=dtype)


# chapters/10_on_the_grid.py, cell 28
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


# chapters/10_on_the_grid.py, cell 31
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


# chapters/10_on_the_grid.py, cell 35
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


# chapters/10_on_the_grid.py, cell 37
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
