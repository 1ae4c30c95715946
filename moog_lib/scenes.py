"""The synthetic world: textures and MOVi-like scenes.

`SceneConfig` and `SCENE_PRESETS` describe a world and `sample_scene` draws a
`Scene` from it (textures from `load_texture_image`, cut-out cards from
`alpha_masks`); a scene is a pure function of (preset, split, index, seed).
`moog_lib.render` renders it into a clip with exact labels.

Generated from chapters/05a_scenes.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "TRAIN_TEXTURES",
    "TEST_TEXTURES",
    "load_texture_image",
    "alpha_masks",
    "SceneConfig",
    "SCENE_PRESETS",
    "DATA_SPLITS",
    "Scene",
    "sample_scene",
]


import dataclasses
import functools
import importlib.util
import os
import zlib

import numpy as np

from moog_lib.data import MAX_BOXES

# chapters/05a_scenes.py, cell 7
TRAIN_TEXTURES = ("astronaut", "camera", "chelsea", "rocket", "brick", "grass",
                  "hubble_deep_field", "coins", "retina", "china")
TEST_TEXTURES = ("coffee", "gravel", "immunohistochemistry", "clock", "flower")


def _sklearn_sample_image(name: str) -> np.ndarray:
    # Read the JPEG straight from the installed package: importing sklearn.datasets
    # costs seconds, and only the file is needed.
    spec = importlib.util.find_spec("sklearn")
    if spec is None:
        raise ValueError(f"texture '{name}' needs scikit-learn (pip install scikit-learn)")
    path = os.path.join(spec.submodule_search_locations[0], "datasets", "images", f"{name}.jpg")
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@functools.cache
def load_texture_image(name: str) -> np.ndarray:
    """A bundled image as read-only float32 [h, w, 3] in [0, 1] (gray images: equal channels).

    `name` is one of TRAIN_TEXTURES + TEST_TEXTURES: a `skimage.data` image, or
    scikit-learn's "china" / "flower". Images wider than ~384 px are block-averaged down.
    """
    if name not in TRAIN_TEXTURES + TEST_TEXTURES:
        raise ValueError(f"unknown texture {name!r}; expected one of {TRAIN_TEXTURES + TEST_TEXTURES}")
    if name in ("china", "flower"):
        image = _sklearn_sample_image(name)
    else:
        import skimage.data

        image = getattr(skimage.data, name)()
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    image = image[..., :3].astype(np.float32) / 255.0
    factor = max(1, max(image.shape[:2]) // 384)
    if factor > 1:
        h, w = (s // factor * factor for s in image.shape[:2])
        image = image[:h, :w].reshape(h // factor, factor, w // factor, factor, 3).mean((1, 3))
    image.setflags(write=False)
    return image


@functools.cache
def _is_gray(name: str) -> bool:
    return bool(np.ptp(load_texture_image(name), axis=-1).max() < 1e-6)


# chapters/05a_scenes.py, cell 8
@functools.cache
def alpha_masks(size: int = 64) -> np.ndarray:
    """Cut-out shapes for the cards: read-only bool [5, size, size] (True = solid).

    A disc, a five-pointed star, a rounded square, a triangle and the silhouette of a
    horse (`skimage.data.horse`, a real CC0 drawing), each filling the unit square.
    """
    c = (np.arange(size) + 0.5) / size * 2 - 1
    y, x = np.meshgrid(c, c, indexing="ij")
    radius, angle = np.hypot(x, y), np.arctan2(y, x)
    disc = radius < 0.95
    star = radius < 0.5 + 0.45 * np.clip(np.cos(5 * (angle + np.pi / 2)), 0, 1) ** 2
    rounded = np.abs(x) ** 4 + np.abs(y) ** 4 < 0.85
    triangle = (y < 0.9) & (y > -0.9 + 1.9 * np.abs(x))
    import skimage.data

    horse = ~np.asarray(skimage.data.horse())  # the file stores the horse as False
    side = max(horse.shape)
    square = np.zeros((side, side), bool)
    top, left = (side - horse.shape[0]) // 2, (side - horse.shape[1]) // 2
    square[top:top + horse.shape[0], left:left + horse.shape[1]] = horse
    pick = ((np.arange(size) + 0.5) * side / size).astype(int)
    masks = np.stack([disc, star, rounded, triangle, square[pick][:, pick]])
    masks.setflags(write=False)
    return masks


# chapters/05a_scenes.py, cell 11
@dataclasses.dataclass(frozen=True)
class SceneConfig:
    """How one family of synthetic scenes is drawn (lengths in scene units, times in seconds)."""

    name: str
    camera_motion: str  # "static" | "pan" | "zoom" | "linear"
    num_resting: tuple[int, int] = (4, 7)  # inclusive range
    num_moving: tuple[int, int] = (1, 3)  # inclusive range
    camera_distance: tuple[float, float] = (8.0, 12.0)  # the shell around the origin
    camera_elevation_deg: tuple[float, float] = (15.0, 50.0)
    camera_travel: tuple[float, float] = (0.0, 4.0)  # "linear": distance moved in 24 frames (2 s)
    pan_deg: tuple[float, float] = (10.0, 25.0)  # "pan": total turn over the clip
    zoom_ratio: tuple[float, float] = (1.3, 1.8)  # "zoom": focal length end/start (or start/end)
    object_speed: float = 4.0  # moving objects: velocity per axis in [-v, v]
    object_scale: tuple[float, float] = (0.4, 1.1)  # sphere radius / cube half-size
    fps: float = 12.0
    focal_length: float = 35.0  # mm, MOVi's camera
    sensor_width: float = 32.0  # mm
    room_half_size: float = 16.0
    resting_region: float = 5.0  # objects start in [-r, r]²
    moving_region: float = 5.0
    # The MOVi-A-like family: plain colours, a speed range, a pen to bounce in.
    textured: bool = True  # False: every surface is one plain colour
    speed: tuple[float, float] | None = None  # moving objects: |v| in this range (units/s)
    pen: float = 0.0  # > 0: moving objects bounce off the walls of [-pen, pen]²
    kind_weights: tuple[float, float, float] = (0.35, 0.35, 0.30)  # sphere, cube, card


SCENE_PRESETS = {
    "static": SceneConfig("static", "static"),
    "pan": SceneConfig("pan", "pan"),
    "zoom": SceneConfig("zoom", "zoom"),
    "movi_e": SceneConfig("movi_e", "linear"),
    "movi_a": SceneConfig("movi_a", "static", num_resting=(0, 1), num_moving=(2, 4),
                          camera_distance=(8.0, 10.0), camera_elevation_deg=(30.0, 60.0),
                          object_scale=(0.7, 1.2), moving_region=3.5, textured=False,
                          speed=(3.0, 6.0), pen=3.5, kind_weights=(0.5, 0.5, 0.0)),
}
DATA_SPLITS = ("train", "validation", "test")
SPHERE, CUBE, CARD = 0, 1, 2  # object kinds


@dataclasses.dataclass
class Scene:
    """A sampled scene: camera and objects over T frames (K objects, S×S textures).

    Camera: `eye` [T, 3] centres; `cam_rot` [T, 3, 3] camera-to-world rotations whose
    columns are the camera's right, down and forward axes; `focal` [T] focal length over
    sensor width (the focal length in pixels is `focal * W`). Objects: `kind` [K],
    `size` [K, 3] half extents of the local bounding box, `centre` [K, T, 3], `rot`
    [K, T, 3, 3] object-to-world, `moving` [K], `shape` [K] alpha-mask index (cards).
    `textures` [2 + K, S, S, 3] float32: ground, walls, then one per object.
    """

    eye: np.ndarray
    cam_rot: np.ndarray
    focal: np.ndarray
    kind: np.ndarray
    size: np.ndarray
    centre: np.ndarray
    rot: np.ndarray
    moving: np.ndarray
    shape: np.ndarray
    textures: np.ndarray
    light: np.ndarray  # [3] unit vector towards the light
    room_half_size: float


def _scene_rng(preset: str, split: str, index: int, seed: int, stream: int = 0):
    # zlib.crc32 is stable across processes (Python's hash() of a str is not).
    return np.random.default_rng([seed, zlib.crc32(preset.encode()), DATA_SPLITS.index(split),
                                  index, stream])


# chapters/05a_scenes.py, cell 12
def _rotation(axis, angle):
    """Rodrigues' formula: unit axes [..., 3] and angles [...] -> rotations [..., 3, 3]."""
    axis, angle = np.asarray(axis, np.float64), np.asarray(angle, np.float64)
    axis = np.broadcast_to(axis, np.broadcast_shapes(axis.shape, angle.shape + (3,)))
    angle = np.broadcast_to(angle, axis.shape[:-1])
    cross = np.zeros(axis.shape + (3,))
    cross[..., 0, 1], cross[..., 0, 2], cross[..., 1, 2] = -axis[..., 2], axis[..., 1], -axis[..., 0]
    cross = cross - np.swapaxes(cross, -1, -2)
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + s * cross + (1 - c) * (cross @ cross)


def _look_at(eye, target):
    """Camera-to-world rotations [T, 3, 3] with columns (right, down, forward), z up."""
    forward = target - eye
    forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right = right / np.linalg.norm(right, axis=-1, keepdims=True)
    return np.stack([right, np.cross(forward, right), forward], axis=-1)


def _sample_camera(cfg: SceneConfig, rng, num_frames: int):
    times = np.arange(num_frames) / cfg.fps
    progress = np.arange(num_frames) / max(num_frames - 1, 1)
    azimuth = rng.uniform(0, 2 * np.pi)
    elevation = np.deg2rad(rng.uniform(*cfg.camera_elevation_deg))
    distance = rng.uniform(*cfg.camera_distance)
    start = distance * np.array([np.cos(elevation) * np.cos(azimuth),
                                 np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
    eye = np.repeat(start[None], num_frames, axis=0)
    target = np.zeros((num_frames, 3))
    focal = np.full(num_frames, cfg.focal_length / cfg.sensor_width)
    if cfg.camera_motion == "linear":
        # MOVi-E: draw (distance, direction) until the end point is also in the shell;
        # 64 candidates at once, the first that works wins (none: the camera stays).
        travel = rng.uniform(*cfg.camera_travel, size=64) * times[-1] / (23 / cfg.fps)
        direction = rng.normal(size=(64, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        end = start + direction * travel[:, None]
        radius = np.linalg.norm(end, axis=1)
        ok = (radius >= cfg.camera_distance[0]) & (radius <= cfg.camera_distance[1]) & (end[:, 2] > 1)
        move = direction[np.argmax(ok)] * travel[np.argmax(ok)] if ok.any() else np.zeros(3)
        eye = start + move * progress[:, None]
    elif cfg.camera_motion == "pan":
        turn = np.deg2rad(rng.uniform(*cfg.pan_deg)) * rng.choice([-1.0, 1.0])
        spin = _rotation(np.array([0.0, 0.0, 1.0]), turn * progress)  # [T, 3, 3]
        target = eye + spin @ -start
    elif cfg.camera_motion == "zoom":
        ratio = rng.uniform(*cfg.zoom_ratio)
        focal = focal * (ratio if rng.random() < 0.5 else 1 / ratio) ** progress
    elif cfg.camera_motion != "static":
        raise ValueError(f"unknown camera_motion {cfg.camera_motion!r}")
    return eye, _look_at(eye, target), focal


def _crop_texture(rng, names, size: int) -> np.ndarray:
    """A random square crop of a random image, resampled to [size, size, 3]."""
    name = names[rng.integers(len(names))]
    image = load_texture_image(name)
    h, w, _ = image.shape
    side = rng.uniform(0.3, 0.8) * min(h, w)
    top, left = rng.uniform(0, h - side), rng.uniform(0, w - side)
    offsets = (np.arange(size) + 0.5) / size * side
    texture = image[(top + offsets).astype(int)][:, (left + offsets).astype(int)]
    if _is_gray(name):  # tint gray photographs with a random saturated colour
        hue = rng.uniform()
        tint = np.clip(np.abs((hue * 6 + np.array([0.0, 4.0, 2.0])) % 6 - 3) - 1, 0, 1)
        texture = texture * (0.45 + 0.55 * tint)
    return texture[:, ::-1] if rng.random() < 0.5 else texture


# chapters/05a_scenes.py, cell 13
def _plain_colours(rng, num_objects: int) -> np.ndarray:
    """[2 + K, 3]: a light grey floor, darker grey walls, then K saturated, evenly spaced hues."""
    hues = (rng.uniform() + np.arange(num_objects) / num_objects) % 1.0
    rng.shuffle(hues)
    objects = np.clip(np.abs((hues[:, None] * 6 + np.array([0.0, 4.0, 2.0])) % 6 - 3) - 1, 0, 1)
    objects = 0.15 + 0.8 * objects * rng.uniform(0.8, 1.0, (num_objects, 1))
    floor, walls = rng.uniform(0.55, 0.7), rng.uniform(0.3, 0.4)
    return np.concatenate([np.full((1, 3), floor), np.full((1, 3), walls), objects])


# chapters/05a_scenes.py, cell 14
def sample_scene(preset: str, split: str, index: int, seed: int = 0, *, num_frames: int = 24,
                 texture_size: int = 128) -> Scene:
    """Draw the scene (preset, split, index, seed) over `num_frames` frames; deterministic.

    `preset` is a key of SCENE_PRESETS, `split` one of DATA_SPLITS ("test" draws its
    textures from TEST_TEXTURES only, the others from TRAIN_TEXTURES).
    """
    if preset not in SCENE_PRESETS:
        raise ValueError(f"unknown scene preset {preset!r}; expected one of {sorted(SCENE_PRESETS)}")
    if split not in DATA_SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {DATA_SPLITS}")
    for name, value, low in (("index", index, 0), ("seed", seed, 0), ("num_frames", num_frames, 1)):
        if not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    cfg = SCENE_PRESETS[preset]
    rng = _scene_rng(preset, split, int(index), int(seed))
    eye, cam_rot, focal = _sample_camera(cfg, rng, num_frames)
    times = np.arange(num_frames) / cfg.fps
    n_resting = int(rng.integers(cfg.num_resting[0], cfg.num_resting[1] + 1))
    n_moving = int(rng.integers(cfg.num_moving[0], cfg.num_moving[1] + 1))
    k = min(MAX_BOXES, n_resting + n_moving)
    n_moving = min(n_moving, k)
    moving = np.arange(k) >= k - n_moving
    kind = rng.choice(3, size=k, p=list(cfg.kind_weights))
    scale = rng.uniform(*cfg.object_scale, size=k)
    aspect = rng.uniform(0.7, 1.4, size=k)
    card = kind == CARD
    size = np.stack([scale, scale, scale], axis=1)
    size[card] = np.stack([1.3 * scale[card], 1.3 * scale[card] * aspect[card],
                           np.full(card.sum(), 1e-3)], axis=1)  # cards: thin boxes, local y up
    rest_height = np.where(card, size[:, 1], size[:, 2])
    radius = np.linalg.norm(size, axis=1)
    position = np.zeros((k, 2))
    for i in range(k):  # at most 10 objects; candidates are vectorised
        region = cfg.moving_region if moving[i] else cfg.resting_region
        candidates = rng.uniform(-region, region, size=(32, 2))
        gap = np.linalg.norm(candidates[:, None] - position[None, :i], axis=-1) - radius[:i] - radius[i]
        free = (gap > 0.05).all(axis=1)
        position[i] = candidates[np.argmax(free)]
    velocity = np.zeros((k, 2))
    if cfg.speed is None:  # MOVi-like: towards the centre, often through the frame's edge
        velocity[moving] = rng.uniform(-cfg.object_speed, cfg.object_speed, (n_moving, 2)) - 0.5 * position[moving]
    else:
        heading = rng.uniform(0, 2 * np.pi, n_moving)
        velocity[moving] = rng.uniform(*cfg.speed, n_moving)[:, None] * np.stack(
            [np.cos(heading), np.sin(heading)], axis=1)
    path = position[:, None] + velocity[:, None] * times[None, :, None]  # [K, T, 2]
    if cfg.pen > 0:  # elastic bounces off the pen's walls: fold the straight path back
        wall = np.maximum(cfg.pen - scale, 0.1)[:, None, None]
        folded = np.mod(path + wall, 4 * wall)
        path = np.where(moving[:, None, None], np.minimum(folded, 4 * wall - folded) - wall, path)
    centre = np.concatenate([path, np.broadcast_to(rest_height[:, None, None], (k, num_frames, 1))],
                            axis=-1)
    up = np.array([0.0, 0.0, 1.0])
    yaw = rng.uniform(0, 2 * np.pi, size=k)
    spin = np.where(moving & (kind != SPHERE), rng.uniform(-np.pi, np.pi, size=k), 0.0)
    rot = _rotation(up, yaw[:, None] + spin[:, None] * times[None])  # [K, T, 3, 3]
    stand_up = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # local y -> world z
    rot[card] = rot[card] @ stand_up
    rolling = (kind == SPHERE) & moving & (cfg.pen == 0)  # in a pen, spheres slide
    if rolling.any():  # rolling without slipping: axis up × velocity, angle = distance / radius
        v = velocity[rolling]
        speed = np.linalg.norm(v, axis=1)
        axis = np.stack([-v[:, 1], v[:, 0], np.zeros_like(speed)], axis=1) / np.maximum(speed, 1e-9)[:, None]
        roll = _rotation(axis[:, None], (speed / scale[rolling])[:, None] * times[None])
        rot[rolling] = roll @ _rotation(up, yaw[rolling])[:, None]
    names = TEST_TEXTURES if split == "test" else TRAIN_TEXTURES
    if cfg.textured:
        textures = np.stack([_crop_texture(rng, names, texture_size) for _ in range(2 + k)])
    else:
        textures = np.broadcast_to(_plain_colours(rng, k)[:, None, None], (2 + k, 4, 4, 3))
    shape = rng.integers(len(alpha_masks()), size=k)
    light_azimuth, light_elevation = rng.uniform(0, 2 * np.pi), np.deg2rad(rng.uniform(40, 70))
    light = np.array([np.cos(light_elevation) * np.cos(light_azimuth),
                      np.cos(light_elevation) * np.sin(light_azimuth), np.sin(light_elevation)])
    return Scene(eye=eye, cam_rot=cam_rot, focal=focal, kind=kind, size=size, centre=centre,
                 rot=rot, moving=moving, shape=shape, textures=textures.astype(np.float32),
                 light=light, room_half_size=cfg.room_half_size)
