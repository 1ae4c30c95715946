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
# # 03 — The predict–correct loop
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/moog-tutorial/moog-tutorial/blob/main/notebooks/03_model.ipynb)
#
# **What you will learn.** MooG is a recurrent model: a set of `K` tokens is
# carried from frame to frame, *predicted* forward before each frame arrives
# and *corrected* once it has. In this chapter you build everything except the
# decoder:
#
# - the convolutional **encoder** that turns each frame into a set of feature
#   tokens `F_t` (all frames in one batched call);
# - the **initial state** — tiny noise pushed through a LayerNorm — and why its
#   standard deviation ends up at 1e-2 and not at 1e-4;
# - the **predictor** `z_p = z + P(z)` and the **corrector**
#   `z_c = LN(z_p + C(z_p, F_t))`;
# - the loop over frames written with `jax.lax.scan`, so compile time does not
#   grow with the clip length; unrolling in **chunks** that carry the state, and
#   **streaming** videos of any length in constant memory;
# - why nothing in the parameters depends on `K` or on the frame size;
# - the two switches of the authors' release that the paper does not use.
#
# The code goes to two modules: `moog_lib.encoder` (input checks and the
# encoder, §2–3) and `moog_lib.dynamics` (the initial state, the loop and
# streaming, §4–7).
#
# **Prerequisites.** Chapters 01 (Fourier features) and 02 (attention and the
# transformer); `jax.lax.scan`; the idea of a recurrent state-space model.
#
# **Runtime.**
#
# | preset | hardware | this chapter |
# |---|---|---|
# | `tiny` | CI, 2 CPU cores | 37 s (nbval in `make test` on a clean clone, two workers, nothing else running; 2026-12-03) |
# | `colab` | Colab TPU v5e-1 | estimate ≈ 5–10 min: 16 compilations of the paper-size encoder and predict–correct loop on 2 clips (a training step is assumed to take ≈ 1 min; these lack the decoder and the optimiser, most the backward pass too: assumed ≈ 20–40 s each); the runs take seconds; not measured on a TPU |

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
#| default_exp encoder

# %% [markdown]
# ## 1. The model at a glance
#
# Write `z` for the state, a set of `K` tokens of width `D` (`[B, K, D]`), and
# `F_t` for the encoder's tokens of frame `t` (`[B, h·w, D]`). MooG runs
#
# $$z_p^{(t)} = z^{(t-1)} + P\big(z^{(t-1)}\big), \qquad
#   z_c^{(t)} = \mathrm{LN}\big(z_p^{(t)} + C(z_p^{(t)}, F_t)\big), \qquad
#   z^{(t)} = z_c^{(t)},$$
#
# where `P` is a self-attention transformer (the *predictor*) and `C` a
# transformer whose blocks self-attend among the tokens and cross-attend into
# `F_t` in parallel (the *corrector*). The predicted state `z_p^{(t)}` has not
# seen frame `t`; the decoder of chapter 04 turns it into a prediction of frame
# `t`, and the error of that prediction is the only training signal. So the
# model must carry in `z` whatever it needs to predict what comes next.
#
# Sizes come from `configs.ModelConfig` (paper values: the encoder of Table 5, the
# loop of Eq. 1–2, with the layer sizes of the authors' `moog/configs/movi.py`):
#
# | part | paper | `tiny` |
# |---|---|---|
# | encoder convs | 64, 128, 128, 256, 256, 512; strides 1, 1, 1, 2, 1, 2 | 8, 16, 16, 32, 32, 32 |
# | tokens `K × D` | 1024 × 512 | 16 × 32 |
# | predictor | 3 layers, self, 4 × 64, MLP 2048 | 1 layer, 2 × 16, MLP 64 |
# | corrector | 2 layers, self ∥ cross, 8 × 64, MLP 2048 | 1 layer, 2 × 16, MLP 64 |

# %%
config = configs.get(PRESET)
mc = config.model
print(PRESET, mc)

# %% [markdown]
# ## 2. Checking inputs
#
# A video enters the model as float frames `[B, T, H, W, 3]` with values in
# `[0, 1]`. Getting this wrong is the most common way to waste a training run
# (uint8 frames in `[0, 255]`, a missing batch axis, a NaN from a broken
# decoder), so every entry point checks its inputs before it computes anything.
# Shapes and dtypes are always known, even inside `jax.jit`, so they are always
# checked: `check_frames` declares them in its signature,
# `Float[ArrayLike, "B T H W 3"]` (chapter 00, section 3), and a wrong rank, a
# fourth channel or uint8 frames raise jaxtyping's `TypeCheckError`. What a
# type cannot say gets a `ValueError`: H and W must be divisible by the
# encoder's stride, and *values* (range, NaN/Inf), which are only known for
# concrete arrays. Those are checked eagerly and skipped when the model is
# traced inside `jit` — call `check_frames` on the host (e.g. in the data
# pipeline) if you want them checked there too.

# %%
#| export
"""The encoder: input checks, the conv stack and `Encoder` (frames to feature tokens).

`check_frames` checks a video [B, T, H, W, 3] in [0, 1]; `encoder_stride` is the
pixels one token spans; `conv_stack` and `apply_conv_stack` are, with chapter 02's
`scale_only_norm`, the pieces `Encoder` (and chapter 12's Ego4D model) is built from.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, ArrayLike, Float

from moog_lib import configs, fourier
from moog_lib.attention import per_token, resolve_dtype, scale_only_norm
from moog_lib.shapes import typed


def encoder_stride(config: configs.ModelConfig) -> int:
    """How many pixels one encoder token spans per axis: the product of the conv strides."""
    return math.prod(config.encoder_strides)


@typed
def check_frames(frames: Float[ArrayLike, "B T H W 3"], *, stride: int = 1, subsample: int = 1,
                 name: str = "frames") -> None:
    """Raise ValueError unless the float video `frames` [B, T, H, W, 3] (the signature
    checks shape and dtype) has values in [0, 1] and H, W divisible by `stride` and `subsample`.

    `stride` is the encoder's, `subsample` the decoder's S. Values (range, NaN/Inf) are
    checked with NumPy on concrete arrays only (also ones a jitted function captures); a
    traced argument is checked for shape and dtype alone.
    """
    shape = frames.shape
    if min(shape) < 1:
        raise ValueError(f"{name} must not be empty, got shape {tuple(shape)}")
    height, width = shape[2], shape[3]
    for factor, what in ((stride, "the encoder stride"), (subsample, "the decoder subsampling S")):
        if height % factor or width % factor:
            raise ValueError(f"{name}: height and width must be divisible by {what} ({factor}), "
                             f"got {height}×{width}; crop or resize to a multiple of {factor}")
    if isinstance(frames, jax.core.Tracer):
        return  # an argument of a jitted function: its values are not known here
    # A concrete array (also one captured by a jitted function) is checked on the
    # host with NumPy, never with traced jnp operations.
    values = np.asarray(frames)
    if not np.isfinite(values).all():
        raise ValueError(f"{name} contain NaN or Inf values; expected finite values in [0, 1]")
    low, high = float(values.min()), float(values.max())
    if low < 0.0 or high > 1.0:
        hint = "; divide 8-bit values by 255" if high > 1.0 else ""
        raise ValueError(f"{name} must have values in [0, 1], got min {low:.4g} and max "
                         f"{high:.4g}{hint}")


# %% [markdown]
# Each mistake is refused, the first three by the signature (we print the
# lines of jaxtyping's message that name the argument and what it got), the
# others by the checks in the body:

# %%
import jaxtyping

good = np.random.default_rng(0).uniform(size=(1, 2, 32, 32, 3)).astype(np.float32)
check_frames(good, stride=4)
mistakes = {
    "uint8 frames": (good * 255).astype(np.uint8),
    "no batch axis": good[0],
    "RGBA": np.concatenate([good, good[..., :1]], -1),
    "values in [0, 255]": good * 255,
    "a NaN": np.where(good > 0.999, np.nan, good),
    "30×30 frames": good[:, :, :30, :30],
}
for what, frames in mistakes.items():
    try:
        check_frames(frames, stride=4)
    except jaxtyping.TypeCheckError as err:
        print(f"{what:18s} -> TypeCheckError:", " ".join(str(err).splitlines()[1:3]))
    except ValueError as err:
        print(f"{what:18s} -> ValueError: {err}")
    else:
        raise AssertionError(f"{what} was accepted")

# %% [markdown]
# ## 3. The encoder
#
# The encoder is a plain convolutional network (paper Table 5): six 3×3
# convolutions with SAME padding and biases, GELU after every convolution but
# the last, then a scale-only LayerNorm over channels. Two of the convolutions
# have stride 2, so a 128×128 frame becomes a 32×32 grid of 512 channels. Then
#
# 1. position enters through Fourier features of the 32×32 grid (20 bases,
#    *project-add*: `x + Dense(features)`, chapter 01) — the only place the
#    encoder knows where a feature came from, since the set of tokens that
#    follows has no order;
# 2. the grid is flattened into `h·w` tokens;
# 3. a `Dense(D)` and a scale-only LayerNorm finish each token.
#
# All `T` frames of a clip go through in **one batched call**: the frames of a
# clip do not depend on each other here, so we fold time into the batch axis,
# which is both simpler and faster than encoding inside the loop.
#
# Names, for chapter 12a (the release keeps the last two in a zero-layer
# "transformer"): `convs[i]` ↔ `encoder/backbone/Conv_i`, `conv_norm` ↔
# `backbone/LayerNorm_0`, `position.dense_pe` ↔ `pos_embedding/dense_pe`,
# `token_dense` ↔ `transformer/Dense_0`, `token_norm` ↔
# `transformer/norm_encoder`. Where the paper does not say which GELU, we use
# the tanh approximation (Flax's default, as in the attention MLPs); the
# LayerNorms use `ε = 1e-6`.

# %%
#| export
def _conv_kernel_init(key, shape, dtype=jnp.float32):
    """Flax's default conv init (LeCun normal, fan-in = 3·3·C_in), drawn as a 2-D matrix.

    Same distribution as `nnx.Conv`'s default; sampling [3·3·C_in, C_out] and
    reshaping compiles about twice as fast on CPU as sampling the 4-D kernel.
    """
    flat = jax.nn.initializers.lecun_normal()(key, (math.prod(shape[:-1]), shape[-1]), dtype)
    return flat.reshape(shape)




def conv_stack(features, strides, *, rngs: nnx.Rngs, dtype, param_dtype, owner: str = "Encoder"):
    """3×3 "SAME" convolutions 3 → features[0] → … → features[-1] with `strides`."""
    features, strides = tuple(features), tuple(strides)
    if not features or len(features) != len(strides):
        raise ValueError(f"{owner}: encoder_features {features} and encoder_strides {strides} "
                         "must be non-empty and of equal length")
    channels = (3,) + features
    return nnx.data([
        nnx.Conv(c_in, c_out, kernel_size=(3, 3), strides=(s, s), padding="SAME",
                 use_bias=True, kernel_init=_conv_kernel_init, rngs=rngs, dtype=dtype,
                 param_dtype=param_dtype)
        for c_in, c_out, s in zip(channels[:-1], channels[1:], strides)
    ])


@typed
def apply_conv_stack(convs, x: Float[ArrayLike, "N H W C"]) -> Float[Array, "N h w C_out"]:
    """Run `conv_stack`'s convolutions on images [N, H, W, C], GELU between them."""
    for i, conv in enumerate(convs):
        x = conv(x)
        if i < len(convs) - 1:
            x = jax.nn.gelu(x, approximate=True)
    return x


# %% [markdown]
# The conv stack alone: every stride-2 convolution halves the height and the
# width, so the grid is the frame divided by `encoder_stride`, with
# `encoder_features[-1]` channels.

# %%
holder = nnx.Module()  # `nnx.data([...])` is meant to be assigned to a module's attribute
holder.convs = conv_stack(mc.encoder_features, mc.encoder_strides, rngs=nnx.Rngs(0),
                          dtype=jnp.float32, param_dtype=jnp.float32)
side = config.data.resolution
conv_grid = apply_conv_stack(holder.convs, jnp.zeros((1, side, side, 3)))
assert len(holder.convs) == len(mc.encoder_features)
assert conv_grid.shape == (1, side // encoder_stride(mc), side // encoder_stride(mc),
                           mc.encoder_features[-1])
print(f"{side}² frame -> conv grid {conv_grid.shape[1:3]} × {conv_grid.shape[3]} channels")

# %% [markdown]
# `Encoder` chains the pieces: the conv stack, a LayerNorm, the Fourier
# position of each grid cell, then one token per cell.

# %%
#| export
class Encoder(nnx.Module):
    """Frames [..., H, W, 3] in [0, 1] -> feature tokens [..., (H/s)·(W/s), D], s = stride.

    Conv stack (GELU between convolutions) → LN → Fourier project-add of the
    grid → flatten → Dense(D) → LN. Any leading axes (batch, time) are folded
    into one batch for the convolutions.
    """

    def __init__(self, config: configs.ModelConfig, *, rngs: nnx.Rngs, dtype=None,
                 param_dtype=jnp.float32):
        features = tuple(config.encoder_features)
        self.dtype = resolve_dtype(dtype, config.compute_dtype)
        self.convs = conv_stack(features, config.encoder_strides, rngs=rngs, dtype=self.dtype,
                                param_dtype=param_dtype)
        self.stride = math.prod(config.encoder_strides)
        self.conv_norm = scale_only_norm(features[-1], 1e-6, rngs, self.dtype, param_dtype)
        self.position = fourier.FourierProjectAdd(features[-1], config.encoder_fourier_bases,
                                                  rngs=rngs, dtype=self.dtype,
                                                  param_dtype=param_dtype)
        self.token_dense = nnx.Linear(features[-1], config.token_dim, rngs=rngs, dtype=self.dtype,
                                      param_dtype=param_dtype)
        self.token_norm = scale_only_norm(config.token_dim, 1e-6, rngs, self.dtype, param_dtype)

    @typed
    def __call__(self, frames: Float[ArrayLike, "*batch H W 3"]) -> Float[Array, "*batch N D"]:
        height, width = frames.shape[-3:-1]
        if height % self.stride or width % self.stride:
            raise ValueError(f"Encoder: height and width must be divisible by the encoder stride "
                             f"({self.stride}), got {height}×{width}")
        leading = frames.shape[:-3]
        x = apply_conv_stack(self.convs, jnp.reshape(frames, (-1, height, width, 3)).astype(self.dtype))
        x = self.conv_norm(x)
        h, w = x.shape[1:3]
        x = self.position(x, fourier.coordinate_grid(h, w))
        x = x.reshape(x.shape[0], h * w, x.shape[-1])
        x = self.token_norm(per_token(self.token_dense, x))
        return x.reshape(leading + x.shape[1:])


# %% [markdown]
# The encoder of the current preset on a clip, and the paper's encoder built
# abstractly (no memory, no compute) to check its grid and its parameter count,
# 2,593,792 (the encoder of the authors' `moog/configs/movi.py`, counted array by
# array):

# %%
def count_params(module) -> int:
    return sum(math.prod(p.shape) for p in jax.tree.leaves(nnx.state(module, nnx.Param)))


resolution = config.data.resolution
clip = jnp.asarray(np.random.default_rng(0).uniform(size=(2, 3, resolution, resolution, 3)),
                   jnp.float32)
encoder = Encoder(mc, rngs=nnx.Rngs(0), dtype="float32")
features = nnx.jit(lambda module, x: module(x))(encoder, clip)
grid = resolution // encoder_stride(mc)
assert features.shape == (2, 3, grid * grid, mc.token_dim)
print(f"{PRESET}: {resolution}² frames -> {grid}×{grid} grid -> tokens {features.shape}")

paper_model = configs.get("paper").model
paper_encoder = nnx.eval_shape(lambda: Encoder(paper_model, rngs=nnx.Rngs(0)))
# An abstract module is called through split/merge: jax.eval_shape traces it with abstract arrays.
encoder_def, abstract_params = nnx.split(paper_encoder)
paper_tokens = jax.eval_shape(lambda p, x: nnx.merge(encoder_def, p)(x), abstract_params,
                              jax.ShapeDtypeStruct((1, 8, 128, 128, 3), jnp.float32))
assert paper_tokens.shape == (1, 8, 32 * 32, 512)
assert count_params(paper_encoder) == 2_593_792
print(f"paper encoder: 128² -> {paper_tokens.shape[2]} tokens of width {paper_tokens.shape[3]}, "
      f"{count_params(paper_encoder):,} parameters")

# %% [markdown]
# ## 4. The initial state: why 1e-4 noise ends up at 1e-2
#
# Before the first frame the state is noise, `z⁽⁰⁾ = LN(1e-4 · ε)` with
# `ε ~ N(0, I)` of shape `[B, K, D]`: fresh noise for every example, nothing
# learned, and passed through the *correction* LayerNorm (the one that ends
# every correction step; `ε_LN = 1e-4`). The noise breaks the symmetry between
# tokens — with identical tokens every token would attend identically and stay
# identical forever — and it is not learned, so the model cannot rely on any
# particular initial token.
#
# The LayerNorm does not turn this noise into unit-variance tokens. It divides
# by `sqrt(var + ε_LN)`, and the variance of the noise is `(1e-4)² = 1e-8`,
# ten thousand times smaller than `ε_LN`. So the denominator is
# `sqrt(1e-8 + 1e-4) ≈ sqrt(1e-4) = 1e-2` and the result has standard deviation
#
# $$\frac{10^{-4}}{\sqrt{10^{-8} + 10^{-4}}} \approx 10^{-2}:$$
#
# a hundred times larger than the noise, a hundred times smaller than a
# normalised token. The authors' release does exactly this; we keep it.

# %%
#| export dynamics
"""The recurrent core: the initial state, the stop-gradient mask, `PredictCorrect`, streaming.

`initial_noise` and `fixed_noise` draw the state before the first frame;
`stop_gradient_mask` says where the carried state is cut from the gradient;
`scan_over_time` scans any NNX module's step over the frames of a clip;
`frame_step` is one frame of the loop and `PredictCorrect` the module
(`unroll` runs `frame_step` over frames);
`chunks_of` and `stream` run it over a video of any length, chunk by chunk.
"""
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, ArrayLike, Bool, Float

from moog_lib import attention, configs
from moog_lib.attention import resolve_dtype, scale_only_norm
from moog_lib.shapes import typed


def initial_noise(key: jax.Array, batch_size: int, num_tokens: int, token_dim: int,
                  scale: float = 1e-4) -> jnp.ndarray:
    """`scale · N(0, I)` of shape [B, K, D], float32: fresh noise for every example."""
    for name, value in (("batch_size", batch_size), ("num_tokens", num_tokens),
                        ("token_dim", token_dim)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
            raise ValueError(f"initial_noise: {name} must be a positive int, got {value!r}")
    return scale * jax.random.normal(key, (batch_size, num_tokens, token_dim), jnp.float32)


def fixed_noise(batch_size: int, num_tokens: int, token_dim: int, scale: float) -> jnp.ndarray:
    """One draw shared by every example: token k is `scale · N(0, I)` from `fold_in(key(0), k)`,
    so the first K tokens are the same whatever K is. [B, K, D], float32."""
    keys = jax.vmap(lambda k: jax.random.fold_in(jax.random.key(0), k))(jnp.arange(num_tokens))
    tokens = jax.vmap(lambda k: jax.random.normal(k, (token_dim,), jnp.float32))(keys)
    return jnp.broadcast_to(scale * tokens, (batch_size, num_tokens, token_dim))


# %%
noise = initial_noise(jax.random.key(0), 4, 256, 512)
layer_norm = nnx.LayerNorm(512, epsilon=1e-4, use_bias=False, rngs=nnx.Rngs(0))
state0 = layer_norm(noise)
predicted_std = 1e-4 / math.sqrt(1e-8 + 1e-4)
print(f"noise std {float(noise.std()):.3g} -> after LN {float(state0.std()):.5f} "
      f"(predicted {predicted_std:.5f})")
assert abs(float(noise.std()) - 1e-4) < 2e-6
assert abs(float(state0.std()) - predicted_std) < 2e-4
assert not jnp.allclose(noise[0], noise[1])  # every example draws its own noise

# %% [markdown]
# **A departure for small worlds (off by default).** Fresh noise means token
# `k` is a different vector in every clip: nothing tells the corrector which
# token should take which part of the scene, so every token at first attends
# to almost the same blend of the frame and the decoder has nothing to route
# by. At the paper's scale that symmetry breaks over a million steps; on a
# laptop it does not break in a thousand. Two switches of `ModelConfig`
# change this, and the `cpu` preset turns both on (chapter 06b's study shows
# what they buy):
#
# - `fixed_initial_state=True`: one draw shared by every clip — token `k` is
#   drawn from `fold_in(key(0), k)`, so it is the same vector in every clip
#   and for any `K` (the first `K` tokens of a larger state are the same);
# - `initial_state_scale=1.0`: that draw at unit scale, so the tokens differ
#   by as much as they would after training, not by 1 %.
#
# Nothing ties the tokens to the grid: the initial state only gives each token
# a name it keeps across clips, as learned queries do in DETR-style models. But
# a name shared by every clip invites a place shared by every clip, and that
# is what the small model learns: trained this way, its tokens settle into one
# partition of the image that hardly depends on the clip (chapter 10a §3
# measures it; chapter 06b §2 shows what it costs). Read the switch as a way to
# get a small model off the ground, not as a way to make its tokens bind.

# %%
same = fixed_noise(2, 4, 8, 1.0)
assert jnp.array_equal(same[0], same[1])  # every clip starts from the same tokens
assert jnp.array_equal(fixed_noise(1, 6, 8, 1.0)[0, :4], same[0])  # and K can grow

# %% [markdown]
# A third switch, `corrector_competition=True` (off by default, off in every
# preset), attacks the symmetry from the other side: the corrector's
# cross-attention becomes Slot Attention's (chapter 02 §3), so the tokens
# compete for each of the frame's features instead of each reading its own
# blend — the corrector of SAVi (Kipf et al., 2022), a predict–correct model of
# the same shape that learns object slots on MOVi-style scenes. It adds no
# parameter; chapter 06b §2 measures it with a fixed draw and with fresh noise.

# %% [markdown]
# ## 5. Predict, correct
#
# One module holds the three learned pieces of the loop:
#
# - `predictor` — `P`, a self-attention transformer over the `K` tokens
#   (paper: 3 layers, 4 heads × 64, MLP 2048), used as a residual:
#   `z_p = z + P(z)`;
# - `corrector` — `C`, whose blocks run self-attention over the tokens and
#   cross-attention into the frame's tokens `F_t` in parallel (paper: 2 layers,
#   8 heads × 64, MLP 2048);
# - `correction_norm` — the scale-only LayerNorm with `ε = 1e-4` that ends each
#   correction: `z_c = LN(z_p + C(z_p, F_t))`. It keeps the carried state at a
#   fixed scale however many frames go by.
#
# Release names: `predictor`, `corrector`, `correction_layer_norm`.
#
# Note what the loop does **not** contain: no position embedding of the
# tokens, no parameter whose shape involves `K`, `h·w` or `T`. Attention is
# defined for sets of any size, so the same parameters run with any number of
# tokens, on frames of any size (that the encoder stride divides), for any
# number of frames. The paper uses this to change `K` at test time (its
# Fig. 7).
#
# Two switches of the authors' release, off by default because the paper
# reports neither (release `moog/modules.py`, `Moog`: `stop_gradient_prob` and
# `use_loss_gradient`), are also here; §9 below explains them.

# %%
#| export dynamics
def stop_gradient_mask(key: jax.Array, batch_size: int, num_frames: int,
                       probability: float) -> jnp.ndarray:
    """bool [B, T]: where True, the state carried into that frame is cut from the gradient."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"stop_gradient_mask: probability must be in [0, 1], got {probability}")
    return jax.random.bernoulli(key, probability, (batch_size, num_frames))


def scan_over_time(module: nnx.Module, step, carry, inputs):
    """`jax.lax.scan` of `step(module, carry, x_t) -> (carry, y_t)` over axis 1 (time) of
    every array in the pytree `inputs` [B, T, ...]; returns (carry, outputs [B, T, ...]).

    The library's one scan over an NNX module: it is split into its graph and arrays
    outside the scan and merged inside the body, so the body is a pure function of arrays.
    """
    graphdef, variables = nnx.split(module)
    batch_major = lambda x: jnp.swapaxes(x, 0, 1)

    def body(carry, x):
        return step(nnx.merge(graphdef, variables), carry, x)

    carry, outputs = jax.lax.scan(body, carry, jax.tree.map(batch_major, inputs))
    return carry, jax.tree.map(batch_major, outputs)


# %% [markdown]
# Two tools the loop uses. `stop_gradient_mask` draws, per clip and frame,
# where the release's stop-gradient switch cuts the carried state (§9);
# `scan_over_time` runs a step over the frames (§6 explains how). On a toy
# recurrence `c_t = W c_{t-1} + x_t` it gives what a Python loop gives:

# %%
cuts = stop_gradient_mask(jax.random.key(0), 4, 1000, 0.25)
assert cuts.shape == (4, 1000) and cuts.dtype == bool and abs(float(cuts.mean()) - 0.25) < 0.05
toy_layer = nnx.Linear(3, 3, rngs=nnx.Rngs(0))
toy_inputs = jax.random.normal(jax.random.key(1), (2, 5, 3))  # [B, T, 3]
toy_last, toy_every = scan_over_time(toy_layer, lambda m, c, x: (m(c) + x,) * 2,
                                     jnp.zeros((2, 3)), toy_inputs)
toy_carry = jnp.zeros((2, 3))
for t in range(5):
    toy_carry = toy_layer(toy_carry) + toy_inputs[:, t]
    assert jnp.allclose(toy_every[:, t], toy_carry, atol=1e-5)
assert toy_every.shape == (2, 5, 3) and jnp.allclose(toy_last, toy_carry, atol=1e-5)

# %% [markdown]
# The loop's signatures declare the shapes (`features` `[B, T, N, D]`, `state`
# `[B, K, D]`, one B and one D for both). What they cannot say is checked
# before anything is traced: D is the module's width, K is at least one, and
# `loss_gradient_fn` comes exactly with the loss-gradient switch. Those checks,
# and the choice between fresh and fixed initial noise (§4), live in functions
# of their own, so that the class after them reads as the model:

# %%
#| export dynamics
def _state_noise(key, batch_size: int, num_tokens, token_dim: int, scale: float,
                 fixed: bool) -> jnp.ndarray:
    """The noise `PredictCorrect.initial_state` normalises, [B, K, D]: `fixed_noise` if
    `fixed`, else `initial_noise`; K (`num_tokens`) must be an int >= 1."""
    if not isinstance(num_tokens, int | np.integer) or num_tokens < 1:
        raise ValueError(f"initial_state: the number of tokens K must be an int >= 1, "
                         f"got {num_tokens!r}")
    if fixed:
        return fixed_noise(batch_size, num_tokens, token_dim, scale)
    return initial_noise(key, batch_size, num_tokens, token_dim, scale)


def _check_unroll_inputs(state, token_dim: int, gradient_input: bool,
                         loss_gradient_fn) -> None:
    """Raise ValueError unless `PredictCorrect.unroll` can run on a `state` [B, K, D] whose
    shape its signature has checked (`gradient_input`: built with `loss_gradient_input`)."""
    if state.shape[2] != token_dim:
        raise ValueError(f"unroll: the tokens must have the module's width D = {token_dim} "
                         f"(config.token_dim), got state and features of width {state.shape[2]}")
    if state.shape[1] < 1:
        raise ValueError("unroll: the state needs at least one token (K >= 1)")
    if gradient_input != (loss_gradient_fn is not None):
        raise ValueError("unroll: pass loss_gradient_fn exactly when the model was built "
                         "with loss_gradient_input=True")


def _frame_inputs(features, last_features, stop_gradient, loss_gradient_inputs):
    """`unroll`'s per-frame inputs, checked and split: (frames 0 … T−2, the last frame)."""
    num_frames = features.shape[1] + (last_features is not None)
    if num_frames < 1:
        raise ValueError("unroll: no frames to run (features of length 0 and no last_features)")
    if stop_gradient is not None and stop_gradient.shape[1] != num_frames:
        raise ValueError(f"unroll: stop_gradient covers {stop_gradient.shape[1]} frames, the "
                         f"features {num_frames}")
    if last_features is None:
        features, last_features = features[:, :-1], features[:, -1]
    rest = (stop_gradient, loss_gradient_inputs)
    return ((features,) + jax.tree.map(lambda x: x[:, :-1], rest),
            (last_features,) + jax.tree.map(lambda x: x[:, -1], rest))


# %%
try:
    _check_unroll_inputs(jnp.zeros((2, 4, mc.token_dim + 1)), mc.token_dim,
                         gradient_input=False, loss_gradient_fn=None)
except ValueError as err:
    print("a state of the wrong width is refused:", err)
else:
    raise AssertionError("a state of the wrong width was accepted")

# %% [markdown]
# One frame of the loop, written for `scan_over_time`: the carried state in,
# `(z_c, (z_p, z_c))` out. A `True` in the `stop_gradient` mask cuts the
# gradient into the state before the prediction; with the release's
# loss-gradient switch the corrector also sees `dL/dz_p`.

# %%
#| export dynamics
def frame_step(module, state, inputs, *, loss_gradient_fn=None):
    """One predict–correct step of `module` (a `PredictCorrect`) on `inputs` = (features
    [B, N, D], stop-gradient flags [B] or None, the loss-gradient inputs of this frame)."""
    features, stop, extra = inputs
    if stop is not None:
        state = jnp.where(stop[:, None, None], jax.lax.stop_gradient(state), state)
    predicted = module.predict(state)
    gradient = (None if loss_gradient_fn is None
                else jax.lax.stop_gradient(loss_gradient_fn(predicted, extra)))
    corrected = module.correct(predicted, features, gradient)
    return corrected, (predicted, corrected)


# %% [markdown]
# And the module itself: the three learned pieces, the initial state, one
# prediction, one correction, and `unroll`, the loop over a clip's frames.
#
# `unroll` scans over every frame but the last and runs the last one outside
# the scan. The result is the same; what changes is what `jit` may leave out.
# Pretraining decodes only the `z_p`, so the last frame's correction is never
# used — but XLA cannot drop work from one iteration of a loop. Outside the
# loop it is dead code and is dropped. At the paper's size with T = 2 (B = 1,
# 128², float32) XLA counts 438.8 GFLOP for the train step with every frame
# in the scan and 360.8 with the last frame outside it — the release's step
# (their Python loop, which `jit` prunes the same way) counts 360.8 (`python
# benchmarks/step.py --preset paper --batch 1 --frames 2 --compile-only`). At
# T = 8 the saving is one correction in eight.
#
# The same holds one step earlier: the last frame's *features* feed only that
# correction. Encoded together with the other frames they cannot be dropped
# (one batched convolution), so `unroll` also takes them apart,
# `last_features`: then `jit` drops the last frame's encoding, forward and
# backward — at T = 2 half of the encoder: XLA's count of the train step falls
# from 360.8 to 308.9 GFLOP (chapter 04's `MooG` does this; chapter 06 §2 times
# the step, whose count is 316.1 GFLOP because chapter 02's blockwise attention
# recomputes its weights in the backward pass).

# %%
#| export dynamics
class PredictCorrect(nnx.Module):
    """The recurrent core: `z_p = z + P(z)`, `z_c = LN(z_p + C(z_p, F_t))`.

    Built from `configs.ModelConfig`. With `config.loss_gradient_input` (the
    release's switch, not in the paper) the corrector's query is
    `gradient_projection([z_p, dL/dz_p])` instead of `z_p`.
    """

    def __init__(self, config: configs.ModelConfig, *, rngs: nnx.Rngs, dtype=None,
                 param_dtype=jnp.float32):
        width = config.token_dim
        self.dtype = resolve_dtype(dtype, config.compute_dtype)
        self.token_dim = width
        self.initial_state_scale = config.initial_state_scale
        self.fixed_initial_state = config.fixed_initial_state
        kwargs = dict(rngs=rngs, dtype=self.dtype, param_dtype=param_dtype)
        self.predictor = attention.Transformer.from_config(
            width, config.predictor, qk_norm_scale=config.qk_norm_scale, **kwargs)
        self.corrector = attention.Transformer.from_config(
            width, config.corrector, kv_size=width, qk_norm_scale=config.qk_norm_scale,
            cross_compete=config.corrector_competition, **kwargs)
        self.correction_norm = scale_only_norm(width, config.correction_norm_eps, rngs,
                                                self.dtype, param_dtype)
        self.gradient_projection = (nnx.Linear(2 * width, width, **kwargs)
                                    if config.loss_gradient_input else None)

    def initial_state(self, key: jax.Array, batch_size: int, num_tokens: int) -> jnp.ndarray:
        """The state before the first frame: LN(scale · N(0, I)), [B, K, D].

        With `fixed_initial_state` (a departure, see §4) `key` is ignored: token k
        is drawn from `fold_in(key(0), k)`, the same in every clip and for any K.
        """
        noise = _state_noise(key, batch_size, num_tokens, self.token_dim,
                             self.initial_state_scale, self.fixed_initial_state)
        return self.correction_norm(noise)

    @typed
    def predict(self, state: Float[ArrayLike, "B K D"]) -> Float[Array, "B K D"]:
        """z_p = z + P(z)."""
        return state + self.predictor(state)

    @typed
    def correct(self, predicted: Float[ArrayLike, "B K D"], features: Float[ArrayLike, "B N D"],
                loss_gradient: Float[ArrayLike, "B K D"] | None = None) -> Float[Array, "B K D"]:
        """z_c = LN(z_p + C(q, F_t)), q = z_p (or the loss-gradient query, if switched on)."""
        query = predicted
        if self.gradient_projection is not None:
            if loss_gradient is None:
                raise ValueError("correct: loss_gradient_input is on; pass loss_gradient [B, K, D]")
            joined = jnp.concatenate([predicted, loss_gradient.astype(predicted.dtype)], -1)
            query = self.gradient_projection(joined)
        return attention.recompute(self.correction_norm,
                                   predicted + self.corrector(query, features))

    @typed
    def unroll(self, features: Float[ArrayLike, "B F N D"], state: Float[ArrayLike, "B K D"], *,
               last_features: Float[ArrayLike, "B N D"] | None = None,
               stop_gradient: Bool[ArrayLike, "B T"] | None = None,
               loss_gradient_fn: Callable | None = None, loss_gradient_inputs=None) -> dict:
        """Run the loop over the frames of `features`, from `state`.

        Returns {"z_p": [B, T, K, D], "z_c": [B, T, K, D], "state": [B, K, D]}
        (the state to carry into the next chunk). A `jax.lax.scan` over frames.

        - `last_features` [B, N, D]: the last frame apart; `features` holds the others.
        - `stop_gradient`: where True, the state carried into that frame is cut
          from the gradient (see `stop_gradient_mask`).
        - `loss_gradient_fn(z_p, inputs_t) -> dL/dz_p` [B, K, D], called inside
          the loop with `inputs_t` the frame-t slice (axis 1) of the pytree
          `loss_gradient_inputs`; required iff `loss_gradient_input` is on.
        """
        _check_unroll_inputs(state, self.token_dim, self.gradient_projection is not None,
                             loss_gradient_fn)
        head, last = _frame_inputs(features, last_features, stop_gradient, loss_gradient_inputs)
        step = functools.partial(frame_step, loss_gradient_fn=loss_gradient_fn)
        state, (predicted, corrected) = scan_over_time(self, step, state.astype(self.dtype), head)
        state, (last_p, last_c) = step(self, state, last)
        append = lambda frames, last: jnp.concatenate([frames, last[:, None]], axis=1)
        return {"z_p": append(predicted, last_p), "z_c": append(corrected, last_c), "state": state}


# %% [markdown]
# The current preset's loop, its initial state, and the paper's sizes
# (corrector 8,398,848, predictor 7,877,504, correction LN 512 parameters):

# %%
dynamics = PredictCorrect(mc, rngs=nnx.Rngs(1), dtype="float32")
state = dynamics.initial_state(jax.random.key(2), batch_size=2, num_tokens=mc.num_tokens)
assert state.shape == (2, mc.num_tokens, mc.token_dim)
assert abs(float(state.std()) - predicted_std) < 1e-3  # LN scales start at 1

paper_dynamics = nnx.eval_shape(lambda: PredictCorrect(paper_model, rngs=nnx.Rngs(0)))
sizes = {name: count_params(getattr(paper_dynamics, name))
         for name in ("predictor", "corrector", "correction_norm")}
assert sizes == {"predictor": 7_877_504, "corrector": 8_398_848, "correction_norm": 512}
assert paper_dynamics.gradient_projection is None  # the release's switch is off by default
print({name: f"{n:,}" for name, n in sizes.items()})

# %% [markdown]
# A state of one clip beside features of two disagrees on B; the signature of
# `unroll` refuses it before anything runs:

# %%
try:
    dynamics.unroll(jnp.zeros((2, 3, 5, mc.token_dim)), state[:1])
except jaxtyping.TypeCheckError as err:
    print(" ".join(str(err).splitlines()[:3]))
else:
    raise AssertionError("a state of one clip was accepted beside features of two")

# %% [markdown]
# ## 6. Unrolling with `jax.lax.scan`
#
# The obvious loop — `for t in range(T): z = correct(predict(z), F[:, t])` —
# works, but under `jax.jit` Python loops are *unrolled*: the traced program
# contains `T` copies of the predictor and the corrector, and compile time
# grows with `T`. `jax.lax.scan` traces the step **once** and runs it `T`
# times; its outputs are stacked along a new leading axis.
#
# A `scan` body must be a pure function of arrays, while our step lives in NNX
# modules. `scan_over_time` (which `PredictCorrect.unroll` calls, and every
# later recurrent module of the library too) therefore splits the module into a
# static `graphdef` and its parameter arrays outside the scan and merges them
# back inside the body, so the body is pure and JAX sees the parameters as ordinary
# (closed-over) arrays — gradients flow into them as usual. This works the same
# on flax 0.11 and 0.12. Anything random (the initial noise, the stop-gradient
# draws of §9, the decoder's subsampling offsets of chapter 04) is drawn
# *before* the loop and fed in as arrays: the body never touches a random key.
#
# First check: `unroll` gives exactly what a plain Python loop over the same
# modules gives.

# %%
unroll = nnx.jit(lambda module, f, s: module.unroll(f, s))
out = unroll(dynamics, features, state)
assert out["z_p"].shape == out["z_c"].shape == (2, 3, mc.num_tokens, mc.token_dim)
assert jnp.array_equal(out["state"], out["z_c"][:, -1])


@nnx.jit
def python_loop(module, f, s):
    predicted, corrected = [], []
    for t in range(f.shape[1]):
        predicted.append(module.predict(s))
        s = module.correct(predicted[-1], f[:, t])
        corrected.append(s)
    return jnp.stack(predicted, 1), jnp.stack(corrected, 1)


loop_p, loop_c = python_loop(dynamics, features, state)
assert jnp.allclose(out["z_p"], loop_p, atol=1e-5) and jnp.allclose(out["z_c"], loop_c, atol=1e-5)

# %% [markdown]
# Second check: program size and compile time. With the scan, the program XLA
# compiles is the same for 2 and for 16 frames; with the Python loop it holds
# one copy of the step per frame, and compile time grows with it. (Times are
# printed, not asserted: `make` turns on JAX's persistent compilation cache,
# and a program compiled before is read back in milliseconds.)

# %%
import time


def program_and_compile_seconds(fn, *args) -> tuple[int, float]:
    """(lines of the lowered program, seconds to compile it)."""
    lowered = jax.jit(fn).lower(*args)
    start = time.perf_counter()
    lowered.compile()
    return len(lowered.as_text().splitlines()), time.perf_counter() - start


graphdef, params = nnx.split(dynamics)
scan_fn = lambda p, f, s: nnx.merge(graphdef, p).unroll(f, s)["state"]
loop_fn = lambda p, f, s: python_loop(nnx.merge(graphdef, p), f, s)[1]
sizes = {}
for frames_count in (2, 16):
    f = jnp.zeros((2, frames_count) + features.shape[2:])
    (scan_lines, scan_s), (loop_lines, loop_s) = (program_and_compile_seconds(fn, params, f, state)
                                                  for fn in (scan_fn, loop_fn))
    sizes[frames_count] = scan_lines, loop_lines
    print(f"T = {frames_count:2d}: scan {scan_lines} lines, compiles in {scan_s:.2f} s; "
          f"Python loop {loop_lines} lines, {loop_s:.2f} s")
assert sizes[16][0] == sizes[2][0]  # one step, looped at run time
assert sizes[16][1] > 4 * sizes[2][1]  # 16 copies of the step against 2

# %% [markdown]
# ### Chunks carry the state exactly
#
# Because the loop is a recurrence, unrolling 8 frames at once or 4 + 4 frames
# with the state handed over computes the same thing (equal up to
# floating-point rounding). This is how long videos are processed: in chunks,
# carrying `state`.

# %%
eight = jnp.concatenate([features, features[:, ::-1], features[:, :2]], axis=1)  # 8 frames
whole = unroll(dynamics, eight, state)
first = unroll(dynamics, eight[:, :4], state)
second = unroll(dynamics, eight[:, 4:], first["state"])
assert jnp.allclose(whole["z_c"], jnp.concatenate([first["z_c"], second["z_c"]], 1), atol=1e-5)
assert jnp.allclose(whole["state"], second["state"], atol=1e-5)
print("8 frames in one go == 4 + 4 frames carrying the state")

# %% [markdown]
# ### `K` is chosen at call time
#
# The same parameters run with any number of tokens — only the initial
# state's shape changes:

# %%
for num_tokens in (4, mc.num_tokens, 4 * mc.num_tokens):
    s = dynamics.initial_state(jax.random.key(3), 2, num_tokens)
    assert unroll(dynamics, features, s)["z_c"].shape == (2, 3, num_tokens, mc.token_dim)
print("ran with K =", (4, mc.num_tokens, 4 * mc.num_tokens), "on one set of parameters")

# %% [markdown]
# ## 7. Streaming a video of any length
#
# For a video longer than fits in memory, process a chunk, keep what you need
# (on the host), carry the state, and move on. `stream` is that loop: it takes
# any iterable of chunks — a generator that decodes a file, say — and a step
# function, and yields each chunk's outputs with the state after it. It holds
# one chunk at a time, so memory does not grow with the length of the video,
# and a jitted step function compiles once for all chunks of one shape (a
# shorter last chunk costs one more compilation).

# %%
#| export dynamics
def chunks_of(frames, chunk_size: int):
    """Split a video [B, T, ...] along time into chunks [B, <= chunk_size, ...] (a generator)."""
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunks_of: chunk_size must be a positive int, got {chunk_size!r}")
    for start in range(0, frames.shape[1], chunk_size):
        yield frames[:, start:start + chunk_size]


def stream(step_fn, chunks, state):
    """Run `step_fn(chunk, state) -> (outputs, new_state)` over `chunks`, carrying the state.

    Yields `(outputs, state)` after every chunk and keeps nothing itself, so
    memory stays that of one chunk however long the video is. Pass a jitted
    `step_fn` to compile once per chunk shape.
    """
    for chunk in chunks:
        outputs, state = step_fn(chunk, state)
        yield outputs, state


# %% [markdown]
# ## 8. A state over a clip
#
# We need a video. Chapters 05–05c build proper datasets; here a few lines of NumPy
# make a clip of a checkered square bouncing over a smooth background.

# %%
def bouncing_square_clip(num_frames: int, size: int, *, velocity=(1.3, 2.1), seed: int = 0):
    """float32 [T, size, size, 3] in [0, 1]: a checkered square bouncing over a gradient."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    background = np.stack([0.35 + 0.15 * np.sin(2 * np.pi * xx), 0.4 + 0.15 * np.cos(3 * np.pi * yy),
                           0.5 + 0.1 * np.sin(2 * np.pi * (xx + yy))], -1)
    side = max(4, size // 4)
    checks = (np.add.outer(np.arange(side) // max(1, side // 4), np.arange(side) // max(1, side // 4)) % 2)
    texture = np.where(checks[..., None], [0.95, 0.2, 0.1], [0.1, 0.1, 0.6])
    span = size - side
    start = rng.uniform(0, span, 2)
    bounce = lambda p: span - abs(p % (2 * span) - span)  # reflect at the borders
    clip = np.repeat(background[None], num_frames, 0)
    for t in range(num_frames):
        y, x = (int(round(bounce(start[i] + t * velocity[i]))) for i in range(2))
        clip[t, y:y + side, x:x + side] = texture
    return clip.astype(np.float32)


num_frames = 12
moving = bouncing_square_clip(num_frames, resolution)
static = np.repeat(moving[:1], num_frames, 0)
check_frames(moving[None], stride=encoder_stride(mc))

import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 6, figsize=(12, 2.2))
for ax, t in zip(axes, range(0, num_frames, 2)):
    ax.imshow(moving[t])
    ax.set_title(f"frame {t}")
    ax.axis("off")
plt.show()

# %% [markdown]
# Stream both clips — the bouncing square and the same clip frozen on its
# first frame — through the encoder and the loop, four frames at a time,
# keeping the states on the host. The step is traced once: the counter below
# only advances while JAX traces.

# %%
traces = []


@nnx.jit
def encode_and_unroll(encoder, dynamics, chunk, state):
    traces.append(chunk.shape)  # runs only when JAX traces the function
    outputs = dynamics.unroll(encoder(chunk), state)
    return outputs, outputs["state"]


def run_clip(video, key):
    state = dynamics.initial_state(key, 1, mc.num_tokens)
    step = lambda chunk, s: encode_and_unroll(encoder, dynamics, chunk, s)
    kept = {"z_p": [], "z_c": []}
    for outputs, _ in stream(step, chunks_of(jnp.asarray(video[None]), 4), state):
        for name in kept:
            kept[name].append(np.asarray(outputs[name][0]))
    return {name: np.concatenate(arrays) for name, arrays in kept.items()}  # [T, K, D]


states = {"moving": run_clip(moving, jax.random.key(5)), "static": run_clip(static, jax.random.key(5))}
assert len(traces) == 1 and states["moving"]["z_c"].shape == (num_frames, mc.num_tokens, mc.token_dim)
print("compiled once for", 2 * num_frames // 4, "chunks")

# %% [markdown]
# What do the tokens do? The model is untrained, so the tokens do not track
# anything yet (chapter 11 looks at a trained model), but the loop's
# *mechanics* are already visible. Left: how similar each token is to itself
# one frame later. Middle: how similar *different* tokens are to each other.
# Right: the first two principal components of every token over the moving
# clip — one line per token, a dot at the last frame.

# %%
def cosine(a, b):
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def mean_pairwise_cosine(z):  # [T, K, D] -> [T]: mean cosine between two different tokens
    unit = z / np.linalg.norm(z, axis=-1, keepdims=True)
    gram = np.einsum("tkd,tjd->tkj", unit, unit)
    k = z.shape[1]
    return (gram.sum((1, 2)) - k) / (k * (k - 1))


fig, axes = plt.subplots(1, 3, figsize=(14, 3.4))
for name, s in states.items():
    axes[0].plot(range(1, num_frames), cosine(s["z_c"][1:], s["z_c"][:-1]).mean(-1), "o-",
                 label=name)
    axes[1].plot(range(num_frames), mean_pairwise_cosine(s["z_c"]), "o-", label=name)
axes[0].set(xlabel="frame t", ylabel="mean cos(z_c[t], z_c[t-1])", title="each token vs. itself")
axes[1].set(xlabel="frame t", ylabel="mean cos between tokens", title="tokens vs. each other")
axes[0].legend()
flat = states["moving"]["z_c"].reshape(-1, mc.token_dim)
centred = flat - flat.mean(0)
_, _, components = np.linalg.svd(centred, full_matrices=False)
projected = (centred @ components[:2].T).reshape(num_frames, mc.num_tokens, 2)
for k in range(mc.num_tokens):
    axes[2].plot(projected[:, k, 0], projected[:, k, 1], "-", lw=0.8, alpha=0.7)
    axes[2].scatter(projected[-1, k, 0], projected[-1, k, 1], s=8)
axes[2].set(title="token trajectories (PCA of z_c)", xlabel="PC 1", ylabel="PC 2")
plt.tight_layout()
plt.show()

# %% [markdown]
# Three things to read off:
#
# 1. The correction LayerNorm keeps every corrected token at unit RMS, so the
#    state neither explodes nor vanishes however long the clip is.
# 2. Untrained, the loop is a *smoother*: every attention layer averages
#    tokens, and after a dozen predict–correct steps, each with several
#    attention layers, the tokens have drifted towards each other (the middle
#    panel climbs towards 1). Deep stacks of attention lose rank this way (Dong et al., 2021);
#    residual connections slow it down, and training is what keeps the tokens
#    apart, because distinct tokens are needed to predict distinct parts of the
#    next frame.
# 3. The video matters, but only a little yet: on `tiny` the bouncing and the
#    frozen clip give states that differ by a few percent. Next-frame prediction (chapters
#    04 and 06) is what makes the corrector listen to the frame.

# %%
for name, s in states.items():
    rms = np.linalg.norm(s["z_c"], axis=-1) / np.sqrt(mc.token_dim)
    assert np.allclose(rms, 1.0, atol=0.05), name  # LN scales are 1 at initialisation
difference = (np.linalg.norm(states["moving"]["z_c"] - states["static"]["z_c"], axis=(1, 2))
              / np.linalg.norm(states["moving"]["z_c"], axis=(1, 2)))
print("relative difference moving vs static, per frame:", np.round(difference, 3))
assert difference[0] < 1e-6 < difference[-1]  # identical first frames, then they part
print("mean cosine between tokens, first and last frame:",
      np.round(mean_pairwise_cosine(states["moving"]["z_c"])[[0, -1]], 2))

# %% [markdown]
# ## 9. Two switches from the authors' release (not in the paper)
#
# The authors' code has two options that the paper does not describe. Both are
# off by default (`configs.ModelConfig`), and both are here so that the
# release's configurations can be reproduced (`moog/modules.py`, `Moog.__call__`
# and `Moog.frame_step`).
#
# **Random stop-gradient of the carried state** (`state_stop_gradient_prob = p`).
# Before each frame, for each example independently, the state carried into
# the frame is cut from the gradient with probability `p`: a random form of
# truncated backpropagation through time. The draws are made up front with
# `stop_gradient_mask` and passed to `unroll` as a `[B, T]` boolean array.
#
# **Loss-gradient input** (`loss_gradient_input = True`). The corrector's query
# becomes `Dense(D)([z_p, ∂L_t/∂z_p])`: the model is shown, for every token, the
# gradient of the frame-`t` prediction loss with respect to that token — a
# learned analogue of a gradient step on the state, reminiscent of learned
# optimisers and of the "innovation" term of a Kalman filter. Computing it
# needs the decoder and frame `t` *inside* the loop, so `unroll` takes a
# `loss_gradient_fn(z_p, inputs_t)` and the per-frame inputs it needs (chapter 04
# passes the decoder's loss). Only the query changes: the residual is still
# `z_p`, so `z_c = LN(z_p + C(q, F_t))` (the release's `Moog` adds the
# corrector's output to the predicted state, not to `q`). The release does not
# pin down how the outer
# gradient treats this input; we treat it as an input — `stop_gradient`, no
# second derivatives through the decoder — and say so here. The projection adds
# `2D·D + D` parameters (524,800 in the paper model); chapter 12a maps it to the
# release's `state_grad_projector`.

# %%
mask = stop_gradient_mask(jax.random.key(7), 2, 3, 0.5)
assert mask.shape == (2, 3) and mask.dtype == jnp.bool_


def last_frame_loss(features, cut):
    out = dynamics.unroll(features, state, stop_gradient=cut)
    return (out["z_p"][:, -1] ** 2).sum()


gradient = jax.jit(jax.grad(last_frame_loss))  # one compilation serves both masks
no_cut = jnp.zeros((2, 3), bool)
cut_before_last = no_cut.at[:, 2].set(True)  # cut the state carried into frame 2
assert jnp.abs(gradient(features, no_cut)[:, 0]).max() > 0
assert jnp.abs(gradient(features, cut_before_last)[:, 0]).max() == 0  # frame 0 no longer reachable
print("a cut before the last frame stops the gradient reaching frame 0")

switched = configs.override(configs.get(PRESET), ["model.loss_gradient_input=True"]).model
with_gradient_input = PredictCorrect(switched, rngs=nnx.Rngs(1), dtype="float32")
target = jax.random.normal(jax.random.key(8), (2, 3, mc.num_tokens, mc.token_dim))
toy_loss_gradient = lambda z_p, target_t: jax.grad(lambda z: ((z - target_t) ** 2).sum())(z_p)
out = nnx.jit(lambda m, f, s, y: m.unroll(f, s, loss_gradient_fn=toy_loss_gradient,
                                          loss_gradient_inputs=y))(
    with_gradient_input, features, state, target)
assert out["z_c"].shape == (2, 3, mc.num_tokens, mc.token_dim)
assert with_gradient_input.gradient_projection.kernel[...].shape == (2 * mc.token_dim, mc.token_dim)
paper_switched = nnx.eval_shape(lambda: PredictCorrect(
    configs.override(configs.get("paper"), ["model.loss_gradient_input=True"]).model,
    rngs=nnx.Rngs(0)))
assert count_params(paper_switched.gradient_projection) == 524_800
try:
    with_gradient_input.unroll(features, state)
except ValueError as err:
    print("caught:", err)

# %% [markdown]
# ## Summary
#
# - `Encoder`: six 3×3 convolutions (GELU between them) → LN → Fourier
#   project-add of the grid → flatten → Dense(D) → LN; all frames in one call.
#   Paper: 128² → 1024 tokens of 512, 2,593,792 parameters.
# - The initial state is `LN(1e-4 · N(0, I))`, fresh per example; since the
#   noise variance (1e-8) is far below the LN's ε (1e-4), its std is
#   `1e-4 / sqrt(1e-8 + 1e-4) ≈ 1e-2`.
# - `PredictCorrect`: `z_p = z + P(z)`, `z_c = LN(z_p + C(z_p, F_t))`;
#   `unroll` runs it with `jax.lax.scan` (compile time independent of `T`),
#   splitting the modules into graph and arrays around the scan; randomness is
#   drawn before the loop.
# - Chunks that carry `state` reproduce one long unroll; `stream` processes a
#   video of any length in constant memory; `K` is a call-time choice.
# - Signatures declare shapes (`Float[ArrayLike, "B T H W 3"]`), checked at
#   every call: wrong ranks, channel counts and integer frames are refused
#   there. `check_frames` adds what a type cannot say: values outside [0, 1],
#   NaN/Inf (outside `jit` only) and sizes the stride does not divide.
# - The release's random stop-gradient and loss-gradient input are switches,
#   off by default.
#
# ## Exercises
#
# 1. ★ The initial noise scale is a config field. Predict the standard
#    deviation of the initial state for noise scales 1e-4, 1e-3, 1e-2 and 1
#    (with the correction LN's ε = 1e-4), then check numerically. At which
#    scale does the LN start to "work" (output std near 1)?
# 2. ★★ Truncated backpropagation through time with a fixed window: build a
#    stop-gradient mask that cuts the state every 2 frames, and show with
#    `jax.grad` that the predicted state of frame 5 depends (through the
#    gradient) on the features of frame 4 only — not on frame 3 or earlier.
#    Why not on frame 5 itself?
# 3. ★★★ Nothing in the parameters depends on `K`, so `K` can even change in
#    the middle of a video. Unroll 4 frames with `K` tokens, append `K` fresh
#    tokens (a new initial state) to the carried state, and unroll 4 more
#    frames with `2K` tokens. Check that it runs, and measure how much the
#    newcomers change the original tokens compared to carrying on with `K`.

# %% [markdown]
# ### Solution 1

# %%
for scale in (1e-4, 1e-3, 1e-2, 1.0):
    z = nnx.LayerNorm(512, epsilon=1e-4, use_bias=False, rngs=nnx.Rngs(0))(
        initial_noise(jax.random.key(0), 2, 256, 512, scale))
    predicted = scale / math.sqrt(scale**2 + 1e-4)
    print(f"noise {scale:g}: std {float(z.std()):.4f} (predicted {predicted:.4f})")
    assert abs(float(z.std()) - predicted) < 2e-2 * predicted
# The LN normalises once the variance dominates ε: scale² >> 1e-4, i.e. scale >~ 1e-1.

# %% [markdown]
# ### Solution 2

# %%
six = jnp.concatenate([features, features], axis=1)  # [2, 6, N, D]
every_two = jnp.zeros((2, 6), bool).at[:, 0::2].set(True)  # cut before frames 0, 2, 4


def frame5_loss(f):
    return (dynamics.unroll(f, state, stop_gradient=every_two)["z_p"][:, 5] ** 2).sum()


reach = jnp.abs(jax.jit(jax.grad(frame5_loss))(six)).max(axis=(0, 2, 3))  # [6]: per frame
print("largest |gradient| per frame:", np.round(np.asarray(reach), 5))
assert (reach[:4] == 0).all() and reach[4] > 0
# z_p of frame 5 is predicted from the state corrected with frame 4; frame 5's own
# features only enter after the prediction, so even they get no gradient here.
assert reach[5] == 0

# %% [markdown]
# ### Solution 3

# %%
k = mc.num_tokens
start = dynamics.initial_state(jax.random.key(11), 2, k)
first_half = unroll(dynamics, eight[:, :4], start)
newcomers = dynamics.initial_state(jax.random.key(12), 2, k)
grown = unroll(dynamics, eight[:, 4:], jnp.concatenate([first_half["state"], newcomers], axis=1))
kept = unroll(dynamics, eight[:, 4:], first_half["state"])
assert grown["z_c"].shape == (2, 4, 2 * k, mc.token_dim)
change = (jnp.linalg.norm(grown["z_c"][:, :, :k] - kept["z_c"], axis=-1)
          / jnp.linalg.norm(kept["z_c"], axis=-1)).mean(axis=(0, 2))
print("relative change of the original tokens per frame:", np.round(np.asarray(change), 3))
assert (change > 0).all()
# The old tokens now share attention with the newcomers, so they change; the
# change is moderate because attention is a weighted average that the newcomers
# join, not a replacement of the old tokens.

# %% [markdown]
# ## References
#
# - S. van Steenkiste et al. *Moving Off-the-Grid: Scene-Grounded Video
#   Representations.* NeurIPS 2024 (Section 3, Eq. 1–2; Appendix C, Table 5).
# - T. Kipf et al. *Conditional Object-Centric Learning from Video* (SAVi).
#   ICLR 2022 — an earlier predictor–corrector over a set of latents.
# - R. E. Kalman. *A New Approach to Linear Filtering and Prediction Problems.*
#   1960 — the predict/correct pattern.
# - Y. Dong, J.-B. Cordonnier, A. Loukas. *Attention is not all you need: pure
#   attention loses rank doubly exponentially with depth.* ICML 2021.
# - JAX documentation: `jax.lax.scan`; Flax NNX documentation: `nnx.split`,
#   `nnx.merge`, `nnx.eval_shape`.
