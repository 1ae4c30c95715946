"""Rendering MOVi-like scenes with exact labels: a ray tracer, shading and ground truth.

`camera_rays`, `trace_rays`, `surface_attributes` and `shade` render a `Scene`
of `moog_lib.scenes`; `project_points`, `track_surface_points`,
`trace_visibility` and `sample_query_pixels` give exact point tracks;
`render_scene`, `render_clip` and `render_clips` return clips in the schema of
`moog_lib.data`.

Generated from chapters/05b_render.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "NEAR",
    "camera_rays",
    "trace_rays",
    "surface_attributes",
    "shade",
    "project_points",
    "track_surface_points",
    "trace_visibility",
    "sample_query_pixels",
    "padded_tracks",
    "render_scene",
    "MAX_RESOLUTION",
    "render_clip",
    "render_clips",
]


import concurrent.futures
import multiprocessing
import os

import numpy as np

from moog_lib.data import _check_size, boxes_from_segmentation
from moog_lib.scenes import CARD, CUBE, SPHERE, Scene, _scene_rng, alpha_masks, sample_scene

# chapters/05b_render.py, cell 7
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


# chapters/05b_render.py, cell 8
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


# chapters/05b_render.py, cell 12
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


# chapters/05b_render.py, cell 15
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


# chapters/05b_render.py, cell 16
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


# chapters/05b_render.py, cell 22
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


# chapters/05b_render.py, cell 35
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
