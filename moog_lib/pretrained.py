"""The authors' weights in our code.

Generated from chapters/12_pretrained.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "EGO4D_URL",
    "EGO4D_FILES",
    "EGO4D_SIZES",
    "Ego4DBackboneConfig",
    "Ego4DHeadConfig",
    "Ego4DConfig",
    "ego4d_config",
    "ego4d_param_shapes",
    "release_param_shapes",
    "Ego4DEncoder",
    "Ego4DDecoder",
    "Ego4DMooG",
    "Ego4DTrackHead",
    "point_predictions",
    "param_values",
    "release_names",
    "module_shapes",
    "Ego4DModels",
    "check_entries",
    "load_ego4d",
    "ego4d_arrays",
    "save_ego4d",
    "random_ego4d_arrays",
    "write_random_ego4d",
    "find_ego4d_files",
    "download_ego4d",
    "from_release_params",
    "to_release_params",
    "grid_points",
    "parse_points",
    "track_video",
    "overlay_tracks",
    "overlay_boxes",
    "track_video_file",
]


# chapters/12_pretrained.py, cell 6
import collections.abc
import colorsys
import dataclasses
import functools
import math
import os
import tempfile
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from moog_lib import attention, configs, data, decoder, fourier, model

EGO4D_URL = "https://storage.googleapis.com/representations4d/checkpoints/"
EGO4D_FILES = {  # load_ego4d's argument -> the authors' file name
    "backbone_npz": "moog_ego4d_backbone_ckpt_164335139.npz",
    "point_head_npz": "moog_ego4d_point_track_head_ckpt_164335139.npz",
    "box_head_npz": "moog_ego4d_box_track_head_ckpt_164335139.npz",
}
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


# chapters/12_pretrained.py, cell 9
def _attention_shapes(prefix: str, width: int, kv_width: int, heads: int,
                      head_dim: int) -> dict:
    return {
        f"{prefix}/dense_query/kernel": (width, heads, head_dim),
        f"{prefix}/dense_key/kernel": (kv_width, heads, head_dim),
        f"{prefix}/dense_value/kernel": (kv_width, heads, head_dim),
        f"{prefix}/norm_query/scale": (head_dim,),
        f"{prefix}/norm_key/scale": (head_dim,),
        f"{prefix}/dense_out/kernel": (heads, head_dim, width),
        f"{prefix}/dense_out/bias": (width,),
    }


def _transformer_shapes(prefix: str, width: int, layers: configs.TransformerConfig, *,
                        kv_width: int | None = None, self_attention: bool = True) -> dict:
    """The release's names for a stack of blocks (`layer_i`) and its final LN."""
    heads, head_dim = layers.num_heads, layers.qkv_size // layers.num_heads
    table = {}
    for i in range(layers.num_layers):
        p = f"{prefix}/layer_{i}"
        table[f"{p}/norm_q/scale"] = (width,)
        if self_attention:
            table |= _attention_shapes(f"{p}/self_att", width, width, heads, head_dim)
        if kv_width is not None:
            table |= _attention_shapes(f"{p}/cross_att", width, kv_width, heads, head_dim)
        table |= {f"{p}/norm_attn/scale": (width,),
                  f"{p}/MLP_in/kernel": (width, layers.mlp_size), f"{p}/MLP_in/bias": (layers.mlp_size,),
                  f"{p}/MLP_out/kernel": (layers.mlp_size, width), f"{p}/MLP_out/bias": (width,)}
    table[f"{prefix}/norm_encoder/scale"] = (width,)
    return table


def _dense_shapes(prefix: str, fan_in: int, fan_out: int) -> dict:
    return {f"{prefix}/kernel": (fan_in, fan_out), f"{prefix}/bias": (fan_out,)}


def _conv_shapes(prefix: str, features: tuple[int, ...]) -> dict:
    table = {}
    for i, (c_in, c_out) in enumerate(zip((3,) + tuple(features[:-1]), features)):
        table |= {f"{prefix}/Conv_{i}/kernel": (3, 3, c_in, c_out), f"{prefix}/Conv_{i}/bias": (c_out,)}
    return table | {f"{prefix}/LayerNorm_0/scale": (features[-1],)}


def _head_shapes(h: Ego4DHeadConfig) -> dict:
    a, head_dim = "attention_readout", h.width // h.num_heads
    table = {
        **_dense_shapes("query_initializer/layers_1/Dense_0",
                        2 * h.query_dim * h.query_fourier_bases, h.query_width),
        **_dense_shapes("query_initializer/layers_1/Dense_1", h.query_width, h.query_width),
        f"{a}/LayerNorm_0/scale": (h.feature_dim,), f"{a}/LayerNorm_0/bias": (h.feature_dim,),
        f"{a}/temporal_posenc/embeddings": (h.num_frames, 1, h.feature_dim),
        **_dense_shapes(f"{a}/Dense_0", h.query_width, h.width),
        f"{a}/key_embedding/kernel": (h.feature_dim, h.num_heads, head_dim),
        f"{a}/key_embedding/bias": (h.num_heads, head_dim),
        f"{a}/value_embedding/kernel": (h.feature_dim, h.num_heads, head_dim),
        f"{a}/value_embedding/bias": (h.num_heads, head_dim),
        **_dense_shapes(f"{a}/Dense_1", h.width, h.width),
        f"{a}/LayerNorm_1/scale": (h.width,), f"{a}/LayerNorm_1/bias": (h.width,),
        **_dense_shapes(f"{a}/MLP_0/Dense_0", h.width, h.mlp_ratio * h.width),
        **_dense_shapes(f"{a}/MLP_0/Dense_1", h.mlp_ratio * h.width, h.width),
        **_dense_shapes(f"{a}/Dense_2", h.width, h.num_outputs),
    }
    if h.num_tiles > 1:
        table["temporal_tile_posenc/embeddings"] = (h.num_tiles, h.query_width)
    return table


def ego4d_param_shapes(config: Ego4DConfig | None = None) -> dict[str, dict[str, tuple]]:
    """Every path and shape of the three Ego4D files (all float32), by part:
    "backbone", "backbone_decoder_if_saved" (may be in the backbone file, or not),
    "point_track_head", "box_track_head". Default: the released sizes."""
    b = (ego4d_config() if config is None else config).backbone
    p, feature_dim = "pretrained_model", b.feature_dim
    query_width = b.token_dim + 4 * b.decoder_fourier_bases
    backbone = {
        **_conv_shapes(f"{p}/encoder/backbone", b.encoder_features),
        **_dense_shapes(f"{p}/encoder/transformer/Dense_0", feature_dim, b.encoder_hidden),
        f"{p}/encoder/transformer/norm_encoder/scale": (b.encoder_hidden,),
        **_dense_shapes(f"{p}/encoder/transformer/Dense_1", b.encoder_hidden, feature_dim),
        **_transformer_shapes(f"{p}/predictor_sa", b.token_dim, b.predictor),
        **_transformer_shapes(f"{p}/predictor_ca", b.token_dim, b.corrector, kv_width=feature_dim),
        f"{p}/state_layer_norm/scale": (b.token_dim,),
    }
    decoder_part = {
        **_transformer_shapes(f"{p}/decoder/transformer", query_width, b.decoder,
                              kv_width=b.token_dim),
        **_dense_shapes(f"{p}/decoder/recon", query_width, 3),
    }
    config = ego4d_config() if config is None else config
    return {"backbone": backbone, "backbone_decoder_if_saved": decoder_part,
            "point_track_head": _head_shapes(config.points),
            "box_track_head": _head_shapes(config.boxes)}


def release_param_shapes(config: configs.ModelConfig) -> dict[str, tuple]:
    """Every path and shape of a parameter tree written by the release's paper model
    (with `state_grad_projector` iff `config.loss_gradient_input`)."""
    d = config.token_dim
    query_width = d + 4 * config.decoder_fourier_bases
    table = {
        **_conv_shapes("encoder/backbone", config.encoder_features),
        **_dense_shapes("encoder/pos_embedding/dense_pe", 4 * config.encoder_fourier_bases,
                        config.encoder_features[-1]),
        **_dense_shapes("encoder/transformer/Dense_0", config.encoder_features[-1], d),
        "encoder/transformer/norm_encoder/scale": (d,),
        **_transformer_shapes("predictor", d, config.predictor),
        **_transformer_shapes("corrector", d, config.corrector, kv_width=d),
        "correction_layer_norm/scale": (d,),
        **_transformer_shapes("decoder/transformer", query_width, config.decoder, kv_width=d,
                              self_attention=False),
        **_dense_shapes("decoder/recon", query_width, 3),
    }
    if config.loss_gradient_input:
        table |= _dense_shapes("state_grad_projector", 2 * d, d)
    return table


# chapters/12_pretrained.py, cell 13
class Ego4DEncoder(nnx.Module):
    """Frames [..., H, W, 3] in [0, 1] -> tokens [..., (H/s)·(W/s), F], s the total stride.

    Convs (GELU between) → LN → concat Fourier features of the grid → Dense F→hidden,
    LN, Dense hidden→F."""

    def __init__(self, config: Ego4DBackboneConfig, *, rngs: nnx.Rngs, dtype=jnp.float32,
                 param_dtype=jnp.float32):
        features = tuple(config.encoder_features)
        self.dtype = dtype
        self.convs = model.conv_stack(features, config.encoder_strides, rngs=rngs, dtype=dtype,
                                      param_dtype=param_dtype, owner="Ego4DEncoder")
        self.stride = math.prod(config.encoder_strides)
        self.conv_norm = model.scale_only_norm(features[-1], 1e-6, rngs, dtype, param_dtype)
        self.position = fourier.FourierConcat(config.encoder_fourier_bases)
        self.transformer = attention.Transformer(  # zero blocks: Dense, final LN, Dense
            config.feature_dim, num_layers=0, num_heads=1, qkv_size=1, mlp_size=1,
            hidden_size=config.encoder_hidden, rngs=rngs, dtype=dtype, param_dtype=param_dtype)

    def __call__(self, frames: jnp.ndarray) -> jnp.ndarray:
        height, width = frames.shape[-3:-1]
        if frames.shape[-1] != 3 or height % self.stride or width % self.stride:
            raise ValueError(f"Ego4DEncoder: expected frames [..., H, W, 3] with H and W "
                             f"divisible by {self.stride}, got shape {frames.shape}")
        leading = frames.shape[:-3]
        x = model.apply_conv_stack(self.convs,
                                   jnp.reshape(frames, (-1, height, width, 3)).astype(self.dtype))
        x = self.conv_norm(x)
        h, w = x.shape[1:3]
        x = self.position(x, fourier.coordinate_grid(h, w)).reshape(x.shape[0], h * w, -1)
        x = self.transformer(x)
        return x.reshape(leading + x.shape[1:])


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

    def __call__(self, state: jnp.ndarray, coords: jnp.ndarray) -> jnp.ndarray:
        """state [B, K, D], coords [B, Q, 2] -> colours [B, Q, 3]."""
        if state.ndim != 3 or coords.ndim != 3 or coords.shape[-1] != 2:
            raise ValueError(f"Ego4DDecoder: expected state [B, K, D] and coords [B, Q, 2], "
                             f"got {state.shape} and {coords.shape}")
        zeros = jnp.zeros(coords.shape[:-1] + (self.token_dim,), self.dtype)
        return self.readout(self.transformer(self.fourier(zeros, coords), state))


class Ego4DMooG(nnx.Module):
    """The Ego4D checkpoints' MooG: encoder, `s = LN(s); s += P(s); s += C(s, F_t)`, decoder.

    `model(frames, key=...)` returns {"features": [B, T, K, D] (the state after
    each frame: what the heads read), "previous": [B, T, K, D] (the state before
    each frame: what the decoder reads), "state": [B, K, D] (to continue from)}.
    """

    def __init__(self, config: Ego4DBackboneConfig, *, with_decoder: bool = True,
                 rngs: nnx.Rngs, dtype=None, param_dtype=jnp.float32):
        self.config = config
        self.dtype = jnp.dtype(jnp.float32 if dtype is None else dtype)
        kwargs = dict(rngs=rngs, dtype=self.dtype, param_dtype=param_dtype)
        d = config.token_dim
        self.encoder = Ego4DEncoder(config, **kwargs)
        self.state_norm = model.scale_only_norm(d, config.state_norm_eps, rngs, self.dtype, param_dtype)
        self.predictor = attention.Transformer.from_config(d, config.predictor, **kwargs)
        self.corrector = attention.Transformer.from_config(d, config.corrector,
                                                           kv_size=config.feature_dim, **kwargs)
        self.decoder = Ego4DDecoder(config, **kwargs) if with_decoder else None

    def initial_state(self, key: jax.Array, batch_size: int,
                      num_tokens: int | None = None) -> jnp.ndarray:
        """`1e-4 · N(0, I)` of shape [B, K, D] — no LayerNorm (the step starts with one)."""
        num_tokens = self.config.num_tokens if num_tokens is None else num_tokens
        return model.initial_noise(key, batch_size, num_tokens, self.config.token_dim,
                                   self.config.initial_state_scale)

    def step(self, state: jnp.ndarray, frame_features: jnp.ndarray) -> jnp.ndarray:
        """One frame: [B, K, D], [B, N, F] -> [B, K, D]."""
        state = self.state_norm(state)
        state = state + self.predictor(state)
        return state + self.corrector(state, frame_features)

    def unroll(self, features: jnp.ndarray, state: jnp.ndarray) -> dict:
        """A `jax.lax.scan` of `step` over the frames of `features` [B, T, N, F]."""
        if features.ndim != 4 or features.shape[-1] != self.config.feature_dim:
            raise ValueError(f"unroll: features must be [B, T, N, {self.config.feature_dim}], "
                             f"got {features.shape}")
        if (state.ndim != 3 or state.shape[0] != features.shape[0]
                or state.shape[2] != self.config.token_dim or state.shape[1] < 1):
            raise ValueError(f"unroll: the state must be [B, K, D] = [{features.shape[0]}, K >= 1, "
                             f"{self.config.token_dim}], got {state.shape}")
        graphdef, params = nnx.split(self)

        def scan_step(carry, frame_features):
            new = nnx.merge(graphdef, params).step(carry, frame_features)
            return new, (carry, new)

        state, (before, after) = jax.lax.scan(scan_step, state.astype(self.dtype),
                                              jnp.swapaxes(features, 0, 1))
        return {"features": jnp.swapaxes(after, 0, 1), "previous": jnp.swapaxes(before, 0, 1),
                "state": state}

    def __call__(self, frames, *, key: jax.Array | None = None, state=None,
                 num_tokens: int | None = None) -> dict:
        """Run on a clip float [B, T, H, W, 3] in [0, 1] from fresh noise (`key`) or `state`."""
        model.check_frames(frames, stride=self.encoder.stride)
        if state is None:
            if key is None:
                raise ValueError("Ego4DMooG: pass key=jax.random.key(...) for the initial "
                                 "noise, or a state [B, K, D] to continue from")
            state = self.initial_state(key, frames.shape[0], num_tokens)
        features = self.encoder(jnp.asarray(frames, jnp.float32))
        return self.unroll(features, state)

    def predict_frames(self, frames, *, key: jax.Array, subsample: int = 4) -> dict:
        """Decode frame t from the state before frame t at every `subsample`-th pixel
        (chapter 04's grid, zero offsets). Returns {"prediction", "target"}, [B, T, h, w, 3]."""
        if self.decoder is None:
            raise ValueError("predict_frames: this model was built without its decoder "
                             "(the backbone file had no decoder entries)")
        out = self(frames, key=key)
        batch, num_frames, height, width, _ = frames.shape
        offsets = jnp.zeros((batch, num_frames, 2), jnp.int32)
        target = decoder.subsample_frames(jnp.asarray(frames, jnp.float32), offsets, subsample)
        h, w = target.shape[2:4]
        coords = decoder.sample_coordinates(height, width, offsets, subsample)
        previous = out["previous"].reshape((batch * num_frames,) + out["previous"].shape[2:])
        colours = self.decoder(previous, coords.reshape(batch * num_frames, h * w, 2))
        return {"prediction": colours.astype(jnp.float32).reshape(target.shape), "target": target}


# chapters/12_pretrained.py, cell 17
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

        def embedding(*shape):
            return nnx.Param(0.02 * jax.random.normal(rngs.params(), shape, param_dtype))

        self.query_in = dense(2 * c.query_dim * c.query_fourier_bases, c.query_width)
        self.query_out = dense(c.query_width, c.query_width)
        self.tile_embedding = embedding(c.num_tiles, c.query_width) if c.num_tiles > 1 else None
        self.feature_norm = nnx.LayerNorm(c.feature_dim, epsilon=1e-6, **kwargs)
        self.temporal_embedding = embedding(c.num_frames, 1, c.feature_dim)
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

    def __call__(self, features: jnp.ndarray, queries: jnp.ndarray, *,
                 chunk_size: int | None = None) -> jnp.ndarray:
        c = self.config
        if features.ndim != 4 or features.shape[1] != c.num_frames or features.shape[3] != c.feature_dim:
            raise ValueError(f"Ego4DTrackHead: features must be [B, {c.num_frames}, K, "
                             f"{c.feature_dim}] (the head reads clips of exactly {c.num_frames} "
                             f"frames), got {features.shape}")
        if queries.ndim != 3 or queries.shape[0] != features.shape[0] or queries.shape[2] != c.query_dim:
            raise ValueError(f"Ego4DTrackHead: queries must be [B, Q, {c.query_dim}] with "
                             f"B = {features.shape[0]}, got {queries.shape}")
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise ValueError(f"Ego4DTrackHead: chunk_size must be a positive int, got {chunk_size!r}")
        batch, num_queries = queries.shape[:2]
        key, value = self.memory(features)
        if chunk_size is None or num_queries <= chunk_size:
            raw = self.read(self.embed_queries(queries), key, value)
        else:  # queries are independent: answer `chunk_size` of them at a time
            chunks = -(-num_queries // chunk_size)
            padded = jnp.pad(queries, ((0, 0), (0, chunks * chunk_size - num_queries), (0, 0)))
            padded = jnp.moveaxis(padded.reshape(batch, chunks, chunk_size, c.query_dim), 1, 0)
            graphdef, params = nnx.split(self)

            def answer(chunk):
                head = nnx.merge(graphdef, params)
                return head.read(head.embed_queries(chunk), key, value)

            raw = jnp.moveaxis(jax.lax.map(answer, padded), 0, 1)
            raw = raw.reshape(batch, chunks * chunk_size * c.num_tiles, c.num_outputs)
            raw = raw[:, :num_queries * c.num_tiles]
        # [B, Q·tiles, tiles' outputs] -> [B, Q, tiles, frames per tile, channels] -> [B, Q, T, C]
        return raw.reshape(batch, num_queries, c.num_frames, c.channels).astype(jnp.float32)


def point_predictions(raw: jnp.ndarray, threshold: float = 0.5) -> dict:
    """The point head's raw [..., 4] -> {"tracks": (x, y) in [0, 1] [..., 2],
    "visibility_logits", "certainty_logits", "visible_probability", "visible" (bool)}."""
    if raw.shape[-1] != 4:
        raise ValueError(f"point_predictions: expected [..., 4] (x, y, visibility, certainty), "
                         f"got {raw.shape}")
    probability = jax.nn.sigmoid(raw[..., 2]) * jax.nn.sigmoid(raw[..., 3])
    return {"tracks": jax.nn.sigmoid(raw[..., :2]), "visibility_logits": raw[..., 2],
            "certainty_logits": raw[..., 3], "visible_probability": probability,
            "visible": probability > threshold}


# chapters/12_pretrained.py, cell 21
_BLOCK_NAMES = {  # chapter 02's attribute names -> the release's module names
    "attention_norm": "norm_q", "self_attention": "self_att", "cross_attention": "cross_att",
    "mlp_norm": "norm_attn", "mlp_in": "MLP_in", "mlp_out": "MLP_out",
    "query": "dense_query", "key": "dense_key", "value": "dense_value", "out": "dense_out",
    "query_norm": "norm_query", "key_norm": "norm_key", "final_norm": "norm_encoder",
    "input_dense": "Dense_0", "output_dense": "Dense_1",
}
# (our path prefix, their prefix, how the rest is named): "plain" keeps the rest,
# "indexed" formats the list index into their prefix, "transformer" applies _BLOCK_NAMES.
_EGO4D_RULES = (
    (("encoder", "convs"), "pretrained_model/encoder/backbone/Conv_{}", "indexed"),
    (("encoder", "conv_norm"), "pretrained_model/encoder/backbone/LayerNorm_0", "plain"),
    (("encoder", "transformer"), "pretrained_model/encoder/transformer", "transformer"),
    (("predictor",), "pretrained_model/predictor_sa", "transformer"),
    (("corrector",), "pretrained_model/predictor_ca", "transformer"),
    (("state_norm",), "pretrained_model/state_layer_norm", "plain"),
    (("decoder", "transformer"), "pretrained_model/decoder/transformer", "transformer"),
    (("decoder", "readout"), "pretrained_model/decoder/recon", "plain"),
)
_HEAD_RULES = (
    (("query_in",), "query_initializer/layers_1/Dense_0", "plain"),
    (("query_out",), "query_initializer/layers_1/Dense_1", "plain"),
    (("tile_embedding",), "temporal_tile_posenc/embeddings", "plain"),
    (("feature_norm",), "attention_readout/LayerNorm_0", "plain"),
    (("temporal_embedding",), "attention_readout/temporal_posenc/embeddings", "plain"),
    (("query_dense",), "attention_readout/Dense_0", "plain"),
    (("key",), "attention_readout/key_embedding", "plain"),
    (("value",), "attention_readout/value_embedding", "plain"),
    (("residual_dense",), "attention_readout/Dense_1", "plain"),
    (("mlp_norm",), "attention_readout/LayerNorm_1", "plain"),
    (("mlp_in",), "attention_readout/MLP_0/Dense_0", "plain"),
    (("mlp_out",), "attention_readout/MLP_0/Dense_1", "plain"),
    (("output_dense",), "attention_readout/Dense_2", "plain"),
)
_PAPER_RULES = (
    (("encoder", "convs"), "encoder/backbone/Conv_{}", "indexed"),
    (("encoder", "conv_norm"), "encoder/backbone/LayerNorm_0", "plain"),
    (("encoder", "position", "dense_pe"), "encoder/pos_embedding/dense_pe", "plain"),
    (("encoder", "token_dense"), "encoder/transformer/Dense_0", "plain"),
    (("encoder", "token_norm"), "encoder/transformer/norm_encoder", "plain"),
    (("dynamics", "predictor"), "predictor", "transformer"),
    (("dynamics", "corrector"), "corrector", "transformer"),
    (("dynamics", "correction_norm"), "correction_layer_norm", "plain"),
    (("dynamics", "gradient_projection"), "state_grad_projector", "plain"),
    (("decoder", "transformer"), "decoder/transformer", "transformer"),
    (("decoder", "readout"), "decoder/recon", "plain"),
)


def _rename(path: tuple, rules) -> str:
    for ours, theirs, kind in rules:
        if path[:len(ours)] != ours:
            continue
        rest = path[len(ours):]
        if kind == "indexed":
            return "/".join([theirs.format(rest[0]), *rest[1:]])
        if kind == "transformer":
            parts, i = [], 0
            while i < len(rest):
                if rest[i] == "layers":
                    parts.append(f"layer_{rest[i + 1]}")
                    i += 2
                else:
                    parts.append(_BLOCK_NAMES.get(rest[i], rest[i]))
                    i += 1
            return "/".join([theirs, *parts])
        return "/".join([theirs, *rest])
    raise ValueError(f"no release name for parameter {'.'.join(map(str, path))}")


def param_values(module: nnx.Module) -> dict[tuple, object]:
    """{our parameter path: its array} (a ShapeDtypeStruct in an abstract module)."""
    pure = nnx.to_pure_dict(nnx.state(module, nnx.Param))
    leaves, _ = jax.tree_util.tree_flatten_with_path(pure)
    return {tuple(k.key for k in path): value for path, value in leaves}


def release_names(module: nnx.Module) -> dict[str, tuple]:
    """{the release's '/'-joined path: our parameter path} for an `Ego4DMooG`, an
    `Ego4DTrackHead` or a paper `decoder.MooG` (abstract modules work too)."""
    if isinstance(module, Ego4DMooG):
        rules = _EGO4D_RULES
    elif isinstance(module, Ego4DTrackHead):
        rules = _HEAD_RULES
    elif isinstance(module, decoder.MooG):
        rules = _PAPER_RULES
    else:
        raise ValueError(f"release_names: expected Ego4DMooG, Ego4DTrackHead or decoder.MooG, "
                         f"got {type(module).__name__}")
    names = {}
    for path in param_values(module):
        name = _rename(path, rules)
        if name in names:
            raise ValueError(f"release_names: two parameters map to {name!r}")
        names[name] = path
    return names


def module_shapes(module: nnx.Module) -> dict[str, tuple]:
    """{release path: shape} of a module's parameters, under the release's names."""
    values = param_values(module)
    return {name: tuple(np.shape(values[path])) for name, path in release_names(module).items()}


# chapters/12_pretrained.py, cell 25
class Ego4DModels(NamedTuple):
    """What `load_ego4d` returns: the backbone, the heads (None if not loaded), the sizes."""

    backbone: Ego4DMooG
    points: Ego4DTrackHead | None
    boxes: Ego4DTrackHead | None
    config: Ego4DConfig


def _read_npz(source, what: str) -> dict[str, np.ndarray]:
    """Every array of an .npz file, read without pickle."""
    damaged = (zipfile.BadZipFile, zlib.error, EOFError)
    again = "download it again (an interrupted download leaves a truncated file)"
    try:
        with open(source, "rb") as f:
            head = f.read(6)
        is_numpy = head.startswith((b"PK", b"\x93NUMPY"))  # a zip (.npz) or a single .npy
        archive = np.load(source, allow_pickle=False) if is_numpy else None
    except damaged as err:
        raise ValueError(f"the {what} checkpoint {str(source)!r} is damaged or truncated ({err}); "
                         f"{again}") from None
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read the {what} checkpoint {str(source)!r} as an .npz archive: "
                         f"{err}") from None
    if archive is None:
        raise ValueError(f"the {what} checkpoint {str(source)!r} is not an .npz archive (it begins "
                         f"with {head!r}); {again}")
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"the {what} checkpoint {str(source)!r} holds a single array; expected an "
                         ".npz archive of named float32 arrays")
    arrays = {}
    with archive:
        for name in archive.files:
            try:
                arrays[name] = archive[name]
            except damaged as err:
                raise ValueError(f"the {what} checkpoint {str(source)!r}: entry {name!r} is "
                                 f"damaged or truncated ({err}); {again}") from None
            except ValueError as err:
                raise ValueError(
                    f"the {what} checkpoint {str(source)!r}: entry {name!r} cannot be read without "
                    f"pickle ({err}); a checkpoint holds plain float32 arrays, and pickle is never "
                    "enabled") from None
    return arrays


def _listing(items, limit: int = 12) -> str:
    items = list(items)
    more = f", … ({len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def check_entries(arrays: dict, expected: dict, what: str) -> None:
    """Raise ValueError naming every missing, unexpected, mis-shaped or non-float32 entry."""
    missing = [f"{n} {list(expected[n])}" for n in sorted(set(expected) - set(arrays))]
    unexpected = [f"{n} {list(np.shape(arrays[n]))}" for n in sorted(set(arrays) - set(expected))]
    common = sorted(set(arrays) & set(expected))
    shapes = [f"{n}: expected {list(expected[n])}, got {list(np.shape(arrays[n]))}"
              for n in common if tuple(np.shape(arrays[n])) != tuple(expected[n])]
    dtypes = [f"{n}: expected float32, got {np.asarray(arrays[n]).dtype}"
              for n in common if np.asarray(arrays[n]).dtype != np.float32]
    problems = [f"{len(found)} {kind}: {_listing(found)}" for kind, found in
                (("missing", missing), ("unexpected", unexpected), ("with the wrong shape", shapes),
                 ("with the wrong dtype", dtypes)) if found]
    if len(shapes) > len(expected) // 2:
        problems.append("most shapes differ: was it written for other sizes (see ego4d_config)?")
    if problems:
        raise ValueError(f"{what} does not match the expected {len(expected)} float32 arrays; "
                         + "; ".join(problems))
    for name in common:
        data.check_finite(f"{what}: entry {name!r}", arrays[name], "download the file again, "
                          "or take weights from a run that did not diverge")


def _from_arrays(make, arrays: dict[str, np.ndarray]) -> nnx.Module:
    """Build `make()` abstractly and fill every parameter from release-named `arrays`."""
    abstract = nnx.eval_shape(make)
    names = release_names(abstract)
    if set(names) != set(arrays):  # the tables and the modules disagree: a bug, not a bad file
        raise RuntimeError(f"internal: module names and arrays differ: "
                           f"{_listing(sorted(set(names) ^ set(arrays)))}")
    graphdef, state = nnx.split(abstract)
    pure = nnx.to_pure_dict(state)
    for name, path in names.items():
        node = pure
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = jnp.asarray(arrays[name])
    nnx.replace_by_pure_dict(state, pure)
    return nnx.merge(graphdef, state)


def load_ego4d(backbone_npz, point_head_npz=None, box_head_npz=None, *,
               config: Ego4DConfig | None = None, dtype=None) -> Ego4DModels:
    """Load the authors' Ego4D checkpoint files into `Ego4DMooG` and `Ego4DTrackHead`s.

    Every path and shape is checked against `ego4d_param_shapes(config)` (default: the
    released sizes) first; files are read with `allow_pickle=False`. `dtype` is the
    compute dtype (parameters stay float32).
    """
    config = ego4d_config() if config is None else config
    tables = ego4d_param_shapes(config)
    arrays = _read_npz(backbone_npz, "backbone")
    decoder_table = tables["backbone_decoder_if_saved"]
    with_decoder = any(name in arrays for name in decoder_table)
    check_entries(arrays, tables["backbone"] | (decoder_table if with_decoder else {}),
                  f"the backbone checkpoint {str(backbone_npz)!r}"
                  + (" (its decoder entries are all-or-nothing)" if with_decoder else ""))
    backbone = _from_arrays(lambda: Ego4DMooG(config.backbone, with_decoder=with_decoder,
                                              rngs=nnx.Rngs(0), dtype=dtype), arrays)
    heads = []
    for source, part, head_config in ((point_head_npz, "point_track_head", config.points),
                                      (box_head_npz, "box_track_head", config.boxes)):
        if source is None:
            heads.append(None)
            continue
        what = part.replace("_", " ")
        arrays = _read_npz(source, what)
        check_entries(arrays, tables[part], f"the {what} checkpoint {str(source)!r}")
        heads.append(_from_arrays(lambda h=head_config: Ego4DTrackHead(
            h, rngs=nnx.Rngs(0), dtype=dtype), arrays))
    return Ego4DModels(backbone, heads[0], heads[1], config)


def ego4d_arrays(module: nnx.Module) -> dict[str, np.ndarray]:
    """The flat {release path: float32 array} dict of an Ego4DMooG or Ego4DTrackHead."""
    values = param_values(module)
    return {name: np.asarray(values[path], np.float32)
            for name, path in sorted(release_names(module).items())}


def _write_npz(path: Path, arrays: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as f:
        np.savez(f, **arrays)
    os.replace(f.name, path)  # atomic: a reader never sees half a file
    return path


def save_ego4d(directory, backbone: Ego4DMooG, point_head: Ego4DTrackHead | None = None,
               box_head: Ego4DTrackHead | None = None) -> dict:
    """Write the modules as the authors' flat .npz files (their file names) into
    `directory`; returns {"backbone_npz": path, "point_head_npz": …, "box_head_npz": …}
    for `load_ego4d(**paths)` (None for a head not given)."""
    directory = Path(directory)
    paths = {}
    for key, module in (("backbone_npz", backbone), ("point_head_npz", point_head),
                        ("box_head_npz", box_head)):
        paths[key] = (None if module is None else
                      _write_npz(directory / EGO4D_FILES[key], ego4d_arrays(module)))
    return paths


def random_ego4d_arrays(config: Ego4DConfig | None = None, *, seed: int = 0,
                        with_decoder: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """Random float32 arrays for every entry of the three files, made from the tables
    alone (not from our modules): kernels ~ N(0, 1/fan_in), LN scales ~ 1, the rest small."""
    tables = ego4d_param_shapes(config)
    rng = np.random.default_rng(seed)
    per_head = ("dense_query/kernel", "dense_key/kernel", "dense_value/kernel",
                "key_embedding/kernel", "value_embedding/kernel")

    def draw(name, shape):
        if name.endswith("/scale"):
            return 1 + 0.05 * rng.standard_normal(shape, np.float32)
        if name.endswith("/kernel"):
            fan_in = shape[0] if name.endswith(per_head) else math.prod(shape[:-1])
            return rng.standard_normal(shape, np.float32) / np.float32(math.sqrt(fan_in))
        return 0.02 * rng.standard_normal(shape, np.float32)  # biases, embeddings

    backbone = tables["backbone"] | (tables["backbone_decoder_if_saved"] if with_decoder else {})
    parts = {"backbone_npz": backbone, "point_head_npz": tables["point_track_head"],
             "box_head_npz": tables["box_track_head"]}
    return {key: {name: draw(name, shape) for name, shape in sorted(table.items())}
            for key, table in parts.items()}


def write_random_ego4d(directory, config: Ego4DConfig | None = None, *, seed: int = 0,
                       with_decoder: bool = False) -> dict:
    """Write a random checkpoint in the exact format of the three files (the authors'
    file names) into `directory`; returns the paths for `load_ego4d(**paths)`."""
    return {key: _write_npz(Path(directory) / EGO4D_FILES[key], arrays)
            for key, arrays in random_ego4d_arrays(config, seed=seed,
                                                   with_decoder=with_decoder).items()}


def find_ego4d_files(directory) -> dict:
    """{"backbone_npz", "point_head_npz", "box_head_npz"} in `directory`: the authors'
    file names, else the one `*backbone*.npz` / `*point_track_head*.npz` /
    `*box_track_head*.npz`; heads may be missing (None), the backbone may not."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"no directory {str(directory)!r}; put the three Ego4D .npz files there "
                         f"(download_ego4d({str(directory)!r}) fetches them from {EGO4D_URL})")
    found = {}
    for key, pattern in (("backbone_npz", "backbone"), ("point_head_npz", "point_track_head"),
                         ("box_head_npz", "box_track_head")):
        exact = directory / EGO4D_FILES[key]
        matches = [exact] if exact.is_file() else sorted(directory.glob(f"*{pattern}*.npz"))
        if len(matches) > 1:
            raise ValueError(f"{str(directory)!r} holds several *{pattern}*.npz files "
                             f"({_listing(m.name for m in matches)}); keep one")
        found[key] = matches[0] if matches else None
    if found["backbone_npz"] is None:
        raise ValueError(f"no backbone checkpoint (*backbone*.npz) in {str(directory)!r}; "
                         f"expected {EGO4D_FILES['backbone_npz']} from {EGO4D_URL}")
    return found


def download_ego4d(directory, *, base_url: str = EGO4D_URL) -> dict:
    """Download the three files (skipping those present) into `directory`; needs network."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in EGO4D_FILES.values():
        target = directory / name
        if not target.is_file():
            partial = target.with_suffix(".part")
            print(f"downloading {base_url + name} …")
            urllib.request.urlretrieve(base_url + name, partial)
            os.replace(partial, target)
    return find_ego4d_files(directory)


# chapters/12_pretrained.py, cell 33
def _flatten_tree(tree, prefix: str = "") -> dict[str, np.ndarray]:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, collections.abc.Mapping):
            flat |= _flatten_tree(value, name + "/")
        else:
            flat[name] = value
    return flat


def _nest(flat: dict) -> dict:
    tree = {}
    for name, value in flat.items():
        node = tree
        *parents, leaf = name.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def from_release_params(tree, *, config: configs.ModelConfig | None = None,
                        dtype=None) -> decoder.MooG:
    """Our `decoder.MooG` holding a parameter tree written by the release's paper model.

    `tree`: nested dicts (optionally under "params") or a flat {'a/b/kernel': array}.
    `config` defaults to the `paper` preset, with `loss_gradient_input` set when the
    tree has `state_grad_projector`. Every path and shape is checked first. The
    model computes in float32 unless `dtype` asks otherwise (e.g. `jnp.bfloat16`
    on a TPU): the `paper` preset's bfloat16 compute would differ from the
    release's float32 outputs by 1–2 % relative.
    """
    if not isinstance(tree, collections.abc.Mapping):
        raise ValueError(f"from_release_params: expected a dict of parameters, got "
                         f"{type(tree).__name__}")
    if set(tree) == {"params"}:
        tree = tree["params"]
    flat = {name: np.asarray(value) for name, value in _flatten_tree(tree).items()}
    variant = "state_grad_projector/kernel" in flat
    if config is None:
        config = dataclasses.replace(configs.get("paper").model, loss_gradient_input=variant)
    check_entries(flat, release_param_shapes(config),
                  "the release parameter tree" + (" (loss-gradient variant)" if variant else ""))
    dtype = jnp.float32 if dtype is None else dtype
    return _from_arrays(lambda: decoder.MooG(config, rngs=nnx.Rngs(0), dtype=dtype), flat)


def to_release_params(moog: decoder.MooG) -> dict:
    """The release's nested parameter tree (NumPy float32 arrays) of our paper `MooG`."""
    if not isinstance(moog, decoder.MooG):
        raise ValueError(f"to_release_params: expected a decoder.MooG, got {type(moog).__name__}")
    values = param_values(moog)
    return _nest({name: np.asarray(values[path])
                  for name, path in sorted(release_names(moog).items())})


# chapters/12_pretrained.py, cell 37
def grid_points(height: int, width: int, n: int) -> np.ndarray:
    """An n × n grid of query points, raster (x, y) [n², 2], cell centres of the frame."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"grid_points: n must be a positive int, got {n!r}")
    xs, ys = (np.arange(n) + 0.5) / n * width, (np.arange(n) + 0.5) / n * height
    return np.stack(np.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2).astype(np.float32)


def parse_points(text: str) -> np.ndarray:
    """'x,y;x,y;…' (pixels; ';' or spaces between points) -> raster (x, y) float32 [Q, 2]."""
    try:
        points = [[float(v) for v in item.split(",")] for item in text.replace(";", " ").split()]
    except ValueError:
        points = None
    if not points or any(len(p) != 2 for p in points):
        raise ValueError(f"points must look like 'x,y;x,y' (pixels on the first frame), got {text!r}")
    return data.check_finite(f"points {text!r}", np.asarray(points, np.float32),
                             "give pixel positions on the first frame, e.g. '12,30;40,8'")


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _run_window(graphdef, resolution: int, chunk_size, state, frames, points, boxes, key):
    """One window: frames float [1, T, H, W, 3] -> the heads' answers (compiled once per
    model structure and input shapes, so every window of a video reuses it)."""
    backbone, point_head, box_head = nnx.merge(graphdef, state)
    frames = jax.image.resize(frames, frames.shape[:2] + (resolution, resolution, 3), "linear",
                              antialias=True)
    features = backbone(jnp.clip(frames, 0.0, 1.0), key=key)["features"]
    out = {}
    if points is not None:
        out["points"] = point_predictions(point_head(features, points, chunk_size=chunk_size))
    if boxes is not None:
        out["boxes"] = box_head(features, boxes, chunk_size=chunk_size)
    return out


def track_video(models: Ego4DModels, video, *, points=None, boxes=None,
                key: jax.Array | None = None, chunk_size: int | None = 64) -> dict:
    """Track `points` (raster (x, y) [Q, 2] on frame 0) and/or `boxes` (normalised
    (ymin, xmin, ymax, xmax) [Qb, 4] on frame 0) through `video` [T, H, W, 3]
    (uint8, or float in [0, 1]) in 16-frame windows overlapping by one frame.

    Returns {"tracks": [Q, T, 2] raster (x, y), "visible": bool [Q, T],
    "visible_probability": [Q, T]} and/or {"boxes": [Qb, T, 4]}.
    """
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3 or video.shape[0] < 1:
        raise ValueError(f"track_video: video must be [T, H, W, 3], got shape {video.shape}")
    num_frames, height, width = video.shape[:3]
    if video.dtype != np.uint8:
        if video.dtype.kind != "f":
            raise ValueError(f"track_video: video has dtype {video.dtype}; expected floats in "
                             "[0, 1] or uint8")
        data.check_finite("track_video: video", video, "expected floats in [0, 1] or uint8")
        low, high = float(video.min()), float(video.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(f"track_video: video has float values in [{low:g}, {high:g}]; "
                             "expected floats in [0, 1] or uint8 (divide 8-bit values by 255)")
    if points is None and boxes is None:
        raise ValueError("track_video: pass points [Q, 2] and/or boxes [Qb, 4] on the first frame")
    size = np.array([width, height], np.float32)
    if points is not None:
        if models.points is None:
            raise ValueError("track_video: points need the point head (point_head_npz)")
        points = np.asarray(points, np.float32)
        if points.ndim != 2 or points.shape[1] != 2 or len(points) < 1:
            raise ValueError(f"track_video: points must be raster (x, y) [Q, 2], got {points.shape}")
        data.check_finite("track_video: points", points, "give raster (x, y) pixels on frame 0")
        if (points < 0).any() or (points > size).any():
            raise ValueError(f"track_video: points must lie inside the {width}×{height} frame "
                             f"(x in [0, {width}], y in [0, {height}])")
        points = points / size
    if boxes is not None:
        if models.boxes is None:
            raise ValueError("track_video: boxes need the box head (box_head_npz)")
        boxes = np.asarray(boxes, np.float32)
        if boxes.ndim != 2 or boxes.shape[1] != 4 or len(boxes) < 1:
            raise ValueError(f"track_video: boxes must be (ymin, xmin, ymax, xmax) [Qb, 4] in "
                             f"[0, 1], got shape {boxes.shape}")
        data.check_finite("track_video: boxes", boxes, "give (ymin, xmin, ymax, xmax) in [0, 1]")
    window = (models.points or models.boxes).config.num_frames
    graphdef, state = nnx.split((models.backbone, models.points, models.boxes))
    run = functools.partial(_run_window, graphdef, models.config.resolution, chunk_size, state)
    key = jax.random.key(0) if key is None else key
    result = {}
    if points is not None:
        result |= {"tracks": np.zeros((len(points), num_frames, 2), np.float32),
                   "visible": np.zeros((len(points), num_frames), bool),
                   "visible_probability": np.zeros((len(points), num_frames), np.float32)}
    if boxes is not None:
        result["boxes"] = np.zeros((len(boxes), num_frames, 4), np.float32)
    start, index = 0, 0
    while True:
        clip = video[start:start + window]  # converted one window at a time: long videos fit
        clip = (clip.astype(np.float32) / 255.0 if clip.dtype == np.uint8
                else clip.astype(np.float32))
        n = len(clip)
        clip = np.concatenate([clip, np.repeat(clip[-1:], window - n, axis=0)])
        out = jax.device_get(run(clip[None], None if points is None else points[None],
                                 None if boxes is None else boxes[None],
                                 jax.random.fold_in(key, index)))
        first = 0 if start == 0 else 1  # the overlap frame keeps the previous window's answer
        span = slice(start + first, start + n)
        if points is not None:
            p = out["points"]
            result["tracks"][:, span] = p["tracks"][0, :, first:n] * size
            result["visible"][:, span] = p["visible"][0, :, first:n]
            result["visible_probability"][:, span] = p["visible_probability"][0, :, first:n]
            points = np.clip(p["tracks"][0, :, window - 1], 0.0, 1.0)
        if boxes is not None:
            result["boxes"][:, span] = out["boxes"][0, :, first:n]
            boxes = out["boxes"][0, :, window - 1]
        if start + window >= num_frames:
            return result
        start, index = start + window - 1, index + 1


def _palette(n: int) -> np.ndarray:
    return np.array([[round(255 * c) for c in colorsys.hsv_to_rgb(i / max(n, 1), 0.85, 1.0)]
                     for i in range(n)], np.uint8).reshape(n, 3)


def _stamp(frame: np.ndarray, xy: np.ndarray, offsets: np.ndarray, colours: np.ndarray) -> None:
    """Paint pixel `offsets` [m, 2] (dy, dx) around raster points `xy` [n, 2], in place."""
    rows = np.floor(xy[:, 1])[:, None].astype(int) + offsets[None, :, 0]
    cols = np.floor(xy[:, 0])[:, None].astype(int) + offsets[None, :, 1]
    inside = (rows >= 0) & (rows < frame.shape[0]) & (cols >= 0) & (cols < frame.shape[1])
    frame[rows[inside], cols[inside]] = np.broadcast_to(colours[:, None], rows.shape + (3,))[inside]


def overlay_tracks(video, tracks, visible, *, trail: int = 8, radius: int | None = None,
                   colours=None) -> np.ndarray:
    """Draw tracks (raster (x, y) [Q, T, 2], visible bool [Q, T]) on a uint8 video
    [T, H, W, 3]: a filled dot where visible, a ring where not, a trail of `trail` frames."""
    video = np.array(video, np.uint8, copy=True)
    tracks, visible = np.asarray(tracks, np.float32), np.asarray(visible, bool)
    if video.ndim != 4 or tracks.shape != (tracks.shape[0], video.shape[0], 2) \
            or visible.shape != tracks.shape[:2]:
        raise ValueError(f"overlay_tracks: expected video [T, H, W, 3], tracks [Q, T, 2] and "
                         f"visible [Q, T], got {video.shape}, {tracks.shape}, {visible.shape}")
    radius = radius or max(2, round(min(video.shape[1:3]) / 80))
    colours = _palette(len(tracks)) if colours is None else np.asarray(colours, np.uint8)
    r = np.arange(-radius - 1, radius + 2)
    grid = np.stack(np.meshgrid(r, r, indexing="ij"), -1).reshape(-1, 2)
    distance = np.linalg.norm(grid, axis=1)
    disc, ring = grid[distance <= radius], grid[(distance > radius - 1.2) & (distance <= radius + 0.5)]
    dot = grid[distance <= max(1, radius // 3)]
    for t, frame in enumerate(video):
        for s in range(max(0, t - trail), t):  # the trail: line segments between past positions
            both = visible[:, s] & visible[:, s + 1]
            for f in np.linspace(0, 1, 2 * radius + 2):
                xy = tracks[both, s] * (1 - f) + tracks[both, s + 1] * f
                _stamp(frame, xy, dot, colours[both])
        _stamp(frame, tracks[visible[:, t], t], disc, colours[visible[:, t]])
        _stamp(frame, tracks[~visible[:, t], t], ring, colours[~visible[:, t]])
    return video


def overlay_boxes(video, boxes, *, thickness: int | None = None, colours=None) -> np.ndarray:
    """Draw boxes (normalised (ymin, xmin, ymax, xmax) [Q, T, 4]) as outlines on a uint8 video."""
    video = np.array(video, np.uint8, copy=True)
    boxes = np.asarray(boxes, np.float32)
    if video.ndim != 4 or boxes.shape != (boxes.shape[0], video.shape[0], 4):
        raise ValueError(f"overlay_boxes: expected video [T, H, W, 3] and boxes [Q, T, 4], got "
                         f"{video.shape} and {boxes.shape}")
    height, width = video.shape[1:3]
    thickness = thickness or max(1, round(min(height, width) / 128))
    colours = _palette(len(boxes)) if colours is None else np.asarray(colours, np.uint8)
    for t, frame in enumerate(video):
        for q, box in enumerate(boxes[:, t]):
            y0, x0, y1, x1 = np.round(np.clip(box, 0, 1) * [height, width, height, width]).astype(int)
            if y1 <= y0 or x1 <= x0:
                continue
            frame[y0:min(y0 + thickness, y1), x0:x1] = colours[q]
            frame[max(y1 - thickness, y0):y1, x0:x1] = colours[q]
            frame[y0:y1, x0:min(x0 + thickness, x1)] = colours[q]
            frame[y0:y1, max(x1 - thickness, x0):x1] = colours[q]
    return video


def _frame_rate(path, default: float = 10.0) -> float:
    try:
        import av

        with av.open(os.fspath(path)) as container:
            rate = container.streams.video[0].average_rate
        return float(rate) if rate else default
    except Exception:  # any container problem: the video was already read; keep a default
        return default


def track_video_file(video_path, ego4d_dir, out, *, points: str | None = None,
                     grid: int | None = None, max_frames: int | None = None,
                     size: str = "official", seed: int = 0) -> dict:
    """Track points through a video file with the Ego4D weights in `ego4d_dir` and write
    `out` (.mp4 or .gif) with the tracks drawn, plus the tracks as `out` with suffix .npz.

    Queries: `points` 'x,y;x,y' in pixels of the first frame, or an n × n `grid`
    (default 8 × 8). `size="tiny"` reads the reduced random checkpoint of chapter 12.
    """
    import imageio_ffmpeg
    import mediapy

    if points is not None and grid is not None:
        raise ValueError("give either points or grid, not both")
    queries = None if points is None else parse_points(points)  # before any slow step
    if size not in EGO4D_SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {', '.join(EGO4D_SIZES)}")
    out = Path(out)
    if out.suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"the output video must end in .mp4 or .gif, got {str(out)!r}")
    files = find_ego4d_files(ego4d_dir)
    if files["point_head_npz"] is None:
        raise ValueError(f"no point-track head (*point_track_head*.npz) in {str(ego4d_dir)!r}")
    video = data.read_video(os.fspath(video_path), max_frames=max_frames)
    height, width = video.shape[1:3]
    queries = grid_points(height, width, grid or 8) if queries is None else queries
    models = load_ego4d(files["backbone_npz"], files["point_head_npz"], config=ego4d_config(size))
    result = track_video(models, video, points=queries, key=jax.random.key(seed))
    drawn = overlay_tracks(video, result["tracks"], result["visible"])
    out.parent.mkdir(parents=True, exist_ok=True)
    mediapy.set_ffmpeg(imageio_ffmpeg.get_ffmpeg_exe())
    mediapy.write_video(out, drawn, fps=_frame_rate(video_path),
                        **({"codec": "gif"} if out.suffix.lower() == ".gif" else {}))
    tracks_path = out.with_suffix(".npz")
    np.savez(tracks_path, tracks=result["tracks"], visible=result["visible"],
             visible_probability=result["visible_probability"], queries=queries)
    return {"video": str(out), "tracks": str(tracks_path), "frames": int(len(video)),
            "points": int(len(queries)), "visible_fraction": float(result["visible"].mean())}
