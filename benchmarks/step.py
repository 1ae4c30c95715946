"""Benchmark one MooG training step on this machine: the library's own step.

The timed function is `optimization.make_train_step` with `optimization.make_optimizer`
(global-norm clipping, then the preset's optimiser and schedule), exactly as `train.fit`
runs it.

    python benchmarks/step.py --preset paper --batch 1 --frames 2
    python benchmarks/step.py --preset cpu              # the preset's batch and clip length
    python benchmarks/step.py --preset cpu --override model.num_tokens=128
    python benchmarks/step.py --preset colab --keep-dtype --compile-only   # memory, TPU estimate

Prints one JSON object: median step time, compile time, XLA's FLOP count for
the step, the achieved GFLOP/s, this machine's float32 matmul GFLOP/s measured
in the same run (a 2048² `jnp.dot`), their ratio, and the peak resident memory.

Notes:
- On a CPU the TPU presets' bfloat16 compute is replaced by float32 (CPUs have
  no fast bfloat16 matrix units); `--keep-dtype` keeps the preset's dtype.
- FLOPs come from XLA's `cost_analysis()`. XLA counts the body of a loop once,
  whatever its trip count, so the count of the timed step (whose frame loop is
  a `jax.lax.scan`) misses T − 1 predict/correct steps. We therefore count on a
  copy of the step with the scan fully unrolled (same arithmetic, compiled
  only for counting): at T ≤ 2 directly; for longer clips from the unrolled
  counts at T = 1 and 2, since every part of the step is linear in T
  (flops(T) = flops(1) + (T − 1)·(flops(2) − flops(1))). Both numbers are
  printed.
- `--compile-only` compiles the step without running it and prints XLA's memory
  analysis (parameters and optimiser state in, state out, temporaries) and, from
  the FLOP count, the step time on one TPU v5e chip (197 bfloat16 TFLOP/s peak,
  16 GB HBM) at a stated share of its peak. Both are estimates: the buffers are
  this backend's assignment, not the TPU's, and utilisation is assumed.
- Linux/glibc: large temporary buffers are fresh `mmap`s, so every step pays
  page faults on gigabytes of memory. `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`
  backs them with transparent huge pages (512× fewer faults); the JSON says
  whether it was set. Try both.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import statistics
import time

import jax
import jax.numpy as jnp
from flax import nnx

from moog_lib import configs, optimization, parallel
from moog_lib.model import MooG


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    """Median float32 GFLOP/s of a size×size by size×size matrix product."""
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (size, size), jnp.float32)
    dot = jax.jit(jnp.dot)
    dot(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        dot(a, b).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def make_step(config: configs.Config):
    """The library's jitted train step, its initial `TrainState` and the step's Python
    function (for counting FLOPs with the scan unrolled)."""
    model = MooG(config.model, rngs=nnx.Rngs(0))
    tx = optimization.make_optimizer(config.train)
    graphdef, rest, state = optimization.split_model(model, tx)
    step = optimization.make_train_step(graphdef, rest, tx)
    return step, state


def flop_count(compiled) -> float | None:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list | tuple):  # older jax: one dict per computation
        analysis = analysis[0] if analysis else {}
    return float(analysis["flops"]) if analysis and "flops" in analysis else None


def count_flops_unrolled(step, state, key, batch, frames, resolution) -> float | None:
    """FLOPs of the step with its frame loop unrolled (see the module docstring)."""

    def unrolled_flops(num_frames):
        clip = jax.ShapeDtypeStruct((batch, num_frames, resolution, resolution, 3), jnp.float32)
        original_scan = jax.lax.scan
        jax.lax.scan = lambda *a, **k: original_scan(*a, **{**k, "unroll": True})
        try:  # a fresh jit of the step's Python function, so JAX traces again (patched scan)
            return flop_count(jax.jit(step.__wrapped__).lower(state, {"video": clip}, key).compile())
        finally:
            jax.lax.scan = original_scan

    if frames <= 2:
        return unrolled_flops(frames)
    one, two = unrolled_flops(1), unrolled_flops(2)
    if one is None or two is None:
        return None
    return one + (frames - 1) * (two - one)


V5E_PEAK_FLOPS, V5E_HBM_BYTES = 197e12, 16 * 2**30


def report_compiled(args, config, resolution, compiled, compile_seconds, flops, notes) -> dict:
    """Memory analysis of the compiled step and its estimated time on one v5e chip."""
    memory = parallel.compiled_memory(compiled)
    result = {
        "preset": args.preset, "overrides": args.override, "batch": args.batch,
        "frames": args.frames, "resolution": resolution,
        "compute_dtype": config.model.compute_dtype, "backend": jax.default_backend(),
        "jax": jax.__version__, "compile_seconds": round(compile_seconds, 2),
        "memory_gib": {k: round(v, 3) for k, v in memory.items()},
        "fraction_of_v5e_hbm": round(memory["peak"] * 2**30 / V5E_HBM_BYTES, 3),
        "step_gflop": round(flops / 1e9, 2) if flops else None,
        "v5e_utilisation_assumed": args.utilisation,
        "v5e_step_seconds_estimate": (float(f"{flops / (V5E_PEAK_FLOPS * args.utilisation):.3g}")
                                      if flops else None),
        "notes": notes + ["estimates: this backend's buffer assignment, an assumed utilisation"],
    }
    print(json.dumps(result, indent=1))
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper", choices=configs.PRESETS)
    parser.add_argument("--override", action="append", default=[],
                        help="section.field=value, e.g. model.num_tokens=256 (repeatable)")
    parser.add_argument("--batch", type=int, default=None, help="default: the preset's")
    parser.add_argument("--frames", type=int, default=None, help="default: the preset's")
    parser.add_argument("--resolution", type=int, default=None,
                        help="frame size (default: the preset's)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after one warm-up)")
    parser.add_argument("--keep-dtype", action="store_true",
                        help="keep the preset's compute dtype on CPU")
    parser.add_argument("--compile-only", action="store_true",
                        help="do not run: memory analysis and a v5e time estimate")
    parser.add_argument("--utilisation", type=float, default=0.4,
                        help="share of the v5e's peak assumed by --compile-only")
    args = parser.parse_args(argv)

    config = configs.override(configs.get(args.preset), args.override)
    model_config = config.model
    backend = jax.default_backend()
    notes = []
    if backend == "cpu" and model_config.compute_dtype != "float32" and not args.keep_dtype:
        notes.append(f"compute dtype {model_config.compute_dtype} -> float32 on CPU")
        model_config = configs.override(config, ["model.compute_dtype=float32"]).model
    resolution = args.resolution or config.data.resolution
    args.batch = args.batch or config.data.batch_size
    args.frames = args.frames or config.data.num_frames

    matmul = matmul_gflops()

    config = dataclasses.replace(config, model=model_config)
    step, state = make_step(config)
    frames = jax.random.uniform(jax.random.key(1), (args.batch, args.frames, resolution,
                                                    resolution, 3))
    batch = {"video": frames}
    key = jax.random.key(2)
    start = time.perf_counter()
    compiled = step.lower(state, batch, key).compile()
    compile_seconds = time.perf_counter() - start

    scan_flops = flop_count(compiled)
    flops = count_flops_unrolled(step, state, key, args.batch, args.frames, resolution)
    if args.compile_only:
        return report_compiled(args, config, resolution, compiled, compile_seconds, flops, notes)

    state, metrics = compiled(state, batch, key)  # warm-up
    metrics["loss"].block_until_ready()
    times = []
    for i in range(args.steps):
        start = time.perf_counter()
        state, metrics = compiled(state, batch, jax.random.fold_in(key, i))
        metrics["loss"].block_until_ready()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    matmul = max(matmul, matmul_gflops())  # measured before and after: the better one
    achieved = flops / median / 1e9 if flops else None
    result = {
        "preset": args.preset,
        "overrides": args.override,
        "batch": args.batch,
        "frames": args.frames,
        "resolution": resolution,
        "num_tokens": model_config.num_tokens,
        "compute_dtype": model_config.compute_dtype,
        "backend": backend,
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "jax": jax.__version__,
        "step_seconds_median": round(median, 4),
        "step_seconds_all": [round(t, 4) for t in times],
        "compile_seconds": round(compile_seconds, 2),
        "step_gflop": round(flops / 1e9, 2) if flops else None,
        "xla_gflop_scan_body_once": round(scan_flops / 1e9, 2) if scan_flops else None,
        "achieved_gflops_per_s": round(achieved, 1) if achieved else None,
        "matmul_gflops_per_s": round(matmul, 1),
        "fraction_of_matmul": round(achieved / matmul, 3) if achieved else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "loss": float(metrics["loss"]),
        "notes": notes,
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
