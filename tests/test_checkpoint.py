"""Checkpoints and the data position: grain's own orbax handler saves the training
pipeline's iterator (one JSON file per process), and checkpoints of the format before
it (the position inside the JSON metadata, as `data_state`) still restore, in
`Checkpointer` and in a resumed run, which ends exactly where it would have."""

import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from moog_lib import checkpoint, configs, data, optimization, train

SOURCE = [data.unlabelled_clip(video, num_points=4) for video in
          np.random.default_rng(0).integers(0, 256, (10, 3, 8, 8, 3), dtype=np.uint8)]


def batches():
    return iter(data.make_pipeline(SOURCE, batch_size=2, seed=3, num_frames=2))


def state_at(step: int) -> optimization.TrainState:
    return optimization.TrainState(jnp.asarray(step, jnp.int32), {"w": jnp.full(4, float(step))},
                                   {"m": jnp.zeros(4)})


def save_as_before(manager: ocp.CheckpointManager, state, metadata: dict) -> None:
    """One step as `Checkpointer.save` wrote it before the iterator had its own item:
    the state and JSON metadata, the data position inside the metadata."""
    manager.save(int(state.step), args=ocp.args.Composite(
        state=ocp.args.StandardSave(checkpoint._flat(state)),
        metadata=ocp.args.JsonSave(metadata)), force=True)
    manager.wait_until_finished()


def test_the_iterator_is_saved_by_grains_handler_one_file_per_process(tmp_path):
    saved = batches()
    next(saved), next(saved)
    position = saved.get_state()
    manager = checkpoint.Checkpointer(tmp_path, keep=2)
    manager.save(state_at(2), {"seed": 0}, iterator=saved)
    expected = next(saved)
    step = tmp_path / "2"
    assert sorted(p.name for p in step.iterdir() if p.is_dir()) == ["iterator", "metadata",
                                                                       "state"]
    assert json.loads((step / "iterator" / "process_0-of-1.json").read_text()) == position
    fresh = batches()
    restored, metadata = manager.restore(state_at(0), iterator=fresh)
    assert int(restored.step) == 2 and metadata == {"seed": 0}
    np.testing.assert_array_equal(next(fresh)["video"], expected["video"])
    # Without an iterator (as `train.restore_model` reads a run) the state alone is read.
    restored, _ = manager.restore(state_at(0))
    np.testing.assert_array_equal(restored.params["w"], np.full(4, 2.0))
    manager.close()


def test_a_checkpoint_of_the_format_before_still_restores_its_position(tmp_path):
    saved = batches()
    next(saved)
    before = ocp.CheckpointManager(tmp_path, options=ocp.CheckpointManagerOptions(
        create=True, enable_async_checkpointing=False))
    save_as_before(before, state_at(1), {"data_state": saved.get_state(), "seed": 0})
    before.close()
    expected = next(saved)
    assert not (tmp_path / "1" / "iterator").exists()

    manager = checkpoint.Checkpointer(tmp_path, keep=3)
    fresh = batches()
    restored, metadata = manager.restore(state_at(0), iterator=fresh)
    assert int(restored.step) == 1 and metadata["seed"] == 0
    np.testing.assert_array_equal(next(fresh)["video"], expected["video"])
    # The run goes on in the new format beside the old step, and resumes from it.
    manager.save(state_at(2), {"seed": 0}, iterator=fresh)
    after = next(fresh)
    again = batches()
    restored, _ = manager.restore(state_at(0), iterator=again)
    assert manager.steps() == [1, 2] and int(restored.step) == 2
    np.testing.assert_array_equal(next(again)["video"], after["video"])
    manager.close()


def test_a_step_without_a_data_position_is_skipped_when_one_is_asked_for(tmp_path):
    saved = batches()
    next(saved)
    manager = checkpoint.Checkpointer(tmp_path, keep=3)
    manager.save(state_at(1), {"seed": 0}, iterator=saved)
    expected = next(saved)
    manager.save(state_at(2), {"seed": 0})  # no iterator, no data_state
    fresh = batches()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        restored, _ = manager.restore(state_at(0), iterator=fresh)
    assert int(restored.step) == 1
    np.testing.assert_array_equal(next(fresh)["video"], expected["video"])
    assert any("step 2" in str(w.message) and "no data position" in str(w.message)
               for w in caught)
    manager.close()


def save_checkpoint_as_before(run: train.FitRun) -> None:
    """`train.save_checkpoint` before grain's handler: the position in the metadata."""
    save_as_before(run.checkpoints.manager, run.state, {
        "data_state": run.batches.get_state(), "seed": run.config.train.seed,
        "rng_key": np.asarray(jax.random.key_data(run.base_key)).tolist()})


def parameters(workdir) -> list[np.ndarray]:
    model, _ = train.load_trained(workdir)
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))]


def test_a_run_checkpointed_in_the_format_before_resumes_exactly(tmp_path, monkeypatch):
    config = configs.override(configs.get("tiny"), [
        "train.checkpoint_every=2", "train.log_every=2", "train.eval_every=100",
        "train.steps=4", "data.num_clips=8"])
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train.train(config, straight, progress=False)
    with monkeypatch.context() as patch:  # a run stopped at step 2 by the code before
        patch.setattr(train, "save_checkpoint", save_checkpoint_as_before)
        train.train(config, resumed, steps=2, progress=False)
    assert not (resumed / "checkpoints" / "2" / "iterator").exists()
    assert train.train(config, resumed, progress=False)["step"] == 4
    assert (resumed / "checkpoints" / "4" / "iterator" / "process_0-of-1.json").is_file()
    for a, b in zip(parameters(straight), parameters(resumed), strict=True):
        np.testing.assert_array_equal(a, b)  # bit-identical on CPU
