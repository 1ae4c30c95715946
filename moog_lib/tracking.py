"""Tracking points and boxes through a video with the authors' Ego4D weights, and drawing them.

`track_video` runs a `moog_lib.release.load_ego4d` model on any video in 16-frame
windows overlapping by one frame; `grid_points` and `parse_points` make the
queries; `overlay_tracks` and `overlay_boxes` draw the results with NumPy; and
`track_video_file` is the whole pipeline from a video file to a video with the
tracks drawn (what `moog track` runs). `corrector_following` measures how far the
backbone's tokens (their corrector attention) move with the tracked content.

Generated from chapters/12b_tracking.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "grid_points",
    "parse_points",
    "track_video",
    "overlay_tracks",
    "overlay_boxes",
    "track_video_file",
    "attention_centroids",
    "corrector_following",
]


import colorsys
import functools
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from moog_lib import data, datasets
from moog_lib.ego4d import EGO4D_SIZES, ego4d_config, point_predictions
from moog_lib.release import Ego4DModels, find_ego4d_files, load_ego4d


# chapters/12b_tracking.py, cell 7
def grid_points(height: int, width: int, n: int) -> np.ndarray:
    """An n × n grid of query points, raster (x, y) [n², 2], cell centres of the frame."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"grid_points: n must be a positive int, got {n!r}")
    xs, ys = (np.arange(n) + 0.5) / n * width, (np.arange(n) + 0.5) / n * height
    return np.stack(np.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2).astype(np.float32)


def parse_points(text: str) -> np.ndarray:
    """'x,y;x,y;…' (pixels; ';' or spaces between points) -> raster (x, y) float32 [Q, 2]."""
    try:
        points = [[float(v) for v in item.split(",")] for item in text.replace(";", " ").split()]
    except ValueError:
        points = None
    if not points or any(len(p) != 2 for p in points):
        raise ValueError(f"points must look like 'x,y;x,y' (pixels on the first frame), got {text!r}")
    return data.check_finite(f"points {text!r}", np.asarray(points, np.float32),
                             "give pixel positions on the first frame, e.g. '12,30;40,8'")


# chapters/12b_tracking.py, cell 10
@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _run_window(graphdef, resolution: int, chunk_size, state, frames, points, boxes, key):
    """One window: frames float [1, T, H, W, 3] -> the heads' answers (compiled once per
    model structure and input shapes, so every window of a video reuses it)."""
    backbone, point_head, box_head = nnx.merge(graphdef, state)
    frames = jax.image.resize(frames, frames.shape[:2] + (resolution, resolution, 3), "linear",
                              antialias=True)
    features = backbone(jnp.clip(frames, 0.0, 1.0), key=key)["features"]
    out = {}
    if points is not None:
        out["points"] = point_predictions(point_head(features, points, chunk_size=chunk_size))
    if boxes is not None:
        out["boxes"] = box_head(features, boxes, chunk_size=chunk_size)
    return out


# chapters/12b_tracking.py, cell 12
def _checked_inputs(models: Ego4DModels, video, points, boxes):
    """`track_video`'s checks of its inputs: returns the video as an array, the points
    divided by the frame's (width, height), and the boxes (None where not given)."""
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3 or video.shape[0] < 1:
        raise ValueError(f"track_video: video must be [T, H, W, 3], got shape {video.shape}")
    height, width = video.shape[1:3]
    if video.dtype != np.uint8:
        if video.dtype.kind != "f":
            raise ValueError(f"track_video: video has dtype {video.dtype}; expected floats in "
                             "[0, 1] or uint8")
        data.check_finite("track_video: video", video, "expected floats in [0, 1] or uint8")
        low, high = float(video.min()), float(video.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(f"track_video: video has float values in [{low:g}, {high:g}]; "
                             "expected floats in [0, 1] or uint8 (divide 8-bit values by 255)")
    if points is None and boxes is None:
        raise ValueError("track_video: pass points [Q, 2] and/or boxes [Qb, 4] on the first frame")
    size = np.array([width, height], np.float32)
    if points is not None:
        if models.points is None:
            raise ValueError("track_video: points need the point head (point_head_npz)")
        points = np.asarray(points, np.float32)
        if points.ndim != 2 or points.shape[1] != 2 or len(points) < 1:
            raise ValueError(f"track_video: points must be raster (x, y) [Q, 2], got {points.shape}")
        data.check_finite("track_video: points", points, "give raster (x, y) pixels on frame 0")
        if (points < 0).any() or (points > size).any():
            raise ValueError(f"track_video: points must lie inside the {width}×{height} frame "
                             f"(x in [0, {width}], y in [0, {height}])")
        points = points / size
    if boxes is not None:
        if models.boxes is None:
            raise ValueError("track_video: boxes need the box head (box_head_npz)")
        boxes = np.asarray(boxes, np.float32)
        if boxes.ndim != 2 or boxes.shape[1] != 4 or len(boxes) < 1:
            raise ValueError(f"track_video: boxes must be (ymin, xmin, ymax, xmax) [Qb, 4] in "
                             f"[0, 1], got shape {boxes.shape}")
        data.check_finite("track_video: boxes", boxes, "give (ymin, xmin, ymax, xmax) in [0, 1]")
    return video, points, boxes


# chapters/12b_tracking.py, cell 14
def track_video(models: Ego4DModels, video, *, points=None, boxes=None,
                key: jax.Array | None = None, chunk_size: int | None = 64) -> dict:
    """Track `points` (raster (x, y) [Q, 2] on frame 0) and/or `boxes` (normalised
    (ymin, xmin, ymax, xmax) [Qb, 4] on frame 0) through `video` [T, H, W, 3]
    (uint8, or float in [0, 1]) in 16-frame windows overlapping by one frame.

    Returns {"tracks": [Q, T, 2] raster (x, y), "visible": bool [Q, T],
    "visible_probability": [Q, T]} and/or {"boxes": [Qb, T, 4]}.
    """
    video, points, boxes = _checked_inputs(models, video, points, boxes)
    num_frames, height, width = video.shape[:3]
    size = np.array([width, height], np.float32)
    window = (models.points or models.boxes).config.num_frames
    graphdef, state = nnx.split((models.backbone, models.points, models.boxes))
    run = functools.partial(_run_window, graphdef, models.config.resolution, chunk_size, state)
    key = jax.random.key(0) if key is None else key
    result = {}
    if points is not None:
        result |= {"tracks": np.zeros((len(points), num_frames, 2), np.float32),
                   "visible": np.zeros((len(points), num_frames), bool),
                   "visible_probability": np.zeros((len(points), num_frames), np.float32)}
    if boxes is not None:
        result["boxes"] = np.zeros((len(boxes), num_frames, 4), np.float32)
    start, index = 0, 0
    while True:
        clip = video[start:start + window]  # converted one window at a time: long videos fit
        clip = (clip.astype(np.float32) / 255.0 if clip.dtype == np.uint8
                else clip.astype(np.float32))
        n = len(clip)
        clip = np.concatenate([clip, np.repeat(clip[-1:], window - n, axis=0)])
        out = jax.device_get(run(clip[None], None if points is None else points[None],
                                 None if boxes is None else boxes[None],
                                 jax.random.fold_in(key, index)))
        first = 0 if start == 0 else 1  # the overlap frame keeps the previous window's answer
        span = slice(start + first, start + n)
        if points is not None:
            p = out["points"]
            result["tracks"][:, span] = p["tracks"][0, :, first:n] * size
            result["visible"][:, span] = p["visible"][0, :, first:n]
            result["visible_probability"][:, span] = p["visible_probability"][0, :, first:n]
            points = np.clip(p["tracks"][0, :, window - 1], 0.0, 1.0)
        if boxes is not None:
            result["boxes"][:, span] = out["boxes"][0, :, first:n]
            boxes = out["boxes"][0, :, window - 1]
        if start + window >= num_frames:
            return result
        start, index = start + window - 1, index + 1


# chapters/12b_tracking.py, cell 18
def _palette(n: int) -> np.ndarray:
    return np.array([[round(255 * c) for c in colorsys.hsv_to_rgb(i / max(n, 1), 0.85, 1.0)]
                     for i in range(n)], np.uint8).reshape(n, 3)


def _stamp(frame: np.ndarray, xy: np.ndarray, offsets: np.ndarray, colours: np.ndarray) -> None:
    """Paint pixel `offsets` [m, 2] (dy, dx) around raster points `xy` [n, 2], in place."""
    rows = np.floor(xy[:, 1])[:, None].astype(int) + offsets[None, :, 0]
    cols = np.floor(xy[:, 0])[:, None].astype(int) + offsets[None, :, 1]
    inside = (rows >= 0) & (rows < frame.shape[0]) & (cols >= 0) & (cols < frame.shape[1])
    frame[rows[inside], cols[inside]] = np.broadcast_to(colours[:, None], rows.shape + (3,))[inside]


def overlay_tracks(video, tracks, visible, *, trail: int = 8, radius: int | None = None,
                   colours=None) -> np.ndarray:
    """Draw tracks (raster (x, y) [Q, T, 2], visible bool [Q, T]) on a uint8 video
    [T, H, W, 3]: a filled dot where visible, a ring where not, a trail of `trail` frames."""
    video = np.array(video, np.uint8, copy=True)
    tracks, visible = np.asarray(tracks, np.float32), np.asarray(visible, bool)
    if video.ndim != 4 or tracks.shape != (tracks.shape[0], video.shape[0], 2) \
            or visible.shape != tracks.shape[:2]:
        raise ValueError(f"overlay_tracks: expected video [T, H, W, 3], tracks [Q, T, 2] and "
                         f"visible [Q, T], got {video.shape}, {tracks.shape}, {visible.shape}")
    radius = radius or max(2, round(min(video.shape[1:3]) / 80))
    colours = _palette(len(tracks)) if colours is None else np.asarray(colours, np.uint8)
    r = np.arange(-radius - 1, radius + 2)
    grid = np.stack(np.meshgrid(r, r, indexing="ij"), -1).reshape(-1, 2)
    distance = np.linalg.norm(grid, axis=1)
    disc, ring = grid[distance <= radius], grid[(distance > radius - 1.2) & (distance <= radius + 0.5)]
    dot = grid[distance <= max(1, radius // 3)]
    for t, frame in enumerate(video):
        for s in range(max(0, t - trail), t):  # the trail: line segments between past positions
            both = visible[:, s] & visible[:, s + 1]
            for f in np.linspace(0, 1, 2 * radius + 2):
                xy = tracks[both, s] * (1 - f) + tracks[both, s + 1] * f
                _stamp(frame, xy, dot, colours[both])
        _stamp(frame, tracks[visible[:, t], t], disc, colours[visible[:, t]])
        _stamp(frame, tracks[~visible[:, t], t], ring, colours[~visible[:, t]])
    return video


# chapters/12b_tracking.py, cell 20
def overlay_boxes(video, boxes, *, thickness: int | None = None, colours=None) -> np.ndarray:
    """Draw boxes (normalised (ymin, xmin, ymax, xmax) [Q, T, 4]) as outlines on a uint8 video."""
    video = np.array(video, np.uint8, copy=True)
    boxes = np.asarray(boxes, np.float32)
    if video.ndim != 4 or boxes.shape != (boxes.shape[0], video.shape[0], 4):
        raise ValueError(f"overlay_boxes: expected video [T, H, W, 3] and boxes [Q, T, 4], got "
                         f"{video.shape} and {boxes.shape}")
    height, width = video.shape[1:3]
    thickness = thickness or max(1, round(min(height, width) / 128))
    colours = _palette(len(boxes)) if colours is None else np.asarray(colours, np.uint8)
    for t, frame in enumerate(video):
        for q, box in enumerate(boxes[:, t]):
            y0, x0, y1, x1 = np.round(np.clip(box, 0, 1) * [height, width, height, width]).astype(int)
            if y1 <= y0 or x1 <= x0:
                continue
            frame[y0:min(y0 + thickness, y1), x0:x1] = colours[q]
            frame[max(y1 - thickness, y0):y1, x0:x1] = colours[q]
            frame[y0:y1, x0:min(x0 + thickness, x1)] = colours[q]
            frame[y0:y1, max(x1 - thickness, x0):x1] = colours[q]
    return video


# chapters/12b_tracking.py, cell 24
def _frame_rate(path, default: float = 10.0) -> float:
    import mediapy

    try:
        with mediapy.VideoReader(os.fspath(path)) as reader:  # ffmpeg was set by the caller
            return float(reader.metadata.fps) or default
    except Exception:  # any container problem: the video was already read; keep a default
        return default


def track_video_file(video_path, ego4d_dir, out, *, points: str | None = None,
                     grid: int | None = None, max_frames: int | None = None,
                     size: str = "official", seed: int = 0) -> dict:
    """Track points through a video file with the Ego4D weights in `ego4d_dir` and write
    `out` (.mp4 or .gif) with the tracks drawn, plus the tracks as `out` with suffix .npz.

    Queries: `points` 'x,y;x,y' in pixels of the first frame, or an n × n `grid`
    (default 8 × 8). `size="tiny"` reads the reduced random checkpoint of chapter 12a.
    """
    import imageio_ffmpeg
    import mediapy

    if points is not None and grid is not None:
        raise ValueError("give either points or grid, not both")
    queries = None if points is None else parse_points(points)  # before any slow step
    if size not in EGO4D_SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {', '.join(EGO4D_SIZES)}")
    out = Path(out)
    if out.suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"the output video must end in .mp4 or .gif, got {str(out)!r}")
    files = find_ego4d_files(ego4d_dir)
    if files["point_head_npz"] is None:
        raise ValueError(f"no point-track head (*point_track_head*.npz) in {str(ego4d_dir)!r}")
    video = datasets.read_video(os.fspath(video_path), max_frames=max_frames)
    height, width = video.shape[1:3]
    queries = grid_points(height, width, grid or 8) if queries is None else queries
    models = load_ego4d(files["backbone_npz"], files["point_head_npz"], config=ego4d_config(size))
    result = track_video(models, video, points=queries, key=jax.random.key(seed))
    drawn = overlay_tracks(video, result["tracks"], result["visible"])
    out.parent.mkdir(parents=True, exist_ok=True)
    mediapy.set_ffmpeg(imageio_ffmpeg.get_ffmpeg_exe())
    mediapy.write_video(out, drawn, fps=_frame_rate(video_path),
                        **({"codec": "gif"} if out.suffix.lower() == ".gif" else {}))
    tracks_path = out.with_suffix(".npz")
    np.savez(tracks_path, tracks=result["tracks"], visible=result["visible"],
             visible_probability=result["visible_probability"], queries=queries)
    return {"video": str(out), "tracks": str(tracks_path), "frames": int(len(video)),
            "points": int(len(queries)), "visible_fraction": float(result["visible"].mean())}


# chapters/12b_tracking.py, cell 30
def attention_centroids(attention, height: int, width: int) -> np.ndarray:
    """Raster (x, y) pixels [..., 2]: the attention-weighted mean of the cell centres
    of maps [..., h, w] over a height × width frame (cell (i, j) is centred at
    ((j + 0.5)·width/w, (i + 0.5)·height/h))."""
    weights = np.asarray(attention, np.float32)
    h, w = weights.shape[-2:]
    columns, rows = weights.sum(-2, dtype=np.float64), weights.sum(-1, dtype=np.float64)
    mass = np.maximum(columns.sum(-1), 1e-12)
    xs, ys = (np.arange(w) + 0.5) * width / w, (np.arange(h) + 0.5) * height / h
    return np.stack([(columns * xs).sum(-1) / mass, (rows * ys).sum(-1) / mass],
                    -1).astype(np.float32)


@functools.partial(jax.jit, static_argnames=("height", "width", "first_frame"))
def _sums_per_token(maps, tracks, occluded, *, height: int, width: int, first_frame: int):
    from moog_lib.comparison import token_following_sums  # chapter 10a; imported when needed

    valid = jnp.ones(tracks.shape[:2], bool)
    one_token = lambda m: token_following_sums(m[..., None], tracks, occluded, valid,  # noqa: E731
                                               height=height, width=width,
                                               first_frame=first_frame)
    return jax.vmap(one_token, in_axes=-1)(maps)


def corrector_following(attention, tracks, visible, *, height: int, width: int,
                        first_frame: int = 1) -> dict:
    """Do one clip's tokens follow the content under them?

    attention [T, K, h, w] (`Ego4DMooG(..., return_attention=True)`'s
    "corrector_attention" of one clip), tracks raster (x, y) [Q, T, 2] and visible
    bool [Q, T] (`track_video` on the same frames), frames height × width. Chapter
    10a's `token_following_sums` for each token alone. Returns chapter 10a's
    `following_score` of the clip ("following" F, "token_speed", "content_speed",
    px/frame) and per token: "centroids" [T, K, 2] (x, y), "token_following" [K],
    "token_speeds" [K], "content_speeds" [K] and "explained" [K] (mean over frame
    pairs of |u|² − |δ − u|², px²: large for a token moving a lot with its content).
    """
    from moog_lib.comparison import following_score

    attention = np.asarray(attention, np.float32)
    tracks = np.asarray(tracks, np.float32)
    if attention.ndim != 4 or tracks.shape != (tracks.shape[0], attention.shape[0], 2) \
            or np.shape(visible) != tracks.shape[:2]:
        raise ValueError(f"corrector_following: expected attention [T, K, h, w], tracks "
                         f"[Q, T, 2] and visible [Q, T] with the same T, got {attention.shape}, "
                         f"{tracks.shape} and {np.shape(visible)}")
    maps = np.moveaxis(attention, 1, -1)[None]  # [1, T, h, w, K], chapter 10a's layout
    sums = jax.device_get(_sums_per_token(maps, tracks[None], ~np.asarray(visible, bool)[None],
                                          height=height, width=width, first_frame=first_frame))
    per_token = [following_score({k: v[i] for k, v in sums.items()})
                 for i in range(attention.shape[1])]
    weight = np.maximum(sums["weight"], 1e-12)  # Σω over the counted frame pairs
    return {**following_score({k: v.sum() for k, v in sums.items()}),
            "centroids": attention_centroids(attention, height, width),
            "token_following": np.array([s["following"] for s in per_token], np.float32),
            "token_speeds": np.array([s["token_speed"] for s in per_token], np.float32),
            "content_speeds": np.array([s["content_speed"] for s in per_token], np.float32),
            "explained": ((sums["content"] - sums["error"]) / weight).astype(np.float32)}
