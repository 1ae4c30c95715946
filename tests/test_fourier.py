"""Fourier features (release `moog/pos_embeddings.py`) against the closed form, jit, shapes and the three modes."""

import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest
from flax import nnx

from moog_lib.fourier import (
    FourierConcat,
    FourierProjectAdd,
    FourierReplace,
    coordinate_grid,
    fourier_features,
)


def closed_form(coords, num_bases):
    """sin and cos of pi*2^k*c, frequency-major and dimension-minor, sines then cosines."""
    coords = np.asarray(coords, np.float64)
    angles = [np.pi * 2.0**k * coords[..., d] for k in range(num_bases) for d in range(coords.shape[-1])]
    return np.stack([np.sin(a) for a in angles] + [np.cos(a) for a in angles], axis=-1)


@pytest.mark.parametrize("coord_dim, num_bases", [(1, 1), (2, 6), (2, 16), (2, 20), (3, 5)])
def test_matches_closed_form_on_random_coordinates(coord_dim, num_bases):
    coords = np.random.default_rng(coord_dim * 100 + num_bases).uniform(-1, 1, (7, 3, coord_dim))
    coords = coords.astype(np.float32)
    got = np.asarray(fourier_features(jnp.asarray(coords), num_bases))
    assert got.shape == (7, 3, 2 * coord_dim * num_bases)
    # The argument pi*2^k*c is rounded to float32, whose spacing grows with it: compare
    # each feature with a tolerance of a few float32 ulps of its argument.
    magnitude = np.pi * 2.0 ** np.arange(num_bases).repeat(coord_dim) + np.pi / 2
    ulps = np.spacing(magnitude.astype(np.float32)).astype(np.float64)
    tolerance = np.concatenate([ulps, ulps]) * 4 + 2e-6
    error = np.abs(got - closed_form(coords, num_bases)).max(axis=(0, 1))
    assert np.all(error <= tolerance), (error, tolerance)


def test_coordinate_grid_convention():
    grid = np.asarray(coordinate_grid(5, 3))
    assert grid.shape == (5, 3, 2) and grid.dtype == np.float32
    np.testing.assert_allclose(grid[:, 0, 0], np.linspace(-1, 1, 5), atol=1e-7)  # y down the rows
    np.testing.assert_allclose(grid[0, :, 1], np.linspace(-1, 1, 3), atol=1e-7)  # x along columns
    np.testing.assert_allclose(grid[:, :, 0], grid[:, :1, 0].repeat(3, 1))


def test_encoder_and_decoder_widths():
    assert fourier_features(coordinate_grid(32, 32), 20).shape == (32, 32, 80)
    assert fourier_features(coordinate_grid(128, 128), 16).shape == (128, 128, 64)


def test_plus_and_minus_one_alias():
    f = fourier_features(jnp.array([[-1.0, 1.0], [1.0, -1.0]]), 8)
    np.testing.assert_allclose(f[0], f[1], atol=1e-4)


@pytest.mark.parametrize("bad", [0, -1, 2.0, True])
def test_bad_sizes_raise(bad):
    with pytest.raises(ValueError, match="positive int"):
        coordinate_grid(bad, 4)
    if isinstance(bad, float):  # the annotation `num_bases: int`
        with pytest.raises(jaxtyping.TypeCheckError, match="parameter 'num_bases'"):
            fourier_features(jnp.zeros((2, 2)), bad)
    elif not isinstance(bad, bool):
        with pytest.raises(ValueError, match="num_bases"):
            fourier_features(jnp.zeros((2, 2)), bad)


def test_coordinates_without_a_coordinate_axis_are_refused():
    """A scalar has no trailing axis D_c; integer coordinates are not Float."""
    with pytest.raises(jaxtyping.TypeCheckError, match=r"parameter 'coords'(.|\n)*f32\[\]"):
        fourier_features(jnp.float32(0.5), 4)
    with pytest.raises(jaxtyping.TypeCheckError, match=r"parameter 'coords'(.|\n)*i32\[3,2\]"):
        fourier_features(jnp.zeros((3, 2), jnp.int32), 4)


def test_the_three_modes():
    x = jax.random.normal(jax.random.key(0), (2, 4, 6, 10))
    grid = coordinate_grid(4, 6)
    features = fourier_features(grid, 3)  # [4, 6, 12]
    add = FourierProjectAdd(10, 3, rngs=nnx.Rngs(0))
    kernel, bias = add.dense_pe.kernel[...], add.dense_pe.bias[...]
    np.testing.assert_allclose(add(x, grid), x + features @ kernel + bias, atol=1e-5)
    concat = FourierConcat(3)(x, grid)
    assert concat.shape == (2, 4, 6, 22)
    np.testing.assert_allclose(concat[..., :10], x)
    np.testing.assert_allclose(concat[1, ..., 10:], features, atol=1e-6)
    np.testing.assert_allclose(FourierReplace(3)(x, grid), np.broadcast_to(features, (2, 4, 6, 12)), atol=1e-6)
    assert {p for p, _ in nnx.to_flat_state(nnx.state(add, nnx.Param))} == {("dense_pe", "kernel"), ("dense_pe", "bias")}


@pytest.mark.parametrize("num_bases", [16, 20])
def test_jitted_features_equal_eager_bit_for_bit(num_bases):
    """The argument is formed as the release forms it, so XLA's fusion under jit
    cannot round it differently (a fused multiply-add would, in the top bands)."""
    coords = jax.random.uniform(jax.random.key(3), (2048, 2), minval=-1, maxval=1)
    eager = np.asarray(fourier_features(coords, num_bases))
    jitted = np.asarray(jax.jit(fourier_features, static_argnums=1)(coords, num_bases))
    np.testing.assert_array_equal(jitted, eager)
    c = np.asarray(coords, np.float32) * np.float32(np.pi)
    x = np.concatenate([c * np.float32(2.0**k) for k in range(num_bases)], axis=-1)
    np.testing.assert_allclose(eager[:, : x.shape[-1]], np.sin(x), atol=1e-6, rtol=0)
