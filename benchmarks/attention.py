"""Forward + backward time of one attention at the paper's shapes: the two einsums
(`attend(attention_weights(...))`, which build the [heads, Q, K] weights) against
`blockwise_attention` (chapter 02), in float32 on this machine; prints one JSON object.

The three shapes are the paper model's (chapter 02): the corrector (8 heads of 64,
1,024 tokens attending to 1,024), the predictor (4 heads) and the decoder during
pretraining (2 heads, 256 sampled pixels at S = 8 attending to 1,024 tokens). Both
functions are jitted once; the time is the median of `--repeats` calls.

Usage: python benchmarks/attention.py [--repeats 9]
"""

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp

from moog_lib import attention

SHAPES = {  # name: (heads, queries, keys), head_dim 64
    "corrector (8 heads, 1024 x 1024)": (8, 1024, 1024),
    "predictor (4 heads, 1024 x 1024)": (4, 1024, 1024),
    "decoder (2 heads, 256 x 1024)": (2, 256, 1024),
}


def plain(q, k, v):
    return attention.attend(attention.attention_weights(q, k), v)


def forward_backward_ms(fn, heads, queries, keys, repeats):
    q, g = (jax.random.normal(jax.random.key(i), (1, queries, heads, 64)) for i in (0, 1))
    k, v = (jax.random.normal(jax.random.key(i), (1, keys, heads, 64)) for i in (2, 3))
    step = jax.jit(jax.grad(lambda q, k, v: jnp.vdot(fn(q, k, v), g), argnums=(0, 1, 2)))
    jax.block_until_ready(step(q, k, v))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(step(q, k, v))
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    result = {"jax": jax.__version__, "backend": jax.default_backend(),
              "query_block": attention.QUERY_BLOCK}
    for name, shape in SHAPES.items():
        two_einsums = forward_backward_ms(plain, *shape, args.repeats)
        blockwise = forward_backward_ms(attention.blockwise_attention, *shape, args.repeats)
        result[name] = {"two_einsums_ms": round(two_einsums, 1),
                        "blockwise_ms": round(blockwise, 1),
                        "speed_up": round(two_einsums / blockwise, 2)}
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
