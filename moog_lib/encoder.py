"""The encoder: input checks, the conv stack and `Encoder` (frames to feature tokens).

`check_frames` checks a video [B, T, H, W, 3] in [0, 1]; `encoder_stride` is the
pixels one token spans; `conv_stack` and `apply_conv_stack` are, with chapter 02's
`scale_only_norm`, the pieces `Encoder` (and chapter 12's Ego4D model) is built from.

Generated from chapters/03_model.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "encoder_stride",
    "check_frames",
    "conv_stack",
    "apply_conv_stack",
    "Encoder",
]


import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, ArrayLike, Float

from moog_lib import configs, fourier
from moog_lib.attention import per_token, resolve_dtype, scale_only_norm
from moog_lib.shapes import typed


# chapters/03_model.py, cell 7
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


# chapters/03_model.py, cell 11
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


# chapters/03_model.py, cell 15
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
