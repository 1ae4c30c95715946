"""Chapter 06b's small-scale study: which knobs let MooG's tokens bind on a laptop.

From one base recipe (`BASE`: the `cpu` preset before this study chose today's) each
row changes one knob; the last rows combine the knobs that helped. For every row
MooG is pretrained, then measured on the held-out clips (test split): next-frame
PSNR and copy-the-previous-frame PSNR on the same pixels, token-following F
(chapter 10a) and decoder-attention sharpness (chapter 11), the points AJ of a
short frozen readout (chapter 08) next to the zero-motion baseline, and wall
minutes. Resumable: finished stages are read back from `<out>/<row>/`, an
interrupted pretraining resumes from its last checkpoint; rerun the same command.
Two processes may share one `--out` if they run different rows (one per core).

    python benchmarks/small_scale.py --list
    python benchmarks/small_scale.py --out runs/small_scale --rows base paper_init
    python benchmarks/small_scale.py --out runs/small_scale            # every row, hours
    python benchmarks/small_scale.py --out runs/small_scale --rescore  # finished rows, today's scores

The table is written to `<out>/results.md` after every row.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from moog_lib import baselines, comparison, configs, train


def layers(n: int) -> list[str]:
    """Overrides giving predictor, corrector and decoder `n` layers each."""
    return [f"model.{m}.num_layers={n}" for m in ("predictor", "corrector", "decoder")]


# The study's base recipe: the `cpu` preset as it was before the study chose today's
# (two layers per transformer, tokens of width 64, learning rate 1e-3, no competition).
BASE = layers(2) + [
    "model.token_dim=64", "model.corrector_competition=False", "train.peak_learning_rate=1e-3"]

# One knob at a time, relative to BASE; the last rows combine the knobs that helped
# (`depth_1_all` is today's `cpu` preset).
ROWS = {
    "base": [],
    "paper_init": ["model.fixed_initial_state=False", "model.initial_state_scale=0.0001",
                   "model.qk_norm_scale=1.0"],
    "fresh_noise": ["model.fixed_initial_state=False"],
    "qk_norm_1": ["model.qk_norm_scale=1.0"],
    "textured": ["data.scene_preset='movi_e'"],
    "res_48": ["data.resolution=48"],
    "res_64": ["data.resolution=64"],
    "S_1": ["model.train_subsample=1"],
    "S_4": ["model.train_subsample=4"],
    "K_8": ["model.num_tokens=8"],
    "K_32": ["model.num_tokens=32"],
    "K_64": ["model.num_tokens=64"],
    "D_128": ["model.token_dim=128"],
    "depth_1": layers(1),
    "depth_3": layers(3),
    "lr_3e-4": ["train.peak_learning_rate=3e-4"],
    "lr_3e-3": ["train.peak_learning_rate=3e-3"],
    "warmup_500": ["train.warmup_steps=500"],
    "batch_4": ["data.batch_size=4"],
    "batch_16": ["data.batch_size=16"],
    "steps_x2": ["train.steps=2400"],
    # Slot Attention's competition in the corrector (chapter 02 §3), with the fixed
    # draw and with fresh noise per clip (SAVi's setting).
    "compete": ["model.corrector_competition=True"],
    "compete_fresh": ["model.corrector_competition=True", "model.fixed_initial_state=False"],
    # ... with fresh noise small enough to leave the corrector's content on top (after the
    # correction LN a draw of scale 1e-3 has std ≈ 0.1, 1e-4 ≈ 0.01: chapter 03 §4)
    "compete_fresh_1e-3": ["model.corrector_competition=True", "model.fixed_initial_state=False",
                           "model.initial_state_scale=0.001"],
    "compete_fresh_1e-3_x2": ["model.corrector_competition=True",
                              "model.fixed_initial_state=False",
                              "model.initial_state_scale=0.001", "train.steps=2400"],
    # The knobs that helped at 1,200 steps, together (one layer per module is also 2.5x
    # faster per step); `depth_1_all` is today's `cpu` preset.
    "depth_1_lr_3e-3": layers(1) + ["train.peak_learning_rate=3e-3"],
    "depth_1_all": layers(1) + ["train.peak_learning_rate=3e-3", "model.token_dim=128",
                                "model.corrector_competition=True"],
    "depth_1_all_x2": layers(1) + ["train.peak_learning_rate=3e-3", "model.token_dim=128",
                                   "model.corrector_competition=True", "train.steps=2400"],
    "compete_paper_init": ["model.corrector_competition=True", "model.fixed_initial_state=False",
                           "model.initial_state_scale=0.0001", "model.qk_norm_scale=1.0"],
}


TRACK_KEYS = ("video", "target_points", "occluded", "point_valid")


def row_config(name: str, data_dir: str, readout_steps: int) -> configs.Config:
    config = configs.override(configs.get("cpu"),
                              BASE + ROWS[name] + [f"data.data_dir={data_dir!r}"])
    return baselines.with_steps(config, None, readout_steps)


def run_row(name: str, out: Path, data_dir: str, readout_steps: int) -> dict:
    config = row_config(name, data_dir, readout_steps)
    sources = train.make_sources(config)
    track_batches = train.held_out_batches(sources[1], config, keys=TRACK_KEYS)
    row = comparison.compare_one(config, "moog", out / name, sources=sources,
                                track_batches=track_batches, tasks=("points",))
    return {"row": name, "change": ", ".join(ROWS[name]) or "—", "steps": row["steps"],
            "psnr": row["psnr"], "copy_psnr": row["copy_psnr"], "following": row["following"],
            "sharpness": row["sharpness"], "cross_clip_ari": row["cross_clip_ari"],
            **points_scores(row["readouts"]["points"]),
            "minutes": row["pretrain_minutes"] + row["readout_minutes"],
            "content_speed": row["content_speed"], "token_speed": row["token_speed"]}


def points_scores(points: dict) -> dict:
    """AJ and position accuracy δ of the frozen point readout and of the zero-motion baseline.

    δ (`average_pts_within_thresh`) scores positions alone; AJ also needs the readout's
    visibility, which a short readout may not have learned."""
    return {"points_aj": points["readout"]["average_jaccard"],
            "zero_motion_aj": points["baseline"]["average_jaccard"],
            "points_within": points["readout"]["average_pts_within_thresh"],
            "zero_motion_within": points["baseline"]["average_pts_within_thresh"]}


def rescore(name: str, out: Path, data_dir: str, readout_steps: int) -> dict:
    """Chapter 10a's `token_following` scores of the finished row `name`, from its checkpoint."""
    config = row_config(name, data_dir, readout_steps)
    net = baselines.load_baseline(out / name, config)[0]
    batches = train.held_out_batches(train.make_sources(config, progress=False)[1], config,
                                     keys=TRACK_KEYS)
    scores = comparison.token_following(net, batches)
    readout = json.loads((out / name / "readouts" / "results.json").read_text())
    points = next(r for r in readout if r["task"] == "points")
    return {**{k: scores[k] for k in ("psnr", "copy_psnr", "following", "sharpness",
                                      "cross_clip_ari", "token_speed", "content_speed")},
            **points_scores(points)}


def format_table(rows: list[dict]) -> str:
    lines = ["| row | change from the base | steps | PSNR (dB) | copy last (dB) | F ↑ | sharpness ↑ "
             "| cross-clip ARI ↓ | points AJ (zero motion) | points δ (zero motion) | minutes |",
             "|---" * 11 + "|"]
    for r in rows:
        lines.append(f"| `{r['row']}` | {r['change']} | {r['steps']} | {r['psnr']:.2f} | "
                     f"{r['copy_psnr']:.2f} | {r['following']:+.2f} | {r['sharpness']:.3f} | "
                     f"{r.get('cross_clip_ari', float('nan')):.2f} | "
                     f"{r['points_aj']:.3f} ({r['zero_motion_aj']:.3f}) | "
                     f"{r.get('points_within', float('nan')):.3f} "
                     f"({r.get('zero_motion_within', float('nan')):.3f}) | {r['minutes']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/small_scale")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--data-dir", default="data", help="rendered datasets (built if missing)")
    parser.add_argument("--readout-steps", type=int, default=300)
    parser.add_argument("--list", action="store_true", help="print the rows and exit")
    parser.add_argument("--rescore", action="store_true",
                        help="score the finished rows again with today's token_following")
    args = parser.parse_args(argv)
    if args.list:
        for name, change in ROWS.items():
            print(f"{name:12s} {', '.join(change) or '(the base recipe)'}")
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"

    def finished() -> dict:  # read afresh: other processes may run other rows into `out`
        return ({r["row"]: r for r in json.loads(results_path.read_text())}
                if results_path.exists() else {})

    if args.rescore:
        done = finished()
        for name in [n for n in args.rows if n in done]:
            done[name].update(rescore(name, out, args.data_dir, args.readout_steps))
            print(f"{name}: {json.dumps(done[name])}", file=sys.stderr)
        ordered = [done[n] for n in ROWS if n in done]
        results_path.write_text(json.dumps(ordered, indent=1))
        (out / "results.md").write_text(format_table(ordered))
        print(format_table(ordered))
        return 0
    for name in args.rows:
        if name in finished():
            continue
        tic = time.perf_counter()
        row = run_row(name, out, args.data_dir, args.readout_steps)
        print(f"{name}: {json.dumps(row)} ({(time.perf_counter() - tic) / 60:.1f} min)",
              file=sys.stderr)
        done = {**finished(), name: row}
        ordered = [done[n] for n in ROWS if n in done]
        results_path.write_text(json.dumps(ordered, indent=1))
        (out / "results.md").write_text(format_table(ordered))
    done = finished()
    print(format_table([done[n] for n in ROWS if n in done]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
