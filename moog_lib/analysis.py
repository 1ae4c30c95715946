"""Measuring what a trained MooG's tokens do: decoding, PSNR, tracking, PCA.

`inspect_clip` runs a model over a clip and decodes every pixel with the
tokens it attends to (`decoded_tokens`, `first_state`; PSNR is `decoder.frame_psnr`);
`attention_sharpness`, `moving_object`, `pick_tokens`, `object_centroids` and
`object_tracks` measure how tokens follow content; `fit_pca` and `pca_images`
project the tokens; `token_sweep` varies K at test time; `copy_psnr` and
`analyse_clips` run all of it on a named set of clips. The pictures are drawn
by `moog_lib.figures`; real clips and streaming in constant memory are in
`moog_lib.streaming`, the report page in `moog_lib.report` (chapter 11a).

Generated from chapters/11_inside_moog.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "check_net",
    "decoded_tokens",
    "first_state",
    "inspect_clip",
    "attention_sharpness",
    "moving_object",
    "motion_mask",
    "pick_tokens",
    "region_centroids",
    "object_centroids",
    "object_tracks",
    "distance_to",
    "to_uint8",
    "fit_pca",
    "pca_project",
    "pca_bounds",
    "pca_images",
    "token_sweep",
    "copy_psnr",
    "analyse_clips",
]


import functools
import sys

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import ArrayLike, Float, Int, Shaped

from moog_lib import decoder, dynamics
from moog_lib.shapes import typed


# chapters/11_inside_moog.py, cell 7
def _log(message: str) -> None:
    print(message, file=sys.stderr)


def check_net(net) -> None:
    """Raise ValueError unless `net` has the call interface this module relies on."""
    missing = [name for name, ok in (
        ("net(frames, key=..., state=...)", callable(net)),
        ("net.decoder.decode_frame",
         callable(getattr(getattr(net, "decoder", None), "decode_frame", None))),
    ) if not ok]
    if missing:
        raise ValueError(f"expected a model with MooG's interface; {type(net).__name__} lacks "
                         f"{', '.join(missing)}")


def _check_video(frames) -> None:
    shape = getattr(frames, "shape", None)
    if shape is None or len(shape) != 5 or shape[-1] != 3:
        raise ValueError(f"frames must be float [B, T, H, W, 3] in [0, 1], got shape {shape}")


def decoded_tokens(outputs: dict):
    """The tokens the decoder read, [B, T, K, D]: MooG's `z_p`, or a baseline's `tokens`."""
    for name in ("z_p", "tokens"):
        if name in outputs:
            return outputs[name]
    raise ValueError(f"the model's outputs have neither 'z_p' nor 'tokens': {sorted(outputs)}")


# chapters/11_inside_moog.py, cell 11
@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _first_state(graphdef, variables, key, batch_size, num_tokens):
    return nnx.merge(graphdef, variables).initial_state(key, batch_size, num_tokens)


def first_state(net, key, batch_size: int, num_tokens: int | None = None):
    """The state before frame 0: `net.initial_state(key, B, K)` if the model has one
    (MooG), else None (the model draws its own state, or has none)."""
    if callable(getattr(net, "initial_state", None)):
        if num_tokens is not None and (not isinstance(num_tokens, int | np.integer)
                                       or num_tokens < 1):
            raise ValueError(f"the number of tokens K must be an int >= 1, got {num_tokens!r}")
        graphdef, variables = nnx.split(net)
        return _first_state(graphdef, variables, key, batch_size,
                            None if num_tokens is None else int(num_tokens))
    if num_tokens is not None:
        raise ValueError(f"{type(net).__name__} has no initial_state, so its number of tokens "
                         "cannot be chosen at call time")
    return None


# chapters/11_inside_moog.py, cell 14
@functools.partial(jax.jit, static_argnums=0)
def _inspect(graphdef, variables, frames, state, key):
    net = nnx.merge(graphdef, variables)
    out = net(frames, key=key, state=state)
    tokens = decoded_tokens(out)
    batch, num_frames, height, width, _ = frames.shape
    colours, attention = net.decoder.decode_frame(
        tokens.reshape((batch * num_frames,) + tokens.shape[2:]), height, width,
        return_attention=True)
    prediction = jnp.clip(colours.astype(jnp.float32), 0.0, 1.0).reshape(frames.shape)
    attention = attention.astype(jnp.float32).reshape(batch, num_frames, height, width, -1)
    return {"prediction": prediction, "attention": attention,
            "argmax": jnp.argmax(attention, axis=-1).astype(jnp.int32), "tokens": tokens,
            "psnr": decoder.frame_psnr(prediction, frames), "state": out.get("state")}


@typed
def inspect_clip(net, frames: Float[ArrayLike, "B T H W 3"], key, *, state=None,
                 num_tokens: int | None = None, chunk_size: int | None = None) -> dict:
    """Run `net` on `frames` (values in [0, 1]) and decode every frame densely.

    Returns NumPy arrays: `prediction` [B, T, H, W, 3] in [0, 1] (frame t from
    frames < t only), the decoder's `attention` averaged over layers and heads
    [B, T, H, W, K] (at every pixel a distribution over the K tokens), its
    `argmax` [B, T, H, W], the decoded `tokens` [B, T, K, D] (MooG: z_p), the
    per-frame `psnr` [B, T] over all pixels; and the last `state` (pass it back
    to continue). `num_tokens` sets K of a fresh state (MooG: any K, same
    parameters). With `chunk_size`, frames go through `dynamics.chunks_of` and
    `dynamics.stream` that many at a time, carrying the state.
    """
    check_net(net)
    frames = jnp.asarray(frames, jnp.float32)
    if state is None:
        state = first_state(net, key, frames.shape[0], num_tokens)
    elif num_tokens is not None and num_tokens != state.shape[1]:
        raise ValueError(f"num_tokens={num_tokens} but the carried state has {state.shape[1]}")
    graphdef, variables = nnx.split(net)

    def step(chunk, carried):
        out = _inspect(graphdef, variables, chunk, carried, key)
        return {k: np.asarray(v) for k, v in out.items() if k != "state"}, out["state"]

    chunks = dynamics.chunks_of(frames, chunk_size or frames.shape[1])
    parts = list(dynamics.stream(step, chunks, state))
    result = {k: np.concatenate([p[k] for p, _ in parts], axis=1) for k in parts[0][0]}
    return {**result, "state": parts[-1][1]}


# chapters/11_inside_moog.py, cell 18
def attention_sharpness(attention) -> float:
    """1 − (mean entropy of the per-pixel token distributions) / log K, for attention
    [..., K]: 0 when every pixel listens to all tokens equally, 1 when to one token."""
    p = np.asarray(attention, np.float64)
    k = p.shape[-1]
    if k < 2:
        raise ValueError(f"attention_sharpness needs K >= 2 tokens, got attention {p.shape}")
    entropy = -(p * np.log(np.maximum(p, 1e-12))).sum(-1)
    return float(1.0 - entropy.mean() / np.log(k))


# chapters/11_inside_moog.py, cell 22
def moving_object(segmentations, min_pixels: int = 4):
    """The id of the object whose centroid moves furthest from its first-frame position
    (segmentations [T, H, W] or [T, H, W, 1], 0 = background), or None if no object
    covers `min_pixels` pixels in the first frame."""
    seg = np.asarray(segmentations)
    seg = seg[..., 0] if seg.ndim == 4 else seg
    ys, xs = np.mgrid[0:seg.shape[1], 0:seg.shape[2]]
    best, best_shift = None, -1.0
    for obj in np.unique(seg[0]):
        if obj == 0 or (seg[0] == obj).sum() < min_pixels:
            continue
        masks = seg == obj
        area = masks.sum(axis=(1, 2))
        seen = area >= min_pixels
        cy = (masks * ys).sum(axis=(1, 2))[seen] / area[seen]
        cx = (masks * xs).sum(axis=(1, 2))[seen] / area[seen]
        shift = float(np.hypot(cy - cy[0], cx - cx[0]).max())
        if shift > best_shift:
            best, best_shift = int(obj), shift
    return best


def motion_mask(video, num_frames: int = 4, fraction: float = 0.1):
    """bool [H, W]: the `fraction` of pixels that change most over the first
    `num_frames` frames of `video` [T, H, W, 3] — "where things move" in a clip
    without labels."""
    clip = np.asarray(video, np.float32)[:max(2, num_frames)]
    change = np.abs(np.diff(clip, axis=0)).mean(axis=(0, -1))
    return change >= np.quantile(change, 1 - fraction)


@typed
def pick_tokens(attention: Float[ArrayLike, "H W K"], mask: Shaped[ArrayLike, "H W"],
                count: int = 3) -> Int[np.ndarray, "n"]:  # noqa: F821 (an axis name)
    """Token ids (at most `count`), most first: the tokens with the most attention mass
    inside `mask` (true pixels) in one frame."""
    attention, mask = np.asarray(attention), np.asarray(mask, bool)
    if not mask.any():
        raise ValueError("pick_tokens: the mask selects no pixel")
    return np.argsort(-attention[mask].sum(axis=0), kind="stable")[:count]


# chapters/11_inside_moog.py, cell 26
def region_centroids(attention, token: int, level: float = 0.5):
    """(y, x) per frame [T, 2]: centroid of the pixels where `token`'s attention reaches
    `level` × its maximum in that frame (attention [T, H, W, K]) — where the token is."""
    maps = np.asarray(attention)[..., token]
    ys, xs = np.mgrid[0:maps.shape[1], 0:maps.shape[2]]
    region = maps >= level * maps.max(axis=(1, 2), keepdims=True)
    area = region.sum(axis=(1, 2))
    return np.stack([(region * ys).sum(axis=(1, 2)) / area,
                     (region * xs).sum(axis=(1, 2)) / area], axis=-1)


def object_centroids(segmentations, obj: int):
    """(y, x) per frame [T, 2] of object `obj`'s pixels, NaN where it is not visible."""
    seg = np.asarray(segmentations)
    masks = (seg[..., 0] if seg.ndim == 4 else seg) == obj
    ys, xs = np.mgrid[0:masks.shape[1], 0:masks.shape[2]]
    area = masks.sum(axis=(1, 2)).astype(np.float64)
    area[area == 0] = np.nan
    return np.stack([(masks * ys).sum(axis=(1, 2)) / area,
                     (masks * xs).sum(axis=(1, 2)) / area], axis=-1)


def object_tracks(clip: dict, obj: int, count: int = 8):
    """Ground-truth tracks of up to `count` points that start on object `obj` in frame 0:
    (x, y) [T, n, 2] in raster pixels, NaN where occluded."""
    query, seg0 = clip["query_points"], clip["segmentations"][0, ..., 0]
    rows = np.clip(query[:, 1].astype(int), 0, seg0.shape[0] - 1)
    cols = np.clip(query[:, 2].astype(int), 0, seg0.shape[1] - 1)
    on = np.nonzero(clip["point_valid"] & (seg0[rows, cols] == obj))[0][:count]
    xy = clip["target_points"][on].astype(np.float32)  # [n, T, 2]
    xy[clip["occluded"][on]] = np.nan
    return np.swapaxes(xy, 0, 1)


def distance_to(object_yx, token_yx):
    """Pixels from each token (y, x) [T, n, 2] — or [1, n, 2], a token frozen in place —
    to the object's (y, x) [T, 2]: [T, n]."""
    return np.hypot(*np.moveaxis(token_yx - object_yx[:, None], -1, 0))


# chapters/11_inside_moog.py, cell 29
def to_uint8(video):
    """Float video in [0, 1] (or uint8) -> uint8."""
    video = np.asarray(video)
    return video if video.dtype == np.uint8 else (np.clip(video, 0, 1) * 255 + 0.5).astype(np.uint8)


# chapters/11_inside_moog.py, cell 38
def fit_pca(vectors, num_components: int = 3) -> dict:
    """Principal components of vectors [..., D] (all leading axes pooled).

    Returns {"mean": [D], "components": [C, D] (orthonormal rows; each sign chosen so
    the entry of largest magnitude is positive), "explained": [C] variance shares}.
    """
    flat = np.asarray(vectors, np.float64).reshape(-1, np.shape(vectors)[-1])
    if len(flat) <= num_components:
        raise ValueError(f"fit_pca: need more than {num_components} vectors, got {len(flat)}")
    mean = flat.mean(axis=0)
    _, s, vt = np.linalg.svd(flat - mean, full_matrices=False)
    components = vt[:num_components]
    biggest = np.abs(components).argmax(axis=1)
    components = components * np.sign(components[np.arange(num_components), biggest])[:, None]
    return {"mean": mean, "components": components,
            "explained": s[:num_components] ** 2 / (s ** 2).sum()}


def pca_project(vectors, pca: dict):
    """Vectors [..., D] -> their coordinates along the principal components [..., C]."""
    return (np.asarray(vectors, np.float64) - pca["mean"]) @ pca["components"].T


def _three_components(coords, pca: dict, components) -> np.ndarray:
    """coords [..., C] -> [..., 3]: the three `components` (indices from 0) as R, G, B."""
    components, fitted = tuple(components), len(pca["components"])
    if len(components) != 3 or not all(0 <= c < fitted for c in components):
        raise ValueError(f"components must be three indices below {fitted} (the components "
                         f"fitted; fit_pca(..., num_components=n) fits more), got {components}")
    return coords[..., list(components)]


def pca_bounds(vectors, pca: dict, components=(0, 1, 2)):
    """[2, 3]: the 1st and 99th percentiles of three PCA coordinates of `vectors`
    (`components`: which three, counted from 0; the first three by default)."""
    coords = _three_components(pca_project(vectors, pca), pca, components).reshape(-1, 3)
    return np.stack([np.percentile(coords, 1, axis=0), np.percentile(coords, 99, axis=0)])


def pca_images(tokens, argmax, pca: dict, bounds, components=(0, 1, 2)):
    """Every pixel coloured by three PCA coordinates of its argmax token (`components`,
    counted from 0: the first three by default; `bounds` from `pca_bounds` with the same).

    tokens [B, T, K, D], argmax [B, T, H, W] -> float RGB [B, T, H, W, 3] in [0, 1];
    component c is mapped from [bounds[0, c], bounds[1, c]] to [0, 1] and clipped.
    """
    coords = _three_components(pca_project(tokens, pca), pca, components)  # [B, T, K, 3]
    colours = np.clip((coords - bounds[0]) / np.maximum(bounds[1] - bounds[0], 1e-12), 0, 1)
    ids = np.asarray(argmax)
    b, t = np.indices(ids.shape[:2])
    return colours[b[..., None, None], t[..., None, None], ids]


# chapters/11_inside_moog.py, cell 43
def token_sweep(net, videos, key, token_counts, *, chunk_size: int = 8) -> list[dict]:
    """The same parameters run with each K in `token_counts` on `videos` [N, T, H, W, 3]
    (uint8 or float in [0, 1]). One row per K: "tokens", "psnr" (dense, frames 1…T−1,
    mean over clips), "used" (mean number of tokens winning a pixel), and the
    "prediction" [N, T, H, W, 3] and "argmax" [N, T, H, W] arrays."""
    videos = np.asarray(videos)
    frames = videos.astype(np.float32) / 255 if videos.dtype == np.uint8 else videos
    rows = []
    for count in token_counts:
        outs = [inspect_clip(net, clip[None], key, num_tokens=int(count), chunk_size=chunk_size)
                for clip in frames]
        argmax = np.concatenate([o["argmax"] for o in outs])
        rows.append({"tokens": int(count),
                     "psnr": float(np.mean([o["psnr"][:, 1:].mean() for o in outs])),
                     "used": float(np.mean([len(np.unique(a)) for a in argmax.reshape(
                         -1, argmax.shape[-2] * argmax.shape[-1])])),
                     "prediction": np.concatenate([o["prediction"] for o in outs]),
                     "argmax": argmax})
    return rows


# chapters/11_inside_moog.py, cell 46
def copy_psnr(video):
    """PSNR [T] of predicting each frame by the previous one (NaN at t = 0), all pixels."""
    frames = to_uint8(video).astype(np.float32) / 255
    return np.concatenate([[np.nan], np.asarray(decoder.frame_psnr(frames[1:], frames[:-1]))])


def analyse_clips(net, clips: dict, key, *, chunk_size: int = 8, num_picked: int = 3,
                  pca_from: int = 2) -> dict:
    """§2–§5 for named clips {name: {"video": uint8 [T, H, W, 3], and for rendered clips
    "segmentations", "query_points", "target_points", "occluded", "point_valid"}}.

    Per clip: `inspect_clip`'s outputs (batch axis dropped); the token-picking `mask`
    (frame 1 of the most-moving object, else `motion_mask`) and the `picked` tokens;
    their `token_centroids` [T, n, 2]; with ground truth the `object`, its
    `object_centroids` [T, 2] and `tracks`; the `copy_psnr` of repeating the previous
    frame [T] (NaN at t = 0); `sharpness`; and `pca_rgb` [T, H, W, 3] from one PCA
    fitted to all clips' tokens of frames `pca_from`… (also returned, as "pca").
    """
    results = {}
    for name, clip in clips.items():
        video = np.asarray(clip["video"])
        out = inspect_clip(net, video[None].astype(np.float32) / 255, key, chunk_size=chunk_size)
        entry = {"video": video, **{k: v[0] for k, v in out.items() if k != "state"}}
        obj = moving_object(clip["segmentations"][1:]) if "segmentations" in clip else None
        entry["object"] = obj
        if obj is not None:
            entry["mask"] = clip["segmentations"][1, ..., 0] == obj
            entry["object_centroids"] = object_centroids(clip["segmentations"], obj)
            entry["tracks"] = object_tracks(clip, obj)
        else:
            entry["mask"] = motion_mask(video)
        entry["picked"] = pick_tokens(entry["attention"][1], entry["mask"], num_picked)
        entry["token_centroids"] = np.stack([region_centroids(entry["attention"], k)
                                             for k in entry["picked"]], axis=1)
        entry["copy_psnr"] = copy_psnr(video)
        entry["sharpness"] = attention_sharpness(entry["attention"][1:])
        results[name] = entry
    pooled = np.concatenate([r["tokens"][pca_from:].reshape(-1, r["tokens"].shape[-1])
                             for r in results.values()])
    pca = fit_pca(pooled)
    bounds = pca_bounds(pooled, pca)
    for r in results.values():
        r["pca_rgb"] = pca_images(r["tokens"][None], r["argmax"][None], pca, bounds)[0]
    return {"clips": results, "pca": pca}
