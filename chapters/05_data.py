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
# # 05 — Data: the per-clip dict and the input pipeline
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/moog-tutorial/moog-tutorial/blob/main/notebooks/05_data.ipynb)
#
# **What you will learn.** The paper trains on Kubric MOVi-E and evaluates on
# TAP-Vid-DAVIS; neither installs from a package registry. The data side of
# the project therefore takes three chapters, so that everything runs offline.
# This one fixes what a clip *is* and how the paper feeds clips to the model:
#
# - one **per-clip dict** (video, depth, segmentation, boxes, point tracks)
#   that every source produces, with the TAP-Vid conventions spelled out, and
#   boxes computed from a segmentation;
# - a **clip drawn by hand** with NumPy — squares sliding over a still
#   pattern — whose labels are exact by construction, to test the pipeline on;
# - the paper's **input pipeline**: 8-frame windows, a crop that moves points
#   and boxes with the pixels, colour jitter with dm-pix, batching with
#   `grain`, and placement of a batch on a device mesh;
# - `ClipSource`, the interface every source of clips implements.
#
# Chapter 05a builds MOVi-like scenes (module `moog_lib.scenes`) and chapter
# 05b renders them with exact labels (module `moog_lib.render`); chapter 05c
# puts clips on disk and loads the real datasets (MOVi-E, TAP-Vid-DAVIS, video
# files) behind the `ClipSource` interface. The code of this chapter goes to
# `moog_lib.data`.
#
# **Prerequisites.** Chapter 00 (presets). NumPy broadcasting and fancy
# indexing.
#
# **Runtime.**
#
# | preset | hardware | this chapter |
# |---|---|---|
# | `tiny` | CI, 2 CPU cores | 6 s (nbval in `make test` on a clean clone, two workers, nothing else running; 2026-12-03) |
# | `colab` | Colab TPU v5e-1 | estimate ≈ 30 s, all CPU: a few hand-drawn clips, the pipeline's crops and jitter, and the install; not measured on Colab |


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
#| default_exp data

# %% [markdown]
# The chapter's own sizes: small in CI, MOVi-like on a TPU runtime (the data
# code itself runs on the host CPU either way).

# %%
import mediapy
import numpy as np

SMALL = PRESET == "tiny"
RES = 32 if SMALL else 64  # frame size used by the demonstrations
FRAMES = 12 if SMALL else 24  # frames per clip (MOVi-E: 24)
print(f"demonstrations at {RES}x{RES}, {FRAMES} frames")

# %% [markdown]
# ## 1. One dict per clip
#
# Every source — the clips drawn by hand below, the renderer of chapter 05b,
# and in chapter 05c a dataset on disk, MOVi-E, TAP-Vid-DAVIS and video
# files — produces the same dictionary of NumPy arrays for a clip of `T` frames
# of `H × W` pixels with `N` point tracks and up to `K = 10` boxes:
#
# | key | dtype | shape | meaning |
# |---|---|---|---|
# | `video` | uint8 | `[T, H, W, 3]` | RGB frames |
# | `depth` | float32 | `[T, H, W, 1]` | distance of the surface from the camera *centre* (not its z), as in MOVi |
# | `depth_mask` | bool | `[T, H, W, 1]` | where `depth` is defined |
# | `segmentations` | uint8 | `[T, H, W, 1]` | 0 background, object `k` has id `k + 1` |
# | `boxes` | float32 | `[K, T, 4]` | normalised `(ymin, xmin, ymax, xmax)` of object `k`'s visible pixels |
# | `box_valid` | bool | `[K, T]` | the object is visible (≥ 0.5% of the image) in that frame |
# | `query_points` | float32 | `[N, 3]` | `(t, y, x)`: the frame and raster position where a track is queried |
# | `target_points` | float32 | `[N, T, 2]` | `(x, y)` raster position of the track in every frame |
# | `occluded` | bool | `[N, T]` | the point is not visible in that frame |
# | `point_valid` | bool | `[N]` | the track is usable (visible at its query frame, and not hidden throughout) |
#
# **Raster coordinates** (TAP-Vid's convention): the pixel in row `i`, column
# `j` covers `[j, j+1) × [i, i+1)` and has its centre at `(x, y) = (j + 0.5, i + 0.5)`.
# Note the two orders: queries are `(t, y, x)`, targets `(x, y)`. Boxes use
# pixel edges: a single pixel `(i, j)` has the box `(i/H, j/W, (i+1)/H, (j+1)/W)`.
#
# A label a source does not have is still present, all zeros with an all-false
# validity mask, so one pipeline, one batching function and one set of metrics
# serve every source.

# %%
#| export
"""The clip and the input pipeline: one dict per clip, windows, augmentation, batches, devices.

`clip_spec`, `check_clip`, `unlabelled_clip` and `CLIP_KEYS` define a clip;
`check_finite`, `is_concrete` and `boxes_from_segmentation` check and label it;
`select_window`, `random_window`, `crop_and_resize_clip`, `jitter_clip_video`
and `augment_clip` are the paper's augmentations; `make_pipeline` and
`collate_clips` batch clips with grain; `data_parallel_mesh` and
`shard_clip_batch` put a batch on the devices; `ClipSource` is what every
source of clips is. The synthetic clips themselves are rendered by
`moog_lib.render`.
"""
import jax
import numpy as np

CLIP_KEYS = ("video", "depth", "depth_mask", "segmentations", "boxes", "box_valid",
             "query_points", "target_points", "occluded", "point_valid")
MAX_BOXES = 10  # boxes per clip, as in the paper's box readout


def clip_spec(num_frames: int, height: int, width: int, num_points: int = 256,
              max_boxes: int = MAX_BOXES) -> dict:
    """The per-clip dict's {key: (shape, dtype)} for T frames of H×W, N tracks and K boxes."""
    t, h, w, n, k = num_frames, height, width, num_points, max_boxes
    return {
        "video": ((t, h, w, 3), np.dtype(np.uint8)),
        "depth": ((t, h, w, 1), np.dtype(np.float32)),
        "depth_mask": ((t, h, w, 1), np.dtype(bool)),
        "segmentations": ((t, h, w, 1), np.dtype(np.uint8)),
        "boxes": ((k, t, 4), np.dtype(np.float32)),
        "box_valid": ((k, t), np.dtype(bool)),
        "query_points": ((n, 3), np.dtype(np.float32)),
        "target_points": ((n, t, 2), np.dtype(np.float32)),
        "occluded": ((n, t), np.dtype(bool)),
        "point_valid": ((n,), np.dtype(bool)),
    }


def check_clip(clip: dict) -> dict:
    """Raise ValueError unless `clip` has exactly the per-clip keys, shapes and dtypes.

    T, H, W come from `video`, N from `query_points` and K from `boxes`. Returns `clip`.
    """
    if not isinstance(clip, dict) or set(clip) != set(CLIP_KEYS):
        got = sorted(clip) if isinstance(clip, dict) else type(clip).__name__
        raise ValueError(f"a clip is a dict with keys {list(CLIP_KEYS)}; got {got}")
    video = np.asarray(clip["video"])
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"clip['video'] must be [T, H, W, 3], got shape {video.shape}")
    t, h, w, _ = video.shape
    spec = clip_spec(t, h, w, np.shape(clip["query_points"])[0], np.shape(clip["boxes"])[0])
    problems = [
        f"{key}: expected {shape} {dtype}, got {np.shape(clip[key])} {np.asarray(clip[key]).dtype}"
        for key, (shape, dtype) in spec.items()
        if np.shape(clip[key]) != shape or np.asarray(clip[key]).dtype != dtype
    ]
    if problems:
        raise ValueError("malformed clip: " + "; ".join(problems))
    return clip

# %% [markdown]
# `clip_spec` is the table above as code, and `check_clip` holds a dict to
# it. A MOVi-E clip at the paper's training size, for instance:

# %%
spec = clip_spec(24, 256, 256)
assert list(spec) == list(CLIP_KEYS) and spec["target_points"][0] == (256, 24, 2)
print({key: shape for key, (shape, _) in spec.items()})

# %% [markdown]
# Two more definitions, tried after the next cell: `unlabelled_clip`, for a
# source without labels, and `check_finite`.

# %%
#| export
def unlabelled_clip(video: np.ndarray, num_points: int = 256, max_boxes: int = MAX_BOXES) -> dict:
    """A per-clip dict for a bare video uint8 [T, H, W, 3]: every label zero and invalid."""
    video = np.asarray(video)
    if video.dtype != np.uint8 or video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"video must be uint8 [T, H, W, 3], got {video.dtype} {video.shape}")
    spec = clip_spec(*video.shape[:3], num_points, max_boxes)
    clip = {key: np.zeros(shape, dtype) for key, (shape, dtype) in spec.items()}
    clip["video"] = video
    clip["occluded"][:] = True
    return clip


def check_finite(name: str, values, fix: str = "", where=None) -> np.ndarray:
    """`values` as a NumPy array; ValueError naming `name`, how many values are NaN or
    ±Inf (only under the bool mask `where`, if given), the first one's index and `fix`.
    For concrete values a person hands over (files, points, boxes), never traced ones."""
    array = np.asarray(values)
    if array.dtype.kind in "fc":
        bad = ~np.isfinite(array) if where is None else ~np.isfinite(array) & where
        if bad.any():
            count, first = int(bad.sum()), tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{name} must be finite, but {count} "
                             f"{'value is' if count == 1 else 'values are'} NaN or Inf (the "
                             f"first at index {first})" + (f"; {fix}" if fix else ""))
    return array


# %%
#| export
def is_concrete(*arrays) -> bool:
    """True unless one of `arrays` is traced (inside `jax.jit`, `jax.grad`, `jax.vmap`, …).

    Concrete values can be checked and computed on the host with NumPy, in their own
    precision; traced ones only by JAX. `None` and Python numbers count as concrete."""
    return not any(isinstance(a, jax.core.Tracer) for a in arrays)


# %% [markdown]
# A bare video becomes a valid clip whose labels are all switched off. The two
# small helpers after it serve the later chapters: `check_finite` refuses NaN or
# Inf in values a person hands over, and `is_concrete` tells arrays that hold
# numbers (checked, and metrics computed, with NumPy in their own precision)
# from arrays traced inside `jax.jit` (only JAX can compute with those):

# %%
bare = unlabelled_clip(np.zeros((4, 8, 8, 3), np.uint8), num_points=5)
check_clip(bare)
assert not bare["point_valid"].any() and not bare["box_valid"].any() and not bare["depth_mask"].any()
seen_inside_jit = []
jax.jit(lambda x: seen_inside_jit.append(is_concrete(x)) or x)(np.zeros(2))
assert is_concrete(np.zeros(2), None) and seen_inside_jit == [False]
try:
    check_clip({**bare, "depth": bare["depth"].astype(np.float64)})
except ValueError as err:
    print("check_clip:", err)
else:
    raise AssertionError("a float64 depth should be refused")

# %% [markdown]
# One more helper, private but shared by the pipeline below, the renderer of
# chapter 05b and the datasets of chapter 05c: `_check_size` refuses a size
# that is not a positive int (or is too large, or not a multiple of what a
# model needs) with a message naming it.

# %%
#| export
def _check_size(name: str, value, low: int = 1, multiple_of: int = 1,
                high: int | None = None) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name}={value}: expected at most {high} pixels on a side")
    if value % multiple_of:
        raise ValueError(f"{name} must be divisible by {multiple_of}, got {value}")
    return int(value)


# %%
assert _check_size("resolution", 64, multiple_of=8) == 64

# %% [markdown]
# ## 2. Boxes from a segmentation
#
# Boxes come from the segmentation, one per object and frame: the extent of
# its visible pixels in pixel edges, normalised by the frame size. A box
# covering less than 0.5% of the image is marked invalid, and a clip keeps at
# most 10 boxes; box `k` belongs to the object with id `k + 1`. A check on a
# toy input whose answer we know: a 2×3 block gives a box in pixel edges.

# %%
#| export
def boxes_from_segmentation(segmentations: np.ndarray, max_boxes: int = MAX_BOXES,
                            min_fraction: float = 0.005):
    """Boxes of objects 1 … max_boxes from a segmentation [T, H, W] or [T, H, W, 1].

    Returns `boxes` float32 [max_boxes, T, 4], normalised (ymin, xmin, ymax, xmax) over the
    pixel edges of the object's visible pixels, and `box_valid` bool [max_boxes, T], False
    (with a zero box) where the object covers less than `min_fraction` of the image.
    """
    seg = np.asarray(segmentations)
    seg = seg[..., 0] if seg.ndim == 4 else seg
    if seg.ndim != 3:
        raise ValueError(f"segmentations must be [T, H, W] or [T, H, W, 1], got {np.shape(segmentations)}")
    _, h, w = seg.shape
    ids = np.arange(1, max_boxes + 1)
    mask = seg[None] == ids[:, None, None, None]  # [K, T, H, W]
    rows, cols = mask.any(axis=3), mask.any(axis=2)
    valid = mask.sum(axis=(2, 3)) >= min_fraction * h * w
    box = np.stack([rows.argmax(-1) / h, cols.argmax(-1) / w,
                    (h - rows[..., ::-1].argmax(-1)) / h, (w - cols[..., ::-1].argmax(-1)) / w], axis=-1)
    return np.where(valid[..., None], box, 0.0).astype(np.float32), valid


# %%
toy = np.zeros((1, 10, 10), np.uint8)
toy[0, 2:4, 5:8] = 1
toy_boxes, toy_valid = boxes_from_segmentation(toy)
assert np.allclose(toy_boxes[0, 0], [0.2, 0.5, 0.4, 0.8]) and toy_valid[0, 0] and not toy_valid[1:].any()

# %% [markdown]
# ## 3. A clip drawn by hand
#
# To test a pipeline that moves labels with pixels, we want a clip whose
# labels we *know*. Chapter 05b renders realistic ones; here a few lines of
# NumPy are enough: a still, patterned background (depth 10, id 0) and
# squares (depth `5 − k`, id `k + 1`, later squares in front) that slide a
# whole number of pixels per frame. Because every point moves by whole
# pixels, it stays on a pixel centre, and everything follows exactly: the
# track of a point is its query plus the motion of what it lies on; it is
# occluded when it leaves the frame or when the segmentation at its pixel is
# another object's; boxes come from the segmentation (§2). Queries are 256
# random pixels of frame 0, `(t, y, x) = (0, i + 0.5, j + 0.5)`.

# %%
def toy_clip(seed, num_frames=FRAMES, size=RES, num_objects=3, num_points=256):
    """A clip drawn by hand: squares sliding over a still pattern, with exact labels."""
    rng = np.random.default_rng(seed)
    t, k = num_frames, num_objects
    rows, cols = np.mgrid[:size, :size]
    video = np.empty((t, size, size, 3), np.uint8)
    video[:] = np.stack([96 + 64 * np.sin(cols / 3), 96 + 64 * np.cos(rows / 4),
                         np.full(rows.shape, 160.0)], -1).astype(np.uint8)  # the still background
    depth = np.full((t, size, size, 1), 10.0, np.float32)
    seg = np.zeros((t, size, size), np.uint8)
    side = rng.integers(size // 5, size // 3 + 1, k)
    corner = rng.integers(0, size - side[:, None], (k, 2))  # (row, col) of each square in frame 0
    step = rng.choice([-2, -1, 1, 2], (k, 2))  # whole pixels per frame: the labels stay exact
    colours = rng.integers(40, 256, (k, 3))
    for f in range(t):
        for i in range(k):  # later squares are nearer: drawn over the earlier ones
            top, left = corner[i] + f * step[i]
            inside = (rows >= top) & (rows < top + side[i]) & (cols >= left) & (cols < left + side[i])
            checker = ((rows - top) // 2 + (cols - left) // 2) % 2
            video[f][inside] = (colours[i] * (0.6 + 0.4 * checker[..., None]))[inside]
            depth[f][inside] = 5.0 - i
            seg[f][inside] = i + 1
    r, c = np.divmod(rng.choice(size * size, num_points, replace=False), size)
    owner = seg[0, r, c]
    motion = np.concatenate([[[0, 0]], step[:, ::-1]])[owner]  # (x, y) pixels per frame
    target = np.stack([c + 0.5, r + 0.5], -1)[:, None] + motion[:, None] * np.arange(t)[None, :, None]
    col, row = np.floor(target[..., 0]).astype(int), np.floor(target[..., 1]).astype(int)
    inside = (col >= 0) & (col < size) & (row >= 0) & (row < size)
    seen = seg[np.arange(t), row.clip(0, size - 1), col.clip(0, size - 1)] == owner[:, None]
    occluded = ~(inside & seen)
    boxes, box_valid = boxes_from_segmentation(seg)
    return check_clip({
        "video": video, "depth": depth, "depth_mask": np.ones_like(depth, bool),
        "segmentations": seg[..., None], "boxes": boxes, "box_valid": box_valid,
        "query_points": np.stack([np.zeros(num_points), r + 0.5, c + 0.5], -1).astype(np.float32),
        "target_points": target.astype(np.float32), "occluded": occluded,
        "point_valid": ~occluded[:, 0] & ~occluded.all(1)})


# %% [markdown]
# The label test we use from here on (chapter 05b uses it on rendered clips):
# a visible track point must land on a pixel of its own object — the object
# its query lies on. On a hand-drawn clip it holds everywhere, by
# construction; the point of the test is what happens to it after a crop.

# %%
def own_object_rate(clip):
    """Fraction of visible, valid track points whose pixel has the query's segment id."""
    t, h, w, _ = clip["video"].shape
    seg = clip["segmentations"][..., 0]
    q = np.floor(clip["query_points"]).astype(int).clip(0, [t - 1, h - 1, w - 1])
    owner = seg[q[:, 0], q[:, 1], q[:, 2]]
    col = np.clip(np.floor(clip["target_points"][..., 0]).astype(int), 0, w - 1)
    row = np.clip(np.floor(clip["target_points"][..., 1]).astype(int), 0, h - 1)
    seen = ~clip["occluded"] & clip["point_valid"][:, None]
    same = seg[np.arange(t)[None], row, col] == owner[:, None]
    return (same & seen).sum() / seen.sum()


clip = toy_clip(1)
assert own_object_rate(clip) == 1.0
first = clip["point_valid"]
assert np.array_equal(clip["target_points"][first, 0], clip["query_points"][first][:, [2, 1]])
assert clip["occluded"].any() and clip["box_valid"].any()
print(f"{first.sum()} valid tracks, occluded {clip['occluded'].mean():.0%} of the time; "
      f"boxes valid in frame 0: {clip['box_valid'][:, 0].sum()}")
mediapy.show_images({f"frame {f}": np.repeat(np.repeat(clip["video"][f], 4, 0), 4, 1)
                     for f in (0, FRAMES // 2, FRAMES - 1)}, height=128)

# %% [markdown]
# ## 4. The paper's input pipeline
#
# MooG trains on 8-frame clips at 128×128 cut from MOVi-E's 24-frame 256×256
# videos (Appendix C): a **random 8-frame window**; a **random crop** of
# 0.3–2.0 times the frame's area with aspect ratio 0.5–2.0, resized to the
# model's resolution; **colour jitter** with probability 0.8 (brightness ±32/255,
# contrast and saturation ×0.6–1.4, hue ±0.2) followed by **grayscale** with
# probability 0.2. Points and boxes must move with the pixels. The functions
# below do each step on a per-clip dict, in NumPy (host CPU), except the
# colour jitter, which uses dm-pix (JAX).
#
# **Windows re-query the tracks.** After cutting frames `s … s+7`, every track
# is queried at the window's first frame: `query = (0, y_s, x_s)`. Tracks
# occluded there, or throughout the window, become invalid (`mask_tracks`).


# %%
#| export
def mask_tracks(clip: dict) -> dict:
    """Invalidate tracks occluded at their query frame or in every frame (returns a new dict)."""
    occluded = clip["occluded"]
    frame = np.clip(np.round(clip["query_points"][:, 0]).astype(np.int64), 0, occluded.shape[1] - 1)
    seen_at_query = ~occluded[np.arange(len(frame)), frame]
    return {**clip, "point_valid": clip["point_valid"] & seen_at_query & ~occluded.all(axis=1)}


def select_window(clip: dict, start: int, num_frames: int) -> dict:
    """Frames start … start+num_frames-1 of a clip, with every track re-queried at the first."""
    t = clip["video"].shape[0]
    if not 0 <= start <= t - num_frames:
        raise ValueError(f"a window of {num_frames} frames from frame {start} does not fit in {t} frames")
    window = slice(start, start + num_frames)
    out = {key: clip[key][window] for key in ("video", "depth", "depth_mask", "segmentations")}
    for key in ("boxes", "box_valid", "target_points", "occluded"):
        out[key] = clip[key][:, window]
    first = out["target_points"][:, 0]
    out["query_points"] = np.stack([np.zeros(len(first), np.float32), first[:, 1], first[:, 0]], -1)
    out["point_valid"] = clip["point_valid"]
    return mask_tracks(out)


def random_window(clip: dict, num_frames: int, rng: np.random.Generator) -> dict:
    """A uniformly random window of `num_frames` frames (see `select_window`)."""
    t = clip["video"].shape[0]
    if num_frames > t:
        raise ValueError(f"cannot cut {num_frames} frames from a clip of {t}")
    return select_window(clip, int(rng.integers(t - num_frames + 1)), num_frames)


# %%
w8 = select_window(clip, 2, 8)
assert w8["video"].shape[0] == 8 and w8["occluded"].shape[1] == 8 and (w8["query_points"][:, 0] == 0).all()
assert np.array_equal(w8["target_points"][:, 0], clip["target_points"][:, 2])
assert not (w8["occluded"][w8["point_valid"], 0]).any()
print(f"valid tracks: {clip['point_valid'].sum()} in the clip, {w8['point_valid'].sum()} in frames 2-9")


# %% [markdown]
# ## 5. The crop
#
# A crop box is drawn in normalised frame coordinates
# `(ymin, xmin, ymax, xmax)` with area `a ∈ [0.3, 2]` and aspect ratio
# `r ∈ [0.5, 2]` (log-uniform): height `√(a/r)`, width `√(a·r)`. Along each
# axis the box starts uniformly where it either fits inside the frame or, when
# it is larger than the frame, contains it. **Area above 1 zooms out**: the
# parts of the crop outside the frame are padding — black video, depth 0 with
# `depth_mask = False`, segmentation 0 (background). (The paper does not say
# how it pads; zero padding with a cleared mask keeps every label honest.)
#
# One affine map serves everything. An output pixel centre `(j' + 0.5)/W'`
# maps to the source raster coordinate `x = (xmin + (j' + 0.5)/W' · (xmax − xmin)) · W`;
# a point goes the other way, `x' = (x/W − xmin)/(xmax − xmin) · W'`.
# The video is resampled bilinearly (edge values repeated inside the frame,
# zeros outside it); depth and segmentation by nearest neighbour, so no depth
# is invented across an object's edge and ids stay ids. Points that leave the
# crop are occluded. Boxes are mapped and clipped to the crop, and become
# invalid when nothing of them is left — the only option for a source that has
# boxes but no masks. A clipped box can be loose, though: when a crop cuts an
# L-shaped object, the corner of its old box that survives may hold none of
# its pixels. So when the clip carries a segmentation whose ids match its
# boxes (our clips drawn by hand, the renderer of chapter 05b, MOVi-E),
# `tight_boxes=True` (the default) recomputes each box from the cropped
# segmentation, with the same 0.5% rule in the new frame.

# %%
#| export
def sample_crop_box(rng: np.random.Generator, area_range=(0.3, 2.0), aspect_range=(0.5, 2.0)) -> np.ndarray:
    """A random crop (ymin, xmin, ymax, xmax) float32 [4] in normalised frame coordinates.

    Area (fraction of the frame) uniform in `area_range`, aspect ratio width/height
    log-uniform in `aspect_range`; boxes larger than the frame along an axis contain it.
    """
    area = rng.uniform(*area_range)
    aspect = np.exp(rng.uniform(np.log(aspect_range[0]), np.log(aspect_range[1])))
    size = np.array([np.sqrt(area / aspect), np.sqrt(area * aspect)])
    low, high = np.minimum(0, 1 - size), np.maximum(0, 1 - size)
    start = low + rng.uniform(size=2) * (high - low)
    return np.concatenate([start, start + size]).astype(np.float32)


def _sample_positions(lo: float, hi: float, out: int, size: int) -> np.ndarray:
    """Source raster coordinates of the `out` output pixel centres along one axis."""
    return (lo + (np.arange(out) + 0.5) / out * (hi - lo)) * size


def _resize_axis(values: np.ndarray, coords: np.ndarray, axis: int, size: int) -> np.ndarray:
    """Bilinear resampling along `axis` at raster `coords`; zero outside [0, size)."""
    centre = coords - 0.5
    i0 = np.floor(centre).astype(np.int64)
    frac = (centre - i0).astype(np.float32)
    a = np.take(values, np.clip(i0, 0, size - 1), axis=axis)
    b = np.take(values, np.clip(i0 + 1, 0, size - 1), axis=axis)
    shape = [1] * values.ndim
    shape[axis] = len(coords)
    frac = frac.reshape(shape)
    inside = ((coords >= 0) & (coords < size)).astype(np.float32).reshape(shape)
    return (a * (1 - frac) + b * frac) * inside


# %%
#| export
def crop_and_resize_clip(clip: dict, box, resolution: int | tuple[int, int], *,
                         tight_boxes: bool = True) -> dict:
    """Crop `box` (ymin, xmin, ymax, xmax), normalised, possibly beyond [0, 1]) out of every
    frame and resize it to `resolution` (an int for square output, or (H', W')).

    Video: bilinear; depth, depth_mask, segmentation: nearest; outside the source frame:
    zeros and depth_mask False. Points and queries move with the pixels; points that
    leave the output frame become occluded. Boxes are mapped and clipped (invalid when
    empty); with `tight_boxes` and a non-empty segmentation they are instead recomputed
    from the cropped segmentation (`boxes_from_segmentation`, box k = id k + 1). Track
    validity is not re-masked here (see `mask_tracks`).
    """
    ymin, xmin, ymax, xmax = (float(v) for v in np.asarray(box, np.float64))
    if not (ymax > ymin and xmax > xmin):
        raise ValueError(f"crop box must have ymax > ymin and xmax > xmin, got {box}")
    out_h, out_w = (resolution, resolution) if np.isscalar(resolution) else resolution
    _, h, w, _ = clip["video"].shape
    ys, xs = _sample_positions(ymin, ymax, out_h, h), _sample_positions(xmin, xmax, out_w, w)
    video = _resize_axis(clip["video"].astype(np.float32), ys, 1, h)
    video = _resize_axis(video, xs, 2, w)
    rows, cols = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
    inside = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
    pick = np.ix_(np.clip(rows, 0, h - 1), np.clip(cols, 0, w - 1))
    nearest = lambda a: a[:, pick[0], pick[1]] * inside[None, :, :, None].astype(a.dtype)
    scale = np.array([out_w / ((xmax - xmin) * w), out_h / ((ymax - ymin) * h)], np.float32)
    offset = np.array([xmin * w, ymin * h], np.float32)
    target = (clip["target_points"] - offset) * scale
    query = clip["query_points"].copy()
    query[:, 2:0:-1] = (query[:, 2:0:-1] - offset) * scale
    outside = ((target < 0) | (target >= np.array([out_w, out_h], np.float32))).any(-1)
    lo = np.array([ymin, xmin, ymin, xmin])
    span = np.array([ymax - ymin, xmax - xmin] * 2)
    boxes = np.clip((clip["boxes"] - lo) / span, 0, 1).astype(np.float32)
    box_valid = clip["box_valid"] & (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])
    segmentations = nearest(clip["segmentations"])
    if tight_boxes and clip["segmentations"].any():
        boxes, box_valid = boxes_from_segmentation(segmentations, max_boxes=len(boxes))
    return {
        "video": np.clip(np.round(video), 0, 255).astype(np.uint8),
        "depth": nearest(clip["depth"]).astype(np.float32),
        "depth_mask": nearest(clip["depth_mask"]),
        "segmentations": segmentations,
        "boxes": np.where(box_valid[..., None], boxes, 0).astype(np.float32),
        "box_valid": box_valid,
        "query_points": query.astype(np.float32),
        "target_points": target.astype(np.float32),
        "occluded": clip["occluded"] | outside,
        "point_valid": clip["point_valid"].copy(),
    }

# %% [markdown]
# The check that matters: crop a clip, then ask whether each visible
# track still lands on a pixel of its own object, and whether each box is the
# extent of its object in the cropped segmentation — exactly with tight boxes;
# and, for mapped boxes of objects the crop does not cut, up to one output
# pixel when the crop enlarges. (When it shrinks, nearest-neighbour sampling
# can skip a thin part of an object — a horse's leg in chapter 05a's cut-out
# cards — and the mapped box overshoots the pixels left: one more reason for
# tight boxes.)


# %%
rng = np.random.default_rng(0)
base = toy_clip(2, size=64)
for area_range in ((0.3, 0.6), (1.3, 2.0)):  # zoom in, zoom out
    box = sample_crop_box(rng, area_range)
    cropped = mask_tracks(crop_and_resize_clip(base, box, 48))
    check_clip(cropped)
    print(f"crop {np.round(box, 2)}: on own object {100 * own_object_rate(cropped):.1f}% "
          f"(uncropped {100 * own_object_rate(base):.1f}%)")
    assert own_object_rate(cropped) > 0.93
    seg_boxes, seg_valid = boxes_from_segmentation(cropped["segmentations"])
    assert np.array_equal(cropped["boxes"], seg_boxes) and np.array_equal(cropped["box_valid"], seg_valid)
    if max(box[2] - box[0], box[3] - box[1]) * 64 <= 48:  # the crop enlarges: no source pixel skipped
        mapped = crop_and_resize_clip(base, box, 48, tight_boxes=False)
        uncut = mapped["box_valid"] & seg_valid & (mapped["boxes"] > 0).all(-1) & (mapped["boxes"] < 1).all(-1)
        assert np.abs(mapped["boxes"][uncut] - seg_boxes[uncut]).max() <= 1 / 48 + 1e-6
padded = crop_and_resize_clip(base, [-0.5, -0.5, 1.5, 1.5], 64)
assert not padded["depth_mask"][:, :16].any() and padded["depth_mask"][:, 16:48, 16:48].all()
assert np.allclose(padded["target_points"], base["target_points"] / 2 + 16)


# %% [markdown]
# ## 6. Colour
#
# dm-pix implements the TF image ops in JAX. One set of random
# factors is drawn per clip and applied to all its frames, in a fixed order
# (brightness, contrast, saturation, hue — SimCLR also randomises the order; the
# paper does not say), each followed by clipping to [0, 1]. Only the video
# changes. The function is pure JAX, so it can also run on the accelerator
# inside a training step (`jax.vmap` over a batch); the pipeline below runs it
# on the host CPU.

# %%
#| export
import functools

import jax.numpy as jnp


def color_jitter(key: jax.Array, video: jax.Array, *, p_jitter: float = 0.8,
                 max_brightness: float = 32 / 255, contrast=(0.6, 1.4), saturation=(0.6, 1.4),
                 max_hue: float = 0.2, p_grayscale: float = 0.2) -> jax.Array:
    """The paper's colour augmentation on a float video [..., H, W, 3] in [0, 1].

    With probability p_jitter: random brightness, contrast, saturation and hue (one draw
    per call, shared by all frames); then grayscale (kept as 3 channels) with
    probability p_grayscale. Returns the same shape, clipped to [0, 1].
    """
    import dm_pix as pix

    keys = jax.random.split(key, 6)
    clip01 = lambda v: jnp.clip(v, 0.0, 1.0)
    jittered = clip01(pix.random_brightness(keys[0], video, max_brightness))
    jittered = clip01(pix.random_contrast(keys[1], jittered, *contrast))
    jittered = clip01(pix.random_saturation(keys[2], jittered, *saturation))
    jittered = clip01(pix.random_hue(keys[3], jittered, max_hue))
    video = jnp.where(jax.random.uniform(keys[4]) < p_jitter, jittered, video)
    gray = jnp.broadcast_to(pix.rgb_to_grayscale(video, keep_dims=True), video.shape)
    return jnp.where(jax.random.uniform(keys[5]) < p_grayscale, gray, video)


@functools.cache
def _host_jitter():
    return jax.jit(color_jitter)


def jitter_clip_video(video: np.ndarray, seed: int) -> np.ndarray:
    """`color_jitter` on a uint8 video [T, H, W, 3] on the host CPU; returns uint8."""
    with jax.default_device(jax.devices("cpu")[0]):
        out = _host_jitter()(jax.random.key(seed), jnp.asarray(video, jnp.float32) / 255.0)
    return np.clip(np.round(np.asarray(out) * 255.0), 0, 255).astype(np.uint8)


# %%
jittered = [jitter_clip_video(base["video"][:4], s) for s in range(40)]
changed = np.mean([not np.array_equal(j, base["video"][:4]) for j in jittered])
gray = np.mean([np.ptp(j.astype(int), axis=-1).max() == 0 for j in jittered])
assert jittered[0].shape == base["video"][:4].shape and jittered[0].dtype == np.uint8
assert np.array_equal(jitter_clip_video(base["video"][:4], 3), jittered[3])  # deterministic per seed
print(f"changed: {changed:.0%} of clips (expected ~84%: 1 - 0.2 x 0.8), grayscale: {gray:.0%} (expected ~20%)")
mediapy.show_images([j[0] for j in jittered[:8]], columns=8, height=80)

# %% [markdown]
# ## 7. The whole augmentation, batching, and a grain pipeline
#
# `augment_clip` chains window → crop → resize → jitter → track masking,
# drawing everything from the NumPy generator it is given. `grain` supplies
# the rest: a `MapDataset` over any random-access source (a list, the
# renderer of chapter 05b, the `array_record` files of chapter 05c), global
# shuffling, epochs, per-element random seeds derived from one pipeline seed
# (so a pipeline is reproducible and checkpointable), batching, and optional
# worker processes.

# %%
#| export
import dataclasses


def augment_clip(clip: dict, rng: np.random.Generator, *, num_frames: int = 8,
                 resolution: int | None = None, crop: bool = True, jitter: bool = True,
                 area_range=(0.3, 2.0), aspect_range=(0.5, 2.0)) -> dict:
    """Random window of `num_frames`, random crop resized to `resolution` (None: the clip's
    own size), colour jitter, then `mask_tracks`. Deterministic given `rng`'s state."""
    clip = random_window(clip, num_frames, rng)
    size = resolution or clip["video"].shape[1:3]
    if crop:
        clip = crop_and_resize_clip(clip, sample_crop_box(rng, area_range, aspect_range), size)
    elif resolution is not None and resolution != clip["video"].shape[1]:
        clip = crop_and_resize_clip(clip, (0, 0, 1, 1), size)
    if jitter:
        clip = {**clip, "video": jitter_clip_video(clip["video"], int(rng.integers(2**31)))}
    return mask_tracks(clip)


def collate_clips(clips) -> dict:
    """Stack per-clip dicts into a batch {key: [B, ...]}; all clips must share shapes."""
    clips = list(clips)
    if not clips:
        raise ValueError("collate_clips needs at least one clip")
    for key in CLIP_KEYS:
        shapes = {np.shape(c[key]) for c in clips}
        if len(shapes) > 1:
            raise ValueError(f"cannot batch clips whose {key!r} shapes differ: {sorted(shapes)}")
    return {key: np.stack([c[key] for c in clips]) for key in CLIP_KEYS}


@dataclasses.dataclass(frozen=True)
class _Augment:
    """A picklable grain random-map transform around `augment_clip`."""

    num_frames: int
    resolution: int | None
    augment: bool

    def __call__(self, clip, rng):
        missing = [key for key in CLIP_KEYS if key not in clip]
        if missing:
            raise ValueError(f"a clip from the source lacks {missing} (it has {sorted(clip)}); "
                             "every clip needs the keys data.CLIP_KEYS (see data.unlabelled_clip)")
        clip = {key: np.asarray(clip[key]) for key in CLIP_KEYS}  # drops extra keys, e.g. "index"
        return augment_clip(clip, rng, num_frames=self.num_frames, resolution=self.resolution,
                            crop=self.augment, jitter=self.augment)


# %%
#| export
def make_pipeline(source, *, batch_size: int, seed: int = 0, num_frames: int = 8,
                  resolution: int | None = None, augment: bool = True, shuffle: bool = True,
                  num_epochs: int | None = None, worker_count: int = 0, prefetch: int = 2):
    """Batches {key: [B, ...]} of augmented `num_frames`-frame windows from `source`.

    `source` supports len() and [i] (grain.MapDataset path: global shuffle, epochs,
    per-element seeds, `worker_count` processes) or is only iterable (e.g. MOVi-E via
    tf.data: streamed in order, augmented and batched in this process). Returns an
    iterable; `num_epochs=None` repeats forever. `prefetch` batches are prepared
    ahead, by as many threads: enough to hide the data behind a training step.
    grain's default (16 threads, 500 elements ahead) would render hundreds of
    clips ahead, holding Python's lock while `jax.jit` traces the step.
    """
    _check_size("batch_size", batch_size)
    transform = _Augment(num_frames, resolution, augment)
    if not (hasattr(source, "__getitem__") and hasattr(source, "__len__")):
        return _stream_batches(source, transform, batch_size, seed, num_epochs)
    if len(source) == 0:
        raise ValueError("make_pipeline: the source holds no clips; pass a source with at "
                         "least one clip")
    import grain

    ds = grain.MapDataset.source(source)
    if shuffle:
        ds = ds.shuffle(seed=seed)
    ds = ds.repeat(num_epochs).random_map(transform, seed=seed)
    _check_size("prefetch", prefetch)
    ds = ds.batch(batch_size, drop_remainder=True, batch_fn=collate_clips).to_iter_dataset(
        grain.ReadOptions(num_threads=prefetch, prefetch_buffer_size=prefetch))
    if worker_count:
        from absl import flags

        if not flags.FLAGS.is_parsed():  # grain's workers read absl flags; outside an absl app
            flags.FLAGS.mark_as_parsed()  # nobody parsed them, so accept the defaults
        ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
    return ds


def _stream_batches(source, transform, batch_size, seed, num_epochs):
    rng = np.random.default_rng(seed)
    epoch = 0
    while num_epochs is None or epoch < num_epochs:
        batch, seen = [], 0
        for clip in source:
            seen += 1
            batch.append(transform(clip, rng))
            if len(batch) == batch_size:
                yield collate_clips(batch)
                batch = []
        if not seen:
            raise ValueError(f"make_pipeline: the source gave no clips (in epoch {epoch}); "
                             "pass a source that can be iterated again, with at least one clip")
        epoch += 1

# %%
clips = [toy_clip(i) for i in range(4)]
pipeline = make_pipeline(clips, batch_size=2, num_frames=8, resolution=RES, seed=0)
batches = [b for _, b in zip(range(3), pipeline)]
again = [b for _, b in zip(range(3), make_pipeline(clips, batch_size=2, num_frames=8, resolution=RES, seed=0))]
assert all(np.array_equal(x[k], y[k]) for x, y in zip(batches, again) for k in CLIP_KEYS)  # reproducible
assert batches[0]["video"].shape == (2, 8, RES, RES, 3) and batches[0]["query_points"].shape == (2, 256, 3)
check_clip({k: v[0] for k, v in batches[0].items()})
print({k: (v.shape, v.dtype.name) for k, v in batches[0].items()})

# %% [markdown]
# ## 8. Onto the devices
#
# A training step shards the batch along its first axis over a one-axis
# device mesh named `"data"`. We build the mesh with an explicit
# axis type, because JAX's default axis types changed between the versions this
# project supports (0.7 on Colab, 0.10 here). `jax.device_put` with a
# `NamedSharding` splits the host arrays and sends each device its slice.

# %%
#| export
def data_parallel_mesh(devices=None) -> jax.sharding.Mesh:
    """A 1-D mesh with axis "data" over `devices` (default: all of `jax.devices()`)."""
    devices = jax.devices() if devices is None else list(devices)
    return jax.sharding.Mesh(np.array(devices), ("data",), axis_types=(jax.sharding.AxisType.Auto,))


def shard_clip_batch(batch: dict, mesh: jax.sharding.Mesh | None = None) -> dict:
    """Place a batch {key: [B, ...]} on `mesh`, split along B over the "data" axis.

    B must be divisible by the number of devices on the axis. With several processes,
    each passes its own slice of the global batch.
    """
    mesh = data_parallel_mesh() if mesh is None else mesh
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    devices = mesh.shape["data"] // jax.process_count()
    for key, value in batch.items():
        if np.ndim(value) == 0 or np.shape(value)[0] % devices:
            raise ValueError(f"batch[{key!r}] has leading size {np.shape(value)[:1]}, which must be "
                             f"divisible by the {devices} devices on this process")
    if jax.process_count() == 1:
        return {key: jax.device_put(np.asarray(value), sharding) for key, value in batch.items()}
    return {key: jax.make_array_from_process_local_data(sharding, np.asarray(value))
            for key, value in batch.items()}


# %%
mesh = data_parallel_mesh()
on_device = shard_clip_batch(batches[0], mesh)
assert on_device["video"].sharding.spec == jax.sharding.PartitionSpec("data")
assert np.array_equal(np.asarray(on_device["target_points"]), batches[0]["target_points"])
print(mesh, "| video shards:", [s.data.shape for s in on_device["video"].addressable_shards])

# %% [markdown]
# ## 9. Sources
#
# Where do the clips come from? So far from a list of clips drawn by hand;
# chapters 05a–05b render them, and chapter 05c adds a dataset on disk, MOVi-E,
# TAP-Vid-DAVIS and video files. Every one is a `ClipSource`: a random-access
# collection of per-clip dicts with `len(source)` and `source[i]`, which
# `make_pipeline` and `grain` read directly (a plain list of clips works too).

# %%
#| export
class ClipSource:
    """A random-access collection of per-clip dicts: `len(source)`, `source[i]`, iteration.

    Every source of chapter 05c (`moog_lib.datasets`) is one; `make_pipeline` and grain read
    any of them, and plain lists of clips too.
    """

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict:
        raise NotImplementedError

    def __iter__(self):
        return (self[i] for i in range(len(self)))

# %%
class ToySource(ClipSource):
    """The first `n` hand-drawn clips, drawn when asked for."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return toy_clip(index)


from_source = next(iter(make_pipeline(ToySource(4), batch_size=2, num_frames=8, resolution=RES, seed=0)))
assert all(np.array_equal(from_source[k], batches[0][k]) for k in CLIP_KEYS)  # the same batch as from the list
print("a batch from a ClipSource:", from_source["video"].shape)

# %% [markdown]
# ## Summary
#
# - Every source yields one **per-clip dict**: `video`, `depth` (distance to
#   the camera centre) with `depth_mask`, `segmentations` (0 background,
#   object `k` → `k + 1`), `boxes`/`box_valid` (normalised pixel-edge extents,
#   ≥ 0.5% of the image, ≤ 10), and TAP-Vid point tracks (`query_points`
#   `(t, y, x)`, `target_points` `(x, y)` in raster pixels with centres at
#   `+0.5`, `occluded`, `point_valid`). Missing labels are present and invalid.
# - A **clip drawn by hand** — squares moving whole pixels per frame — has
#   exact labels by construction; visible points on their own object is the
#   test that labels moved with the pixels.
# - The **pipeline** cuts random 8-frame windows (re-querying tracks),
#   crops 0.3–2× the frame (zoom-out pads with zeros and clears the depth
#   mask) moving points and boxes with the pixels, jitters colour with dm-pix,
#   batches with grain and shards onto a `("data",)` mesh; it reads any
#   `ClipSource` (chapter 05b: rendered clips; chapter 05c: a dataset on disk,
#   MOVi-E, TAP-Vid-DAVIS, video files).
#
# ## Exercises
#
# 1. ★ The two orders: for every valid track of a hand-drawn clip, write its
#    query `(t, y, x)` as an `(x, y)` position and check that it equals the
#    track's target at its query frame. Do the same after
#    `select_window(clip, 3, 8)`, and say what the window changed in the
#    queries.
# 2. ★★ Write a horizontal flip for a per-clip dict (video, depth,
#    segmentation, tracks, queries, boxes) and check it with the two tests of
#    section 5: visible points on their own object, and boxes equal to the
#    extent of the flipped segmentation.
# 3. ★★★ Undo a crop. For a crop box `b` (try one inside the frame and one
#    that zooms out), find the box `b′`, in the *cropped* frame's normalised
#    coordinates, that maps the cropped frame back onto the original one;
#    crop the cropped clip with `b′` back to the original resolution. Show
#    that the target points come back to float precision, that `depth_mask`
#    is False exactly where the first crop had no source pixels (up to one
#    pixel at the border), and measure how far the video is from the
#    original inside `b`. Why do points come back exactly and pixels not?

# %% [markdown]
# ### Solution 1

# %%
def queries_match_targets(clip):
    valid = clip["point_valid"]
    t_query = clip["query_points"][valid, 0].astype(int)
    at_query = clip["target_points"][valid][np.arange(valid.sum()), t_query]  # (x, y)
    return np.allclose(clip["query_points"][valid][:, [2, 1]], at_query)


clip = toy_clip(5)
window = select_window(clip, 3, 8)
assert queries_match_targets(clip) and queries_match_targets(window)
assert (window["query_points"][:, 0] == 0).all()  # re-queried at the window's first frame
moved = np.abs(window["query_points"][:, 1:] - clip["query_points"][:, 1:]).max(-1) > 0
print(f"the window moved {moved.mean():.0%} of the queries (those on sliding squares) to "
      f"where their points are in frame 3; {window['point_valid'].sum()} of "
      f"{clip['point_valid'].sum()} tracks stay valid")

# %% [markdown]
# ### Solution 2

# %%
def flip_clip(clip):
    t, h, w, _ = clip["video"].shape
    out = {k: clip[k][:, :, ::-1].copy() for k in ("video", "depth", "depth_mask", "segmentations")}
    out["target_points"] = clip["target_points"] * np.array([-1, 1], np.float32) + np.array([w, 0], np.float32)
    out["query_points"] = clip["query_points"] * np.array([1, 1, -1], np.float32) + np.array([0, 0, w], np.float32)
    ymin, xmin, ymax, xmax = np.moveaxis(clip["boxes"], -1, 0)
    flipped = np.stack([ymin, 1 - xmax, ymax, 1 - xmin], -1)
    out["boxes"] = np.where(clip["box_valid"][..., None], flipped, 0).astype(np.float32)
    for k in ("box_valid", "occluded", "point_valid"):
        out[k] = clip[k].copy()
    return check_clip(out)


zoomed_out = crop_and_resize_clip(toy_clip(9, size=64), [-0.1, -0.2, 1.2, 1.1], 48)
original = mask_tracks(zoomed_out)  # resampled: no longer every visible point on its own object
mirror = flip_clip(original)
assert abs(own_object_rate(mirror) - own_object_rate(original)) < 1e-9
seg_boxes, seg_valid = boxes_from_segmentation(mirror["segmentations"])
assert np.allclose(mirror["boxes"], seg_boxes, atol=1e-6) and np.array_equal(mirror["box_valid"], seg_valid)
print(f"own-object rate after the flip: {100 * own_object_rate(mirror):.2f}% (before: "
      f"{100 * own_object_rate(original):.2f}%)")

# %% [markdown]
# ### Solution 3

# %%
def inverse_box(box):
    """The box, in the crop's normalised coordinates, that covers the original frame."""
    ymin, xmin, ymax, xmax = np.asarray(box, np.float64)
    h, w = ymax - ymin, xmax - xmin
    return np.array([-ymin / h, -xmin / w, (1 - ymin) / h, (1 - xmin) / w])


clip = toy_clip(3, size=64)
for box in (np.array([0.2, 0.1, 0.7, 0.8]), np.array([-0.25, -0.5, 1.25, 1.3])):
    there = crop_and_resize_clip(clip, box, 48)
    back = crop_and_resize_clip(there, inverse_box(box), 64)
    assert np.allclose(back["target_points"], clip["target_points"], atol=1e-3)
    assert np.allclose(back["query_points"], clip["query_points"], atol=1e-3)
    centre = (np.arange(64) + 0.5) / 64  # pixel centres, normalised
    kept = ((centre >= box[0]) & (centre < box[2]))[:, None] & ((centre >= box[1]) & (centre < box[3]))[None]
    border = kept ^ (np.roll(kept, 1, 0) & np.roll(kept, -1, 0) & np.roll(kept, 1, 1) & np.roll(kept, -1, 1))
    agree = back["depth_mask"][0, ..., 0] == kept
    assert (agree | border).all()  # the mask is the crop's footprint, up to its one-pixel border
    inner = kept & ~border
    error = np.abs(back["video"].astype(int) - clip["video"].astype(int))[:, inner].mean()
    print(f"box {box}: points back to {np.abs(back['target_points'] - clip['target_points']).max():.1e} px, "
          f"video off by {error:.1f} grey levels inside the crop")
# Points go through two affine maps that are exact inverses: only float rounding is left.
# Pixels are resampled twice: zooming in interpolates (bilinear) between source pixels, and
# zooming back samples that interpolation at other positions, so edges (the squares' sides,
# their checker) are blurred; when the first crop shrinks the frame, detail below its pixel
# size is gone for good.

# %% [markdown]
# ## References
#
# - S. van Steenkiste, D. Zoran, Y. Yang, Y. Rubanova, R. Kabra, C. Doersch,
#   D. Gokay, J. Heyward, E. Pot, K. Greff, D. A. Hudson, T. A. Keck,
#   J. Carreira, A. Dosovitskiy, M. S. M. Sajjadi, T. Kipf. *Moving
#   Off-the-Grid: Scene-Grounded Video Representations.* NeurIPS 2024
#   (Appendix C: data and augmentation).
# - K. Greff, F. Belletti, L. Beyer, C. Doersch, Y. Du, D. Duckworth, et al.
#   *Kubric: A Scalable Dataset Generator.* CVPR 2022 — the MOVi datasets,
#   whose labels the per-clip dict follows.
# - C. Doersch, A. Gupta, L. Markeeva, A. Recasens, L. Smaira, Y. Aytar,
#   J. Carreira, A. Zisserman, Y. Yang. *TAP-Vid: A Benchmark for Tracking Any
#   Point in a Video.* NeurIPS 2022 Datasets and Benchmarks — the raster
#   convention.
# - T. Chen, S. Kornblith, M. Norouzi, G. Hinton. *A Simple Framework for
#   Contrastive Learning of Visual Representations.* ICML 2020 — the colour
#   jitter recipe.
