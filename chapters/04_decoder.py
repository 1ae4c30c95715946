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
# # 04 — Decoding off-the-grid tokens
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/moog-tutorial/moog-tutorial/blob/main/notebooks/04_decoder.ipynb)
#
# **What you will learn.** The state of MooG is a set of tokens with no pixel
# positions. To turn it back into an image, every pixel *asks* for its colour:
# a query built from the pixel's coordinates cross-attends into the tokens. In
# this chapter you
#
# - build the pixel queries (zeros ⊕ Fourier features) and the 6-layer,
#   cross-attention-only decoder;
# - implement the paper's **subsampled decoding** — one pixel in `S×S`, at a
#   random offset per example and frame — and check, pixel by pixel, which
#   pixels it reads;
# - decode whole frames in chunks, compute the L2 loss and PSNR;
# - assemble the full `MooG` module (encoder, predict–correct loop, decoder),
#   check its 34,726,787 parameters, and make it reject bad input with useful
#   messages;
# - take the first optimisation steps on a tiny model and look at what its
#   decoder attends to.
#
# The code goes to two modules: `moog_lib.decoder` (§2–4) and `moog_lib.model`
# (§5: `MooG` itself).
#
# **Prerequisites.** Chapters 01–03.
#
# **Runtime.**
#
# | preset | hardware | this chapter |
# |---|---|---|
# | `tiny` | CI, 2 CPU cores | 67 s (nbval in `make test` on a clean clone, two workers, nothing else running; 2026-12-03) |
# | `colab` | Colab TPU v5e-1 | estimate ≈ 9 min: ≈ 8 compilations (assumed ≈ 1 min each) + 1,000 training steps on one clip at ≈ 22 ms (≈ 0.4 min); not measured on a TPU |

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
#| default_exp decoder

# %% [markdown]
# ## 1. Pixels ask, tokens answer
#
# A grid-based decoder would upsample a feature map: feature `(i, j)` paints
# pixels near `(i, j)`. MooG's tokens have no `(i, j)`, so the decoder works the
# other way round. For every pixel it builds a **query** from nothing but the
# pixel's coordinates, and the query cross-attends into the `K` tokens:
#
# ```
#   (y, x) ──► [0 … 0 | Fourier(y, x)] ──► 6 × cross-attention block ──► Dense ──► (r, g, b)
#                                              ▲ keys/values
#                                        z_p  [K tokens]
# ```
#
# - The query is `D` zeros concatenated with 16-basis Fourier features of
#   `(y, x)` (width `D + 64 = 576` in the paper). The zeros are a slot in which
#   the blocks accumulate what they read from the tokens.
# - The transformer has 6 layers of **cross-attention only** (2 heads × 64,
#   MLP 2048, chapter 02): pixels never attend to each other, so every pixel
#   is decoded independently — which is what lets us decode any subset of
#   pixels, in any order, in chunks.
# - A final linear `Dense` maps to 3 colour channels, with no squashing
#   (no sigmoid): the L2 loss pulls the outputs into `[0, 1]` by itself.
#
# The state it decodes is the *predicted* state `z_p` of frame `t`, which has
# not seen frame `t` — so decoding is next-frame prediction.

# %%
config = configs.get(PRESET)
mc = config.model
print(PRESET, "| D =", mc.token_dim, "| decoder:", mc.decoder, "| Fourier bases:",
      mc.decoder_fourier_bases)

# %% [markdown]
# ## 2. Subsampled queries
#
# Decoding all `128 × 128 = 16384` pixels of 8 frames for a batch of 128 clips
# at every step would make the decoder the most expensive part of training. The
# paper decodes **one pixel in `S × S`** (`S = 8` in training: 256 pixels per
# frame) and makes the choice random, so that over many steps every pixel is
# trained (the release's `moog/modules.py`, `_random_roll_resize_subsampling`;
# `subsample_factor=8`, `eval_subsample_factor=4` in `moog/configs/movi.py`):
#
# 1. draw integer offsets `(dy, dx)` uniformly in `[0, S)`, independently for
#    every example and every frame;
# 2. roll the image (and its coordinate grid) by them, with wrap-around;
# 3. keep every `S`-th row and column, starting at `S // 2`.
#
# So output row `i` reads pixel row `(S·i + S//2 − dy) mod H`, and likewise for
# columns. Targets (and, for the readouts, masks) go through the *identical*
# operation, so prediction and target stay aligned. At evaluation time the
# paper uses `S = 4` with zero offsets. `H` and `W` must be divisible by `S`.
#
# We never materialise the rolled image: we compute the row and column indices
# with the formula and gather.

# %%
#| export
"""The decoder: subsampled pixel queries, `Decoder` (tokens to colours), the loss and PSNR.

`check_subsample`, `subsample_offsets`, `subsample_indices`, `subsample_frames`
and `sample_coordinates` pick the pixels a step decodes; `Decoder` answers them
from the tokens; `reconstruction_loss` and `reconstruction_psnr` score the result.
The whole model, `MooG`, is in `moog_lib.model`.
"""
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, ArrayLike, Float, Int, Shaped

from moog_lib import attention, configs, fourier
from moog_lib.shapes import typed


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


# %% [markdown]
# Check the formula three ways on a frame whose pixels *encode their own
# position* (channel 0 = row, channel 1 = column): against `jnp.roll` followed
# by strided slicing (the definition), against the closed form, and against the
# coordinates the decoder will be given.

# %%
H = W = 16
S = 4
rows, cols = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
position_frame = np.stack([rows, cols, np.zeros_like(rows)], -1).astype(np.float32)  # [H, W, 3]
frames = jnp.asarray(np.broadcast_to(position_frame, (2, 3, H, W, 3)))
offsets = subsample_offsets(jax.random.key(0), 2, 3, S)
picked = subsample_frames(frames, offsets, S)
assert picked.shape == (2, 3, H // S, W // S, 3)
for b in range(2):
    for t in range(3):
        dy, dx = (int(v) for v in offsets[b, t])
        rolled = jnp.roll(frames[b, t], (dy, dx), axis=(0, 1))
        assert jnp.array_equal(picked[b, t], rolled[S // 2::S, S // 2::S])
        expected_rows = (S * np.arange(H // S) + S // 2 - dy) % H
        assert np.array_equal(picked[b, t, :, 0, 0], expected_rows)
coords = sample_coordinates(H, W, offsets, S)
assert jnp.allclose(coords, subsample_frames(
    jnp.broadcast_to(fourier.coordinate_grid(H, W), (2, 3, H, W, 2)), offsets, S))
print("offsets of example 0:", offsets[0].tolist(), "-> rows read in frame 0:",
      picked[0, 0, :, 0, 0].astype(int).tolist())

# %% [markdown]
# Which pixels of a 32×32 frame get decoded at `S = 8` for four random offsets,
# and how quickly random offsets cover the frame: after `n` draws, a pixel has
# been missed with probability `(1 − 1/S²)ⁿ` (`S² = 64` possible offsets).

# %%
import matplotlib.pyplot as plt

S_train, size = 8, 32
draws = subsample_offsets(jax.random.key(1), 1, 200, S_train)[0]  # 200 frames' offsets
fig, axes = plt.subplots(1, 5, figsize=(15, 3))
for ax, offset in zip(axes[:4], draws[:4]):
    mask = np.zeros((size, size))
    r = subsample_indices(size, offset[0], S_train)
    c = subsample_indices(size, offset[1], S_train)
    mask[np.ix_(np.asarray(r), np.asarray(c))] = 1
    ax.imshow(mask, cmap="gray_r")
    ax.set_title(f"(dy, dx) = ({int(offset[0])}, {int(offset[1])})")
    ax.axis("off")
seen, coverage = np.zeros((size, size), bool), []
for offset in draws:
    r = np.asarray(subsample_indices(size, offset[0], S_train))
    c = np.asarray(subsample_indices(size, offset[1], S_train))
    seen[np.ix_(r, c)] = True
    coverage.append(seen.mean())
n = np.arange(1, len(draws) + 1)
axes[4].plot(n, coverage, label="measured")
axes[4].plot(n, 1 - (1 - 1 / S_train**2) ** n, "--", label="1 − (1 − 1/S²)ⁿ")
axes[4].set(xlabel="frames decoded", ylabel="fraction of pixels seen", title="coverage")
axes[4].legend()
plt.tight_layout()
plt.show()
assert coverage[0] == 1 / S_train**2

# %% [markdown]
# ## 3. The decoder module
#
# `Decoder` holds the query construction, the cross-attention-only
# `attention.Transformer` and the readout `Dense`. It is called with a state
# `[B, K, D]` and query coordinates `[B, Q, 2]` (or `[Q, 2]`, shared by the
# batch) and returns colours `[B, Q, 3]`; with `return_attention=True` also the
# cross-attention weights of every layer and head, `[layers, B, heads, Q, K]`.
#
# Names, for chapter 12a: `transformer` ↔ the release's `decoder/transformer`,
# `readout` ↔ `decoder/recon`.

# %%
#| export
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


# %% [markdown]
# The decoder of the current preset, and the paper's decoder counted
# abstractly: 15,854,400 parameters in the transformer (chapter 02) plus
# `576 · 3 + 3 = 1,731` in the readout.

# %%
import math


def count_params(module) -> int:
    return sum(math.prod(p.shape) for p in jax.tree.leaves(nnx.state(module, nnx.Param)))


decoder = Decoder(mc, rngs=nnx.Rngs(0), dtype="float32")
z = jax.random.normal(jax.random.key(2), (2, mc.num_tokens, mc.token_dim))
pixel_coords = sample_coordinates(H, W, offsets, S)[:, 0].reshape(2, -1, 2)  # frame 0: [2, 16, 2]
colours, weights = nnx.jit(lambda m, z, c: m(z, c, return_attention=True))(decoder, z, pixel_coords)
assert colours.shape == (2, (H // S) * (W // S), 3)
assert weights.shape == (mc.decoder.num_layers, 2, mc.decoder.num_heads, 16, mc.num_tokens)
assert decoder.queries(pixel_coords).shape[-1] == mc.token_dim + 4 * mc.decoder_fourier_bases
assert (decoder.queries(pixel_coords)[..., :mc.token_dim] == 0).all()

paper_decoder = nnx.eval_shape(lambda: Decoder(configs.get("paper").model, rngs=nnx.Rngs(0)))
assert paper_decoder.query_width == 576
assert count_params(paper_decoder.transformer) == 15_854_400
assert count_params(paper_decoder) == 15_856_131
print(f"paper decoder: {count_params(paper_decoder):,} parameters")

# %% [markdown]
# ### Dense decoding
#
# For figures and evaluation we want whole frames. Because pixels do not
# interact, decoding the full grid is the same computation with `Q = H·W`
# queries, done in chunks to bound memory (the attention weights alone would
# be `heads · Q · K` floats per layer). `decode_frame` must agree with the
# subsampled path at `S = 1`:

# %%
full = nnx.jit(lambda m, z: m.decode_frame(z, H, W, chunk_size=100))(decoder, z)  # 3 chunks
assert full.shape == (2, H, W, 3)
every_pixel = sample_coordinates(H, W, jnp.zeros((2, 1, 2), jnp.int32), 1)[:, 0].reshape(2, -1, 2)
assert jnp.allclose(decoder(z, every_pixel).reshape(2, H, W, 3), full, atol=1e-4)
print("chunked dense decoding == subsampled decoding with S = 1")

# %% [markdown]
# ## 4. Loss and PSNR
#
# The training loss is the mean, over every sampled element (pixels and
# channels, of every frame and example), of the squared error — no factor ½.
# Quality is reported as PSNR on `[0, 1]` frames, `10 · log10(1 / MSE)`,
# computed per frame and then averaged. We clip predictions to `[0, 1]` before
# scoring (the decoder's output is unsquashed; clipping can only help).
# A useful yardstick is the **copy-last-frame** baseline: predicting frame `t`
# by frame `t − 1` — a model that cannot beat it has not learned dynamics.

# %%
#| export
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


# %%
a = jnp.full((2, 4, 4, 3), 0.5)
assert jnp.isclose(reconstruction_loss(a, a + 0.1), 0.01)
assert jnp.isclose(reconstruction_psnr(a, a + 0.1), 20.0, atol=1e-3)  # MSE 0.01 -> 20 dB
assert jnp.isclose(reconstruction_psnr(a + 5.0, jnp.ones_like(a)), 100.0)  # clipped to 1: exact

# %% [markdown]
# ## 5. The whole model
#
# `MooG` puts the three parts together. For a clip `[B, T, H, W, 3]` it
#
# 1. checks the input: its signature the shapes (frames `[B, T, H, W, 3]`, a
#    carried state `[B, K, D]`, offsets `[B, T, 2]`, one B and T for all), then
#    chapter 03's `check_frames` the values, and the decoder's `S`;
# 2. draws everything random **up front** from one key: the initial noise, the
#    subsampling offsets (training: random, `S = 8`; evaluation: zero, `S = 4`)
#    and, if switched on, the stop-gradient draws;
# 3. encodes all `T` frames in one call;
# 4. runs the predict–correct scan (chapter 03);
# 5. decodes all `T` predicted states `z_p` **in one batched call after the
#    scan** — `B·T` states, each with its own subsampled pixel queries — and
#    compares them with the identically subsampled frames (`decode_clip`, which
#    chapter 10's on-the-grid baselines call too).
#
# Decoding outside the scan keeps the loop small and lets XLA run one large
# batched decoder instead of `T` small ones. The exception is the release's
# loss-gradient switch (chapter 03, §9), which needs the decoder's gradient
# *inside* the loop; with it on, the decoder is also called inside the scan.
#
# It returns a dict, per frame:
#
# | key | shape | what |
# |---|---|---|
# | `prediction` | `[B, T, H/S, W/S, 3]` | decoded `z_p`, float32 |
# | `target` | `[B, T, H/S, W/S, 3]` | the frames, subsampled identically |
# | `loss` | `[]` | `reconstruction_loss(prediction, target)` |
# | `z_p`, `z_c` | `[B, T, K, D]` | predicted and corrected states |
# | `state` | `[B, K, D]` | the state to carry into the next chunk |
# | `offsets` | `[B, T, 2]` | the subsampling offsets used |
# | `attention` | `[B, T, H/S, W/S, K]` | only with `return_attention=True`: the decoder's cross-attention, **averaged over layers and heads** (`average_attention=False` keeps `[layers, B, T, heads, H/S, W/S, K]`) |
#
# The compute dtype comes from `config.compute_dtype`: float32 on CPU and in
# the tests, bfloat16 with float32 parameters on the TPU presets. Predictions,
# targets and the loss are float32 either way.

# %%
#| export model
"""The whole model: `MooG` (encoder + predict–correct loop + decoder) and its checks.

`MooG` runs a clip through `encoder.Encoder`, `dynamics.PredictCorrect` and
`decoder.Decoder` and returns the subsampled predictions, targets, loss and
states; `check_offsets` checks the subsampling offsets a caller passes.
"""
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import ArrayLike, Float, Int

from moog_lib import configs, dynamics, encoder
from moog_lib.decoder import (
    Decoder,
    check_subsample,
    decode_clip,
    sample_coordinates,
    subsample_frames,
    subsample_offsets,
)
from moog_lib.shapes import typed


@typed
def check_offsets(offsets: Int[ArrayLike, "B T 2"], subsample: int) -> None:
    """Raise ValueError unless the `offsets` lie in [0, S) (checked outside jit only; the
    signature checks that they are integers [B, T, 2])."""
    if not isinstance(offsets, jax.core.Tracer):  # concrete: checked on the host
        values = np.asarray(offsets)
        low, high = int(values.min()), int(values.max())
        if low < 0 or high >= subsample:
            raise ValueError(f"offsets must lie in [0, S) = [0, {subsample}), got values "
                             f"from {low} to {high}")


def _check_inputs(frames, *, stride: int, subsample: int, key, state, num_tokens, offsets,
                  training: bool, stop_prob: float, token_dim: int) -> None:
    """Raise ValueError unless `MooG.__call__` can run on these arguments, whose shapes its
    signature has checked (`subsample` and `stop_prob` as it resolved them): what a type
    cannot say is validated before anything is computed."""
    encoder.check_frames(frames, stride=stride)
    check_subsample(frames.shape[2], frames.shape[3], subsample)
    needs_key = state is None or (offsets is None and training) or stop_prob > 0
    if needs_key and key is None:
        raise ValueError("MooG: pass key=jax.random.key(...) for the initial noise, the "
                         "random offsets (training) and the stop-gradient draws")
    if state is not None:
        if state.shape[2] != token_dim:
            raise ValueError(f"MooG: the carried state's tokens must be D = {token_dim} wide "
                             f"(config.token_dim), got {state.shape[2]}")
        if num_tokens is not None and num_tokens != state.shape[1]:
            raise ValueError(f"MooG: num_tokens={num_tokens} but the carried state has "
                             f"{state.shape[1]} tokens")
    elif num_tokens is not None and num_tokens < 1:
        raise ValueError(f"MooG: the number of tokens K must be an int >= 1, "
                         f"got {num_tokens!r}")
    if offsets is not None:
        check_offsets(offsets, subsample)


# %% [markdown]
# The offsets a caller passes must be integers in `[0, S)`, one pair per clip
# and frame; "Bad input", further down this section, shows every other check
# at work.

# %%
try:
    check_offsets(np.full((2, 3, 2), 8), 8)
except ValueError as err:
    print("an offset of S is refused:", err)
else:
    raise AssertionError("an offset of S was accepted")
check_offsets(np.full((2, 3, 2), 7), 8)

# %% [markdown]
# The release's loss-gradient switch (chapter 03 §9, wired up in §8 below)
# needs `∂L_t/∂z_p` inside the loop. `_loss_gradient_fn` builds it from the
# decoder: each example's own loss on frame `t`'s sampled pixels, so one
# example's gradient does not depend on the others in the batch.

# %%
#| export model
def _loss_gradient_fn(decoder: Decoder):
    """dL_t/dz_p for the loss-gradient switch: the decoder's loss on frame t, per example."""
    graphdef, params = nnx.split(decoder)

    def loss_gradient(z_p, inputs):
        coords, target = inputs  # [B, Q, 2], [B, Q, 3]

        def loss(z):  # summed over examples, so each example's gradient ignores the others
            colours = nnx.merge(graphdef, params)(z, coords).astype(jnp.float32)
            return jnp.mean((colours - target) ** 2, axis=(1, 2)).sum()

        return jax.grad(loss)(z_p)

    return loss_gradient


# %%
loss_gradient = _loss_gradient_fn(decoder)
pixel_target = jnp.full(pixel_coords.shape[:2] + (3,), 0.5)  # [B, Q, 3]
gradient_z = loss_gradient(z, (pixel_coords, pixel_target))
alone = loss_gradient(z[:1], (pixel_coords[:1], pixel_target[:1]))
assert gradient_z.shape == z.shape and jnp.allclose(gradient_z[:1], alone, atol=1e-6)

# %% [markdown]
# And the model: build the three parts; to run a clip, check it, draw the
# randomness, encode, unroll, decode.

# %%
#| export model
class MooG(nnx.Module):
    """Encoder + predict–correct loop + decoder, built from `configs.ModelConfig`.

    `model(frames, key=...)` returns a dict with the subsampled predicted
    frames, aligned targets, the loss, z_p, z_c, the final state and the
    offsets (see chapter 04). `dtype` overrides `config.compute_dtype`.
    """

    def __init__(self, config: configs.ModelConfig, *, rngs: nnx.Rngs, dtype=None,
                 param_dtype=jnp.float32):
        self.config = config
        kwargs = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        self.encoder = encoder.Encoder(config, **kwargs)
        self.dynamics = dynamics.PredictCorrect(config, **kwargs)
        self.decoder = Decoder(config, **kwargs)

    def initial_state(self, key: jax.Array, batch_size: int,
                      num_tokens: int | None = None) -> jnp.ndarray:
        """LN(1e-4 · N(0, I)) of shape [B, K, D]; K defaults to config.num_tokens."""
        num_tokens = self.config.num_tokens if num_tokens is None else num_tokens
        return self.dynamics.initial_state(key, batch_size, num_tokens)

    @typed
    def __call__(self, frames: Float[ArrayLike, "B T H W 3"], *, key: jax.Array | None = None,
                 state: Float[ArrayLike, "B K D"] | None = None, num_tokens: int | None = None,
                 training: bool = False, subsample: int | None = None,
                 offsets: Int[ArrayLike, "B T 2"] | None = None, return_attention: bool = False,
                 average_attention: bool = True) -> dict:
        """Run MooG on a clip `frames` with values in [0, 1].

        - `key`: needed for the initial noise (when `state` is None), the random
          offsets (training) and the stop-gradient draws (training, p > 0).
        - `state`: a carried state to continue from (chunked unrolling).
        - `num_tokens`: K for a fresh state (default `config.num_tokens`).
        - `training`: S = config.train_subsample with random offsets; otherwise
          S = config.eval_subsample with zero offsets. `subsample` and
          `offsets` override either.
        """
        cfg = self.config
        if subsample is None:
            subsample = cfg.train_subsample if training else cfg.eval_subsample
        stop_prob = cfg.state_stop_gradient_prob if training else 0.0
        _check_inputs(frames, stride=self.encoder.stride, subsample=subsample, key=key,
                      state=state, num_tokens=num_tokens, offsets=offsets, training=training,
                      stop_prob=stop_prob, token_dim=cfg.token_dim)
        batch, num_frames, height, width, _ = frames.shape
        frames = jnp.asarray(frames, jnp.float32)

        state_key, offset_key, stop_key = (jax.random.split(key, 3) if key is not None
                                           else (None, None, None))
        if state is None:
            state = self.initial_state(state_key, batch, num_tokens)
        if offsets is None:
            offsets = (subsample_offsets(offset_key, batch, num_frames, subsample) if training
                       else jnp.zeros((batch, num_frames, 2), jnp.int32))
        offsets = jnp.asarray(offsets, jnp.int32)
        stop = (dynamics.stop_gradient_mask(stop_key, batch, num_frames, stop_prob)
                if stop_prob > 0 else None)

        target = subsample_frames(frames, offsets, subsample)  # [B, T, h, w, 3]
        coords = sample_coordinates(height, width, offsets, subsample)  # [B, T, h, w, 2]
        # The last frame apart (chapter 03, `unroll`): `jit` drops it when nothing reads it.
        features = self.encoder(frames[:, :-1])  # [B, T − 1, N, D]
        last_features = self.encoder(frames[:, -1])  # [B, N, D]

        loss_gradient_fn = inputs = None
        if self.dynamics.gradient_projection is not None:
            loss_gradient_fn = _loss_gradient_fn(self.decoder)
            inputs = (coords.reshape(batch, num_frames, -1, 2),
                      target.reshape(batch, num_frames, -1, 3))
        out = self.dynamics.unroll(features, state, last_features=last_features, stop_gradient=stop,
                                   loss_gradient_fn=loss_gradient_fn, loss_gradient_inputs=inputs)

        # Decode all T predicted states in one batched call.
        result = decode_clip(self.decoder, out["z_p"], coords, target,
                             return_attention=return_attention,
                             average_attention=average_attention)
        return result | {"z_p": out["z_p"], "z_c": out["z_c"], "state": out["state"],
                         "offsets": offsets}


# %% [markdown]
# ### The paper model: 34,726,787 parameters
#
# Built abstractly, part by part; the total equals the sum over the 181 arrays
# of the release's paper model (`moog/configs/movi.py`):

# %%
paper = nnx.eval_shape(lambda: MooG(configs.get("paper").model, rngs=nnx.Rngs(0)))
parts = {
    "encoder": count_params(paper.encoder),
    "corrector": count_params(paper.dynamics.corrector),
    "predictor": count_params(paper.dynamics.predictor),
    "decoder": count_params(paper.decoder),
    "correction LN": count_params(paper.dynamics.correction_norm),
}
for name, n in parts.items():
    print(f"{name:14s} {n:>11,}")
print(f"{'total':14s} {count_params(paper):>11,}")
assert parts == {"encoder": 2_593_792, "corrector": 8_398_848, "predictor": 7_877_504,
                 "decoder": 15_856_131, "correction LN": 512}
assert count_params(paper) == 34_726_787

# %% [markdown]
# ### Running it
#
# The `tiny` model on a random clip in training mode (`S = 8`, random
# offsets): on `tiny` the frames are 32×32, so training decodes a 4×4 grid of
# pixels per frame. (Evaluation mode — `S = 4`, zero offsets — runs in §6.)

# %%
moog = MooG(mc, rngs=nnx.Rngs(0))
resolution, num_frames = config.data.resolution, config.data.num_frames
clip = jax.random.uniform(jax.random.key(3), (2, num_frames, resolution, resolution, 3))
run = nnx.jit(lambda m, x, key: m(x, key=key, training=True))
out = run(moog, clip, jax.random.key(4))
s = mc.train_subsample
assert out["prediction"].shape == out["target"].shape == (
    2, num_frames, resolution // s, resolution // s, 3)
assert out["z_p"].shape == out["z_c"].shape == (2, num_frames, mc.num_tokens, mc.token_dim)
assert jnp.allclose(out["target"], subsample_frames(clip, out["offsets"], s))
print({k: tuple(v.shape) for k, v in out.items()})

# %% [markdown]
# Chunked unrolling works through `MooG` exactly as in chapter 03: pass the
# returned `state` back in (with `offsets` for the next frames if you want the
# same pixels); `tests/test_decoder.py` checks that two chunks of 4 frames give
# the same predictions as one unroll of 8.
#
# ### Bad input
#
# Every mistake is refused before anything is computed. A wrong shape or dtype
# fails the signature with jaxtyping's `TypeCheckError`, which names the
# argument and what it got (we print those lines); the rest gets a `ValueError`
# that names the problem and the expected form. Value checks (range, NaN) run
# on concrete arrays, i.e. when the model is called outside `jit`; inside `jit`
# only shapes and dtypes are checked.

# %%
import jaxtyping

good = np.asarray(clip)
bad_inputs = {
    "uint8 frames": dict(frames=(good * 255).astype(np.uint8)),
    "values in [0, 255]": dict(frames=good * 255),
    "NaN": dict(frames=np.where(good > 0.99, np.nan, good)),
    "no batch axis": dict(frames=good[0]),
    "grayscale": dict(frames=good[..., :1]),
    "size not divisible by S": dict(frames=good[:, :, :28, :28], subsample=8),
    "K = 0": dict(frames=good, num_tokens=0),
    "state of three clips": dict(frames=good, state=jnp.zeros((3, 4, mc.token_dim))),
    "state of the wrong width": dict(frames=good, state=jnp.zeros((2, 4, mc.token_dim + 1))),
    "float offsets": dict(frames=good, offsets=np.zeros((2, num_frames, 2), np.float32)),
    "offsets out of range": dict(frames=good, offsets=np.full((2, num_frames, 2), 9),
                                 subsample=8),
    "no key": dict(frames=good, key=None),
}
for what, kwargs in bad_inputs.items():
    kwargs = {"key": jax.random.key(0), **kwargs}
    try:
        moog(**kwargs)
    except jaxtyping.TypeCheckError as err:
        print(f"{what:25s} -> TypeCheckError:", " ".join(str(err).splitlines()[1:3]))
    except ValueError as err:
        print(f"{what:25s} -> ValueError: {err}")
    else:
        raise AssertionError(f"{what} was accepted")

# %% [markdown]
# ## 6. First steps of training
#
# Chapters 06–06a train MooG properly. Here we only check that the pieces fit:
# gradients flow from the loss on the decoded pixels back through the decoder,
# the scan, and the encoder, and an optimiser step lowers the loss. A training
# step is `nnx.value_and_grad` of the loss and an `nnx.Optimizer` update, all
# under one `nnx.jit`.
#
# The data: a clip of a textured square sliding over a striped background,
# made with NumPy (chapter 05c has real datasets), plus its mirror image as a
# second example.

# %%
import optax


def sliding_square_clip(num_frames: int, size: int, step: int = 2) -> np.ndarray:
    """float32 [T, size, size, 3]: a checkered square sliding right over diagonal stripes."""
    yy, xx = np.mgrid[0:size, 0:size]
    stripes = 0.5 + 0.25 * np.sin(2 * np.pi * (xx + yy) / size * 2)
    background = np.stack([stripes, 0.6 * np.ones_like(stripes), 1 - stripes], -1)
    side = size // 4
    checks = ((np.arange(side)[:, None] // 2 + np.arange(side)[None] // 2) % 2)[..., None]
    texture = np.where(checks, [1.0, 0.9, 0.1], [0.8, 0.1, 0.1])
    clip = np.repeat(background[None], num_frames, 0)
    for t in range(num_frames):
        x = (size // 8 + t * step) % (size - side)
        clip[t, size // 3:size // 3 + side, x:x + side] = texture
    return clip.astype(np.float32)


video = sliding_square_clip(num_frames, resolution)
batch = jnp.asarray(np.stack([video, video[:, :, ::-1]]))  # [2, T, H, W, 3]
batch = batch[:config.data.batch_size]  # colab: one clip, a step needs ~8 GiB a clip (ch. 06 §3)
encoder.check_frames(batch, stride=encoder.encoder_stride(mc), subsample=mc.train_subsample)

trained = moog  # the model built above, still at its initialisation
optimizer = nnx.Optimizer(trained, optax.adam(1e-3), wrt=nnx.Param)


S_demo = 2 if resolution <= 64 else mc.train_subsample


@nnx.jit
def train_step(model, optimizer, frames, key):
    def loss_fn(model):
        return model(frames, key=key, training=True, subsample=S_demo)["loss"]

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


# train_step returns the loss *before* its update: two steps on the same batch
# and key give the loss before and after the first update.
key = jax.random.key(0)
before = train_step(trained, optimizer, batch, key)
after = train_step(trained, optimizer, batch, key)
print(f"loss on a fixed batch: {float(before):.4f} -> {float(after):.4f} after one Adam step")
assert after < before

# %% [markdown]
# A couple of hundred steps on this one clip, with fresh offsets and initial
# noise every step. At `S = 8` a 32×32 `tiny` frame offers only 16 pixels per
# step, so on small frames this demo decodes one pixel in 2×2 (`S_demo`) to
# learn faster; the model has only 16 tokens of width 32, so do not expect
# sharp pictures.

# %%
steps = {"tiny": 100, "cpu": 600}.get(PRESET, 1000)
losses = []
for i in range(steps):
    losses.append(float(train_step(trained, optimizer, batch, jax.random.key(i + 1))))
mean_colour_mse = float(batch.var(axis=(1, 2, 3)).mean())  # predict each clip's mean colour
print(f"{steps} steps: loss {losses[0]:.4f} -> {np.mean(losses[-20:]):.4f}; "
      f"predicting the mean colour would score {mean_colour_mse:.4f}")
assert np.mean(losses[-20:]) < 0.5 * losses[0]

# %% [markdown]
# Where does that leave us? The loss has come down close to the error of
# predicting every pixel with the clip's mean colour: in a few seconds the
# tiny model has learned the colours, not yet where they are. One reason is the
# random initial state. The predictor's first LayerNorm lifts the 1e-2-sized
# initial tokens to unit scale, so the first predictions depend on noise that
# is drawn afresh at every step, and the decoder first has to learn to discount
# it (trained with one fixed key instead, the same model fits this clip much
# faster — and would then depend on that key). Training for real takes
# thousands of steps (chapters 06–06b).

# %% [markdown]
# Now decode whole frames from the predicted states and compare with the
# truth and with the copy-last-frame baseline. Frame 0 is predicted from the
# initial noise alone, so the model can only guess an average frame there; from
# frame 1 on it has seen the clip.

# %%
result = nnx.jit(lambda m, x, key: m(x, key=key))(trained, batch, jax.random.key(10**6))
assert (result["offsets"] == 0).all()  # evaluation mode: S = 4, zero offsets
assert result["prediction"].shape[2] == resolution // mc.eval_subsample
z_p = result["z_p"][0]  # [T, K, D]: example 0's predicted states, frames as the batch
dense, attention_maps = nnx.jit(
    lambda m, z: m.decoder.decode_frame(z, resolution, resolution, return_attention=True)
)(trained, z_p)
truth = batch[0]
model_psnr = float(reconstruction_psnr(dense[1:], truth[1:]))
copy_psnr = float(reconstruction_psnr(truth[:-1], truth[1:]))
print(f"frames 1..T-1: model {model_psnr:.1f} dB, copy-last-frame {copy_psnr:.1f} dB")

fig, axes = plt.subplots(3, num_frames, figsize=(2.2 * num_frames, 6.6), squeeze=False)
for t in range(num_frames):
    axes[0, t].imshow(truth[t])
    axes[1, t].imshow(np.clip(dense[t], 0, 1))
    axes[2, t].imshow(attention_maps[t].argmax(-1), cmap="tab20", vmin=0, vmax=19,
                      interpolation="nearest")
    axes[0, t].set_title(f"frame {t}")
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
for row, label in enumerate(["truth", "predicted (z_p)", "argmax token"]):
    axes[row, 0].set_ylabel(label)
plt.tight_layout()
plt.show()
assert dense.shape == (num_frames, resolution, resolution, 3)
assert attention_maps.shape == (num_frames, resolution, resolution, mc.num_tokens)

# %% [markdown]
# The bottom row is the paper's *argmax token* map: each pixel coloured by the
# token its query attends to most, averaged over the decoder's layers and
# heads. Here, after seconds of training, the map mostly reflects the
# stripes of the Fourier features rather than the scene; in the paper's
# trained model the regions follow the objects as they move (chapter 11 makes
# these maps from a trained model).
#
# ## 7. Compute dtype
#
# On a TPU the presets `colab` and `paper` compute in bfloat16 and keep float32
# parameters (`config.compute_dtype`). Everything the loss sees is float32. The
# same switch works on a CPU, slowly — CPUs have no fast bfloat16 matrix
# units — so here we only *trace* the model: `nnx.eval_shape` builds it
# abstractly and `jax.eval_shape` runs it on abstract arrays, which checks every
# shape and dtype without compiling or computing anything.


# %%
def abstract_run(model_config, frames, **kwargs):
    """Output shapes and dtypes of MooG(model_config)(frames, ...), computed by tracing only."""
    abstract = nnx.eval_shape(lambda: MooG(model_config, rngs=nnx.Rngs(0)))
    graphdef, params = nnx.split(abstract)
    return abstract, jax.eval_shape(
        lambda p, x, key: nnx.merge(graphdef, p)(x, key=key, **kwargs), params, frames,
        jax.random.key(0))


half_config = configs.override(configs.get(PRESET), ["model.compute_dtype=bfloat16"]).model
half, half_out = abstract_run(half_config, batch)
assert half_out["z_p"].dtype == jnp.bfloat16 and half_out["prediction"].dtype == jnp.float32
assert half_out["loss"].dtype == jnp.float32
assert {p.dtype for p in jax.tree.leaves(nnx.state(half, nnx.Param))} == {jnp.dtype("float32")}
print("bfloat16 compute: z_p", half_out["z_p"].dtype, "| prediction", half_out["prediction"].dtype,
      "| parameters float32")

# %% [markdown]
# ## 8. The loss-gradient switch, wired to the decoder
#
# Chapter 03 left a hook for the release's loss-gradient input: a function
# that returns `∂L_t/∂z_p` inside the loop. `MooG` fills it with the decoder's
# loss on frame `t`'s sampled pixels — each example's own mean squared error,
# so an example's gradient does not depend on the batch size. It is off by
# default (the paper does not use it); with it on, the model gains the
# `2D → D` projection and runs the decoder inside the scan as well. Traced
# here; `tests/test_decoder.py` runs it and takes gradients through it.

# %%
switched_config = configs.override(configs.get(PRESET), ["model.loss_gradient_input=True"]).model
switched, switched_out = abstract_run(switched_config, batch, training=True)
assert switched_out["prediction"].shape == out["prediction"].shape
extra = count_params(switched) - count_params(moog)
assert extra == 2 * mc.token_dim * mc.token_dim + mc.token_dim
print(f"loss-gradient input on: {extra:,} extra parameters (the release's state_grad_projector)")

# %% [markdown]
# ## Summary
#
# - The decoder's query for a pixel is `[zeros(D), Fourier₁₆(y, x)]`; a
#   6-layer cross-attention-only transformer reads the tokens; a linear layer
#   gives RGB. Paper: 15,856,131 parameters.
# - Training decodes one pixel in `S×S` (`S = 8`) at random offsets per example
#   and frame: output row `i` is pixel `(S·i + S//2 − dy) mod H`. Evaluation
#   uses `S = 4`, zero offsets. Targets are subsampled identically.
# - `decode_frame` decodes every pixel in chunks; at `S = 1` the two paths
#   agree.
# - The loss is the plain mean squared error; PSNR is per frame on `[0, 1]`,
#   then averaged; compare with copying the last frame.
# - `MooG` = encoder → scan of predict/correct → one batched decode of all
#   `z_p`. It returns predictions, targets, loss, `z_p`, `z_c`, the carried
#   state, offsets and (on request) the decoder attention averaged over layers
#   and heads. 34,726,787 parameters at paper size.
#
# ## Exercises
#
# 1. ★ What fraction of the pixels does training decode at `S = 8`, and how
#    many decoder queries does one paper batch (128 clips × 8 frames at 128²)
#    make? How many would dense decoding make?
# 2. ★★ The paper decodes the *predicted* state `z_p`. Decode the *corrected*
#    state `z_c` of the trained tiny model instead: is the reconstruction
#    better or worse than the prediction, and why would training on `z_c`
#    defeat the purpose?
# 3. ★★★ Show that the model's predictions are *equivariant to the offsets*:
#    decoding with offsets `(dy, dx)` gives the same colours as rolling the
#    densely decoded frame by `(dy, dx)` and subsampling. Then explain why the
#    Fourier features' aliasing of −1 and +1 (chapter 01) makes the rolled
#    coordinates wrap around consistently.

# %% [markdown]
# ### Solution 1

# %%
S_train = configs.get("paper").model.train_subsample
fraction = 1 / S_train**2
queries_per_batch = 128 * 8 * (128 // S_train) ** 2
print(f"fraction decoded: 1/{S_train**2} = {fraction:.4f}; queries per batch: "
      f"{queries_per_batch:,} (dense: {128 * 8 * 128**2:,})")
assert queries_per_batch == 262_144

# %% [markdown]
# ### Solution 2

# %%
z_c = result["z_c"][0]  # [T, K, D]
dense_c = nnx.jit(lambda m, z: m.decoder.decode_frame(z, resolution, resolution))(trained, z_c)
psnr_c = float(reconstruction_psnr(dense_c[1:], truth[1:]))
print(f"decoding z_p: {model_psnr:.1f} dB, decoding z_c: {psnr_c:.1f} dB")
# The decoder was only ever trained on z_p, so z_c is out of its training
# distribution and can decode worse even though it has seen the frame. Training
# on z_c would turn the task into auto-encoding the current frame: the model
# would not need to predict anything, and nothing would push the tokens to
# follow the scene over time.

# %% [markdown]
# ### Solution 3

# %%
offsets = jnp.array([[[3, 5]]], jnp.int32)  # one example, one frame
S = mc.train_subsample
state_0 = result["z_p"][:1, 1]  # [1, K, D]
coords = sample_coordinates(resolution, resolution, offsets, S).reshape(1, -1, 2)
both_ways = nnx.jit(lambda m, z, c: (m.decoder(z, c), m.decoder.decode_frame(z, resolution,
                                                                               resolution)))
sampled, dense_0 = both_ways(trained, state_0, coords)
sampled = sampled.reshape(1, 1, resolution // S, resolution // S, 3)
dense_0 = dense_0[:, None]  # [1, 1, H, W, 3]
assert jnp.allclose(sampled, subsample_frames(dense_0, offsets, S), atol=1e-4)
print("subsampled decoding == roll-and-subsample of the dense decoding")
# The decoder sees only coordinates. Rolling moves pixel (S·i + S//2 − dy) mod H
# into output row i; its coordinate is that pixel's own linspace value, so the
# two agree for any offset. The Fourier aliasing is what makes a *shift of
# coordinates* (rather than of pixel indices) wrap the same way: sin(π·2^k·c)
# repeats with period 2 = the length of [−1, 1].

# %% [markdown]
# ## References
#
# - S. van Steenkiste et al. *Moving Off-the-Grid: Scene-Grounded Video
#   Representations.* NeurIPS 2024 (Section 3.1; Appendix C: decoder,
#   subsampling, training).
# - M. S. M. Sajjadi et al. *Scene Representation Transformer.* CVPR 2022 — a
#   decoder whose pixel queries cross-attend into a set of latents.
# - A. Jaegle et al. *Perceiver IO.* ICLR 2022 — query-based decoding of
#   arbitrary outputs.
# - Z. Wang et al. *Image quality assessment: from error visibility to
#   structural similarity.* 2004 (on PSNR and its limits).
