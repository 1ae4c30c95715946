"""The `moog` command.

One function per subcommand (`data build`, `train`, `eval`, `report`, `demo`,
`eval-readouts`, `compare`, `track`), the argument parser (`build_parser`)
and `main`.

Generated from chapters/13_command_line.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "cmd_data_build",
    "cmd_train",
    "evaluate_run",
    "cmd_eval",
    "cmd_report",
    "demo_checks",
    "cmd_demo",
    "cmd_eval_readouts",
    "cmd_compare",
    "cmd_track",
    "build_parser",
    "main",
]


import argparse
import json
import math
import sys
from pathlib import Path

from moog_lib import (
    baselines,
    boxes,
    comparison,
    configs,
    datasets,
    ego4d,
    report,
    runs,
    scenes,
    tracking,
    train,
)


# chapters/13_command_line.py, cell 5
def _config(args) -> configs.Config:
    return runs.check_config(configs.override(configs.get(args.preset), args.set or []))


def _check_counts(args) -> None:
    """Counts given on the command line must be positive (argparse has made them ints)."""
    for name in ("steps", "readout_steps", "clips", "num", "resolution", "frames", "grid",
                 "max_frames"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} {value}: expected a positive whole "
                             "number")
    minutes = getattr(args, "minutes", None)
    if minutes is not None and not 0 < minutes < math.inf:
        raise ValueError(f"--minutes {minutes}: expected a positive number of minutes")


# chapters/13_command_line.py, cell 9
def cmd_data_build(args) -> dict:
    builder = datasets.build_dataset(args.preset, args.split, args.num, args.resolution, args.data_dir,
                                 args.frames, seed=args.seed)
    return {"dataset": str(builder.data_dir), "clips": args.num}


def cmd_train(args) -> dict:
    return train.train(_config(args), args.workdir, steps=args.steps, minutes=args.minutes,
                       resume=args.resume, force_new_run=args.force_new_run)


def evaluate_run(workdir, clips: int | None = None) -> dict:
    """Held-out metrics (S = 4) of the newest checkpoint in `workdir`."""
    if clips is not None:
        runs.check_count("clips", clips, "held-out clips")
    loaded = train.load_trained(workdir)
    if loaded is None:
        raise ValueError(f"{workdir} has no checkpoint; train first")
    model, config = loaded
    if clips is not None:
        config = configs.override(config, [f"data.eval_clips={clips}"])
    _, eval_source = train.make_sources(config, progress=False)
    return train.evaluate_model(model, train.held_out_batches(eval_source, config))


def cmd_eval(args) -> dict:
    return evaluate_run(args.workdir, args.clips)


def cmd_report(args) -> dict:
    out = train.write_report(args.workdir, args.out)
    page = report.write_figures(args.workdir, out)  # chapters 11 and 11a's figures and report.html
    return {"report": str(out / "summary.md"), "page": str(page)}


# chapters/13_command_line.py, cell 11
def demo_checks(workdir, out_dir) -> dict:
    """Does the trained model work? Held-out next-frame PSNR against copying the previous
    frame (same pixels), token-following F beside the F of perfect binding on the same
    clips, and attention sharpness (chapters 10–11); appended to `<out_dir>/summary.md`
    and returned (with the ceiling as "following_ceiling"). When the run has the shipped
    model's architecture, the shipped model is scored on the same clips beside it
    ("shipped"; else None)."""
    loaded = train.load_trained(workdir)
    if loaded is None:
        raise ValueError(f"{workdir} has no checkpoint; train first")
    model, config = loaded
    _, eval_source = train.make_sources(config, progress=False)
    batches = train.held_out_batches(eval_source, config, keys=(
        "video", "segmentations", "target_points", "occluded", "point_valid"))
    scores = comparison.token_following(model, batches)
    ceiling = comparison.binding_ceiling(batches, config.model.eval_subsample, tiles=2)
    checks = {"PSNR above copying the previous frame": scores["psnr"] > scores["copy_psnr"],
              "token following F >= 0.5": scores["following"] >= 0.5,
              "attention sharpness >= 0.3": scores["sharpness"] >= 0.3}
    lines = ["", "## Does it work? (held-out clips)", "",
             f"- next-frame PSNR {scores['psnr']:.2f} dB vs copying the previous frame "
             f"{scores['copy_psnr']:.2f} dB",
             f"- token following F = {scores['following']:+.2f} (1: tokens move with the content "
             f"under them; 0: they stand still), token / content speed "
             f"{scores['token_speed']:.2f} / {scores['content_speed']:.2f} px/frame; perfect "
             f"binding (ground truth: one token per object, the background in 4 still tiles) "
             f"scores F = {ceiling['following']:+.2f} on these clips at this grid (chapter 10a, §2)",
             f"- decoder attention sharpness {scores['sharpness']:.3f} (0: uniform, 1: one token "
             "per pixel)", ""]
    lines += [f"- [{'x' if ok else ' '}] {name}" for name, ok in checks.items()]
    shipped, shipped_config, manifest = train.load_tutorial_model()
    if shipped_config.model == config.model:  # the same architecture, trained longer
        shipped_scores = comparison.token_following(shipped, batches)
        lines += ["", f"For comparison, the model this repository ships ({manifest['steps']:,} "
                  "steps of the same architecture, `train.load_tutorial_model()`) on the same "
                  f"clips: PSNR {shipped_scores['psnr']:.2f} dB vs copying "
                  f"{shipped_scores['copy_psnr']:.2f} dB, F = {shipped_scores['following']:+.2f}, "
                  f"sharpness {shipped_scores['sharpness']:.3f}."]
    else:
        shipped_scores = None
    with open(Path(out_dir) / "summary.md", "a") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines), file=sys.stderr)
    return {**scores, "following_ceiling": ceiling["following"], "checks": checks,
            "shipped": shipped_scores}


def cmd_demo(args) -> dict:
    config = _config(args)
    result = train.train(config, args.workdir, steps=args.steps, minutes=args.minutes, resume=True,
                         force_new_run=args.force_new_run)
    train.write_report(args.workdir, args.out)
    page = report.write_figures(args.workdir, args.out)
    checks = demo_checks(args.workdir, args.out)
    return {"step": result["step"], "eval": result["eval"], "checks": checks,
            "report": str(Path(args.out) / "summary.md"), "page": str(page)}


# chapters/13_command_line.py, cell 13
def cmd_eval_readouts(args) -> dict:
    config = _config(args)
    out = Path(args.out or Path(args.workdir) / "readouts")
    rows = boxes.readout_table(config, args.workdir, out, tasks=tuple(args.tasks),
                               modes=tuple(args.modes), steps=args.steps,
                               minutes=args.minutes)
    print((out / "results.md").read_text(), file=sys.stderr)
    return {"results": str(out / "results.md"), "rows": len(rows)}


def cmd_compare(args) -> dict:
    config = _config(args)
    out = Path(args.out or Path("runs") / config.name / "compare")
    rows = comparison.compare(config, out, scenes=tuple(args.scenes), kinds=tuple(args.models),
                             tasks=tuple(args.tasks), steps=args.steps,
                             readout_steps=args.readout_steps, minutes=args.minutes)
    print((out / "results.md").read_text(), file=sys.stderr)
    return {"results": str(out / "results.md"), "rows": len(rows)}


def cmd_track(args) -> dict:
    return tracking.track_video_file(args.video, args.ego4d_dir, args.out, points=args.points,
                                     grid=args.grid, max_frames=args.max_frames, size=args.size)


# chapters/13_command_line.py, cell 15
# Plumbing: the argparse parser, one sub-command per row of the table; you may skip it.
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="moog", description="MooG: data, training, evaluation.")
    commands = parser.add_subparsers(dest="command", required=True)

    def with_preset(p, default="cpu", budget=False):
        p.add_argument("--preset", default=default, choices=configs.PRESETS)
        p.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE",
                       help="override a config field (repeatable)")
        length = p.add_mutually_exclusive_group() if budget else p
        length.add_argument("--steps", type=int, default=None, help="stop after this many steps")
        if budget:
            length.add_argument("--minutes", type=float, default=None,
                                help="train for about this long instead: the step count (and "
                                "the schedule) follow the measured step time")

    data_cmd = commands.add_parser("data", help="datasets").add_subparsers(dest="action", required=True)
    build = data_cmd.add_parser("build", help="render clips into an array_record dataset")
    build.add_argument("--preset", default="movi_e", choices=scenes.SCENE_PRESETS)
    build.add_argument("--split", default="train", choices=scenes.DATA_SPLITS)
    build.add_argument("--num", type=int, required=True)
    build.add_argument("--resolution", type=int, default=64)
    build.add_argument("--frames", type=int, default=24)
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--data-dir", default="data")
    build.set_defaults(run=cmd_data_build)

    train_cmd = commands.add_parser("train", help="pretrain MooG")
    with_preset(train_cmd, budget=True)
    train_cmd.add_argument("--workdir", required=True)
    train_cmd.add_argument("--resume", action="store_true", help="continue the run in --workdir")
    new_run = dict(action="store_true", help="start afresh; a run already in --workdir is "
                   "moved to <workdir>.old-<time>, not deleted")
    train_cmd.add_argument("--force-new-run", **new_run)
    train_cmd.set_defaults(run=cmd_train)

    eval_cmd = commands.add_parser("eval", help="held-out metrics of a run")
    eval_cmd.add_argument("--workdir", required=True)
    eval_cmd.add_argument("--clips", type=int, default=None, help="number of held-out clips")
    eval_cmd.set_defaults(run=cmd_eval)

    report_cmd = commands.add_parser("report", help="curves, prediction video and summary.md")
    report_cmd.add_argument("--workdir", required=True)
    report_cmd.add_argument("--out", required=True)
    report_cmd.set_defaults(run=cmd_report)

    demo = commands.add_parser("demo", help="train (resuming) then write the report")
    with_preset(demo, budget=True)
    demo.add_argument("--workdir", default="runs/cpu")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--force-new-run", **new_run)
    demo.set_defaults(run=cmd_demo)

    readout_cmd = commands.add_parser(
        "eval-readouts", help="train depth, point and box readouts on a run; write the table")
    with_preset(readout_cmd, budget=True)
    readout_cmd.add_argument("--workdir", required=True, help="the pretrained MooG run")
    readout_cmd.add_argument("--out", default=None, help="default: <workdir>/readouts")
    readout_cmd.add_argument("--tasks", nargs="+", default=["depth", "points", "boxes"],
                             choices=["depth", "points", "boxes"])
    readout_cmd.add_argument("--modes", nargs="+", default=["frozen", "e2e"],
                             choices=["frozen", "e2e"])
    readout_cmd.set_defaults(run=cmd_eval_readouts)

    compare = commands.add_parser(
        "compare", help="MooG vs. the on-the-grid baselines: pretrain, readouts, one table")
    with_preset(compare, budget=True)  # --minutes: the whole comparison (compare_budget)
    compare.add_argument("--readout-steps", type=int, default=None,
                         help="steps per readout (default: the preset's; with --minutes, the "
                              "minutes are all pretraining)")
    compare.add_argument("--scenes", nargs="+", default=["static", "movi_e"],
                         choices=list(scenes.SCENE_PRESETS))
    compare.add_argument("--models", nargs="+", default=list(baselines.MODEL_KINDS),
                         choices=list(baselines.MODEL_KINDS))
    compare.add_argument("--tasks", nargs="+", default=list(comparison.COMPARE_TASKS),
                         choices=list(comparison.COMPARE_TASKS))
    compare.add_argument("--out", default=None, help="default: runs/<preset>/compare")
    compare.set_defaults(run=cmd_compare)

    track = commands.add_parser("track", help="track points with the authors' Ego4D weights")
    track.add_argument("video", help="a video file (anything FFmpeg reads)")
    track.add_argument("--ego4d-dir", required=True, help="folder with the Ego4D .npz files")
    where = track.add_mutually_exclusive_group()
    where.add_argument("--points", help="query points on the first frame, 'x,y;x,y' in pixels")
    where.add_argument("--grid", type=int, help="an N×N grid of query points (default 8)")
    track.add_argument("--out", default="tracks.mp4", help="the video to write (.mp4 or .gif)")
    track.add_argument("--max-frames", type=int, default=None)
    track.add_argument("--size", default="official", choices=ego4d.EGO4D_SIZES,
                       help="'tiny': the reduced random checkpoint of chapter 12a (tests)")
    track.set_defaults(run=cmd_track)
    return parser


# chapters/13_command_line.py, cell 19
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_counts(args)
        result = args.run(args)
    except (ValueError, FileNotFoundError) as err:  # bad input: say what is wrong, no traceback
        print(f"moog {args.command}: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result, default=str))
    return 0
