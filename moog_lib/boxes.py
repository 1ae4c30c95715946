"""Box tracking, and the table of all three readouts.

IoU and its checks (`box_iou`, `mean_box_iou`), the box readout
(`make_box_head`, `track_boxes`), the box task `BOXES` with its loss and the
still-box baseline; `READOUT_TASKS`, `readout_table` and
`format_readout_table` score depth, points and boxes together.

Generated from chapters/09_box_tracking.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "check_boxes",
    "box_area",
    "box_iou",
    "mean_box_iou",
    "make_box_head",
    "track_boxes",
    "box_loss",
    "box_baseline",
    "BOXES",
    "READOUT_TASKS",
    "readout_table",
    "format_readout_table",
]


import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, ArrayLike, Float, Shaped

from moog_lib import configs, data, points, readouts, train
from moog_lib.shapes import typed


# chapters/09_box_tracking.py, cell 7
@typed
def check_boxes(boxes: Float[ArrayLike, "*batch 4"], name: str = "boxes") -> None:
    """Raise ValueError unless the (ymin, xmin, ymax, xmax) `boxes` are finite and not
    inverted (checked outside jit only)."""
    if not data.is_concrete(boxes):
        return
    b = np.asarray(boxes)
    if not np.isfinite(b).all():
        raise ValueError(f"{name} contain NaN or inf")
    inverted = (b[..., 2] < b[..., 0]) | (b[..., 3] < b[..., 1])
    if inverted.any():
        first = tuple(int(i) for i in np.argwhere(inverted)[0])
        raise ValueError(f"{name}: {int(inverted.sum())} inverted box(es) (ymax < ymin or "
                         f"xmax < xmin), first at index {first}: {b[first].tolist()}")


def box_area(boxes: jnp.ndarray, xp=jnp) -> jnp.ndarray:
    """Area of (ymin, xmin, ymax, xmax) boxes; degenerate or inverted boxes have 0.
    `xp`: the array module to compute with (`numpy` keeps the boxes' own precision)."""
    return (xp.maximum(boxes[..., 2] - boxes[..., 0], 0)
            * xp.maximum(boxes[..., 3] - boxes[..., 1], 0))


@typed
def box_iou(boxes_a: Float[ArrayLike, "*batch 4"],
            boxes_b: Float[ArrayLike, "*batch 4"]) -> Float[np.ndarray | Array, "*batch"]:
    """IoU of corresponding (ymin, xmin, ymax, xmax) boxes; 0 where the union is empty
    (degenerate or inverted boxes have area 0). NaN or Inf in concrete arrays are
    refused (under jit only the shapes, by the signature).

    Concrete boxes: computed with NumPy in their own precision (float64 boxes give a
    float64 IoU); traced boxes (inside `jax.jit`): with `jax.numpy`."""
    concrete = data.is_concrete(boxes_a, boxes_b)
    if concrete:
        for name, b in (("boxes_a", boxes_a), ("boxes_b", boxes_b)):
            data.check_finite(f"box_iou: {name}", b, "give (ymin, xmin, ymax, xmax) numbers")
    xp = np if concrete else jnp
    return _box_iou(xp.asarray(boxes_a), xp.asarray(boxes_b), xp)


def _box_iou(boxes_a: jnp.ndarray, boxes_b: jnp.ndarray, xp=jnp) -> jnp.ndarray:
    low = xp.maximum(boxes_a[..., :2], boxes_b[..., :2])
    high = xp.minimum(boxes_a[..., 2:], boxes_b[..., 2:])
    intersection = box_area(xp.concatenate([low, high], -1), xp)
    union = box_area(boxes_a, xp) + box_area(boxes_b, xp) - intersection
    return xp.where(union > 0, intersection / xp.where(union > 0, union, 1), 0.0)


@typed
def mean_box_iou(predicted: Float[ArrayLike, "B N T 4"], boxes: Float[ArrayLike, "B N T 4"],
                 valid: Shaped[ArrayLike, "B N T"]) -> Float[Array, "B"]:  # noqa: F821 (an axis)
    """Mean IoU per clip over frames 1 … T−1 where `valid`.

    NaN for a clip with no valid box after the first frame.
    """
    scored = jnp.asarray(valid, bool).at[..., 0].set(False)  # the first frame is the query
    iou = jnp.where(scored, _box_iou(predicted, boxes), 0.0)  # predictions may be NaN
    return iou.sum(axis=(1, 2)) / scored.sum(axis=(1, 2))


# chapters/09_box_tracking.py, cell 11
def make_box_head(config: configs.Config, rngs: nnx.Rngs) -> points.RecurrentReadout:
    """The recurrent readout with 4 outputs (ymin, xmin, ymax, xmax), queried with boxes."""
    return points.RecurrentReadout(config, outputs=4, coord_dim=4, rngs=rngs)


@typed
def track_boxes(head: points.RecurrentReadout, tokens: Float[ArrayLike, "B T K D"],
                first_boxes: Float[ArrayLike, "B N 4"]) -> Float[Array, "B N T 4"]:
    """Boxes in every frame from the first-frame boxes (ymin, xmin, ymax, xmax)."""
    check_boxes(first_boxes, "query boxes")
    if first_boxes.shape[1] == 0:
        raise ValueError("the query set is empty (N = 0): pass at least one box")
    frames = jnp.zeros(first_boxes.shape[:2], jnp.int32)
    return jax.nn.sigmoid(head(tokens, 2.0 * first_boxes - 1.0, frames, first_boxes))


def box_loss(head, tokens, batch, key, *, config: configs.Config, training: bool = True):
    """L2 to the normalised boxes over valid frames; evaluation adds mean IoU."""
    boxes = jnp.asarray(batch["boxes"], jnp.float32)
    valid = jnp.asarray(batch["box_valid"], bool)
    if boxes.ndim != 4 or valid.shape != boxes.shape[:3] or boxes.shape[2] != tokens.shape[1]:
        raise ValueError(f"boxes must be [B, N, T, 4] and box_valid [B, N, T] with T = "
                         f"{tokens.shape[1]}, got {boxes.shape} and {valid.shape}")
    check_boxes(boxes, "boxes")
    valid = valid & valid[..., :1]  # a box is tracked only if it exists in the first frame
    predicted = track_boxes(head, tokens, boxes[:, :, 0])
    weight = valid.astype(jnp.float32)
    loss = jnp.sum(jnp.square(predicted - boxes).sum(-1) * weight) / jnp.maximum(weight.sum(), 1)
    metrics = {"loss": loss}
    if not training:
        metrics["mean_iou"] = jnp.nanmean(mean_box_iou(predicted, boxes, valid))
    return loss, metrics


def box_baseline(batch: dict, stats: dict, config: configs.Config) -> dict:
    """Mean IoU of holding the first-frame box still."""
    boxes = np.asarray(batch["boxes"], np.float32)
    valid = np.asarray(batch["box_valid"], bool)
    still = np.broadcast_to(boxes[:, :, :1], boxes.shape)
    scores = mean_box_iou(jnp.asarray(still), jnp.asarray(boxes),
                          jnp.asarray(valid & valid[..., :1]))
    return {"mean_iou": float(np.nanmean(np.asarray(scores)))}


BOXES = readouts.ReadoutTask(name="boxes", make_head=make_box_head, loss=box_loss,
                             keys=("boxes", "box_valid"), baseline=box_baseline,
                             metric="mean_iou", higher_is_better=True)


# chapters/09_box_tracking.py, cell 16
READOUT_TASKS = {"depth": readouts.DEPTH, "points": points.POINTS, "boxes": BOXES}


def readout_table(config: configs.Config, backbone_dir, out_dir, *,
                  tasks: tuple[str, ...] = ("depth", "points", "boxes"),
                  modes: tuple[str, ...] = ("frozen", "e2e"), steps: int | None = None,
                  minutes: float | None = None, progress: bool = True,
                  backbone=None) -> list[dict]:
    """Train and evaluate every readout in `tasks` × `modes` on the MooG run in
    `backbone_dir` (or on `backbone`, see `readouts.train_readout`; `minutes`: the
    budget of each); write `results.json` and `results.md` to `out_dir`."""
    unknown = set(tasks) - set(READOUT_TASKS) or set(modes) - {"frozen", "e2e"}
    if unknown:
        raise ValueError(f"unknown task or mode {sorted(unknown)}; tasks: {sorted(READOUT_TASKS)}, "
                         "modes: frozen, e2e")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = train.make_sources(readouts.readout_run_config(config), progress=progress)
    rows = []
    for name in tasks:
        task = READOUT_TASKS[name]
        for mode in modes:
            workdir = out_dir / f"{name}_{mode}"
            tic = time.perf_counter()
            record = readouts.train_readout(task, config, backbone_dir, workdir,
                                            frozen=mode == "frozen", steps=steps,
                                            minutes=minutes, sources=sources, progress=progress,
                                            backbone=backbone)
            elapsed = (time.perf_counter() - tic) / 60
            scores = readouts.evaluate_readout(task, config, backbone_dir, workdir,
                                               frozen=mode == "frozen", sources=sources,
                                               backbone=backbone)
            rows.append({"task": name, "mode": mode, "metric": task.metric,
                         "higher_is_better": task.higher_is_better, "steps": record["step"],
                         "minutes": elapsed, **scores})
    (out_dir / "results.json").write_text(json.dumps(rows, indent=1))
    (out_dir / "results.md").write_text(format_readout_table(rows, config))
    return rows


def format_readout_table(rows: list[dict], config: configs.Config) -> str:
    """The results as Markdown: readout vs baseline on 8-frame windows and whole clips."""
    d = config.data
    lines = [f"Preset `{config.name}`: held-out rendered clips ({d.eval_clips}, test split), "
             f"windows of {d.num_frames} frames and whole clips of {d.clip_frames}.", "",
             f"| task | metric | mode | steps | minutes | readout (T={d.num_frames}) | "
             f"baseline (T={d.num_frames}) | readout (T={d.clip_frames}) | "
             f"baseline (T={d.clip_frames}) | beats baseline |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        k = row["metric"]
        better = (row["readout"][k] > row["baseline"][k]) == row["higher_is_better"]
        lines.append(f"| {row['task']} | {k}{' ↑' if row['higher_is_better'] else ' ↓'} | "
                     f"{row['mode']} | {row['steps']} | {row['minutes']:.1f} | "
                     f"{row['readout'][k]:.3f} | {row['baseline'][k]:.3f} | "
                     f"{row['readout_long'][k]:.3f} | {row['baseline_long'][k]:.3f} | "
                     f"{'yes' if better else 'no'} |")
    return "\n".join(lines) + "\n"
