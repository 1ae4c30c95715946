"""Point tracking.

The TAP-Vid metrics (`tapvid_metrics`: average Jaccard, <δ, occlusion
accuracy), the recurrent point readout (`RecurrentReadout`, `make_point_head`),
raster queries to tracks (`predict_tracks`), and the point task `POINTS`: its
loss and the zero-motion baseline.

Generated from chapters/08_point_tracking.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "TAPVID_THRESHOLDS",
    "TAPVID_SIZE",
    "check_tracks",
    "tapvid_metrics",
    "raster_to_grid",
    "RecurrentReadout",
    "make_point_head",
    "head_tracks",
    "predict_tracks",
    "check_queries",
    "point_loss_terms",
    "point_loss",
    "point_baseline",
    "POINTS",
]


import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Integer

from moog_lib import attention, configs, data, dynamics, fourier, readouts
from moog_lib.shapes import typed

# chapters/08_point_tracking.py, cell 5
TAPVID_THRESHOLDS = (1, 2, 4, 8, 16)
TAPVID_SIZE = 256  # TAP-Vid scores positions in pixels of a 256×256 frame


@typed
def check_tracks(query_points: Float[ArrayLike, "b n 3"],
                 gt_occluded: Bool[ArrayLike, "b n t"] | Integer[ArrayLike, "b n t"],
                 gt_tracks: Float[ArrayLike, "b n t 2"],
                 pred_occluded: Bool[ArrayLike, "b n t"] | Integer[ArrayLike, "b n t"],
                 pred_tracks: Float[ArrayLike, "b n t 2"]) -> None:
    """Raise ValueError unless the query set is not empty; the signature checks the shapes
    (queries (t, y, x), tracks (x, y)) and that occlusion flags are bool or integers."""
    if jnp.shape(query_points)[1] == 0:
        raise ValueError("the query set is empty (n = 0): pass at least one query point")


def _evaluation_mask(query_frames, num_frames: int, query_mode: str, xp=jnp):
    one_hot = (query_frames[..., None] == xp.arange(num_frames)).astype(xp.int32)  # [b, n, t]
    if query_mode == "first":
        return (xp.cumsum(one_hot, axis=-1) - one_hot) > 0  # strictly after the query
    if query_mode == "strided":
        return one_hot == 0  # every frame but the query's
    raise ValueError(f"query_mode must be 'first' or 'strided', got {query_mode!r}")


# chapters/08_point_tracking.py, cell 9
def _tapvid_metrics(query_points, gt_occluded, gt_tracks, pred_occluded, pred_tracks,
                    query_mode, point_mask):
    # point_mask [b, n] (optional): leave whole tracks out, e.g. padding in a fixed-size batch
    check_tracks(query_points, gt_occluded, gt_tracks, pred_occluded, pred_tracks)
    # Concrete inputs: NumPy in their own precision (the reference's arithmetic);
    # traced inputs (inside jit): jax.numpy, the tracks in at least float32.
    concrete = data.is_concrete(query_points, gt_occluded, gt_tracks, pred_occluded,
                                pred_tracks, point_mask)
    xp = np if concrete else jnp
    num_frames = jnp.shape(gt_occluded)[2]
    query_frames = xp.round(xp.asarray(query_points)[..., 0]).astype(xp.int32)
    if concrete and (query_frames.min() < 0 or query_frames.max() >= num_frames):
        raise ValueError(f"query frames must lie in [0, {num_frames}), got "
                         f"{query_frames.min()} … {query_frames.max()}")
    evaluated = _evaluation_mask(query_frames, num_frames, query_mode, xp)
    if point_mask is not None:
        evaluated = evaluated & xp.asarray(point_mask, bool)[..., None]
    gt_occluded, pred_occluded = xp.asarray(gt_occluded, bool), xp.asarray(pred_occluded, bool)
    visible, pred_visible = ~gt_occluded, ~pred_occluded
    pred_tracks, gt_tracks = xp.asarray(pred_tracks), xp.asarray(gt_tracks)
    if not concrete:
        pred_tracks, gt_tracks = (x.astype(jnp.promote_types(x.dtype, jnp.float32))
                                  for x in (pred_tracks, gt_tracks))

    def count(x):
        return xp.sum(x & evaluated, axis=(1, 2))

    with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0 = NaN, as in the reference
        metrics = {"occlusion_accuracy": count(gt_occluded == pred_occluded) / count(
            xp.ones_like(visible))}
        squared = xp.sum(xp.square(pred_tracks - gt_tracks), axis=-1)
        for delta in TAPVID_THRESHOLDS:
            within = squared < delta**2
            correct = within & visible
            metrics[f"pts_within_{delta}"] = count(correct) / count(visible)
            true_positives = count(correct & pred_visible)
            false_positives = count(pred_visible & (gt_occluded | ~within))
            metrics[f"jaccard_{delta}"] = true_positives / (count(visible) + false_positives)
    metrics["average_jaccard"] = xp.mean(xp.stack(
        [metrics[f"jaccard_{d}"] for d in TAPVID_THRESHOLDS]), axis=0)
    metrics["average_pts_within_thresh"] = xp.mean(xp.stack(
        [metrics[f"pts_within_{d}"] for d in TAPVID_THRESHOLDS]), axis=0)
    return metrics


# chapters/08_point_tracking.py, cell 11
@typed
def tapvid_metrics(query_points: Float[ArrayLike, "b n 3"],
                   gt_occluded: Bool[ArrayLike, "b n t"] | Integer[ArrayLike, "b n t"],
                   gt_tracks: Float[ArrayLike, "b n t 2"],
                   pred_occluded: Bool[ArrayLike, "b n t"] | Integer[ArrayLike, "b n t"],
                   pred_tracks: Float[ArrayLike, "b n t 2"], query_mode: str) -> dict:
    """TAP-Vid metrics per video, as the reference `compute_tapvid_metrics`.

    query_points (t, y, x); occlusion flags True = occluded; tracks (x, y) in
    pixels of a 256×256 frame.
    query_mode "first" or "strided". Returns {name: [b]} with
    `occlusion_accuracy`, `pts_within_{1,2,4,8,16}`, `jaccard_{1,…,16}`,
    `average_jaccard`, `average_pts_within_thresh` (NaN where a video has no
    visible scored point). Refused: occlusion flags that are neither bool nor
    integers (by the signature: threshold probabilities first), NaN/Inf queries or
    ground truth at visible points (a NaN prediction counts as a miss).

    On concrete inputs it computes with NumPy in the inputs' own precision, as the
    reference does (float64 tracks give float64 distances and float64 scores); on
    arrays traced inside `jax.jit` with `jax.numpy`, tracks in at least float32.
    """
    check_tracks(query_points, gt_occluded, gt_tracks, pred_occluded, pred_tracks)
    if data.is_concrete(query_points, gt_occluded, gt_tracks):
        data.check_finite("query_points", query_points, "queries are (t, y, x): a frame index "
                          "and pixels")
        data.check_finite("gt_tracks at visible points", gt_tracks, "mark points whose position "
                          "is unknown as occluded", where=~np.asarray(gt_occluded, bool)[..., None])
    return _tapvid_metrics(query_points, gt_occluded, gt_tracks, pred_occluded, pred_tracks,
                           query_mode, None)


# chapters/08_point_tracking.py, cell 17
def raster_to_grid(points: jnp.ndarray, height: int, width: int) -> jnp.ndarray:
    """Raster (y, x) (pixel centres at i + 0.5) -> the decoder's [-1, 1] grid (y, x)."""
    size = jnp.array([height, width], jnp.float32)
    return -1.0 + 2.0 * (jnp.asarray(points, jnp.float32) - 0.5) / jnp.maximum(size - 1, 1)


class RecurrentReadout(nnx.Module):
    """One latent per query, corrected by every frame's tokens (paper Section 3.2,
    Appendix C; release `moog/modules.py`, `ConditionalAutoregressiveReadout`).

    `__call__(tokens [B, T, 2K, D], coords [B, N, C], query_frames int [B, N])`
    returns `outputs` float32 [B, N, T, outputs].

    `config.readout.relative_coordinates` (a departure, §3): `__call__` also takes
    `start` [B, N, S] in (0, 1), the query's own coordinates in the units of the
    first S outputs, adds `logit(start)` to those outputs, and the output layer
    starts at zero, so an untrained head reports the query unchanged.
    """

    def __init__(self, config: configs.Config, *, outputs: int, coord_dim: int,
                 rngs: nnx.Rngs):
        r, width = config.readout, config.readout.latent_dim
        dense = lambda i, o: nnx.Linear(i, o, rngs=rngs)  # noqa: E731
        self.fourier = fourier.FourierReplace(r.query_fourier_bases)
        self.init_in = dense(2 * coord_dim * r.query_fourier_bases, width)
        self.init_out = dense(width, width)
        self.corrector = attention.Transformer.from_config(
            width, r.recurrent, kv_size=config.model.token_dim, cross_attention_only=True,
            rngs=rngs)
        self.predictor_in = dense(width, width)
        self.predictor_out = dense(width, width)
        self.norm = attention.scale_only_norm(width, 1e-4, rngs, None, jnp.float32)
        self.output = dense(width, outputs)
        self.coord_dim = coord_dim
        self.relative = r.relative_coordinates
        if self.relative:
            self.output.kernel[...] = jnp.zeros_like(self.output.kernel[...])

    def initial_latents(self, coords: jnp.ndarray) -> jnp.ndarray:
        """[B, N, C] coordinates -> [B, N, width] latents."""
        features = self.fourier(jnp.zeros(coords.shape[:-1] + (1,)), coords)
        return self.init_out(jax.nn.gelu(self.init_in(features)))

    @typed
    def __call__(self, tokens: Float[ArrayLike, "B T K D"], coords: Float[ArrayLike, "B N C"],
                 query_frames: Int[ArrayLike, "B N"],
                 start: Float[ArrayLike, "B N S"] | None = None) -> Float[Array, "B N T O"]:
        if coords.shape[-1] != self.coord_dim:
            raise ValueError(f"RecurrentReadout: coords must have the head's {self.coord_dim} "
                             f"coordinates in the last axis, got {coords.shape[-1]}")
        if coords.shape[1] == 0:
            raise ValueError("RecurrentReadout: the query set is empty (N = 0)")
        initial = self.initial_latents(coords)

        def step(module, latents, inputs):
            t, frame_tokens = inputs  # t [B]: this frame's index
            latents = jnp.where((query_frames == t[:, None])[..., None], initial, latents)
            corrected = latents + module.corrector(latents, frame_tokens)
            predicted = corrected + module.predictor_out(jax.nn.gelu(module.predictor_in(corrected)))
            return module.norm(predicted), module.output(corrected)

        batch, num_frames = tokens.shape[:2]
        frames = jnp.broadcast_to(jnp.arange(num_frames), (batch, num_frames))
        _, outputs = dynamics.scan_over_time(self, step, initial, (frames, tokens))
        outputs = jnp.swapaxes(outputs, 1, 2).astype(jnp.float32)  # [B, T, N, o] -> [B, N, T, o]
        if not self.relative:
            return outputs
        if start is None:
            raise ValueError("RecurrentReadout: this head moves the query's coordinates "
                             "(readout.relative_coordinates); pass start [B, N, S]")
        moved = jax.scipy.special.logit(jnp.clip(start, 1e-4, 1 - 1e-4))[:, :, None]
        return outputs.at[..., :start.shape[-1]].add(moved)


# chapters/08_point_tracking.py, cell 20
def make_point_head(config: configs.Config, rngs: nnx.Rngs) -> RecurrentReadout:
    """The recurrent readout with 4 outputs per frame: x, y, visibility, certainty."""
    return RecurrentReadout(config, outputs=4, coord_dim=2, rngs=rngs)


def head_tracks(outputs: jnp.ndarray) -> dict:
    """Head outputs [..., 4] -> normalised (x, y) [..., 2], logits, and visible = σ(v)σ(c) > 0.5."""
    visibility, certainty = outputs[..., 2], outputs[..., 3]
    return {"tracks": jax.nn.sigmoid(outputs[..., :2]), "visibility_logit": visibility,
            "certainty_logit": certainty,
            "visible": jax.nn.sigmoid(visibility) * jax.nn.sigmoid(certainty) > 0.5}


@typed
def predict_tracks(head: RecurrentReadout, tokens: Float[ArrayLike, "B T K D"],
                   query_points: Float[ArrayLike, "B N 3"], height: int, width: int) -> dict:
    """`head_tracks` of raster queries (t, y, x) in H×W frames."""
    query = jnp.asarray(query_points, jnp.float32)
    start = query[..., 2:0:-1] / jnp.array([width, height], jnp.float32)  # normalised (x, y)
    return head_tracks(head(tokens, raster_to_grid(query[..., 1:], height, width),
                            jnp.round(query[..., 0]).astype(jnp.int32), start))


@typed
def check_queries(query_points: Float[ArrayLike, "B N 3"], num_frames: int, height: int,
                  width: int) -> None:
    """Raise ValueError unless the raster queries (t, y, x) lie in the clip (values checked
    outside jit only)."""
    if jnp.shape(query_points)[1] == 0:
        raise ValueError("the query set is empty (N = 0): pass at least one query point")
    if not data.is_concrete(query_points):
        return
    q = np.asarray(query_points)
    if not np.isfinite(q).all():
        raise ValueError("query_points contain NaN or inf")
    t = np.round(q[..., 0])
    if t.min() < 0 or t.max() >= num_frames:
        raise ValueError(f"query frames must lie in [0, {num_frames}) for a {num_frames}-frame "
                         f"clip, got {t.min():g} … {t.max():g}")
    for axis, name, size in ((1, "y", height), (2, "x", width)):
        if q[..., axis].min() < 0 or q[..., axis].max() > size:
            raise ValueError(f"query {name} must lie in the frame, [0, {size}] raster pixels, "
                             f"got {q[..., axis].min():g} … {q[..., axis].max():g}")


# chapters/08_point_tracking.py, cell 24
def point_loss_terms(predictions: dict, target_tracks, visible, scored, config: configs.Config):
    """The three loss terms; tracks normalised (x, y) [B, N, T, 2], masks [B, N, T]."""
    r = config.readout
    visible, scored = visible & scored, scored.astype(jnp.float32)
    weight = visible.astype(jnp.float32)
    huber = optax.huber_loss(predictions["tracks"], target_tracks, delta=r.huber_delta).sum(-1)
    position = jnp.sum(huber * weight) / jnp.maximum(weight.sum(), 1.0)
    visibility = jnp.sum(optax.sigmoid_binary_cross_entropy(
        predictions["visibility_logit"], visible.astype(jnp.float32)) * scored) / jnp.maximum(
        scored.sum(), 1.0)
    error = jnp.linalg.norm(jax.lax.stop_gradient(predictions["tracks"]) - target_tracks, axis=-1)
    certain = (error < r.certainty_threshold).astype(jnp.float32)
    certainty = jnp.sum(optax.sigmoid_binary_cross_entropy(
        predictions["certainty_logit"], certain) * weight) / jnp.maximum(weight.sum(), 1.0)
    return {"position": position, "visibility": visibility, "certainty": certainty,
            "loss": r.coordinate_weight * position + visibility + certainty}


# chapters/08_point_tracking.py, cell 28
def _scale_to_tapvid(points_xy, height: int, width: int):
    return points_xy * jnp.array([TAPVID_SIZE / width, TAPVID_SIZE / height], jnp.float32)


def point_loss(head, tokens, batch, key, *, config: configs.Config, training: bool = True):
    """The paper's point loss; evaluation adds the TAP-Vid metrics ('first' mode, 256²)."""
    height, width = batch["video"].shape[2:4]
    query, target = batch["query_points"], jnp.asarray(batch["target_points"], jnp.float32)
    occluded, valid = jnp.asarray(batch["occluded"], bool), jnp.asarray(batch["point_valid"], bool)
    num_frames = tokens.shape[1]
    if occluded.shape != target.shape[:3] or valid.shape != target.shape[:2]:
        raise ValueError(f"occluded {occluded.shape} and point_valid {valid.shape} must match "
                         f"target_points {target.shape} as [B, N, T] and [B, N]")
    # A track left out (point_valid False) may hold any query, e.g. a point already outside
    # the frame at a window's first frame (chapter 05, `select_window`): check the others.
    kept = jnp.shape(query)[:2] == valid.shape
    check_queries(jnp.where(valid[..., None], query, 0.0) if kept else query, num_frames,
                  height, width)
    if training and config.readout.points_per_clip < query.shape[1]:  # a random subset
        keep = jax.random.permutation(key, query.shape[1])[: config.readout.points_per_clip]
        query, target, occluded, valid = (x[:, keep] for x in (query, target, occluded, valid))
    query_frames = jnp.round(query[..., 0]).astype(jnp.int32)
    predictions = predict_tracks(head, tokens, query, height, width)
    after_query = jnp.arange(num_frames) >= query_frames[..., None]
    scored = after_query & valid[..., None]
    size = jnp.array([width, height], jnp.float32)
    terms = point_loss_terms(predictions, target / size, ~occluded, scored, config)
    metrics = dict(terms)
    if not training:
        scores = _tapvid_metrics(
            jnp.concatenate([query[..., :1], query[..., 1:] * jnp.array(
                [TAPVID_SIZE / height, TAPVID_SIZE / width])], -1),
            occluded, _scale_to_tapvid(target, height, width), ~predictions["visible"],
            _scale_to_tapvid(predictions["tracks"] * size, height, width), "first", valid)
        metrics.update({k: jnp.nanmean(scores[k]) for k in
                        ("average_jaccard", "average_pts_within_thresh", "occlusion_accuracy")})
    return terms["loss"], metrics


def point_baseline(batch: dict, stats: dict, config: configs.Config) -> dict:
    """TAP-Vid metrics of zero motion: every point stays at its query, always visible."""
    height, width = batch["video"].shape[2:4]
    query = np.asarray(batch["query_points"], np.float32)
    num_frames = batch["occluded"].shape[2]
    still = np.repeat(query[:, :, None, [2, 1]], num_frames, axis=2)  # (x, y)
    scale = np.array([TAPVID_SIZE / width, TAPVID_SIZE / height], np.float32)
    scores = _tapvid_metrics(
        np.concatenate([query[..., :1], query[..., 1:] * scale[::-1]], -1),
        np.asarray(batch["occluded"], bool), np.asarray(batch["target_points"]) * scale,
        np.zeros(batch["occluded"].shape, bool), still * scale, "first",
        np.asarray(batch["point_valid"], bool))
    return {k: float(np.nanmean(np.asarray(scores[k]))) for k in
            ("average_jaccard", "average_pts_within_thresh", "occlusion_accuracy")}


POINTS = readouts.ReadoutTask(
    name="points", make_head=make_point_head, loss=point_loss,
    keys=("query_points", "target_points", "occluded", "point_valid"),
    baseline=point_baseline, metric="average_jaccard", higher_is_better=True)
