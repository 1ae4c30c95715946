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
# # 12a — The release's files: check, rename, load, save
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/moog-tutorial/moog-tutorial/blob/main/notebooks/12a_release_files.ipynb)
#
# **What you will learn.** Chapter 12 built the authors' Ego4D MooG in our
# modules. This chapter puts the authors' numbers into them, and takes them
# out again, without any of the authors' code:
#
# - how a released checkpoint is laid out (a flat `.npz` of `/`-joined
#   parameter paths) and how to check **every** path and shape before trusting
#   a file — from a table written once, independently of our modules;
# - a name map between our module trees and the authors' parameter paths, in
#   both directions, as a short table of prefixes (`release_names`);
# - `load_ego4d` / `save_ego4d` for the three Ego4D files: read without pickle,
#   every problem reported at once, the modules built abstractly and filled,
#   the round trip bit-exact; downloads checked file by file;
# - running the loaded modules, against the release's way of writing the loop;
# - `from_release_params` / `to_release_params` for the paper model's
#   parameter tree.
#
# **Prerequisites.** Chapter 12 (the Ego4D modules); chapters 02–04's
# attribute names and `model.MooG` (for section 5).
#
# **Runtime.**
#
# | preset | hardware | this chapter |
# |---|---|---|
# | `tiny` | CI, 2 CPU cores | 24 s (nbval in `make test` on a clean clone, two workers, nothing else running; 2026-12-03) |
# | `colab` | Colab TPU v5e-1 | estimate: seconds (the Ego4D files at tiny widths; section 5 fills the `colab` preset's `MooG` from a random tree); not measured on a TPU |
#
# Nothing here downloads: the files are random checkpoints in the exact file
# format at tiny widths, and a local folder stands for the authors' server.
# Chapter 12b downloads the real files on Colab and tracks a real clip.

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
#| default_exp release

# %% [markdown]
# Every file is a flat dictionary from a `/`-joined parameter path, such as
# `pretrained_model/predictor_sa/layer_0/self_att/dense_query/kernel`, to a
# float32 array. We write the table of every path and shape of the three files
# into the library (section 1) so that an installed `moog_lib` can check a
# file before using it. The maintainers keep a list of those paths and shapes
# beside the repository (it is not part of it); where it is at hand,
# `tests/test_pretrained.py` compares our tables with it entry by entry.
#
# This chapter's code goes to `moog_lib.release` (the release's files: tables,
# names, reading and writing). It imports chapter 12's `moog_lib.ego4d`, whose
# sizes we take first:

# %%
from moog_lib.ego4d import Ego4DMooG, Ego4DTrackHead, ego4d_config, point_predictions

official, tiny = ego4d_config("official"), ego4d_config("tiny")

# %% [markdown]
# ## 1. What a valid file contains
#
# The tables below list every array of the three files, written compactly: a
# transformer's entries follow from its width, depth, heads and MLP size, so we
# write one function for a block and one per file. These functions know nothing about our
# modules — they describe the authors' naming — which is what makes the check
# in section 2 (our module tree, renamed, gives the same table) meaningful.
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

# %% [markdown]
# A transformer's entries follow from its width, depth, heads and MLP size:
# one function for an attention layer, one for a stack of blocks (chapter 02's
# structure, under the release's names), and two for Dense and conv layers.

# %%
#| export release
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

# %% [markdown]
# The corrector's keys read the 592-wide encoder tokens — the first example
# above, straight from the function:

# %%
corrector_table = _transformer_shapes("pretrained_model/predictor_ca", 512,
                                      official.backbone.corrector, kv_width=592)
assert corrector_table["pretrained_model/predictor_ca/layer_0/cross_att/dense_key/kernel"] == (592, 8, 64)
print(len(corrector_table), "arrays in the corrector's two blocks and final LN")

# %% [markdown]
# A head's table: the query MLP, the tile embedding (points only), and the
# attention readout.

# %%
#| export release
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

# %% [markdown]
# The second example: Fourier features of a 2-D point with 16 bases are
# 64 numbers, of a 4-D box 128.

# %%
assert _head_shapes(official.points)["query_initializer/layers_1/Dense_0/kernel"] == (64, 512)
assert _head_shapes(official.boxes)["query_initializer/layers_1/Dense_0/kernel"] == (128, 512)
assert "temporal_tile_posenc/embeddings" not in _head_shapes(official.boxes)  # one tile

# %% [markdown]
# The three files, by part; the backbone's decoder may or may not be saved in
# the backbone file, so it is a part of its own:

# %%
#| export release
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

# %% [markdown]
# And the parameter tree the release's training code writes for the paper's
# model (section 5 reads it into our `model.MooG`):

# %%
#| export release
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
# ## 2. Our names and theirs
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

# %% [markdown]
# `_rename` applies the first rule whose prefix matches: "plain" keeps the
# rest of the path, "indexed" puts the list index into the release's prefix,
# "transformer" renames layer by layer with `_BLOCK_NAMES`.

# %%
#| export release
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

# %%
assert (_rename(("predictor", "layers", 0, "self_attention", "query", "kernel"), _EGO4D_RULES)
        == "pretrained_model/predictor_sa/layer_0/self_att/dense_query/kernel")
assert _rename(("encoder", "convs", 3, "bias"), _PAPER_RULES) == "encoder/backbone/Conv_3/bias"
assert _rename(("mlp_in", "kernel"), _HEAD_RULES) == "attention_readout/MLP_0/Dense_0/kernel"

# %% [markdown]
# `release_names` walks a module's parameters and renames each one, refusing
# a map that would give two parameters one name; `module_shapes` is the
# module's own table under the release's names.

# %%
#| export release
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
backbone_count = sum(math.prod(np.shape(v)) for path, v in param_values(abstract).items()
                     if path[0] != "decoder")
assert backbone_count == sum(math.prod(s) for s in tables["backbone"].values())

# %% [markdown]
# ## 3. Loading and saving the Ego4D files
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

# %% [markdown]
# First the reading: every array of an `.npz`, with pickle never enabled, and
# a message that says what to do when the file is not an archive, is damaged,
# or holds something only pickle could read. `Ego4DModels` is what
# `load_ego4d` will return.

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

# %% [markdown]
# Then the check against a table, which lists every problem at once (and
# refuses NaN or infinite weights):

# %%
#| export release
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

# %%
try:
    check_entries({"a/kernel": np.zeros((2, 3), np.float32), "b/bias": np.zeros(3, np.float64)},
                  {"a/kernel": (3, 2), "b/bias": (3,), "c/scale": (3,)}, "a toy file")
except ValueError as err:
    print(err)
    for problem in ("1 missing: c/scale [3]", "a/kernel: expected [3, 2], got [2, 3]",
                    "b/bias: expected float32, got float64"):
        assert problem in str(err)

# %% [markdown]
# Loading: each file checked against its part of the table, then the
# modules built with `nnx.eval_shape` and filled by name.

# %%
#| export release
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

# %% [markdown]
# Saving is the way back: each module's arrays under the release's names,
# written atomically (a reader never sees half a file).

# %%
#| export release
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

# %% [markdown]
# Without the authors' files (offline, in CI) we need files of the same
# format: random arrays for every entry of the tables, drawn without our
# modules, so that loading them tests the tables and the name map together.

# %%
#| export release
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
# whose arrays have exactly the names and shapes of the table of section 1,
# all float32 and finite (reading every entry also checks the zip's CRC-32s,
# so a truncated file or a bit flipped in transit is caught). It then prints
# the file's sha256 and writes it beside the file, `<file>.sha256`; every
# later call checks the file against that record, so a file damaged after
# the download is caught too. A file that fails is renamed `<file>.bad` and
# never loaded, and the error says what was expected, what was found, and to
# delete it and call again. Here the random tiny files stand for the authors'
# (a `file://` URL for the network):

# %% [markdown]
# Finding the files in a folder: the authors' names, or one file per part
# whose name says which part it is.

# %%
#| export release
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

# %% [markdown]
# Checking one file: its size where known; then, if a sha256 was recorded when
# it was first checked, that the file still has it; otherwise its arrays
# against the table, and the sha256 recorded. A file that fails is moved aside.

# %%
#| export release
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

# %% [markdown]
# And the download: fetch each missing file to a `.part` name, move it in
# place, check every file.

# %%
#| export release
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
# ## 4. Running the loaded modules
#
# Now the numbers, on the random tiny checkpoint loaded into chapter 12's
# modules, in one compiled probe: the
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
# ## 5. The paper model: the release's parameter tree
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
# ## Summary
#
# - The Ego4D files are flat `.npz` dictionaries of `/`-joined paths to float32
#   arrays. `ego4d_param_shapes` holds every path and shape (the tests check
#   it against the tables read off the authors' files), written from the
#   release's naming alone; `release_param_shapes` does the same for the paper
#   model's tree.
# - `release_names` maps our module trees to the release's names with a short
#   table of prefixes and chapter 02's attribute names; no array is transposed.
#   Our modules, renamed, give exactly the tables.
# - `load_ego4d` reads without pickle, reports every missing, unexpected,
#   mis-shaped or non-float32 entry at once, and builds the modules abstractly
#   before filling them; `save_ego4d` writes the same format back,
#   bit-exactly. `download_ego4d` checks each file (size where known, arrays,
#   zip CRCs) and records its sha256 for later calls.
# - The loaded modules run: the scan equals the release's Python loop, and the
#   heads answer the same in chunks, together or alone.
# - `from_release_params` / `to_release_params` move the paper model's
#   parameters both ways (`state_grad_projector` ↔ `gradient_projection`).
#
# ## Exercises
#
# 1. ★ Where do the numbers go? Using only `ego4d_param_shapes()`, count each
#    file's numbers, the share of the point head spent in its MLP
#    (`MLP_0`), and compare the backbone with the paper model's 34,726,787.
# 2. ★★ A bit flipped before the first check. Section 3 flipped a bit in a
#    file that had been downloaded and recorded, and the recorded sha256
#    caught it. Now serve `download_ego4d` a random tiny file with one bit
#    flipped in its middle *before* the first download: there is no record to
#    compare with, and the arrays still have the right names, shapes and
#    dtype. Is the file caught, by what, and where does it end up?
# 3. ★★★ Invert the name map: write `our_path(name, rules)`, the inverse of
#    `_rename`, from the rule tables and `_BLOCK_NAMES` alone (no module), and
#    show that it gives back our path of every parameter of the paper `MooG`
#    (loss-gradient variant, the session's preset), of the tiny `Ego4DMooG`
#    with its decoder, and of both heads. What must the inverse get right
#    that a string replacement would not, and why does `release_names` refuse
#    a map that gives two parameters one name?

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
served = write_random_ego4d(scratch / "served", tiny, seed=3)
damaged = served["point_head_npz"]
payload = bytearray(damaged.read_bytes())
payload[len(payload) // 2] ^= 4  # one bit, flipped in transit
damaged.write_bytes(bytes(payload))
try:
    download_ego4d(scratch / "fresh", base_url=(scratch / "served").as_uri() + "/", config=tiny)
except ValueError as err:
    message = str(err)
    print(message)
else:
    raise AssertionError("a damaged file must be refused")
assert "CRC" in message and (scratch / "fresh" / (damaged.name + ".bad")).exists()
assert not (scratch / "fresh" / damaged.name).exists()
# np.savez stores each array as a zip entry with a CRC-32 of its bytes; reading
# every entry (which the check of the arrays does) recomputes it, so a flipped
# bit in any entry, header or data, is caught even without a recorded sha256.
# The file is renamed <file>.bad and never loaded.

# %% [markdown]
# ### Solution 3

# %%
import re

_OURS = {theirs: ours for ours, theirs in _BLOCK_NAMES.items()}


def our_path(name: str, rules) -> tuple:
    """The inverse of `_rename`: a release name -> our parameter path."""
    for ours, theirs, kind in rules:
        if kind == "indexed":
            match = re.fullmatch(re.escape(theirs.split("{}")[0]) + r"(\d+)/(.+)", name)
            if match:  # a list index: an int in our path, as in nnx.to_pure_dict
                return (*ours, int(match.group(1)), *match.group(2).split("/"))
            continue
        if name == theirs:  # a Param held directly, e.g. the head's tile_embedding
            return ours
        if not name.startswith(theirs + "/"):
            continue
        rest = name[len(theirs) + 1:].split("/")
        if kind == "plain":
            return (*ours, *rest)
        path = []
        for part in rest:
            layer = re.fullmatch(r"layer_(\d+)", part)
            path += ["layers", int(layer.group(1))] if layer else [_OURS.get(part, part)]
        return (*ours, *path)
    raise ValueError(f"no parameter of ours is named {name!r}")


paper_variant = nnx.eval_shape(lambda: MooG(variant_cfg, rngs=nnx.Rngs(0)))
tiny_modules = [(nnx.eval_shape(lambda: Ego4DMooG(tiny.backbone, rngs=nnx.Rngs(0))), _EGO4D_RULES),
                (nnx.eval_shape(lambda: Ego4DTrackHead(tiny.points, rngs=nnx.Rngs(0))), _HEAD_RULES),
                (nnx.eval_shape(lambda: Ego4DTrackHead(tiny.boxes, rngs=nnx.Rngs(0))), _HEAD_RULES)]
for module, rules in [(paper_variant, _PAPER_RULES), *tiny_modules]:
    names = release_names(module)
    assert all(our_path(name, rules) == path for name, path in names.items())
    print(f"{type(module).__name__:15s} {len(names):4d} names inverted")
# What a string replacement gets wrong: the list indices (Conv_3, layer_1) must
# come back as ints, the keys nnx.to_pure_dict uses, and "layer_1" is two parts of
# our path ("layers", 1), and a parameter held directly by a module (the heads'
# embeddings) is the whole prefix, with nothing after it. The inverse exists only because the map is one-to-one:
# if two parameters had one release name, a file could hold only one of them and
# loading would silently give both the same array, so release_names refuses it.

# %% [markdown]
# ## References
#
# - The authors' release: `google-deepmind/representations4d` (folder `moog/`
#   and `colabs/moog_inference_demo.ipynb`, Apache-2.0) — the source of the
#   checkpoint URLs and the parameter names; no code was copied.
# - S. van Steenkiste et al. *Moving Off-the-Grid: Scene-Grounded Video
#   Representations.* NeurIPS 2024.
# - NumPy documentation: `numpy.load` (`allow_pickle`), `numpy.savez` and the
#   `.npz` format; Python documentation: `zipfile` (CRC-32 checks), `hashlib`.
# - Flax documentation: `nnx.eval_shape`, `nnx.to_pure_dict`,
#   `nnx.replace_by_pure_dict`, `flax.traverse_util`.
