"""The authors' Ego4D MooG as Flax NNX modules: its sizes, backbone and tracking heads.

`ego4d_config` gives the released sizes, or the same file layout at tiny widths;
`Ego4DMooG` is the backbone (`Ego4DEncoder`, the recurrent step, `Ego4DDecoder`);
`Ego4DTrackHead` is the one-shot attention readout that tracks points or boxes over
16 frames (`point_predictions` squashes its point outputs). Reading the authors'
checkpoint files into these modules is `moog_lib.release`; tracking through a video
is `moog_lib.tracking`.

Generated from chapters/12_pretrained.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "EGO4D_SIZES",
    "Ego4DBackboneConfig",
    "Ego4DHeadConfig",
    "Ego4DConfig",
    "ego4d_config",
    "Ego4DEncoder",
    "ego4d_step",
    "ego4d_unroll",
    "Ego4DDecoder",
    "decode_frames",
    "Ego4DMooG",
    "map_in_chunks",
    "Ego4DTrackHead",
    "point_predictions",
]


import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, ArrayLike, Float

from moog_lib import attention, configs, decoder, dynamics, encoder, fourier
from moog_lib.shapes import typed

# chapters/12_pretrained.py, cell 6
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


# chapters/12_pretrained.py, cell 10
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


# chapters/12_pretrained.py, cell 13
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


# chapters/12_pretrained.py, cell 16
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


# chapters/12_pretrained.py, cell 20
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


# chapters/12_pretrained.py, cell 24
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


# chapters/12_pretrained.py, cell 26
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


# chapters/12_pretrained.py, cell 30
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


# chapters/12_pretrained.py, cell 35
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


# chapters/12_pretrained.py, cell 39
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


# chapters/12_pretrained.py, cell 41
@typed
def point_predictions(raw: Float[ArrayLike, "*batch 4"], threshold: float = 0.5) -> dict:
    """The point head's raw (x, y, visibility, certainty) -> {"tracks": (x, y) in [0, 1]
    [..., 2], "visibility_logits", "certainty_logits", "visible_probability", "visible" (bool)}."""
    probability = jax.nn.sigmoid(raw[..., 2]) * jax.nn.sigmoid(raw[..., 3])
    return {"tracks": jax.nn.sigmoid(raw[..., :2]), "visibility_logits": raw[..., 2],
            "certainty_logits": raw[..., 3], "visible_probability": probability,
            "visible": probability > threshold}
