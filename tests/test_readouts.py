"""Readouts (chapters 07–09): TAP-Vid metrics against a loop transcription of their
definitions, IoU and AbsRel edge cases, the point loss, head shapes and query
independence, frozen vs end-to-end updates, learning, bad input, the CLI."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from moog_lib import boxes, cli, configs, data, datasets, optimization, points, readouts, train
from moog_lib.checkpoint import Checkpointer
from moog_lib.model import MooG

TINY = configs.get("tiny")


# --- TAP-Vid metrics -------------------------------------------------------------------

def loop_metrics(query_points, gt_occ, gt, pred_occ, pred, mode):
    """metrics.md, one video, one frame at a time (independent of the vectorised code)."""
    b, n, t = gt_occ.shape
    out = {k: np.zeros(b) for k in ["occlusion_accuracy", "average_jaccard",
                                     "average_pts_within_thresh"]}
    for v in range(b):
        scored = [(i, f) for i in range(n) for f in range(t)
                  if (f > round(query_points[v, i, 0]) if mode == "first"
                      else f != round(query_points[v, i, 0]))]
        out["occlusion_accuracy"][v] = np.mean([gt_occ[v, i, f] == pred_occ[v, i, f]
                                                for i, f in scored])
        jaccards, within_fracs = [], []
        for delta in (1, 2, 4, 8, 16):
            tp = fp = visible = correct = 0
            for i, f in scored:
                close = np.sum((pred[v, i, f] - gt[v, i, f]) ** 2) < delta**2
                visible += not gt_occ[v, i, f]
                correct += close and not gt_occ[v, i, f]
                tp += close and not gt_occ[v, i, f] and not pred_occ[v, i, f]
                fp += (not pred_occ[v, i, f]) and (gt_occ[v, i, f] or not close)
            within_fracs.append(correct / visible if visible else np.nan)
            jaccards.append(tp / (visible + fp) if visible + fp else np.nan)
        out["average_jaccard"][v] = np.mean(jaccards)
        out["average_pts_within_thresh"][v] = np.mean(within_fracs)
    return out


def random_tracks(seed, b=3, n=6, t=7, spread=6.0):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0, 256, (b, n, t, 2)).astype(np.float32)
    pred = (gt + rng.normal(0, spread, gt.shape)).astype(np.float32)
    query = np.concatenate([rng.integers(0, t, (b, n, 1)), rng.uniform(0, 256, (b, n, 2))], -1)
    return (query.astype(np.float32), rng.random((b, n, t)) < 0.3, gt,
            rng.random((b, n, t)) < 0.3, pred)


@pytest.mark.parametrize("mode", ["first", "strided"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tapvid_metrics_match_their_definition(mode, seed):
    args = random_tracks(seed)
    ours = points.tapvid_metrics(*args, mode)
    expected = loop_metrics(*args, mode)
    for key, value in expected.items():
        np.testing.assert_allclose(np.asarray(ours[key]), value, rtol=1e-6, err_msg=key)
    assert set(ours) == {"occlusion_accuracy", "average_jaccard", "average_pts_within_thresh",
                         *(f"pts_within_{d}" for d in (1, 2, 4, 8, 16)),
                         *(f"jaccard_{d}" for d in (1, 2, 4, 8, 16))}
    assert all(np.shape(v) == (3,) for v in ours.values())


def test_tapvid_thresholds_are_strict_and_each_is_hand_computed():
    query = np.zeros((1, 1, 3), np.float32)
    gt_occ = np.zeros((1, 1, 2), bool)
    gt = np.zeros((1, 1, 2, 2), np.float32)
    pred = gt.copy()
    pred[0, 0, 1] = [4.0, 0.0]  # exactly 4 px away in the scored frame
    m = points.tapvid_metrics(query, gt_occ, gt, gt_occ, pred, "first")
    for delta, hit in ((1, 0), (2, 0), (4, 0), (8, 1), (16, 1)):  # 4 is not < 4
        assert float(m[f"pts_within_{delta}"][0]) == hit
        # a miss is both a false positive (predicted visible) and a false negative
        assert float(m[f"jaccard_{delta}"][0]) == (1.0 if hit else 0.0)
    assert abs(float(m["average_jaccard"][0]) - 0.4) < 1e-6
    assert float(m["occlusion_accuracy"][0]) == 1.0


def test_tapvid_video_without_visible_points_is_nan():
    query = np.zeros((2, 1, 3), np.float32)
    gt_occ = np.array([[[False, True, True]], [[False, False, False]]])
    tracks = np.zeros((2, 1, 3, 2), np.float32)
    m = points.tapvid_metrics(query, gt_occ, tracks, np.zeros_like(gt_occ), tracks, "first")
    assert np.isnan(m["pts_within_1"][0]) and float(m["pts_within_1"][1]) == 1.0
    assert float(m["average_jaccard"][0]) == 0.0  # jaccard is 0 / (0 + FP)


@pytest.mark.parametrize("change, argument, actual", [  # refused by the signature
    (lambda a: (a[0], a[1], a[2][:, :, :-1], a[3], a[4]), "gt_tracks", "f32[3,6,3,2]"),
    (lambda a: (a[0], a[1], a[2], a[3][:, :, :-1], a[4]), "pred_occluded", "bool[3,6,3]"),
    (lambda a: (a[0][..., :2], *a[1:]), "query_points", "f32[3,6,2]"),
    (lambda a: (a[0], a[1].astype(np.float32), *a[2:]), "gt_occluded", "f32[3,6,4]"),
])
def test_tapvid_bad_shape_is_named(change, argument, actual, shape_error):
    with shape_error(argument, actual):
        points.tapvid_metrics(*change(random_tracks(0, t=4)), "first")


@pytest.mark.parametrize("change, message", [
    (lambda a: (a[0].copy() + np.array([9, 0, 0], np.float32), *a[1:]), "query frames"),
    (lambda a: (a[0][:, :0], a[1][:, :0], a[2][:, :0], a[3][:, :0], a[4][:, :0]), "empty"),
])
def test_tapvid_bad_input_is_named(change, message):
    with pytest.raises(ValueError, match=message):
        points.tapvid_metrics(*change(random_tracks(0, t=4)), "first")
    with pytest.raises(ValueError, match="query_mode"):
        points.tapvid_metrics(*random_tracks(0), "last")


def reference_metrics(query_points, gt_occluded, gt_tracks, pred_occluded, pred_tracks, mode):
    """The reference `compute_tapvid_metrics`' arithmetic (NumPy, in the inputs' dtype),
    transcribed independently of moog_lib: every key, [b] each."""
    eye = np.eye(gt_tracks.shape[2], dtype=np.int32)
    to_scored = np.cumsum(eye, axis=1) - eye if mode == "first" else 1 - eye
    scored = to_scored[np.round(query_points[..., 0]).astype(np.int32)] > 0
    out = {"occlusion_accuracy": np.sum((pred_occluded == gt_occluded) & scored, axis=(1, 2))
           / np.sum(scored, axis=(1, 2))}
    visible, pred_visible = ~gt_occluded, ~pred_occluded
    for thresh in (1, 2, 4, 8, 16):
        within = np.sum(np.square(pred_tracks - gt_tracks), axis=-1) < np.square(thresh)
        is_correct = within & visible
        out[f"pts_within_{thresh}"] = (np.sum(is_correct & scored, axis=(1, 2))
                                       / np.sum(visible & scored, axis=(1, 2)))
        true_pos = np.sum(is_correct & pred_visible & scored, axis=(1, 2))
        gt_pos = np.sum(visible & scored, axis=(1, 2))
        false_pos = np.sum(((~visible & pred_visible) | (~within & pred_visible)) & scored,
                           axis=(1, 2))
        out[f"jaccard_{thresh}"] = true_pos / (gt_pos + false_pos)
    out["average_jaccard"] = np.mean(np.stack(
        [out[f"jaccard_{t}"] for t in (1, 2, 4, 8, 16)]), axis=0)
    out["average_pts_within_thresh"] = np.mean(np.stack(
        [out[f"pts_within_{t}"] for t in (1, 2, 4, 8, 16)]), axis=0)
    return out


def exact_threshold_tracks(seed, b=4, n=24, t=6):
    """float64 tracks whose errors are δ ∈ {1, 2, 4, 8, 16} px along x or y, written as
    decimals (gt 0.2, prediction 4.2): exactly δ in float64 for some, a hair under δ
    for others, and the other way round once cast to float32."""
    rng = np.random.default_rng(seed)
    gt = np.round(rng.uniform(0, 230, (b, n, t, 2)), 1)  # one decimal, as annotations
    delta = rng.choice([1, 2, 4, 8, 16], (b, n, t))
    axis = rng.integers(0, 2, (b, n, t))
    pred = gt.copy()
    for index in np.ndindex(b, n, t):  # gt + δ as a decimal literal, e.g. float("4.2")
        pred[index + (axis[index],)] = float(f"{gt[index + (axis[index],)] + delta[index]:.1f}")
    query = np.concatenate([rng.integers(0, 2, (b, n, 1)), rng.uniform(0, 256, (b, n, 2))], -1)
    return query, rng.random((b, n, t)) < 0.2, gt, rng.random((b, n, t)) < 0.2, pred


def as_float32(args):
    return tuple(a.astype(np.float32) if a.dtype == np.float64 else a for a in args)


@pytest.mark.parametrize("mode", ["first", "strided"])
def test_tapvid_metrics_compute_float64_inputs_in_float64_as_the_reference(mode):
    args = exact_threshold_tracks(0)
    gt, pred = args[2], args[4]
    squared_64 = np.sum(np.square(pred - gt), -1)
    squared_32 = np.sum(np.square(np.float32(pred) - np.float32(gt)), -1)
    flips = sum(int(((squared_64 < t * t) != (squared_32 < t * t)).sum()) for t in (1, 2, 4, 8, 16))
    assert flips >= 20  # the case bites: float32 arithmetic flips these comparisons
    expected = reference_metrics(*args, mode)
    ours = points.tapvid_metrics(*args, mode)
    assert set(ours) == set(expected)
    for key, value in expected.items():
        assert ours[key].dtype == np.float64, key
        np.testing.assert_allclose(ours[key], value, rtol=0, atol=1e-12, err_msg=key)
    # float32 arithmetic (the inputs cast, or a jitted call) gives other numbers here
    expected_32 = reference_metrics(*as_float32(args), mode)
    assert np.abs(expected_32["average_jaccard"] - expected["average_jaccard"]).max() > 1e-3
    ours_32 = points.tapvid_metrics(*as_float32(args), mode)
    jitted = jax.jit(lambda *a: points._tapvid_metrics(*a, mode, None))(*as_float32(args))
    for key, value in expected_32.items():
        np.testing.assert_allclose(ours_32[key], value, rtol=0, atol=1e-12, err_msg=key)
        np.testing.assert_allclose(jitted[key], value, rtol=0, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("seed", [0, 1])
def test_tapvid_metrics_float32_inputs_give_the_jitted_numbers(seed):
    """float32 inputs: NumPy in float32 outside jit, jax.numpy inside, one answer."""
    args = random_tracks(seed)
    eager = points.tapvid_metrics(*args, "first")
    jitted = jax.jit(lambda *a: points._tapvid_metrics(*a, "first", None))(*args)
    for key, value in eager.items():
        np.testing.assert_allclose(value, jitted[key], rtol=1e-6, err_msg=key)


def test_zero_motion_baseline_is_perfect_on_still_points():
    batch = {"video": np.zeros((1, 4, 32, 32, 3), np.uint8),
             "query_points": np.array([[[0, 10.5, 20.5]]], np.float32),
             "target_points": np.tile(np.array([20.5, 10.5], np.float32), (1, 1, 4, 1)),
             "occluded": np.zeros((1, 1, 4), bool), "point_valid": np.ones((1, 1), bool)}
    scores = points.point_baseline(batch, {}, TINY)
    assert scores == {"average_jaccard": 1.0, "average_pts_within_thresh": 1.0,
                      "occlusion_accuracy": 1.0}


# --- boxes and depth ---------------------------------------------------------------------

def test_iou_edge_cases_and_inverted_input():
    unit = jnp.array([0.0, 0.0, 1.0, 1.0])
    cases = [(unit, 1.0), (jnp.array([0.0, 0.0, 0.5, 1.0]), 0.5),
             (jnp.array([2.0, 2.0, 3.0, 3.0]), 0.0), (jnp.array([0.5, 0.5, 0.5, 0.9]), 0.0),
             (jnp.array([1.0, 1.0, 0.0, 0.0]), 0.0)]
    for other, expected in cases:
        assert abs(float(boxes.box_iou(unit, other)) - expected) < 1e-6
        assert abs(float(boxes.box_iou(other, unit)) - expected) < 1e-6
    assert float(boxes.box_iou(jnp.zeros(4), jnp.zeros(4))) == 0.0
    with pytest.raises(ValueError, match="inverted"):
        boxes.check_boxes(np.array([[0.2, 0.5, 0.4, 0.1]]))
    boxes.check_boxes(np.array([[0.2, 0.2, 0.2, 0.2]]))  # zero area is a valid input
    with pytest.raises(ValueError, match="inverted"):
        boxes.box_loss(None, jnp.zeros((1, 2, 4, 8)),
                       {"boxes": np.array([[[[0.5, 0, 0.1, 1]] * 2]], np.float32),
                        "box_valid": np.ones((1, 1, 2), bool)}, None, config=TINY)


def test_box_shapes_are_declared(shape_error):
    with shape_error("boxes_a", "f32[3]"):
        boxes.box_iou(np.zeros(3, np.float32), np.zeros(3, np.float32))
    with shape_error("boxes_b", "f32[3,4]"):  # [2, 4] against [3, 4]
        boxes.box_iou(np.zeros((2, 4), np.float32), np.zeros((3, 4), np.float32))
    with shape_error("boxes", "f64[1,3]"):
        boxes.check_boxes(np.array([[0.2, 0.2, 0.4]]))
    with shape_error("valid", "bool[1,1,2]"):  # T differs from the boxes'
        boxes.mean_box_iou(jnp.zeros((1, 1, 3, 4)), jnp.zeros((1, 1, 3, 4)),
                           np.ones((1, 1, 2), bool))
    with shape_error("first_boxes", "f32[1,4]"):  # no query axis
        boxes.track_boxes(boxes.make_box_head(TINY, nnx.Rngs(0)),
                          jnp.zeros((1, 2, 4, TINY.model.token_dim)), jnp.zeros((1, 4)))


def test_mean_iou_scores_frames_after_the_first_where_valid():
    gt = jnp.broadcast_to(jnp.array([0.0, 0.0, 1.0, 1.0]), (2, 1, 3, 4))
    pred = gt.at[:, :, 0].set(0.0)  # frame 0 is wrong, and must not count
    valid = jnp.array([[[True, True, True]], [[True, False, False]]])
    iou = boxes.mean_box_iou(pred, gt, valid)
    assert float(iou[0]) == 1.0 and np.isnan(float(iou[1]))
    still = {"boxes": np.asarray(gt), "box_valid": np.ones((2, 1, 3), bool)}
    assert boxes.box_baseline(still, {}, TINY)["mean_iou"] == 1.0


def test_depth_targets_abs_rel_and_bad_depth(shape_error):
    depth = jnp.array([[0.5, 1.0, 3.0]])
    np.testing.assert_allclose(readouts.depth_targets(depth), np.log1p([[0.5, 1.0, 3.0]]))
    with pytest.raises(ValueError, match="> -1"):
        readouts.depth_targets(jnp.array([0.0, -1.0]))
    mask = jnp.array([[True, True, False]])
    assert abs(float(readouts.abs_rel(depth * 1.2, depth, mask)[0]) - 0.2) < 1e-6
    with shape_error("depth", "f32[1,2]"):
        readouts.abs_rel(depth, depth[:, :2], mask)
    with shape_error("mask", "bool[1,2]"):
        readouts.masked_l2(depth, depth, mask[:, :2])


def reference_iou(a, b):
    """IoU of two (ymin, xmin, ymax, xmax) boxes, Python floats (float64), one at a time."""
    def area(y0, x0, y1, x1):
        return max(y1 - y0, 0.0) * max(x1 - x0, 0.0)
    inter = area(max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    union = area(*a) + area(*b) - inter
    return inter / union if union > 0 else 0.0


def test_box_iou_computes_float64_boxes_in_float64():
    rng = np.random.default_rng(0)
    low = rng.uniform(0, 0.6, (64, 2))
    box_a = np.concatenate([low, low + rng.uniform(0.05, 0.4, (64, 2))], -1)
    box_b = box_a + rng.uniform(-0.1, 0.1, (64, 4))
    box_b[:4] = [0.1, 0.1, 1.1, 1.1]  # decimals: float32 is 1e-7 off on these
    box_a[:4] = [0.0, 0.0, 1.0, 1.0]
    expected = np.array([reference_iou(a, b) for a, b in zip(box_a.tolist(), box_b.tolist())])
    ours = boxes.box_iou(box_a, box_b)
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)
    in_32 = boxes.box_iou(np.float32(box_a), np.float32(box_b))
    assert in_32.dtype == np.float32 and np.abs(in_32 - expected).max() > 1e-8
    jitted = jax.jit(boxes.box_iou)(np.float32(box_a), np.float32(box_b))
    np.testing.assert_allclose(in_32, jitted, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(boxes.box_iou)(box_a, box_b), expected, atol=1e-6)


def test_abs_rel_computes_float64_depth_in_float64():
    rng = np.random.default_rng(0)
    depth = np.round(rng.uniform(-0.5, 20, (3, 2, 5, 5)), 1)  # some depth <= 0: not scored
    predicted = depth * 1.1 + 0.3
    mask = rng.random(depth.shape) < 0.8
    mask[2] = False  # a clip with no valid pixel: NaN
    expected = []
    for d, p, m in zip(depth.tolist(), predicted.tolist(), mask.tolist()):
        pairs = [(pi, di) for di, pi, mi in zip(np.ravel(d), np.ravel(p), np.ravel(m))
                 if mi and di > 0]
        expected.append(sum(abs(pi - di) / di for pi, di in pairs) / len(pairs)
                        if pairs else np.nan)
    ours = readouts.abs_rel(predicted, depth, mask)
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)
    in_32 = readouts.abs_rel(np.float32(predicted), np.float32(depth), mask)
    jitted = jax.jit(readouts.abs_rel)(np.float32(predicted), np.float32(depth), mask)
    assert in_32.dtype == np.float32 and np.nanmax(np.abs(in_32 - expected)) > 1e-9
    np.testing.assert_allclose(in_32, jitted, rtol=1e-6)


# --- the point loss ----------------------------------------------------------------------

def test_point_loss_on_known_inputs():
    r = TINY.readout
    target = jnp.array([[[[0.25, 0.75], [0.5, 0.5]]]])  # [1, 1, 2, 2]
    visible = jnp.array([[[True, False]]])
    scored = jnp.ones_like(visible)
    logits = jnp.array([[[2.0, -1.0]]])
    tracks = target + jnp.array([0.0, 0.01])  # 0.01 < δ: quadratic Huber
    terms = points.point_loss_terms({"tracks": tracks, "visibility_logit": logits,
                                     "certainty_logit": logits}, target, visible, scored, TINY)
    softplus = lambda x: float(jnp.log1p(jnp.exp(x)))  # noqa: E731
    assert abs(float(terms["position"]) - 0.5 * 0.01**2) < 1e-9  # only the visible frame
    assert abs(float(terms["visibility"]) - (softplus(-2.0) + softplus(-1.0)) / 2) < 1e-6
    assert abs(float(terms["certainty"]) - softplus(-2.0)) < 1e-6  # within 6/256: target 1
    assert abs(float(terms["loss"]) - (r.coordinate_weight * terms["position"]
                                       + terms["visibility"] + terms["certainty"])) < 1e-6


# --- heads -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tokens():
    m = TINY.model
    return jax.random.normal(jax.random.key(0), (2, 4, 2 * m.num_tokens, m.token_dim))


@pytest.mark.parametrize("num_queries", [1, 3, 17])
def test_recurrent_readout_shapes_and_independence(tokens, num_queries):
    head = points.make_point_head(TINY, nnx.Rngs(0))
    coords = jax.random.uniform(jax.random.key(1), (2, num_queries, 2), minval=-1, maxval=1)
    frames = jax.random.randint(jax.random.key(2), (2, num_queries), 0, 4)
    out = head(tokens, coords, frames)
    assert out.shape == (2, num_queries, 4, 4) and out.dtype == jnp.float32
    order = jax.random.permutation(jax.random.key(3), num_queries)
    np.testing.assert_allclose(head(tokens, coords[:, order], frames[:, order]), out[:, order],
                               atol=1e-5)
    box_head = boxes.make_box_head(TINY, nnx.Rngs(0))
    first = jnp.broadcast_to(jnp.array([0.1, 0.2, 0.3, 0.6]), (2, num_queries, 4))
    assert boxes.track_boxes(box_head, tokens, first).shape == (2, num_queries, 4, 4)


def test_recurrent_readout_resets_at_the_query_frame(tokens):
    head = points.make_point_head(TINY, nnx.Rngs(0))
    coords = jnp.zeros((2, 1, 2))
    late = head(tokens, coords, jnp.full((2, 1), 2))
    # From its query frame on, a query ignores the frames before it.
    changed = tokens.at[:, :2].set(0.0)
    np.testing.assert_allclose(head(changed, coords, jnp.full((2, 1), 2))[:, :, 2:],
                               late[:, :, 2:], atol=1e-5)


def test_relative_heads_start_at_the_still_baseline_and_learn_a_change(tokens):
    relative = configs.override(TINY, ["readout.relative_coordinates=True"])
    head = points.make_point_head(relative, nnx.Rngs(0))
    queries = jnp.array([[[0.0, 3.5, 20.5], [2.0, 31.0, 0.5]]] * 2)  # (t, y, x), 32² frames
    tracks = points.predict_tracks(head, tokens, queries, 32, 32)["tracks"] * 32
    np.testing.assert_allclose(tracks, jnp.broadcast_to(queries[:, :, None, 2:0:-1], tracks.shape),
                               atol=5e-3)
    with pytest.raises(ValueError, match="pass start"):
        head(tokens, jnp.zeros((2, 2, 2)), jnp.zeros((2, 2), jnp.int32))
    # the zero output layer still gets a gradient, so the head can learn a change
    grads = nnx.grad(lambda h: points.predict_tracks(h, tokens, queries, 32, 32)["tracks"].sum())(head)
    assert np.abs(np.asarray(grads.output.kernel[...])).max() > 0
    box_head = boxes.make_box_head(relative, nnx.Rngs(0))
    first = jnp.broadcast_to(jnp.array([0.1, 0.2, 0.3, 0.6]), (2, 3, 4))
    np.testing.assert_allclose(boxes.track_boxes(box_head, tokens, first),
                               jnp.broadcast_to(first[:, :, None], (2, 3, 4, 4)), atol=1e-5)
    # off by default: the paper's head predicts coordinates afresh
    assert not points.make_point_head(TINY, nnx.Rngs(0)).relative


def test_bad_queries_are_refused(shape_error):
    with shape_error("query_points", "f64[1,1,2]"):
        points.check_queries(np.array([[[0, 3.0]]]), 4, 32, 32)
    with pytest.raises(ValueError, match="x must lie in the frame"):
        points.check_queries(np.array([[[0, 3.0, 40.0]]]), 4, 32, 32)
    with pytest.raises(ValueError, match="query frames"):
        points.check_queries(np.array([[[4, 3.0, 3.0]]]), 4, 32, 32)
    with pytest.raises(ValueError, match="empty"):
        points.check_queries(np.zeros((1, 0, 3)), 4, 32, 32)
    head = points.make_point_head(TINY, nnx.Rngs(0))
    with pytest.raises(ValueError, match="empty"):
        head(jnp.zeros((1, 2, 4, TINY.model.token_dim)), jnp.zeros((1, 0, 2)),
             jnp.zeros((1, 0), jnp.int32))
    tokens = jnp.zeros((1, 2, 4, TINY.model.token_dim))
    with pytest.raises(ValueError, match="the head's 2 coordinates"):
        head(tokens, jnp.zeros((1, 3, 4)), jnp.zeros((1, 3), jnp.int32))
    with shape_error("coords", "f32[2,3,2]"):  # B differs from the tokens'
        head(tokens, jnp.zeros((2, 3, 2)), jnp.zeros((2, 3), jnp.int32))
    with shape_error("query_frames", "f32[1,3]"):  # frame indices are integers
        head(tokens, jnp.zeros((1, 3, 2)), jnp.zeros((1, 3)))
    with shape_error("tokens", f"f32[2,4,{TINY.model.token_dim}]"):  # no time axis
        head(tokens[0], jnp.zeros((1, 3, 2)), jnp.zeros((1, 3), jnp.int32))
    with pytest.raises(ValueError, match="empty"):
        boxes.track_boxes(boxes.make_box_head(TINY, nnx.Rngs(0)),
                          jnp.zeros((1, 2, 4, TINY.model.token_dim)), jnp.zeros((1, 0, 4)))


# --- training ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clip_batch():
    source = datasets.SyntheticSource("movi_e", "train", 2, resolution=32, num_frames=4)
    return next(iter(data.make_pipeline(source, batch_size=2, num_frames=4)))


@pytest.mark.parametrize("frozen", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_frozen_readout_leaves_moog_bit_identical(clip_batch, frozen):
    backbone = MooG(TINY.model, rngs=nnx.Rngs(0))
    model, tx = readouts.build_readout(points.POINTS, TINY, backbone, frozen=frozen)
    graphdef, rest, state = optimization.split_model(model, tx)
    batch = {k: clip_batch[k] for k in ("video",) + points.POINTS.keys}
    step = optimization.make_train_step(graphdef, rest, tx, readouts.readout_loss(points.POINTS, TINY))
    moog_before = jax.device_get(nnx.state(backbone, nnx.Param))
    head_before = jax.device_get(nnx.state(model.head, nnx.Param))
    for i in range(2):  # step 0 has learning rate 0 (warm-up)
        state, _ = step(state, batch, jax.random.key(i))
    assert set(state.params) == ({"head"} if frozen else {"backbone", "head"})
    trained = optimization.merge_model(graphdef, rest, state)
    moog_after = jax.device_get(nnx.state(trained.backbone, nnx.Param))
    head_after = jax.device_get(nnx.state(trained.head, nnx.Param))
    same = [np.array_equal(a, b) for a, b in zip(jax.tree.leaves(moog_before),
                                                 jax.tree.leaves(moog_after))]
    head_same = [np.array_equal(a, b) for a, b in zip(jax.tree.leaves(head_before),
                                                      jax.tree.leaves(head_after))]
    assert not all(head_same)
    if frozen:
        assert all(same)
        # the frozen backbone is read, not donated: the caller's MooG is still usable
        assert all(not x.is_deleted() for x in jax.tree.leaves(nnx.state(backbone, nnx.Param)))
    else:
        assert not all(same)  # end to end: the encoder and the loop moved


def test_a_frozen_readout_checkpoint_written_before_the_filter_still_loads(tmp_path):
    model, tx = readouts.build_readout(points.POINTS, TINY, MooG(TINY.model, rngs=nnx.Rngs(0)),
                                       frozen=True)
    # The layout before December 2026: every parameter in the state, MooG zeroed and the
    # head's optimiser state nested by optax.multi_transform.
    def labels(params):
        return jax.tree_util.tree_map_with_path(
            lambda path, _: "backbone" if path[0].key == "backbone" else "head", params)

    old_tx = optax.multi_transform({"head": tx, "backbone": optax.set_to_zero()}, labels)
    params = jax.tree.map(lambda x: x + 0.5, nnx.state(model, nnx.Param))  # not the initial values
    opt_state = jax.tree.map(lambda x: x + 3 if x.dtype == jnp.int32 else x, old_tx.init(params))
    checkpoints = Checkpointer(tmp_path)
    checkpoints.save(optimization.TrainState(jnp.asarray(7, jnp.int32), params, opt_state), {})
    checkpoints.close()

    _, _, like = optimization.split_model(model, tx)
    checkpoints = Checkpointer(tmp_path)
    state, _ = checkpoints.restore(like)
    checkpoints.close()
    assert int(state.step) == 7 and set(state.params) == {"head"}
    for saved, read in zip(jax.tree.leaves(params["head"]), jax.tree.leaves(state.params["head"])):
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(read))
    counts = [int(x) for x in jax.tree.leaves(state.opt_state) if x.dtype == jnp.int32]
    assert counts and all(c == 3 for c in counts)  # the head's optimiser state, not a fresh one
    restored = train.restore_model(model, tx, tmp_path)
    for saved, read in zip(jax.tree.leaves(params["head"]),
                           jax.tree.leaves(nnx.state(restored.head, nnx.Param))):
        np.testing.assert_array_equal(np.asarray(saved), np.asarray(read))


@pytest.mark.parametrize("task", [pytest.param(readouts.DEPTH, marks=pytest.mark.slow), points.POINTS,
                                  pytest.param(boxes.BOXES, marks=pytest.mark.slow)],
                         ids=lambda t: t.name)
def test_a_readout_lowers_its_loss_on_tiny(clip_batch, task):
    config = configs.override(TINY, ["readout.train.peak_learning_rate=3e-3"])
    model, tx = readouts.build_readout(task, config,
                                       MooG(config.model, rngs=nnx.Rngs(0)), frozen=True)
    graphdef, rest, state = optimization.split_model(model, tx)
    batch = {k: clip_batch[k] for k in ("video",) + task.keys}
    step = optimization.make_train_step(graphdef, rest, tx, readouts.readout_loss(task, config))
    losses = []
    for _ in range(10):
        state, metrics = step(state, batch, jax.random.key(0))  # same key: same subsample
        losses.append(float(metrics["loss"]))
    assert np.isfinite(losses).all() and losses[-1] < 0.7 * losses[1], losses


@pytest.mark.slow
def test_eval_readouts_command_end_to_end(tmp_path, capsys):
    backbone = tmp_path / "moog"
    train.train(TINY, backbone, steps=2, progress=False)
    code = cli.main(["eval-readouts", "--preset", "tiny", "--workdir", str(backbone),
                     "--tasks", "depth", "points", "--modes", "frozen", "--steps", "2"])
    assert code == 0
    rows = json.loads((backbone / "readouts" / "results.json").read_text())
    assert [(r["task"], r["mode"], r["steps"]) for r in rows] == [("depth", "frozen", 2),
                                                                  ("points", "frozen", 2)]
    assert np.isfinite(rows[0]["baseline"]["abs_rel"]) and "readout_long" in rows[1]
    assert "| depth | abs_rel ↓ | frozen | 2 |" in (backbone / "readouts" / "results.md").read_text()


@pytest.mark.slow
def test_readout_on_another_models_run_is_refused(tmp_path):
    train.train(TINY, tmp_path / "moog", steps=1, progress=False)
    other = configs.override(TINY, ["model.num_tokens=8"])
    with pytest.raises(ValueError, match="another model config"):
        readouts.check_backbone(other, tmp_path / "moog")
