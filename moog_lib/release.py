"""The authors' release files in our code: what they hold, and reading and writing them.

The path and shape of every array of the three Ego4D checkpoint files
(`ego4d_param_shapes`) and of a parameter tree of the paper's model
(`release_param_shapes`); the name maps between our modules and the release's
(`release_names`); the Ego4D `.npz` files read without pickle, every entry checked
(`check_entries`), into `moog_lib.ego4d` modules (`load_ego4d`), written back
(`save_ego4d`), made at random in the same format, found, and downloaded with every
file checked (`download_ego4d`); and the paper model's parameter tree to our `model.MooG` and back (`from_release_params`,
`to_release_params`).

Generated from chapters/12a_release_files.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "EGO4D_URL",
    "EGO4D_FILES",
    "EGO4D_BYTES",
    "ego4d_param_shapes",
    "release_param_shapes",
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
]


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
from moog_lib.ego4d import Ego4DConfig, Ego4DHeadConfig, Ego4DMooG, Ego4DTrackHead, ego4d_config
from moog_lib.model import MooG

# chapters/12a_release_files.py, cell 7
EGO4D_URL = "https://storage.googleapis.com/representations4d/checkpoints/"
EGO4D_FILES = {  # load_ego4d's argument -> the authors' file name
    "backbone_npz": "moog_ego4d_backbone_ckpt_164335139.npz",
    "point_head_npz": "moog_ego4d_point_track_head_ckpt_164335139.npz",
    "box_head_npz": "moog_ego4d_box_track_head_ckpt_164335139.npz",
}
# The files' exact sizes in bytes, by file name, where known. None is recorded here: no
# published size or sha256 of these files is known to this tutorial.
EGO4D_BYTES: dict[str, int] = {}


# chapters/12a_release_files.py, cell 9
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


# chapters/12a_release_files.py, cell 13
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


# chapters/12a_release_files.py, cell 17
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


# chapters/12a_release_files.py, cell 19
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


# chapters/12a_release_files.py, cell 23
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


# chapters/12a_release_files.py, cell 25
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


# chapters/12a_release_files.py, cell 28
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


# chapters/12a_release_files.py, cell 33
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


# chapters/12a_release_files.py, cell 35
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


# chapters/12a_release_files.py, cell 38
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


# chapters/12a_release_files.py, cell 40
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


# chapters/12a_release_files.py, cell 42
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


# chapters/12a_release_files.py, cell 49
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


# chapters/12a_release_files.py, cell 51
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


# chapters/12a_release_files.py, cell 53
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


# chapters/12a_release_files.py, cell 58
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
