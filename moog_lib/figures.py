"""Drawing what `moog_lib.analysis` measures: colours, overlays, video grids.

`token_palette` and `argmax_colours` colour tokens; `attention_overlay` paints
one token's attention over frames; `upscale`, `draw_dots` and `video_grid`
assemble videos. `moog_lib.report` (chapter 11a) writes them all to files and
an HTML page.

Generated from chapters/11_inside_moog.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "token_palette",
    "argmax_colours",
    "attention_overlay",
    "upscale",
    "draw_dots",
    "video_grid",
]


import numpy as np

from moog_lib.analysis import to_uint8


# chapters/11_inside_moog.py, cell 30
def token_palette(num_tokens: int):
    """uint8 [K, 3]: K well-separated colours (golden-ratio hues, three lightness levels)."""
    import colorsys

    k = np.arange(num_tokens)
    hues = (k * 0.618033988749895) % 1.0
    lightness = 0.4 + 0.15 * (k % 3)
    rgb = [colorsys.hls_to_rgb(h, lum, 0.85) for h, lum in zip(hues, lightness)]
    return (np.array(rgb).reshape(num_tokens, 3) * 255 + 0.5).astype(np.uint8)


def argmax_colours(argmax, num_tokens: int):
    """An argmax token map [..., H, W] as uint8 RGB [..., H, W, 3], one colour per token."""
    ids = np.asarray(argmax)
    if ids.size and (ids.min() < 0 or ids.max() >= num_tokens):
        raise ValueError(f"token ids must lie in [0, {num_tokens}), got {ids.min()}…{ids.max()}")
    return token_palette(num_tokens)[ids]


def attention_overlay(frames, maps, colour=(255, 60, 30), scale: str = "frame"):
    """Frames [T, H, W, 3] with one token's attention maps [T, H, W] painted over them:
    uint8 [T, H, W, 3]. `scale="frame"` stretches each frame's map from its minimum to
    its maximum (where the token is, whatever its overall weight); `scale="clip"`
    divides every map by the clip's maximum (fading attention shows as fading colour)."""
    frames = to_uint8(frames).astype(np.float32) / 255
    heat = np.asarray(maps, np.float32)
    if scale == "frame":
        low = heat.min(axis=(1, 2), keepdims=True)
        heat = (heat - low) / np.maximum(heat.max(axis=(1, 2), keepdims=True) - low, 1e-12)
    elif scale == "clip":
        heat = heat / max(float(heat.max()), 1e-12)
    else:
        raise ValueError(f"attention_overlay: scale must be 'frame' or 'clip', got {scale!r}")
    heat = heat[..., None]
    tint = np.asarray(colour, np.float32) / 255
    return to_uint8(0.35 * frames * (1 - heat) + heat * (0.45 * frames + 0.55 * tint))


def upscale(video, factor: int):
    """Nearest-neighbour upsampling of [..., H, W, C] by an integer factor."""
    return np.repeat(np.repeat(np.asarray(video), factor, axis=-3), factor, axis=-2)


def draw_dots(video, points, factor: int = 1, colour=(255, 255, 255), radius: int = 1):
    """A copy of the uint8 video [T, H·f, W·f, 3] with squares at `points` [T, N, 2]
    ((x, y) in pixels of the video before upscaling by `factor`; NaN = not drawn)."""
    video = np.array(video)
    for t, frame_points in enumerate(np.asarray(points)):
        for x, y in frame_points:
            if np.isfinite(x) and np.isfinite(y):
                cx, cy = int(x * factor), int(y * factor)
                video[t, max(cy - radius, 0):cy + radius + 1,
                      max(cx - radius, 0):cx + radius + 1] = colour
    return video


def video_grid(rows, gap: int = 2):
    """uint8 videos [T, H, W, 3] arranged as `rows` (a list of equal-length lists), with
    white gaps: uint8 [T, H', W', 3]."""
    def join(videos, axis):
        shape = list(videos[0].shape)
        shape[axis] = gap
        white = np.full(shape, 255, np.uint8)
        return np.concatenate([part for v in videos for part in (v, white)][:-1], axis=axis)

    return join([join(list(row), axis=2) for row in rows], axis=1)
