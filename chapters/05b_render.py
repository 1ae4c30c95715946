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
# # 05b — Rendering with exact labels
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/moog-tutorial/moog-tutorial/blob/main/notebooks/05b_render.ipynb)
#
# **What you will learn.** Chapter 05a built MOVi-like scenes; this chapter
# films them, and because we own every scene, its labels are exact:
#
# - a small **ray tracer in NumPy**: one ray per pixel centre, a z-buffer of
#   distances, surface ids and local hit points, and simple shading;
# - **exact ground truth** for every readout — depth, segmentation, boxes and
#   TAP-Vid point tracks with occlusion — checked against exact ray-cast
#   visibility;
# - `render_clip`, a scene key in and chapter 05's per-clip dict out, at
#   64×64 faster than a training step needs it, and on every core with
#   `render_clips`.
#
# The code goes to `moog_lib.render`, which imports chapter 05's
# `moog_lib.data` and chapter 05a's `moog_lib.scenes`. Chapter 05c stores
# rendered clips on disk and loads the real datasets.
#
# **Prerequisites.** Chapter 05 (the per-clip dict, boxes from a
# segmentation, the input pipeline) and chapter 05a (`Scene`, `sample_scene`,
# the presets). NumPy broadcasting and fancy indexing; the pinhole camera model
# (we recap it).
#
# **Runtime.**
#
# | preset | hardware | this chapter |
# |---|---|---|
# | `tiny` | CI, 2 CPU cores | 15 s (nbval in `make test` on a clean clone, two workers, nothing else running; 2026-12-03) |
# | `colab` | Colab TPU v5e-1 | estimate ≈ 1.5 min, all CPU: ≈ 100 clips rendered at 64² (≈ 0.05 s each on one core, measured here) and a few at 128², and the install; not measured on Colab |

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
#| default_exp render

# %% [markdown]
# The chapter's own sizes, as in chapter 05: small in CI, MOVi-like on a TPU
# runtime (the renderer runs on the host CPU either way).

# %%
import dataclasses
import time

import matplotlib.pyplot as plt
import numpy as np

from moog_lib.data import (
    CLIP_KEYS,
    check_clip,
    crop_and_resize_clip,
    make_pipeline,
    mask_tracks,
    sample_crop_box,
)
from moog_lib.scenes import SCENE_PRESETS, sample_scene

SMALL = PRESET == "tiny"
RES = 32 if SMALL else 64  # frame size used by the demonstrations
FRAMES = 12 if SMALL else 24  # frames per rendered clip (MOVi-E: 24)
print(f"demonstrations at {RES}x{RES}, {FRAMES} frames")

# %% [markdown]
# ## 1. Rays and the z-buffer
#
# The camera model. A point with camera coordinates `(X, Y, Z)` (right, down,
# forward) lands at the raster position
#
# $$x = f W \frac{X}{Z} + \frac{W}{2}, \qquad y = f W \frac{Y}{Z} + \frac{H}{2},$$
#
# with `f` = focal length / sensor width (square pixels, principal point at the
# image centre). Rendering runs this backwards: **one ray per pixel centre**
# `(j + 0.5, i + 0.5)`, with a unit direction, so that the ray parameter at a
# hit *is* the distance from the camera centre — exactly MOVi's depth.
#
# Each surface is intersected analytically and the nearest hit wins:
#
# - the room: the floor (`t = −o_z / d_z` when the ray goes down) and the
#   walls (`t = (±L − o) / d` per axis, the sign of `d` picking the wall);
# - objects, in their own frame (`o' = Rᵀ(o − c)`, `d' = Rᵀd`): a sphere by
#   the quadratic formula, a cube by the slab test, a card by its plane `z = 0`
#   followed by a look-up in its alpha mask.
#
# For speed, each object is first tested against its **bounding sphere** with
# one dot product per ray; only the few rays that pass get the exact test. The
# z-buffer keeps, per pixel, the distance, the **surface id** (0 floor, 1
# walls `x = ±L`, 2 walls `y = ±L`, `3 + k` object `k`) and the **local hit
# point** (world coordinates for the room, object coordinates for objects).
# The local point is what makes tracking exact: a surface point is fixed in its
# object's frame, whatever the object and the camera do.

# %%
#| export render
"""Rendering MOVi-like scenes with exact labels: a ray tracer, shading and ground truth.

`camera_rays`, `trace_rays`, `surface_attributes` and `shade` render a `Scene`
of `moog_lib.scenes`; `project_points`, `track_surface_points`,
`trace_visibility` and `sample_query_pixels` give exact point tracks;
`render_scene`, `render_clip` and `render_clips` return clips in the schema of
`moog_lib.data`.
"""
import os

import numpy as np

from moog_lib.scenes import CARD, CUBE, SPHERE, Scene, _scene_rng, alpha_masks, sample_scene

NEAR = 1e-3  # hits closer than this to the ray origin are ignored
FLOOR, WALL_X, WALL_Y, FIRST_OBJECT = 0, 1, 2, 3  # surface ids in the z-buffer


def camera_rays(scene: Scene, height: int, width: int) -> np.ndarray:
    """Unit world-space directions of the rays through pixel centres: float32 [T, H*W, 3].

    Ray `i * W + j` of frame t passes through raster (x, y) = (j + 0.5, i + 0.5).
    """
    fpix = scene.focal * width  # [T] focal length in pixels
    x = (np.arange(width) + 0.5 - width / 2)[None, None, :] / fpix[:, None, None]
    y = (np.arange(height) + 0.5 - height / 2)[None, :, None] / fpix[:, None, None]
    x, y = np.broadcast_arrays(x, y)
    local = np.stack([x, y, np.ones_like(x)], axis=-1).reshape(len(fpix), -1, 3)
    rays = local @ np.swapaxes(scene.cam_rot, 1, 2)  # rotate into the world
    return (rays / np.linalg.norm(rays, axis=-1, keepdims=True)).astype(np.float32)


def _hit_room(eye: np.ndarray, rays: np.ndarray, half_size: float):
    origin = eye[:, None, :].astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        floor = np.where(rays[..., 2] < 0, -origin[..., 2] / rays[..., 2], np.inf)
        walls = (np.copysign(np.float32(half_size), rays[..., :2]) - origin[..., :2]) / rays[..., :2]
    walls = np.where(np.isfinite(walls), walls, np.inf)
    candidates = np.concatenate([floor[..., None], walls], axis=-1)  # [T, N, 3]
    surface = np.argmin(candidates, axis=-1)
    dist = np.take_along_axis(candidates, surface[..., None], axis=-1)[..., 0]
    return dist.astype(np.float32), surface.astype(np.int16)


def _hit_object(kind: int, size: np.ndarray, mask: np.ndarray, o: np.ndarray, d: np.ndarray):
    """Distance [n] along rays o + s d [n, 3] (object frame) to the object; inf on a miss."""
    if kind == SPHERE:
        b = np.einsum("ni,ni->n", o, d)
        disc = b * b - (np.einsum("ni,ni->n", o, o) - size[0] ** 2)
        s = -b - np.sqrt(np.maximum(disc, 0))
        return np.where((disc >= 0) & (s > NEAR), s, np.inf)
    if kind == CUBE:  # slab test
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (-size - o) / d, (size - o) / d
        enter = np.nan_to_num(np.minimum(t1, t2), nan=-np.inf).max(axis=-1)
        leave = np.nan_to_num(np.maximum(t1, t2), nan=np.inf).min(axis=-1)
        return np.where((leave >= enter) & (enter > NEAR), enter, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):  # card: the plane z = 0 ...
        s = -o[:, 2] / d[:, 2]
    u = (o[:, 0] + s * d[:, 0]) / size[0] * 0.5 + 0.5
    v = 0.5 - (o[:, 1] + s * d[:, 1]) / size[1] * 0.5  # image rows run downwards
    inside = (u >= 0) & (u < 1) & (v >= 0) & (v < 1) & (s > NEAR)
    m = mask.shape[0]  # ... cut out by the alpha mask
    solid = mask[np.clip((v * m).astype(np.int64), 0, m - 1), np.clip((u * m).astype(np.int64), 0, m - 1)]
    return np.where(inside & solid, s, np.inf)


# %%
#| export render
def trace_rays(scene: Scene, rays: np.ndarray):
    """Nearest hit of every ray [T, N, 3] (from `camera_rays`).

    Returns `dist` float32 [T, N] (distance from the camera centre), `surface` int16
    [T, N] (0 floor, 1 walls x=±L, 2 walls y=±L, 3+k object k) and `local` float32
    [T, N, 3] (the hit point in world coordinates for the room, in the object's own
    frame for objects).
    """
    dist, surface = _hit_room(scene.eye, rays, scene.room_half_size)
    local = scene.eye[:, None, :].astype(np.float32) + dist[..., None] * rays
    masks = alpha_masks()
    for k in range(len(scene.kind)):
        to_centre = (scene.centre[k] - scene.eye).astype(np.float32)  # [T, 3]
        along = (rays @ to_centre[:, :, None])[..., 0]  # [T, N]
        bound = 1.001 * float(np.linalg.norm(scene.size[k]))
        near_sq = (to_centre * to_centre).sum(-1)[:, None] - along * along
        frame, ray = np.nonzero((near_sq < bound * bound) & (along > -bound))  # bounding sphere
        if frame.size == 0:
            continue
        rot = scene.rot[k].astype(np.float32)
        origin = np.einsum("tji,tj->ti", rot, -to_centre)[frame]  # camera centre, object frame
        direction = np.einsum("nji,nj->ni", rot[frame], rays[frame, ray])
        s = _hit_object(scene.kind[k], scene.size[k], masks[scene.shape[k]], origin, direction)
        closer = s < dist[frame, ray]
        frame, ray, s = frame[closer], ray[closer], s[closer]
        dist[frame, ray] = s
        surface[frame, ray] = FIRST_OBJECT + k
        local[frame, ray] = origin[closer] + s[:, None] * direction[closer]
    return dist, surface, local


# %% [markdown]
# Two checks against closed forms: the centre ray of a static camera looking at
# the origin from height `h` at distance `r` hits the floor at distance `r`
# when no object is in the way; and every ray that hits the floor has
# `o_z + dist · d_z = 0`.

# %%
still = sample_scene("static", "train", 0)  # chapter 05a's still camera
empty = dataclasses.replace(still, kind=still.kind[:0], size=still.size[:0], centre=still.centre[:0],
                            rot=still.rot[:0], moving=still.moving[:0], shape=still.shape[:0])
rays = camera_rays(empty, 33, 33)  # odd size: ray 16*33+16 is the optical axis
dist, surface, local = trace_rays(empty, rays)
assert np.allclose(dist[:, 16 * 33 + 16], np.linalg.norm(empty.eye[0]), rtol=1e-5)
floor = surface == FLOOR
hit_z = empty.eye[:, None, 2] + dist * rays[..., 2]
assert np.abs(hit_z[floor]).max() < 1e-3 and np.allclose(local[floor][:, 2], 0, atol=1e-3)
assert np.allclose(np.linalg.norm(rays, axis=-1), 1, atol=1e-6)
print("surfaces seen by the empty room:", np.bincount(surface.ravel()))

# %% [markdown]
# ## 2. Shading
#
# Colour is texture × light. Every surface maps its local hit point to
# texture coordinates `(u, v)`: the floor and walls tile their texture every 6
# and 8 units with mirrored repeats (no seams), spheres use longitude and
# latitude, each cube face uses its two in-face coordinates, and cards their
# plane coordinates. The light is a single distant sun (Lambert's cosine law)
# plus an ambient term; cards are two-sided, so their normal is flipped to face
# the camera. There are no shadows and no reflections: enough shading to give
# depth cues, nothing that would need a second ray per pixel.

# %%
#| export render
def _object_normals(kind: int, size: np.ndarray, local: np.ndarray) -> np.ndarray:
    """Outward unit normals [n, 3], object frame, at local points [n, 3] on the surface."""
    normal = np.zeros_like(local)
    if kind == SPHERE:
        return local / size[0]
    if kind == CUBE:  # the face whose slab the point is closest to leaving
        axis = np.argmax(np.abs(local) / size, axis=-1)
        rows = np.arange(len(local))
        normal[rows, axis] = np.sign(local[rows, axis])
        return normal
    normal[:, 2] = 1.0  # cards: +z (flipped towards the viewer when shading)
    return normal


def _mirror(u: np.ndarray) -> np.ndarray:
    u = np.mod(u, 2.0)
    return np.where(u > 1, 2 - u, u)


def surface_attributes(scene: Scene, rays: np.ndarray, surface: np.ndarray, local: np.ndarray):
    """Per hit: texture index int [T*N], texture coordinates u, v in [0, 1] [T*N], and
    the world-space unit normal float32 [T*N, 3] (cards: facing the camera)."""
    n = surface.shape[1]
    flat = surface.reshape(-1)
    order = np.argsort(flat, kind="stable")  # group the hits by surface once
    bounds = np.searchsorted(flat[order], np.arange(FIRST_OBJECT + len(scene.kind) + 1))
    points = local.reshape(-1, 3)
    u = np.zeros(flat.shape, np.float32)
    v = np.zeros(flat.shape, np.float32)
    texture = np.zeros(flat.shape, np.int64)
    normal = np.zeros(points.shape, np.float32)
    for group in range(FIRST_OBJECT + len(scene.kind)):
        idx = order[bounds[group]:bounds[group + 1]]
        if idx.size == 0:
            continue
        p = points[idx]
        if group == FLOOR:
            u[idx], v[idx] = _mirror(p[:, 0] / 6.0), _mirror(p[:, 1] / 6.0)
            normal[idx, 2] = 1.0
        elif group in (WALL_X, WALL_Y):
            across = 1 if group == WALL_X else 0  # the horizontal axis along the wall
            u[idx], v[idx] = _mirror(p[:, across] / 8.0), _mirror(-p[:, 2] / 8.0)
            texture[idx] = 1
            normal[idx, 1 - across] = -np.sign(p[:, 1 - across])
        else:
            k = group - FIRST_OBJECT
            kind, size = scene.kind[k], scene.size[k]
            texture[idx] = 2 + k
            n_local = _object_normals(kind, size, p)
            if kind == SPHERE:
                u[idx] = np.arctan2(n_local[:, 1], n_local[:, 0]) / (2 * np.pi) + 0.5
                v[idx] = np.arccos(np.clip(n_local[:, 2], -1, 1)) / np.pi
            elif kind == CUBE:
                q = p / size * 0.5 + 0.5
                face = np.argmax(np.abs(n_local), axis=-1)
                u[idx] = np.where(face == 0, q[:, 1], q[:, 0])
                v[idx] = np.where(face == 2, q[:, 1], q[:, 2])
            else:
                u[idx], v[idx] = p[:, 0] / size[0] * 0.5 + 0.5, 0.5 - p[:, 1] / size[1] * 0.5
            world = np.einsum("nij,nj->ni", scene.rot[k][idx // n].astype(np.float32), n_local)
            if kind == CARD:  # two-sided
                towards = np.einsum("ni,ni->n", world, rays.reshape(-1, 3)[idx]) > 0
                world[towards] *= -1
            normal[idx] = world
    return texture, u, v, normal


def shade(scene: Scene, rays: np.ndarray, surface: np.ndarray, local: np.ndarray) -> np.ndarray:
    """RGB in [0, 1], float32 [T, N, 3]: texture × (0.35 ambient + 0.65 Lambert)."""
    texture, u, v, normal = surface_attributes(scene, rays, surface, local)
    size = scene.textures.shape[1]
    rows = np.clip((v * size).astype(np.int64), 0, size - 1)
    cols = np.clip((u * size).astype(np.int64), 0, size - 1)
    albedo = scene.textures[texture, rows, cols]
    light = np.maximum(normal @ scene.light.astype(np.float32), 0.0)
    return (albedo * (0.35 + 0.65 * light)[:, None]).reshape(*surface.shape, 3)


# %%
scene = sample_scene("movi_e", "train", 0, num_frames=3)
rays = camera_rays(scene, 96, 96)
dist, surface, local = trace_rays(scene, rays)
rgb = shade(scene, rays, surface, local)
_, _, _, normals = surface_attributes(scene, rays, surface, local)
assert rgb.shape == (3, 96 * 96, 3) and 0 <= rgb.min() and rgb.max() <= 1
assert np.allclose(np.linalg.norm(normals, axis=-1), 1, atol=1e-4)
assert (np.einsum("ni,ni->n", normals, rays.reshape(-1, 3)) < 1e-4).all()  # every normal faces the camera
fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
axes[0].imshow(rgb[0].reshape(96, 96, 3))
axes[0].set_title("colour")
axes[1].imshow(dist[0].reshape(96, 96), cmap="viridis_r")
axes[1].set_title("distance to the camera")
axes[2].imshow(surface[0].reshape(96, 96), cmap="tab20", vmin=0, vmax=19)
axes[2].set_title("surface id")
axes[3].imshow(normals.reshape(3, 96, 96, 3)[0] * 0.5 + 0.5)
axes[3].set_title("normals")
for ax in axes:
    ax.axis("off")
plt.show()

# %% [markdown]
# ## 3. Ground truth: segmentation, boxes and point tracks
#
# **Segmentation.** Object `k` gets id `k + 1`; the floor and the walls are
# background, id 0, as MOVi labels its floor and dome.
#
# **Boxes** come from the segmentation, with chapter 05's
# `boxes_from_segmentation` (§2): pixel-edge extents, invalid below 0.5% of
# the image, at most 10 per clip — our scenes never have more than 10
# objects, so box `k` always belongs to object `k`.
#
# **Point tracks** follow the TAP-Vid Kubric recipe. Queries are sampled on
# frame 0 from a grid with a random offset and a stride of 4 pixels *at
# 256×256* (scaled with the resolution: stride 1 at 64², 2 at 128²). Each
# segment (every object, and the background) may give at most 10% of *its
# own* grid points, and the total of `N` is spread as evenly as those caps
# allow, smallest segments first — so small objects are not drowned by the
# floor and large ones cannot take over. (The paper summarises this as "at
# most 10% on one object"; the Kubric code it relies on caps each segment
# relative to its own size, and so do we.) A query keeps its surface id and
# local hit point from the z-buffer; in frame `t` the point is at
# `R_k(t) · local + c_k(t)` (room points do not move), which the camera
# projects to a target `(x, y)`. A point is **occluded** when it is behind the
# camera, outside the frame, farther than the z-buffer at its pixel (by more
# than 3%: the z-buffer holds the depth at the pixel's *centre*, and on a
# surface seen at a grazing angle that differs from the depth at the point by a
# few percent within one pixel), or on a sphere or cube face that turns away
# from the camera. Tracks occluded at their query frame or in every frame get
# `point_valid = False`; slots left over when the caps allow fewer than `N`
# points are invalid too (below 64×64 the caps leave fewer than 256 points).
#
# Because we own the scene, we can also compute visibility *exactly*: cast a
# ray from the camera towards the point itself and ask whether the first thing
# it hits is that point. `trace_visibility` does this; it is how we chose the
# 3% slack and how the tests keep the z-buffer rule honest.

# %%
#| export render
def project_points(scene: Scene, points: np.ndarray, height: int, width: int):
    """Project world points [..., T, 3] with the camera of each frame.

    Returns raster (x, y) float32 [..., T, 2] (clipped to ±1e4), the camera-space depth
    along the optical axis [..., T] (≤ 0 behind the camera) and the distance from the
    camera centre [..., T].
    """
    rel = (points - scene.eye).astype(np.float32)
    cam = np.einsum("tji,...tj->...ti", scene.cam_rot.astype(np.float32), rel)
    fpix = (scene.focal * width).astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = fpix * cam[..., :2] / cam[..., 2:] + np.array([width / 2, height / 2], np.float32)
    xy = np.nan_to_num(xy, nan=-1e4, posinf=1e4, neginf=-1e4).clip(-1e4, 1e4)
    return xy.astype(np.float32), cam[..., 2], np.linalg.norm(rel, axis=-1)


def track_surface_points(scene: Scene, surface: np.ndarray, local: np.ndarray, dist: np.ndarray,
                         height: int, width: int, depth_tolerance: float = 0.03):
    """Follow surface points through the clip.

    `surface` int [P] and `local` [P, 3] identify points as `trace_rays` does; `dist` is
    the z-buffer [T, H*W]. Returns target_points float32 [P, T, 2] as raster (x, y) and
    occluded bool [P, T] (behind the camera, outside the frame, farther than
    `dist · (1 + depth_tolerance)` at its pixel, or on a solid's face turned away).
    """
    t = len(scene.eye)
    rot = np.concatenate([np.broadcast_to(np.eye(3), (FIRST_OBJECT, t, 3, 3)), scene.rot])
    shift = np.concatenate([np.zeros((FIRST_OBJECT, t, 3)), scene.centre])
    world = np.einsum("ptij,pj->pti", rot[surface], local) + shift[surface]  # [P, T, 3]
    xy, z, distance = project_points(scene, world, height, width)
    inside = (z > NEAR) & (xy[..., 0] >= 0) & (xy[..., 0] < width) & (xy[..., 1] >= 0) & (xy[..., 1] < height)
    col = np.clip(np.floor(xy[..., 0]).astype(np.int64), 0, width - 1)
    row = np.clip(np.floor(xy[..., 1]).astype(np.int64), 0, height - 1)
    hidden = distance > dist[np.arange(t), row * width + col] * (1 + depth_tolerance)
    away = np.zeros_like(hidden)
    for k in np.unique(surface[surface >= FIRST_OBJECT]) - FIRST_OBJECT:
        if scene.kind[k] == CARD:  # cards are two-sided: never facing away
            continue
        on_k = surface == FIRST_OBJECT + k
        normal = np.einsum("tij,pj->pti", scene.rot[k], _object_normals(scene.kind[k], scene.size[k], local[on_k]))
        away[on_k] = np.einsum("pti,pti->pt", normal, scene.eye - world[on_k]) < 0
    return xy, ~inside | hidden | away


# %%
#| export render
def trace_visibility(scene: Scene, surface: np.ndarray, local: np.ndarray, height: int, width: int,
                     tolerance: float = 1e-3) -> np.ndarray:
    """Exact visibility of surface points [P] (as in `track_surface_points`): bool [P, T].

    A point is visible when it projects inside the frame and the ray from the camera
    centre towards it first hits that surface within `tolerance` (relative) of its distance.
    """
    t = len(scene.eye)
    rot = np.concatenate([np.broadcast_to(np.eye(3), (FIRST_OBJECT, t, 3, 3)), scene.rot])
    shift = np.concatenate([np.zeros((FIRST_OBJECT, t, 3)), scene.centre])
    world = np.einsum("ptij,pj->pti", rot[surface], local) + shift[surface]
    rel = world - scene.eye[None]
    distance = np.linalg.norm(rel, axis=-1)
    rays = np.swapaxes(rel / distance[..., None], 0, 1).astype(np.float32)  # [T, P, 3]
    hit, hit_surface, _ = trace_rays(scene, rays)
    xy, z, _ = project_points(scene, world, height, width)
    inside = (z > NEAR) & (xy[..., 0] >= 0) & (xy[..., 0] < width) & (xy[..., 1] >= 0) & (xy[..., 1] < height)
    same = (hit_surface.T == surface[:, None]) & (np.abs(hit.T - distance) <= tolerance * distance)
    return inside & same


def sample_query_pixels(rng: np.random.Generator, segmentation: np.ndarray, num_points: int,
                        stride: int, max_fraction: float = 0.1):
    """Pick up to `num_points` pixels (rows [P], cols [P], P ≤ num_points) of one frame.

    Candidates lie on a grid of `stride` with a random offset; segment g (0 = background)
    gives at most round(max_fraction × its candidates), and the total is shared as evenly
    as these caps allow, smallest segment first (TAP-Vid Kubric's scheme). Shuffled.
    """
    h, w = segmentation.shape
    top, left = rng.integers(stride, size=2)
    rows, cols = np.meshgrid(np.arange(top, h, stride), np.arange(left, w, stride), indexing="ij")
    rows, cols = rows.ravel(), cols.ravel()
    group = segmentation[rows, cols].astype(np.int64)
    counts = np.bincount(group)
    present = np.nonzero(counts)[0]
    present = present[np.argsort(counts[present], kind="stable")]
    chosen, remaining = [], num_points
    for left_over, g in zip(range(len(present), 0, -1), present):
        quota = min(round(remaining / left_over), round(max_fraction * counts[g]))
        chosen.append(rng.choice(np.nonzero(group == g)[0], quota, replace=False))
        remaining -= quota
    chosen = rng.permutation(np.concatenate(chosen)).astype(np.int64)
    return rows[chosen], cols[chosen]

# %% [markdown]
# Checks on toy inputs whose answers we know: a point at the camera's look-at
# target projects to the image centre; the sampler respects its caps.

# %%
centre_xy, _, centre_distance = project_points(still, np.zeros((len(still.eye), 3)), 64, 64)
assert np.allclose(centre_xy, 32.0, atol=1e-3)
assert np.allclose(centre_distance, np.linalg.norm(still.eye, axis=-1), rtol=1e-5)
toy_seg = np.zeros((64, 64), np.uint8)
toy_seg[:8, :8] = 1  # an object of 64 pixels: at most 6 queries
qr, qc = sample_query_pixels(np.random.default_rng(0), toy_seg, 256, stride=1)
assert (toy_seg[qr, qc] == 1).sum() == 6 and len(qr) == 256

# %% [markdown]
# And the z-buffer rule against exact visibility, for a range of slacks, on
# points sampled like the real queries:

# %%
def zbuffer_vs_exact(tolerances, presets=("static", "movi_e"), n=2, res=64):
    wrong = {tol: [0, 0] for tol in tolerances}  # [falsely visible, falsely occluded]
    total = 0
    for preset in presets:
        for i in range(n):
            s = sample_scene(preset, "validation", i, num_frames=FRAMES)
            d = camera_rays(s, res, res)
            dist_i, surface_i, local_i = trace_rays(s, d)
            seg0 = np.where(surface_i[0] >= FIRST_OBJECT, surface_i[0] - FIRST_OBJECT + 1, 0)
            r, c = sample_query_pixels(np.random.default_rng(i), seg0.reshape(res, res), 256, 1)
            pts = (surface_i[0, r * res + c], local_i[0, r * res + c])
            exact = trace_visibility(s, *pts, res, res)
            total += exact.size
            for tol in tolerances:
                seen = ~track_surface_points(s, *pts, dist_i, res, res, tol)[1]
                wrong[tol][0] += (seen & ~exact).sum()
                wrong[tol][1] += (~seen & exact).sum()
    return {tol: (fv / total, fo / total) for tol, (fv, fo) in wrong.items()}


for tol, (false_visible, false_occluded) in zbuffer_vs_exact((0.0, 0.01, 0.03, 0.1)).items():
    print(f"slack {tol:4.0%}: falsely visible {false_visible:.2%}, falsely occluded {false_occluded:.2%}")
assert sum(zbuffer_vs_exact((0.03,))[0.03]) < 0.02

# %% [markdown]
# ## 4. `render_clip`: a scene in, a per-clip dict out
#
# Putting it together: draw the scene, trace all `T · H · W` rays at once,
# shade, label, sample queries on frame 0 and track them. The query sampler
# uses its own random stream, so asking for more points does not change the
# scene.

# %%
#| export render
from moog_lib.data import _check_size, boxes_from_segmentation


def padded_tracks(rows, cols, xy, occluded, num_points: int):
    """The point-track entries of a per-clip dict for `p <= num_points` points queried at
    frame 0 on pixels (`rows`, `cols`), tracked to `xy` [p, T, 2] with `occluded` [p, T]:
    (query_points [N, 3] at pixel centres, target_points [N, T, 2], occluded [N, T],
    point_valid [N]), padded to N = num_points with invalid, occluded points. A point is
    valid when it is visible at its query frame and not occluded everywhere."""
    p, t = occluded.shape
    query = np.zeros((num_points, 3), np.float32)
    query[:p, 1], query[:p, 2] = rows + 0.5, cols + 0.5  # (t=0, y, x) at pixel centres
    target = np.zeros((num_points, t, 2), np.float32)
    target[:p] = xy
    padded = np.ones((num_points, t), bool)
    padded[:p] = occluded
    valid = np.zeros(num_points, bool)
    valid[:p] = ~occluded[:, 0] & ~occluded.all(axis=1)
    return query, target, padded, valid


def render_scene(scene: Scene, resolution: int, num_points: int, rng: np.random.Generator,
                 depth_tolerance: float = 0.03) -> dict:
    """Render `scene` at resolution × resolution into a per-clip dict (see `clip_spec`)."""
    t, h, w = len(scene.eye), resolution, resolution
    rays = camera_rays(scene, h, w)
    dist, surface, local = trace_rays(scene, rays)
    colour = shade(scene, rays, surface, local)
    seg = np.where(surface >= FIRST_OBJECT, surface - FIRST_OBJECT + 1, 0).astype(np.uint8)
    seg = seg.reshape(t, h, w)
    boxes, box_valid = boxes_from_segmentation(seg)
    stride = max(1, round(4 * resolution / 256))  # stride 4 at 256×256
    rows, cols = sample_query_pixels(rng, seg[0], num_points, stride)
    pixel = rows * w + cols
    xy, occ = track_surface_points(scene, surface[0, pixel], local[0, pixel], dist, h, w, depth_tolerance)
    query, target, occluded, valid = padded_tracks(rows, cols, xy, occ, num_points)
    return {
        "video": (np.clip(colour, 0, 1) * 255 + 0.5).astype(np.uint8).reshape(t, h, w, 3),
        "depth": dist.reshape(t, h, w, 1),
        "depth_mask": np.isfinite(dist).reshape(t, h, w, 1),
        "segmentations": seg[..., None],
        "boxes": boxes,
        "box_valid": box_valid,
        "query_points": query,
        "target_points": target,
        "occluded": occluded,
        "point_valid": valid,
    }


MAX_RESOLUTION = 1024  # the renderer's largest frame side (MOVi-E and TAP-Vid: 256)


def render_clip(preset: str, split: str, index: int, seed: int = 0, *, resolution: int = 64,
                num_frames: int = 24, num_points: int = 256) -> dict:
    """The synthetic clip (preset, split, index, seed) as a per-clip dict; deterministic.

    video uint8 [T, R, R, 3]; depth float32 [T, R, R, 1] (distance to the camera centre);
    depth_mask bool (all True: the room is closed); segmentations uint8 [T, R, R, 1]
    (0 floor and walls, object k → k + 1); boxes [10, T, 4] / box_valid [10, T]; tracks
    query_points [N, 3] (t, y, x), target_points [N, T, 2] (x, y), occluded [N, T],
    point_valid [N] in raster pixels, queries on frame 0. Single-threaded; see
    `render_clips` for many clips on all cores.
    """
    resolution = _check_size("resolution", resolution, low=8, high=MAX_RESOLUTION)
    num_points = _check_size("num_points", num_points, low=0)
    scene = sample_scene(preset, split, index, seed, num_frames=num_frames,
                         texture_size=min(256, 2 * resolution))
    return render_scene(scene, resolution, num_points, _scene_rng(preset, split, int(index), int(seed), 1))


# %%
clip = render_clip("movi_e", "train", 0, resolution=RES, num_frames=FRAMES)
check_clip(clip)
assert clip["video"].shape == (FRAMES, RES, RES, 3) and clip["target_points"].shape == (256, FRAMES, 2)
first = clip["point_valid"]
assert np.allclose(clip["target_points"][first, 0], clip["query_points"][first][:, [2, 1]], atol=1e-3)
assert not clip["occluded"][first, 0].any()
start = time.perf_counter()
for i in range(5):
    render_clip("movi_e", "train", i, resolution=64, num_frames=24)
per_clip = (time.perf_counter() - start) / 5
print(f"{clip['point_valid'].sum()} valid tracks, {clip['box_valid'][:, 0].sum()} boxes in frame 0; "
      f"64x64x24 with 256 tracks: {1000 * per_clip:.0f} ms per clip on one core")

# %% [markdown]
# The key test of the labels: a visible track point must land on a pixel of
# its own object. This cannot hold everywhere — on an object's silhouette a
# point can be visible (its depth passes the test) while the ray through the
# pixel centre just misses the object — so we measure how often it holds.
# (tests/test_data.py requires ≥ 97%; the figure is printed here.)

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


rates = [own_object_rate(render_clip(p, "train", i, resolution=RES, num_frames=FRAMES))
         for p in SCENE_PRESETS for i in range(2)]
print(f"visible points on their own object: {100 * np.mean(rates):.2f}% (min {100 * min(rates):.2f}%)")
assert np.mean(rates) > 0.95

# %% [markdown]
# The same test through chapter 05's pipeline: crop a rendered clip, zooming
# in and out, and ask what chapter 05 §5 asked of a hand-drawn clip — do
# visible points stay on their own object (here: about as often as before the
# crop), and is each box the extent of its object in the cropped
# segmentation? Then a batch of rendered clips, cut and augmented.

# %%
rng = np.random.default_rng(0)
base = render_clip("movi_e", "train", 2, resolution=64, num_frames=FRAMES)
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
batch = next(iter(make_pipeline([base, clip], batch_size=2, num_frames=8, resolution=RES, seed=0)))
check_clip({k: v[0] for k, v in batch.items()})
print("a batch of rendered clips:", {k: v.shape for k, v in batch.items() if k in ("video", "target_points")})

# %% [markdown]
# ### Seeing the labels
#
# A small drawing helper (chapter-only; the `figures` module of chapter 11
# has the full set): boxes as outlines, tracks as coloured trails, a filled dot
# where the point is visible and a hollow ring where it is occluded but inside
# the frame. The video is shown with `mediapy`, which needs an `ffmpeg`
# binary — the `imageio-ffmpeg` wheel ships one.

# %%
import imageio_ffmpeg
import mediapy

mediapy.set_ffmpeg(imageio_ffmpeg.get_ffmpeg_exe())
PALETTE = (plt.cm.tab20(np.arange(20))[:, :3] * 255).astype(np.uint8)


def _stamp(frame, ys, xs, offsets, colours):
    """Paint `offsets` [m, 2] around each (y, x) in place, clipped to the frame."""
    y = (np.round(ys)[:, None] + offsets[None, :, 0]).astype(int)
    x = (np.round(xs)[:, None] + offsets[None, :, 1]).astype(int)
    ok = (y >= 0) & (y < frame.shape[0]) & (x >= 0) & (x < frame.shape[1])
    frame[y[ok], x[ok]] = np.broadcast_to(colours[:, None], y.shape + (3,))[ok]


def draw_clip(clip, scale=4, num_tracks=40, trail=6):
    """Video uint8 [T, sH, sW, 3] with boxes, track trails, filled (visible) and hollow (occluded) points."""
    t, h, w, _ = clip["video"].shape
    frames = np.repeat(np.repeat(clip["video"], scale, 1), scale, 2)
    r = np.arange(-4, 5)
    grid = np.stack(np.meshgrid(r, r, indexing="ij"), -1).reshape(-1, 2)
    radius = np.linalg.norm(grid, axis=1)
    disc, ring, dot = grid[radius <= 3], grid[(radius > 2.2) & (radius <= 3.6)], grid[radius <= 1]
    tracks = np.nonzero(clip["point_valid"])[0][:num_tracks]
    colours = PALETTE[np.arange(len(tracks)) % 20]
    xy = clip["target_points"][tracks] * scale  # [n, T, 2]
    occ = clip["occluded"][tracks]
    inside = (xy[..., 0] >= 0) & (xy[..., 0] < w * scale) & (xy[..., 1] >= 0) & (xy[..., 1] < h * scale)
    for f in range(t):
        frame = frames[f]
        for k in np.nonzero(clip["box_valid"][:, f])[0]:
            y0, x0, y1, x1 = np.round(clip["boxes"][k, f] * np.array([h, w, h, w]) * scale).astype(int)
            c = PALETTE[(2 * k + 1) % 20]
            frame[y0, x0:x1] = frame[y1 - 1, x0:x1] = c
            frame[y0:y1, x0] = frame[y0:y1, x1 - 1] = c
        for s in range(max(0, f - trail), f):
            seen = ~occ[:, s]
            _stamp(frame, xy[seen, s, 1], xy[seen, s, 0], dot, colours[seen])
        seen = ~occ[:, f]
        _stamp(frame, xy[seen, f, 1], xy[seen, f, 0], disc, colours[seen])
        hid = occ[:, f] & inside[:, f]
        _stamp(frame, xy[hid, f, 1], xy[hid, f, 0], ring, colours[hid])
    return frames


def colourise(clip, scale=4):
    """Depth (near = bright) and segmentation as uint8 videos, upsampled by `scale`."""
    depth = clip["depth"][..., 0]
    inv = 1 / np.maximum(depth, 1e-3)
    lo, hi = inv.min(), inv.max()
    depth_rgb = (plt.cm.magma((inv - lo) / max(hi - lo, 1e-6))[..., :3] * 255).astype(np.uint8)
    seg = clip["segmentations"][..., 0]
    seg_rgb = np.where(seg[..., None] > 0, PALETTE[(2 * seg.astype(int) - 1) % 20], 40).astype(np.uint8)
    up = lambda v: np.repeat(np.repeat(v, scale, 1), scale, 2)
    return up(depth_rgb), up(seg_rgb)


clip = render_clip("movi_e", "train", 1, resolution=RES if SMALL else 128, num_frames=FRAMES)
scale = 256 // clip["video"].shape[1]
depth_video, seg_video = colourise(clip, scale)
mediapy.show_videos({"video, tracks and boxes": draw_clip(clip, scale), "depth": depth_video,
                     "segmentation": seg_video}, fps=6, height=256)

# %% [markdown]
# ### Two worlds: `movi_e` and `movi_a`
#
# Six frames of the first of four clips of each (chapter 05a §2 describes
# both worlds; the next cell measures all eight clips):

# %%
worlds = {p: [render_clip(p, "train", i, resolution=RES, num_frames=FRAMES) for i in range(4)]
          for p in ("movi_e", "movi_a")}
shown = np.linspace(0, FRAMES - 1, 6).astype(int)
fig, axes = plt.subplots(2, 6, figsize=(12, 4.4))
for row, (p, world) in zip(axes, worlds.items()):
    for ax, f in zip(row, shown):
        ax.imshow(world[0]["video"][f])
        ax.set_title(f"{p}, frame {f}", fontsize=8)
        ax.axis("off")
plt.show()

# %% [markdown]
# The difference in numbers, over the four clips of each: the share of valid
# tracks that start on an object moving by itself (their speed while visible
# is printed too — about the same in both worlds: what changes is how much of
# the clip moves, not how fast). And in `movi_a` an object's pixels have one
# colour, scaled by the shading: the angle between a pixel's RGB and its
# object's mean RGB is only uint8 rounding, while objects differ by far more.

# %%
def moving_tracks(preset, i, clip):
    """Share of valid tracks on moving objects, and their steps (px/frame) while visible."""
    moving = np.append(False, sample_scene(preset, "train", i, num_frames=FRAMES).moving)
    q = clip["query_points"].astype(int)
    on = clip["point_valid"] & moving[clip["segmentations"][0, q[:, 1], q[:, 2], 0]]
    seen = ~clip["occluded"][:, 1:] & ~clip["occluded"][:, :-1] & on[:, None]
    steps = np.linalg.norm(np.diff(clip["target_points"], axis=1), axis=-1)[seen]
    return on.sum() / clip["point_valid"].sum(), steps


def colour_angles(clip):
    """{object id: (unit mean RGB, largest angle in degrees of one of its pixels' RGB from it)}."""
    seg, rgb = clip["segmentations"][..., 0], clip["video"].astype(float) + 1e-6
    out = {}
    for k in np.unique(seg[seg > 0]):
        unit = rgb[seg == k] / np.linalg.norm(rgb[seg == k], axis=-1, keepdims=True)
        mean = unit.mean(0) / np.linalg.norm(unit.mean(0))
        out[k] = mean, np.degrees(np.arccos(np.clip(unit @ mean, -1, 1))).max()
    return out


stats = {}
for p, world in worlds.items():
    share, steps = zip(*(moving_tracks(p, i, c) for i, c in enumerate(world)))
    spread = max(a for c in world for _, a in colour_angles(c).values())
    stats[p] = np.mean(share), spread
    print(f"{p}: {np.mean(share):.0%} of valid tracks on moving objects, which move "
          f"{np.concatenate(steps).mean():.2f} px/frame at {RES}x{RES}; pixels up to {spread:.1f}° from their object's colour")
means = np.array([m for m, _ in colour_angles(worlds["movi_a"][0]).values()])
apart = np.degrees(np.arccos(np.clip(means @ means.T, -1, 1)))[np.triu_indices(len(means), 1)]
print(f"movi_a clip 0: {len(means)} objects, their colours at least {apart.min():.0f}° apart")
assert stats["movi_a"][0] > 3 * stats["movi_e"][0]  # far more of the clip moves by itself
assert stats["movi_a"][1] < 1 and stats["movi_e"][1] > 10 and apart.min() > 10  # one plain colour per object

# %% [markdown]
# ## 5. Many clips on every core
#
# One clip is single-threaded NumPy, so the way to use a machine is one clip
# per process. `render_clips` farms indices out to a pool of worker processes
# started with `spawn` — a fresh interpreter per worker, because forking a
# process in which JAX already runs threads can deadlock. Workers import the
# library, so a notebook calls the library's copy of the function (the one
# this chapter exports), not the one defined in the notebook.

# %%
#| export render
import concurrent.futures
import multiprocessing


def _render_task(args):
    preset, split, index, seed, kwargs = args
    return render_clip(preset, split, index, seed, **kwargs)


def render_clips(preset: str, split: str, indices, seed: int = 0, *, resolution: int = 64,
                 num_frames: int = 24, num_points: int = 256, num_workers: int | None = None) -> list:
    """Render clips `indices` (any iterable of ints) in order, using `num_workers` processes.

    `num_workers=None` uses every core; 1 renders in this process. Identical to calling
    `render_clip` on each index.
    """
    kwargs = dict(resolution=resolution, num_frames=num_frames, num_points=num_points)
    tasks = [(preset, split, int(i), seed, kwargs) for i in indices]
    workers = min(num_workers or os.cpu_count() or 1, len(tasks))
    if workers <= 1:
        return [_render_task(task) for task in tasks]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(_render_task, tasks, chunksize=max(1, len(tasks) // (4 * workers))))


# %%
from moog_lib import render as render_lib  # worker processes need the importable copy

start = time.perf_counter()
many = render_lib.render_clips("movi_e", "train", range(8), resolution=RES, num_frames=FRAMES)
seconds = time.perf_counter() - start
one = render_clip("movi_e", "train", 5, resolution=RES, num_frames=FRAMES)
assert all(np.array_equal(many[5][k], one[k]) for k in CLIP_KEYS)
print(f"8 clips on {os.cpu_count()} cores in {seconds:.1f} s, including the workers' start-up "
      f"(benchmarks/data.py measures the steady state)")

# %% [markdown]
# ## Summary
#
# - The **renderer** traces one ray per pixel centre through a textured room
#   with spheres, cubes and cut-out cards, all at once in NumPy; the z-buffer's
#   surface ids and *local hit points* make segmentation, boxes and point
#   tracks exact. Clips are pure functions of `(preset, split, index, seed)`.
# - **Occlusion** compares a point's distance with the z-buffer at its pixel,
#   with 3% slack; exact ray-cast visibility (`trace_visibility`) checks the
#   rule, and visible points land on their own object in ≥ 95% of cases, also
#   after chapter 05's crops.
# - `render_clip` gives one per-clip dict; `render_clips` renders many on
#   every core (chapter 05c stores them on disk).
#
# ## Exercises
#
# 1. ★ Camera motion in numbers: for clips of the `static` and `movi_e`
#    presets, compute the median distance (in pixels) that *background* track
#    points travel between the first and the last frame. Which preset makes
#    background tracking a real task?
# 2. ★★ The pinhole model in a zoom: the `zoom` preset keeps the camera still
#    and changes only its focal length (`Scene.focal`). Derive where a point
#    that does not move, at raster `x₀` in frame 0, is in frame `t`; check
#    your formula on the tracks of a `zoom` clip that start on the background
#    or on a resting object, and say why tracks on moving objects fail it.
# 3. ★★★ The occlusion test allows a point to be 3% farther than the z-buffer.
#    Measure, over a few clips, the fraction of visible track points and the
#    own-object rate for slacks of 0, 0.3%, 1%, 3% and 10% (`render_scene`
#    takes `depth_tolerance`). Explain both curves: what goes wrong when the
#    slack is too small, and when it is too large? (Section 3 compared the
#    rule with exact visibility; here look only at the labels.)

# %% [markdown]
# ### Solution 1


# %%
def background_travel(preset, n=4):
    travel = []
    for i in range(n):
        c = render_clip(preset, "validation", i, resolution=64, num_frames=FRAMES)
        q = c["query_points"].astype(int)
        on_background = (c["segmentations"][0, q[:, 1], q[:, 2], 0] == 0) & c["point_valid"]
        moved = c["target_points"][on_background, -1] - c["target_points"][on_background, 0]
        travel.append(np.linalg.norm(moved, axis=-1))
    return float(np.median(np.concatenate(travel)))


travel = {p: background_travel(p) for p in ("static", "movi_e")}
print({p: f"{v:.2f} px" for p, v in travel.items()})
assert travel["static"] < 1e-3 < travel["movi_e"]  # a static camera leaves the room where it is

# %% [markdown]
# ### Solution 2

# %%
# Camera coordinates do not change, only f: x − W/2 = f·W·X/Z, so x_t − W/2 = (f_t / f_0)(x_0 − W/2).
zoom_clip = render_clip("zoom", "validation", 0, resolution=64, num_frames=FRAMES)
zoom_scene = sample_scene("zoom", "validation", 0, num_frames=FRAMES)
moves = np.append(False, zoom_scene.moving)  # segment id -> moves by itself (0: background)
q = zoom_clip["query_points"].astype(int)
on_moving = moves[zoom_clip["segmentations"][0, q[:, 1], q[:, 2], 0]]
ratio = zoom_scene.focal / zoom_scene.focal[0]  # [T]
predicted = (zoom_clip["target_points"][:, :1] - 32) * ratio[None, :, None] + 32
error = np.linalg.norm(predicted - zoom_clip["target_points"], axis=-1).max(axis=1)  # [N]
valid = zoom_clip["point_valid"]
print(f"focal length x{ratio[-1]:.2f} over the clip; largest error {error[valid & ~on_moving].max():.1e} px "
      f"on still points, median {np.median(error[valid & on_moving]) if (valid & on_moving).any() else 0:.1f} px "
      "on moving ones (they move in the world, not only in the image)")
assert error[valid & ~on_moving].max() < 1e-2

# %% [markdown]
# ### Solution 3


# %%
results = []
for tolerance in (0.0, 0.003, 0.01, 0.03, 0.1):
    seen, rates = [], []
    for i in range(4):
        s = sample_scene("movi_e", "validation", i, num_frames=FRAMES)
        c = render_scene(s, 64, 256, np.random.default_rng(i), depth_tolerance=tolerance)
        seen.append((~c["occluded"] & c["point_valid"][:, None]).sum() / (c["point_valid"].sum() * FRAMES))
        rates.append(own_object_rate(c))
    results.append((tolerance, np.mean(seen), np.mean(rates)))
    print(f"slack {tolerance:5.1%}: visible {np.mean(seen):.3f}, on own object {np.mean(rates):.4f}")
# Too little slack: a point on a sloped surface is compared with the depth at its pixel's
# *centre*, which can be nearer than the point itself, so visible points are called occluded
# (the visible fraction drops). Too much: points just behind a nearby occluder pass the test,
# so more "visible" points land on another object (the own-object rate drops).
assert results[0][1] <= results[2][1] <= results[-1][1]

# %% [markdown]
# ## References
#
# - K. Greff, F. Belletti, L. Beyer, C. Doersch, Y. Du, D. Duckworth, et al.
#   *Kubric: A Scalable Dataset Generator.* CVPR 2022 — the MOVi datasets
#   (MOVi-E: `challenges/movi` in google-research/kubric).
# - C. Doersch, A. Gupta, L. Markeeva, A. Recasens, L. Smaira, Y. Aytar,
#   J. Carreira, A. Zisserman, Y. Yang. *TAP-Vid: A Benchmark for Tracking Any
#   Point in a Video.* NeurIPS 2022 Datasets and Benchmarks — the raster
#   convention and the Kubric point-track recipe.
# - S. van Steenkiste et al. *Moving Off-the-Grid: Scene-Grounded Video
#   Representations.* NeurIPS 2024 (Appendix C: data).
# - Image and video credits and licences: `data/README.md`.
