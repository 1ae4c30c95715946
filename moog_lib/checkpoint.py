"""Saving and loading: rotating training checkpoints, and plain weights files.

`Checkpointer` keeps the last few `TrainState`s of a run with orbax, atomically,
skipping unreadable steps on restore. `save_weights` and `load_weights` write
and read a module's parameters as a float32 `.npz` plus a `.json` manifest (with
the `.npz`'s SHA-256), as in `moog_lib/trained/` (format `WEIGHTS_FORMAT`).

Generated from chapters/06_pretraining.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "Checkpointer",
    "WEIGHTS_FORMAT",
    "save_weights",
    "load_weights",
]


import hashlib
import io
import json
import os
import re
import tempfile
import warnings
from pathlib import Path

import grain
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from moog_lib import data, optimization


# chapters/06_pretraining.py, cell 23
def _flat(tree) -> dict:
    """{"path": array} for any pytree: a checkpoint layout that does not depend on node types."""
    return {jax.tree_util.keystr(path): leaf for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


# optax.multi_transform nests a label's optimiser state: .opt_state.inner_states['head'].inner_state…
_MULTI_TRANSFORM = re.compile(r"^\.opt_state\.inner_states\['[^']+'\]\.inner_state")


def _read_step(manager, step: int, items: dict, abstract: dict):
    """(restored items, the state's arrays in `abstract`'s order) of one step. A step from
    before chapter 07 froze readout backbones with an NNX filter (before December 2026)
    holds every parameter and the head's optimiser state nested by `optax.multi_transform`:
    it is read as the entries `abstract` names, if it holds each once, shaped alike."""
    try:
        restored = manager.restore(step, args=ocp.args.Composite(**items))
        return restored, [restored["state"][key] for key in abstract]
    except Exception as strict:
        try:
            raw = ocp.args.Composite(**{**items, "state": ocp.args.StandardRestore()})
            restored, saved = manager.restore(step, args=raw), {}
        except Exception:
            raise strict from None
        for key, value in restored["state"].items():
            saved.setdefault(_MULTI_TRANSFORM.sub(".opt_state", key), []).append(value)
        if any(len(saved.get(k, ())) != 1 or saved[k][0].shape != x.shape for k, x in abstract.items()):
            raise strict from None
        return restored, [jax.device_put(jnp.asarray(saved[k][0], x.dtype), x.sharding)
                          for k, x in abstract.items()]


# chapters/06_pretraining.py, cell 25
class Checkpointer:
    """Atomic, rotating checkpoints of a `TrainState`, a grain iterator and JSON
    metadata, with orbax.

    Orbax writes each step into a temporary folder and renames it only when every
    file is complete, so a run killed mid-save leaves the previous checkpoints
    intact. `restore` walks back from the newest step and skips (with a warning)
    any it cannot read. The iterator is optional; grain's handler saves it as
    `<step>/iterator/process_<i>-of-<n>.json`, one file per process.
    """

    def __init__(self, directory, keep: int = 3):
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                               enable_async_checkpointing=False)
        self.manager = ocp.CheckpointManager(self.directory, options=options)
        self.unreadable: dict[int, str] = {}  # step: why `restore` could not read it

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def save(self, state: optimization.TrainState, metadata: dict, iterator=None) -> None:
        """Save `state` and `metadata` at `state.step`, and the position of `iterator` (a
        grain `DatasetIterator`, e.g. `iter(data.make_pipeline(...))`) when given."""
        items = {"state": ocp.args.StandardSave(_flat(state)),
                 "metadata": ocp.args.JsonSave(metadata)}
        if iterator is not None:
            items["iterator"] = grain.checkpoint.CheckpointSave(iterator)
        self.manager.save(int(state.step), args=ocp.args.Composite(**items), force=True)
        self.manager.wait_until_finished()

    def restore(self, like: optimization.TrainState, iterator=None):
        """(state, metadata) of the newest readable step, shaped and sharded like `like`; or
        None, with the reason each step could not be read in `self.unreadable`.

        With `iterator`, also moves it, in place, to that step's position: from the
        step's iterator item, or, in a checkpoint written before there was one, from
        `metadata["data_state"]`. A step with neither counts as unreadable."""
        treedef = jax.tree_util.tree_structure(like)
        abstract = {key: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
                    for key, x in _flat(like).items()}
        self.unreadable = {}
        for step in reversed(self.steps()):
            items = {"state": ocp.args.StandardRestore(abstract),
                     "metadata": ocp.args.JsonRestore()}
            own_item = (self.directory / str(step) / "iterator").is_dir()
            if iterator is not None and own_item:
                items["iterator"] = grain.checkpoint.CheckpointRestore(iterator)
            try:
                restored, arrays = _read_step(self.manager, step, items, abstract)
                if iterator is not None and not own_item:  # the format before the item
                    if "data_state" not in restored["metadata"]:
                        raise ValueError("no data position: neither an iterator item nor "
                                         "metadata['data_state']")
                    iterator.set_state(restored["metadata"]["data_state"])
            except Exception as err:  # a corrupt or partial step: use the one before
                self.unreadable[step] = f"{type(err).__name__}: {' '.join(str(err).split())[:200]}"
                continue
            for bad, reason in self.unreadable.items():  # say which newer steps were skipped
                warnings.warn(f"checkpoint step {bad} in {self.directory} cannot be read "
                              f"({reason}); using step {step}", stacklevel=2)
            return jax.tree_util.tree_unflatten(treedef, arrays), restored["metadata"]
        return None

    def close(self):
        self.manager.close()


# chapters/06_pretraining.py, cell 31
WEIGHTS_FORMAT = 1


def _weights_files(path) -> tuple[Path, Path]:
    """(`<path>.npz`, `<path>.json`), with or without the .npz suffix on `path`."""
    path = Path(path)
    stem = path.name[:-len(".npz")] if path.name.endswith(".npz") else path.name
    return path.with_name(stem + ".npz"), path.with_name(stem + ".json")


def _param_leaves(module: nnx.Module):
    """(the pure dict of `module`'s nnx.Params, its flat [('a/b/c', array)], its treedef)."""
    pure = nnx.to_pure_dict(nnx.state(module, nnx.Param))
    leaves, treedef = jax.tree_util.tree_flatten_with_path(pure)
    return [("/".join(str(k.key) for k in path), leaf) for path, leaf in leaves], treedef


def _write_atomic(path: Path, write) -> None:
    """`write(file)` into a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# chapters/06_pretraining.py, cell 33
def save_weights(module: nnx.Module, path, *, manifest: dict) -> Path:
    """Write every nnx.Param of `module` to `<path>.npz` (float32, keyed by '/'-joined
    parameter path) and `manifest` plus format, counts and the npz's SHA-256 to
    `<path>.json`; both atomically. Returns the .npz path."""
    npz, meta = _weights_files(path)
    leaves, _ = _param_leaves(module)
    arrays = {name: np.asarray(jax.device_get(leaf), np.float32) for name, leaf in leaves}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    payload = buffer.getvalue()
    _write_atomic(npz, lambda f: f.write(payload))
    record = {**manifest, "format": WEIGHTS_FORMAT, "arrays": len(arrays),
              "parameters": int(sum(a.size for a in arrays.values())),
              "sha256": hashlib.sha256(payload).hexdigest()}
    _write_atomic(meta, lambda f: f.write((json.dumps(record, indent=1) + "\n").encode()))
    return npz


# chapters/06_pretraining.py, cell 35
def load_weights(module: nnx.Module, path) -> dict:
    """Fill `module`'s nnx.Params, in place, from `<path>.npz`; returns the manifest.

    Refuses (ValueError) a file whose SHA-256 differs from its manifest's,
    arrays whose names or shapes differ from the module's parameters, and NaN or Inf.
    """
    npz, meta = _weights_files(path)
    for file in (meta, npz):
        if not file.exists():
            raise FileNotFoundError(f"load_weights: {file} does not exist")
    manifest = json.loads(meta.read_text())
    if manifest.get("format") != WEIGHTS_FORMAT:
        raise ValueError(f"{meta}: weights format {manifest.get('format')!r}, expected "
                         f"{WEIGHTS_FORMAT}")
    payload = npz.read_bytes()
    digest = hashlib.sha256(payload).hexdigest()
    if digest != manifest.get("sha256"):
        raise ValueError(f"{npz}: SHA-256 {digest} differs from the {manifest.get('sha256')} "
                         f"recorded in {meta.name}: the file is damaged or belongs to other "
                         "weights (re-download it or ship both files again)")
    with np.load(io.BytesIO(payload), allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    leaves, treedef = _param_leaves(module)
    expected = dict(leaves)
    missing = [n for n in expected if n not in arrays]
    unexpected = [f"{n} {list(arrays[n].shape)}" for n in arrays if n not in expected]
    mismatched = [f"{n}: file {list(arrays[n].shape)}, module {list(expected[n].shape)}"
                  for n in expected if n in arrays and arrays[n].shape != expected[n].shape]
    if missing or unexpected or mismatched:
        problems = [f"{len(found)} {kind}: " + ", ".join(found) for kind, found in
                    (("missing", [f"{n} {list(expected[n].shape)}" for n in missing]),
                     ("unexpected", unexpected), ("with another shape", mismatched)) if found]
        raise ValueError(f"{npz} does not fit {type(module).__name__} "
                         f"({len(expected)} parameters): " + "; ".join(problems))
    for name in expected:
        data.check_finite(f"{npz}: array {name!r}", arrays[name],
                          "these weights were saved from a diverged run")
    values = [jnp.asarray(arrays[name], dtype=leaf.dtype) for name, leaf in leaves]
    state = nnx.state(module, nnx.Param)
    nnx.replace_by_pure_dict(state, jax.tree_util.tree_unflatten(treedef, values))
    nnx.update(module, state)
    return manifest
