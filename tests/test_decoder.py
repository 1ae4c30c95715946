"""moog_lib.decoder: subsampling, the decoder, the loss, and the full MooG model."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from moog_lib import configs, decoder, fourier
from moog_lib.model import MooG


def _count(module) -> int:
    return sum(math.prod(p.shape) for p in jax.tree.leaves(nnx.state(module, nnx.Param)))


@pytest.fixture(scope="module")
def tiny():
    return configs.get("tiny").model


@pytest.fixture(scope="module")
def moog(tiny):
    return MooG(tiny, rngs=nnx.Rngs(0))


@pytest.fixture(scope="module")
def clip():
    return jax.random.uniform(jax.random.key(0), (2, 8, 32, 32, 3))


def _position_frames(b, t, h, w):
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    frame = np.stack([rows, cols, np.zeros_like(rows)], -1).astype(np.float32)
    return jnp.asarray(np.broadcast_to(frame, (b, t, h, w, 3)))


@pytest.mark.parametrize("s", [4, 8])
def test_subsampled_positions_follow_the_formula(s):
    h, w = 32, 16
    frames = _position_frames(3, 2, h, w)
    offsets = decoder.subsample_offsets(jax.random.key(s), 3, 2, s)
    assert offsets.dtype == jnp.int32 and int(offsets.min()) >= 0 and int(offsets.max()) < s
    picked = np.asarray(decoder.subsample_frames(frames, offsets, s))
    assert picked.shape == (3, 2, h // s, w // s, 3)
    for b in range(3):
        for t in range(2):
            dy, dx = (int(v) for v in offsets[b, t])
            i, j = np.arange(h // s), np.arange(w // s)
            np.testing.assert_array_equal(picked[b, t, :, 0, 0], (s * i + s // 2 - dy) % h)
            np.testing.assert_array_equal(picked[b, t, 0, :, 1], (s * j + s // 2 - dx) % w)
            rolled = np.roll(np.asarray(frames[b, t]), (dy, dx), axis=(0, 1))
            np.testing.assert_array_equal(picked[b, t], rolled[s // 2::s, s // 2::s])
    grid = jnp.broadcast_to(fourier.coordinate_grid(h, w), (3, 2, h, w, 2))
    np.testing.assert_array_equal(decoder.sample_coordinates(h, w, offsets, s),
                                  decoder.subsample_frames(grid, offsets, s))


def test_subsampling_errors(shape_error):
    frames = jnp.zeros((1, 1, 12, 12, 3))
    with pytest.raises(ValueError, match="divisible by the decoder subsampling S = 8"):
        decoder.subsample_frames(frames, jnp.zeros((1, 1, 2), jnp.int32), 8)
    with pytest.raises(ValueError, match="positive int"):
        decoder.subsample_frames(frames, jnp.zeros((1, 1, 2), jnp.int32), 0)
    with shape_error("offsets", "i32[1,2]"):
        decoder.subsample_frames(frames, jnp.zeros((1, 2), jnp.int32), 4)
    with shape_error("offsets", "i32[2,1,2]"):  # B differs from the images'
        decoder.subsample_frames(frames, jnp.zeros((2, 1, 2), jnp.int32), 4)
    with shape_error("images", "f32[1,12,12,3]"):
        decoder.subsample_frames(frames[0], jnp.zeros((1, 1, 2), jnp.int32), 4)
    with shape_error("offsets", "f32[1,1,2]"):
        decoder.sample_coordinates(12, 12, jnp.zeros((1, 1, 2)), 4)


def test_decoder_shapes_dense_equals_s1_and_attention(tiny):
    dec = decoder.Decoder(tiny, rngs=nnx.Rngs(1))
    z = jax.random.normal(jax.random.key(1), (2, 5, tiny.token_dim))
    h, w = 8, 12
    coords = decoder.sample_coordinates(h, w, jnp.zeros((2, 1, 2), jnp.int32), 1)
    coords = coords.reshape(2, h * w, 2)

    @nnx.jit
    def both(m, z, c):
        return m(z, c, return_attention=True), m.decode_frame(z, h, w, chunk_size=40)

    (colours, weights), dense = both(dec, z, coords)
    assert colours.shape == (2, h * w, 3) and dense.shape == (2, h, w, 3)
    np.testing.assert_allclose(colours.reshape(2, h, w, 3), dense, atol=1e-4)
    assert weights.shape == (tiny.decoder.num_layers, 2, tiny.decoder.num_heads, h * w, 5)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    queries = dec.queries(coords)
    assert queries.shape == (2, h * w, tiny.token_dim + 4 * tiny.decoder_fourier_bases)
    assert (queries[..., :tiny.token_dim] == 0).all()
    # shared [Q, 2] coordinates broadcast over the batch
    np.testing.assert_allclose(dec(z, coords[0]), dec(z, coords), atol=1e-5)


def test_loss_and_psnr(shape_error):
    a = jnp.full((2, 3, 4, 4, 3), 0.5)
    np.testing.assert_allclose(decoder.reconstruction_loss(a, a + 0.1), 0.01, rtol=1e-5)
    np.testing.assert_allclose(decoder.reconstruction_psnr(a, a + 0.1), 20.0, atol=1e-3)
    # per frame, then averaged: frames with MSE 0.01 and 0.0001 -> mean of 20 and 40 dB
    b = a.at[:, 1:].add(0.01).at[:, :1].add(0.1)
    np.testing.assert_allclose(decoder.reconstruction_psnr(a, b), (20 + 2 * 40) / 3, atol=1e-2)
    np.testing.assert_allclose(decoder.frame_psnr(a, b)[0], [20, 40, 40], atol=1e-2)
    assert float(decoder.frame_psnr(a, a).max()) == pytest.approx(100.0)  # floored, not inf
    # 1.5 is clipped to 1: an error of 0.5, 10 log10(4) dB
    assert float(decoder.frame_psnr(a + 1.0, a).mean()) == pytest.approx(10 * np.log10(4), abs=1e-4)
    with shape_error("target", "f32[3,4,4,3]"):
        decoder.reconstruction_loss(a, a[0])
    with shape_error("target", "f32[2,3,4,4,1]"):
        decoder.frame_psnr(a, a[..., :1])
    with shape_error("prediction", "f32[4,3]"):  # a frame needs [..., H, W, C]
        decoder.frame_psnr(a[0, 0, 0], a[0, 0, 0])


def test_paper_parameter_counts():
    paper = nnx.eval_shape(lambda: MooG(configs.get("paper").model, rngs=nnx.Rngs(0)))
    assert _count(paper) == 34_726_787
    assert _count(paper.encoder) == 2_593_792
    assert _count(paper.dynamics.corrector) == 8_398_848
    assert _count(paper.dynamics.predictor) == 7_877_504
    assert _count(paper.decoder) == 15_856_131
    assert _count(paper.dynamics.correction_norm) == 512


# One program per clip length, shared by several tests: compiling is the slow part.
_run = nnx.jit(lambda m, x, o, s: m(x, state=s, offsets=o, subsample=8, return_attention=True))


@pytest.fixture(scope="module")
def training_steps(tiny, clip):
    """Two Adam steps of a fresh tiny MooG on one fixed batch and key."""
    model = MooG(tiny, rngs=nnx.Rngs(5))
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, frames, key):
        def loss_fn(m):
            out = m(frames, key=key, training=True)
            return out["loss"], out

        (_, out), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
        optimizer.update(model, grads)
        return out

    frames, key = clip[:, :4], jax.random.key(7)
    return step(model, optimizer, frames, key), step(model, optimizer, frames, key), frames


def test_one_adam_step_lowers_the_loss(training_steps):
    before, after, _ = training_steps  # each step reports the loss before its own update
    assert np.isfinite(before["loss"]) and after["loss"] < before["loss"]


def test_moog_outputs(training_steps, tiny):
    out, _, frames = training_steps
    b, t, h, w = 2, 4, 32 // tiny.train_subsample, 32 // tiny.train_subsample
    assert out["prediction"].shape == out["target"].shape == (b, t, h, w, 3)
    assert out["prediction"].dtype == jnp.float32
    assert out["z_p"].shape == out["z_c"].shape == (b, t, tiny.num_tokens, tiny.token_dim)
    assert out["state"].shape == (b, tiny.num_tokens, tiny.token_dim)
    np.testing.assert_array_equal(
        out["target"], decoder.subsample_frames(frames, out["offsets"], tiny.train_subsample))
    np.testing.assert_allclose(
        out["loss"], decoder.reconstruction_loss(out["prediction"], out["target"]), rtol=1e-6)
    assert len({tuple(o) for o in np.asarray(out["offsets"]).reshape(-1, 2)}) > 1  # random


def test_two_chunks_equal_one_unroll(moog, clip):
    offsets = decoder.subsample_offsets(jax.random.key(3), 2, 8, 8)
    state = moog.initial_state(jax.random.key(4), 2)
    whole = _run(moog, clip, offsets, state)
    first = _run(moog, clip[:, :4], offsets[:, :4], state)
    second = _run(moog, clip[:, 4:], offsets[:, 4:], first["state"])
    for name in ("prediction", "z_p", "z_c"):
        np.testing.assert_allclose(
            jnp.concatenate([first[name], second[name]], 1), whole[name], atol=1e-4)
    np.testing.assert_allclose(second["state"], whole["state"], atol=1e-4)


def test_targets_follow_pixel_positions(moog):
    frames = _position_frames(2, 4, 32, 32) / 31.0  # same shapes as a 4-frame chunk above
    offsets = jnp.zeros((2, 4, 2), jnp.int32).at[0, 1].set(jnp.array([5, 2]))
    out = _run(moog, frames, offsets, moog.initial_state(jax.random.key(0), 2))
    i = np.arange(4)
    np.testing.assert_allclose(out["target"][0, 1, :, 0, 0] * 31, (8 * i + 4 - 5) % 32, atol=1e-4)
    np.testing.assert_allclose(out["target"][0, 1, 0, :, 1] * 31, (8 * i + 4 - 2) % 32, atol=1e-4)
    np.testing.assert_allclose(out["target"][0, 0, :, 0, 0] * 31, 8 * i + 4, atol=1e-4)


def test_attention_and_eval_mode(moog, clip, tiny):
    offsets = jnp.zeros((2, 4, 2), jnp.int32)
    out = _run(moog, clip[:, :4], offsets, moog.initial_state(jax.random.key(0), 2))
    assert out["attention"].shape == (2, 4, 4, 4, tiny.num_tokens)  # S = 8 on 32²
    np.testing.assert_allclose(out["attention"].sum(-1), 1.0, atol=1e-5)
    # evaluation mode and the per-layer, per-head weights, by tracing only
    graphdef, params = nnx.split(moog)
    full = jax.eval_shape(lambda p, x: nnx.merge(graphdef, p)(
        x, key=jax.random.key(0), return_attention=True, average_attention=False), params,
        clip[:, :2])
    s = tiny.eval_subsample
    assert full["prediction"].shape == (2, 2, 32 // s, 32 // s, 3)
    layers, heads = tiny.decoder.num_layers, tiny.decoder.num_heads
    assert full["attention"].shape == (layers, 2, 2, heads, 32 // s, 32 // s, tiny.num_tokens)


def test_release_switches_trace_through_gradients(clip):
    """MooG with both release switches: forward and backward trace (the loop itself runs
    numerically in tests/test_model.py)."""
    cfg = configs.override(configs.get("tiny"), [
        "model.loss_gradient_input=True", "model.state_stop_gradient_prob=0.5"]).model
    abstract = nnx.eval_shape(lambda: MooG(cfg, rngs=nnx.Rngs(0)))
    assert abstract.dynamics.gradient_projection is not None
    graphdef, params = nnx.split(abstract)

    def loss(p, frames):
        return nnx.merge(graphdef, p)(frames, key=jax.random.key(0), training=True)["loss"]

    loss_shape, grads = jax.eval_shape(jax.value_and_grad(loss), params, clip[:, :2])
    assert loss_shape.shape == () and loss_shape.dtype == jnp.float32
    assert jax.tree.structure(grads) == jax.tree.structure(params)


def test_bfloat16_compute(clip):
    cfg = configs.override(configs.get("tiny"), ["model.compute_dtype=bfloat16"]).model
    abstract = nnx.eval_shape(lambda: MooG(cfg, rngs=nnx.Rngs(0)))
    graphdef, params = nnx.split(abstract)
    out = jax.eval_shape(lambda p, x, k: nnx.merge(graphdef, p)(x, key=k), params, clip,
                         jax.random.key(0))
    assert out["z_p"].dtype == jnp.bfloat16
    assert out["prediction"].dtype == out["loss"].dtype == jnp.float32
    assert {p.dtype for p in jax.tree.leaves(params)} == {jnp.dtype("float32")}


def test_bad_inputs_raise(moog, clip, tiny, shape_error):
    good = np.asarray(clip[:, :2])
    key = jax.random.key(0)
    d = tiny.token_dim

    def printed(kind, shape):  # an array as jaxtyping prints it, e.g. f32[2,2,32,32]
        return f"{kind}[{','.join(map(str, shape))}]"

    refused_by_the_signature = [  # argument, what it got, the call
        ("frames", printed("f32", good.shape[1:]), dict(frames=good[0])),  # rank 4
        ("frames", printed("f32", good.shape[:-1] + (2,)), dict(frames=good[..., :2])),
        ("frames", printed("u8", good.shape), dict(frames=(good * 255).astype(np.uint8))),
        ("state", printed("f32", (3, 4, d)), dict(frames=good, state=jnp.zeros((3, 4, d)))),
        ("state", printed("f32", (2, 4)), dict(frames=good, state=jnp.zeros((2, 4)))),
        ("offsets", printed("f32", (2, 2, 2)),
         dict(frames=good, offsets=np.zeros((2, 2, 2), np.float32))),
        ("offsets", printed("i32", (2, 2)), dict(frames=good, offsets=np.zeros((2, 2), np.int32))),
        ("offsets", printed("i32", (2, 3, 2)),  # T differs from the frames'
         dict(frames=good, offsets=np.zeros((2, 3, 2), np.int32))),
    ]
    for argument, actual, kwargs in refused_by_the_signature:
        with shape_error(argument, actual):
            moog(**{"key": key, **kwargs})
    cases = [
        (r"\[0, 1\]", dict(frames=good * 255)),
        (r"\[0, 1\]", dict(frames=good - 0.5)),
        ("NaN", dict(frames=np.where(good > 0.9, np.nan, good))),
        ("Inf", dict(frames=np.where(good > 0.9, np.inf, good))),
        ("encoder stride", dict(frames=good[:, :, :30, :30])),
        ("subsampling S = 8", dict(frames=good[:, :, :28, :28], training=True)),
        ("K must be an int >= 1", dict(frames=good, num_tokens=0)),
        (f"tokens must be D = {d} wide", dict(frames=good, state=jnp.zeros((2, 4, d + 1)))),
        ("num_tokens=5", dict(frames=good, num_tokens=5, state=jnp.zeros((2, 4, d)))),
        ("offsets must lie", dict(frames=good, offsets=np.full((2, 2, 2), 4))),
        ("pass key", dict(frames=good, key=None)),
        ("positive int", dict(frames=good, subsample=0)),
    ]
    for match, kwargs in cases:
        kwargs = {"key": key, **kwargs}
        with pytest.raises(ValueError, match=match):
            moog(**kwargs)
    with pytest.raises(ValueError, match=f"D = {d} wide"):  # the decoder alone
        moog.decoder(jnp.zeros((2, 4, d + 1)), jnp.zeros((5, 2)))


def test_moog_runs_under_jit_with_captured_constants(moog, clip):
    """Frames and offsets captured by a jitted function (not passed as arguments)
    are concrete: their values are checked on the host, never as traced values."""
    frames, offsets = clip[:1, :2], jnp.zeros((1, 2, 2), jnp.int32)

    @nnx.jit
    def loss(model):
        return model(frames, key=jax.random.key(0), offsets=offsets)["loss"]

    eager = moog(frames, key=jax.random.key(0), offsets=offsets)["loss"]
    np.testing.assert_allclose(float(loss(moog)), float(eager), rtol=1e-5)
    bad = frames * 255.0

    @nnx.jit
    def bad_loss(model):
        return model(bad, key=jax.random.key(0), offsets=offsets)["loss"]

    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        bad_loss(moog)
