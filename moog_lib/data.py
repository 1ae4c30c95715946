"""The clip and the input pipeline: one dict per clip, windows, augmentation, batches, devices.

`clip_spec`, `check_clip`, `unlabelled_clip` and `CLIP_KEYS` define a clip;
`check_finite`, `is_concrete` and `boxes_from_segmentation` check and label it;
`select_window`, `random_window`, `crop_and_resize_clip`, `jitter_clip_video`
and `augment_clip` are the paper's augmentations; `make_pipeline` and
`collate_clips` batch clips with grain; `data_parallel_mesh` and
`shard_clip_batch` put a batch on the devices; `ClipSource` is what every
source of clips is. The synthetic clips themselves are rendered by
`moog_lib.render`.

Generated from chapters/05_data.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "CLIP_KEYS",
    "MAX_BOXES",
    "clip_spec",
    "check_clip",
    "unlabelled_clip",
    "check_finite",
    "is_concrete",
    "boxes_from_segmentation",
    "mask_tracks",
    "select_window",
    "random_window",
    "sample_crop_box",
    "crop_and_resize_clip",
    "color_jitter",
    "jitter_clip_video",
    "augment_clip",
    "collate_clips",
    "make_pipeline",
    "data_parallel_mesh",
    "shard_clip_batch",
    "ClipSource",
]


import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

# chapters/05_data.py, cell 7
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


# chapters/05_data.py, cell 11
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


# chapters/05_data.py, cell 12
def is_concrete(*arrays) -> bool:
    """True unless one of `arrays` is traced (inside `jax.jit`, `jax.grad`, `jax.vmap`, …).

    Concrete values can be checked and computed on the host with NumPy, in their own
    precision; traced ones only by JAX. `None` and Python numbers count as concrete."""
    return not any(isinstance(a, jax.core.Tracer) for a in arrays)


# chapters/05_data.py, cell 16
def _check_size(name: str, value, low: int = 1, multiple_of: int = 1,
                high: int | None = None) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name}={value}: expected at most {high} pixels on a side")
    if value % multiple_of:
        raise ValueError(f"{name} must be divisible by {multiple_of}, got {value}")
    return int(value)


# chapters/05_data.py, cell 19
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


# chapters/05_data.py, cell 26
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


# chapters/05_data.py, cell 29
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


# chapters/05_data.py, cell 30
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


# chapters/05_data.py, cell 34
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


# chapters/05_data.py, cell 37
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


# chapters/05_data.py, cell 38
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


# chapters/05_data.py, cell 41
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


# chapters/05_data.py, cell 44
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
