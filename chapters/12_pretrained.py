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
# # 12 — The authors' Ego4D model in our modules
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/moog-tutorial/moog-tutorial/blob/main/notebooks/12_pretrained.ipynb)
#
# **What you will learn.** The authors of MooG published two things: the code of
# the paper's model (trained on MOVi) and three checkpoint files of a *second*
# MooG trained on Ego4D, with heads that track points and boxes. This chapter,
# the first of three on the authors' weights, builds that second model in the
# modules we wrote, without any of the authors' code:
#
# - how the Ego4D variant differs from the paper's model, read off the
#   release — a different encoder, a different loop, a decoder with
#   self-attention;
# - the variant assembled from chapter 02's `Transformer` and chapter 01's
#   Fourier features, with its loop as a `jax.lax.scan` of one short step;
# - the release's **one-shot attention readout heads**: each point query is
#   tiled 8 times and each tile predicts 2 frames, so one attention read gives
#   a 16-frame track; boxes get all 16 frames from one read; and why the
#   queries can be answered in chunks;
# - checking a model at the released sizes without computing it
#   (`nnx.eval_shape`, `jax.eval_shape`).
#
# Chapter 12a reads the authors' files into these modules (and writes them
# back); chapter 12b tracks points through a real video with them.
#
# **Prerequisites.** Chapters 01–04 (Fourier features, attention, the loop,
# the decoder).
#
# **Runtime.**
#
# | preset | hardware | this chapter |
# |---|---|---|
# | `tiny` | CI, 2 CPU cores | 45 s (nbval in `make test` on a clean clone, two workers, nothing else running; 2026-12-03) |
# | `colab` | Colab TPU v5e-1 | estimate: seconds (the released sizes are only traced abstractly; everything that runs is at tiny widths); not measured on a TPU |
#
# Nothing here downloads: the released sizes are checked abstractly, and the
# modules that run are built at tiny widths with random weights.

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
#| default_exp ego4d

# %% [markdown]
# ## 1. Two releases, two models
#
# The authors' public repository (`google-deepmind/representations4d`, folder
# `moog/`, Apache-2.0) contains the training code of the paper's model, and its
# demo notebook downloads three files trained on **Ego4D** (egocentric video):
#
# | file | holds |
# |---|---|
# | `moog_ego4d_backbone_ckpt_164335139.npz` | encoder, predictor, corrector (and maybe the decoder) |
# | `moog_ego4d_point_track_head_ckpt_164335139.npz` | a head that tracks points for 16 frames |
# | `moog_ego4d_box_track_head_ckpt_164335139.npz` | a head that tracks boxes for 16 frames |
#
# The Ego4D model is **not** the paper's model with other weights. What
# differs (read from the model the release's demo notebook defines,
# `colabs/moog_inference_demo.ipynb`: its `MooG`, `EvalWrapper` and
# `AttentionReadout`; the paper's column is what chapters 03–04 built):
#
# | | paper model (chapters 03–04) | Ego4D checkpoints |
# |---|---|---|
# | encoder strides | (1, 1, 1, 2, 1, 2) | (2, 1, 1, 2, 1, 1) — same ÷4 overall |
# | grid position | Fourier `project_add` (stays 512 wide) | Fourier `concat`: 512 + 80 = **592** |
# | token head | Dense 512 → 512, LN | Dense 592 → 512, LN, Dense 512 → **592** |
# | one step | `z_p = z + P(z)`; `z_c = LN(z_p + C(z_p, F_t))` | `s = LN(s)`; `s = s + P(s)`; `s = s + C(s, F_t)` |
# | initial state | `LN(1e-4 · N(0, I))` | `1e-4 · N(0, I)`, no LN before the loop |
# | decoder blocks | cross-attention only | self ∥ cross attention |
# | decoder reads | `z_p` of frame `t` | the state before frame `t` |
# | readouts read | `[z_p, z_c]`, 2K tokens per frame | the state after each frame, K tokens |
# | readouts | recurrent, frame by frame (chapters 07–09) | one attention read over all 16 × K tokens |
#
# Everything attention-shaped is our chapter 02 `Transformer`, unchanged: the
# release's blocks are the same pre-LN, parallel self ∥ cross blocks with
# QK-norm (the release's `moog/attention.py`, `ImprovedTransformerBlock`, and the
# block of the same name the demo notebook defines). So this chapter mostly
# assembles pieces we have, and chapter 12a is mostly *names*.
#
# Each file is a flat dictionary from a `/`-joined parameter path to a float32
# array; chapter 12a writes the table of every path and shape and checks our
# modules against it, name by name. Here we build the modules.
#
# This chapter's code goes to `moog_lib.ego4d` (the Ego4D model as NNX
# modules: its sizes, backbone and heads). Chapter 12a's `moog_lib.release`
# (the release's files: tables, names, reading and writing) and chapter 12b's
# `moog_lib.tracking` (tracking through a video, and drawing) import it; it
# imports only the modules of chapters 01–04.

# %% [markdown]
# ### The configuration
#
# The sizes live in small frozen dataclasses, like chapter 00's presets. They
# are not `configs.ModelConfig` fields because the Ego4D model has parts the
# paper model does not (the encoder's second Dense, the decoder's
# self-attention, the heads). `ego4d_config("official")` is the released
# model; `ego4d_config("tiny")` keeps every *path* of the files — the same
# number of layers, tiles and frames, the same outputs per query — and shrinks
# only the widths, so a random checkpoint in the exact file format weighs
# about a megabyte and runs in seconds on a CPU.

# %%
#| export ego4d
"""The authors' Ego4D MooG as Flax NNX modules: its sizes, backbone and tracking heads.

`ego4d_config` gives the released sizes, or the same file layout at tiny widths;
`Ego4DMooG` is the backbone (`Ego4DEncoder`, the recurrent step, `Ego4DDecoder`);
`Ego4DTrackHead` is the one-shot attention readout that tracks points or boxes over
16 frames (`point_predictions` squashes its point outputs). Reading the authors'
checkpoint files into these modules is `moog_lib.release`; tracking through a video
is `moog_lib.tracking`.
"""
import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, ArrayLike, Float

from moog_lib import attention, configs, decoder, dynamics, encoder, fourier
from moog_lib.shapes import typed

EGO4D_SIZES = ("official", "tiny")


@dataclasses.dataclass(frozen=True)
class Ego4DBackboneConfig:
    """The Ego4D MooG (the release's demo notebook, `colabs/moog_inference_demo.ipynb`).
    Defaults are the released model's sizes."""

    token_dim: int = 512  # D, the width of the state
    num_tokens: int = 1024  # K (a default: K can change at call time)
    encoder_features: tuple[int, ...] = (64, 128, 128, 256, 256, 512)
    encoder_strides: tuple[int, ...] = (2, 1, 1, 2, 1, 1)
    encoder_fourier_bases: int = 20  # concat: features become C + 4·bases wide
    encoder_hidden: int = 512  # Dense F -> hidden, LN, Dense hidden -> F
    predictor: configs.TransformerConfig = configs.TransformerConfig(3, 4, 256, 2048)
    corrector: configs.TransformerConfig = configs.TransformerConfig(2, 8, 512, 2048)
    decoder: configs.TransformerConfig = configs.TransformerConfig(6, 2, 128, 2048)
    decoder_fourier_bases: int = 16
    initial_state_scale: float = 1e-4
    state_norm_eps: float = 1e-4

    @property
    def feature_dim(self) -> int:
        """F, the width of the encoder's tokens (592 in the release)."""
        return self.encoder_features[-1] + 4 * self.encoder_fourier_bases

# %% [markdown]
# The encoder's tokens are the conv features with the concatenated Fourier
# features beside them, so their width `F` follows from the others:

# %%
assert Ego4DBackboneConfig().feature_dim == 512 + 4 * 20 == 592

# %% [markdown]
# A head's sizes say how its outputs are laid out: `num_outputs` numbers per
# tile, for `frames_per_tile` frames each, so `channels` numbers per query and
# frame (section 3 explains the layout). Tiles that would not cover the clip
# evenly are refused when the head is configured.

# %%
#| export ego4d
@dataclasses.dataclass(frozen=True)
class Ego4DHeadConfig:
    """A one-shot attention readout head over all frames of a clip (the demo notebook's
    `AttentionReadout`)."""

    query_dim: int  # 2: a point (x, y); 4: a box (ymin, xmin, ymax, xmax)
    num_outputs: int  # numbers per tile: frames_per_tile × channels
    num_heads: int
    num_tiles: int = 1  # copies of each query, each with a learned embedding
    feature_dim: int = 512  # width of the backbone's state tokens
    width: int = 1024  # query/key/value width over all heads
    mlp_ratio: int = 4
    num_frames: int = 16  # the clip length the temporal embedding was learned for
    query_fourier_bases: int = 16
    query_width: int = 512  # the query MLP's hidden and output width

    def __post_init__(self):
        if self.num_frames % self.num_tiles or self.num_outputs % self.frames_per_tile:
            raise ValueError(f"Ego4DHeadConfig: num_frames ({self.num_frames}) must be a multiple "
                             f"of num_tiles ({self.num_tiles}) and num_outputs "
                             f"({self.num_outputs}) of the frames per tile")
        if self.width % self.num_heads:
            raise ValueError(f"Ego4DHeadConfig: width {self.width} is not a multiple of "
                             f"num_heads {self.num_heads}")

    @property
    def frames_per_tile(self) -> int:
        return self.num_frames // self.num_tiles

    @property
    def channels(self) -> int:
        """Numbers per query and frame: 4 for points (x, y, visible, certain) and boxes."""
        return self.num_outputs // self.frames_per_tile


@dataclasses.dataclass(frozen=True)
class Ego4DConfig:
    name: str
    backbone: Ego4DBackboneConfig
    points: Ego4DHeadConfig
    boxes: Ego4DHeadConfig
    resolution: int = 256  # frames are resized to resolution² (the authors' demo uses 256²)

# %%
try:
    Ego4DHeadConfig(query_dim=2, num_outputs=8, num_heads=8, num_tiles=5)
except ValueError as err:
    print("refused:", err)
else:
    raise AssertionError("5 tiles cannot cover 16 frames")

# %% [markdown]
# The released sizes, and the tiny ones that keep the file layout:

# %%
#| export ego4d
def ego4d_config(size: str = "official") -> Ego4DConfig:
    """The released sizes ("official") or the same file layout at tiny widths ("tiny")."""
    if size == "official":
        return Ego4DConfig(
            name="official", backbone=Ego4DBackboneConfig(),
            points=Ego4DHeadConfig(query_dim=2, num_outputs=8, num_heads=8, num_tiles=8),
            boxes=Ego4DHeadConfig(query_dim=4, num_outputs=64, num_heads=4))
    if size == "tiny":
        small = dict(feature_dim=32, width=64, query_fourier_bases=4, query_width=32)
        return Ego4DConfig(
            name="tiny",
            backbone=Ego4DBackboneConfig(
                token_dim=32, num_tokens=16, encoder_features=(8, 16, 16, 32, 32, 32),
                encoder_fourier_bases=4, encoder_hidden=32,
                predictor=configs.TransformerConfig(3, 2, 32, 64),
                corrector=configs.TransformerConfig(2, 2, 32, 64),
                decoder=configs.TransformerConfig(6, 2, 32, 64), decoder_fourier_bases=4),
            points=Ego4DHeadConfig(query_dim=2, num_outputs=8, num_heads=8, num_tiles=8, **small),
            boxes=Ego4DHeadConfig(query_dim=4, num_outputs=64, num_heads=4, **small),
            resolution=32)
    raise ValueError(f"unknown Ego4D size {size!r}; expected one of {', '.join(EGO4D_SIZES)}")

# %%
official, tiny = ego4d_config("official"), ego4d_config("tiny")
b = official.backbone
print("encoder tokens are", b.feature_dim, "wide; state", b.num_tokens, "×", b.token_dim)
print("point head:", official.points.num_tiles, "tiles ×", official.points.frames_per_tile,
      "frames ×", official.points.channels, "channels;  box head:",
      official.boxes.frames_per_tile, "frames ×", official.boxes.channels)
assert b.feature_dim == 592 and official.points.channels == official.boxes.channels == 4
assert tiny.points.num_tiles == 8 and tiny.points.num_frames == 16  # the file layout is kept

# %% [markdown]
# ## 2. The Ego4D backbone in our modules
#
# **Encoder.** The same conv stack as chapter 03 with other strides (the first
# conv already halves the frame), GELU between convs, a scale-only LayerNorm.
# Then the grid's Fourier features are *concatenated* (chapter 01's
# `FourierConcat`, 20 bases → 80 channels) and the tokens pass through what
# the release calls a zero-layer transformer: a Dense 592 → 512, its final
# LayerNorm, and a Dense 512 → 592 back to the input width. That is exactly
# chapter 02's `Transformer` with `num_layers=0`, `hidden_size=512`: it builds
# `input_dense`, no blocks, `final_norm`, and `output_dense` because the
# hidden width differs from the input width.

# %%
#| export ego4d
class Ego4DEncoder(nnx.Module):
    """Frames [..., H, W, 3] in [0, 1] -> tokens [..., (H/s)·(W/s), F], s the total stride.

    Convs (GELU between) → LN → concat Fourier features of the grid → Dense F→hidden,
    LN, Dense hidden→F."""

    def __init__(self, config: Ego4DBackboneConfig, *, rngs: nnx.Rngs, dtype=jnp.float32,
                 param_dtype=jnp.float32):
        features = tuple(config.encoder_features)
        self.dtype = dtype
        self.convs = encoder.conv_stack(features, config.encoder_strides, rngs=rngs, dtype=dtype,
                                        param_dtype=param_dtype, owner="Ego4DEncoder")
        self.stride = math.prod(config.encoder_strides)
        self.conv_norm = attention.scale_only_norm(features[-1], 1e-6, rngs, dtype, param_dtype)
        self.position = fourier.FourierConcat(config.encoder_fourier_bases)
        self.transformer = attention.Transformer(  # zero blocks: Dense, final LN, Dense
            config.feature_dim, num_layers=0, num_heads=1, qkv_size=1, mlp_size=1,
            hidden_size=config.encoder_hidden, rngs=rngs, dtype=dtype, param_dtype=param_dtype)

    @typed
    def __call__(self, frames: Float[ArrayLike, "*batch H W 3"]) -> Float[Array, "*batch N F"]:
        height, width = frames.shape[-3:-1]
        if height % self.stride or width % self.stride:
            raise ValueError(f"Ego4DEncoder: height and width must be divisible by the encoder "
                             f"stride {self.stride}, got {height}×{width}")
        leading = frames.shape[:-3]
        x = encoder.apply_conv_stack(self.convs,
                                     jnp.reshape(frames, (-1, height, width, 3)).astype(self.dtype))
        x = self.conv_norm(x)
        h, w = x.shape[1:3]
        x = self.position(x, fourier.coordinate_grid(h, w)).reshape(x.shape[0], h * w, -1)
        x = self.transformer(x)
        return x.reshape(leading + x.shape[1:])

# %% [markdown]
# A check at tiny widths, with random weights: two frames of 32 × 32 give
# `(32/4)² = 64` tokens per frame, each 32 + 4 · 4 = 48 wide.

# %%
b = tiny.backbone
frames2 = jax.random.uniform(jax.random.key(0), (1, 2, tiny.resolution, tiny.resolution, 3))
tokens2 = Ego4DEncoder(b, rngs=nnx.Rngs(0))(frames2)
print("tokens", tokens2.shape)
assert tokens2.shape == (1, 2, (tiny.resolution // 4) ** 2, b.feature_dim) == (1, 2, 64, 48)

# %% [markdown]
# **Loop.** One step for frame `t`, with features `F_t` (592 wide):
#
# $$s \leftarrow \mathrm{LN}(s), \qquad s \leftarrow s + P(s), \qquad
#   s \leftarrow s + C(s, F_t).$$
#
# `P` (3 layers, self-attention, 4 × 64) and `C` (2 layers, self ∥ cross,
# 8 × 64, keys/values 592 wide) are chapter 02 `Transformer`s. The LayerNorm
# (`ε = 1e-4`, scale only) comes *first* in the step, so there is no separate
# normalisation of the initial noise, and the state carried out of a step is
# not normalised. The readouts read the state after each step: `T` sets of
# `K` tokens.

# %%
#| export ego4d
def ego4d_step(state_norm, predictor, corrector, state: jnp.ndarray,
               frame_features: jnp.ndarray, *, return_attention: bool = False):
    """One frame of the Ego4D loop, `s = LN(s); s = s + P(s); s = s + C(s, F_t)`:
    [B, K, D], [B, N, F] -> [B, K, D] (`Ego4DMooG.step` on the model's parts).

    With `return_attention=True` returns `(state, weights)`, weights float32 of
    shape [B, K, N]: the corrector's cross-attention of each token over the
    frame's N image positions, averaged over the corrector's layers and heads,
    so each token's weights sum to one over the N positions. The state is the same.
    """
    state = state_norm(state)
    state = state + predictor(state)
    if not return_attention:
        return state + corrector(state, frame_features)
    update, weights = corrector(state, frame_features, return_attention=True)
    return state + update, weights["cross"].mean(axis=(0, 2))  # [L, B, H, K, N] -> [B, K, N]

# %% [markdown]
# One step at tiny widths, from the initial noise: the state keeps its shape,
# and each token's corrector weights sum to one over the frame's 64 positions.
# The LayerNorm comes first, so the state the step carries out is not
# normalised (its spread is set by `P` and `C`, not by the LN).

# %%
state_norm = attention.scale_only_norm(b.token_dim, b.state_norm_eps, nnx.Rngs(1), jnp.float32,
                                     jnp.float32)
predictor = attention.Transformer.from_config(b.token_dim, b.predictor, rngs=nnx.Rngs(2))
corrector = attention.Transformer.from_config(b.token_dim, b.corrector, kv_size=b.feature_dim,
                                              rngs=nnx.Rngs(3))
s0 = dynamics.initial_noise(jax.random.key(4), 1, b.num_tokens, b.token_dim, b.initial_state_scale)
s1, step_weights = ego4d_step(state_norm, predictor, corrector, s0, tokens2[:, 0],
                              return_attention=True)
assert s1.shape == s0.shape == (1, b.num_tokens, b.token_dim)
assert step_weights.shape == (1, b.num_tokens, tokens2.shape[2])
assert jnp.allclose(step_weights.sum(-1), 1.0, atol=1e-5)
assert jnp.allclose(s1, ego4d_step(state_norm, predictor, corrector, s0, tokens2[:, 0]), atol=1e-6)
print(f"std of the state: {float(jnp.std(s0)):.1e} before the step, {float(jnp.std(s1)):.2f} after")

# %% [markdown]
# Over a clip, the step is scanned (chapter 03's `dynamics.scan_over_time`, a
# `jax.lax.scan` over an NNX module), keeping the state before and after each
# frame — the decoder reads the first, the heads the second. `Ego4DMooG.unroll`
# (below) is this function; the model's checks run it.

# %%
#| export ego4d
@typed
def ego4d_unroll(model, features: Float[ArrayLike, "B T N F"], state: Float[ArrayLike, "B K D"],
                 *, return_attention: bool = False) -> dict:
    """A `jax.lax.scan` of `model.step` over the frames of `features` from `state`
    (`Ego4DMooG.unroll`): {"features": the state after each frame, "previous": the
    state before it, both [B, T, K, D]; "state": the last, [B, K, D]}, with
    `return_attention=True` also "corrector_attention" float32 [B, T, K, N]."""
    config = model.config
    if features.shape[-1] != config.feature_dim:
        raise ValueError(f"unroll: the features must be F = {config.feature_dim} wide "
                         f"(config.feature_dim), got {features.shape[-1]}")
    if state.shape[2] != config.token_dim or state.shape[1] < 1:
        raise ValueError(f"unroll: the state needs K >= 1 tokens of width D = "
                         f"{config.token_dim} (config.token_dim), got {state.shape[1:]}")

    def scan_step(module, carry, frame_features):
        if return_attention:
            new, weights = module.step(carry, frame_features, return_attention=True)
            return new, (carry, new, weights)
        new = module.step(carry, frame_features)
        return new, (carry, new)

    state, outputs = dynamics.scan_over_time(model, scan_step, state.astype(model.dtype), features)
    result = {"features": outputs[1], "previous": outputs[0], "state": state}
    if return_attention:
        result["corrector_attention"] = outputs[2]
    return result

# %% [markdown]
# **Decoder.** Frame `t` is decoded from the state *before* step `t` (for
# frame 0: the initial noise). The pixel queries are built as in chapter 04
# (`D` zeros ⊕ 16-basis Fourier features of `(y, x)`, 576 wide), but the six
# blocks have self-attention as well as cross-attention — so decoded pixels
# influence each other, and the result for one pixel depends on which other
# pixels are decoded with it. The release decodes whole frames during
# training; the tracking path never calls the decoder, and the released
# backbone file may not contain it (`with_decoder=False` builds none).

# %%
#| export ego4d
class Ego4DDecoder(nnx.Module):
    """Pixel coordinates (y, x) in [-1, 1] -> colours, reading a state [B, K, D].

    Queries [zeros(D), Fourier(y, x)]; blocks with self- and cross-attention, so the
    pixels decoded together attend to each other; a Dense to 3 channels."""

    def __init__(self, config: Ego4DBackboneConfig, *, rngs: nnx.Rngs, dtype=jnp.float32,
                 param_dtype=jnp.float32):
        self.token_dim, self.dtype = config.token_dim, dtype
        self.fourier = fourier.FourierConcat(config.decoder_fourier_bases)
        self.query_width = config.token_dim + 4 * config.decoder_fourier_bases
        kwargs = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        self.transformer = attention.Transformer.from_config(
            self.query_width, config.decoder, kv_size=config.token_dim, **kwargs)
        self.readout = nnx.Linear(self.query_width, 3, **kwargs)

    @typed
    def __call__(self, state: Float[ArrayLike, "B K D"],
                 coords: Float[ArrayLike, "B Q 2"]) -> Float[Array, "B Q 3"]:
        """Colours at the pixel coordinates `coords` (y, x)."""
        zeros = jnp.zeros(coords.shape[:-1] + (self.token_dim,), self.dtype)
        return self.readout(self.transformer(self.fourier(zeros, coords), state))


def decode_frames(ego4d_decoder: Ego4DDecoder, previous: jnp.ndarray, frames, *,
                  subsample: int = 4) -> dict:
    """Decode frame t of `frames` [B, T, H, W, 3] from `previous` [B, T, K, D], the state
    before frame t, at every `subsample`-th pixel (chapter 04's grid, zero offsets).
    Returns {"prediction", "target"}, [B, T, h, w, 3] (`Ego4DMooG.predict_frames`)."""
    batch, num_frames, height, width, _ = frames.shape
    offsets = jnp.zeros((batch, num_frames, 2), jnp.int32)
    target = decoder.subsample_frames(jnp.asarray(frames, jnp.float32), offsets, subsample)
    h, w = target.shape[2:4]
    coords = decoder.sample_coordinates(height, width, offsets, subsample)
    previous = previous.reshape((batch * num_frames,) + previous.shape[2:])
    colours = ego4d_decoder(previous, coords.reshape(batch * num_frames, h * w, 2))
    return {"prediction": colours.astype(jnp.float32).reshape(target.shape), "target": target}

# %% [markdown]
# Decoding the two frames from the states before them (the noise `s0` for
# frame 0, `s1` for frame 1), at the centre of every 4 × 4 cell: 8 × 8 colours
# per frame.

# %%
decoded = decode_frames(Ego4DDecoder(b, rngs=nnx.Rngs(5)), jnp.stack([s0, s1], 1), frames2)
assert decoded["prediction"].shape == decoded["target"].shape == (1, 2, 8, 8, 3)
assert jnp.array_equal(decoded["target"], frames2[:, :, 2::4, 2::4])  # the centre of each 4 × 4 cell

# %% [markdown]
# **The model.** `Ego4DMooG` holds the encoder, the state's LayerNorm, `P`,
# `C` and (optionally) the decoder. `step` is `ego4d_step` on its parts,
# `unroll` is `ego4d_unroll`, `__call__` encodes a clip and unrolls it from
# fresh noise, and `predict_frames` hands the states *before* each frame to
# `decode_frames`.

# %%
#| export ego4d
class Ego4DMooG(nnx.Module):
    """The Ego4D checkpoints' MooG: encoder, `s = LN(s); s += P(s); s += C(s, F_t)`, decoder.

    `model(frames, key=...)` returns {"features": [B, T, K, D] (the state after
    each frame: what the heads read), "previous": [B, T, K, D] (the state before
    each frame: what the decoder reads), "state": [B, K, D] (to continue from)};
    with `return_attention=True` also "corrector_attention" float32 [B, T, K, h, w]:
    each token's cross-attention over the frame's h × w feature grid (stride 4),
    averaged over the corrector's layers and heads (see `step`).
    """

    def __init__(self, config: Ego4DBackboneConfig, *, with_decoder: bool = True,
                 rngs: nnx.Rngs, dtype=None, param_dtype=jnp.float32):
        self.config = config
        self.dtype = jnp.dtype(jnp.float32 if dtype is None else dtype)
        kwargs = dict(rngs=rngs, dtype=self.dtype, param_dtype=param_dtype)
        d = config.token_dim
        self.encoder = Ego4DEncoder(config, **kwargs)
        self.state_norm = attention.scale_only_norm(d, config.state_norm_eps, rngs, self.dtype, param_dtype)
        self.predictor = attention.Transformer.from_config(d, config.predictor, **kwargs)
        self.corrector = attention.Transformer.from_config(d, config.corrector,
                                                           kv_size=config.feature_dim, **kwargs)
        self.decoder = Ego4DDecoder(config, **kwargs) if with_decoder else None

    def initial_state(self, key: jax.Array, batch_size: int,
                      num_tokens: int | None = None) -> jnp.ndarray:
        """`1e-4 · N(0, I)` of shape [B, K, D] — no LayerNorm (the step starts with one)."""
        num_tokens = self.config.num_tokens if num_tokens is None else num_tokens
        return dynamics.initial_noise(key, batch_size, num_tokens, self.config.token_dim,
                                      self.config.initial_state_scale)

    def step(self, state: jnp.ndarray, frame_features: jnp.ndarray, *,
             return_attention: bool = False):
        """One frame: [B, K, D], [B, N, F] -> [B, K, D] (`ego4d_step`). With
        `return_attention=True` returns `(state, weights)`, weights float32 [B, K, N]: each
        token's corrector attention over the frame's N positions (`ego4d_step`)."""
        return ego4d_step(self.state_norm, self.predictor, self.corrector, state, frame_features,
                          return_attention=return_attention)

    def unroll(self, features: jnp.ndarray, state: jnp.ndarray, *,
               return_attention: bool = False) -> dict:
        """A `jax.lax.scan` of `step` over the frames of `features` [B, T, N, F].

        With `return_attention=True` the result also holds "corrector_attention"
        float32 [B, T, K, N], `step`'s weights for every frame (N flat, row-major).
        """
        return ego4d_unroll(self, features, state, return_attention=return_attention)

    @typed
    def __call__(self, frames: Float[ArrayLike, "B T H W 3"], *, key: jax.Array | None = None,
                 state: Float[ArrayLike, "B K D"] | None = None, num_tokens: int | None = None,
                 return_attention: bool = False) -> dict:
        """Run on a clip with values in [0, 1] from fresh noise (`key`) or `state`.

        `return_attention=True` adds "corrector_attention" [B, T, K, h, w] (the class
        docstring); the other outputs are unchanged."""
        encoder.check_frames(frames, stride=self.encoder.stride)
        if state is None:
            if key is None:
                raise ValueError("Ego4DMooG: pass key=jax.random.key(...) for the initial "
                                 "noise, or a state [B, K, D] to continue from")
            state = self.initial_state(key, frames.shape[0], num_tokens)
        features = self.encoder(jnp.asarray(frames, jnp.float32))
        result = self.unroll(features, state, return_attention=return_attention)
        if return_attention:
            grid = (frames.shape[2] // self.encoder.stride, frames.shape[3] // self.encoder.stride)
            weights = result["corrector_attention"]
            result["corrector_attention"] = weights.reshape(weights.shape[:3] + grid)
        return result

    def predict_frames(self, frames, *, key: jax.Array, subsample: int = 4) -> dict:
        """Decode frame t from the state before frame t at every `subsample`-th pixel
        (chapter 04's grid, zero offsets). Returns {"prediction", "target"}, [B, T, h, w, 3]."""
        if self.decoder is None:
            raise ValueError("predict_frames: this model was built without its decoder "
                             "(the backbone file had no decoder entries)")
        out = self(frames, key=key)
        return decode_frames(self.decoder, out["previous"], frames, subsample=subsample)

# %% [markdown]
# Immediate checks, without computing anything yet: `nnx.eval_shape` builds the
# modules abstractly and `jax.eval_shape` traces a forward pass, so we get
# parameter counts and output shapes at the released sizes for free. (Building
# real modules means drawing random numbers for every parameter, op by op; chapter
# 12a fills them from a checkpoint file instead, in its section 3, and runs them
# in its section 4.) The initial state is `1e-4 · N(0, I)`, with no LayerNorm lifting
# it to `1e-2` as in the paper model (chapter 03).

# %%
import jax.numpy as jnp
import numpy as np
from flax import nnx


def count(module) -> int:
    return sum(math.prod(np.shape(v)) for v in jax.tree.leaves(nnx.to_pure_dict(
        nnx.state(module, nnx.Param))))


def output_shapes(fn, module, *args):
    """`jax.eval_shape` of `fn(module, *args)` for an abstract module: nothing is computed."""
    graphdef, state = nnx.split(module)
    return jax.eval_shape(lambda state, *a: fn(nnx.merge(graphdef, state), *a), state, *args)


for cfg in (tiny, official):
    b = cfg.backbone
    abstract = nnx.eval_shape(lambda b=b: Ego4DMooG(b, rngs=nnx.Rngs(0)))
    frames = jax.ShapeDtypeStruct((1, 16, cfg.resolution, cfg.resolution, 3), jnp.float32)
    shapes = output_shapes(lambda m, f: m(f, key=jax.random.key(0)), abstract, frames)
    assert shapes["features"].shape == shapes["previous"].shape == (1, 16, b.num_tokens, b.token_dim)
    tokens = output_shapes(lambda m, f: m.encoder(f), abstract, frames)
    assert tokens.shape == (1, 16, (cfg.resolution // 4) ** 2, b.feature_dim)
    decoder_share = count(abstract.decoder) / count(abstract)
    print(f"{cfg.name:8s} {count(abstract):>11,} parameters ({decoder_share:.0%} in the decoder); "
          f"{tokens.shape[2]} tokens of width {b.feature_dim} per frame")
noise = Ego4DMooG.initial_state(abstract, jax.random.key(3), 4)
assert noise.shape == (4, 1024, 512) and float(jnp.std(noise)) < 2e-4

# %% [markdown]
# ## 3. The one-shot readout heads
#
# A head answers a set of queries from the features of one 16-frame clip,
# `[B, 16, K, D]`, in **one** attention read — no recurrence over frames. Its
# structure follows from the parameter shapes (plus the authors' demo notebook
# for the order of operations):
#
# 1. **Query embedding.** Fourier features of the query (16 bases, `replace`:
#    the features *are* the input) → Dense 512 → GELU → Dense 512.
# 2. **Tiling** (points only). Each query is copied 8 times and copy `k` gets
#    a learned embedding row `k` (`[8, 512]`).
# 3. **Keys and values.** The features get a LayerNorm *with* bias, then a
#    learned embedding of their frame (`[16, 1, 512]`, broadcast over the `K`
#    tokens — this is what tells the head which frame a token came from), then
#    all `16 · K` tokens are projected, with biases, to keys and values
#    (8 heads × 128 for points, 4 × 256 for boxes).
# 4. **Read.** The query is projected to 1024 (`Dense_0`) and split into heads;
#    softmax attention over all `16 · K` tokens (logits scaled by
#    `1/√head_dim`, no QK-norm here); `x = q + Dense_1(read)`.
# 5. **MLP.** `x = x + MLP(LN(x))` with a 4× hidden layer (4096) and a
#    LayerNorm with bias; then `Dense_2` to the outputs.
#
# Outputs: a point tile gives 8 numbers = 2 frames × (x, y, visibility logit,
# certainty logit), and tile `k` covers frames `2k` and `2k + 1`, so 8 tiles
# give 16 frames. A box query gives 64 = 16 frames × (ymin, xmin, ymax, xmax).
# Coordinates are squashed with a sigmoid for points and left raw for boxes,
# and a point counts as visible when `σ(visibility) · σ(certainty) > 0.5`.
#
# **Choices the shapes left open**, and what we chose:
#
# - *Coordinate convention.* The shapes say a point is 2 numbers and a box 4,
#   not which. We follow the authors' demo: points are `(x, y)` divided by the
#   frame's width and height — in `[0, 1]`, not chapter 01's `[-1, 1]`, and `x`
#   first — for the queries and the outputs; boxes are
#   `(ymin, xmin, ymax, xmax)` in `[0, 1]`. Queries sit on frame 0.
# - *Where the tile embedding is added* (before `Dense_0`) and *which tile
#   covers which frames* (tile-major, then frame) follow the demo's reshapes.
# - *LayerNorms* use Flax's default `ε = 1e-6`; GELU is the tanh approximation
#   (Flax's default, as everywhere in this project).
# - *Which LayerNorm is which:* `LayerNorm_0` is 512 wide, so it normalises the
#   512-wide features (or the 512-wide queries — the shape alone cannot tell);
#   the demo applies it to the features. `LayerNorm_1` (1024) sits in the MLP's
#   residual branch.

# %% [markdown]
# Because queries never attend to each other, the head can answer any number
# of queries, in chunks if memory asks for it: the attention weights are
# `heads × (8·Q) × (16·K)` floats, 268 MB for 64 point queries at the
# released sizes. `chunk_size` processes that many queries at a time.
#
# Chunking needs nothing of the head: any function of a batch of independent
# queries can be applied to `chunk_size` of them at a time (padded to whole
# chunks, mapped with `jax.lax.map`, the padding dropped). The head's
# `__call__` uses `map_in_chunks`; beside it are two small helpers of the head
# (the checks of its inputs, and its learned embedding tables).

# %%
#| export ego4d
def map_in_chunks(fn, queries: jnp.ndarray, chunk_size: int) -> jnp.ndarray:
    """`fn(queries [B, n, d]) -> [B, n·r, O]` applied to `chunk_size` queries at a time
    (the queries padded to whole chunks, the padding's answers dropped): the same as
    `fn(queries)` when queries do not interact."""
    batch, num_queries, dim = queries.shape
    chunks = -(-num_queries // chunk_size)
    padded = jnp.pad(queries, ((0, 0), (0, chunks * chunk_size - num_queries), (0, 0)))
    padded = jnp.moveaxis(padded.reshape(batch, chunks, chunk_size, dim), 1, 0)
    raw = jnp.moveaxis(jax.lax.map(fn, padded), 0, 1)  # [B, chunks, chunk_size·r, O]
    per_query = raw.shape[2] // chunk_size
    raw = raw.reshape(batch, chunks * chunk_size * per_query, raw.shape[-1])
    return raw[:, :num_queries * per_query]


def _embedding(rngs: nnx.Rngs, param_dtype, *shape) -> nnx.Param:
    """A learned embedding table, initialised ~ N(0, 0.02²)."""
    return nnx.Param(0.02 * jax.random.normal(rngs.params(), shape, param_dtype))


def _check_head_inputs(c: Ego4DHeadConfig, features, queries, chunk_size) -> None:
    """Raise ValueError unless the sizes the head's signature leaves open are the config's."""
    if features.shape[1] != c.num_frames or features.shape[3] != c.feature_dim:
        raise ValueError(f"Ego4DTrackHead: features must be [B, {c.num_frames}, K, "
                         f"{c.feature_dim}] (the head reads clips of exactly {c.num_frames} "
                         f"frames), got {features.shape}")
    if queries.shape[2] != c.query_dim:
        raise ValueError(f"Ego4DTrackHead: queries must be [B, Q, {c.query_dim}], got "
                         f"{queries.shape}")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"Ego4DTrackHead: chunk_size must be a positive int, got {chunk_size!r}")

# %% [markdown]
# A check with a toy function that answers each query with two numbers per
# "tile" (3 tiles): 7 queries in chunks of 3 (one padded) give exactly the
# answer of all 7 at once.

# %%
def toy(q):  # [B, n, 2] -> [B, n·3, 2]: three "tiles" per query, no interaction
    return jnp.repeat(q, 3, axis=1) * jnp.tile(jnp.arange(1.0, 4.0), q.shape[1])[None, :, None]


toy_queries = jax.random.uniform(jax.random.key(6), (2, 7, 2))
assert map_in_chunks(toy, toy_queries, 3).shape == (2, 21, 2)
assert jnp.array_equal(map_in_chunks(toy, toy_queries, 3), toy(toy_queries))

# %% [markdown]
# **The head.** Its parts in the order of the five steps: `embed_queries`
# (steps 1–2 and the projection of step 4), `memory` (step 3), `read` (steps
# 4–5); `__call__` puts them together, in chunks if asked.

# %%
#| export ego4d
class Ego4DTrackHead(nnx.Module):
    """The release's one-shot attention readout over all frames of a clip.

    `head(features [B, T, K, D], queries [B, Q, query_dim])` -> [B, Q, T, channels],
    T = config.num_frames. Points: queries (x, y) in [0, 1] on frame 0, outputs
    (x, y, visibility logit, certainty logit) before any squashing (see
    `point_predictions`). Boxes: queries and outputs (ymin, xmin, ymax, xmax) in [0, 1].
    """

    def __init__(self, config: Ego4DHeadConfig, *, rngs: nnx.Rngs, dtype=None,
                 param_dtype=jnp.float32):
        c = self.config = config
        self.dtype = jnp.dtype(jnp.float32 if dtype is None else dtype)
        kwargs = dict(rngs=rngs, dtype=self.dtype, param_dtype=param_dtype)
        dense = functools.partial(nnx.Linear, **kwargs)

        self.query_in = dense(2 * c.query_dim * c.query_fourier_bases, c.query_width)
        self.query_out = dense(c.query_width, c.query_width)
        self.tile_embedding = (_embedding(rngs, param_dtype, c.num_tiles, c.query_width)
                               if c.num_tiles > 1 else None)
        self.feature_norm = nnx.LayerNorm(c.feature_dim, epsilon=1e-6, **kwargs)
        self.temporal_embedding = _embedding(rngs, param_dtype, c.num_frames, 1, c.feature_dim)
        self.query_dense = dense(c.query_width, c.width)
        heads = (c.num_heads, c.width // c.num_heads)
        self.key = nnx.LinearGeneral(c.feature_dim, heads, use_bias=True, **kwargs)
        self.value = nnx.LinearGeneral(c.feature_dim, heads, use_bias=True, **kwargs)
        self.residual_dense = dense(c.width, c.width)
        self.mlp_norm = nnx.LayerNorm(c.width, epsilon=1e-6, **kwargs)
        self.mlp_in = dense(c.width, c.mlp_ratio * c.width)
        self.mlp_out = dense(c.mlp_ratio * c.width, c.width)
        self.output_dense = dense(c.width, c.num_outputs)

    def embed_queries(self, queries: jnp.ndarray) -> jnp.ndarray:
        """[B, Q, query_dim] -> projected queries [B, Q·tiles, width]."""
        c = self.config
        x = fourier.fourier_features(queries, c.query_fourier_bases).astype(self.dtype)
        x = self.query_out(jax.nn.gelu(self.query_in(x), approximate=True))
        if self.tile_embedding is not None:
            x = x[..., :, None, :] + self.tile_embedding[...].astype(self.dtype)
            x = x.reshape(x.shape[:-3] + (x.shape[-3] * c.num_tiles, c.query_width))
        return self.query_dense(x)

    def memory(self, features: jnp.ndarray):
        """Keys and values [B, T·K, heads, head_dim] of all tokens of the clip."""
        x = self.feature_norm(features.astype(self.dtype))
        x = x + self.temporal_embedding[...].astype(self.dtype)
        x = x.reshape(x.shape[0], -1, x.shape[-1])
        return self.key(x), self.value(x)

    def read(self, query: jnp.ndarray, key: jnp.ndarray, value: jnp.ndarray) -> jnp.ndarray:
        """Projected queries [B, N, width] -> raw outputs [B, N, num_outputs]."""
        c = self.config
        heads = query.reshape(query.shape[:-1] + (c.num_heads, c.width // c.num_heads))
        weights = attention.attention_weights(heads, key)
        x = attention.attend(weights, value).reshape(query.shape)
        x = query + self.residual_dense(x)
        x = x + self.mlp_out(jax.nn.gelu(self.mlp_in(self.mlp_norm(x)), approximate=True))
        return self.output_dense(x)

    @typed
    def __call__(self, features: Float[ArrayLike, "B T K F"], queries: Float[ArrayLike, "B Q C"],
                 *, chunk_size: int | None = None) -> Float[Array, "B Q T O"]:
        c = self.config
        _check_head_inputs(c, features, queries, chunk_size)
        batch, num_queries = queries.shape[:2]
        key, value = self.memory(features)
        if chunk_size is None or num_queries <= chunk_size:
            raw = self.read(self.embed_queries(queries), key, value)
        else:  # queries are independent: answer `chunk_size` of them at a time
            graphdef, params = nnx.split(self)

            def answer(chunk):
                head = nnx.merge(graphdef, params)
                return head.read(head.embed_queries(chunk), key, value)

            raw = map_in_chunks(answer, queries, chunk_size)
        # [B, Q·tiles, tiles' outputs] -> [B, Q, tiles, frames per tile, channels] -> [B, Q, T, C]
        return raw.reshape(batch, num_queries, c.num_frames, c.channels).astype(jnp.float32)

# %% [markdown]
# The point head's raw numbers become tracks and visibility as the demo
# squashes them: a sigmoid on the coordinates, and a point is visible when
# `σ(visibility) · σ(certainty) > 0.5`.

# %%
#| export ego4d
@typed
def point_predictions(raw: Float[ArrayLike, "*batch 4"], threshold: float = 0.5) -> dict:
    """The point head's raw (x, y, visibility, certainty) -> {"tracks": (x, y) in [0, 1]
    [..., 2], "visibility_logits", "certainty_logits", "visible_probability", "visible" (bool)}."""
    probability = jax.nn.sigmoid(raw[..., 2]) * jax.nn.sigmoid(raw[..., 3])
    return {"tracks": jax.nn.sigmoid(raw[..., :2]), "visibility_logits": raw[..., 2],
            "certainty_logits": raw[..., 3], "visible_probability": probability,
            "visible": probability > threshold}

# %% [markdown]
# Checks, again abstract: any number of queries gives 16-frame outputs, and
# the head refuses a clip that is not 16 frames long. (Chapter 12a §4
# checks the numbers on a loaded head: chunking changes nothing, and a query's
# answer does not depend on the other queries.)

# %%
for cfg in (tiny, official):
    point_abstract = nnx.eval_shape(lambda h=cfg.points: Ego4DTrackHead(h, rngs=nnx.Rngs(0)))
    box_abstract = nnx.eval_shape(lambda h=cfg.boxes: Ego4DTrackHead(h, rngs=nnx.Rngs(0)))
    feats = jax.ShapeDtypeStruct((2, 16, cfg.backbone.num_tokens, cfg.backbone.token_dim),
                                 jnp.float32)
    for q in (1, 3, 17):
        points_q = jax.ShapeDtypeStruct((2, q, 2), jnp.float32)
        boxes_q = jax.ShapeDtypeStruct((2, q, 4), jnp.float32)
        head_out = lambda h, f, p: h(f, p)
        assert output_shapes(head_out, point_abstract, feats, points_q).shape == (2, q, 16, 4)
        assert output_shapes(lambda h, f, p: h(f, p, chunk_size=4), point_abstract, feats,
                             points_q).shape == (2, q, 16, 4)
        assert output_shapes(head_out, box_abstract, feats, boxes_q).shape == (2, q, 16, 4)
    print(f"{cfg.name:8s} point head {count(point_abstract):>11,} and box head "
          f"{count(box_abstract):>11,} parameters")
try:
    short_clip = jax.ShapeDtypeStruct((2, 8, 1024, 512), jnp.float32)
    output_shapes(head_out, point_abstract, short_clip, points_q)
except ValueError as err:
    print("refused:", err)
else:
    raise AssertionError("an 8-frame clip was accepted")

# %% [markdown]
# ## Summary
#
# - The Ego4D MooG differs from the paper's: strides (2, 1, 1, 2, 1, 1), a
#   concatenated position code and 592-wide tokens, the LayerNorm at the start
#   of each step and none on the initial noise, a decoder with self-attention
#   reading the state before each frame, and readouts on the state after each
#   frame. All of it is chapter 02's `Transformer` and chapter 01's Fourier
#   features: `Ego4DEncoder`, `ego4d_step` (scanned by `Ego4DMooG.unroll`),
#   `Ego4DDecoder` and `decode_frames`.
# - The heads answer a query for all 16 frames in one attention read over all
#   `16 · K` tokens: points by 8 tiles of 2 frames, boxes by 64 outputs.
#   Queries are independent, so they can be chunked (`map_in_chunks`).
# - `ego4d_config("official")` holds the released sizes and
#   `ego4d_config("tiny")` the same layout at tiny widths; `nnx.eval_shape` and
#   `jax.eval_shape` check parameter counts and output shapes at the released
#   sizes without computing anything.
# - Chapter 12a fills these modules from the authors' files (and checks every
#   name and shape first); chapter 12b tracks points through a real video.
#
# ## Exercises
#
# 1. ★ The first thing a step does is `LN(s)`, with `ε = 1e-4`, and the
#    initial state is `1e-4 · N(0, I)`. Predict the standard deviation of
#    `LN(s)` for the initial noise at the released width (the LN's scale is 1
#    as initialised), then measure it. Why is it not 1, and how does it compare
#    with the paper model's `LN(1e-4 · N(0, I))` (chapter 03)?
# 2. ★★ Decoded pixels are not independent. With a tiny `Ego4DDecoder`, decode
#    one pixel alone and together with five others from the same state, and
#    compare its colour; do the same for one point query of a tiny
#    `Ego4DTrackHead`, alone and among others. Which of the two may be chunked
#    like `map_in_chunks`, and what does the other mean for decoding a frame
#    piece by piece?
# 3. ★★ Check the frame layout of the point head by hand: for one query,
#    compute the head's answer with explicit loops over the 8 tiles (embed,
#    add tile `k`'s embedding, read, MLP, output) and show that tile `k`'s
#    outputs `[4s : 4s + 4]` are frame `2k + s` of `Ego4DTrackHead`'s result.
# 4. ★★★ Write the release's unroll — a Python loop over frames that calls
#    `Ego4DMooG.step` and stacks the states — under `jax.jit`, and compare it
#    with the scan for T = 4 and T = 8 on the tiny model: equal outputs, and
#    the compile time of each. Why does one grow with T and the other not?

# %% [markdown]
# ### Solution 1

# %%
released_norm = attention.scale_only_norm(official.backbone.token_dim, official.backbone.state_norm_eps,
                                        nnx.Rngs(0), jnp.float32, jnp.float32)
first_noise = dynamics.initial_noise(jax.random.key(0), 1, 1024, 512, 1e-4)
predicted = 1e-4 / math.sqrt(1e-4 ** 2 + 1e-4)  # std / sqrt(variance + eps)
measured = float(jnp.std(released_norm(first_noise)))
print(f"std of LN(s): predicted {predicted:.5f}, measured {measured:.5f}")
assert abs(measured - predicted) / predicted < 0.01
# ε = 1e-4 is 10,000 times the noise's variance (1e-8), so the LN divides by
# sqrt(1e-8 + 1e-4) ≈ 1e-2 rather than by the noise's std: the tokens come out
# near 1e-2, not 1. That is the size the paper model's LN(1e-4 · N(0, I)) gives
# its initial state (chapter 03); the Ego4D model gets there in its first step.

# %% [markdown]
# ### Solution 2

# %%
pixel_decoder = Ego4DDecoder(tiny.backbone, rngs=nnx.Rngs(7))
some_state = jax.random.normal(jax.random.key(8), (1, tiny.backbone.num_tokens, tiny.backbone.token_dim))
pixels = jax.random.uniform(jax.random.key(9), (1, 6, 2), minval=-1.0, maxval=1.0)
pixel_together = pixel_decoder(some_state, pixels)[:, :1]
pixel_alone = pixel_decoder(some_state, pixels[:, :1])
print(f"one pixel's colour moves by {float(jnp.abs(pixel_together - pixel_alone).max()):.3f} "
      "when five other pixels are decoded with it")
assert not jnp.allclose(pixel_alone, pixel_together, atol=1e-4)

query_head = Ego4DTrackHead(tiny.points, rngs=nnx.Rngs(10))
clip_features = jax.random.normal(jax.random.key(11), (1, 16, tiny.backbone.num_tokens,
                                                       tiny.backbone.token_dim))
six_points = jax.random.uniform(jax.random.key(12), (1, 6, 2))
assert jnp.allclose(query_head(clip_features, six_points)[:, :1],
                    query_head(clip_features, six_points[:, :1]), atol=1e-5)
print("one point query: the same answer alone and among others")
# The head's queries only read the tokens, so they can be chunked; the decoder's
# pixel queries also attend to each other (self-attention), so a frame decoded in
# pieces is not the frame decoded whole: the release decodes whole frames, and a
# sampled subset of pixels (chapter 04's S) changes each pixel's colour.

# %% [markdown]
# ### Solution 3

# %%
@nnx.jit
def tiles_by_hand(head, features, query):
    c = head.config
    key, value = head.memory(features)
    embedded = head.query_out(jax.nn.gelu(head.query_in(
        fourier.fourier_features(query, c.query_fourier_bases)), approximate=True))
    frames = [None] * c.num_frames
    for k in range(c.num_tiles):
        tile = head.query_dense(embedded + head.tile_embedding[...][k])  # [1, 1, width]
        outputs = head.read(tile, key, value)[0, 0]  # 8 numbers
        for s in range(c.frames_per_tile):
            frames[c.frames_per_tile * k + s] = outputs[c.channels * s:c.channels * (s + 1)]
    return jnp.stack(frames), head(features, query)[0, 0]


tile_head = Ego4DTrackHead(tiny.points, rngs=nnx.Rngs(13))
tile_features = jax.random.normal(jax.random.key(14), (1, 16, tiny.backbone.num_tokens,
                                                       tiny.backbone.token_dim))
by_hand, by_module = tiles_by_hand(tile_head, tile_features, jnp.array([[[0.3, 0.6]]]))
assert by_hand.shape == (16, 4) and jnp.allclose(by_hand, by_module, atol=1e-5)
print("tile k, slot s = frame 2k + s")

# %% [markdown]
# ### Solution 4

# %%
import time


def python_unroll(m, frames, state):
    features, states = m.encoder(frames), []
    for t in range(frames.shape[1]):
        state = m.step(state, features[:, t])
        states.append(state)
    return jnp.stack(states, 1)


def scan_unroll(m, frames, state):
    return m.unroll(m.encoder(frames), state)["features"]


loop_model = Ego4DMooG(tiny.backbone, rngs=nnx.Rngs(15))
clip = jax.random.uniform(jax.random.key(1), (1, 8, tiny.resolution, tiny.resolution, 3))
graphdef, params = nnx.split(loop_model)
state0 = loop_model.initial_state(jax.random.key(0), 1)
for frames_t in (4, 8):
    results = {}
    for name, fn in (("python loop", python_unroll), ("scan", scan_unroll)):
        pure = jax.jit(lambda p, f, s, fn=fn: fn(nnx.merge(graphdef, p), f, s))
        tic = time.perf_counter()
        compiled = pure.lower(params, clip[:1, :frames_t], state0).compile()
        print(f"T = {frames_t}: {name:12s} compiles in {time.perf_counter() - tic:.2f} s")
        results[name] = compiled(params, clip[:1, :frames_t], state0)
    assert jnp.allclose(results["python loop"], results["scan"], atol=1e-5)
# The Python loop is traced T times: its program holds T copies of the step, so
# its compile time grows with T. The scan traces the step once and loops at run
# time, so its program is the same size for any T.

# %% [markdown]
# ## References
#
# - S. van Steenkiste et al. *Moving Off-the-Grid: Scene-Grounded Video
#   Representations.* NeurIPS 2024 (Section 4 and Appendix C: readouts). The
#   Ego4D checkpoints come from the authors' release (next entry).
# - The authors' release: `google-deepmind/representations4d` (folder `moog/`
#   and `colabs/moog_inference_demo.ipynb`, Apache-2.0) — the source of the
#   Ego4D model's structure and the demo's conventions (query coordinates, tile
#   layout); no code was copied.
# - K. Grauman et al. *Ego4D: Around the World in 3,000 Hours of Egocentric
#   Video.* CVPR 2022.
# - JAX documentation: `jax.lax.scan`, `jax.lax.map`, `jax.eval_shape`; Flax
#   NNX documentation: `nnx.eval_shape`, `nnx.split` / `nnx.merge`.
