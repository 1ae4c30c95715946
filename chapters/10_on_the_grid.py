# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10 — On the grid: the paper's baselines
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/moog-tutorial/moog-tutorial/blob/main/notebooks/10_on_the_grid.ipynb)
#
# **What you will learn.** The paper's claim is comparative: tokens that are
# free to move *off* the grid make a better representation of a video than
# tokens tied to image positions. To test it you need the other side of the
# comparison. In this chapter you
#
# - build the paper's two on-the-grid baselines, **Grid** (an auto-encoder of
#   each frame) and **Grid Rec.** (the same, with a recurrence over time), out
#   of the encoder, transformer and decoder you already have;
# - give them MooG's interface, so the pretraining loop of chapter 06a and the
#   readouts of chapters 07–09 run on them unchanged;
# - match their capacity to MooG's and count parameters and tokens at every
#   preset without allocating anything;
# - train a baseline, save it and load it back as the right model.
#
# Chapter 10a then measures whether tokens follow the scene and runs the
# comparison itself.
#
# **Prerequisites.** Chapters 03–04 (the model), 06–06b (pretraining) and 07–09
# (readouts).
#
# **Runtime.**
#
# | preset | hardware | this chapter |
# |---|---|---|
# | `tiny` | CI, 2 CPU cores | 58 s (nbval in `make test` on a clean clone, two workers, nothing else running; 2026-12-03) |
# | `cpu` | 2 CPU cores | the chapter as in CI, at the `cpu` sizes |
# | `colab` | Colab TPU v5e-1 | estimate ≈ 12 min: ≈ 12 compilations (assumed ≈ 1 min each) of the three paper-size models' forward, gradient and training programs on one or two clips, 2 training steps; not measured on a TPU |

# %%
# Setup, the same in every chapter (chapter 00, section 5, explains it). On Colab:
# install this repository, keeping the jax, jaxlib, libtpu and flax Colab ships.
# Then `notebook.setup()` sets XLA flags before JAX starts, picks the preset
# (MOOG_PRESET; `colab` on a TPU, else `tiny`) and prints what runs.
import subprocess
import sys

REPOSITORY = "https://github.com/moog-tutorial/moog-tutorial"
if "google.colab" in sys.modules:
    pip = f"{sys.executable} -m pip"
    subprocess.run(f"{pip} freeze | grep -iE '^(jax|jaxlib|libtpu|flax)==' > /tmp/keep.txt && "
                   f"{pip} install -q -c /tmp/keep.txt 'moog-tutorial[video] @ git+{REPOSITORY}@main'",
                   shell=True, check=True)
from moog_lib import configs, notebook

PRESET = notebook.setup()

# %%
#| default_exp baselines

# %% [markdown]
# ## 1. On the grid and off it
#
# A vision transformer cuts a frame into patches and keeps one token per
# patch: token `(i, j)` describes whatever is at image position `(i, j)`. When
# the camera pans, the content moves *across* the tokens, and what a token
# describes changes from frame to frame. MooG's `K` tokens have no image
# position; the decoder finds each one by cross-attention, so a token can stay
# with a piece of the scene as it moves. The paper compares MooG with two
# models that keep everything else and put the tokens back on the grid
# (its Section 4):
#
# | model | tokens of frame t | decoder reads | trained to | readouts read |
# |---|---|---|---|---|
# | MooG | `K` tokens carried over time: `z_p` (predicted), `z_c` (corrected) | `z_p` | predict frame t (it has not seen it) | `[z_p, z_c]`, 2K |
# | Grid | `g_t = G(E(x_t))`: the encoder's `h·w` grid tokens through a transformer `G` | `g_t` | **reconstruct** frame t (an auto-encoder) | `g_t`, h·w |
# | Grid Rec. | `g_t` as in Grid, then corrected by the past: `c_t = LN(g_t + C(g_t, kv = c_{t−1}))` | `g_t` (a switch: `c_t`) | reconstruct frame t | `[g_t, c_t]`, 2·h·w |
#
# `E` is chapter 03's encoder, `G` a self-attention `attention.Transformer`
# (paper: 3 layers, 8 heads × 64, MLP 2048, width 512), `C` MooG's corrector
# design and the decoder is chapter 04's, unchanged. Grid has no state at all:
# it cannot predict, so it is trained on the frame it is given — keep that in
# mind when its PSNR looks good: it is a reconstruction, MooG's a prediction.
#
# **What Grid Rec.'s decoder reads.** The paper says it (Appendix C.3.2):
#
# > "The decoder reads from the output of the encoder (the tokens initialized
# > on-the-grid) as is the case for the Grid baseline, while the other readout
# > modules have access to the corrected tokens as well."
#
# So by default Grid Rec.'s decoder reads `g_t`, as Grid's does, and its
# readouts read `[g_t, c_t]`. Read literally, this gives the recurrence no
# gradient at all from the pretraining loss: the reconstruction of frame t
# depends on `g_t` only. Pretraining then trains the encoder, the grid
# transformer and the decoder, and leaves the recurrence at its random
# initialisation (§4 measures it: its gradient is exactly zero). Only a readout
# trained end to end trains the recurrence, through the readout's loss; a frozen
# readout reads `c_t` from an untrained recurrence. Why one might want the
# other choice: with `ModelConfig.grid_rec_decode_corrected=True` (off by
# default) the decoder reads `c_t`, the pretraining loss trains the recurrence
# too, and frozen readouts read a trained memory.
#
# One detail the paper's short description leaves open, decided here:
#
# - In Grid Rec. the queries of the recurrence are frame t's grid tokens and
#   the keys/values the corrected tokens of frame t−1 — MooG's corrector with
#   the roles turned round, so the tokens stay on the grid of frame t while
#   reading the past. Token `i` of `c_t` starts from grid cell `i` of frame t at
#   every frame; before frame 0 the past is MooG's initial state,
#   `LN(1e-4 · N(0, I))` with one token per grid cell.

# %%
#| export
"""The paper's on-the-grid baselines, built from MooG's parts.

`Grid` (an auto-encoder: each frame's h·w grid tokens through a transformer,
decoded) and `GridRec` (the same tokens with a recurrent memory,
`GridRecurrence`) share MooG's interface; `build_model` makes any of the three
kinds (`MODEL_KINDS`), `grid_transformer_config`, `count_parameters`,
`num_tokens` and `capacity_table` size them alike, and `train_baseline` /
`load_baseline` train and reload one in a run folder.
"""
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


# %% [markdown]
# ## 2. Grid: an auto-encoder on the grid
#
# Both baselines share their front and back: chapter 03's `Encoder` (all
# frames in one call), a self-attention `attention.Transformer` over the
# `h·w` tokens of each frame, chapter 04's `Decoder`. The shared part also
# does what `model.MooG.__call__` does around the tokens — check the input,
# draw the subsampling offsets (training: `S = 8`, random; evaluation:
# `S = 4`, zero), decode all frames in one batched call, compute the loss —
# and returns the same dict (`prediction`, `target`, `loss`, `offsets`, and
# with `return_attention=True` the decoder attention `[B, T, h', w', N]`,
# averaged over layers and heads). Only `represent`, which turns frames into
# the tokens to decode, differs between the two models.
#
# Parameter names: `encoder`, `grid_transformer`, `decoder` (and in Grid Rec.
# `recurrence.corrector`, `recurrence.correction_norm`), the first and last
# exactly as in `model.MooG`.

# %%
#| export
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



# %% [markdown]
# Grid is the shared part with `represent` filled in: the grid tokens, nothing
# else. What readouts read is the same `g_t`.

# %%
#| export
class Grid(_OnTheGrid):
    """The on-the-grid auto-encoder: frame t → E → G → decoder → frame t (no state)."""

    def represent(self, frames, key=None, state=None) -> dict:
        """{"tokens": g_t}: what the decoder reads, [B, T, h·w, D]."""
        return {"tokens": self.grid_tokens(frames)}

    def readout_tokens(self, frames, key=None) -> jnp.ndarray:
        """What readouts read: the grid tokens g_t of every frame, [B, T, h·w, D]."""
        return self.grid_tokens(frames)


# %% [markdown]
# The current preset's Grid on a random clip. Frames are 32×32 on `tiny` and the
# encoder's stride is 4, so there are `8 × 8 = 64` grid tokens per frame
# (MooG has `K = 16` on `tiny`).

# %%
import numpy as np

config = configs.get(PRESET)
mc = config.model
resolution, num_frames = config.data.resolution, config.data.num_frames
clip = jax.random.uniform(jax.random.key(0), (2, num_frames, resolution, resolution, 3))
grid = Grid(mc, rngs=nnx.Rngs(0))
side = resolution // encoder.encoder_stride(mc)
run = nnx.jit(lambda m, x, key: m(x, key=key, training=True, return_attention=True))
out = run(grid, clip, jax.random.key(1))
s = mc.train_subsample
assert out["prediction"].shape == out["target"].shape == (2, num_frames, resolution // s,
                                                          resolution // s, 3)
assert out["tokens"].shape == (2, num_frames, side * side, mc.token_dim)
assert out["attention"].shape == (2, num_frames, resolution // s, resolution // s, side * side)
np.testing.assert_allclose(out["attention"].sum(-1), 1.0, atol=1e-5)  # a softmax over tokens
print({k: tuple(v.shape) for k, v in out.items()})

# %% [markdown]
# No state means no memory: the tokens of frame t depend on frame t alone.
# Replace all the later frames with noise and frame 0's tokens do not move.

# %%
tokens_of = nnx.jit(lambda m, x: m.readout_tokens(x))
other = clip.at[:, 1:].set(jax.random.uniform(jax.random.key(2), clip[:, 1:].shape))
np.testing.assert_allclose(tokens_of(grid, clip)[:, 0], tokens_of(grid, other)[:, 0], atol=1e-6)
print("Grid: frame 0's tokens ignore frames 1 …", num_frames - 1)

# %% [markdown]
# ## 3. Grid Rec.: the same tokens, with a memory
#
# The recurrence is MooG's corrector design (self-attention ∥ cross-attention,
# chapter 03) and its correction LayerNorm, as a small module of its own:
#
# $$c_t = \mathrm{LN}\big(g_t + C(g_t,\ kv = c_{t-1})\big), \qquad
#   c_{-1} = \mathrm{LN}\big(10^{-4}\,\varepsilon\big).$$
#
# It runs as a `jax.lax.scan` over frames, splitting the module into graph and
# arrays around the scan exactly as `PredictCorrect.unroll` does. The encoder
# and the grid transformer do not depend on the past, so — as in MooG — they
# run on all frames in one batched call before the scan.

# %%
#| export
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


# %% [markdown]
# Grid Rec. is Grid plus that module: `represent` runs the recurrence after the
# grid transformer and returns both `g_t` and `c_t`, with the last corrected
# tokens as the state to carry into the next chunk of a clip.

# %%
#| export
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


# %% [markdown]
# Three checks of the recurrence: frame t's tokens depend on frame t−1 (change
# it and they change), not on frame t+1 (the scan is causal), and two chunks
# carrying `state` give the same tokens as one unroll.

# %%
grid_rec = GridRec(mc, rngs=nnx.Rngs(0))
key = jax.random.key(3)
rec_tokens = nnx.jit(lambda m, x, k: m.readout_tokens(x, k))
n = side * side
base = rec_tokens(grid_rec, clip, key)
assert base.shape == (2, num_frames, 2 * n, mc.token_dim)
past_changed = rec_tokens(grid_rec, clip.at[:, 1].set(1.0 - clip[:, 1]), key)
future_changed = rec_tokens(grid_rec, clip.at[:, 3].set(1.0 - clip[:, 3]), key)
corrected = slice(n, 2 * n)  # the c_t half
frame2_shift = float(jnp.abs(past_changed[:, 2, corrected] - base[:, 2, corrected]).max())
assert frame2_shift > 1e-3  # frame 1 reaches frame 2 through the recurrence
np.testing.assert_allclose(future_changed[:, 2], base[:, 2], atol=1e-6)  # frame 3 does not
np.testing.assert_allclose(past_changed[:, 2, :n], base[:, 2, :n], atol=1e-6)  # g_2 is per frame

run_rec = nnx.jit(lambda m, x, key, state: m(x, key=key, state=state))
state0 = grid_rec.recurrence.initial_state(jax.random.key(4), 2, n)
whole = run_rec(grid_rec, clip, None, state0)
first = run_rec(grid_rec, clip[:, :2], None, state0)
second = run_rec(grid_rec, clip[:, 2:], None, first["state"])
np.testing.assert_allclose(whole["corrected_tokens"], jnp.concatenate(
    [first["corrected_tokens"], second["corrected_tokens"]], 1), atol=1e-5)
print(f"frame 2's corrected tokens move by up to {frame2_shift:.3f} when frame 1 changes, "
      "not at all when frame 3 does; chunks carry the state")

# %% [markdown]
# Bad input is refused as MooG refuses it (a wrong shape or dtype by the
# model's signature, as MooG's in chapter 04), plus the baselines' own mistakes:

# %%
import jaxtyping

bad_calls = {
    "uint8 frames": (grid, dict(frames=(np.asarray(clip) * 255).astype(np.uint8))),
    "no batch axis": (grid, dict(frames=np.asarray(clip[0]))),
    "a state for Grid": (grid, dict(frames=clip, state=state0)),
    "no key for Grid Rec.": (grid_rec, dict(frames=clip)),
    "state of the wrong width": (grid_rec, dict(frames=clip, key=key,
                                                state=jnp.zeros((2, n, mc.token_dim + 1)))),
    "state of another batch": (grid_rec, dict(frames=clip, key=key, state=state0[:1])),
}
for what, (module, kwargs) in bad_calls.items():
    try:
        module(**kwargs)
    except jaxtyping.TypeCheckError as err:
        print(f"{what:25s} -> TypeCheckError:", " ".join(str(err).splitlines()[1:3]))
    except ValueError as err:
        print(f"{what:25s} -> ValueError: {err}")
    else:
        raise AssertionError(f"{what} was accepted")

# %% [markdown]
# ## 4. One interface for three models
#
# `build_model(kind, ...)` makes any of the three. They all take
# `model(frames, key=..., training=...)` and return `prediction`, `target`,
# `loss` and `offsets`, so chapter 06's `optimization.pretraining_loss` — which also
# scores the copy-the-last-frame baseline — trains and evaluates them as it is.
#
# For the readouts, a backbone may define `readout_tokens(frames, key)`, and
# chapter 07's `ReadoutModel.tokens` uses it when it exists (MooG has none and
# keeps its `[z_p, z_c]`). What each model offers its readouts is a choice
# worth stating:
#
# | model | readout tokens | why |
# |---|---|---|
# | MooG | `[z_p, z_c]`, 2K | the paper; the release's `states_concat` (`moog/modules.py`, `Moog`) |
# | Grid | `g_t`, h·w | its only representation |
# | Grid Rec. | `[g_t, c_t]`, 2·h·w | the paper (Appendix C.3.2: the readouts "have access to the corrected tokens as well"); the same pair as MooG: before and after the frame's tokens meet the past |

# %%
#| export
def build_model(kind: str, config: configs.ModelConfig, *, rngs: nnx.Rngs, dtype=None):
    """MooG ("moog"), Grid ("grid") or Grid Rec. ("grid_rec") for `config`."""
    classes = {"moog": MooG, "grid": Grid, "grid_rec": GridRec}
    if kind not in classes:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}")
    return classes[kind](config, rngs=rngs, dtype=dtype)


# %%
from moog_lib import data, readouts, render

batch = {"video": (np.asarray(clip) * 255).astype(np.uint8)}


@nnx.jit
def loss_and_readout_tokens(readout_model, batch, key):
    loss, metrics = optimization.pretraining_loss(readout_model.backbone, batch, key)
    return loss, metrics, readout_model.tokens(optimization.video_batch(batch), key)


for kind in MODEL_KINDS:
    net = build_model(kind, mc, rngs=nnx.Rngs(0))
    readout_model = readouts.ReadoutModel(net, nnx.Linear(1, 1, rngs=nnx.Rngs(0)), frozen=True)
    loss, metrics, read = loss_and_readout_tokens(readout_model, batch, jax.random.key(5))
    print(f"{MODEL_NAMES[kind]:9s} loss {float(loss):.3f} | PSNR {float(metrics['psnr']):.1f} dB "
          f"| readout tokens {tuple(read.shape)}")
    assert np.isfinite(float(loss)) and read.shape[:2] == (2, num_frames)
    assert read.shape[2] == {"moog": 2 * mc.num_tokens, "grid": n, "grid_rec": 2 * n}[kind]

# %% [markdown]
# What does pretraining train in Grid Rec.? §1 claimed that with the paper's
# decoder input the pretraining loss never reaches the recurrence. Measured: the
# largest gradient of chapter 06's loss over each part's parameters, for the
# paper's choice and for the switch; and, for the paper's choice, the gradient
# that reaches the recurrence from a readout trained end to end (a linear head
# on the readout tokens, a made-up loss). A frozen readout sends none: its
# tokens pass through a stop-gradient (chapter 07).

# %%
batch = {"video": batch["video"][:config.data.batch_size]}  # colab: one clip (~8 GiB a clip)
video = optimization.video_batch(batch)


def largest_gradients(loss_fn, module, within=None) -> dict:
    """max |∂loss/∂θ| over the parameters of each part of `module` (or of `module.within`)."""
    grads = nnx.jit(nnx.grad(loss_fn))(module)
    grads = grads if within is None else grads[within]
    return {part: max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads[part]))
            for part in grads}


def readout_loss(readout_model):
    return jnp.mean(jnp.square(readout_model.head(readout_model.tokens(video, jax.random.key(5)))))


pretraining_grads = {}
for decode_corrected in (False, True):
    variant = dataclasses.replace(mc, grid_rec_decode_corrected=decode_corrected)
    pretraining_grads[decode_corrected] = largest_gradients(
        lambda m: optimization.pretraining_loss(m, batch, jax.random.key(5))[0],
        GridRec(variant, rngs=nnx.Rngs(0)))
    print(f"decoder reads {'c_t' if decode_corrected else 'g_t'}: pretraining gradient "
          + ", ".join(f"{part} {g:.1e}" for part, g in pretraining_grads[decode_corrected].items()))
end_to_end = readouts.ReadoutModel(GridRec(mc, rngs=nnx.Rngs(0)),
                                   nnx.Linear(mc.token_dim, 1, rngs=nnx.Rngs(1)), frozen=False)
readout_grad = largest_gradients(readout_loss, end_to_end, within="backbone")["recurrence"]
print(f"decoder reads g_t: a readout trained end to end sends {readout_grad:.1e} to the recurrence")
assert pretraining_grads[False]["recurrence"] == 0.0  # the paper's choice: never trained
assert min(pretraining_grads[False][p] for p in ("encoder", "grid_transformer", "decoder")) > 0
assert min(pretraining_grads[True].values()) > 0  # the switch: every part is trained
assert readout_grad > 0

# %% [markdown]
# ## 5. Same capacity
#
# "Same capacity" here means: the same encoder and decoder, and a core built
# from MooG's own layer sizes (`grid_transformer_config`: the corrector's
# heads, q/k/v width and MLP at the predictor's depth — at the paper's sizes,
# exactly its 3 layers, 8 × 64, MLP 2048). Grid Rec. then has MooG's
# capacity: its grid transformer stands where MooG's predictor stands (at
# `tiny` and `cpu` the two have the very same sizes, so the counts are
# *equal*; at the paper's size the grid transformer's 8 heads are wider than
# the predictor's 4, +5 %). Grid has the grid transformer only, where MooG has
# predictor *and* corrector: it is the smaller model, by 16–38 % depending on
# the preset — the paper's design, kept as it is. MooG vs. Grid Rec. is the
# capacity-matched pair; Exercise 2 gives Grid more layers to match it too.
#
# The token counts differ too, and they matter: the grid has one token per
# encoder cell, `h·w`, while MooG's `K` is a free choice. At the paper's size
# both are 1024; at `cpu` (32² frames, stride 2) the grid has 256 tokens to
# MooG's 16 — sixteen times the resolution, and sixteen times the decoder's
# attention cost. Parameters and tokens at every preset, counted with
# `nnx.eval_shape` (nothing is allocated):

# %%
#| export
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


# %%
capacity = capacity_table()
print("| preset | model | parameters | vs MooG | tokens per frame | readout tokens |")
print("|---|---|---|---|---|---|")
moog_count = {r["preset"]: r["parameters"] for r in capacity if r["kind"] == "moog"}
for r in capacity:
    print(f"| {r['preset']} | {MODEL_NAMES[r['kind']]} | {r['parameters']:,} | "
          f"{r['parameters'] / moog_count[r['preset']] - 1:+.1%} | {r['tokens']} | "
          f"{r['readout_tokens']} |")
paper = {r["kind"]: r["parameters"] for r in capacity if r["preset"] == "paper"}
assert paper == {"moog": 34_726_787, "grid": 27_900_291, "grid_rec": 36_299_651}
for r in capacity:
    ratio = r["parameters"] / moog_count[r["preset"]]
    assert {"moog": ratio == 1, "grid": 0.6 < ratio < 0.9, "grid_rec": 1 <= ratio < 1.05}[
        r["kind"]], r

# %% [markdown]
# At the paper's size Grid has 80 % of MooG's parameters (it lacks the
# predictor's and corrector's 16.3 M and gains the grid transformer's 9.5 M)
# and Grid Rec. 105 %. These are the tolerances `tests/test_baselines.py` holds
# them to at every preset: Grid Rec. within 5 % of MooG, Grid between 60 % and
# 90 % of it.
#
# ## 6. Training and loading a baseline
#
# `train_baseline` is `train.fit` with `optimization.pretraining_loss`, as `train.train`
# is for MooG; `with_steps` shortens a config's schedules for a short run (the
# cosine then decays over the steps actually taken). The run directory gets
# one more file, `baseline.json`, naming the kind (and, for Grid Rec., what its
# decoder reads), so that `load_baseline` can rebuild the right model — and so that
# chapter 07's `check_backbone`, which loads MooG runs only, can refuse a
# baseline's run with a clear message instead of failing on its checkpoint.
# To train a readout on a baseline, load it and pass it as `backbone=` to
# `readouts.train_readout`, `readouts.evaluate_readout` or
# `boxes.readout_table`.

#
# First the two small pieces: the record in the run directory, and the shorter
# schedule.

# %%
#| export
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


# %% [markdown]
# A ten-step `cpu` run keeps the paper's schedule shape: the warm-up shrinks to
# a tenth of the run, evaluation and checkpoints fall inside it, and the
# readouts keep their own steps unless told.

# %%
cpu_short = with_steps(configs.get("cpu"), 10)
assert (cpu_short.train.steps, cpu_short.train.warmup_steps) == (10, 1)
assert cpu_short.train.eval_every <= 10 and cpu_short.train.checkpoint_every <= 10
assert cpu_short.readout == configs.get("cpu").readout
print({k: getattr(cpu_short.train, k)
       for k in ("steps", "warmup_steps", "eval_every", "checkpoint_every")})

# %% [markdown]
# `train_baseline` writes the record, builds the model with the run's seed and
# hands it to `train.fit`. It refuses a workdir that holds another kind of run
# (or a Grid Rec. run with the other decoder input), and with `minutes=` it
# times this model's own step to turn a budget into a step count.

# %%
#| export
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


# %% [markdown]
# `load_baseline` reads the record back and rebuilds the model before it
# restores the newest checkpoint.

# %%
#| export
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


# %% [markdown]
# Two steps of Grid Rec. on the session's preset (no held-out evaluation here:
# `eval_sources={}`), loaded back, and refused by the MooG-only loader.

# %%
import tempfile

scratch = Path(tempfile.mkdtemp())
short = with_steps(config, 2)
grid_rec_dir = scratch / "grid_rec"
record = train_baseline(short, grid_rec_dir, "grid_rec", eval_sources={}, progress=False)
loaded, loaded_config = load_baseline(grid_rec_dir)
assert isinstance(loaded, GridRec) and loaded_config == short and record["step"] == 2
assert run_kind(grid_rec_dir) == "grid_rec" and short.train.warmup_steps == 1
print("Grid Rec. after 2 steps: training loss", round(record["train"]["loss"], 4))
try:
    readouts.check_backbone(short, grid_rec_dir)
except ValueError as err:
    print("refused:", err)
    assert "on-the-grid baseline" in str(err)
else:
    raise AssertionError("check_backbone loaded a baseline")


# %% [markdown]
# ## Summary
#
# - **Grid** = encoder → self-attention transformer on the `h·w` grid tokens →
#   decoder, trained to reconstruct the frame it sees (an auto-encoder; no
#   state). **Grid Rec.** adds `c_t = LN(g_t + C(g_t, kv = c_{t−1}))`, scanned
#   over time. Its decoder reads `g_t`, as the paper says (Appendix C.3.2), so
#   pretraining leaves the recurrence untrained (its gradient is exactly zero)
#   and only end-to-end readouts train it; `grid_rec_decode_corrected=True`
#   decodes `c_t` instead.
# - Both are built from chapter 02–04 modules and answer MooG's call, so
#   `train.fit` with `optimization.pretraining_loss` trains them and the readouts of
#   chapters 07–09 run on their `readout_tokens` (`g_t`; `[g_t, c_t]`).
# - Capacity: the same encoder and decoder, a core sized from MooG's layers.
#   Paper: MooG 34,726,787, Grid 27,900,291 (−20 %), Grid Rec. 36,299,651
#   (+5 %) parameters; at `cpu` Grid Rec. equals MooG and Grid is 38 % smaller.
#   Tokens per frame: K = 1024 vs h·w = 1024 (at `cpu`: 64 vs 256).
# - `train_baseline` / `load_baseline` train and restore any of the three;
#   `baseline.json` in the run directory names the kind (and Grid Rec.'s decoder
#   input), and `with_steps` shortens the schedules for a short run.
#
# Chapter 10a puts the three models side by side: whether their tokens follow
# the scene, and the paper's comparison at laptop scale.
#
# ## Exercises
#
# 1. ★ Nothing in MooG's parameters depends on `K`. Give the `cpu` MooG as
#    many tokens as the grid (`K = h·w = 256`): check that the parameter count
#    is unchanged and compute by how much the decoder's cross-attention
#    (query–token pairs per frame at `S = 8`) grows.
# 2. ★★ Grid has 20 % fewer parameters than MooG at the paper's size. Find the
#    number of grid-transformer layers that brings it closest to MooG's
#    34,726,787, using `nnx.eval_shape` so nothing is allocated.
# 3. ★★★ §4 measured a zero gradient for Grid Rec.'s recurrence under the
#    paper's decoder input. Is the recurrence of §6's two-step run then
#    *bit for bit* at its initialisation? Rebuild the initial model (which seed
#    does `train_baseline` use?), compare every part of the trained model with
#    it, and explain the answer from the optimiser's update (chapter 06's
#    `make_optimizer`: Adam with Nesterov momentum). Would the release's AdamW
#    (`optimizer="adamw"`, weight decay `1e-4`) change the answer in principle,
#    and in float32? Apply one decay step `θ − lr · wd · θ` to the recurrence's
#    parameters in float32, at this preset's peak learning rate and at the
#    paper's, and count the numbers that change.

# %% [markdown]
# ### Solution 1

# %%
cpu = configs.get("cpu")
grid_side = cpu.data.resolution // encoder.encoder_stride(cpu.model)
wide = dataclasses.replace(cpu.model, num_tokens=grid_side**2)
counts = [count_parameters(nnx.eval_shape(lambda c=c: MooG(c, rngs=nnx.Rngs(0))))
          for c in (cpu.model, wide)]
queries = (cpu.data.resolution // cpu.model.train_subsample) ** 2
print(f"K = {cpu.model.num_tokens}: {counts[0]:,} parameters; K = {wide.num_tokens}: "
      f"{counts[1]:,}; decoder query–token pairs per frame {queries * cpu.model.num_tokens:,} "
      f"-> {queries * wide.num_tokens:,}")
assert counts[0] == counts[1] and wide.num_tokens == grid_side**2 > cpu.model.num_tokens

# %% [markdown]
# ### Solution 2

# %%
paper_model = configs.get("paper").model
target = 34_726_787
by_layers = {}
for layers in range(2, 8):
    spec = dataclasses.replace(grid_transformer_config(paper_model), num_layers=layers)
    by_layers[layers] = count_parameters(nnx.eval_shape(
        lambda s=spec: Grid(paper_model, rngs=nnx.Rngs(0), layers=s)))
best = min(by_layers, key=lambda k: abs(by_layers[k] - target))
for layers, count in by_layers.items():
    print(f"{layers} layers: {count:,} ({count / target - 1:+.1%})")
assert best == 5 and abs(by_layers[5] / target - 1) < 0.02
# Each layer of 8 × 64 heads and MLP 2048 at width 512 holds 3,149,952 parameters;
# 5 layers instead of 3 leave Grid 1.5 % below MooG.


# %% [markdown]
# ### Solution 3

# %%
initial = GridRec(short.model, rngs=nnx.Rngs(short.train.seed))  # train_baseline's seed
before, after = nnx.state(initial, nnx.Param), nnx.state(loaded, nnx.Param)
moved = {part: max(float(jnp.abs(a - b).max()) for a, b in zip(
    jax.tree.leaves(after[part]), jax.tree.leaves(before[part]), strict=True)) for part in after}
print("largest change of each part after 2 steps:",
      ", ".join(f"{part} {change:.1e}" for part, change in moved.items()))
assert moved["recurrence"] == 0.0  # bit for bit: m = v = 0, so m̂ / (√v̂ + ε) = 0
assert min(moved[p] for p in ("encoder", "grid_transformer", "decoder")) > 0
# Adam: a zero gradient keeps both moments at 0, and the update m̂ / (√v̂ + ε) is 0
# exactly (clipping by the global norm only scales gradients). AdamW adds
# −lr · wd · θ to every parameter whatever its gradient: in principle it moves the
# recurrence (towards 0). In float32, one step at the peak learning rate:
recurrence = [np.asarray(x, np.float32) for x in jax.tree.leaves(before["recurrence"])]


def moved_by_decay(peak_learning_rate: float) -> float:
    """Fraction of the recurrence's nonzero numbers that one AdamW decay step changes."""
    step = np.float32(peak_learning_rate * short.train.weight_decay)
    changed = [((x - step * x) != x)[x != 0] for x in recurrence]
    return float(np.mean(np.concatenate(changed)))


for lr in (short.train.peak_learning_rate, configs.get("paper").train.peak_learning_rate):
    print(f"AdamW at peak lr {lr:.0e}: lr · wd = {lr * short.train.weight_decay:.0e} of each "
          f"parameter; {moved_by_decay(lr):.0%} of the recurrence's numbers move")
assert moved_by_decay(1e-4) == 0.0
# float32 keeps 24 bits: a relative change below half a unit in the last place (between
# 3e-8 and 6e-8 of the number) rounds back. At the paper's 1e-4, lr · wd = 1e-8 is below it
# for every number: AdamW leaves the recurrence bit for bit unchanged, step after step. At a
# larger rate (1e-3: 1e-7) the decay moves the numbers, and over many steps it shrinks the
# recurrence towards 0 without ever training it.

# %% [markdown]
# ## References
#
# - S. van Steenkiste et al. *Moving Off-the-Grid: Scene-Grounded Video
#   Representations.* NeurIPS 2024 — Section 4 (the Grid and Grid Rec.
#   baselines, Tables 1–3) and Appendix C.3.2 (what Grid Rec.'s decoder and
#   readouts read).
# - A. Dosovitskiy et al. *An Image is Worth 16×16 Words.* ICLR 2021 — tokens
#   on the grid of patches.
