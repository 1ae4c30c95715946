"""moog_lib.attention: shapes, invariances, a hand-computed case and the paper's sizes."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from moog_lib import attention


def _count(module) -> int:
    return sum(math.prod(p.shape) for p in jax.tree.leaves(nnx.state(module, nnx.Param)))


def _shapes(module) -> dict[str, tuple]:
    """Parameter path -> shape; works on `nnx.eval_shape` modules too."""
    flat = nnx.to_flat_state(nnx.state(module, nnx.Param))
    return {".".join(map(str, path)): jax.tree.leaves(v)[0].shape for path, v in flat}


def _names(module) -> set[str]:
    return set(_shapes(module))


# One XLA program per call is much faster to compile than running op by op.
_apply = nnx.jit(lambda module, *args: module(*args))
_apply_weights = nnx.jit(lambda module, *args: module(*args, return_attention=True))


@pytest.fixture(scope="module")
def inputs():
    x = jax.random.normal(jax.random.key(0), (2, 6, 16))
    kv = jax.random.normal(jax.random.key(1), (2, 9, 12))
    return x, kv


def test_multi_head_attention_shapes(inputs):
    x, kv = inputs
    mha = attention.MultiHeadAttention(16, kv_size=12, num_heads=2, qkv_size=8, rngs=nnx.Rngs(0))
    out, w = _apply_weights(mha, x, kv)
    assert out.shape == (2, 6, 16) and w.shape == (2, 2, 6, 9)
    assert mha.query.kernel[...].shape == (16, 2, 4)
    assert mha.key.kernel[...].shape == (12, 2, 4) and mha.value.kernel[...].shape == (12, 2, 4)
    assert mha.out.kernel[...].shape == (2, 4, 16) and mha.out.bias[...].shape == (16,)
    assert mha.query_norm.scale[...].shape == (4,) and mha.key_norm.scale[...].shape == (4,)
    assert not hasattr(mha.query, "bias") or mha.query.bias is None
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="multiple of num_heads"):
        attention.MultiHeadAttention(16, num_heads=3, qkv_size=8, rngs=nnx.Rngs(0))


def test_hand_computed_single_head():
    """One head, identity projections, unit norm scales: compare to NumPy."""
    d = 4
    mha = attention.MultiHeadAttention(d, num_heads=1, qkv_size=d, rngs=nnx.Rngs(0))
    eye = jnp.eye(d)
    mha.query.kernel[...] = eye[:, None, :]
    mha.key.kernel[...] = eye[:, None, :]
    mha.value.kernel[...] = eye[:, None, :]
    mha.out.kernel[...] = eye[None, :, :]
    mha.out.bias[...] = jnp.zeros(d)
    x = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]], np.float32)
    out, w = mha(jnp.asarray(x), return_attention=True)

    normed = x / np.sqrt((x**2).mean(-1, keepdims=True) + 1e-6)
    logits = normed @ normed.T / np.sqrt(d)
    expected_w = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(w[0], expected_w, atol=1e-5)
    np.testing.assert_allclose(out, expected_w @ x, atol=1e-5)
    # the first query matches itself best: logit sqrt(d) = 2 (norm 2 each, / sqrt 4)
    np.testing.assert_allclose(logits[0, 0], 2.0, atol=1e-5)


def test_block_and_transformer_flavours(inputs):
    x, kv = inputs
    kw = dict(num_heads=2, qkv_size=8, mlp_size=32, rngs=nnx.Rngs(0))
    cross_only = attention.Transformer(16, num_layers=2, kv_size=12, cross_attention_only=True, **kw)
    self_only = attention.Transformer(16, num_layers=2, **kw)
    both = attention.Transformer(16, num_layers=2, kv_size=12, **kw)
    assert not any("self_attention" in n for n in _names(cross_only))
    assert not any("cross_attention" in n for n in _names(self_only))
    assert any("self_attention" in n for n in _names(both)) and any(
        "cross_attention" in n for n in _names(both))
    assert {n.split(".")[0] for n in _names(both)} == {"layers", "final_norm"}
    # every LayerNorm is scale-only
    assert not any(n.endswith("norm.bias") for n in _names(both))

    out, w = _apply_weights(cross_only, x, kv)
    assert out.shape == (2, 6, 16) and set(w) == {"cross"} and w["cross"].shape == (2, 2, 2, 6, 9)
    out, w = _apply_weights(self_only, x)
    assert set(w) == {"self"} and w["self"].shape == (2, 2, 2, 6, 6)
    out, w = _apply_weights(both, x, kv)
    assert set(w) == {"self", "cross"}
    np.testing.assert_allclose(w["self"].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(w["cross"].sum(-1), 1.0, atol=1e-5)

    with pytest.raises(ValueError, match="pass kv"):
        both(x)
    with pytest.raises(ValueError, match="no cross-attention"):
        self_only(x, kv)
    with pytest.raises(ValueError, match="needs kv_size"):
        attention.Transformer(16, num_layers=1, cross_attention_only=True, **kw)


def test_input_and_output_dense(inputs):
    x, _ = inputs
    kw = dict(num_layers=1, num_heads=2, qkv_size=8, mlp_size=32)
    build = lambda **extra: nnx.eval_shape(
        lambda: attention.Transformer(16, rngs=nnx.Rngs(0), **kw, **extra))
    same = build()
    assert same.input_dense is None and same.output_dense is None
    hidden = build(hidden_size=24)
    assert _shapes(hidden)["input_dense.kernel"] == (16, 24)
    assert _shapes(hidden)["output_dense.kernel"] == (24, 16)
    square = build(hidden_size=16)  # input Dense kept, no output Dense
    assert square.input_dense is not None and square.output_dense is None
    explicit = attention.Transformer(16, hidden_size=24, output_size=3, rngs=nnx.Rngs(0), **kw)
    assert _apply(explicit, x).shape == (2, 6, 3)


def test_block_is_parallel(inputs):
    x, kv = inputs
    block = attention.TransformerBlock(16, num_heads=2, qkv_size=8, mlp_size=32, kv_size=12,
                                       rngs=nnx.Rngs(3))
    h = block.attention_norm(x)
    y = x + block.self_attention(h) + block.cross_attention(h, kv)
    y = y + block.mlp_out(jax.nn.gelu(block.mlp_in(block.mlp_norm(y)), approximate=True))
    np.testing.assert_allclose(block(x, kv), y, atol=1e-5)


def test_permutation_symmetries(inputs):
    x, kv = inputs
    model = attention.Transformer(16, num_layers=2, num_heads=2, qkv_size=8, mlp_size=32,
                                  kv_size=12, rngs=nnx.Rngs(1))
    out = _apply(model, x, kv)
    perm_q = np.random.default_rng(0).permutation(x.shape[1])
    perm_k = np.random.default_rng(1).permutation(kv.shape[1])
    # equivariant in the queries (self-attention included)
    np.testing.assert_allclose(_apply(model, x[:, perm_q], kv), out[:, perm_q], atol=1e-5)
    # invariant to permuting the key/value tokens
    np.testing.assert_allclose(_apply(model, x, kv[:, perm_k]), out, atol=1e-5)


def test_bfloat16_compute_float32_params(inputs):
    x, kv = inputs
    model = attention.Transformer(16, num_layers=1, num_heads=2, qkv_size=8, mlp_size=32,
                                  kv_size=12, rngs=nnx.Rngs(1), dtype=jnp.bfloat16)
    out, w = _apply_weights(model, x, kv)
    assert out.dtype == jnp.bfloat16 and w["cross"].dtype == jnp.float32
    assert {p.dtype for p in jax.tree.leaves(nnx.state(model, nnx.Param))} == {jnp.dtype("float32")}


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(input_size=512, num_layers=2, num_heads=8, qkv_size=512, mlp_size=2048,
              kv_size=512), 8_398_848),  # corrector
        (dict(input_size=512, num_layers=3, num_heads=4, qkv_size=256, mlp_size=2048),
         7_877_504),  # predictor
        (dict(input_size=576, num_layers=6, num_heads=2, qkv_size=128, mlp_size=2048,
              kv_size=512, cross_attention_only=True), 15_854_400),  # decoder
    ],
    ids=["corrector", "predictor", "decoder"],
)
def test_paper_parameter_counts(kwargs, expected):
    abstract = nnx.eval_shape(lambda: attention.Transformer(rngs=nnx.Rngs(0), **kwargs))
    assert _count(abstract) == expected


def test_competition_is_slot_attention_normalisation():
    """compete=True: softmax over queries, then each query's weights renormalised over keys."""
    rng = np.random.default_rng(3)
    q, k = rng.normal(size=(5, 2, 4)), rng.normal(size=(7, 2, 4))
    logits = np.einsum("qhd,khd->hqk", q / 2.0, k)  # head_dim 4: scale 1/2
    shares = np.exp(logits - logits.max(1, keepdims=True))
    shares = shares / shares.sum(1, keepdims=True) + 1e-8
    expected = shares / shares.sum(-1, keepdims=True)
    got = np.asarray(attention.attention_weights(jnp.asarray(q, jnp.float32),
                                                 jnp.asarray(k, jnp.float32), compete=True))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    # the queries are no longer independent: dropping one changes what the others read
    fewer = attention.attention_weights(jnp.asarray(q[1:], jnp.float32),
                                        jnp.asarray(k, jnp.float32), compete=True)
    assert np.abs(np.asarray(fewer) - got[:, 1:]).max() > 1e-3


def test_cross_compete_reaches_only_cross_attention(inputs):
    x, kv = inputs
    plain = attention.Transformer(16, num_layers=2, num_heads=2, qkv_size=8, mlp_size=32,
                                  kv_size=12, rngs=nnx.Rngs(0))
    competing = attention.Transformer(16, num_layers=2, num_heads=2, qkv_size=8, mlp_size=32,
                                      kv_size=12, rngs=nnx.Rngs(0), cross_compete=True)
    assert all(layer.cross_attention.compete and not layer.self_attention.compete
               for layer in competing.layers)
    out, weights = _apply_weights(competing, x, kv)
    np.testing.assert_allclose(np.asarray(weights["cross"]).sum(-1), 1.0, atol=1e-5)
    plain_weights = _apply_weights(plain, x, kv)[1]
    # same parameters and the same input to layer 0: its self-attention is unchanged
    np.testing.assert_allclose(weights["self"][0], plain_weights["self"][0], atol=1e-6)
    assert np.abs(np.asarray(weights["cross"][0] - plain_weights["cross"][0])).max() > 1e-3
    assert np.abs(np.asarray(out) - np.asarray(_apply(plain, x, kv))).max() > 1e-4


@pytest.mark.parametrize("num_queries, block_size", [(12, 4), (12, 5), (7, None)])
def test_blockwise_attention_equals_the_two_einsums(num_queries, block_size):
    """Values and gradients, with leading axes, in blocks (12 = 3 × 4) and in one (12 % 5, 7)."""
    keys = jax.random.split(jax.random.key(0), 4)
    q, g = (jax.random.normal(k, (2, 3, num_queries, 2, 4)) for k in keys[:2])
    k, v = (jax.random.normal(key, (2, 3, 9, 2, 4)) for key in keys[2:])
    plain = lambda q, k, v: attention.attend(attention.attention_weights(q, k), v)
    fast = lambda q, k, v: attention.blockwise_attention(q, k, v, block_size=block_size)
    np.testing.assert_allclose(fast(q, k, v), plain(q, k, v), atol=1e-6)
    grads = [jax.jit(jax.grad(lambda q, k, v, f=f: jnp.vdot(f(q, k, v), g), argnums=(0, 1, 2)))(
        q, k, v) for f in (plain, fast)]
    for got, want in zip(grads[1], grads[0]):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_blockwise_attention_in_bfloat16_and_its_bad_block_size():
    q, k, v = (jax.random.normal(jax.random.key(i), (8, 2, 4), jnp.bfloat16) for i in range(3))
    out = attention.blockwise_attention(q, k, v, block_size=4)
    assert out.dtype == jnp.bfloat16
    want = attention.attend(attention.attention_weights(q, k), v)
    np.testing.assert_allclose(np.asarray(out, np.float32), np.asarray(want, np.float32),
                               atol=2e-2)
    with pytest.raises(ValueError, match="block_size"):
        attention.blockwise_attention(q, k, v, block_size=0)


def test_module_builds_weights_only_when_asked(inputs, monkeypatch):
    """Without `return_attention` the module never builds [heads, Q, K] (only blocks of
    queries: here 2 of 3), and its output equals the weights' path."""
    monkeypatch.setattr(attention, "QUERY_BLOCK", 3)
    x, kv = inputs
    block = attention.TransformerBlock(16, num_heads=2, qkv_size=8, mlp_size=32, kv_size=12,
                                       rngs=nnx.Rngs(0))
    np.testing.assert_allclose(_apply(block, x, kv), _apply_weights(block, x, kv)[0], atol=1e-6)
    graphdef, state = nnx.split(block)
    hlo = jax.jit(lambda s, x, kv: nnx.merge(graphdef, s)(x, kv)).lower(state, x, kv).as_text()
    assert "2x2x6x9x" not in hlo and "2x2x6x6x" not in hlo  # cross and self weights
    assert "2x2x3x9x" in hlo  # a block of the cross-attention's weights
    with_weights = jax.jit(lambda s, x, kv: nnx.merge(graphdef, s)(x, kv, return_attention=True))
    assert "2x2x6x9x" in with_weights.lower(state, x, kv).as_text()


def _dot_generals(jaxpr):
    """Every dot_general in a jaxpr, nested calls included."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            yield eqn
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _dot_generals(inner)


def test_projections_take_the_tokens_as_one_matrix():
    """`per_token` changes no value, and in a block over [B, T, N, C] no projection (a
    product without batch axes), forward or backward, sees B, T or N apart: the weight
    gradient is one plain product over B·T·N (chapter 02, §3)."""
    layer = nnx.LinearGeneral((2, 4), 5, axis=(-2, -1), rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(0), (3, 2, 6, 2, 4))
    y = attention.per_token(layer, x, 2)
    assert y.shape == (3, 2, 6, 5)
    np.testing.assert_allclose(y, layer(x), atol=1e-6)

    block = attention.TransformerBlock(16, num_heads=2, qkv_size=8, mlp_size=32, kv_size=12,
                                       rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (5, 3, 7, 16))
    kv = jax.random.normal(jax.random.key(2), (5, 3, 11, 12))
    graphdef, state = nnx.split(block)
    jaxpr = jax.make_jaxpr(jax.grad(lambda s: nnx.merge(graphdef, s)(x, kv).sum()))(state)
    projections = [e for e in _dot_generals(jaxpr.jaxpr)
                   if not e.params["dimension_numbers"][1][0]]  # no batch axes
    assert len(projections) >= 2 * 10  # 10 projections: forward + weight gradient
    for eqn in projections:
        shapes = [v.aval.shape for v in eqn.invars]
        assert not {5, 3, 7, 11} & {n for shape in shapes for n in shape}, shapes


def test_a_scanned_block_keeps_little_for_its_backward_pass():
    """Under `jax.lax.scan` (the frame loop) reverse mode stacks, for every step, each array
    the backward pass needs. `recompute` keeps the norms' and the GELU's intermediates out
    of that: two arrays as wide as the MLP (the GELU's input and output), 46 -> 23 in all."""
    block = attention.TransformerBlock(16, num_heads=2, qkv_size=8, mlp_size=48, kv_size=12,
                                       rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(block)
    xs = jax.random.normal(jax.random.key(0), (3, 2, 5, 16))
    kv = jax.random.normal(jax.random.key(1), (2, 7, 12))

    def loss(state):
        def body(x, x_t):
            y = nnx.merge(graphdef, state)(x + x_t, kv)
            return y, y.sum()
        return jax.lax.scan(body, jnp.zeros((2, 5, 16)), xs)[1].sum()

    jaxpr = jax.make_jaxpr(jax.grad(loss))(state).jaxpr
    scan = next(e for e in jaxpr.eqns if e.primitive.name == "scan")  # the forward pass
    kept = [v.aval.shape[1:] for v in scan.outvars if v.aval.shape[:1] == (3,)]
    assert sum(1 for shape in kept if shape[-1:] == (48,)) == 2
    assert len(kept) <= 24, kept
