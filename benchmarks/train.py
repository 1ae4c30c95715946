"""Training throughput (chapters 06–06a); prints one JSON object per preset.

For each preset: the jitted train step's median time and frames per second on a fixed
batch (the model alone), then `train.train` end to end on clips rendered on the fly
for `--steps` steps, reporting frames per second and the share of step time spent
waiting for data (as logged in metrics.jsonl, first window excluded: it compiles).

Usage: python benchmarks/train.py [--presets tiny cpu] [--steps 40]
"""

import argparse
import json
import platform
import tempfile
import time

import jax
import numpy as np
from flax import nnx

from moog_lib import configs, optimization, runs, train
from moog_lib.model import MooG


def step_time(config: configs.Config, repeats: int = 5) -> dict:
    tx = optimization.make_optimizer(config.train)
    graphdef, rest, state = optimization.split_model(MooG(config.model, rngs=nnx.Rngs(0)), tx)
    step = optimization.make_train_step(graphdef, rest, tx)
    d = config.data
    shape = (d.batch_size, d.num_frames, d.resolution, d.resolution, 3)
    batch = {"video": np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)}
    start = time.perf_counter()
    state, metrics = step(state, batch, jax.random.key(0))
    jax.block_until_ready(metrics)
    compile_seconds = time.perf_counter() - start
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        state, metrics = step(state, batch, jax.random.key(i + 1))
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - start)
    median = float(np.median(times))
    return {"compile_s": round(compile_seconds, 2), "step_s": round(median, 4),
            "frames_per_s": round(d.batch_size * d.num_frames / median, 1)}


def end_to_end(config: configs.Config, steps: int) -> dict:
    log_every = max(1, steps // 4)
    config = configs.override(config, [f"train.log_every={log_every}", f"train.eval_every={10 * steps}",
                                       f"train.checkpoint_every={10 * steps}", "data.data_dir=''"])
    with tempfile.TemporaryDirectory() as workdir:
        train.train(config, workdir, steps=steps, progress=False)
        records = runs.MetricsLog(f"{workdir}/metrics.jsonl").read("train")[1:]
    return {"steps": steps,
            "frames_per_s": round(float(np.mean([r["frames_per_second"] for r in records])), 1),
            "data_wait_share": round(float(np.mean([r["data_wait_share"] for r in records])), 3)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "cpu"], choices=configs.PRESETS)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    for name in args.presets:
        config = configs.get(name)
        result = {"preset": name, "machine": platform.machine(), "devices": jax.device_count(),
                  "model_only": step_time(config), "train_loop": end_to_end(config, args.steps)}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
