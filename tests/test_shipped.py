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


def test_demo_checks_score_the_shipped_model_beside_a_run_of_its_architecture(tmp_path,
                                                                                monkeypatch):
    from flax import nnx

    from moog_lib import cli, configs
    from moog_lib.model import MooG

    tiny = configs.override(configs.get("tiny"), ["data.num_clips=8", "data.eval_clips=8"])
    train.train(tiny, tmp_path / "run", steps=1, progress=False)
    (tmp_path / "out").mkdir()
    shipped = (MooG(tiny.model, rngs=nnx.Rngs(1)), tiny, {"steps": 6000})
    monkeypatch.setattr(train, "load_tutorial_model", lambda: shipped)
    checks = cli.demo_checks(tmp_path / "run", tmp_path / "out")
    assert checks["shipped"] is not None and checks["shipped"]["psnr"] != checks["psnr"]
    assert checks["shipped"]["copy_psnr"] == checks["copy_psnr"]  # the same clips and pixels
    assert "the model this repository ships (6,000 steps" in (tmp_path / "out" / "summary.md").read_text()
    other = configs.override(tiny, ["model.num_tokens=8"])
    monkeypatch.setattr(train, "load_tutorial_model",
                        lambda: (MooG(other.model, rngs=nnx.Rngs(1)), other, {"steps": 6000}))
    assert cli.demo_checks(tmp_path / "run", tmp_path / "out")["shipped"] is None
