"""Throughput of the data layer (chapters 05, 05b); prints one JSON object.

- render: synthetic clips per second (T=24, 256 tracks) at 64x64 and 128x128, on one core
  and on every core (a warm pool of spawned workers: start-up is reported separately);
- pipeline: batches per second of the full input pipeline (8-frame window, crop, resize,
  colour jitter, track masking, batching) over clips already in memory, so that rendering
  is not counted, with grain in this process and with worker processes.

Usage: python benchmarks/data.py [--clips 48] [--batches 30] [--batch-size 8]
"""

import argparse
import concurrent.futures
import gc
import json
import multiprocessing
import os
import platform
import time

import numpy as np

from moog_lib import data, render


def render_single(resolution, n):
    render.render_clip("movi_e", "train", 10_000, resolution=resolution)  # warm caches
    start = time.perf_counter()
    for i in range(n):
        render.render_clip("movi_e", "train", i, resolution=resolution)
    return n / (time.perf_counter() - start)


def render_parallel(resolution, n, workers):
    context = multiprocessing.get_context("spawn")
    start = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        warm = [("movi_e", "train", 10_000 + w, 0, dict(resolution=resolution)) for w in range(2 * workers)]
        list(pool.map(render._render_task, warm))  # start the workers, import, load textures
        startup = time.perf_counter() - start
        tasks = [("movi_e", "train", i, 0, dict(resolution=resolution)) for i in range(n)]
        start = time.perf_counter()
        clips = list(pool.map(render._render_task, tasks, chunksize=2))
        seconds = time.perf_counter() - start
    assert len(clips) == n and clips[0]["video"].shape == (24, resolution, resolution, 3)
    return n / seconds, startup


def pipeline(resolution, batch_size, batches, workers):
    clips = [render.render_clip("movi_e", "train", i, resolution=resolution) for i in range(2 * batch_size)]
    ds = data.make_pipeline(clips, batch_size=batch_size, num_frames=8, resolution=resolution,
                            seed=0, worker_count=workers)
    iterator = iter(ds)
    for _ in range(2):  # compile the jitter, start workers
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(iterator)
    seconds = time.perf_counter() - start
    iterator.close()  # stop grain's workers before the interpreter shuts down
    del iterator, ds
    gc.collect()
    assert batch["video"].shape == (batch_size, 8, resolution, resolution, 3)
    return batches / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=48, help="clips per render measurement")
    parser.add_argument("--batches", type=int, default=30, help="batches per pipeline measurement")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    result = {"machine": {"cores": cores, "python": platform.python_version(), "numpy": np.__version__},
              "render": {}, "pipeline": {}}
    for res in (64, 128):
        n = args.clips if res == 64 else max(8, args.clips // 3)
        single = render_single(res, max(4, n // 4))
        parallel, startup = render_parallel(res, n, cores)
        result["render"][f"{res}x{res}"] = {
            "frames": 24, "tracks": 256, "clips_per_s_one_core": round(single, 2),
            f"clips_per_s_{cores}_cores": round(parallel, 2), "pool_startup_s": round(startup, 2),
            "ms_per_clip_one_core": round(1000 / single, 1)}
    for res in (64, 128):
        result["pipeline"][f"{res}x{res}"] = {
            "batch": f"{args.batch_size} x 8 frames", "from": f"24-frame {res}x{res} clips in memory",
            "batches_per_s_in_process": round(pipeline(res, args.batch_size, args.batches, 0), 2),
            f"batches_per_s_{cores}_workers": round(pipeline(res, args.batch_size, args.batches, cores), 2)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
