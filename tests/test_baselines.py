"""On-the-grid baselines (chapter 10): shapes and MooG's interface, parameter counts,
Grid's lack of state, Grid Rec.'s causal recurrence, training and loading; and
chapter 10a's `comparison`: the token-following score, its binding ceiling, the
cross-clip ARI, and `moog compare` end to end on `tiny`."""

import dataclasses
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from moog_lib import baselines, cli, comparison, configs, optimization, readouts, train

TINY = configs.get("tiny")
M = TINY.model
SIDE = TINY.data.resolution // 4  # tiny: 32² frames, encoder stride 4
N = SIDE * SIDE


@pytest.fixture(scope="module")
def clip():
    return jax.random.uniform(jax.random.key(0), (2, 4, 32, 32, 3))


@pytest.fixture(scope="module")
def models():
    return {kind: baselines.build_model(kind, M, rngs=nnx.Rngs(0))
            for kind in ("grid", "grid_rec")}


# --- shapes and interface --------------------------------------------------------------

@pytest.mark.parametrize("kind", ["grid", "grid_rec"])
def test_outputs_have_moogs_shapes(models, clip, kind):
    run = nnx.jit(lambda m, x, k: m(x, key=k, training=True, return_attention=True))
    out = run(models[kind], clip, jax.random.key(1))
    s = M.train_subsample
    assert out["prediction"].shape == out["target"].shape == (2, 4, 32 // s, 32 // s, 3)
    assert out["prediction"].dtype == jnp.float32 and out["loss"].shape == ()
    assert out["offsets"].shape == (2, 4, 2) and int(out["offsets"].max()) < s
    assert out["attention"].shape == (2, 4, 32 // s, 32 // s, N)
    np.testing.assert_allclose(out["attention"].sum(-1), 1.0, atol=1e-5)
    assert out["tokens"].shape == (2, 4, N, M.token_dim)
    evaluation = nnx.jit(lambda m, x, k: m(x, key=k))(models[kind], clip, jax.random.key(1))
    assert evaluation["prediction"].shape[2] == 32 // M.eval_subsample
    assert not evaluation["offsets"].any()
    tokens = nnx.jit(lambda m, x, k: m.readout_tokens(x, k))(models[kind], clip, jax.random.key(2))
    assert tokens.shape == (2, 4, N if kind == "grid" else 2 * N, M.token_dim)


def test_readout_model_reads_readout_tokens_and_moog_is_unchanged(models, clip):
    @nnx.jit
    def both(readout_model, frames, key):  # what the readout reads, what it should read
        backbone = readout_model.backbone
        expected = (backbone.readout_tokens(frames, key) if hasattr(backbone, "readout_tokens")
                    else readouts.token_features(backbone, frames, key))
        return readout_model.tokens(frames, key), expected

    head = nnx.Linear(1, 1, rngs=nnx.Rngs(0))
    moog = baselines.build_model("moog", M, rngs=nnx.Rngs(0))
    assert not hasattr(moog, "readout_tokens")  # MooG keeps chapter 07's [z_p, z_c]
    for backbone in (models["grid_rec"], moog):
        read, expected = both(readouts.ReadoutModel(backbone, head, frozen=True), clip,
                              jax.random.key(3))
        np.testing.assert_allclose(read, expected, atol=1e-6)


def test_bad_input_is_refused(models, clip, shape_error):
    with pytest.raises(ValueError, match="no recurrent state"):
        models["grid"](clip, state=jnp.zeros((2, N, M.token_dim)))
    with pytest.raises(ValueError, match="key"):
        models["grid_rec"](clip)
    with pytest.raises(ValueError, match="carried state"):
        models["grid_rec"](clip, key=jax.random.key(0), state=jnp.zeros((2, N, M.token_dim + 1)))
    with shape_error("frames", f"f32[{','.join(map(str, clip.shape[1:]))}]"):  # no batch axis
        models["grid"](clip[0])
    with shape_error("state", f"f32[1,{N},{M.token_dim}]"):  # B differs from the frames'
        models["grid_rec"](clip, key=jax.random.key(0), state=jnp.zeros((1, N, M.token_dim)))
    with shape_error("offsets", "f32[2,4,2]"):  # offsets are integers
        models["grid"](clip, offsets=jnp.zeros((2, 4, 2)))
    recurrence = models["grid_rec"].recurrence
    with shape_error("grid_tokens", f"f32[2,{N},{M.token_dim}]"):  # no time axis
        recurrence.unroll(jnp.zeros((2, N, M.token_dim)), jnp.zeros((2, N, M.token_dim)))
    with pytest.raises(ValueError, match=f"width D = {M.token_dim}"):
        recurrence.unroll(jnp.zeros((2, 4, N, 8)), jnp.zeros((2, N, 8)))
    with pytest.raises(ValueError, match="unknown model kind"):
        baselines.build_model("vit", M, rngs=nnx.Rngs(0))


# --- capacity ----------------------------------------------------------------------------

def test_paper_parameter_counts_are_pinned():
    paper = configs.get("paper").model
    counts = {kind: baselines.count_parameters(nnx.eval_shape(
        lambda k=kind: baselines.build_model(k, paper, rngs=nnx.Rngs(0))))
        for kind in baselines.MODEL_KINDS}
    assert counts == {"moog": 34_726_787, "grid": 27_900_291, "grid_rec": 36_299_651}
    assert baselines.grid_transformer_config(paper) == configs.TransformerConfig(3, 8, 512, 2048)


def test_capacity_rule_at_every_preset():
    """Grid Rec. within 5 % of MooG (the capacity-matched pair); Grid 60–90 % of it."""
    rows = baselines.capacity_table(("tiny", "cpu", "paper"))
    moog = {r["preset"]: r["parameters"] for r in rows if r["kind"] == "moog"}
    for r in rows:
        ratio = r["parameters"] / moog[r["preset"]]
        if r["kind"] == "grid_rec":
            assert 1.0 <= ratio < 1.05, r
        elif r["kind"] == "grid":
            assert 0.6 < ratio < 0.9, r
    tokens = {(r["preset"], r["kind"]): r["tokens"] for r in rows}
    assert tokens[("cpu", "moog")] == 16 and tokens[("cpu", "grid")] == 256
    assert tokens[("paper", "moog")] == tokens[("paper", "grid_rec")] == 1024


# --- recurrence ----------------------------------------------------------------------------

def test_grid_has_no_recurrent_state(models, clip):
    net = models["grid"]
    run = nnx.jit(lambda m, x: m(x))
    base = run(net, clip)
    for t in range(4):
        changed = run(net, (1.0 - clip).at[:, t].set(clip[:, t]))  # every frame but t changes
        np.testing.assert_allclose(changed["tokens"][:, t], base["tokens"][:, t], atol=1e-6)
        np.testing.assert_allclose(changed["prediction"][:, t], base["prediction"][:, t],
                                   atol=1e-6)
        assert not np.allclose(changed["tokens"], base["tokens"])


def test_grid_rec_depends_on_the_previous_frame_not_the_next(models, clip):
    net = models["grid_rec"]
    key = jax.random.key(4)
    tokens = nnx.jit(lambda m, x, k: m.readout_tokens(x, k))
    base = tokens(net, clip, key)
    past = tokens(net, clip.at[:, 1].set(1.0 - clip[:, 1]), key)
    future = tokens(net, clip.at[:, 3].set(1.0 - clip[:, 3]), key)
    corrected = slice(N, 2 * N)
    assert float(jnp.abs(past[:, 2, corrected] - base[:, 2, corrected]).max()) > 1e-3
    np.testing.assert_allclose(past[:, 2, :N], base[:, 2, :N], atol=1e-6)  # g_t: per frame
    np.testing.assert_allclose(future[:, :3], base[:, :3], atol=1e-6)  # causal


def test_grid_rec_chunks_carry_the_state(models, clip):
    net = models["grid_rec"]
    run = nnx.jit(lambda m, x, s: m(x, state=s))
    state = net.recurrence.initial_state(jax.random.key(5), 2, N)
    whole = run(net, clip, state)
    first = run(net, clip[:, :2], state)
    second = run(net, clip[:, 2:], first["state"])
    for name in ("prediction", "corrected_tokens"):
        np.testing.assert_allclose(whole[name], jnp.concatenate(
            [first[name], second[name]], 1), atol=1e-5)


# --- what Grid Rec.'s decoder reads ----------------------------------------------------------

def test_grid_rec_decodes_the_grid_tokens_by_default(models, clip):
    """The paper (Appendix C.3.2): the decoder reads the encoder's output g_t, as in Grid."""
    assert not M.grid_rec_decode_corrected
    net = models["grid_rec"]
    run = nnx.jit(lambda m, x, s: m(x, state=s))
    state = net.recurrence.initial_state(jax.random.key(5), 2, N)
    out = run(net, clip, state)
    np.testing.assert_allclose(out["tokens"], out["grid_tokens"], atol=0)
    assert not np.allclose(out["corrected_tokens"], out["grid_tokens"])
    # so the past does not reach the reconstruction: another state, the same frames
    other = run(net, clip, 3.0 * state + 1.0)
    np.testing.assert_allclose(other["prediction"], out["prediction"], atol=1e-6)
    assert not np.allclose(other["corrected_tokens"], out["corrected_tokens"])
    # the readouts still read both, [g_t, c_t]
    read = nnx.jit(lambda m, x, k: m.readout_tokens(x, k))(net, clip, jax.random.key(5))
    np.testing.assert_allclose(read[:, :, :N], out["grid_tokens"], atol=1e-6)
    np.testing.assert_allclose(read[:, :, N:], out["corrected_tokens"], atol=1e-5)


def test_grid_rec_switch_decodes_the_corrected_tokens(clip):
    switched = dataclasses.replace(M, grid_rec_decode_corrected=True)
    net = baselines.build_model("grid_rec", switched, rngs=nnx.Rngs(0))
    run = nnx.jit(lambda m, x, s: m(x, state=s))
    state = net.recurrence.initial_state(jax.random.key(5), 2, N)
    out = run(net, clip, state)
    np.testing.assert_allclose(out["tokens"], out["corrected_tokens"], atol=0)
    other = run(net, clip, 3.0 * state + 1.0)
    assert not np.allclose(other["prediction"], out["prediction"], atol=1e-6)
    assert configs.override(TINY, ["model.grid_rec_decode_corrected=True"]).model == switched


# --- training --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, decode_corrected", [("grid", False), ("grid_rec", False),
                                                    ("grid_rec", True)])
def test_what_the_pretraining_loss_trains(clip, kind, decode_corrected):
    """Every part gets a gradient, except Grid Rec.'s recurrence under the paper's decoder
    input (g_t): its gradient is exactly zero; with the switch (c_t) it gets one too."""
    config = dataclasses.replace(M, grid_rec_decode_corrected=decode_corrected)
    net = baselines.build_model(kind, config, rngs=nnx.Rngs(1))
    batch = {"video": (np.asarray(clip) * 255).astype(np.uint8)}
    grads = nnx.jit(lambda m, b, k: nnx.grad(
        lambda m: optimization.pretraining_loss(m, b, k)[0])(m))(net, batch, jax.random.key(6))
    largest = {part: max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads[part]))
               for part in grads}
    assert set(largest) == {"encoder", "grid_transformer", "decoder"} | (
        {"recurrence"} if kind == "grid_rec" else set())
    for part, value in largest.items():
        if part == "recurrence" and not decode_corrected:
            assert value == 0.0, largest
        else:
            assert value > 0, (part, largest)


def test_grid_rec_runs_record_their_decoder_input(tmp_path):
    run = tmp_path / "old"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "1").mkdir()
    (run / baselines.BASELINE_FILE).write_text(json.dumps({"kind": "grid_rec"}))
    assert baselines.run_decodes_corrected(run)  # written before the switch: decoded c_t
    with pytest.raises(ValueError, match="grid_rec_decode_corrected=True"):
        baselines.train_baseline(TINY, run, "grid_rec", steps=1, progress=False)
    (run / baselines.BASELINE_FILE).write_text(
        json.dumps({"kind": "grid_rec", "grid_rec_decode_corrected": False}))
    assert not baselines.run_decodes_corrected(run)
    switched = configs.override(TINY, ["model.grid_rec_decode_corrected=True"])
    with pytest.raises(ValueError, match="grid_rec_decode_corrected=False"):
        baselines.train_baseline(switched, run, "grid_rec", steps=1, progress=False)


@pytest.mark.slow
def test_train_load_and_refusals(tmp_path):
    config = configs.override(TINY, ["train.log_every=1", "train.checkpoint_every=1"])
    record = baselines.train_baseline(config, tmp_path / "grid", "grid", steps=1,
                                      eval_sources={}, progress=False)
    assert record["step"] == 1 and np.isfinite(record["train"]["loss"])
    net, loaded_config = baselines.load_baseline(tmp_path / "grid")
    assert isinstance(net, baselines.Grid) and loaded_config == config
    assert baselines.run_kind(tmp_path / "grid") == "grid"
    with pytest.raises(ValueError, match="on-the-grid baseline"):
        readouts.check_backbone(config, tmp_path / "grid")
    with pytest.raises(ValueError, match="holds a Grid run"):
        baselines.train_baseline(config, tmp_path / "grid", "grid_rec", steps=1, progress=False)
    assert baselines.load_baseline(tmp_path / "grid", config) is not None


# --- token following ----------------------------------------------------------------------------

def _blobs(centres, h=8, stride=4, width=1.2):
    ys = stride * np.arange(h) + stride // 2 + 0.5
    grid = np.stack(np.meshgrid(ys, ys), -1)  # (x, y)
    d2 = ((grid[None, :, :, None] - centres[:, None, None]) ** 2).sum(-1)
    logits = -d2 / (2 * (width * stride) ** 2)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    return weights / weights.sum(-1, keepdims=True)


@pytest.mark.parametrize("speed", [(1.5, 0.0), (0.0, -1.0), (1.0, 1.0)])
def test_token_following_on_hand_made_attention(speed):
    speed = np.asarray(speed)
    frames = np.arange(6)[:, None, None]
    centres = np.stack(np.meshgrid(np.arange(4, 32, 8.0), np.arange(4, 32, 8.0)), -1).reshape(-1, 2)
    start = np.stack(np.meshgrid(np.arange(0.5, 32, 2), np.arange(0.5, 32, 2)), -1).reshape(-1, 2)
    tracks = start[:, None] + speed * np.arange(6)[None, :, None]
    occluded = ((tracks < 0) | (tracks >= 32)).any(-1)

    def score(moving_centres, tracks=tracks):
        sums = comparison.token_following_sums(
            jnp.asarray(_blobs(moving_centres)[None]), jnp.asarray(tracks[None]),
            jnp.asarray(occluded[None]), jnp.ones((1, len(tracks)), bool), height=32, width=32)
        return comparison.following_score(sums)

    locked = score(np.repeat(centres[None], 6, 0))
    assert locked["following"] == 0.0 and locked["token_speed"] == 0.0
    assert abs(locked["content_speed"] - np.linalg.norm(speed)) < 1e-4
    assert score(centres[None] + speed * frames)["following"] > 0.6
    assert score(centres[None] - speed * frames)["following"] < -1.0
    still = score(np.repeat(centres[None], 6, 0), np.repeat(start[:, None], 6, 1))
    assert np.isnan(still["following"])  # nothing moves: F is undefined, not 0 or 1


def test_binding_ceiling_of_a_square_sliding_on_a_still_background():
    # A 4x4 object slides right 1 px a frame over a 16x16 still background; every pixel
    # centre is a tracked point (background points hidden under the object are occluded).
    frames, size = 4, 16
    seg = np.zeros((1, frames, size, size, 1), np.uint8)
    for t in range(frames):
        seg[0, t, 6:10, 2 + t:6 + t] = 1
    ys, xs = np.mgrid[:size, :size].reshape(2, -1) + 0.5
    on_object = seg[0, 0, ys.astype(int), xs.astype(int), 0] == 1
    steps = np.arange(frames) * on_object[:, None]  # [N, T]: object points move, others not
    points = np.stack([xs[:, None] + steps, np.broadcast_to(ys[:, None], steps.shape)], -1)
    covered = seg[0][:, ys.astype(int), xs.astype(int), 0].T == 1  # [N, T]
    batch = {"video": np.zeros((1, frames, size, size, 3), np.uint8), "segmentations": seg,
             "target_points": points[None], "occluded": (covered & ~on_object[:, None])[None],
             "point_valid": np.ones((1, len(xs)), bool)}
    # The object's token moves exactly with it; the background's centroid shifts a little.
    assert 0.9 < comparison.binding_ceiling([batch], stride=1)["following"] < 1.0
    attention = comparison.segmentation_attention(seg, stride=2, tiles=2)
    assert attention.shape == (1, frames, 8, 8, 1 + 4)
    np.testing.assert_array_equal(attention.sum(-1), 1.0)
    blind = dict(batch, segmentations=np.zeros_like(seg))  # still tiles only: F = 0 exactly
    assert comparison.binding_ceiling([blind], stride=1, tiles=2)["following"] == 0.0


def test_token_following_rejects_mismatched_tracks(shape_error):
    with shape_error("target_points", "f32[1,5,3,2]"):  # T = 3 tracks against T = 4 maps
        comparison.token_following_sums(jnp.ones((1, 4, 8, 8, 3)), jnp.zeros((1, 5, 3, 2)),
                                       jnp.zeros((1, 5, 3), bool), jnp.ones((1, 5), bool),
                                       height=32, width=32)


def test_adjusted_rand_index():
    a = jnp.array([0, 0, 1, 1, 2, 2])
    assert float(comparison.adjusted_rand_index(a, (a + 1) % 3, 3)) == pytest.approx(1.0)  # renamed
    # by hand: every cell of the 2×2 table holds 1 → index 0, expected 2/3, max 2 → −1/2
    assert float(comparison.adjusted_rand_index(jnp.array([0, 0, 1, 1]), jnp.array([0, 1, 0, 1]),
                                               2)) == pytest.approx(-0.5)


def test_cross_clip_agreement_tells_a_fixed_partition_from_one_set_by_content():
    centres = np.stack(np.meshgrid(np.arange(4, 32, 8.0), np.arange(4, 32, 8.0)), -1).reshape(-1, 2)
    fixed = np.repeat(_blobs(np.repeat(centres[None], 5, 0))[None], 3, 0)  # [3 clips, 5, 8, 8, 16]
    rng = np.random.default_rng(0)
    by_content = np.stack([_blobs(np.repeat(rng.uniform(0, 32, (1, 16, 2)), 5, 0)) for _ in range(3)])
    assert float(comparison.cross_clip_agreement(jnp.asarray(fixed))) == pytest.approx(1.0)
    assert float(comparison.cross_clip_agreement(jnp.asarray(by_content))) < 0.5
    assert np.isnan(float(comparison.cross_clip_agreement(jnp.asarray(fixed[:1]))))


# --- the comparison -------------------------------------------------------------------------------

@pytest.mark.slow
def test_compare_command_end_to_end(tmp_path):
    """Grid Rec., one scene, one readout, two steps: every stage of `compare` (a run per
    model costs tens of seconds of compilation on a CPU; the table for all models and
    tasks is checked below without computing anything)."""
    out = tmp_path / "compare"
    argv = ["compare", "--preset", "tiny", "--steps", "2", "--readout-steps", "1",
            "--scenes", "static", "--models", "grid_rec", "--tasks", "depth",
            "--out", str(out), "--set", "train.log_every=1", "--set", "readout.train.log_every=1",
            "--set", "data.clip_frames=4"]  # whole clips = windows: fewer compilations
    assert cli.main(argv) == 0
    rows = json.loads((out / "results.json").read_text())
    assert [(r["scene"], r["kind"]) for r in rows] == [("static", "grid_rec")]
    for r in rows:
        assert r["steps"] == 2 and r["readout_steps"] == 1
        assert r["readouts"]["depth"]["steps"] == 1
        assert np.isfinite(r["psnr"]) and np.isfinite(r["readouts"]["depth"]["readout"]["abs_rel"])
        assert np.isfinite(r["readouts"]["depth"]["baseline"]["abs_rel"])
    assert rows[0]["tokens"] == N and np.isfinite(rows[0]["following"])
    assert (out / "static" / "grid_rec" / "readouts" / "depth_frozen" / "checkpoints").exists()
    table = (out / "results.md").read_text()
    assert "| Grid Rec. | h·w = 64 |" in table and "| trivial |" in table
    assert "(mean depth)" in table
    assert "## Scene preset `static`" in table
    # Every stage is saved: running again recomputes nothing and gives the same rows.
    tic = time.perf_counter()
    assert cli.main(argv) == 0
    assert json.loads((out / "results.json").read_text()) == rows
    assert time.perf_counter() - tic < 20


def _fake_row(scene, kind, following):
    scores = {"points": ("average_jaccard", 0.3), "depth": ("abs_rel", 0.2),
              "boxes": ("mean_iou", 0.5)}
    readout_rows = {task: {"readout": {metric: value + (0.1 if kind == "moog" else 0.0)},
                           "baseline": {metric: value / 2}} for task, (metric, value) in
                    scores.items()}
    return {"scene": scene, "kind": kind, "model": baselines.MODEL_NAMES[kind], "tokens": 64,
            "parameters": 1_000_000, "steps": 300, "pretrain_minutes": 5.0, "psnr": 25.0,
            "copy_psnr": 22.0, "following": following, "token_speed": 0.5, "content_speed": 0.6,
            "readout_steps": 150, "readout_minutes": 3.0, "readouts": readout_rows,
            "scene_motion": 0.5}


def test_comparison_table_for_every_model_and_task():
    rows = [_fake_row(scene, kind, f) for scene in ("static", "movi_e")
            for kind, f in zip(baselines.MODEL_KINDS, (0.4, 0.0, 0.1))]
    table = comparison.format_comparison(rows, configs.get("cpu"))
    assert table.count("| trivial |") == 2 and table.count("| MooG |") == 2
    header = next(line for line in table.splitlines() if line.startswith("| model |"))
    assert header.count("|") == next(line for line in table.splitlines()
                                     if line.startswith("|---")).count("|")
    for name in ("points AJ ↑", "depth AbsRel ↓", "boxes IoU ↑", "(zero motion)", "(still box)"):
        assert name in table
    # MooG's lead: +0.1 on AJ and IoU; AbsRel is lower-is-better, so 0.1 higher is a -0.1 lead.
    assert "| movi_e | Grid Rec. | +0.100 | -0.100 | +0.100 | +0.30 |" in table


def test_compare_budget_splits_the_minutes():
    # 2 scenes x 3 models: 15 min a run, two thirds pretraining, the rest over 3 readouts.
    budget = comparison.compare_budget(90, 2, 3, 3)
    assert budget["pretrain_minutes"] == pytest.approx(10.0)
    assert budget["readout_minutes"] == pytest.approx(5 / 3)
    assert comparison.compare_budget(90, 2, 3, 0) == {"pretrain_minutes": 15.0,
                                                     "readout_minutes": None}
    for bad in (0, -5, float("nan")):
        with pytest.raises(ValueError, match="positive number"):
            comparison.compare_budget(bad, 1, 1, 1)
    with pytest.raises(ValueError, match="not both"):
        comparison.compare(TINY, "unused", minutes=5, steps=2)


def test_a_budget_with_readout_steps_is_all_pretraining(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(train, "make_sources", lambda *a, **k: (None, None))
    monkeypatch.setattr(train, "held_out_batches", lambda *a, **k: [])
    monkeypatch.setattr(comparison, "scene_motion", lambda *a: 0.0)
    monkeypatch.setattr(comparison, "compare_one", lambda config, kind, run_dir, **kw: calls.append(
        (config.readout.train.steps, kw["pretrain_minutes"], kw["readout_minutes"])) or dict(
        _fake_row("static", kind, 0.0), steps=10, readout_steps=config.readout.train.steps))
    comparison.compare(TINY, tmp_path, scenes=("static",), minutes=6, readout_steps=7)
    assert calls == [(7, 2.0, None)] * 3  # 6 min over 3 models, all pretraining
    assert "then frozen readouts trained 7 steps each" in (tmp_path / "results.md").read_text()


def test_comparison_table_says_when_the_models_trained_for_the_same_time():
    rows = [dict(_fake_row("static", kind, 0.0), steps=steps, readout_steps=steps // 2)
            for kind, steps in zip(baselines.MODEL_KINDS, (300, 500, 200))]
    table = comparison.format_comparison(rows, configs.get("cpu"))
    assert "pretrained for the same time (steps: MooG 300, Grid 500, Grid Rec. 200)" in table
    assert "readouts trained for the same time each" in table
    rows.append(dict(rows[0], scene="movi_e", steps=400))  # several scenes: each count says where
    assert "(steps: MooG 300 on static, Grid 500 on static, Grid Rec. 200 on static, MooG 400 on " \
        "movi_e)" in comparison.format_comparison(rows, configs.get("cpu"))


def test_compare_refuses_unknown_names(tmp_path):
    with pytest.raises(ValueError, match="scene preset"):
        comparison.compare(TINY, tmp_path, scenes=("forest",))
    with pytest.raises(ValueError, match="model"):
        comparison.compare(TINY, tmp_path, kinds=())
    assert cli.main(["compare", "--preset", "tiny", "--steps", "0", "--out", str(tmp_path)]) == 2
