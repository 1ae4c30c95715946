"""Looking inside MooG (chapter 11: attention maps, argmax ids, PCA, K at test time) and
on long video (chapter 11a: a 1,000-frame stream in flat memory, the report written from
a tiny run)."""

import jax
import numpy as np
import pytest
from flax import nnx

from moog_lib import analysis, configs, datasets, figures, render, report, streaming, train
from moog_lib.model import MooG

CONFIG = configs.get("tiny")
K = CONFIG.model.num_tokens
RES = CONFIG.data.resolution


@pytest.fixture(scope="module")
def net():
    return MooG(CONFIG.model, rngs=nnx.Rngs(0))


@pytest.fixture(scope="module")
def clip():
    return render.render_clip("movi_e", "test", 0, resolution=RES, num_frames=12, num_points=32)


@pytest.fixture(scope="module")
def seen(net, clip):
    frames = clip["video"][None].astype(np.float32) / 255
    return analysis.inspect_clip(net, frames, jax.random.key(0), chunk_size=4)


def test_attention_is_a_distribution_over_tokens_at_every_pixel(seen, net, clip):
    attention = seen["attention"]
    assert attention.shape == (1, 12, RES, RES, K)
    assert (attention >= 0).all()
    assert np.allclose(attention.sum(-1), 1.0, atol=1e-4)
    assert seen["prediction"].shape == (1, 12, RES, RES, 3) and seen["psnr"].shape == (1, 12)
    assert np.isfinite(seen["psnr"]).all()
    # chunks of 4 carrying the state give the same numbers as one call
    whole = analysis.inspect_clip(net, clip["video"][None].astype(np.float32) / 255, jax.random.key(0))
    assert np.allclose(whole["prediction"], seen["prediction"], atol=1e-4)
    assert np.allclose(whole["attention"], attention, atol=1e-5)


def test_argmax_map_uses_only_valid_token_ids(seen):
    ids = seen["argmax"]
    assert ids.dtype == np.int32 and ids.min() >= 0 and ids.max() < K
    assert np.array_equal(ids, seen["attention"].argmax(-1))
    rgb = figures.argmax_colours(ids, K)
    assert rgb.shape == ids.shape + (3,) and rgb.dtype == np.uint8
    with pytest.raises(ValueError, match="token ids"):
        figures.argmax_colours(np.array([[K]]), K)
    assert len({tuple(c) for c in figures.token_palette(64)}) == 64


def test_sharpness_bounds(seen):
    assert analysis.attention_sharpness(np.full((3, 5, K), 1 / K)) == pytest.approx(0, abs=1e-9)
    assert analysis.attention_sharpness(np.eye(K)) == pytest.approx(1)
    assert 0 <= analysis.attention_sharpness(seen["attention"]) <= 1


def test_pca_projections_are_centred(seen):
    tokens = seen["tokens"]  # [1, T, K, D]
    pca = analysis.fit_pca(tokens)
    projected = analysis.pca_project(tokens, pca).reshape(-1, 3)
    assert np.abs(projected.mean(0)).max() < 1e-8 * max(1.0, np.abs(projected).max())
    assert np.allclose(pca["components"] @ pca["components"].T, np.eye(3), atol=1e-8)
    assert (np.diff(pca["explained"]) <= 1e-12).all()
    bounds = analysis.pca_bounds(tokens, pca)
    rgb = analysis.pca_images(tokens, seen["argmax"], pca, bounds)
    assert rgb.shape == (1, 12, RES, RES, 3) and rgb.min() >= 0 and rgb.max() <= 1
    # any three components: a longer fit starts with the same three
    deeper = analysis.fit_pca(tokens, num_components=6)
    assert np.allclose(deeper["components"][:3], pca["components"], atol=1e-6)
    later = (3, 4, 5)
    rgb_later = analysis.pca_images(tokens, seen["argmax"], deeper,
                               analysis.pca_bounds(tokens, deeper, later), later)
    assert rgb_later.shape == rgb.shape and not np.allclose(rgb_later, rgb)
    with pytest.raises(ValueError, match="three indices below 3"):
        analysis.pca_images(tokens, seen["argmax"], pca, bounds, (0, 1, 3))


def test_fewer_tokens_run_with_the_same_parameters(net, clip):
    before = jax.tree.map(np.array, nnx.state(net, nnx.Param))
    frames = clip["video"][None, :4].astype(np.float32) / 255
    for count in (K // 2, K // 4):
        out = analysis.inspect_clip(net, frames, jax.random.key(1), num_tokens=count)
        assert out["attention"].shape == (1, 4, RES, RES, count)
        assert out["tokens"].shape == (1, 4, count, CONFIG.model.token_dim)
        assert out["state"].shape == (1, count, CONFIG.model.token_dim)
        assert out["argmax"].max() < count
    after = nnx.state(net, nnx.Param)
    assert jax.tree.structure(before) == jax.tree.structure(after)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after)))
    rows = analysis.token_sweep(net, clip["video"][None, :4], jax.random.key(1), [K // 2])
    assert rows[0]["tokens"] == K // 2 and np.isfinite(rows[0]["psnr"])


def test_thousand_frame_stream_is_finite_and_memory_does_not_grow(net, clip):
    rows = streaming.stream_memory(net, clip["video"], jax.random.key(2), (200, 1000), chunk_size=4)
    short, long = rows
    assert long["frames"] == 1000 and long["psnr_per_frame"].shape == (1000,)
    assert np.isfinite(long["psnr_per_frame"]).all()
    # live JAX arrays after every chunk: the carried state and one chunk's PSNR, at any length
    state_bytes = K * CONFIG.model.token_dim * 4
    assert long["live_peak_bytes"] <= short["live_peak_bytes"] <= state_bytes + 1024
    assert len(long["live_bytes"]) == 250
    assert long["rss_peak_bytes"] < 64 * 2**20  # the whole process, within noise of flat
    # the instrument sees a leak: keeping every chunk's outputs grows the live bytes
    kept, start = [], streaming.live_array_bytes()
    graphdef, variables = nnx.split(net)
    state = analysis.first_state(net, jax.random.key(2), 1)
    for chunk in streaming.looped_chunks(clip["video"], 40, 4):
        outputs, state = streaming._stream_step(graphdef, variables, chunk, state, jax.random.key(2))
        kept.append(outputs)
    assert streaming.live_array_bytes() - start > 10 * len(kept) * 4


def test_looped_chunks_play_back_and_forth():
    video = np.arange(4, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    chunks = list(streaming.looped_chunks(video, 11, 3))
    assert [c.shape[1] for c in chunks] == [3, 3, 3, 2]
    order = np.concatenate(chunks, axis=1)[0, :, 0, 0, 0] * 255
    assert np.allclose(order, [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2])
    with pytest.raises(ValueError):
        next(streaming.looped_chunks(video[:1], 5, 2))


def test_token_picking_on_a_moving_object():
    seg = np.zeros((5, 16, 16), np.uint8)
    still = np.zeros((5, 16, 16), np.uint8)
    for t in range(5):
        seg[t, 4:8, 2 + 2 * t:6 + 2 * t] = 2  # object 2 moves right
        still[t, 10:14, 10:14] = 1
    seg = np.maximum(seg, still)
    assert analysis.moving_object(seg) == 2
    attention = np.full((16, 16, 4), 0.1)
    attention[4:8, 2:6, 3] = 0.7  # token 3 sits on the object
    attention /= attention.sum(-1, keepdims=True)
    assert analysis.pick_tokens(attention, seg[0] == 2, 2)[0] == 3
    centroids = analysis.object_centroids(seg, 2)
    assert np.allclose(centroids[:, 1], 3.5 + 2 * np.arange(5))
    with pytest.raises(ValueError, match="no pixel"):
        analysis.pick_tokens(attention, np.zeros((16, 16), bool))


def test_missing_real_clip_is_reported_and_skipped(monkeypatch):
    monkeypatch.setattr(datasets, "bundled_videos", lambda: {
        "bigbuckbunny.mp4": "/nonexistent/bigbuckbunny.mp4"})
    messages = []
    assert streaming.real_clips(32, 8, log=messages.append) == {}
    assert len(messages) == 3 and all("skipping the real clip" in m for m in messages)


def test_bad_inputs_raise(net, shape_error):
    with pytest.raises(ValueError, match="MooG's interface"):
        analysis.inspect_clip(object(), np.zeros((1, 2, RES, RES, 3), np.float32), jax.random.key(0))
    with shape_error("frames", f"f32[2,{RES},{RES},3]"):  # no batch axis
        analysis.inspect_clip(net, np.zeros((2, RES, RES, 3), np.float32), jax.random.key(0))
    with pytest.raises(ValueError, match=r"\[B, T, H, W, 3\]"):  # the chunks stream_video reads
        analysis._check_video(np.zeros((2, RES, RES, 3), np.float32))
    with shape_error("mask", "bool[8,8]"):  # H, W differ from the attention's
        analysis.pick_tokens(np.full((16, 16, 4), 0.25), np.ones((8, 8), bool))
    with pytest.raises(ValueError, match="tokens K"):
        analysis.inspect_clip(net, np.zeros((1, 2, RES, RES, 3), np.float32), jax.random.key(0),
                         num_tokens=0)


@pytest.mark.slow
def test_write_figures_on_a_two_step_tiny_run(tmp_path):
    run = tmp_path / "run"
    config = configs.override(CONFIG, ["train.steps=2", "train.eval_every=2",
                                       "train.checkpoint_every=2", "train.log_every=2"])
    train.train(config, run, progress=False)
    with pytest.raises(ValueError, match="no config.json"):
        report.write_figures(tmp_path / "empty", tmp_path / "nothing")
    out = tmp_path / "report"
    page = report.write_figures(run, out, num_rendered=1, long_frames=40, stream_frames=100,
                             memory_lengths=(40,), token_counts=(K // 2, K))
    assert page == out / "report.html"
    for name in ("attention", "argmax", "pca"):
        for suffix in (".mp4", ".gif"):
            assert (out / "inside" / f"{name}{suffix}").stat().st_size > 0
    for name in ("token_strip.png", "pca.png", "tokens_vs_k.png", "long_rollouts.png",
                 "numbers.json"):
        assert (out / "inside" / name).stat().st_size > 0
    text = page.read_text()
    assert "inside/attention.gif" in text and "<table>" in text
