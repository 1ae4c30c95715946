"""moog_lib.encoder and moog_lib.dynamics: the encoder, the initial state and the predict-correct
loop (the whole model, moog_lib.model.MooG, is tested in test_decoder.py)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from moog_lib import configs
from moog_lib.dynamics import (
    PredictCorrect,
    chunks_of,
    initial_noise,
    scan_over_time,
    stop_gradient_mask,
    stream,
)
from moog_lib.encoder import Encoder, check_frames
from moog_lib.model import MooG


def _count(module) -> int:
    return sum(math.prod(p.shape) for p in jax.tree.leaves(nnx.state(module, nnx.Param)))


@pytest.fixture(scope="module")
def tiny():
    return configs.get("tiny").model


@pytest.fixture(scope="module")
def dynamics(tiny):
    return PredictCorrect(tiny, rngs=nnx.Rngs(0))


@pytest.fixture(scope="module")
def features(tiny):
    return jax.random.normal(jax.random.key(1), (2, 8, 16, tiny.token_dim))


_unroll = nnx.jit(lambda m, f, s: m.unroll(f, s))


def test_paper_parameter_counts():
    paper = configs.get("paper").model
    encoder = nnx.eval_shape(lambda: Encoder(paper, rngs=nnx.Rngs(0)))
    dynamics = nnx.eval_shape(lambda: PredictCorrect(paper, rngs=nnx.Rngs(0)))
    assert _count(encoder) == 2_593_792
    assert _count(dynamics.corrector) == 8_398_848
    assert _count(dynamics.predictor) == 7_877_504
    assert _count(dynamics.correction_norm) == 512
    assert _count(dynamics) == 8_398_848 + 7_877_504 + 512
    switched = configs.override(configs.get("paper"), ["model.loss_gradient_input=True"]).model
    with_projection = nnx.eval_shape(lambda: PredictCorrect(switched, rngs=nnx.Rngs(0)))
    assert _count(with_projection.gradient_projection) == 1024 * 512 + 512


def test_encoder_shapes_and_batching(tiny):
    encoder = Encoder(tiny, rngs=nnx.Rngs(0))
    frames = jax.random.uniform(jax.random.key(0), (2, 3, 32, 32, 3))
    run = nnx.jit(lambda m, x: m(x))
    tokens = run(encoder, frames)
    assert tokens.shape == (2, 3, 8 * 8, tiny.token_dim)
    # frames are encoded independently: reordering them reorders the tokens (same program)
    np.testing.assert_allclose(run(encoder, frames[:, ::-1]), tokens[:, ::-1], atol=1e-5)
    assert [c.kernel[...].shape for c in encoder.convs][0] == (3, 3, 3, 8)
    assert encoder.position.dense_pe.kernel[...].shape == (2 * 2 * 8, 32)


def test_initial_state_statistics(dynamics, tiny):
    noise = initial_noise(jax.random.key(0), 4, 64, tiny.token_dim)
    assert noise.shape == (4, 64, tiny.token_dim)
    np.testing.assert_allclose(float(noise.std()), 1e-4, rtol=0.05)
    state = dynamics.initial_state(jax.random.key(0), 4, 64)
    np.testing.assert_allclose(float(state.std()), 1e-4 / math.sqrt(1e-8 + 1e-4), rtol=0.05)
    assert not np.allclose(state[0], state[1])  # fresh noise per example


def test_scan_over_time_is_a_loop_over_axis_1_with_gradients_into_the_module():
    layer = nnx.Linear(3, 3, rngs=nnx.Rngs(0))
    xs = jax.random.normal(jax.random.key(1), (2, 5, 3))  # [B, T, 3]

    def step(module, carry, x):
        carry = jnp.tanh(module(carry) + x)
        return carry, (carry, x.sum(-1))

    def loop(module):
        carry, outs = jnp.zeros((2, 3)), []
        for t in range(5):
            carry, out = step(module, carry, xs[:, t])
            outs.append(out)
        return carry, jax.tree.map(lambda *a: jnp.stack(a, 1), *outs)

    carry, (states, sums) = scan_over_time(layer, step, jnp.zeros((2, 3)), xs)
    want_carry, (want_states, want_sums) = loop(layer)
    assert states.shape == (2, 5, 3) and sums.shape == (2, 5)  # batch-major outputs
    np.testing.assert_allclose(states, want_states, atol=1e-6)
    np.testing.assert_allclose(carry, want_carry, atol=1e-6)
    grad = nnx.grad(lambda m: scan_over_time(m, step, jnp.zeros((2, 3)), xs)[0].sum())(layer)
    want = nnx.grad(lambda m: loop(m)[0].sum())(layer)
    np.testing.assert_allclose(grad["kernel"][...], want["kernel"][...], atol=1e-5)


def test_scan_equals_python_loop(dynamics, features):
    state = dynamics.initial_state(jax.random.key(2), 2, 12)
    out = _unroll(dynamics, features, state)

    @nnx.jit
    def loop(m, f, s):
        zp, zc = [], []
        for t in range(f.shape[1]):
            zp.append(m.predict(s))
            s = m.correct(zp[-1], f[:, t])
            zc.append(s)
        return jnp.stack(zp, 1), jnp.stack(zc, 1)

    zp, zc = loop(dynamics, features[:, :4], state)  # 4 frames: the loop compiles 4 copies
    np.testing.assert_allclose(out["z_p"][:, :4], zp, atol=1e-5)
    np.testing.assert_allclose(out["z_c"][:, :4], zc, atol=1e-5)
    np.testing.assert_array_equal(out["state"], out["z_c"][:, -1])


def test_chunks_carry_the_state(dynamics, features):
    state = dynamics.initial_state(jax.random.key(3), 2, 12)
    whole = _unroll(dynamics, features, state)
    first = _unroll(dynamics, features[:, :4], state)
    second = _unroll(dynamics, features[:, 4:], first["state"])
    np.testing.assert_allclose(
        whole["z_c"], jnp.concatenate([first["z_c"], second["z_c"]], 1), atol=1e-5)
    np.testing.assert_allclose(
        whole["z_p"], jnp.concatenate([first["z_p"], second["z_p"]], 1), atol=1e-5)
    # stream + chunks_of give the same
    step = lambda chunk, s: (lambda o: (o, o["state"]))(_unroll(dynamics, chunk, s))
    streamed = [o["z_c"] for o, _ in stream(step, chunks_of(features, 4), state)]
    np.testing.assert_allclose(whole["z_c"], jnp.concatenate(streamed, 1), atol=1e-5)


def test_tokens_chosen_at_call_time(tiny):
    small = configs.override(configs.get("tiny"), ["model.token_dim=8"]).model
    dynamics = PredictCorrect(small, rngs=nnx.Rngs(0))
    feats = jnp.ones((1, 1, 4, 8))
    for k in (256, 512, 1024):
        state = dynamics.initial_state(jax.random.key(0), 1, k)
        assert _unroll(dynamics, feats, state)["z_c"].shape == (1, 1, k, 8)


def test_stop_gradient_mask_statistics():
    mask = stop_gradient_mask(jax.random.key(0), 64, 8, 0.25)
    assert mask.shape == (64, 8) and mask.dtype == jnp.bool_
    assert 0.1 < float(mask.mean()) < 0.4
    with pytest.raises(ValueError, match="probability"):
        stop_gradient_mask(jax.random.key(0), 2, 2, 1.5)


def test_bad_inputs(dynamics, features, tiny, shape_error):
    good = np.full((1, 2, 32, 32, 3), 0.5, np.float32)
    check_frames(good, stride=4)
    refused_by_the_signature = {  # rank, channels, dtype: Float[ArrayLike, "B T H W 3"]
        "f32[2,32,32,3]": good[0],
        "f32[1,2,32,32,2]": good[..., :2],
        "u8[1,2,32,32,3]": (good * 255).astype(np.uint8),
    }
    for actual, frames in refused_by_the_signature.items():
        with shape_error("frames", actual):
            check_frames(frames, stride=4, subsample=8)
    cases = {
        r"\[0, 1\]": good * 255,
        "NaN": np.where(good > 0, np.nan, good),
        "divisible by the encoder stride": good[:, :, :30, :30],
        "divisible by the decoder subsampling": good[:, :, :28, :28],
        "must not be empty": good[:, :0],
    }
    for match, frames in cases.items():
        with pytest.raises(ValueError, match=match):
            check_frames(frames, stride=4, subsample=8)
    with pytest.raises(ValueError, match="Inf"):
        check_frames(np.where(good > 0, np.inf, good))
    with shape_error("frames", "[[0.5]]"):
        check_frames([[0.5]])
    with shape_error("frames", "f32[1,2,32,32]"):  # the encoder itself declares [..., H, W, 3]
        Encoder(tiny, rngs=nnx.Rngs(0))(good[..., 0])
    with pytest.raises(ValueError, match="K must be an int >= 1"):
        dynamics.initial_state(jax.random.key(0), 2, 0)
    d = tiny.token_dim
    with shape_error("state", f"f32[3,12,{d}]"):  # B differs from the features'
        dynamics.unroll(features, jnp.zeros((3, 12, d)))
    with shape_error("state", f"f32[2,12,{d + 1}]"):  # D differs from the features'
        dynamics.unroll(features, jnp.zeros((2, 12, d + 1)))
    with shape_error("features", f"f32[2,16,{d}]"):  # no time axis
        dynamics.unroll(features[:, 0], jnp.zeros((2, 12, d)))
    with shape_error("stop_gradient", "f32[2,8]"):  # a mask is bool
        dynamics.unroll(features, jnp.zeros((2, 12, d)), stop_gradient=jnp.zeros((2, 8)))
    with pytest.raises(ValueError, match=f"the module's width D = {d}"):  # not the config's D
        dynamics.unroll(features[..., :-1], jnp.zeros((2, 12, d - 1)))
    with pytest.raises(ValueError, match="K >= 1"):
        dynamics.unroll(features, jnp.zeros((2, 0, d)))
    with pytest.raises(ValueError, match="loss_gradient_fn"):
        dynamics.unroll(features, jnp.zeros((2, 12, d)),
                        loss_gradient_fn=lambda z, x: z)


def test_release_switches_in_the_loop(features):
    """Loss-gradient input and stop-gradient: gradients are finite, reach the projection,
    and a cut before frame 1 stops them reaching frame 0's features."""
    cfg = configs.override(configs.get("tiny"), ["model.loss_gradient_input=True"]).model
    dynamics = PredictCorrect(cfg, rngs=nnx.Rngs(0))
    f = features[:, :3]
    target = jax.random.normal(jax.random.key(5), (2, 3, 12, cfg.token_dim))
    state = dynamics.initial_state(jax.random.key(6), 2, 12)
    gradient_fn = lambda z, y: jax.grad(lambda z: ((z - y) ** 2).sum())(z)

    @nnx.jit
    def grads(m, f, s, y, cut):
        def loss(m, f):
            out = m.unroll(f, s, stop_gradient=cut, loss_gradient_fn=gradient_fn,
                           loss_gradient_inputs=y)
            return (out["z_p"][:, -1] ** 2).sum()
        return nnx.grad(loss, argnums=(0, 1))(m, f)

    no_cut = jnp.zeros((2, 3), bool)
    param_grads, feature_grads = grads(dynamics, f, state, target, no_cut)
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(nnx.state(param_grads, nnx.Param)))
    assert np.abs(param_grads["gradient_projection"]["kernel"][...]).max() > 0
    assert np.abs(feature_grads[:, 0]).max() > 0
    _, cut_feature_grads = grads(dynamics, f, state, target, no_cut.at[:, 1].set(True))
    assert np.abs(cut_feature_grads[:, 0]).max() == 0
    assert np.abs(cut_feature_grads[:, 1]).max() > 0


def test_loss_gradient_corrector_adds_to_the_predicted_state(features):
    """With the loss-gradient query q, the residual is z_p: z_c = LN(z_p + C(q, F_t))."""
    cfg = configs.override(configs.get("tiny"), ["model.loss_gradient_input=True"]).model
    dynamics = PredictCorrect(cfg, rngs=nnx.Rngs(0))
    z_p = jax.random.normal(jax.random.key(1), (2, 12, cfg.token_dim))
    gradient = jax.random.normal(jax.random.key(2), z_p.shape)
    f = features[:, 0]
    q = dynamics.gradient_projection(jnp.concatenate([z_p, gradient], -1))
    expected = dynamics.correction_norm(z_p + dynamics.corrector(q, f))
    wrong = dynamics.correction_norm(q + dynamics.corrector(q, f))
    got = dynamics.correct(z_p, f, gradient)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert np.abs(got - wrong).max() > 1e-2


def test_fixed_initial_state_is_shared_and_stable_in_k():
    """The small-world switch: every clip starts from the same tokens, token k is the same
    for any K, the key is ignored; off (the paper's fresh noise) by default."""
    assert not configs.get("paper").model.fixed_initial_state
    cfg = configs.override(configs.get("tiny"), ["model.fixed_initial_state=True",
                                                 "model.initial_state_scale=1.0"]).model
    dynamics = PredictCorrect(cfg, rngs=nnx.Rngs(0))
    a = dynamics.initial_state(jax.random.key(1), 3, 8)
    b = dynamics.initial_state(jax.random.key(2), 2, 12)
    np.testing.assert_array_equal(a[0], a[2])
    np.testing.assert_array_equal(a[0], b[1, :8])
    assert 0.5 < float(a.std()) < 1.5  # unit scale survives the LN
    fresh = PredictCorrect(configs.get("tiny").model, rngs=nnx.Rngs(0))
    c = fresh.initial_state(jax.random.key(1), 2, 8)
    assert not np.allclose(c[0], c[1]) and float(c.std()) < 0.05


def test_qk_norm_scale_sets_every_attention_norm():
    cfg = configs.override(configs.get("tiny"), ["model.qk_norm_scale=2.0"]).model
    net = MooG(cfg, rngs=nnx.Rngs(0))
    scales = [m.scale[...] for _, m in nnx.iter_graph(net) if isinstance(m, nnx.RMSNorm)]
    assert len(scales) >= 6 and all(np.all(np.asarray(s) == 2.0) for s in scales)
    paper_like = MooG(configs.get("tiny").model, rngs=nnx.Rngs(0))
    assert all(np.all(np.asarray(m.scale[...]) == 1.0) for _, m in nnx.iter_graph(paper_like)
               if isinstance(m, nnx.RMSNorm))


def test_last_frame_apart_is_the_same_loop_and_jit_drops_its_encoding(tiny, dynamics, features):
    """`unroll(..., last_features=)` equals `unroll` on all frames; in `MooG` the last frame is
    encoded apart, so a loss that reads only predictions compiles without its encoder."""
    state = dynamics.initial_state(jax.random.key(2), 2, 12)
    whole = _unroll(dynamics, features, state)
    apart = nnx.jit(lambda m, f, s: m.unroll(f[:, :-1], s, last_features=f[:, -1]))(
        dynamics, features, state)
    for name in ("z_p", "z_c", "state"):
        np.testing.assert_allclose(apart[name], whole[name], atol=1e-6)
    with pytest.raises(ValueError, match="stop_gradient covers"):
        dynamics.unroll(features[:, :-1], state, last_features=features[:, -1],
                        stop_gradient=jnp.zeros((2, features.shape[1] - 1), bool))
    with pytest.raises(ValueError, match="no frames"):
        dynamics.unroll(features[:, :0], state)

    model = MooG(tiny, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    clip = jax.ShapeDtypeStruct((1, 2, 16, 16, 3), jnp.float32)

    def compiled(loss, clip=clip):
        return jax.jit(jax.grad(lambda p, c: loss(nnx.merge(graphdef, p), c))).lower(
            params, clip).compile()

    def both_frames_at_once(m, c):  # the encoder on both frames in one call
        out = m.dynamics.unroll(m.encoder(c), m.initial_state(jax.random.key(0), 1))
        return m.decoder(out["z_p"][:, -1], jnp.zeros((1, 4, 2))).sum()

    def last_frame_apart(m, c):
        out = m.dynamics.unroll(m.encoder(c[:, :-1]), m.initial_state(jax.random.key(0), 1),
                                last_features=m.encoder(c[:, -1]))
        return m.decoder(out["z_p"][:, -1], jnp.zeros((1, 4, 2))).sum()

    flops = lambda loss: compiled(loss).cost_analysis()["flops"]
    one_frame = compiled(lambda m, c: m.encoder(c).sum(), clip=clip.update(shape=(1, 1, 16, 16, 3)))
    saved = flops(both_frames_at_once) - flops(last_frame_apart)
    assert saved > 0.9 * one_frame.cost_analysis()["flops"], saved
    # MooG's own pretraining loss: its convolutions see one image (frame 0), never two
    hlo = compiled(lambda m, c: m(c, key=jax.random.key(0), training=True)["loss"],
                   clip=jax.ShapeDtypeStruct((1, 2, 32, 32, 3), jnp.float32)).as_text()
    convolutions = [line for line in hlo.splitlines() if " convolution(" in line]
    assert convolutions and not any("f32[2,32,32," in line for line in convolutions)
