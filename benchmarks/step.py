"""Benchmark one MooG training step on this machine: the library's own step.

The timed function is `optimization.make_train_step` with `optimization.make_optimizer`
(global-norm clipping, then the preset's optimiser and schedule), exactly as `train.fit`
runs it.

    python benchmarks/step.py --preset paper --batch 1 --frames 2
    python benchmarks/step.py --preset cpu              # the preset's batch and clip length
    python benchmarks/step.py --preset cpu --override model.num_tokens=128
    python benchmarks/step.py --preset colab --keep-dtype --compile-only   # memory, TPU estimate
    python benchmarks/step.py --preset paper --batch 1 --frames 2 --release ~/representations4d
    python benchmarks/step.py --preset paper --batch 1 --frames 2 --trace /tmp/step_trace

`--release DIR` also builds the authors' released model (the paper configuration of
their `moog/configs/movi.py`, from a local copy of google-deepmind/representations4d;
it needs `pip install kauldron`, which is not a dependency of this project) with their
training objective and optimiser, and times its jitted step interleaved with ours on
the same clip, so both see the same machine load.

Prints one JSON object: median step time, compile time, XLA's FLOP count for
the step, the achieved GFLOP/s, this machine's float32 matmul GFLOP/s measured
in the same run (a 2048² `jnp.dot`), their ratio, and the peak resident memory.

Notes:
- On a CPU the TPU presets' bfloat16 compute is replaced by float32 (CPUs have
  no fast bfloat16 matrix units); `--keep-dtype` keeps the preset's dtype.
- FLOPs come from XLA's `cost_analysis()` of the library's compiled step. XLA
  counts the body of a loop once, whatever its trip count. Attention loops over
  blocks of queries (`attention.blockwise_attention`), so the count is taken on
  a copy of the step compiled with one block per attention (the same
  arithmetic, recomputation in the backward pass included). The step scans
  predict/correct over all frames but the last (the last runs outside the
  scan), so at T ≤ 2 the scan runs at most once and the count is the step's.
  For longer clips the count is extrapolated from T = 1 and 2, since every
  part of the step is linear in T (flops(T) = flops(1) + (T − 1)·(flops(2) −
  flops(1)); checked against a fully unrolled copy of the step: within 0.1 %
  at T = 3). The count of the compiled T-frame step (loop body once) is
  printed beside it.
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
import functools
import json
import os
import platform
import resource
import statistics
import sys
import time

import jax
import jax.numpy as jnp
from flax import nnx

from moog_lib import attention, configs, optimization, parallel
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
    """The library's jitted train step (with `rest` bound, as `make_train_step` returns
    it) and its initial `TrainState`."""
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


def count_flops(step, state, key, batch, frames, resolution) -> float | None:
    """FLOPs of the library's step for clips of `frames` frames (see the module docstring)."""

    def compiled_flops(num_frames):
        clip = jax.ShapeDtypeStruct((batch, num_frames, resolution, resolution, 3), jnp.float32)
        block, attention.QUERY_BLOCK = attention.QUERY_BLOCK, 2**62  # one block: no loop
        try:
            # a fresh function: JAX caches traces per function, and the block size is read
            # while tracing
            fresh = jax.jit(lambda *a, **k: step.func.__wrapped__(*a, **k), donate_argnums=0)
            lowered = fresh.lower(state, {"video": clip}, key, **step.keywords)
        finally:
            attention.QUERY_BLOCK = block
        return flop_count(lowered.compile())

    if frames <= 2:  # the frame scan runs at most once: XLA's count is the step's
        return compiled_flops(frames)
    one, two = compiled_flops(1), compiled_flops(2)
    if one is None or two is None:
        return None
    return one + (frames - 1) * (two - one)


def release_step(path, batch, frames, resolution):
    """The authors' train step: their `Moog` built as `moog/configs/movi.py` builds it (the
    paper's numbers), the L2 loss on the subsampled predicted frames, clipping at 1 and
    AdamW (b2 = 0.95) on a warm-up + cosine schedule. Returns (run_step, compile seconds,
    XLA's FLOP count); `run_step(i)` runs one step and blocks until it is done."""
    import optax
    from flax import linen
    sys.path.insert(0, str(path))
    from kauldron.utils import train_property
    from moog import attention, conv, initializers, modules, pos_embeddings

    transformer = attention.ImprovedTransformer
    model = modules.Moog(
        encoder=modules.SRTEncoder(
            backbone=conv.ConvNet(features=(64, 128, 128, 256, 256, 512), kernel_sizes=((3, 3),) * 6,
                                  strides=((1, 1),) * 3 + ((2, 2), (1, 1), (2, 2)), normalize_output=True),
            transformer=transformer(qkv_size=512, num_heads=8, mlp_size=2048, hidden_size=512, num_layers=0),
            pos_embedding=pos_embeddings.FourierEmbedding(num_fourier_bases=20, axes=(-3, -2),
                                                          update_type="project_add")),
        initializer=initializers.RandomStateInit(shape=(1024, 512), random_init_scale=1e-4),
        state_grad_projector=linen.Dense(512),
        correction_layer_norm=linen.LayerNorm(epsilon=1e-4, use_scale=True, use_bias=False),
        corrector=transformer(qkv_size=512, num_heads=8, mlp_size=2048, num_layers=2),
        predictor=transformer(qkv_size=256, num_heads=4, mlp_size=2048, num_layers=3),
        decoder=modules.SRTDecoder(
            transformer=transformer(qkv_size=128, num_heads=2, mlp_size=2048, num_layers=6, cross_attn_only=True),
            pos_embedding=pos_embeddings.SampleFourierEmbedding(num_fourier_bases=16, update_type="concat"),
            subsample_factor=8, eval_subsample_factor=4),
        stop_gradient_prob=None, use_loss_gradient=False)
    video = jax.random.uniform(jax.random.key(1), (batch, frames, resolution, resolution, 3))
    schedule = optax.warmup_cosine_decay_schedule(0.0, 1e-4, 1000, 1_000_000, 1e-7)
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, b2=0.95))

    def loss_fn(params, key):
        out = model.apply({"params": params}, video, {}, rngs={"default": key, "state_init": key})
        return jnp.mean(jnp.square(out["video_predicted"] - out["subsampled_targets_predicted"]))

    @functools.partial(jax.jit, donate_argnums=(0, 1))  # in place, as ours (and a trainer) run
    def step(params, opt_state, key):
        loss, grads = jax.value_and_grad(loss_fn)(params, key)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    with train_property.set_train_property(True):  # their modules read it while tracing
        keys = {"params": jax.random.key(0), "default": jax.random.key(1), "state_init": jax.random.key(2)}
        params = model.init(keys, video, {})["params"]
        state = [params, tx.init(params)]
        start = time.perf_counter()
        compiled = step.lower(*state, jax.random.key(3)).compile()
        compile_seconds = time.perf_counter() - start

    def run_step(i):
        params, opt_state, loss = compiled(*state, jax.random.key(i))
        loss.block_until_ready()
        state[:] = [params, opt_state]

    return run_step, compile_seconds, flop_count(compiled)


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
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2,
                        help="untimed steps first (the first runs after compiling are slower)")
    parser.add_argument("--trace", default=None, metavar="DIR",
                        help="also write a jax.profiler trace of one step of ours to DIR "
                             "(open its perfetto_trace.json.gz at ui.perfetto.dev)")
    parser.add_argument("--keep-dtype", action="store_true",
                        help="keep the preset's compute dtype on CPU")
    parser.add_argument("--compile-only", action="store_true",
                        help="do not run: memory analysis and a v5e time estimate")
    parser.add_argument("--utilisation", type=float, default=0.4,
                        help="share of the v5e's peak assumed by --compile-only")
    parser.add_argument("--release", default=None, metavar="DIR",
                        help="a local copy of google-deepmind/representations4d: time the authors' "
                             "step too, interleaved with ours (needs kauldron)")
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
    compiled = step.func.lower(state, batch, key, **step.keywords).compile()
    compile_seconds = time.perf_counter() - start
    run = functools.partial(compiled, **step.keywords)  # `rest`, bound as the library binds it

    scan_flops = flop_count(compiled)
    flops = count_flops(step, state, key, args.batch, args.frames, resolution)
    if args.compile_only:
        return report_compiled(args, config, resolution, compiled, compile_seconds, flops, notes)

    release = None
    if args.release:
        if (args.preset, model_config.compute_dtype) != ("paper", "float32"):
            parser.error("--release compares the paper configuration in float32: use --preset paper "
                         "(on a CPU its compute dtype becomes float32)")
        release = release_step(args.release, args.batch, args.frames, resolution)
    for i in range(args.warmup):
        if release:
            release[0](1000 + i)
        state, metrics = run(state, batch, key)
        metrics["loss"].block_until_ready()
    times, release_times = [], []
    for i in range(args.steps):  # with --release, their step and ours alternate
        start = time.perf_counter()
        state, metrics = run(state, batch, jax.random.fold_in(key, i))
        metrics["loss"].block_until_ready()
        times.append(time.perf_counter() - start)
        if release:
            start = time.perf_counter()
            release[0](i + 1)
            release_times.append(time.perf_counter() - start)
    if args.trace:  # one more step of ours, untimed, under the profiler
        with jax.profiler.trace(args.trace, create_perfetto_trace=True):
            state, metrics = run(state, batch, key)
            metrics["loss"].block_until_ready()
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
        "warmup_steps": args.warmup,
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
    if release:
        release_median = statistics.median(release_times)
        result["release"] = {
            "step_seconds_median": round(release_median, 4),
            "step_seconds_all": [round(t, 4) for t in release_times],
            "compile_seconds": round(release[1], 2),
            "step_gflop": round(release[2] / 1e9, 2) if release[2] else None,
            "fraction_of_matmul": (round(release[2] / release_median / 1e9 / matmul, 3)
                                   if release[2] else None),
            # each of their steps ran right after one of ours: the median of the pairs' ratios
            # cancels load that changes during the run, which the ratio of medians does not
            "speed_ours_over_theirs": round(statistics.median(
                theirs / ours for theirs, ours in zip(release_times, times)), 3),
        }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
