"""Chapters 12, 12a and 12b (moog_lib.ego4d, release, tracking): the Ego4D file format and its
checks, the name maps both ways, the one-shot heads, tracking a video and `moog track`."""

import hashlib
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx, traverse_util

from moog_lib import cli, configs, datasets, ego4d, release, tracking
from moog_lib.model import MooG

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT.parent / "shared" / "spec"
PAPER = configs.get("paper").model
VARIANT = PAPER.__class__(**{**PAPER.__dict__, "loss_gradient_input": True})


def _spec(name):
    return json.loads((SPEC / name).read_text())


def _params(*modules):
    return jax.tree.leaves(nnx.state(tuple(modules), nnx.Param))


@pytest.fixture(scope="module")
def tiny():
    return ego4d.ego4d_config("tiny")


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory, tiny):
    return release.write_random_ego4d(tmp_path_factory.mktemp("tiny"), tiny, seed=0,
                                      with_decoder=True)


@pytest.fixture(scope="module")
def tiny_models(tiny_files, tiny):
    return release.load_ego4d(**tiny_files, config=tiny)


# --- the tables ------------------------------------------------------------------------

def test_ego4d_tables_equal_the_spec_entry_by_entry():
    spec = _spec("official_ego4d_checkpoint_params.json")
    tables = release.ego4d_param_shapes()
    assert set(tables) == set(spec)
    for part, entries in spec.items():
        assert tables[part] == {name: tuple(shape) for name, (shape, _) in entries.items()}, part
        assert {dtype for _, dtype in entries.values()} == {"float32"}


def test_release_tables_equal_the_spec_entry_by_entry():
    spec = _spec("release_movi_params.json")
    for variant, config in (("paper", PAPER), ("loss_gradient_variant", VARIANT)):
        expected = {name: tuple(shape) for name, (shape, _) in spec[variant].items()}
        assert release.release_param_shapes(config) == expected, variant
    assert len(spec["paper"]) == 181
    assert sum(math.prod(s) for s in release.release_param_shapes(PAPER).values()) == 34_726_787


@pytest.mark.parametrize("size", ego4d.EGO4D_SIZES)
def test_our_modules_renamed_give_exactly_the_tables(size):
    config = ego4d.ego4d_config(size)
    tables = release.ego4d_param_shapes(config)
    for with_decoder, expected in ((True, tables["backbone"] | tables["backbone_decoder_if_saved"]),
                                   (False, tables["backbone"])):
        backbone = nnx.eval_shape(lambda w=with_decoder: ego4d.Ego4DMooG(
            config.backbone, with_decoder=w, rngs=nnx.Rngs(0)))
        assert release.module_shapes(backbone) == expected
    for part, head in (("point_track_head", config.points), ("box_track_head", config.boxes)):
        module = nnx.eval_shape(lambda h=head: ego4d.Ego4DTrackHead(h, rngs=nnx.Rngs(0)))
        assert release.module_shapes(module) == tables[part]
    for model_config in (PAPER, VARIANT):
        moog = nnx.eval_shape(lambda c=model_config: MooG(c, rngs=nnx.Rngs(0)))
        assert release.module_shapes(moog) == release.release_param_shapes(model_config)


def test_the_tiny_size_keeps_every_path_of_the_files():
    official = release.ego4d_param_shapes(ego4d.ego4d_config("official"))
    tiny = release.ego4d_param_shapes(ego4d.ego4d_config("tiny"))
    for part in official:
        assert set(official[part]) == set(tiny[part]), part


# --- loading, checking, saving ----------------------------------------------------------

def test_a_full_size_random_checkpoint_loads(tmp_path):
    files = release.write_random_ego4d(tmp_path, seed=1)  # the released sizes, no decoder
    models = release.load_ego4d(**files)
    assert models.backbone.decoder is None and models.config.name == "official"
    arrays = release._read_npz(files["point_head_npz"], "point head")
    assert set(arrays) == set(release.ego4d_param_shapes()["point_track_head"])
    np.testing.assert_array_equal(models.points.tile_embedding[...],
                                  arrays["temporal_tile_posenc/embeddings"])
    np.testing.assert_array_equal(
        models.backbone.corrector.layers[1].cross_attention.key.kernel[...],
        np.load(files["backbone_npz"])["pretrained_model/predictor_ca/layer_1/cross_att/dense_key/kernel"])
    assert models.backbone.corrector.layers[0].cross_attention.key.kernel[...].shape == (592, 8, 64)


def test_round_trip_is_bit_exact(tiny_files, tiny_models, tiny, tmp_path):
    saved = release.save_ego4d(tmp_path, tiny_models.backbone, tiny_models.points,
                               tiny_models.boxes)
    for key, path in tiny_files.items():
        original, written = np.load(path), np.load(saved[key])
        assert sorted(original.files) == sorted(written.files)
        for name in original.files:
            assert written[name].dtype == np.float32
            assert original[name].tobytes() == written[name].tobytes(), name
    again = release.load_ego4d(**saved, config=tiny)
    for a, b in zip(_params(*tiny_models[:3]), _params(*again[:3])):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


def _rewrite(path, target, change):
    arrays = dict(np.load(path))
    change(arrays)
    np.savez(target, **arrays)
    return target


def test_a_missing_entry_is_named(tiny_files, tiny, tmp_path):
    name = "pretrained_model/predictor_sa/layer_2/self_att/norm_key/scale"
    bad = _rewrite(tiny_files["backbone_npz"], tmp_path / "b.npz", lambda a: a.pop(name))
    with pytest.raises(ValueError, match="1 missing: " + name):
        release.load_ego4d(bad, config=tiny)


def test_a_misshaped_an_unexpected_and_a_float64_entry_are_named(tiny_files, tiny, tmp_path):
    def change(arrays):
        arrays["attention_readout/Dense_2/kernel"] = np.zeros((64, 7), np.float32)
        arrays["attention_readout/Dense_2/bias"] = arrays["attention_readout/Dense_2/bias"].astype(np.float64)
        arrays["attention_readout/surprise"] = np.zeros(3, np.float32)

    bad = _rewrite(tiny_files["point_head_npz"], tmp_path / "p.npz", change)
    with pytest.raises(ValueError) as err:
        release.load_ego4d(tiny_files["backbone_npz"], bad, config=tiny)
    message = str(err.value)
    assert "attention_readout/Dense_2/kernel: expected [64, 8], got [64, 7]" in message
    assert "attention_readout/surprise" in message
    assert "attention_readout/Dense_2/bias: expected float32, got float64" in message


def test_the_official_sizes_reject_a_tiny_file(tiny_files):
    with pytest.raises(ValueError, match=r"wrong shape: pretrained_model/decoder/recon/kernel: "
                                         r"expected \[576, 3\], got \[48, 3\].*other sizes"):
        release.load_ego4d(tiny_files["backbone_npz"])


def test_decoder_entries_are_all_or_nothing(tiny_files, tiny, tmp_path):
    name = "pretrained_model/decoder/recon/bias"
    bad = _rewrite(tiny_files["backbone_npz"], tmp_path / "d.npz", lambda a: a.pop(name))
    with pytest.raises(ValueError, match="all-or-nothing.*missing: " + name):
        release.load_ego4d(bad, config=tiny)
    bare = _rewrite(tiny_files["backbone_npz"], tmp_path / "e.npz",
                    lambda a: [a.pop(k) for k in list(a) if "/decoder/" in k])
    assert release.load_ego4d(bare, config=tiny).backbone.decoder is None


def test_pickle_is_never_enabled(tiny_files, tiny, tmp_path, monkeypatch):
    calls = []
    real_load = np.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("allow_pickle"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    release.load_ego4d(**tiny_files, config=tiny)
    objects = tmp_path / "objects.npz"
    np.savez(objects, **{"attention_readout/Dense_0/bias": np.array([{"run": "me"}], object)})
    with pytest.raises(ValueError, match="pickle"):
        release.load_ego4d(tiny_files["backbone_npz"], objects, config=tiny)
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"run": "me"}], object), allow_pickle=True)
    with pytest.raises(ValueError, match="cannot read"):
        release.load_ego4d(pickled, config=tiny)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="single array"):
        release.load_ego4d(single, config=tiny)
    assert calls and all(flag is False for flag in calls)


def test_finding_files(tiny_files, tmp_path):
    folder = Path(tiny_files["backbone_npz"]).parent
    assert release.find_ego4d_files(folder) == tiny_files
    with pytest.raises(ValueError, match="no backbone"):
        release.find_ego4d_files(tmp_path)
    with pytest.raises(ValueError, match="no directory"):
        release.find_ego4d_files(tmp_path / "absent")


# --- downloading, checked ----------------------------------------------------------------

@pytest.fixture
def server(tiny_files, monkeypatch):
    """No network: `urlretrieve` serves `served[file name]` (the tiny random files unless a
    test changes them) and logs the names it was asked for."""
    served = {release.EGO4D_FILES[key]: Path(path).read_bytes() for key, path in tiny_files.items()}
    asked = []

    def urlretrieve(url, filename):
        assert url.startswith(release.EGO4D_URL), url
        asked.append(url[len(release.EGO4D_URL):])
        Path(filename).write_bytes(served[asked[-1]])
        return filename, None

    monkeypatch.setattr(release.urllib.request, "urlretrieve", urlretrieve)
    return served, asked


def _record(path):
    return Path(path).with_name(Path(path).name + ".sha256")


def test_download_checks_each_file_and_records_its_sha256(server, tiny, tmp_path, capsys):
    served, asked = server
    paths = release.download_ego4d(tmp_path, config=tiny)
    assert sorted(asked) == sorted(release.EGO4D_FILES.values())
    out = capsys.readouterr().out
    for path in paths.values():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert _record(path).read_text() == f"{digest}  {path.name}\n"  # sha256sum's format
        assert f"sha256 {digest}" in out and "published sha256 is not known" in out
    release.load_ego4d(**paths, config=tiny)
    assert release.download_ego4d(tmp_path, config=tiny) == paths  # present: checked, kept
    assert len(asked) == 3 and out.count("as recorded") == 0
    assert capsys.readouterr().out.count("as recorded") == 3


def test_a_file_placed_by_hand_is_checked_and_recorded_without_downloading(server, tiny,
                                                                           tmp_path):
    served, asked = server
    for name, payload in served.items():
        (tmp_path / name).write_bytes(payload)
    release.download_ego4d(tmp_path, config=tiny)
    assert asked == [] and all(_record(tmp_path / name).is_file() for name in served)


def test_a_file_changed_after_its_download_is_moved_aside(server, tiny, tmp_path):
    served, asked = server
    paths = release.download_ego4d(tmp_path, config=tiny)
    head = paths["point_head_npz"]
    payload = bytearray(head.read_bytes())
    payload[len(payload) // 2] ^= 1
    head.write_bytes(bytes(payload))
    with pytest.raises(ValueError) as raised:
        release.download_ego4d(tmp_path, config=tiny)
    message = str(raised.value)
    assert head.name in message and "has changed since" in message
    assert hashlib.sha256(bytes(payload)).hexdigest() in message  # what was found
    assert "delete" in message and f"download_ego4d({str(tmp_path)!r})" in message  # the fix
    assert not head.exists() and Path(f"{head}.bad").read_bytes() == bytes(payload)
    assert not _record(head).exists() and Path(f"{_record(head)}.bad").is_file()
    assert release.find_ego4d_files(tmp_path)["point_head_npz"] is None  # never used
    assert release.download_ego4d(tmp_path, config=tiny) == paths  # a fresh copy
    assert asked.count(head.name) == 2 and head.read_bytes() == served[head.name]


def _truncated(payload, tiny, folder):
    return payload[:len(payload) // 2]


def _web_page(payload, tiny, folder):
    return b"<!DOCTYPE html><html>Not Found</html>"


def _entry_missing(payload, tiny, folder):
    path = folder / "head.npz"
    arrays = release.random_ego4d_arrays(tiny)["point_head_npz"]
    del arrays["attention_readout/Dense_2/bias"]
    np.savez(path, **arrays)
    return path.read_bytes()


@pytest.mark.parametrize("damage, found", [
    (_truncated, "damaged or truncated"), (_web_page, "not an .npz archive"),
    (_entry_missing, "1 missing: attention_readout/Dense_2/bias [8]")])
def test_a_bad_download_is_moved_aside_and_named(server, tiny, tmp_path, damage, found):
    served, asked = server
    name = release.EGO4D_FILES["point_head_npz"]
    served[name] = damage(served[name], tiny, tmp_path)
    tmp_path = tmp_path / "downloads"
    with pytest.raises(ValueError) as raised:
        release.download_ego4d(tmp_path, config=tiny)
    message = str(raised.value)
    assert name in message and found in message and "expected the point track head" in message
    assert "moved aside to " + name + ".bad" in message and "download a fresh copy" in message
    assert not (tmp_path / name).exists() and (tmp_path / f"{name}.bad").is_file()
    assert not _record(tmp_path / name).exists()


def test_the_official_sizes_refuse_a_tiny_download(server, tmp_path):
    with pytest.raises(ValueError, match="wrong shape"):
        release.download_ego4d(tmp_path)
    assert list(tmp_path.glob("*.npz")) == [] and len(list(tmp_path.glob("*.bad"))) == 1


def test_a_recorded_size_is_checked(server, tiny, tmp_path, monkeypatch):
    served, _ = server
    name = release.EGO4D_FILES["box_head_npz"]
    monkeypatch.setitem(release.EGO4D_BYTES, name, len(served[name]) + 1)
    with pytest.raises(ValueError, match=f"expected {len(served[name]) + 1:,} bytes, found "
                                         f"{len(served[name]):,}"):
        release.download_ego4d(tmp_path, config=tiny)
    assert (tmp_path / f"{name}.bad").is_file() and not (tmp_path / name).exists()
    monkeypatch.setitem(release.EGO4D_BYTES, name, len(served[name]))
    release.download_ego4d(tmp_path, config=tiny)  # the right size passes


# --- the paper model's release tree -----------------------------------------------------

def _random_tree(config, seed=0, nested=True):
    rng = np.random.default_rng(seed)
    flat = {name: rng.standard_normal(shape, np.float32)
            for name, shape in release.release_param_shapes(config).items()}
    return traverse_util.unflatten_dict(flat, sep="/") if nested else flat


@pytest.mark.parametrize("config", [PAPER, VARIANT], ids=["paper", "loss_gradient_variant"])
def test_release_tree_to_moog_and_back_is_the_identity(config):
    tree = _random_tree(config)
    moog = release.from_release_params(tree)  # the paper preset, variant from the tree
    assert moog.config.loss_gradient_input == config.loss_gradient_input
    assert moog.config.compute_dtype == "bfloat16"  # the preset asks for bfloat16 ...
    assert moog.decoder.dtype == jnp.float32  # ... loading computes in float32 unless asked
    assert (moog.dynamics.gradient_projection is not None) == config.loss_gradient_input
    back = release.to_release_params(moog)
    assert jax.tree.structure(back) == jax.tree.structure(tree)
    assert all(a.tobytes() == np.asarray(b).tobytes()
               for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(back)))
    # and the reverse composition: MooG -> tree -> MooG, also from a flat tree under "params"
    flat = {"params": traverse_util.flatten_dict(back, sep="/")}
    again = release.from_release_params(flat)
    assert all(np.asarray(a).tobytes() == np.asarray(b).tobytes()
               for a, b in zip(_params(moog), _params(again)))


def test_a_bad_release_tree_is_refused():
    tree = _random_tree(configs.get("tiny").model, nested=False)
    del tree["correction_layer_norm/scale"]
    with pytest.raises(ValueError, match="missing: correction_layer_norm/scale"):
        release.from_release_params(tree, config=configs.get("tiny").model)
    with pytest.raises(ValueError, match="expected a dict"):
        release.from_release_params([1, 2])


# --- running the modules ----------------------------------------------------------------

@pytest.fixture(scope="module")
def features(tiny_models, tiny):
    clip = jax.random.uniform(jax.random.key(0), (2, 16, tiny.resolution, tiny.resolution, 3))
    return nnx.jit(lambda m, c: m(c, key=jax.random.key(1)))(tiny_models.backbone, clip)


def test_backbone_outputs_and_the_state_before_each_frame(features, tiny):
    b = tiny.backbone
    assert features["features"].shape == (2, 16, b.num_tokens, b.token_dim)
    np.testing.assert_array_equal(features["previous"][:, 1:], features["features"][:, :-1])
    np.testing.assert_array_equal(features["state"], features["features"][:, -1])
    assert float(jnp.std(features["previous"][:, 0])) < 2e-4  # raw noise: no LN before the loop


def test_backbone_refuses_states_and_coordinates_of_other_shapes(tiny_models, tiny, shape_error):
    m, b = tiny_models.backbone, tiny.backbone
    features = jnp.zeros((2, 3, 4, b.feature_dim))
    with shape_error("state", f"f32[1,{b.num_tokens},{b.token_dim}]"):  # B differs
        m.unroll(features, jnp.zeros((1, b.num_tokens, b.token_dim)))
    with pytest.raises(ValueError, match=f"width D = {b.token_dim}"):  # the config's D
        m.unroll(features, jnp.zeros((2, b.num_tokens, b.token_dim + 1)))
    with pytest.raises(ValueError, match=f"F = {b.feature_dim} wide"):
        m.unroll(features[..., :-1], jnp.zeros((2, b.num_tokens, b.token_dim)))
    with shape_error("coords", "f32[2,5,3]"):
        m.decoder(jnp.zeros((2, b.num_tokens, b.token_dim)), jnp.zeros((2, 5, 3)))
    with shape_error("frames", f"f32[16,{tiny.resolution},{tiny.resolution},3]"):  # no batch
        m(jnp.zeros((16, tiny.resolution, tiny.resolution, 3)), key=jax.random.key(0))


def test_corrector_attention_is_a_distribution_and_changes_nothing_else(tiny_models, tiny,
                                                                         features):
    clip = jax.random.uniform(jax.random.key(0), (2, 16, tiny.resolution, tiny.resolution, 3))

    @nnx.jit
    def looking(m, c):  # `features`' clip and key; also frame 2's weights by hand
        out = m(c, key=jax.random.key(1), return_attention=True)
        state = m.state_norm(out["previous"][:, 2])
        _, weights = m.corrector(state + m.predictor(state), m.encoder(c[:, 2]),
                                 return_attention=True)
        return out, weights["cross"]  # [layers, B, heads, K, N]

    plain = features  # the same run, compiled without the weights
    looked, by_hand = looking(tiny_models.backbone, clip)
    assert set(looked) == set(plain) | {"corrector_attention"}
    for name in plain:  # the plain run never builds the weights (`blockwise_attention`):
        np.testing.assert_allclose(looked[name], plain[name], rtol=1e-5, atol=1e-5, err_msg=name)
    weights = looked["corrector_attention"]  # [B, T, K, h, w], the grid at stride 4
    side = tiny.resolution // 4
    assert weights.shape == (2, 16, tiny.backbone.num_tokens, side, side)
    assert weights.dtype == jnp.float32 and bool((weights >= 0).all())
    np.testing.assert_allclose(weights.sum(axis=(3, 4)), 1.0, atol=1e-5)  # every token, frame
    assert by_hand.shape[:3] == (2, 2, tiny.backbone.corrector.num_heads)
    np.testing.assert_allclose(by_hand.mean(axis=(0, 2)).reshape(weights[:, 2].shape),
                               weights[:, 2], atol=1e-6)  # the mean over layers and heads


def test_corrector_following_on_hand_made_maps():
    tracks = np.array([[[2.0 + 4 * t, 6.0] for t in range(5)]], np.float32)  # 4 px right a frame
    on_point = np.zeros((5, 2, 4, 8), np.float32)  # token 0 on the point's cell; 1 its row
    on_point[np.arange(5), 0, 1, np.arange(5)] = 1.0
    on_point[:, 1, 1] = 1 / 8
    out = tracking.corrector_following(on_point, tracks, np.ones((1, 5), bool), height=16,
                                       width=32)
    np.testing.assert_allclose(out["token_following"], [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(out["token_speeds"], [4.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(out["content_speeds"], [4.0, 4.0], atol=1e-5)
    np.testing.assert_allclose(out["explained"], [16.0, 0.0], atol=1e-4)
    np.testing.assert_allclose(out["following"], 0.5, atol=1e-6)  # both tokens together
    np.testing.assert_allclose(out["centroids"][:, 0], tracks[0])
    np.testing.assert_allclose(out["centroids"][:, 1], np.tile([16.0, 6.0], (5, 1)))
    with pytest.raises(ValueError, match="same T"):
        tracking.corrector_following(on_point, tracks[:, :4], np.ones((1, 4), bool),
                                     height=16, width=32)


@pytest.mark.parametrize("num_queries", [1, 3, 17])
def test_heads_give_16_frames_for_any_number_of_queries(tiny_models, features, num_queries):
    points = jax.random.uniform(jax.random.key(num_queries), (2, num_queries, 2))
    boxes = jnp.tile(jnp.array([0.1, 0.2, 0.5, 0.6]), (2, num_queries, 1))

    @nnx.jit
    def heads(point_head, box_head, f, p, b):
        return point_head(f, p), point_head(f, p, chunk_size=2), box_head(f, b)

    raw, chunked, box_out = heads(tiny_models.points, tiny_models.boxes, features["features"],
                                  points, boxes)
    assert raw.shape == chunked.shape == box_out.shape == (2, num_queries, 16, 4)
    np.testing.assert_allclose(chunked, raw, atol=1e-5)
    predictions = ego4d.point_predictions(raw)
    assert predictions["tracks"].shape == (2, num_queries, 16, 2)
    assert ((predictions["tracks"] >= 0) & (predictions["tracks"] <= 1)).all()
    assert predictions["visible"].dtype == jnp.bool_


def test_heads_refuse_clips_that_are_not_16_frames(tiny_models, features, shape_error):
    with pytest.raises(ValueError, match="exactly 16 frames"):
        tiny_models.points(features["features"][:, :15], jnp.zeros((2, 1, 2)))
    with pytest.raises(ValueError, match=r"queries must be \[B, Q, 4\]"):
        tiny_models.boxes(features["features"], jnp.zeros((2, 1, 2)))
    with shape_error("queries", "f32[3,1,2]"):  # B differs from the features'
        tiny_models.points(features["features"], jnp.zeros((3, 1, 2)))
    with shape_error("queries", "f32[1,2]"):  # no batch axis
        tiny_models.points(features["features"], jnp.zeros((1, 2)))
    with shape_error("raw", "f32[2,3]"):
        ego4d.point_predictions(jnp.zeros((2, 3)))


def test_track_video_chains_windows(tiny_models):
    video = (np.random.default_rng(0).uniform(size=(33, 24, 40, 3)) * 255).astype(np.uint8)
    points = np.array([[5.0, 5.0], [30.0, 20.0], [39.5, 0.5]], np.float32)
    box = np.array([[0.1, 0.1, 0.5, 0.5]], np.float32)
    long = tracking.track_video(tiny_models, video, points=points, boxes=box)
    assert long["tracks"].shape == (3, 33, 2) and long["visible"].shape == (3, 33)
    assert long["boxes"].shape == (1, 33, 4)
    assert ((long["tracks"] >= 0) & (long["tracks"] <= [40, 24])).all()
    short = tracking.track_video(tiny_models, video[:16], points=points, boxes=box)
    np.testing.assert_array_equal(short["tracks"], long["tracks"][:, :16])
    few = tracking.track_video(tiny_models, video[:5], points=points)  # padded window
    assert few["tracks"].shape == (3, 5, 2) and "boxes" not in few
    with pytest.raises(ValueError, match="inside the 40×24 frame"):
        tracking.track_video(tiny_models, video, points=[[41.0, 3.0]])


def test_drawing_and_query_helpers():
    video = np.zeros((2, 20, 30, 3), np.uint8)
    drawn = tracking.overlay_tracks(video, [[[10.2, 5.7], [12.0, 8.0]]], [[True, False]],
                                    colours=[[255, 0, 0]])
    assert (drawn[0, 5, 10] == [255, 0, 0]).all()  # a filled dot at (x, y) = (10.2, 5.7)
    assert (drawn[1, 8, 12] == 0).all() and drawn[1].any()  # a ring: hollow centre
    boxed = tracking.overlay_boxes(video, [[[0.5, 0.5, 1.0, 1.0], [0, 0, 0, 0]]],
                                   colours=[[0, 0, 255]])
    assert (boxed[0, 10, 15:] == [0, 0, 255]).all() and not boxed[1].any()
    np.testing.assert_allclose(tracking.grid_points(20, 30, 2), [[7.5, 5], [22.5, 5], [7.5, 15],
                                                                 [22.5, 15]])
    np.testing.assert_allclose(tracking.parse_points("1,2;3.5,4 5,6"), [[1, 2], [3.5, 4], [5, 6]])
    for bad in ("", "1,2,3", "a,b"):
        with pytest.raises(ValueError, match="x,y"):
            tracking.parse_points(bad)


# --- the command ------------------------------------------------------------------------

def test_moog_track_runs_end_to_end(tiny_files, tmp_path, capsys):
    import imageio_ffmpeg
    import mediapy

    mediapy.set_ffmpeg(imageio_ffmpeg.get_ffmpeg_exe())
    frames = np.zeros((20, 48, 64, 3), np.uint8)
    for t in range(20):
        frames[t, 10:26, 4 + 2 * t:20 + 2 * t] = (255, 200, 0)
    video = tmp_path / "square.mp4"
    mediapy.write_video(video, frames, fps=10)
    folder = str(Path(tiny_files["backbone_npz"]).parent)
    out = tmp_path / "out" / "tracks.mp4"
    argv = ["track", str(video), "--ego4d-dir", folder, "--size", "tiny", "--grid", "3",
            "--out", str(out)]
    assert cli.main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["frames"] == 20 and result["points"] == 9 and result["video"] == str(out)
    written = datasets.read_video(str(out))
    assert written.shape == (20, 48, 64, 3)
    tracks = np.load(result["tracks"])
    assert tracks["tracks"].shape == (9, 20, 2) and tracks["visible"].shape == (9, 20)

    assert cli.main(["track", str(video), "--ego4d-dir", folder, "--size", "tiny",
                     "--points", "10,10;70,5", "--out", str(out)]) == 2
    assert "inside the 64×48 frame" in capsys.readouterr().err
    assert cli.main(["track", str(video), "--ego4d-dir", str(tmp_path), "--size", "tiny",
                     "--out", str(out)]) == 2
