"""The decoder: subsampled pixel queries, `Decoder` (tokens to colours), the loss and PSNR.

`check_subsample`, `subsample_offsets`, `subsample_indices`, `subsample_frames`
and `sample_coordinates` pick the pixels a step decodes; `Decoder` answers them
from the tokens; `reconstruction_loss` and `reconstruction_psnr` score the result.
The whole model, `MooG`, is in `moog_lib.model`.

Generated from chapters/04_decoder.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "check_subsample",
    "subsample_offsets",
    "subsample_indices",
    "subsample_frames",
    "sample_coordinates",
    "Decoder",
    "reconstruction_loss",
    "frame_psnr",
    "reconstruction_psnr",
    "decode_clip",
]


import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, ArrayLike, Float, Int, Shaped

from moog_lib import attention, configs, fourier
from moog_lib.shapes import typed


# chapters/04_decoder.py, cell 7
def check_subsample(height: int, width: int, subsample) -> None:
    """Raise ValueError unless S is a positive int that divides H and W."""
    if not isinstance(subsample, int | np.integer) or isinstance(subsample, bool) or subsample < 1:
        raise ValueError(f"the subsampling factor S must be a positive int, got {subsample!r}")
    if height % subsample or width % subsample:
        raise ValueError(f"height and width must be divisible by the decoder subsampling S = "
                         f"{subsample}, got {height}×{width}")


def subsample_offsets(key: jax.Array, batch_size: int, num_frames: int,
                      subsample: int) -> jnp.ndarray:
    """int32 [B, T, 2]: a random (dy, dx) in [0, S) for every example and frame."""
    check_subsample(subsample, subsample, subsample)
    return jax.random.randint(key, (batch_size, num_frames, 2), 0, subsample, dtype=jnp.int32)


@typed
def subsample_indices(size: int, offsets: Int[ArrayLike, "*batch"],
                      subsample: int) -> Int[Array, "*batch n"]:
    """Rows (or columns) read after rolling by `offsets`: int32 [..., n], n = size // S.

    Output position i reads pixel `(S·i + S//2 − offset) mod size`.
    """
    check_subsample(size, size, subsample)
    positions = subsample * jnp.arange(size // subsample, dtype=jnp.int32) + subsample // 2
    return (positions - jnp.asarray(offsets, jnp.int32)[..., None]) % size


@typed
def subsample_frames(images: Shaped[ArrayLike, "B T H W C"], offsets: Int[ArrayLike, "B T 2"],
                     subsample: int) -> Shaped[Array, "B T h w C"]:
    """Roll `images` by `offsets` (dy, dx) and keep every S-th pixel: h, w = H/S, W/S.

    Element (i, j) of the result is pixel `((S·i + S//2 − dy) mod H, (S·j + S//2 − dx) mod W)`.
    """
    height, width = images.shape[2:4]
    check_subsample(height, width, subsample)
    rows = subsample_indices(height, offsets[..., 0], subsample)  # [B, T, H/S]
    cols = subsample_indices(width, offsets[..., 1], subsample)  # [B, T, W/S]
    picked = jnp.take_along_axis(images, rows[:, :, :, None, None], axis=2)
    return jnp.take_along_axis(picked, cols[:, :, None, :, None], axis=3)


@typed
def sample_coordinates(height: int, width: int, offsets: Int[ArrayLike, "*batch 2"],
                       subsample: int) -> Float[Array, "*batch h w 2"]:
    """The (y, x) coordinates of the pixels `subsample_frames` picks, h, w = H/S, W/S.

    Equal to `subsample_frames` applied to `fourier.coordinate_grid(H, W)`.
    """
    grid = fourier.coordinate_grid(height, width)
    ys = grid[:, 0, 0][subsample_indices(height, offsets[..., 0], subsample)]  # [B, T, H/S]
    xs = grid[0, :, 1][subsample_indices(width, offsets[..., 1], subsample)]  # [B, T, W/S]
    ys, xs = jnp.broadcast_arrays(ys[..., :, None], xs[..., None, :])
    return jnp.stack([ys, xs], axis=-1)


# chapters/04_decoder.py, cell 13
class Decoder(nnx.Module):
    """Query coordinates → colours by cross-attention into a state.

    Query = [zeros(D), Fourier(y, x)] (width D + 4·bases); a cross-attention-only
    transformer with keys/values = the state; a linear Dense to 3 channels.
    """

    def __init__(self, config: configs.ModelConfig, *, rngs: nnx.Rngs, dtype=None,
                 param_dtype=jnp.float32, layers: configs.TransformerConfig | None = None,
                 outputs: int = 3):
        # `layers` and `outputs` let the depth readout (chapter 07) reuse this design.
        self.dtype = attention.resolve_dtype(dtype, config.compute_dtype)
        self.fourier = fourier.FourierConcat(config.decoder_fourier_bases)
        self.token_dim, self.query_width = config.token_dim, config.token_dim + 4 * config.decoder_fourier_bases
        kwargs = dict(rngs=rngs, dtype=self.dtype, param_dtype=param_dtype)
        self.transformer = attention.Transformer.from_config(
            self.query_width, config.decoder if layers is None else layers,
            kv_size=config.token_dim, cross_attention_only=True,
            qk_norm_scale=config.qk_norm_scale, **kwargs)
        self.readout = nnx.Linear(self.query_width, outputs, **kwargs)

    @typed
    def queries(self, coords: Float[ArrayLike, "*batch Q 2"]) -> Float[Array, "*batch Q F"]:
        """(y, x) -> [zeros(D), Fourier features]: F = D + 4·bases."""
        zeros = jnp.zeros(coords.shape[:-1] + (self.token_dim,), self.dtype)
        return self.fourier(zeros, coords)

    @typed
    def __call__(self, state: Float[ArrayLike, "*batch K D"],
                 coords: Float[ArrayLike, "*batch Q 2"] | Float[ArrayLike, "Q 2"], *,
                 return_attention: bool = False,
                 ) -> Float[Array, "*batch Q C"] | tuple[Float[Array, "*batch Q C"],
                                                       Float[Array, "layers *batch heads Q K"]]:
        """Colours (C = outputs) at `coords` (y, x), the same for every state or one per state.

        With `return_attention=True` returns `(colours, weights)`, weights the
        cross-attention of every layer and head, float32.
        """
        if state.shape[-1] != self.token_dim:
            raise ValueError(f"Decoder: the state's tokens must be D = {self.token_dim} wide "
                             f"(config.token_dim), got {state.shape[-1]}")
        if coords.ndim == 2:
            coords = jnp.broadcast_to(coords, state.shape[:-2] + coords.shape)
        out = self.transformer(self.queries(coords), state, return_attention=return_attention)
        if not return_attention:
            return attention.per_token(self.readout, out)
        return attention.per_token(self.readout, out[0]), out[1]["cross"]

    @typed
    def decode_frame(self, state: Float[ArrayLike, "*batch K D"], height: int, width: int, *,
                     chunk_size: int = 4096, return_attention: bool = False,
                     ) -> Float[Array, "*batch H W C"] | tuple[Float[Array, "*batch H W C"],
                                                              Float[Array, "*batch H W K"]]:
        """Every pixel of an H×W frame (H = `height`, W = `width`): colours, C = outputs.

        Pixels are decoded `chunk_size` at a time (`jax.lax.map`) to bound
        memory. With `return_attention=True` also returns the cross-attention
        averaged over layers and heads.
        """
        if chunk_size < 1:
            raise ValueError(f"decode_frame: chunk_size must be a positive int, got {chunk_size!r}")
        coords = fourier.coordinate_grid(height, width).reshape(-1, 2)
        total = height * width
        chunk_size = min(chunk_size, total)
        num_chunks = -(-total // chunk_size)
        coords = jnp.pad(coords, ((0, num_chunks * chunk_size - total), (0, 0)))
        graphdef, params = nnx.split(self)

        def decode_chunk(chunk):
            out = nnx.merge(graphdef, params)(state, chunk, return_attention=return_attention)
            return (out[0], out[1].mean(axis=(0, 2))) if return_attention else (out, None)

        def unchunk(x):  # [chunks, ..., chunk, C] -> [..., H, W, C]
            x = jnp.moveaxis(x, 0, -3)
            x = x.reshape(x.shape[:-3] + (num_chunks * chunk_size, x.shape[-1]))[..., :total, :]
            return x.reshape(x.shape[:-2] + (height, width, x.shape[-1]))

        colours, weights = jax.lax.map(decode_chunk, coords.reshape(num_chunks, chunk_size, 2))
        return (unchunk(colours), unchunk(weights)) if return_attention else unchunk(colours)


# chapters/04_decoder.py, cell 19
@typed
def reconstruction_loss(prediction: Float[ArrayLike, "*shape"],
                        target: Float[ArrayLike, "*shape"]) -> Float[Array, ""]:
    """Mean squared error over every element (no ½), in float32."""
    return jnp.mean((prediction.astype(jnp.float32) - target.astype(jnp.float32)) ** 2)


@typed
def frame_psnr(prediction: Float[ArrayLike, "*batch H W C"], target: Float[ArrayLike, "*batch H W C"],
               *, clip: bool = True) -> Float[Array, "*batch"]:
    """PSNR in dB of every frame, values in [0, 1]; the library's one PSNR.

    With `clip`, predictions are clipped to [0, 1] first. The MSE is floored at 1e-10
    (100 dB), so identical frames (a still scene copied) give a number, not infinity.
    (`dm_pix.psnr` has no floor and takes rank 3–4 only.)
    """
    prediction = prediction.astype(jnp.float32)
    if clip:
        prediction = jnp.clip(prediction, 0.0, 1.0)
    mse = jnp.mean((prediction - target.astype(jnp.float32)) ** 2, axis=(-3, -2, -1))
    return 10.0 * jnp.log10(1.0 / jnp.maximum(mse, 1e-10))


@typed
def reconstruction_psnr(prediction: Float[ArrayLike, "*batch H W C"],
                        target: Float[ArrayLike, "*batch H W C"], *,
                        clip: bool = True) -> Float[Array, ""]:
    """`frame_psnr` averaged over every frame (and clip): the number training logs."""
    return jnp.mean(frame_psnr(prediction, target, clip=clip))


@typed
def decode_clip(decoder: Decoder, tokens: Float[ArrayLike, "B T K D"],
                coords: Float[ArrayLike, "B T h w 2"], target: Float[ArrayLike, "B T h w 3"], *,
                return_attention: bool = False, average_attention: bool = True) -> dict:
    """Decode the tokens of every frame at its pixels `coords` in one batched call and
    score them against `target`: {"prediction", "target", "loss"} (+ "attention"
    [B, T, h, w, K], averaged over layers and heads, or [layers, B, T, heads, h, w, K]
    without `average_attention`)."""
    batch, num_frames, h, w = coords.shape[:4]
    flat = tokens.reshape((batch * num_frames,) + tokens.shape[2:])
    colours, weights = decoder(flat, coords.reshape(batch * num_frames, h * w, 2),
                               return_attention=True)
    prediction = colours.astype(jnp.float32).reshape(batch, num_frames, h, w, 3)
    result = {"prediction": prediction, "target": target,
              "loss": reconstruction_loss(prediction, target)}
    if return_attention:
        count = tokens.shape[2]
        if average_attention:  # [layers, B·T, heads, Q, K] -> [B, T, h, w, K]
            result["attention"] = weights.mean(axis=(0, 2)).reshape(batch, num_frames, h, w, count)
        else:
            layers, _, heads = weights.shape[:3]
            result["attention"] = weights.reshape(layers, batch, num_frames, heads, h, w, count)
    return result
