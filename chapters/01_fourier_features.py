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
# # 01 — Fourier features
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/moog-tutorial/moog-tutorial/blob/main/notebooks/01_fourier_features.ipynb)
#
# **What you will learn.** MooG never stores "where" in the shape of an array:
# its tokens are a set, and the only way position enters the model is through
# *Fourier features* of coordinates. The encoder adds them to its feature grid,
# the decoder builds its pixel queries from them, and the readouts turn query
# points into latents with them. In this chapter you will
#
# - build the coordinate grid every later chapter uses (`coordinate_grid`);
# - compute Fourier features in exactly the layout of the paper and the
#   authors' release (`fourier_features`);
# - meet the three ways the model applies them — *project-add*, *concat* and
#   *replace* — as small Flax NNX modules;
# - see why the coordinates −1 and +1 receive identical features, and why we
#   keep that quirk.
#
# **Prerequisites.** Chapter 00 (notation and presets); NumPy broadcasting; the
# basics of JAX (`jax.numpy`, `jax.random`).
#
# **Runtime.**
#
# | preset | hardware | this chapter |
# |---|---|---|
# | `tiny` | CI, 2 CPU cores | 13 s (nbval in `make test` on a clean clone, two workers, nothing else running; 2026-12-03) |
# | `colab` | Colab TPU v5e-1 | estimate ≈ 1–2 min, nearly all of it the setup cell's install; the cells run in seconds; not measured on a TPU |

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
#| default_exp fourier

# %% [markdown]
# ## 1. The coordinate grid
#
# A frame of `H × W` pixels gets one coordinate pair per pixel, `(y, x)`, each in
# `[-1, 1]`. MooG samples the interval with `linspace` *including both end
# points*: the top-left pixel sits at `(-1, -1)` and the bottom-right one at
# `(1, 1)` — not at pixel centres. Rows come first (`"ij"` indexing), so
# `grid[i, j] == (y_i, x_j)`.

# %%
#| export
"""Fourier features of coordinates.

`coordinate_grid` gives pixel-centre coordinates in [-1, 1], `fourier_features`
their sines and cosines in the release's layout, and `FourierProjectAdd`,
`FourierConcat` and `FourierReplace` are the three ways a position enters a token.
"""
import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, ArrayLike, Float

from moog_lib.shapes import typed


def coordinate_grid(height: int, width: int) -> jnp.ndarray:
    """Pixel coordinates of an `height × width` frame: float32 [H, W, 2] as (y, x).

    Each axis is `linspace(-1, 1, n)` with both end points, stacked with "ij"
    indexing, so `grid[i, j] = (y_i, x_j)`.
    """
    for name, size in (("height", height), ("width", width)):
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"coordinate_grid: {name} must be a positive int, got {size!r}")
    ys = jnp.linspace(-1.0, 1.0, height, dtype=jnp.float32)
    xs = jnp.linspace(-1.0, 1.0, width, dtype=jnp.float32)
    return jnp.stack(jnp.meshgrid(ys, xs, indexing="ij"), axis=-1)


# %%
grid = coordinate_grid(3, 4)
assert grid.shape == (3, 4, 2) and grid.dtype == jnp.float32
assert jnp.allclose(grid[0, 0], jnp.array([-1.0, -1.0])) and jnp.allclose(grid[-1, -1], 1.0)
assert jnp.allclose(grid[1, :, 0], 0.0)  # the middle row has y = 0
print(grid[..., 0], "\n", grid[..., 1])

# %% [markdown]
# ## 2. Fourier features
#
# With `B_f` bases, a `D_c`-dimensional coordinate `c` is multiplied by
# `π · 2^k` for `k = 0 … B_f − 1`. The products are laid out
# **frequency-major, dimension-minor** — `[x₀(y), x₀(x), x₁(y), x₁(x), …]` —
# and the features are `sin` of that vector followed by `sin` of the vector
# shifted by `π/2`, i.e. all sines, then all cosines. The width is
# `2 · D_c · B_f`: 80 for 2-D coordinates with 20 bases (the encoder), 64 with
# 16 bases (the decoder and the readouts).
#
# Why this layout matters: the authors' released checkpoints contain a Dense
# layer whose input rows follow it. Load those weights with a different
# ordering and the model still runs — it just sees scrambled positions.
#
# The signature states the shapes in the library's notation (chapter 00,
# section 3): coordinates `Float[ArrayLike, "*batch D_c"]` in, features
# `Float[Array, "*batch F"]` out, the leading axes `*batch` kept; `@typed`
# checks them at every call.

# %%
#| export
@typed
def fourier_features(coords: Float[ArrayLike, "*batch D_c"],
                     num_bases: int) -> Float[Array, "*batch F"]:
    """Sinusoidal features of coordinates: [..., D_c] -> [..., F], F = 2 * D_c * num_bases.

    `x_k = (pi * coords) * 2**k` for k = 0 .. num_bases-1, concatenated
    frequency-major and dimension-minor; the result is `sin([x, x + pi/2])`
    (all sines, then all cosines). Computed in float32, with the argument formed
    as the release forms it (`(pi * coords) @ freq_basis`, section 3 below), so
    jitted and eager results agree bit for bit.
    """
    if num_bases < 1:
        raise ValueError(f"fourier_features: num_bases must be a positive int, got {num_bases!r}")
    coords = jnp.asarray(coords, jnp.float32)
    eye = jnp.eye(coords.shape[-1], dtype=jnp.float32)
    freq_basis = jnp.concatenate([2.0**k * eye for k in range(num_bases)], axis=1)  # [D_c, D_c·B_f]
    scaled = jnp.matmul(coords * jnp.pi, freq_basis, precision=jax.lax.Precision.HIGHEST)
    return jnp.sin(jnp.concatenate([scaled, scaled + jnp.pi / 2], axis=-1))


# %% [markdown]
# A check against the closed form, feature by feature: feature `k·D_c + d` is
# `sin(π 2^k c_d)` and, `D_c·B_f` places later, its cosine.

# %%
coords = jax.random.uniform(jax.random.key(0), (5, 2), minval=-1, maxval=1)
feats = fourier_features(coords, num_bases=3)
assert feats.shape == (5, 12)
for k in range(3):
    for d in range(2):
        angle = jnp.pi * 2.0**k * coords[:, d]
        assert jnp.allclose(feats[:, k * 2 + d], jnp.sin(angle), atol=1e-5)
        assert jnp.allclose(feats[:, 6 + k * 2 + d], jnp.cos(angle), atol=1e-5)
assert fourier_features(coordinate_grid(32, 32), 20).shape == (32, 32, 80)
assert fourier_features(coordinate_grid(128, 128), 16).shape == (128, 128, 64)

# %% [markdown]
# What do they look like? Each feature is a stripe pattern along one axis; the
# frequency doubles with every basis, so the first features tell the coarse
# position and the later ones the fine position.

# %%
import matplotlib.pyplot as plt

features = fourier_features(coordinate_grid(64, 64), num_bases=4)  # [64, 64, 16]
fig, axes = plt.subplots(2, 8, figsize=(14, 3.8))
for channel, ax in enumerate(axes.flat):
    ax.imshow(features[..., channel], cmap="RdBu", vmin=-1, vmax=1)
    kind = "sin" if channel < 8 else "cos"
    k, d = divmod(channel % 8, 2)
    ax.set_title(f"{kind} k={k} {'yx'[d]}", fontsize=9)
    ax.axis("off")
fig.suptitle("Fourier features of a 64×64 grid (4 bases)")
plt.show()

# %% [markdown]
# ## 3. The edges alias: features(−1) = features(+1)
#
# The lowest frequency is `π · c`, whose period in `c` is 2 — exactly the
# length of `[-1, 1]`. Every higher frequency has a period that divides 2. So
# the first row and the last row of a frame (`y = −1` and `y = +1`) get the
# *same* features, and so do the first and last columns: to the model, the
# grid is a torus. The paper and the release keep this, and the released
# weights were trained with it, so we keep it too; exercise 2 shows how you
# would remove it in a model of your own.
#
# "The same" holds up to float32 rounding, and that rounding grows with the
# frequency: the argument of the 16th basis is `π·2^15 ≈ 10^5`, where float32
# values are `2^-7 ≈ 0.008` apart. So the check below compares 8 bases tightly
# and 16 bases loosely.

# %%
edges = jnp.array([[-1.0, -1.0], [1.0, 1.0], [1.0, -1.0]])
tight, loose = fourier_features(edges, num_bases=8), fourier_features(edges, num_bases=16)
assert jnp.allclose(tight[0], tight[1], atol=1e-4) and jnp.allclose(tight[0], tight[2], atol=1e-4)
assert jnp.allclose(loose[0], loose[1], atol=2e-2)
grid_features = fourier_features(coordinate_grid(16, 16), 8)
assert jnp.allclose(grid_features[0], grid_features[-1], atol=1e-4)  # top row == bottom row
print("max |f(-1) - f(+1)|, 8 bases:", float(jnp.abs(tight[0] - tight[1]).max()),
      "| 16 bases:", float(jnp.abs(loose[0] - loose[1]).max()))

# %% [markdown]
# ### Why the floating-point form of the formula matters
#
# The same rounding has a second consequence. The 20th basis of the encoder
# multiplies by `π·2^19 ≈ 1.6·10^6`, where one float32 step is `0.125` rad: the
# top bands are not smooth functions of position any more but a deterministic
# hash of the coordinate's last bits. A model trained on them (the authors' was)
# has learned *that* hash, so the exact order of roundings becomes part of the
# model. The release forms the argument as `(π·c) @ freq_basis`, a matrix
# product with a one-hot matrix of powers of two (`moog/pos_embeddings.py`,
# `_convert_to_fourier_features`): `π·c` is rounded once, the power of two is
# exact, and adding `π/2` rounds a second time. Written as the product
# `c · (π·2^k) + π/2`, XLA fuses multiply and add into one fused multiply-add
# under `jit` — a single rounding — and the cosines differ in the top bands by
# whole units. We form the argument as the release does (with `HIGHEST`
# matmul precision, so a TPU does not round `π·c` to bfloat16 first); then
# jitted and eager features agree bit for bit, and both agree with the
# release's arithmetic written out in NumPy:

# %%
import numpy as np

check_coords = jax.random.uniform(jax.random.key(1), (4096, 2), minval=-1, maxval=1)
for bases in (16, 20):
    eager = np.asarray(fourier_features(check_coords, bases))
    jitted = np.asarray(jax.jit(fourier_features, static_argnums=1)(check_coords, bases))
    c = np.asarray(check_coords, np.float32) * np.float32(np.pi)  # rounded once
    x = np.concatenate([c * np.float32(2.0**k) for k in range(bases)], axis=-1)  # exact
    release = np.sin(np.concatenate([x, x + np.float32(np.pi / 2)], -1), dtype=np.float32)
    scales = jnp.pi * 2.0 ** jnp.arange(bases)  # the one-product form, for contrast:
    fused = np.asarray(jax.jit(lambda c, s: jnp.sin(
        (c[..., None, :] * s[:, None]).reshape(len(c), -1) + jnp.pi / 2))(check_coords, scales))
    assert np.array_equal(eager, jitted), bases
    assert np.abs(eager - release).max() < 1e-6  # sin itself may differ by an ulp
    print(f"{bases} bases: jit == eager bit for bit; max |ours − release (NumPy)| "
          f"{np.abs(eager - release).max():.1e}; one-product cosines vs ours "
          f"{np.abs(fused - eager[:, x.shape[-1]:]).max():.1e}")

# %% [markdown]
# ## 4. Three ways to apply them
#
# The model uses the features in three ways. Each is an NNX module with the
# same call signature, `module(inputs, coords)`, where `coords` broadcasts
# against the leading axes of `inputs`:
#
# | mode | output | used by |
# |---|---|---|
# | project-add | `inputs + Dense(features)` (with bias) | the encoder (20 bases) |
# | concat | `[inputs, features]` | the Ego4D checkpoints' encoder (chapter 12) |
# | replace | `features` only | the decoder's queries, the readouts' query points |
#
# The Dense layer of project-add is named `dense_pe`, as in the authors'
# release, so their parameter trees map onto ours by name (chapter 12a).

# %%
#| export
def _broadcast_features(inputs: jnp.ndarray, coords: jnp.ndarray, num_bases: int) -> jnp.ndarray:
    features = fourier_features(coords, num_bases)
    return jnp.broadcast_to(features, inputs.shape[:-1] + features.shape[-1:]).astype(inputs.dtype)


class FourierProjectAdd(nnx.Module):
    """`inputs + Dense(fourier_features(coords))`: [..., C] -> [..., C]."""

    def __init__(self, features: int, num_bases: int, coord_dim: int = 2, *, rngs: nnx.Rngs,
                 dtype=None, param_dtype=jnp.float32):
        self.num_bases = num_bases
        self.dense_pe = nnx.Linear(2 * coord_dim * num_bases, features, rngs=rngs,
                                   dtype=dtype, param_dtype=param_dtype)

    @typed
    def __call__(self, inputs: Float[ArrayLike, "*batch C"],
                 coords: Float[ArrayLike, "... D_c"]) -> Float[Array, "*batch C"]:
        return inputs + self.dense_pe(fourier_features(coords, self.num_bases)).astype(inputs.dtype)


class FourierConcat(nnx.Module):
    """`[inputs, fourier_features(coords)]`: [..., C] -> [..., C + 2 * D_c * num_bases]."""

    def __init__(self, num_bases: int):
        self.num_bases = num_bases

    @typed
    def __call__(self, inputs: Float[ArrayLike, "*batch C"],
                 coords: Float[ArrayLike, "... D_c"]) -> Float[Array, "*batch C_out"]:
        return jnp.concatenate([inputs, _broadcast_features(inputs, coords, self.num_bases)], -1)


class FourierReplace(nnx.Module):
    """`fourier_features(coords)` broadcast to the leading axes of `inputs`."""

    def __init__(self, num_bases: int):
        self.num_bases = num_bases

    @typed
    def __call__(self, inputs: Float[ArrayLike, "*batch C"],
                 coords: Float[ArrayLike, "... D_c"]) -> Float[Array, "*batch F"]:
        return _broadcast_features(inputs, coords, self.num_bases)


# %%
from flax import nnx

frames = jnp.ones((2, 8, 8, 32))  # a batch of two 8×8 feature grids
grid = coordinate_grid(8, 8)
project_add = FourierProjectAdd(32, num_bases=20, rngs=nnx.Rngs(0))
assert project_add(frames, grid).shape == (2, 8, 8, 32)
assert project_add.dense_pe.kernel[...].shape == (80, 32)
assert FourierConcat(20)(frames, grid).shape == (2, 8, 8, 32 + 80)
replaced = FourierReplace(16)(frames, grid)
assert replaced.shape == (2, 8, 8, 64) and jnp.allclose(replaced[0], replaced[1])
assert jnp.allclose(FourierConcat(20)(frames, grid)[..., 32:], FourierReplace(20)(frames, grid))

# %% [markdown]
# ## Summary
#
# - Coordinates are `linspace(-1, 1, n)` per axis with end points, `(y, x)`
#   order, `"ij"` indexing: `coordinate_grid(H, W) → [H, W, 2]`.
# - `fourier_features(c, B_f)` is `sin` of `π·2^k·c` laid out frequency-major,
#   dimension-minor, all sines then all cosines: width `2·D_c·B_f`.
# - The model applies them by project-add (encoder), concat (the Ego4D
#   variant) or replace (decoder and readout queries).
# - −1 and +1 alias; the model was trained that way and we keep it.
#
# ## Exercises
#
# 1. ★ What width do 3-D coordinates (say `(t, y, x)`) get with 10 bases?
#    Check your answer with `fourier_features`.
# 2. ★★ Show numerically that `c` and `c + 2` get identical features, then make a
#    grid that does not alias (hint: shrink it to `[-0.5, 0.5]` or use pixel
#    centres) and check that the first and last rows now differ.
# 3. ★★★ How many bases does a 128-pixel axis need before every pair of
#    neighbouring rows is separated by a feature distance of at least 1? Plot the
#    smallest neighbour distance against the number of bases, and explain why
#    the curve stops rising.

# %% [markdown]
# ### Solution 1

# %%
width = fourier_features(jnp.zeros((4, 3)), num_bases=10).shape[-1]
assert width == 2 * 3 * 10
print("3-D coordinates, 10 bases ->", width, "features")

# %% [markdown]
# ### Solution 2

# %%
c = jax.random.uniform(jax.random.key(1), (100, 2), minval=-1, maxval=1)
assert jnp.allclose(fourier_features(c, 8), fourier_features(c + 2.0, 8), atol=1e-3)
half_grid = coordinate_grid(16, 16) * 0.5  # [-0.5, 0.5]: the lowest period (2) is never reached
half_features = fourier_features(half_grid, 16)
gap = float(jnp.abs(half_features[0] - half_features[-1]).max())
assert gap > 0.5
print(f"largest feature gap between first and last row without aliasing: {gap:.2f}")

# %% [markdown]
# ### Solution 3

# %%
import numpy as np

rows = coordinate_grid(128, 1)[:, 0, :]  # [128, 2]
smallest = []
for bases in range(1, 11):
    f = fourier_features(rows, bases)
    smallest.append(float(jnp.linalg.norm(f[1:] - f[:-1], axis=-1).min()))
needed = 1 + int(np.argmax(np.array(smallest) >= 1.0))
plt.figure(figsize=(5, 3))
plt.plot(range(1, 11), smallest, "o-")
plt.axhline(1.0, color="gray", ls="--")
plt.xlabel("number of bases")
plt.ylabel("smallest neighbour distance")
plt.show()
print("bases needed:", needed)
# Each extra basis doubles the highest frequency, so the distance between
# neighbours roughly doubles. From k = 7 on, the phase of basis k advances by
# π·2^k·(2/127) ≈ 2π·2^(k-7) between neighbouring rows — a whole number of turns:
# those sines alias on the pixel grid and add (almost) nothing, so the curve flattens.
assert smallest[needed - 1] >= 1.0 and needed == 6
assert abs(smallest[-1] - smallest[6]) < 0.05

# %% [markdown]
# ## References
#
# - S. van Steenkiste, D. Zoran, Y. Yang, Y. Rubanova, R. Kabra, C. Doersch,
#   D. Gokay, J. Heyward, E. Pot, K. Greff, D. A. Hudson, T. A. Keck,
#   J. Carreira, A. Dosovitskiy, M. S. M. Sajjadi, T. Kipf. *Moving
#   Off-the-Grid: Scene-Grounded Video Representations.* NeurIPS 2024.
# - M. Tancik et al. *Fourier Features Let Networks Learn High Frequency
#   Functions in Low Dimensional Domains.* NeurIPS 2020.
# - B. Mildenhall et al. *NeRF: Representing Scenes as Neural Radiance Fields
#   for View Synthesis.* ECCV 2020 (the positional encoding this layout follows).
