"""Shipped weights (chapter 06 §5): the round trip is exact, and damaged or mismatched files
are refused with a message that names the problem."""

import dataclasses
import hashlib
import json
import zipfile

import jax
import numpy as np
import pytest
from flax import nnx

from moog_lib import checkpoint, configs, train
from moog_lib.model import MooG

TINY = configs.get("tiny")


def tiny_moog(seed: int, model: configs.ModelConfig = TINY.model) -> MooG:
    return MooG(model, rngs=nnx.Rngs(seed))


@nnx.jit
def _predict(model, frames, key):
    return model(frames, key=key, training=False)["prediction"]


def prediction(model) -> np.ndarray:
    d = TINY.data
    frames = jax.random.uniform(jax.random.key(1), (1, d.num_frames, d.resolution,
                                                    d.resolution, 3))
    return np.asarray(_predict(model, frames, jax.random.key(2)))


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A tiny MooG saved as <dir>/tiny_moog.npz/.json, and the model itself."""
    folder = tmp_path_factory.mktemp("trained")
    model = tiny_moog(0)
    checkpoint.save_weights(model, folder / "tiny_moog",
                            manifest={"config": dataclasses.asdict(TINY), "command": "test"})
    return folder, model


def copy_of(shipped, tmp_path, name="tiny_moog"):
    folder, _ = shipped
    for suffix in (".npz", ".json"):
        (tmp_path / (name + suffix)).write_bytes((folder / ("tiny_moog" + suffix)).read_bytes())
    return tmp_path / name


def test_round_trip_is_bit_identical(shipped):
    folder, model = shipped
    other = tiny_moog(1)
    assert not np.array_equal(prediction(model), prediction(other))
    manifest = checkpoint.load_weights(other, folder / "tiny_moog.npz")  # the suffix is optional
    assert np.array_equal(prediction(model), prediction(other))
    for ours, theirs in zip(jax.tree.leaves(nnx.state(model, nnx.Param)),
                            jax.tree.leaves(nnx.state(other, nnx.Param))):
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)
    parameters = jax.tree.leaves(nnx.state(model, nnx.Param))
    assert manifest["command"] == "test" and manifest["format"] == 1
    assert manifest["arrays"] == len(parameters)
    assert manifest["parameters"] == sum(p.size for p in parameters)


def test_npz_is_plain_float32_arrays_without_pickle(shipped):
    folder, _ = shipped
    with np.load(folder / "tiny_moog.npz", allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    assert all(a.dtype == np.float32 for a in arrays.values())
    assert "decoder/readout/kernel" in arrays
    assert not list(folder.glob(".*.tmp"))  # the atomic writes left no temporary file


def test_load_tutorial_model_rebuilds_config_and_model(shipped):
    folder, model = shipped
    loaded, config, manifest = train.load_tutorial_model("tiny_moog", directory=folder)
    assert config == TINY and manifest["config"]["name"] == "tiny"
    assert np.array_equal(prediction(model), prediction(loaded))


def test_corrupted_npz_is_refused(shipped, tmp_path):
    path = copy_of(shipped, tmp_path)
    npz = path.with_suffix(".npz")
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"tiny_moog\.npz: SHA-256 .* differs"):
        checkpoint.load_weights(tiny_moog(1), path)


def test_other_shape_is_refused_naming_the_array(shipped):
    folder, _ = shipped
    wider = dataclasses.replace(TINY.model, token_dim=48)
    with pytest.raises(ValueError, match=r"with another shape: .*decoder/readout/kernel: "
                                         r"file \[\d+, 3\], module \[\d+, 3\]"):
        checkpoint.load_weights(nnx.eval_shape(lambda: tiny_moog(0, wider)), folder / "tiny_moog")


def rewrite(path, arrays):
    """Replace the npz of `path` by `arrays` and fix the manifest's hash (so only names differ)."""
    npz, meta = path.with_suffix(".npz"), path.with_suffix(".json")
    np.savez(npz, **arrays)
    manifest = json.loads(meta.read_text())
    manifest["sha256"] = hashlib.sha256(npz.read_bytes()).hexdigest()
    meta.write_text(json.dumps(manifest))


def test_missing_and_unexpected_arrays_are_refused(shipped, tmp_path):
    path = copy_of(shipped, tmp_path)
    with np.load(path.with_suffix(".npz")) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays.pop("decoder/readout/bias")
    arrays["decoder/extra"] = np.zeros(3, np.float32)
    rewrite(path, arrays)
    model = tiny_moog(1)
    before = prediction(model)
    with pytest.raises(ValueError, match=r"1 missing: decoder/readout/bias \[3\]; "
                                         r"1 unexpected: decoder/extra \[3\]"):
        checkpoint.load_weights(model, path)
    assert np.array_equal(before, prediction(model))  # nothing was half-loaded


def test_missing_files_are_named(shipped, tmp_path):
    path = copy_of(shipped, tmp_path)
    path.with_suffix(".npz").unlink()
    with pytest.raises(FileNotFoundError, match=r"tiny_moog\.npz does not exist"):
        checkpoint.load_weights(tiny_moog(1), path)


def test_load_tutorial_model_without_the_file_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no_such\.json.*tools/ship_weights\.py backbone"):
        train.load_tutorial_model("no_such")
    with pytest.raises(FileNotFoundError, match=r"shipped here: none"):
        train.load_tutorial_model("cpu_moog", directory=tmp_path)


def test_npz_with_object_array_cannot_sneak_in(shipped, tmp_path):
    path = copy_of(shipped, tmp_path)
    npz = path.with_suffix(".npz")
    with zipfile.ZipFile(npz) as z:
        assert all(name.endswith(".npy") for name in z.namelist())
    with np.load(npz, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays["decoder/readout/bias"] = np.array([{"code": 1}], dtype=object)
    rewrite(path, arrays)
    with pytest.raises(ValueError, match="allow_pickle"):
        checkpoint.load_weights(tiny_moog(1), path)


def test_nan_weights_are_refused_naming_the_array(shipped, tmp_path):
    path = copy_of(shipped, tmp_path)
    with np.load(path.with_suffix(".npz")) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays["decoder/readout/bias"] = np.array([0.0, np.nan, np.inf], np.float32)
    rewrite(path, arrays)  # with a matching SHA-256: only the values are wrong
    model = tiny_moog(1)
    before = prediction(model)
    with pytest.raises(ValueError, match=r"'decoder/readout/bias' must be finite, but 2 values"):
        checkpoint.load_weights(model, path)
    assert np.array_equal(before, prediction(model))
