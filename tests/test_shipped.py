"""The weights this repository ships (moog_lib/trained/, chapter 06b §1 and chapter 07 §7)
reproduce the held-out numbers their manifests record, on the same rendered clips."""

import pytest

from moog_lib import boxes, comparison, points, readouts, train

TASKS = (readouts.DEPTH, points.POINTS, boxes.BOXES)


def assert_reproduced(got: dict, recorded: dict) -> None:
    assert recorded, "the manifest records no metrics"
    for name, value in recorded.items():
        assert got[name] == pytest.approx(value, rel=1e-3, abs=1e-3), name


def test_the_shipped_moog_reproduces_its_manifest():
    model, config, manifest = train.load_tutorial_model()
    assert manifest["kind"] == "moog" and manifest["steps"] > 0
    assert config.data.data_dir == "", "shipped configs render their clips in memory"
    batches = readouts.manifest_batches(manifest, config, ("video", "target_points", "occluded",
                                                           "point_valid"))
    assert_reproduced(comparison.token_following(model, batches), manifest["held_out"]["metrics"])


@pytest.mark.parametrize("task", TASKS, ids=[t.name for t in TASKS])
def test_each_shipped_readout_reproduces_its_manifest(task):
    readout_model, config, manifest = readouts.load_tutorial_readout(task)
    assert manifest["task"] == task.name and manifest["frozen"]
    batches = readouts.manifest_batches(manifest, readouts.readout_run_config(config),
                                        ("video",) + task.keys)
    got = train.evaluate_model(readout_model, batches, readouts.readout_loss(task, config))
    assert_reproduced(got, manifest["held_out"]["metrics"]["readout"])
