"""Fourier features of coordinates.

`coordinate_grid` gives pixel-centre coordinates in [-1, 1], `fourier_features`
their sines and cosines in the release's layout, and `FourierProjectAdd`,
`FourierConcat` and `FourierReplace` are the three ways a position enters a token.

Generated from chapters/01_fourier_features.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "coordinate_grid",
    "fourier_features",
    "FourierProjectAdd",
    "FourierConcat",
    "FourierReplace",
]


import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, ArrayLike, Float

from moog_lib.shapes import typed


# chapters/01_fourier_features.py, cell 5
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


# chapters/01_fourier_features.py, cell 8
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


# chapters/01_fourier_features.py, cell 18
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
