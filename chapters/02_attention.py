# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 — Attention
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/moog-tutorial/moog-tutorial/blob/main/notebooks/02_attention.ipynb)
#
# **What you will learn.** Every learned part of MooG except the convolutional
# encoder is a transformer: the predictor that rolls the state forward, the
# corrector that writes a new frame into it, the decoder that reads pixels out
# of it, and the readouts. They all share one attention layer and one block,
# built in this chapter from the ground up:
#
# - scaled dot-product attention, written as two `einsum`s, and why its
#   weights are a probability distribution over keys;
# - the same attention without ever building its weight matrix: blocks of
#   queries and a backward pass written by hand (`jax.custom_vjp`), as
#   FlashAttention does;
# - *QK-norm*: an RMS norm on every query and key head, which bounds the
#   logits and makes the attention sharpness a learned parameter;
# - multi-head attention as a Flax NNX module whose kernels have the shape
#   `[in, heads, head_dim]` used by the authors' checkpoints;
# - the pre-LN block with **parallel** self- and cross-attention paths, and
#   the three transformer flavours MooG needs (self only, self ∥ cross,
#   cross only);
# - how to get every layer's attention maps back, and how to count
#   parameters of paper-sized modules without allocating them.
#
# **Prerequisites.** Chapter 00 (notation); matrix products and `softmax`;
# the basics of Flax NNX modules (`nnx.Linear`, `nnx.Rngs`, `nnx.state`).
#
# **Runtime.**
#
# | preset | hardware | this chapter |
# |---|---|---|
# | `tiny` | CI, 2 CPU cores | 35 s (nbval in `make test` on a clean clone, two workers, nothing else running; 2026-12-03) |
# | `colab` | Colab TPU v5e-1 | estimate ≈ 1–2 min, nearly all of it the setup cell's install; the cells (small layers, a few shapes of the paper's) run in seconds; not measured on a TPU |
#
# Nothing in this chapter depends on the preset: the modules are tiny toys or
# paper-sized shapes that are never allocated.

# %%
# Setup, the same in every chapter (chapter 00, section 5, explains it). On Colab:
# install this repository, keeping the jax, jaxlib, libtpu and flax Colab ships.
# Then `notebook.setup()` sets XLA flags before JAX starts, picks the preset
# (MOOG_PRESET; `colab` on a TPU, else `tiny`) and prints what runs.
import subprocess
import sys

REPOSITORY = "https://github.com/moog-tutorial/moog-tutorial"
if "google.colab" in sys.modules:
    pip = f"{sys.executable} -m pip"
    subprocess.run(f"{pip} freeze | grep -iE '^(jax|jaxlib|libtpu|flax)==' > /tmp/keep.txt && "
                   f"{pip} install -q -c /tmp/keep.txt 'moog-tutorial[video] @ git+{REPOSITORY}@main'",
                   shell=True, check=True)
from moog_lib import configs, notebook

PRESET = notebook.setup()

# %%
#| default_exp attention

# %% [markdown]
# ## 1. Attention in two einsums
#
# Attention lets every *query* vector read a weighted average of *value*
# vectors, with weights given by how well the query matches each *key*. With
# `h` heads of width `d`, a query array `q` of shape `[Q, h, d]` and keys and
# values `k, v` of shape `[K, h, d]`:
#
# $$\text{logits}_{hqk} = \frac{q_{qh}}{\sqrt d}\cdot k_{kh}, \qquad
#   w_{hqk} = \operatorname{softmax}_k(\text{logits}_{hqk}), \qquad
#   \text{out}_{qh} = \sum_k w_{hqk}\, v_{kh}.$$
#
# Dividing by `√d` keeps the logits of order one when the entries of `q` and
# `k` are: a dot product of `d` unit-variance terms has variance `d`. The
# softmax runs over keys, so for every head and query the weights are
# non-negative and sum to one — each output is a convex combination of values.
#
# The two functions below are the whole mechanism. Any leading axes (batch,
# frames, …) pass through the `...` of the einsums; the signatures call them
# `*batch` (chapter 00, section 3), the same for queries and keys. The logits are accumulated
# and normalised in float32 even when `q` and `k` are bfloat16 (chapter 06 trains
# on TPUs in bfloat16), because the softmax of large logits is where low
# precision hurts first.

# %%
#| export
"""Attention and the transformer.

`attention_weights` and `attend` (scaled dot-product attention with QK-norm),
`blockwise_attention` (the same without keeping the weights), `MultiHeadAttention`,
the pre-LN `TransformerBlock` with parallel self- and cross-attention paths, and
`Transformer`, a stack of blocks.
"""
import functools
import math

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, ArrayLike, Float

from moog_lib.shapes import typed


@typed
def attention_weights(query: Float[ArrayLike, "*batch Q heads d"],
                      key: Float[ArrayLike, "*batch K heads d"], *,
                      compete: bool = False) -> Float[Array, "*batch heads Q K"]:
    """Softmax attention weights, float32 [..., heads, Q, K].

    `query` is [..., Q, heads, d] and `key` is [..., K, heads, d] (d: head_dim).
    Logits are `(query / sqrt(head_dim)) · key`; the softmax runs over keys.
    `compete=True` is Slot Attention's normalisation (§3): the softmax runs
    over queries, then each query's weights are rescaled to sum to one.
    """
    query = query / math.sqrt(query.shape[-1])
    logits = jnp.einsum("...qhd,...khd->...hqk", query, key,
                        preferred_element_type=jnp.float32)
    if not compete:
        return jax.nn.softmax(logits, axis=-1)
    weights = jax.nn.softmax(logits, axis=-2) + 1e-8
    return weights / weights.sum(-1, keepdims=True)


@typed
def attend(weights: Float[ArrayLike, "*batch heads Q K"],
           value: Float[ArrayLike, "*batch K heads d"]) -> Float[Array, "*batch Q heads d"]:
    """Average the values with the weights: [..., heads, Q, K] × [..., K, heads, d] -> [..., Q, heads, d]."""
    return jnp.einsum("...hqk,...khd->...qhd", weights.astype(value.dtype), value)


# %% [markdown]
# A quick check on random inputs: the weights are a distribution over the keys,
# and the output agrees with a plain loop over heads and queries written with
# NumPy.

# %%
import numpy as np

rng = np.random.default_rng(0)
q, k, v = (rng.normal(size=s).astype(np.float32) for s in [(5, 2, 4), (7, 2, 4), (7, 2, 4)])
w = attention_weights(q, k)
assert w.shape == (2, 5, 7) and w.dtype == jnp.float32
assert np.allclose(w.sum(-1), 1.0, atol=1e-6) and (np.asarray(w) >= 0).all()
reference = np.zeros((5, 2, 4), np.float32)
for head in range(2):
    for i in range(5):
        logits = k[:, head] @ q[i, head] / np.sqrt(4)
        p = np.exp(logits - logits.max())
        reference[i, head] = (p / p.sum()) @ v[:, head]
assert np.allclose(attend(w, v), reference, atol=1e-5)
print("weights of head 0, query 0:", np.round(np.asarray(w[0, 0]), 3))

# %% [markdown]
# ### The same attention, without keeping the weights
#
# The two einsums build the whole `[h, Q, K]` weight array. At the paper's
# size that is 8 heads × 1024 × 1024 floats, 32 MB, for every attention layer
# of every frame, and training keeps each one until the backward pass. On a
# CPU, writing and re-reading arrays that size costs more than the arithmetic
# around them. Nothing needs the weights but the output, so we can do as
# FlashAttention does (Dao et al., 2022):
#
# - **forward**: take the queries a block at a time (256 of them), compute
#   `e = exp(logits − max)` for the block, and divide *after* averaging the
#   values, `out = (e·v) / Σ_k e`; keep only `out` and the log-sum-exp
#   `lse = max + log Σ_k e`, one number per query and head;
# - **backward**: recompute a block's weights from `lse`,
#   `w = exp(logits − lse)`, and use the softmax's gradient
#   `∂logits = w ⊙ (∂w − Σ_k ∂w_k w_k)`, where `Σ_k ∂w_k w_k = ∂out · out`
#   (a sum over `d`, not over `K`).
#
# It is the same function: `out` agrees with the two einsums to float32
# rounding, and so do its gradients. First the forward pass, one block of
# queries at a time (`jax.lax.map`):

# %%
#| export
def _query_blocks(x, num_blocks: int):
    """[B, Q, h, d] -> [num_blocks, B, h, Q / num_blocks, d]."""
    b, q, h, d = x.shape
    return x.reshape(b, num_blocks, q // num_blocks, h, d).transpose(1, 0, 3, 2, 4)


def _merge_blocks(x):
    """[num_blocks, B, h, q, d] -> [B, num_blocks · q, h, d]."""
    n, b, h, q, d = x.shape
    return x.transpose(1, 0, 3, 2, 4).reshape(b, n * q, h, d)


def _blockwise_forward(query, key, value, num_blocks):
    scale = 1 / math.sqrt(query.shape[-1])
    key_h, value_h = key.transpose(0, 2, 1, 3), value.transpose(0, 2, 1, 3)  # [B, h, K, d]

    def block(q):  # [B, h, q, d]
        logits = jnp.einsum("bhqd,bhkd->bhqk", q * scale, key_h,
                            preferred_element_type=jnp.float32)
        top = logits.max(-1, keepdims=True)
        e = jnp.exp(logits - top)
        total = e.sum(-1, keepdims=True)
        out = jnp.einsum("bhqk,bhkd->bhqd", e.astype(value.dtype), value_h,
                         preferred_element_type=jnp.float32) / total
        return out.astype(value.dtype), top + jnp.log(total)

    out, lse = jax.lax.map(block, _query_blocks(query, num_blocks))
    out = _merge_blocks(out)
    return out, (query, key, value, out, lse)


# %% [markdown]
# We write the backward pass ourselves (`jax.custom_vjp`), because automatic
# differentiation of the forward pass would keep every block's `e` again. It
# works on *transposed* blocks `[h, K, q]`: then every product is one that fast
# CPU matrix kernels take directly (a product over the first axis of its left
# operand falls back to a slower path in XLA's CPU backend), and `kᵀ` is
# transposed once per call. `blockwise_attention` puts the two together.
# Forward and backward pass at the paper's shapes, float32 on a 2-core CPU
# (`python benchmarks/attention.py --repeats 15`, 2026-12-04):
#
# | attention (paper model) | two einsums | `blockwise_attention` |
# |---|---|---|
# | corrector: 8 heads, 1,024 × 1,024 | 115.0 ms | 54.3 ms |
# | predictor: 4 heads, 1,024 × 1,024 | 43.6 ms | 24.1 ms |
# | decoder: 2 heads, 256 sampled pixels × 1,024 | 6.1 ms | 3.5 ms |
#
# Section 3 uses it whenever the weights are not asked for; chapter 06 §2
# measures what it does for the whole train step.

# %%
#| export
def _blockwise_backward(num_blocks, residuals, d_out):
    query, key, value, out, lse = residuals
    scale = 1 / math.sqrt(query.shape[-1])
    key_h, value_h = key.transpose(0, 2, 1, 3), value.transpose(0, 2, 1, 3)  # [B, h, K, d]
    key_t = key.transpose(0, 2, 3, 1)  # [B, h, d, K]
    f32 = functools.partial(jnp.einsum, preferred_element_type=jnp.float32)

    def block(carry, inputs):  # transposed blocks [B, h, K, q]
        d_key, d_value = carry
        q, d_o, o, lse_q = inputs
        q = q * scale
        w_t = jnp.exp(f32("bhkd,bhqd->bhkq", key_h, q) - jnp.swapaxes(lse_q, -1, -2))
        d_value = d_value + f32("bhkq,bhqd->bhkd", w_t.astype(d_o.dtype), d_o)
        d_w_t = f32("bhkd,bhqd->bhkq", value_h, d_o)
        row = jnp.swapaxes((d_o * o).sum(-1, keepdims=True, dtype=jnp.float32), -1, -2)
        d_logits_t = (w_t * (d_w_t - row)).astype(q.dtype)
        d_key = d_key + f32("bhkq,bhqd->bhkd", d_logits_t, q)
        d_q_t = f32("bhdk,bhkq->bhdq", key_t, d_logits_t) * scale
        return (d_key, d_value), jnp.swapaxes(d_q_t, -1, -2).astype(query.dtype)

    zeros = jnp.zeros(key_h.shape, jnp.float32)
    (d_key, d_value), d_query = jax.lax.scan(
        block, (zeros, zeros), tuple(_query_blocks(x, num_blocks) for x in (query, d_out, out))
        + (lse,))
    return (_merge_blocks(d_query), d_key.transpose(0, 2, 1, 3).astype(key.dtype),
            d_value.transpose(0, 2, 1, 3).astype(value.dtype))


_blockwise = jax.custom_vjp(lambda q, k, v, n: _blockwise_forward(q, k, v, n)[0],
                            nondiff_argnums=(3,))
_blockwise.defvjp(_blockwise_forward, _blockwise_backward)


QUERY_BLOCK = 256  # queries per block, unless `blockwise_attention` is told otherwise


@typed
def blockwise_attention(query: Float[ArrayLike, "*batch Q heads d"],
                        key: Float[ArrayLike, "*batch K heads d"],
                        value: Float[ArrayLike, "*batch K heads d"], *,
                        block_size: int | None = None) -> Float[Array, "*batch Q heads d"]:
    """`attend(attention_weights(query, key), value)` without keeping the weights.

    Queries go `block_size` (default `QUERY_BLOCK`) at a time, all at once unless Q
    is a multiple of it; the backward pass recomputes each block's weights from the
    log-sum-exp. Same values and gradients as the two einsums, to float32 rounding.
    """
    query, key, value = (jnp.asarray(x) for x in (query, key, value))
    block_size = QUERY_BLOCK if block_size is None else block_size
    if block_size < 1:
        raise ValueError(f"blockwise_attention: block_size must be >= 1, got {block_size}")
    num_queries, leading = query.shape[-3], query.shape[:-3]
    num_blocks = num_queries // block_size if num_queries % block_size == 0 else 1
    flat = lambda x: x.reshape((-1,) + x.shape[-3:])
    out = _blockwise(flat(query), flat(key), flat(value), max(num_blocks, 1))
    return out.reshape(leading + out.shape[1:])


# %% [markdown]
# Check: on 1,024 queries in four blocks, the output and the gradients with
# respect to queries, keys and values equal those of the two einsums (in full
# float32 products, so that a TPU does not round them to bfloat16 first).

# %%
q, k, v, g = (jax.random.normal(jax.random.key(i), (2, n, 3, 8))
              for i, n in enumerate((1024, 96, 96, 1024)))
plain = lambda q, k, v: attend(attention_weights(q, k), v)
with jax.default_matmul_precision("highest"):
    assert blockwise_attention(q, k, v).shape == (2, 1024, 3, 8)
    assert jnp.allclose(plain(q, k, v), blockwise_attention(q, k, v), atol=1e-5)
    grads = [jax.grad(lambda q, k, v, f=f: jnp.vdot(f(q, k, v), g), argnums=(0, 1, 2))(q, k, v)
             for f in (plain, blockwise_attention)]
for a, b in zip(*grads):
    assert jnp.allclose(a, b, atol=1e-4, rtol=1e-4)
print("largest gradient difference:", max(float(jnp.abs(a - b).max()) for a, b in zip(*grads)))

# %% [markdown]
# ## 2. QK-norm: a bounded, learnable sharpness
#
# MooG normalises every query head and every key head with an **RMS norm** over
# the head dimension before taking dot products:
#
# $$\hat q = s_q \odot \frac{q}{\sqrt{\tfrac1d\sum_i q_i^2 + \epsilon}}, \qquad
#   \hat k = s_k \odot \frac{k}{\sqrt{\tfrac1d\sum_i k_i^2 + \epsilon}},$$
#
# with `ε = 1e-6` and learned scales `s_q, s_k` of shape `[d]`, shared by all
# heads. The `1/√d` scaling comes *after* the norm. Two consequences:
#
# 1. After the norm (with unit scales) each head vector has length `√d`, so by
#    Cauchy–Schwarz `|q̂·k̂| / √d ≤ √d`: the logits can no longer grow without
#    bound as the activations grow. Runaway logits that turn the softmax into a
#    one-hot (and its gradient into zero) are a known cause of training
#    instability in large transformers (Dehghani et al., 2023).
# 2. How sharp the attention is becomes a property of the learned scales
#    `s_q ⊙ s_k`, not of the size of the activations — an attention
#    *temperature* that the model learns.
#
# Flax's `nnx.RMSNorm` is exactly this norm (it computes its statistics in
# float32). Check the bound on deliberately huge inputs:

# %%
head_dim = 16
rms = nnx.RMSNorm(head_dim, epsilon=1e-6, rngs=nnx.Rngs(0))
big_q = 1e3 * rng.normal(size=(64, 1, head_dim)).astype(np.float32)
big_k = 1e3 * rng.normal(size=(64, 1, head_dim)).astype(np.float32)
raw_logits = np.einsum("qhd,khd->hqk", big_q, big_k) / np.sqrt(head_dim)
normed_logits = np.einsum("qhd,khd->hqk", rms(big_q), rms(big_k)) / np.sqrt(head_dim)
assert np.allclose(np.linalg.norm(rms(big_q), axis=-1), np.sqrt(head_dim), rtol=1e-4)
assert np.abs(normed_logits).max() <= np.sqrt(head_dim) + 1e-3
print(f"largest |logit| without the norm: {np.abs(raw_logits).max():.3g}, "
      f"with it: {np.abs(normed_logits).max():.3g} (bound √d = {np.sqrt(head_dim):.0f})")

# %% [markdown]
# ## 3. Multi-head attention as an NNX module
#
# The module holds three bias-free projections to `(heads, head_dim)` — query,
# key, value — the two RMS norms, and an output projection *with* bias from
# `(heads, head_dim)` back to the width of the queries. We use
# `nnx.LinearGeneral`, so the kernels have the shapes `[in, heads, head_dim]`
# and `[heads, head_dim, out]` in which the authors' released parameters are
# stored (chapter 12a loads them by name). `qkv_size` is the total width over
# heads: the paper's corrector has `qkv_size = 512` and 8 heads, so
# `head_dim = 64`.
#
# Self-attention is `attention(x)`; cross-attention is `attention(x, kv)`, where
# keys and values come from a second set of vectors of width `kv_size`. The
# keys and values are *not* normalised by a LayerNorm before the projection —
# only by the QK-norm after it. There is no dropout anywhere in MooG.
#
# | attribute | shape (paper corrector) | authors' name |
# |---|---|---|
# | `query`, `key`, `value` | kernel `[512, 8, 64]` | `dense_query`, `dense_key`, `dense_value` |
# | `query_norm`, `key_norm` | scale `[64]` | `norm_query`, `norm_key` |
# | `out` | kernel `[8, 64, 512]`, bias `[512]` | `dense_out` |

# %% [markdown]
# Every projection in this chapter acts on each token alone, so we hand it the
# tokens as one matrix `[M, C]` (M = the product of the leading axes: batch,
# time, tokens) and put the axes back afterwards. The values do not change;
# the backward pass does. A projection's weight gradient is
# `inputs^T · output-gradient`, a sum over *all* leading axes: given
# `[B, N, C]`, XLA on CPU first copies the output gradient into a transposed
# layout and then calls a slower product; given `[B·N, C]` it is one plain
# product. The paper model's train step on two CPU cores (`python
# benchmarks/step.py --preset paper --batch 1 --frames 2 --steps 11`, two runs
# each) went from 2.35–2.45 s to 2.31–2.34 s.

# %%
#| export
def per_token(layer, x, feature_axes: int = 1):
    """`layer(x)` for a layer that acts on each token alone, given the tokens as one
    matrix [M, *features] (M = the product of the leading axes of `x`)."""
    leading = x.shape[:-feature_axes]
    y = layer(x.reshape((-1,) + x.shape[-feature_axes:]))
    return y.reshape(leading + y.shape[1:])


# %% [markdown]
# A second change of the same kind: what the backward pass keeps. Reverse-mode
# differentiation keeps every intermediate array the gradient will need, and
# inside the frame scan (chapter 03) these are stacked for every frame: a
# LayerNorm keeps its centred input, its statistics and its output; the tanh
# GELU keeps four arrays as wide as the MLP. `recompute` keeps only a
# function's inputs and recomputes the rest in the backward pass
# (`jax.checkpoint`): a few elementwise passes more. We use it for the norms
# and the GELU, whose inputs the products beside them keep anyway. At paper
# size the scan then keeps 239 MiB a frame instead of 496; XLA's temporary
# buffer of the T = 8 train step drops from 5.35 to 3.41 GiB (T = 2: 0.92 to
# 0.77), and on two CPU cores that step went from 1.41–1.45× to 1.55× the speed of
# the authors' release (README).

# %%
#| export
def recompute(layer, *args):
    """`layer(*args)` (a function or an NNX module) whose backward pass keeps only
    its inputs and recomputes the rest (`jax.checkpoint`)."""
    if not isinstance(layer, nnx.Module):
        return jax.checkpoint(layer)(*args)
    graphdef, state = nnx.split(layer)
    return jax.checkpoint(lambda state, *a: nnx.merge(graphdef, state)(*a))(state, *args)


# %%
#| export
class MultiHeadAttention(nnx.Module):
    """Multi-head attention with QK-norm (RMS norm of each query and key head).

    Queries of width `query_size` attend to keys/values of width `kv_size`
    (default: the queries themselves, i.e. self-attention). `qkv_size` is the
    total projection width over `num_heads` heads. Kernels: query/key/value
    `[in, heads, head_dim]` without bias; out `[heads, head_dim, query_size]`
    with bias. `dtype` is the compute dtype, `param_dtype` the storage dtype.
    `qk_norm_scale` is the initial value of both RMS norms' learned scales (1,
    as in the paper and the release; chapter 06b's small world starts at 2).
    `compete=True` makes the queries compete for each key (Slot Attention's
    normalisation, §3; a departure from the paper, off by default).
    """

    def __init__(self, query_size: int, kv_size: int | None = None, *, num_heads: int,
                 qkv_size: int, rngs: nnx.Rngs, norm_eps: float = 1e-6, dtype=None,
                 param_dtype=jnp.float32, qk_norm_scale: float = 1.0, compete: bool = False):
        if num_heads < 1 or qkv_size % num_heads:
            raise ValueError(f"MultiHeadAttention: qkv_size ({qkv_size}) must be a positive "
                             f"multiple of num_heads ({num_heads})")
        kv_size = query_size if kv_size is None else kv_size
        self.num_heads, self.head_dim = num_heads, qkv_size // num_heads
        self.compete = compete
        project = functools.partial(nnx.LinearGeneral, out_features=(num_heads, self.head_dim),
                                    use_bias=False, rngs=rngs, dtype=dtype,
                                    param_dtype=param_dtype)
        self.query = project(query_size)
        self.key = project(kv_size)
        self.value = project(kv_size)
        norm = functools.partial(nnx.RMSNorm, self.head_dim, epsilon=norm_eps, rngs=rngs,
                                 dtype=dtype, param_dtype=param_dtype,
                                 scale_init=nnx.initializers.constant(qk_norm_scale))
        self.query_norm = norm()
        self.key_norm = norm()
        self.out = nnx.LinearGeneral((num_heads, self.head_dim), query_size, axis=(-2, -1),
                                     use_bias=True, rngs=rngs, dtype=dtype,
                                     param_dtype=param_dtype)

    @typed
    def __call__(self, x: Float[ArrayLike, "*batch Q C"],
                 kv: Float[ArrayLike, "*batch K C_kv"] | None = None, *,
                 return_attention: bool = False,
                 ) -> Float[Array, "*batch Q C"] | tuple[Float[Array, "*batch Q C"],
                                                       Float[Array, "*batch heads Q K"]]:
        """x [..., Q, query_size], kv [..., K, kv_size] (None: x) -> [..., Q, query_size].

        With `return_attention=True` returns `(output, weights)`, weights
        float32 [..., heads, Q, K]; otherwise the weights are never built
        (`blockwise_attention`; competition needs them).
        """
        kv = x if kv is None else kv
        query = recompute(self.query_norm, per_token(self.query, x))
        key = recompute(self.key_norm, per_token(self.key, kv))
        value = per_token(self.value, kv)
        if not (return_attention or self.compete):
            return per_token(self.out, blockwise_attention(query, key, value), 2)
        weights = attention_weights(query, key, compete=self.compete)
        output = per_token(self.out, attend(weights, value), 2)
        return (output, weights) if return_attention else output


# %% [markdown]
# Shapes, and the weights being a distribution, on a batch of two sets of 5
# queries attending to 9 key/value tokens:

# %%
attention = MultiHeadAttention(32, kv_size=24, num_heads=4, qkv_size=64, rngs=nnx.Rngs(0))
x = jax.random.normal(jax.random.key(1), (2, 5, 32))
kv = jax.random.normal(jax.random.key(2), (2, 9, 24))
out, weights = attention(x, kv, return_attention=True)
assert out.shape == (2, 5, 32) and weights.shape == (2, 4, 5, 9)
assert jnp.allclose(weights.sum(-1), 1.0, atol=1e-5)
assert attention.query.kernel[...].shape == (32, 4, 16)
assert attention.key.kernel[...].shape == (24, 4, 16)
assert attention.out.kernel[...].shape == (4, 16, 32) and attention.out.bias[...].shape == (32,)
assert attention.query_norm.scale[...].shape == (16,)
self_attention = MultiHeadAttention(32, num_heads=4, qkv_size=64, rngs=nnx.Rngs(0))
assert self_attention(x).shape == (2, 5, 32)  # self-attention: kv defaults to x
print(jax.tree.map(jnp.shape, nnx.state(attention, nnx.Param)))

# %% [markdown]
# **How sharp can attention be at the start?** With QK-norm every query and
# key head has RMS 1, so a logit `q·k / sqrt(d)` is at most `sqrt(d)` times
# the product of the two norms' learned scales: 4 for `d = 16` at
# initialisation, however the kernels are drawn. Attention can only sharpen
# as fast as those scales grow. `qk_norm_scale` (default 1, the paper's)
# starts both scales higher; the `cpu` preset starts them at 2, so logits
# may reach 4× further from the first step (a departure for small worlds,
# measured in chapter 06b's study).

# %%
sharp = MultiHeadAttention(32, kv_size=24, num_heads=4, qkv_size=64, rngs=nnx.Rngs(0),
                           qk_norm_scale=2.0)
_, sharp_weights = sharp(x, kv, return_attention=True)
entropy = lambda w: float(-(w * jnp.log(w)).sum(-1).mean())
print(f"mean attention entropy: scale 1 {entropy(weights):.3f}, scale 2 {entropy(sharp_weights):.3f} "
      f"(uniform over 9 keys: {math.log(9):.3f})")
assert entropy(sharp_weights) < entropy(weights)

# %% [markdown]
# ### A toy example you can read
#
# To *see* what attention does, give the tokens positions on a line. Twelve key
# tokens sit at positions in `[-0.9, 0.9]` and carry the 1-D Fourier features
# of chapter 01 as their content (4 bases, 8 numbers). Five queries sit at
# their own positions and carry the Fourier features of those. We set the query
# and key kernels to the identity by hand (one head, `head_dim = 8`), so the
# logit between a query and a key is the dot product of their Fourier
# features, which is largest when the two positions coincide. Then we vary the
# scale of the two RMS norms — the learned temperature of §2.

# %%
from moog_lib import fourier

key_positions = jnp.linspace(-0.9, 0.9, 12)[:, None]  # [12, 1]
query_positions = jnp.array([-0.75, -0.3, 0.03, 0.45, 0.8])[:, None]  # [5, 1]
keys_in = fourier.fourier_features(key_positions, num_bases=4)  # [12, 8]
queries_in = fourier.fourier_features(query_positions, num_bases=4)  # [5, 8]

toy = MultiHeadAttention(8, num_heads=1, qkv_size=8, rngs=nnx.Rngs(0))
toy.query.kernel[...] = jnp.eye(8)[:, None, :]  # [in=8, heads=1, head_dim=8]
toy.key.kernel[...] = jnp.eye(8)[:, None, :]

import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 3, figsize=(13, 2.8), sharey=True)
maps = {}
for ax, scale in zip(axes, [0.5, 1.0, 2.0]):
    toy.query_norm.scale[...] = jnp.full(8, scale)
    toy.key_norm.scale[...] = jnp.full(8, scale)
    _, w = toy(queries_in, keys_in, return_attention=True)
    maps[scale] = w[0]  # [5 queries, 12 keys]
    ax.imshow(w[0], cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(12), [f"{p:.1f}" for p in key_positions[:, 0]], fontsize=7, rotation=90)
    ax.set_yticks(range(5), [f"{p:.2f}" for p in query_positions[:, 0]])
    ax.set_title(f"norm scales = {scale}")
    ax.set_xlabel("key position")
axes[0].set_ylabel("query position")
fig.suptitle("Attention weights of 5 queries over 12 keys (rows sum to one)", y=1.04)
plt.show()

# %% [markdown]
# Every query puts its largest weight on the nearest key, and the learned
# scale alone decides whether it reads one key or a neighbourhood. Check both
# statements:

# %%
nearest = jnp.abs(query_positions - key_positions.T).argmin(-1)
for scale, w in maps.items():
    assert (w.argmax(-1) == nearest).all(), scale
    assert jnp.allclose(w.sum(-1), 1.0, atol=1e-5)
assert (maps[2.0].max(-1) > maps[0.5].max(-1)).all()  # larger scales, sharper attention
print("peak weight per query, scale 0.5:", np.round(maps[0.5].max(-1), 2))
print("peak weight per query, scale 2.0:", np.round(maps[2.0].max(-1), 2))

# %% [markdown]
# ### Competition: when the queries share out the keys (a switch)
#
# In MooG's attention every *query* distributes one unit of weight over the
# keys; nothing stops two queries from reading the same keys. Slot Attention
# (Locatello et al., 2020), and SAVi after it for video (Kipf et al., 2022),
# turn the softmax around: for every key the weights over the *queries* sum to
# one, so the queries compete for each input, and each query then takes the
# weighted mean of the inputs it won:
#
# $$w_{hqk} = \frac{a_{hqk}}{\sum_{k'} a_{hqk'}}, \qquad
#   a_{hqk} = \operatorname{softmax}_q(\text{logits}_{hqk}).$$
#
# Every key is then claimed, shared out among the queries in proportion to how
# well each matches it, and the queries are no longer independent: what one
# query reads depends on what the others want. MooG's paper does not use it;
# `compete=True` is a departure, off by default, that chapter 06b's small world
# measures in the corrector's cross-attention (`model.corrector_competition`).
# The check: add a copy of query 0. Without competition query 1 reads exactly
# what it read before; with competition the copy takes a share of every key
# query 0 claimed, so query 1's weights move.

# %%
pair = 3 * queries_in[jnp.array([1, 3])][:, None]  # positions -0.3 and 0.45, [2, heads=1, 8]
with_copy = jnp.concatenate([pair[:1], pair])  # query 0 twice, then query 1
for compete in (False, True):
    alone = attention_weights(pair, keys_in[:, None], compete=compete)[0, 1]
    beside_copy = attention_weights(with_copy, keys_in[:, None], compete=compete)[0, 2]
    change = float(jnp.abs(alone - beside_copy).sum())
    print(f"compete={compete!s:5}: query 1's weights move by {change:.3f} (L1) when query 0 is copied")
    assert (change < 1e-6) == (not compete)
    assert jnp.allclose(beside_copy.sum(), 1.0, atol=1e-5)  # still a mean over keys

# %% [markdown]
# ## 4. The block: pre-LN with parallel attention paths
#
# A MooG block takes a set of tokens `x` (and optionally a second set `kv`) and
# applies
#
# ```
# h = LN_attn(x)
# x = x + SelfAttn(h) + CrossAttn(h, kv)      # the two paths run in parallel
# x = x + MLP(LN_mlp(x))
# ```
#
# - **Pre-LN**: the norms sit at the start of each residual branch, so the
#   residual stream itself is never normalised inside the stack (a final LN
#   comes after the last block).
# - **Parallel paths**: self- and cross-attention read the *same* normalised
#   `h`, and their outputs are summed into one residual update — instead of the
#   sequential "self, then cross" of the original Transformer decoder.
# - The LNs have a scale but **no bias**, `ε = 1e-6`. `kv` is used raw.
# - The MLP is `Dense(mlp_size) → GELU (tanh approximation) → Dense(width)`,
#   with biases.
# - A *cross-attention-only* block drops the self path (the decoder and the
#   readouts use these: pixels and query points should not talk to each
#   other); a block built without a `kv` width has no cross path (the
#   predictor).
#
# | attribute | authors' name | what it is |
# |---|---|---|
# | `attention_norm` | `norm_q` | LN before both attention paths |
# | `self_attention` | `self_att` | `MultiHeadAttention` on `h` |
# | `cross_attention` | `cross_att` | `MultiHeadAttention` from `h` to `kv` |
# | `mlp_norm` | `norm_attn` | LN before the MLP |
# | `mlp_in`, `mlp_out` | `MLP_in`, `MLP_out` | the two MLP layers |

# %%
#| export
def scale_only_norm(width: int, eps: float, rngs: nnx.Rngs, dtype, param_dtype) -> nnx.LayerNorm:
    """A LayerNorm with a learned scale and no bias: every LayerNorm of MooG."""
    return nnx.LayerNorm(width, epsilon=eps, use_bias=False, use_scale=True, rngs=rngs,
                         dtype=dtype, param_dtype=param_dtype)


class TransformerBlock(nnx.Module):
    """Pre-LN block, parallel self/cross attention: x += SA(LN x) + XA(LN x, kv); x += MLP(LN x).

    `kv_size=None` builds no cross-attention; `self_attention=False` builds no
    self-attention (a cross-attention-only block). LNs: scale only, eps 1e-6.
    `cross_compete=True`: the cross-attention's queries compete for its keys
    (Slot Attention's normalisation, §3; off by default).
    """

    def __init__(self, width: int, *, num_heads: int, qkv_size: int, mlp_size: int,
                 kv_size: int | None = None, self_attention: bool = True, rngs: nnx.Rngs,
                 norm_eps: float = 1e-6, dtype=None, param_dtype=jnp.float32,
                 qk_norm_scale: float = 1.0, cross_compete: bool = False):
        if not self_attention and kv_size is None:
            raise ValueError("TransformerBlock: a block without self-attention needs kv_size "
                             "(the width of the tokens it cross-attends to)")
        attention = functools.partial(MultiHeadAttention, width, num_heads=num_heads,
                                      qkv_size=qkv_size, rngs=rngs, dtype=dtype,
                                      param_dtype=param_dtype, qk_norm_scale=qk_norm_scale)
        dense = functools.partial(nnx.Linear, rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        self.attention_norm = scale_only_norm(width, norm_eps, rngs, dtype, param_dtype)
        self.self_attention = attention() if self_attention else None
        self.cross_attention = (attention(kv_size, compete=cross_compete)
                                if kv_size is not None else None)
        self.mlp_norm = scale_only_norm(width, norm_eps, rngs, dtype, param_dtype)
        self.mlp_in = dense(width, mlp_size)
        self.mlp_out = dense(mlp_size, width)

    @typed
    def __call__(self, x: Float[ArrayLike, "*batch N C"],
                 kv: Float[ArrayLike, "*batch K C_kv"] | None = None, *,
                 return_attention: bool = False,
                 ) -> Float[Array, "*batch N C"] | tuple[Float[Array, "*batch N C"], dict]:
        """x [..., N, width], kv [..., K, kv_size] -> [..., N, width].

        With `return_attention=True` returns `(x, weights)` where weights is a
        dict with "self" [..., heads, N, N] and/or "cross" [..., heads, N, K].
        """
        if self.cross_attention is not None and kv is None:
            raise ValueError("TransformerBlock: this block cross-attends; pass kv [..., K, kv_size]")
        if self.cross_attention is None and kv is not None:
            raise ValueError("TransformerBlock: this block has no cross-attention; kv must be None")
        h = recompute(self.attention_norm, x)
        update, weights = 0, {}
        if self.self_attention is not None:
            out = self.self_attention(h, return_attention=return_attention)
            if return_attention:
                out, weights["self"] = out
            update = update + out
        if self.cross_attention is not None:
            out = self.cross_attention(h, kv, return_attention=return_attention)
            if return_attention:
                out, weights["cross"] = out
            update = update + out
        x = x + update
        x = x + per_token(self.mlp, recompute(self.mlp_norm, x))
        return (x, weights) if return_attention else x

    def mlp(self, h: jax.Array) -> jax.Array:
        """Dense(mlp_size) → GELU (tanh approximation) → Dense(width), per token."""
        return self.mlp_out(recompute(lambda u: jax.nn.gelu(u, approximate=True), self.mlp_in(h)))


# %% [markdown]
# The three flavours side by side. A cross-attention-only block has no
# self-attention parameters at all, and refuses to run without `kv`:

# %%
def param_names(module) -> set[str]:
    """The dotted paths of every parameter of an NNX module."""
    flat = nnx.to_flat_state(nnx.state(module, nnx.Param))
    return {".".join(map(str, path)) for path, _ in flat}


both = TransformerBlock(32, num_heads=2, qkv_size=16, mlp_size=64, kv_size=24, rngs=nnx.Rngs(0))
self_only = TransformerBlock(32, num_heads=2, qkv_size=16, mlp_size=64, rngs=nnx.Rngs(0))
cross_only = TransformerBlock(32, num_heads=2, qkv_size=16, mlp_size=64, kv_size=24,
                              self_attention=False, rngs=nnx.Rngs(0))
assert both(x, kv).shape == self_only(x).shape == cross_only(x, kv).shape == (2, 5, 32)
assert not any(n.startswith("self_attention") for n in param_names(cross_only))
assert not any(n.startswith("cross_attention") for n in param_names(self_only))
_, w = both(x, kv, return_attention=True)
assert w["self"].shape == (2, 2, 5, 5) and w["cross"].shape == (2, 2, 5, 9)
try:
    cross_only(x)
except ValueError as err:
    print("caught:", err)
print(sorted(param_names(both)))

# %% [markdown]
# The parallel form is not a notational trick: the cross path must see the
# normalised input `h`, not the output of the self path. Check it by
# recomputing the block by hand from its parts:

# %%
h = both.attention_norm(x)
by_hand = x + both.self_attention(h) + both.cross_attention(h, kv)
by_hand = by_hand + both.mlp_out(jax.nn.gelu(both.mlp_in(both.mlp_norm(by_hand))))
assert jnp.allclose(both(x, kv), by_hand, atol=1e-5)

# %% [markdown]
# ## 5. The transformer
#
# A transformer is an optional input `Dense` to `hidden_size`, `N` blocks, a
# final scale-only LN, and — if the blocks' width differs from the width we
# want out (the input width, or an explicit `output_size`) — a final `Dense`
# to it. MooG uses three configurations of it (the paper's sizes, as the authors'
# release configures them in `moog/configs/movi.py`):
#
# | role | layers | paths | heads × head_dim | MLP | width | kv width |
# |---|---|---|---|---|---|---|
# | predictor `P` | 3 | self | 4 × 64 | 2048 | 512 | — |
# | corrector `C` | 2 | self ∥ cross | 8 × 64 | 2048 | 512 | 512 |
# | decoder | 6 | cross only | 2 × 64 | 2048 | 576 | 512 |
#
# (The decoder's width 576 is that of its queries, built in chapter 04: 512 zeros
# followed by the 64 Fourier features — 2 coordinates × 16 bases × sin, cos — of
# the pixel's position.)
#
# `return_attention=True` also returns every layer's weights, stacked over
# layers: `{"self": [layers, ..., heads, N, N], "cross": [layers, ..., heads, N, K]}`
# (whichever paths exist). The paper's token attention maps average the
# decoder's cross weights over layers and heads (chapter 04).
#
# The remaining names, for chapter 12a: `input_dense` and `output_dense` are
# the two optional Denses, `layers[i]` is the authors' `layer_i`, and
# `final_norm` their `norm_encoder`.

# %%
#| export
class Transformer(nnx.Module):
    """A stack of `TransformerBlock`s: [input Dense] → blocks → final LN → [output Dense].

    - `hidden_size`: if given, an input Dense maps `input_size` to it and the
      blocks run at that width; otherwise they run at `input_size`.
    - `output_size` (default `input_size`): if it differs from the blocks'
      width, a final Dense maps to it.
    - `kv_size`: the width of the tokens to cross-attend to (None: no
      cross-attention). `cross_attention_only=True` drops self-attention;
      `cross_compete=True` makes every layer's cross-attention competitive (§3).
    """

    def __init__(self, input_size: int, *, num_layers: int, num_heads: int, qkv_size: int,
                 mlp_size: int, kv_size: int | None = None, hidden_size: int | None = None,
                 output_size: int | None = None, cross_attention_only: bool = False,
                 rngs: nnx.Rngs, norm_eps: float = 1e-6, dtype=None,
                 param_dtype=jnp.float32, qk_norm_scale: float = 1.0,
                 cross_compete: bool = False):
        if cross_attention_only and kv_size is None:
            raise ValueError("Transformer: cross_attention_only=True needs kv_size")
        if num_layers < 0:
            raise ValueError(f"Transformer: num_layers must be >= 0, got {num_layers}")
        dense = functools.partial(nnx.Linear, rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        width = input_size if hidden_size is None else hidden_size
        output_size = input_size if output_size is None else output_size
        self.input_dense = dense(input_size, width) if hidden_size is not None else None
        self.layers = nnx.data([
            TransformerBlock(width, num_heads=num_heads, qkv_size=qkv_size, mlp_size=mlp_size,
                             kv_size=kv_size, self_attention=not cross_attention_only,
                             rngs=rngs, norm_eps=norm_eps, dtype=dtype, param_dtype=param_dtype,
                             qk_norm_scale=qk_norm_scale, cross_compete=cross_compete)
            for _ in range(num_layers)
        ])
        self.final_norm = scale_only_norm(width, norm_eps, rngs, dtype, param_dtype)
        self.output_dense = dense(width, output_size) if output_size != width else None

    @classmethod
    def from_config(cls, input_size: int, config, **kwargs) -> "Transformer":
        """Build from any object with `num_layers, num_heads, qkv_size, mlp_size`
        (e.g. `configs.TransformerConfig`); `kwargs` go to `__init__`."""
        return cls(input_size, num_layers=config.num_layers, num_heads=config.num_heads,
                   qkv_size=config.qkv_size, mlp_size=config.mlp_size, **kwargs)

    @typed
    def __call__(self, x: Float[ArrayLike, "*batch N C_in"],
                 kv: Float[ArrayLike, "*batch K C_kv"] | None = None, *,
                 return_attention: bool = False,
                 ) -> Float[Array, "*batch N C_out"] | tuple[Float[Array, "*batch N C_out"], dict]:
        """x [..., N, input_size], kv [..., K, kv_size] -> [..., N, output_size].

        With `return_attention=True` returns `(output, weights)`, weights a dict
        with "self" and/or "cross", each float32 [num_layers, ..., heads, N, N or K].
        """
        if self.input_dense is not None:
            x = per_token(self.input_dense, x)
        per_layer = []
        for layer in self.layers:
            x = layer(x, kv, return_attention=return_attention)
            if return_attention:
                x, weights = x
                per_layer.append(weights)
        x = recompute(self.final_norm, x)
        if self.output_dense is not None:
            x = per_token(self.output_dense, x)
        if not return_attention:
            return x
        stacked = jax.tree.map(lambda *ws: jnp.stack(ws), *per_layer) if per_layer else {}
        return x, stacked


# %% [markdown]
# Small versions of MooG's three transformers, with their outputs and
# attention maps. Note the decoder-like one: its queries are 40 wide, its keys
# 32 wide, and it cross-attends only.

# %%
tokens = jax.random.normal(jax.random.key(3), (2, 16, 32))  # a state: B=2, K=16, D=32
features = jax.random.normal(jax.random.key(4), (2, 25, 32))  # encoder features of a frame
pixels = jax.random.normal(jax.random.key(5), (2, 64, 40))  # 64 pixel queries of width 40

predictor = Transformer(32, num_layers=3, num_heads=4, qkv_size=32, mlp_size=64, rngs=nnx.Rngs(0))
corrector = Transformer(32, num_layers=2, num_heads=4, qkv_size=32, mlp_size=64, kv_size=32,
                        rngs=nnx.Rngs(1))
decoder = Transformer(40, num_layers=2, num_heads=2, qkv_size=16, mlp_size=64, kv_size=32,
                      cross_attention_only=True, rngs=nnx.Rngs(2))

# nnx.jit compiles the whole call into one XLA program: faster than running op by op.
run = nnx.jit(lambda module, *inputs: module(*inputs, return_attention=True))
out, w = run(predictor, tokens)
assert out.shape == (2, 16, 32) and set(w) == {"self"} and w["self"].shape == (3, 2, 4, 16, 16)
out, w = run(corrector, tokens, features)
assert set(w) == {"self", "cross"} and w["cross"].shape == (2, 2, 4, 16, 25)
out, w = run(decoder, pixels, tokens)
assert out.shape == (2, 64, 40) and set(w) == {"cross"} and w["cross"].shape == (2, 2, 2, 64, 16)
assert decoder.input_dense is None and decoder.output_dense is None
narrow = Transformer(40, num_layers=1, num_heads=2, qkv_size=16, mlp_size=64, hidden_size=24,
                     output_size=3, rngs=nnx.Rngs(0))
assert narrow(pixels).shape == (2, 64, 3) and narrow.output_dense.kernel[...].shape == (24, 3)

# %% [markdown]
# Which token does each of the 64 pixel queries read most, averaged over the
# decoder's layers and heads? With random weights the map is noise, but this is
# exactly the computation behind the paper's token attention figures
# (chapter 11 makes them on a trained model):

# %%
mean_map = w["cross"].mean(axis=(0, 2))  # [B, 64 queries, 16 tokens]
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
axes[0].imshow(mean_map[0], aspect="auto", cmap="viridis", interpolation="nearest")
axes[0].set(title="decoder cross-attention (mean over layers, heads)", xlabel="token",
            ylabel="pixel query")
axes[1].imshow(mean_map[0].argmax(-1).reshape(8, 8), cmap="tab20")
axes[1].set(title="argmax token per pixel (8×8 queries)")
plt.tight_layout()
plt.show()
assert jnp.allclose(mean_map.sum(-1), 1.0, atol=1e-5)  # an average of distributions is one

# %% [markdown]
# ### Counting the paper's parameters without allocating them
#
# `nnx.eval_shape` builds a module abstractly: every parameter is a
# `ShapeDtypeStruct`, nothing is initialised or stored. It is the cheap way to
# check the paper's sizes — the three numbers below are those of the authors'
# released model (`moog/configs/movi.py`), summed array by array.

# %%
def count_params(module) -> int:
    """The number of parameters of an NNX module (works on `nnx.eval_shape` modules too)."""
    return sum(math.prod(p.shape) for p in jax.tree.leaves(nnx.state(module, nnx.Param)))


paper_sizes = {
    "corrector": (dict(input_size=512, num_layers=2, num_heads=8, qkv_size=512, mlp_size=2048,
                       kv_size=512), 8_398_848),
    "predictor": (dict(input_size=512, num_layers=3, num_heads=4, qkv_size=256, mlp_size=2048),
                  7_877_504),
    "decoder": (dict(input_size=576, num_layers=6, num_heads=2, qkv_size=128, mlp_size=2048,
                     kv_size=512, cross_attention_only=True), 15_854_400),
}
for name, (kwargs, expected) in paper_sizes.items():
    abstract = nnx.eval_shape(lambda kwargs=kwargs: Transformer(rngs=nnx.Rngs(0), **kwargs))
    assert count_params(abstract) == expected, (name, count_params(abstract))
    print(f"{name:10s} {count_params(abstract):>11,} parameters")

# %% [markdown]
# Where do they come from? One corrector layer has two attention modules of
# `3·512·512` (q, k, v) `+ 512·512 + 512` (out) `+ 2·64` (QK-norm) parameters
# each, two LN scales of 512, and an MLP of `512·2048 + 2048 + 2048·512 + 512`.
# Two layers and a final LN scale:

# %%
attention_params = 3 * 512 * 512 + 512 * 512 + 512 + 2 * 64
mlp_params = 512 * 2048 + 2048 + 2048 * 512 + 512
assert 2 * (2 * attention_params + 2 * 512 + mlp_params) + 512 == 8_398_848

# %% [markdown]
# ### Compute dtype and parameter dtype
#
# Every module takes `dtype` (the dtype the computation runs in) and
# `param_dtype` (the dtype parameters are stored in, float32). On a TPU MooG
# computes in bfloat16 with float32 parameters; on a CPU float32 is faster and
# exact. The attention weights stay float32 either way. A model built from a
# config resolves its compute dtype one way, `resolve_dtype`: the `dtype`
# passed in, else the config's `compute_dtype`.

# %%
#| export
def resolve_dtype(dtype, default: str) -> jnp.dtype:
    """The compute dtype: `dtype` if given, else `default` (a config's `compute_dtype`)."""
    return jnp.dtype(default if dtype is None else dtype)


assert resolve_dtype(None, "bfloat16") == jnp.bfloat16 and resolve_dtype("float32", "bfloat16") == jnp.float32

# %%
half = Transformer(32, num_layers=1, num_heads=4, qkv_size=32, mlp_size=64, kv_size=32,
                   rngs=nnx.Rngs(1), dtype=jnp.bfloat16)
full = Transformer(32, num_layers=1, num_heads=4, qkv_size=32, mlp_size=64, kv_size=32,
                   rngs=nnx.Rngs(1))
out_half, w_half = half(tokens, features, return_attention=True)
assert out_half.dtype == jnp.bfloat16 and w_half["cross"].dtype == jnp.float32
assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(nnx.state(half, nnx.Param)))
error = jnp.abs(out_half.astype(jnp.float32) - full(tokens, features)).max()
print(f"largest bfloat16 vs float32 difference: {error:.3f} (outputs have unit scale)")
assert error < 0.1

# %% [markdown]
# ## Summary
#
# - `attention_weights(q, k)` is `softmax_k((q/√d)·k)` over keys, in float32;
#   `attend(w, v)` averages the values.
# - `MultiHeadAttention` projects without bias to `(heads, head_dim)`,
#   RMS-normalises every query and key head (QK-norm, `ε = 1e-6`, scale shared
#   by heads), attends, and projects back with a bias. QK-norm bounds the
#   logits by `√d · max|s_q ⊙ s_k|` and turns the sharpness of attention into a
#   learned parameter.
# - `TransformerBlock` is pre-LN with parallel self- and cross-attention paths
#   and a GELU MLP; LNs have a scale and no bias. Cross-only blocks have no
#   self-attention parameters.
# - `Transformer` stacks blocks between an optional input Dense and a final
#   LN (+ an optional output Dense); `return_attention=True` returns every
#   layer's and head's weights.
# - The paper's corrector, predictor and decoder transformers have 8,398,848,
#   7,877,504 and 15,854,400 parameters.
#
# ## Exercises
#
# 1. ★ Show that QK-norm makes attention weights *invariant to the scale of the
#    input*: multiplying `x` by 100 leaves `MultiHeadAttention`'s weights
#    unchanged (up to `ε`), while plain attention without the norms saturates
#    towards one-hot weights.
# 2. ★★ The paper's blocks are *parallel*. Write the sequential variant
#    (`x += SA(LN x)`, then `x += XA(LN' x, kv)`, then the MLP) using the
#    modules of a `TransformerBlock`, and measure how far its output is from the
#    parallel block's at initialisation. Could you load weights trained with
#    one form into the other?
# 3. ★★★ Memory: the weights of one decoder layer at 128×128 dense decoding are
#    `heads · 16384 · 1024` floats (128 MB). Implement cross-attention that
#    processes the keys in chunks with a running maximum and a running sum (the
#    "online softmax" of FlashAttention), never holding more than one chunk of
#    logits, and check it reproduces `MultiHeadAttention` exactly. (§1's
#    `blockwise_attention` splits the queries; each of its blocks still holds
#    the logits of all the keys.)

# %% [markdown]
# ### Solution 1

# %%
layer = MultiHeadAttention(32, num_heads=2, qkv_size=16, rngs=nnx.Rngs(7))
_, w1 = layer(tokens, return_attention=True)
_, w100 = layer(100.0 * tokens, return_attention=True)
assert jnp.allclose(w1, w100, atol=1e-4)


def plain_weights(module, x):
    """The same projections without the QK-norm."""
    return attention_weights(module.query(x), module.key(x))


entropy = lambda w: float(-(w * jnp.log(w + 1e-12)).sum(-1).mean())
print(f"with QK-norm, entropy at scale 1 and 100: {entropy(w1):.3f}, {entropy(w100):.3f}")
print(f"without it:  entropy at scale 1 and 100: {entropy(plain_weights(layer, tokens)):.3f}, "
      f"{entropy(plain_weights(layer, 100.0 * tokens)):.3f}")
assert entropy(plain_weights(layer, 100.0 * tokens)) < 0.1 * entropy(w1)

# %% [markdown]
# ### Solution 2

# %%
def sequential_block(block, x, kv):
    x = x + block.self_attention(block.attention_norm(x))
    x = x + block.cross_attention(block.attention_norm(x), kv)  # reuses the LN's scale
    return x + block.mlp_out(jax.nn.gelu(block.mlp_in(block.mlp_norm(x))))


gap = jnp.abs(sequential_block(both, x, kv) - both(x, kv)).max()
output_rms = float(jnp.sqrt((both(x, kv) ** 2).mean()))
print(f"largest difference sequential vs parallel at init: {gap:.3f} (output RMS {output_rms:.2f})")
assert gap > 0.01
# The cross path sees LN(x + SA(h)) instead of h, and SA(h) is not small next to
# x (both have unit scale), so the difference is of the order of the attention
# updates themselves. The two forms are different models: weights trained with
# one do not compute the same function in the other, which is why chapter 12's
# Ego4D model must follow the release's (parallel) form.

# %% [markdown]
# ### Solution 3

# %%
def chunked_cross_attention(module, x, kv, chunk: int):
    """MultiHeadAttention(x, kv) with the keys processed `chunk` at a time."""
    query = module.query_norm(module.query(x)) / math.sqrt(module.head_dim)
    key, value = module.key_norm(module.key(kv)), module.value(kv)
    shape = x.shape[:-1] + (module.num_heads,)  # [..., Q, heads]
    running_max = jnp.full(shape, -jnp.inf)
    running_sum = jnp.zeros(shape)
    accumulated = jnp.zeros(shape + (module.head_dim,))
    for start in range(0, kv.shape[-2], chunk):
        k, v = key[..., start:start + chunk, :, :], value[..., start:start + chunk, :, :]
        logits = jnp.einsum("...qhd,...khd->...qhk", query, k)
        new_max = jnp.maximum(running_max, logits.max(-1))
        correction = jnp.exp(running_max - new_max)
        p = jnp.exp(logits - new_max[..., None])
        running_sum = running_sum * correction + p.sum(-1)
        accumulated = accumulated * correction[..., None] + jnp.einsum("...qhk,...khd->...qhd", p, v)
        running_max = new_max
    return module.out(accumulated / running_sum[..., None])


cross = MultiHeadAttention(40, kv_size=32, num_heads=2, qkv_size=16, rngs=nnx.Rngs(3))
assert jnp.allclose(chunked_cross_attention(cross, pixels, tokens, chunk=5), cross(pixels, tokens),
                    atol=1e-5)
print("online-softmax attention matches, with at most 5 keys of logits at a time")

# %% [markdown]
# ## References
#
# - S. van Steenkiste et al. *Moving Off-the-Grid: Scene-Grounded Video
#   Representations.* NeurIPS 2024 (Appendix C: transformer sizes).
# - F. Locatello et al. *Object-Centric Learning with Slot Attention.*
#   NeurIPS 2020 (the softmax over slots, §3's switch).
# - T. Kipf et al. *Conditional Object-Centric Learning from Video.* ICLR 2022
#   (SAVi: Slot Attention as the corrector of a predict–correct loop).
# - A. Vaswani et al. *Attention Is All You Need.* NeurIPS 2017.
# - M. Dehghani et al. *Scaling Vision Transformers to 22 Billion Parameters.*
#   ICML 2023 (QK-norm and parallel attention/MLP layers).
# - A. Henry et al. *Query-Key Normalization for Transformers.* Findings of
#   EMNLP 2020.
# - R. Xiong et al. *On Layer Normalization in the Transformer Architecture.*
#   ICML 2020 (pre-LN).
# - T. Dao et al. *FlashAttention.* NeurIPS 2022 (§1's blockwise attention
#   and its backward pass; the online softmax of exercise 3); M. Milakov and N. Gimelshein, *Online normalizer calculation
#   for softmax*, 2018.
# - A. Rush. *The Annotated Transformer.*
