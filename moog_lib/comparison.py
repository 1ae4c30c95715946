"""Measuring and comparing MooG with the on-the-grid baselines of chapter 10.

The token-following score F (`token_following_sums`, `following_score`, and
`token_following` for a model), its ceiling under perfect binding (`binding_ceiling`)
and the cross-clip ARI (`cross_clip_agreement`); `scene_motion`, how much a scene
preset's content moves. Then the paper's comparison at laptop scale: `compare`
pretrains every model on every scene preset, trains and scores their frozen readouts
and writes the tables (`format_comparison`); every stage is saved and reused
(`compare_one`). `compare_budget` splits a budget in minutes over the runs.

Generated from chapters/10a_comparison.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "token_following_sums",
    "following_score",
    "segmentation_attention",
    "binding_ceiling",
    "adjusted_rand_index",
    "cross_clip_agreement",
    "token_following",
    "scene_motion",
    "COMPARE_TASKS",
    "compare_one",
    "compare",
    "compare_budget",
    "PRETRAIN_SHARE",
    "format_comparison",
]


import dataclasses
import functools
import json
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import ArrayLike, Float, Shaped

from moog_lib import boxes, configs, optimization, train
from moog_lib.baselines import (
    MODEL_KINDS,
    MODEL_NAMES,
    build_model,
    count_parameters,
    load_baseline,
    num_tokens,
    train_baseline,
    with_steps,
)
from moog_lib.scenes import SCENE_PRESETS
from moog_lib.shapes import typed


# chapters/10a_comparison.py, cell 5
@typed
def token_following_sums(attention: Float[ArrayLike, "B T h w K"],
                         target_points: Float[ArrayLike, "B N T 2"],
                         occluded: Shaped[ArrayLike, "B N T"], point_valid: Shaped[ArrayLike, "B N"],
                         *, height: int, width: int, first_frame: int = 1) -> dict:
    """The sums behind `following_score` for one batch.

    attention: the decoder's on the h×w decoded pixels, over layers and heads, zero
    offsets; target_points raster (x, y); frames `height` × `width`. Frame pairs
    (t, t+1) with t >= first_frame.
    """
    batch, num_frames, h, w, _ = attention.shape
    weights = attention.astype(jnp.float32)
    step_y, step_x = height // h, width // w
    ys = step_y * jnp.arange(h) + step_y // 2 + 0.5  # centres of the decoded pixels
    xs = step_x * jnp.arange(w) + step_x // 2 + 0.5
    mass = weights.sum(axis=(2, 3))  # [B, T, K]
    safe = jnp.maximum(mass, 1e-12)
    centroid = jnp.stack([jnp.einsum("bthwk,w->btk", weights, xs) / safe,
                          jnp.einsum("bthwk,h->btk", weights, ys) / safe], -1)  # (x, y)
    points = jnp.asarray(target_points, jnp.float32)
    rows = jnp.clip(jnp.floor(points[..., 1] / step_y), 0, h - 1).astype(jnp.int32)  # [B, N, T]
    cols = jnp.clip(jnp.floor(points[..., 0] / step_x), 0, w - 1).astype(jnp.int32)
    at_points = weights[jnp.arange(batch)[:, None, None], jnp.arange(num_frames)[None, None],
                        rows, cols]  # [B, N, T, K]
    inside = ((points >= 0) & (points < jnp.array([width, height], jnp.float32))).all(-1)
    seen = ~jnp.asarray(occluded, bool) & jnp.asarray(point_valid, bool)[..., None] & inside
    pair = (seen[..., :-1] & seen[..., 1:]).astype(jnp.float32)  # [B, N, T-1]
    moved = points[:, :, 1:] - points[:, :, :-1]  # [B, N, T-1, 2]
    footprint = at_points[:, :, :-1] * pair[..., None]  # [B, N, T-1, K]
    cover = footprint.sum(axis=1)  # [B, T-1, K]
    content = jnp.einsum("bntk,bntc->btkc", footprint, moved) / jnp.maximum(cover, 1e-12)[
        ..., None]
    token = centroid[:, 1:] - centroid[:, :-1]  # [B, T-1, K, 2]
    counted = (jnp.arange(num_frames - 1) >= first_frame)[None, :, None] & (cover > 0)
    omega = jnp.where(counted, mass[:, :-1] / (h * w), 0.0)
    return {"error": jnp.sum(omega * jnp.sum(jnp.square(token - content), -1)),
            "content": jnp.sum(omega * jnp.sum(jnp.square(content), -1)),
            "token_speed": jnp.sum(omega * jnp.linalg.norm(token, axis=-1)),
            "content_speed": jnp.sum(omega * jnp.linalg.norm(content, axis=-1)),
            "weight": jnp.sum(omega)}


# chapters/10a_comparison.py, cell 7
def following_score(sums: dict) -> dict:
    """F = 1 − Σω|δ − u|² / Σω|u|², and the mean token and content speeds (px/frame)."""
    content = float(sums["content"])
    weight = max(float(sums["weight"]), 1e-12)
    return {"following": 1.0 - float(sums["error"]) / content if content > 0 else float("nan"),
            "token_speed": float(sums["token_speed"]) / weight,
            "content_speed": float(sums["content_speed"]) / weight}


# chapters/10a_comparison.py, cell 11
def segmentation_attention(segmentations, stride: int, tiles: int = 1) -> np.ndarray:
    """Perfect binding as one-hot attention [B, T, h', w', K] on the decoded grid (every
    `stride`-th pixel from `stride // 2`, the zero-offset evaluation grid): object o
    (segmentation 1 … O) is token o − 1; background pixels (0) belong to one of
    tiles × tiles still tiles (tokens O …). segmentations [B, T, H, W(, 1)]."""
    seg = np.asarray(segmentations)
    seg = seg[..., 0] if seg.ndim == 5 else seg
    seg = seg[:, :, stride // 2::stride, stride // 2::stride].astype(np.int64)
    h, w = seg.shape[2:]
    ys, xs = np.mgrid[:h, :w]
    num_objects = int(seg.max())
    tile = num_objects + (ys * tiles // h) * tiles + xs * tiles // w
    return np.eye(num_objects + tiles * tiles, dtype=np.float32)[np.where(seg > 0, seg - 1, tile)]


def binding_ceiling(batches, stride: int, tiles: int = 1, first_frame: int = 1) -> dict:
    """`following_score` of `segmentation_attention` over `batches` (each with "video",
    "segmentations", "target_points", "occluded", "point_valid"): the F of perfect binding."""
    totals = None
    for batch in batches:
        height, width = batch["video"].shape[2:4]
        sums = jax.device_get(token_following_sums(
            jnp.asarray(segmentation_attention(batch["segmentations"], stride, tiles)),
            batch["target_points"], batch["occluded"], batch["point_valid"], height=height,
            width=width, first_frame=first_frame))
        totals = sums if totals is None else jax.tree.map(np.add, totals, sums)
    if totals is None:
        raise ValueError("binding_ceiling: no batches")
    return following_score(totals)


# chapters/10a_comparison.py, cell 15
def adjusted_rand_index(labels_a, labels_b, num_labels: int) -> jnp.ndarray:
    """ARI of two labelings [P] (integers in [0, num_labels)) of the same P items."""
    table = jax.nn.one_hot(labels_a, num_labels).T @ jax.nn.one_hot(labels_b, num_labels)
    pairs = lambda n: n * (n - 1) / 2  # noqa: E731
    index = pairs(table).sum()
    rows, cols = pairs(table.sum(1)).sum(), pairs(table.sum(0)).sum()
    expected = rows * cols / pairs(table.sum())
    spread = (rows + cols) / 2 - expected
    return jnp.where(spread > 0, (index - expected) / jnp.where(spread > 0, spread, 1.0), 1.0)


def cross_clip_agreement(attention, first_frame: int = 1) -> jnp.ndarray:
    """Mean ARI between the argmax-token maps of every two clips of a batch at the same
    frame (frames ≥ first_frame): near 1, a content-blind partition; near 0, chosen
    by content. attention [B, T, h', w', K]; NaN for a single clip."""
    batch, _, _, _, num_tokens = attention.shape
    ids = jnp.argmax(attention[:, first_frame:], axis=-1)
    ids = ids.reshape(batch, ids.shape[1], -1)  # [B, T', P]
    first, second = np.triu_indices(batch, 1)
    per_frame = jax.vmap(jax.vmap(adjusted_rand_index, (0, 0, None)), (0, 0, None))
    return jnp.mean(per_frame(ids[first], ids[second], num_tokens))


# chapters/10a_comparison.py, cell 19
@functools.partial(jax.jit, static_argnums=(0, 4))
def _following_scores(graphdef, variables, batch, key, first_frame: int):
    """One batch's `token_following_sums` and frame scores (compiled once per shape)."""
    m = nnx.merge(graphdef, variables)
    frames = optimization.video_batch(batch)
    out = m(frames, key=key, training=False, return_attention=True)
    sums = token_following_sums(out["attention"], batch["target_points"], batch["occluded"],
                                batch["point_valid"], height=frames.shape[2],
                                width=frames.shape[3], first_frame=first_frame)
    weights = out["attention"][:, first_frame:].astype(jnp.float32)
    entropy = -jnp.sum(weights * jnp.log(jnp.maximum(weights, 1e-12)), axis=-1).mean()
    sharpness = 1.0 - entropy / jnp.log(weights.shape[-1])
    return sums, dict(loss=out["loss"], sharpness=sharpness,
                      cross_clip_ari=cross_clip_agreement(out["attention"], first_frame),
                      **optimization.frame_metrics(out, frames))


def token_following(net, batches, *, seed: int = 0, first_frame: int = 1) -> dict:
    """Held-out scores of `net` (any of the three models) in one pass over `batches`
    (with "video", "target_points", "occluded", "point_valid"): `following_score`,
    and chapter 06's loss, PSNR and copy-the-last-frame PSNR (S = 4, frames 1 … T−1),
    the decoder attention's sharpness (chapter 11's `attention_sharpness`, the same
    frames: 1 − mean entropy / log K) and `cross_clip_agreement` (needs ≥ 2 clips a batch)."""
    keys = ("video", "target_points", "occluded", "point_valid")
    graphdef, variables = nnx.split(net)
    totals, frame_scores = None, []
    for batch in batches:
        sums, metrics = jax.device_get(_following_scores(
            graphdef, variables, {k: batch[k] for k in keys}, jax.random.key(seed), first_frame))
        totals = sums if totals is None else jax.tree.map(np.add, totals, sums)
        frame_scores.append(metrics)
    if totals is None:
        raise ValueError("token_following: no batches")
    means = {k: float(np.mean([m[k] for m in frame_scores])) for k in frame_scores[0]}
    return {**following_score(totals), **means}


# chapters/10a_comparison.py, cell 23
def scene_motion(source, num_clips: int = 8) -> float:
    """Mean displacement (pixels per frame) of tracked points visible in consecutive frames."""
    speeds = []
    for i in range(min(num_clips, len(source))):
        clip = source[i]
        seen = ~clip["occluded"] & clip["point_valid"][:, None]
        both = seen[:, 1:] & seen[:, :-1]
        step = np.linalg.norm(np.diff(clip["target_points"], axis=1), axis=-1)
        speeds.append(step[both])
    return float(np.concatenate(speeds).mean())


# chapters/10a_comparison.py, cell 26
COMPARE_TASKS = ("points", "depth", "boxes")


def _stage(path: Path, settings: dict, compute) -> dict:
    """The result saved at `path` if it was computed with `settings`; else compute and save it."""
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("settings") == settings:
            return saved
    result = {"settings": settings, **compute()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=float))
    return result


# chapters/10a_comparison.py, cell 30
def compare_one(config: configs.Config, kind: str, run_dir, *, sources, track_batches,
                tasks=COMPARE_TASKS, pretrain_minutes: float | None = None,
                readout_minutes: float | None = None, progress: bool = True) -> dict:
    """Pretrain `kind` in `run_dir`, score it, train and score its frozen readouts (for
    `config`'s steps, or for `pretrain_minutes` and `readout_minutes` a readout)."""
    run_dir = Path(run_dir)
    train_source, eval_source = sources
    loaded = []  # the trained model, loaded once for both stages

    def trained():
        if not loaded:
            loaded.append(load_baseline(run_dir, config)[0])
        return loaded[0]

    def pretrain():  # evaluated here, in one pass with the token following
        tic = time.perf_counter()
        record = train_baseline(config, run_dir, kind, minutes=pretrain_minutes,
                                train_source=train_source, eval_source=eval_source,
                                eval_sources={}, progress=progress)
        minutes = (time.perf_counter() - tic) / 60
        return {"minutes": minutes, "steps": record["step"],
                **token_following(trained(), track_batches)}

    settings = {"kind": kind, "scene": config.data.scene_preset,
                **({"steps": config.train.steps} if pretrain_minutes is None
                   else {"budget_minutes": pretrain_minutes})}
    if kind == "grid_rec":  # results of the other decoder input are not reused
        settings["grid_rec_decode_corrected"] = config.model.grid_rec_decode_corrected
    pretraining = _stage(run_dir / "pretraining.json", settings, pretrain)

    def readout():
        tic = time.perf_counter()
        rows = boxes.readout_table(config, run_dir, run_dir / "readouts", tasks=tuple(tasks),
                                   modes=("frozen",), minutes=readout_minutes,
                                   progress=progress, backbone=trained())
        return {"minutes": (time.perf_counter() - tic) / 60, "rows": rows}

    readout_settings = dict(settings, tasks=list(tasks), **(
        {"readout_steps": config.readout.train.steps} if readout_minutes is None
        else {"readout_budget_minutes": readout_minutes}))
    readout_stage = (_stage(run_dir / "readouts.json", readout_settings, readout) if tasks
                     else {"minutes": 0.0, "rows": []})
    abstract = nnx.eval_shape(lambda: build_model(kind, config.model, rngs=nnx.Rngs(0)))
    return {"scene": config.data.scene_preset, "kind": kind, "model": MODEL_NAMES[kind],
            "tokens": num_tokens(kind, config), "parameters": count_parameters(abstract),
            "steps": pretraining.get("steps", config.train.steps),  # older stages: the config's
            "pretrain_minutes": pretraining["minutes"],
            "psnr": pretraining["psnr"], "copy_psnr": pretraining["copy_psnr"],
            "following": pretraining["following"], "sharpness": pretraining["sharpness"],
            # stages scored before the number existed do not have it
            "cross_clip_ari": pretraining.get("cross_clip_ari", float("nan")),
            "token_speed": pretraining["token_speed"],
            "content_speed": pretraining["content_speed"],
            "readout_steps": max([row["steps"] for row in readout_stage["rows"]],
                                 default=config.readout.train.steps),
            "readout_minutes": readout_stage["minutes"],
            "readouts": {row["task"]: row for row in readout_stage["rows"]}}


# chapters/10a_comparison.py, cell 32
def compare(config: configs.Config, out_dir, *, scenes=("static", "movi_e"),
            kinds=MODEL_KINDS, tasks=COMPARE_TASKS, steps: int | None = None,
            readout_steps: int | None = None, minutes: float | None = None,
            progress: bool = True) -> list[dict]:
    """Pretrain every model in `kinds` on every scene preset in `scenes`, train and
    score frozen readouts (`tasks`; none: pretraining only) on each; write
    `results.json` and `results.md` to `out_dir`. `minutes`: a budget for the whole
    comparison instead of step counts (`compare_budget`: each model gets the same
    time, so the step counts differ); with `readout_steps` too, the minutes are all
    pretraining and every readout trains that many steps."""
    for name, given, allowed in (("scene preset", scenes, SCENE_PRESETS),
                                 ("model", kinds, MODEL_KINDS), ("task", tasks, COMPARE_TASKS)):
        unknown = [x for x in given if x not in allowed]
        if unknown or (not given and name != "task"):
            raise ValueError(f"unknown or no {name} {unknown}; expected some of "
                             f"{', '.join(allowed)}")
    if minutes is not None and steps is not None:
        raise ValueError("give pretraining steps or a budget in minutes, not both")
    budget = {"pretrain_minutes": None, "readout_minutes": None} if minutes is None else (
        compare_budget(minutes, len(scenes), len(kinds),
                       len(tasks) if readout_steps is None else 0))
    config = with_steps(config, steps, readout_steps)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for scene in scenes:
        scene_config = dataclasses.replace(
            config, data=dataclasses.replace(config.data, scene_preset=scene))
        sources = train.make_sources(scene_config, progress=progress)
        track_batches = train.held_out_batches(
            sources[1], scene_config, keys=("video", "target_points", "occluded", "point_valid"))
        motion = scene_motion(sources[1], scene_config.data.eval_clips)
        for kind in kinds:
            row = compare_one(scene_config, kind, out_dir / scene / kind, sources=sources,
                              track_batches=track_batches, tasks=tasks, progress=progress,
                              **budget)
            rows.append(dict(row, scene_motion=motion))
            (out_dir / "results.json").write_text(json.dumps(rows, indent=1, default=float))
    (out_dir / "results.md").write_text(format_comparison(rows, config))
    return rows


def compare_budget(minutes: float, num_scenes: int, num_kinds: int, num_tasks: int) -> dict:
    """Split `minutes` evenly over the scene × model runs; in each run pretraining gets
    `PRETRAIN_SHARE` (all of it without readouts) and every readout task an equal part of
    the rest. Compiling is inside the budgets; evaluation and checkpoints come on top."""
    if not (isinstance(minutes, int | float) and math.isfinite(minutes) and minutes > 0):
        raise ValueError(f"a budget of {minutes!r} minutes: expected a positive number")
    share = minutes / (num_scenes * num_kinds)
    pretrain = share * (PRETRAIN_SHARE if num_tasks else 1.0)
    return {"pretrain_minutes": pretrain,
            "readout_minutes": (share - pretrain) / num_tasks if num_tasks else None}


PRETRAIN_SHARE = 2 / 3  # of each run's budget; the rest trains its readouts


# chapters/10a_comparison.py, cell 36
_METRICS = {"points": ("average_jaccard", "points AJ ↑"), "depth": ("abs_rel", "depth AbsRel ↓"),
            "boxes": ("mean_iou", "boxes IoU ↑")}
_TRIVIAL = {"points": "zero motion", "depth": "mean depth", "boxes": "still box"}


def format_comparison(rows: list[dict], config: configs.Config) -> str:
    """The comparison as Markdown: one table per scene preset, then MooG's gaps."""
    d, first = config.data, rows[0]
    tasks = [t for t in COMPARE_TASKS if t in first["readouts"]]
    same_steps = len({r["steps"] for r in rows}) == 1
    same_readout_steps = len({r["readout_steps"] for r in rows}) == 1
    scenes = len({r["scene"] for r in rows}) > 1
    trained_for = (f"{first['steps']} steps" if same_steps else "for the same time (steps: " + ", ".join(
        dict.fromkeys(f"{r['model']} {r['steps']}" + (f" on {r['scene']}" if scenes else "")
                      for r in rows)) + ")")
    lines = [f"# MooG vs. on-the-grid baselines — preset `{config.name}`", "",
             f"Each model pretrained {trained_for} (batch {d.batch_size}, "
             f"{d.num_frames}-frame clips at {d.resolution}²), "
             + ((f"then frozen readouts trained {first['readout_steps']} steps each. "
                 if same_readout_steps else "then frozen readouts trained for the same time each. ")
                if tasks else "no readouts trained. ")
             + f"Scores on the {d.eval_clips} held-out "
             f"rendered clips (test split, unseen textures), {d.num_frames}-frame windows. "
             "PSNR: MooG predicts frame t, Grid and Grid Rec. reconstruct it. Token following "
             "F: 1 = tokens move with the content under them, 0 = they stand still "
             "(chapter 10a, §1). Times: wall-clock minutes on the machine that ran it.", ""]
    for scene in dict.fromkeys(r["scene"] for r in rows):
        group = [r for r in rows if r["scene"] == scene]
        camera = SCENE_PRESETS[scene].camera_motion
        lines += [f"## Scene preset `{scene}` ({camera} camera; tracked points move "
                  f"{group[0]['scene_motion']:.2f} px/frame on average)", "",
                  "| model | tokens | parameters | pretraining | PSNR (dB) | "
                  + "".join(_METRICS[t][1] + " | " for t in tasks)
                  + "readouts | token following F ↑ | token / content speed (px/frame) |",
                  "|---" * (8 + len(tasks)) + "|"]
        for r in group:
            scores = "".join(f"{r['readouts'][t]['readout'][_METRICS[t][0]]:.3f} | "
                             for t in tasks)
            token_label = "K" if r["kind"] == "moog" else "h·w"
            readout_time = f"{r['readout_minutes']:.1f} min" if tasks else "—"
            lines.append(f"| {r['model']} | {token_label} = {r['tokens']} | "
                         f"{r['parameters'] / 1e6:.2f} M | {r['pretrain_minutes']:.1f} min | "
                         f"{r['psnr']:.2f} | {scores}{readout_time} | "
                         f"{r['following']:+.2f} | {r['token_speed']:.2f} / "
                         f"{r['content_speed']:.2f} |")
        trivial = "".join(f"{group[0]['readouts'][t]['baseline'][_METRICS[t][0]]:.3f} "
                          f"({_TRIVIAL[t]}) | " for t in tasks)
        lines += [f"| trivial | — | — | — | {group[0]['copy_psnr']:.2f} (copy last frame) | "
                  f"{trivial}— | — | — |", ""]
    lines += _gap_lines(rows, tasks)
    return "\n".join(lines) + "\n"


def _gap_lines(rows: list[dict], tasks) -> list[str]:
    """MooG minus each grid model, signed so that positive means MooG is better."""
    moog = {r["scene"]: r for r in rows if r["kind"] == "moog"}
    others = [r for r in rows if r["kind"] != "moog" and r["scene"] in moog]
    if not others:
        return []
    lines = ["## MooG's lead (positive: MooG better)", "",
             "| scene | vs. | " + "".join(_METRICS[t][1].rstrip(" ↑↓") + " | " for t in tasks)
             + "token following F |", "|---|---|" + "---|" * (len(tasks) + 1)]
    for r in others:
        gaps = []
        for t in tasks:
            metric, label = _METRICS[t]
            gap = moog[r["scene"]]["readouts"][t]["readout"][metric] - r["readouts"][t]["readout"][
                metric]
            gaps.append(f"{gap if label.endswith('↑') else -gap:+.3f}")
        gaps.append(f"{moog[r['scene']]['following'] - r['following']:+.2f}")
        lines.append(f"| {r['scene']} | {r['model']} | " + " | ".join(gaps) + " |")
    return lines + [""]
