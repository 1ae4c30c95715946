"""benchmarks/step.py counts the FLOPs of the step it times (XLA counts a loop body once)."""

import importlib.util
import pathlib

import jax
import jax.numpy as jnp

from moog_lib import attention, configs


def _step_script():
    path = pathlib.Path(__file__).parents[1] / "benchmarks" / "step.py"
    spec = importlib.util.spec_from_file_location("step_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flop_count_counts_every_block_of_queries(monkeypatch):
    bench = _step_script()
    monkeypatch.setattr(attention, "QUERY_BLOCK", 8)  # tiny's 16 tokens: two blocks a layer
    config = configs.get("tiny")
    step, state = bench.make_step(config)
    size = config.data.resolution
    clip = jax.ShapeDtypeStruct((1, 2, size, size, 3), jnp.float32)
    key = jax.random.key(0)
    looped = bench.flop_count(step.func.lower(state, {"video": clip}, key, **step.keywords)
                              .compile())
    counted = bench.count_flops(step, state, key, 1, 2, size)
    assert attention.QUERY_BLOCK == 8  # restored
    assert counted > looped  # the second block of every attention is counted too
    assert counted < 2 * looped
