"""Training: optimiser, data-parallel equivalence, exact resume after a kill, checkpoint
fallback, multi-process agreement, and that the loss goes down."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from moog_lib import checkpoint, configs, optimization, parallel, runs, train
from moog_lib.model import MooG

ROOT = Path(__file__).resolve().parent.parent

# One train step of the tiny model on a fixed batch of 8 clips, on every device of a
# "data" mesh; returns the loss and a digest of the new parameters. Run in this process
# (one device) and, through ONE_STEP, in subprocesses with other device counts.
def one_step() -> dict:
    from moog_lib import data

    config = configs.get("tiny")
    tx = optimization.make_optimizer(config.train)
    graphdef, rest, state = optimization.split_model(MooG(config.model, rngs=nnx.Rngs(0)), tx)
    mesh = data.data_parallel_mesh()
    video = np.random.default_rng(0).integers(0, 256, (8, 4, 32, 32, 3), dtype=np.uint8)
    rows = parallel.local_batch_size(8, mesh)
    local = video[jax.process_index() * rows:(jax.process_index() + 1) * rows]
    batch = data.shard_clip_batch({"video": local}, mesh)
    step = optimization.make_train_step(graphdef, rest, tx)
    state, metrics = step(parallel.replicate(state, mesh), batch, jax.random.key(1))
    leaves = [np.asarray(jax.device_get(x)) for x in jax.tree.leaves(state.params)]
    return {"devices": jax.device_count(), "loss": float(metrics["loss"]),
            "grad_norm": float(metrics["grad_norm"]),
            "params": [float(np.abs(x).sum()) for x in leaves]}


ONE_STEP = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, "tests")
    from moog_lib import parallel
    if len(sys.argv) > 1:  # process_id, num_processes, port
        pid, count, port = map(int, sys.argv[1:])
        parallel.initialize_distributed(f"localhost:{port}", count, pid)
    from test_train import one_step
    print(json.dumps(one_step()))
""")


@pytest.fixture(scope="module")
def single_device_step():
    assert jax.device_count() == 1
    return one_step()


def run_python(code, *args, env=None, timeout=300):
    env = {**os.environ, **(env or {})}
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                         text=True, env=env, timeout=timeout, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_schedule_and_optimizer():
    t = configs.get("paper").train
    schedule = optimization.learning_rate_schedule(t)
    assert float(schedule(0)) == 0.0 and float(schedule(500)) == pytest.approx(5e-5)
    assert float(schedule(1000)) == pytest.approx(1e-4)
    assert float(schedule(t.steps)) == pytest.approx(1e-7, rel=1e-3)
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        optimization.make_optimizer(configs.override(configs.get("tiny"), ["train.optimizer=sgd"]).train)
    # A huge gradient moves a parameter by about the learning rate (1e-3 on tiny, no
    # warm-up): clipped, normalised by Adam; Nesterov's first step is (1 + b1 - b1) / (1 - b1^2)
    # times larger than plain Adam's.
    tx = optimization.make_optimizer(configs.override(configs.get("tiny"), ["train.warmup_steps=0"]).train)
    params = {"w": jnp.zeros(3)}
    updates, _ = tx.update({"w": jnp.array([1e6, 0.0, 0.0])}, tx.init(params), params)
    assert 1e-3 <= float(jnp.abs(updates["w"]).max()) <= 2e-3 and float(updates["w"][0]) < 0


def test_data_parallel_step_on_8_devices_equals_one_device(single_device_step):
    one = single_device_step
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=8"
    eight = run_python(ONE_STEP, env={"XLA_FLAGS": flags.strip()})
    assert (one["devices"], eight["devices"]) == (1, 8)
    assert eight["loss"] == pytest.approx(one["loss"], abs=1e-5)
    assert eight["grad_norm"] == pytest.approx(one["grad_norm"], rel=1e-5)
    np.testing.assert_allclose(eight["params"], one["params"], rtol=1e-5)


@pytest.mark.slow
def test_two_processes_with_jax_distributed_agree_with_one(single_device_step):
    one = single_device_step
    port = free_port()
    env = {**os.environ, "XLA_FLAGS": ""}
    procs = [subprocess.Popen([sys.executable, "-c", ONE_STEP, str(pid), "2", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                              cwd=ROOT) for pid in range(2)]
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-3000:]
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    for result in results:
        assert result["devices"] == 2
        assert result["loss"] == pytest.approx(one["loss"], abs=1e-5)
        np.testing.assert_allclose(result["params"], one["params"], rtol=1e-5)


TRAIN = textwrap.dedent("""
    import sys
    from moog_lib import configs, train
    config = configs.override(configs.get("tiny"), [
        "train.checkpoint_every=2", "train.log_every=2", "train.eval_every=100", "train.steps=6",
        "data.num_clips=8"])
    train.train(config, sys.argv[1], steps=int(sys.argv[2]), progress=False)
    print("{}")
""")


def final_params(workdir):
    model, _ = train.load_trained(workdir)
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_parameters(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run_python(TRAIN, straight, 6)
    # Start the same run and kill it (SIGKILL, no clean-up) once step 4 is saved.
    proc = subprocess.Popen([sys.executable, "-c", TRAIN, str(killed), "6"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "4" / "metadata").exists():
        assert proc.poll() is None and time.time() < deadline, "the run ended before step 4"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_python(TRAIN, killed, 6)  # resume
    for a, b in zip(final_params(straight), final_params(killed), strict=True):
        np.testing.assert_array_equal(a, b)  # bit-identical on CPU
    steps = [json.loads(line)["step"] for line in (killed / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["split"] == "train"]
    assert steps[-1] == 6


def test_corrupt_latest_checkpoint_falls_back_with_a_warning(tmp_path):
    config = configs.get("tiny")
    tx = optimization.make_optimizer(config.train)
    _, _, state = optimization.split_model(MooG(config.model, rngs=nnx.Rngs(0)), tx)
    manager = checkpoint.Checkpointer(tmp_path, keep=3)
    manager.save(state, {"data_state": {"next_index": 0}})
    later = state.replace(step=state.step + 5)
    manager.save(later, {"data_state": {"next_index": 5}})
    for path in (tmp_path / "5" / "state").rglob("*"):
        if path.is_file():
            path.write_bytes(b"\0" * 7)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        restored, metadata = manager.restore(later)
    assert int(restored.step) == 0 and metadata["data_state"]["next_index"] == 0
    assert any("step 5" in str(w.message) and "cannot be read" in str(w.message) for w in caught)
    manager.close()


@pytest.mark.slow
def test_loss_goes_down_over_20_steps_on_tiny(tmp_path):
    result = train.train(configs.get("tiny"), tmp_path, steps=20, progress=False)
    records = runs.MetricsLog(tmp_path / "metrics.jsonl").read("train")
    assert result["step"] == 20 and len(records) == 4
    assert records[-1]["loss"] < 0.8 * records[0]["loss"]
    assert {"loss", "psnr", "copy_psnr", "learning_rate", "grad_norm", "frames_per_second",
            "data_wait_share"} <= set(records[-1])
    assert (tmp_path / "curves.png").stat().st_size > 0
    config = runs.config_from_dict(json.loads((tmp_path / "config.json").read_text()))
    assert config == configs.get("tiny")


def test_resume_extends_a_run_and_refuses_another_config(tmp_path):
    short = configs.override(configs.get("tiny"), ["train.steps=2", "train.log_every=1"])
    train.train(short, tmp_path, progress=False)
    saved = {p: p.read_bytes() for p in (tmp_path / "checkpoints").rglob("*") if p.is_file()}
    other = configs.override(short, ["model.token_dim=48"])
    with pytest.raises(ValueError, match=r"model.token_dim 32 → 48.*--force-new-run"):
        train.train(other, tmp_path, progress=False)
    with pytest.raises(ValueError, match="already holds a run"):
        train.train(short, tmp_path, resume=False, progress=False)
    assert saved == {p: p.read_bytes() for p in (tmp_path / "checkpoints").rglob("*")
                     if p.is_file()}
    # The run's length and cadence may change on resume: here it goes on to step 4.
    longer = configs.override(short, ["train.steps=4", "train.checkpoint_every=2"])
    assert train.train(longer, tmp_path, progress=False)["step"] == 4
    assert runs.read_config(tmp_path) == longer
    logged = [r["step"] for r in runs.MetricsLog(tmp_path / "metrics.jsonl").read("train")]
    assert logged == [1, 2, 3, 4]


# --- a time budget instead of a step count --------------------------------------------------------

def test_steps_for_budget_follows_the_measured_step_time():
    assert train.steps_for_budget(10, compile_seconds=30, step_seconds=1.0) == 570
    assert train.steps_for_budget(10, compile_seconds=30, step_seconds=0.5) == 1140
    with pytest.raises(ValueError, match="fits no step"):
        train.steps_for_budget(0.5, compile_seconds=40, step_seconds=1.0)
    with pytest.raises(ValueError, match="positive"):
        train.steps_for_budget(0, compile_seconds=1, step_seconds=1.0)


@pytest.mark.slow
def test_a_budget_sets_the_run_length_from_the_timed_step(tmp_path, monkeypatch, capsys):
    config = configs.get("tiny")
    measured, real = [], train.time_train_step

    def timed(model, tx, loss_fn, batch, repeats=3):
        measured.append(real(model, tx, loss_fn, batch, repeats=1))
        return 1.0, 0.25  # as if a step took a quarter second, after a second of compiling

    monkeypatch.setattr(train, "time_train_step", timed)
    record = train.train(config, tmp_path / "run", minutes=5 / 60, progress=False)
    assert record["step"] == 16 == runs.read_config(tmp_path / "run").train.steps  # (5 − 1) / 0.25
    assert measured and all(c > 0 and s > 0 for c, s in measured)  # the real step was timed
    assert "≈ 16 steps in 0.0833 min at 0.25 s/step" in capsys.readouterr().out
    record = train.train(config, tmp_path / "run", minutes=5 / 60, progress=False)  # resumed
    assert record["step"] == 32 and train.last_step(tmp_path / "run") == 32
    with pytest.raises(ValueError, match="not both"):
        train.train(config, tmp_path / "other", steps=3, minutes=1, progress=False)
