"""Attention and the transformer.

`attention_weights` and `attend` (scaled dot-product attention with QK-norm),
`blockwise_attention` (the same without keeping the weights), `MultiHeadAttention`,
the pre-LN `TransformerBlock` with parallel self- and cross-attention paths, and
`Transformer`, a stack of blocks.

Generated from chapters/02_attention.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "attention_weights",
    "attend",
    "QUERY_BLOCK",
    "blockwise_attention",
    "per_token",
    "recompute",
    "MultiHeadAttention",
    "scale_only_norm",
    "TransformerBlock",
    "Transformer",
    "resolve_dtype",
]


import functools
import math

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, ArrayLike, Float

from moog_lib.shapes import typed


# chapters/02_attention.py, cell 5
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


# chapters/02_attention.py, cell 9
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


# chapters/02_attention.py, cell 11
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


# chapters/02_attention.py, cell 18
def per_token(layer, x, feature_axes: int = 1):
    """`layer(x)` for a layer that acts on each token alone, given the tokens as one
    matrix [M, *features] (M = the product of the leading axes of `x`)."""
    leading = x.shape[:-feature_axes]
    y = layer(x.reshape((-1,) + x.shape[-feature_axes:]))
    return y.reshape(leading + y.shape[1:])


# chapters/02_attention.py, cell 20
def recompute(layer, *args):
    """`layer(*args)` (a function or an NNX module) whose backward pass keeps only
    its inputs and recomputes the rest (`jax.checkpoint`)."""
    if not isinstance(layer, nnx.Module):
        return jax.checkpoint(layer)(*args)
    graphdef, state = nnx.split(layer)
    return jax.checkpoint(lambda state, *a: nnx.merge(graphdef, state)(*a))(state, *args)


# chapters/02_attention.py, cell 21
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


# chapters/02_attention.py, cell 33
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


# chapters/02_attention.py, cell 39
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


# chapters/02_attention.py, cell 49
def resolve_dtype(dtype, default: str) -> jnp.dtype:
    """The compute dtype: `dtype` if given, else `default` (a config's `compute_dtype`)."""
    return jnp.dtype(default if dtype is None else dtype)


assert resolve_dtype(None, "bfloat16") == jnp.bfloat16 and resolve_dtype("float32", "bfloat16") == jnp.float32
