# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 13 — The command line
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/moog-tutorial/moog-tutorial/blob/main/notebooks/13_command_line.ipynb)
#
# **What you will learn.** Everything the chapters build is also a command,
# `moog`, installed with the package: build a dataset, train, evaluate, write a
# report, or do all of it with `moog demo` (what `make demo` runs). This chapter
# is the command's source and its manual.
#
# **Prerequisites.** Chapters 05–05c (data) and 06–06a (pretraining).
#
# **Runtime.**
#
# | preset | hardware | this chapter |
# |---|---|---|
# | `tiny` | CI, 2 CPU cores | 61 s (nbval in `make test` on a clean clone, two workers, nothing else running; 2026-12-03) |
# | `colab` | Colab TPU v5e-1 | estimate ≈ 10 min: ≈ 9 compilations (assumed ≈ 1 min each) for two short runs (4 and 2 steps), their evaluation, report and checks, and ≈ 350 clips rendered at 128² (≈ 1 min); not measured on a TPU |

# %%
# Setup, the same in every chapter (chapter 00, section 5, explains it). On Colab:
# install this repository, keeping the jax, jaxlib, libtpu and flax Colab ships.
# Then `notebook.setup()` sets XLA flags before JAX starts, picks the preset
# (MOOG_PRESET; `colab` on a TPU, else `tiny`) and prints what runs.
import subprocess
import sys

REPOSITORY = "https://github.com/moog-tutorial/moog-tutorial"
if "google.colab" in sys.modules:
    pip = f"{sys.executable} -m pip"
    subprocess.run(f"{pip} freeze | grep -iE '^(jax|jaxlib|libtpu|flax)==' > /tmp/keep.txt && "
                   f"{pip} install -q -c /tmp/keep.txt 'moog-tutorial[video] @ git+{REPOSITORY}@main'",
                   shell=True, check=True)
from moog_lib import configs, notebook

PRESET = notebook.setup()

# %%
#| default_exp cli

# %% [markdown]
# ## 1. The commands
#
# | command | does |
# |---|---|
# | `moog data build --preset movi_e --split train --num 2000 --resolution 64` | render clips into an `array_record` dataset (both cores, resumable) |
# | `moog train --preset cpu --workdir runs/cpu [--steps N \| --minutes M] [--resume] [--force-new-run] [--set field=value …]` | pretrain; `--minutes` sets the step count (and the schedule) from the measured step time (chapter 06a §2), `--resume` continues a run of the same config (chapter 06 §7 lists what may change), `--force-new-run` moves a run already there aside |
# | `moog eval --workdir runs/cpu` | held-out next-frame PSNR and the copy-the-previous-frame PSNR, as JSON |
# | `moog report --workdir runs/cpu --out runs/demo` | curves, a prediction video and `summary.md`, and chapters 11 and 11a's figures with `report.html` |
# | `moog demo --preset cpu` | train (resuming if the run exists), then the report, then three checks on held-out clips appended to `summary.md`: PSNR above copying the previous frame, token following F ≥ 0.5, attention sharpness ≥ 0.3 (`demo_checks`), and on the `cpu` preset the shipped model's numbers on the same clips |
# | `moog eval-readouts --preset cpu --workdir runs/cpu [--tasks depth points boxes] [--modes frozen e2e] [--minutes M]` | train every readout on a run, frozen and end to end (`--minutes`: the budget of each), and write `readouts/results.md` (chapters 07–09) |
# | `moog compare --preset cpu [--steps N \| --minutes M] [--readout-steps N] [--scenes static movi_e]` | pretrain MooG, Grid and Grid Rec. alike (for the same steps, or the same minutes: `--minutes` alone also times the readouts), train frozen readouts on each and write `runs/<preset>/compare/results.md` (chapter 10a) |
# | `moog track video.mp4 --ego4d-dir DIR [--points 'x,y;x,y' \| --grid N] [--out tracks.mp4]` | track points with the authors' Ego4D weights (chapter 12b) and draw them into a video |
#
# `--set` takes the dotted overrides of chapter 00, e.g.
# `--set model.num_tokens=32 --set train.peak_learning_rate=1e-3`.

# %%
#| export
"""The `moog` command.

One function per subcommand (`data build`, `train`, `eval`, `report`, `demo`,
`eval-readouts`, `compare`, `track`), the argument parser (`build_parser`)
and `main`.
"""
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


# %% [markdown]
# Every command reads its settings from the parsed arguments: `_config` builds
# the preset with its `--set` overrides (chapter 00), and `_check_counts`
# refuses a count that is not positive before anything runs:

# %%
for bad in (argparse.Namespace(steps=0), argparse.Namespace(minutes=float("inf"))):
    try:
        _check_counts(bad)
    except ValueError as err:
        print("refused:", err)
    else:
        raise AssertionError(f"{bad} was accepted")
_check_counts(argparse.Namespace(steps=4, minutes=0.5, grid=None))

# %% [markdown]
# A command is a function of the parsed arguments that returns a dict, printed
# as JSON. The first four call chapters 05c and 06: build a dataset, train,
# evaluate a run's newest checkpoint, write its report (with chapter 11's
# figures).

# %%
#| export
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


# %% [markdown]
# `moog demo` is training (resumed if the run exists), the report, and
# `demo_checks`: three numbers on held-out clips that say whether the model
# works (§2 runs them).

# %%
#| export
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


# %% [markdown]
# The last three commands call later chapters: the readout table of chapters
# 07–09, chapter 10's comparison with the on-the-grid baselines, and chapter
# 12's tracker with the authors' weights.

# %%
#| export
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

# %% [markdown]
# The parser: one sub-command per row of the table. Every command prints its
# result as one line of JSON, so scripts can read it.

# %%
#| export
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


# %% [markdown]
# Each sub-command stores its function as `run`; `--steps` and `--minutes`
# exclude each other.

# %%
import contextlib
import io

parsed = build_parser().parse_args(["train", "--workdir", "runs/x", "--minutes", "2"])
assert parsed.run is cmd_train and parsed.preset == "cpu"
assert parsed.minutes == 2.0 and parsed.steps is None
said = io.StringIO()
with contextlib.redirect_stderr(said), contextlib.suppress(SystemExit):
    build_parser().parse_args(["train", "--workdir", "runs/x", "--steps", "5", "--minutes", "2"])
print(said.getvalue().splitlines()[-1])
assert "not allowed with argument" in said.getvalue()

# %% [markdown]
# `main` parses, checks the counts, runs the command and prints its result as
# one line of JSON; what bad input gets instead is shown at the end of §2.

# %%
#| export
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

# %% [markdown]
# ## 2. Trying it
#
# The commands are ordinary functions, so the chapter can call `main` directly.
# On the session's preset: a short run, its evaluation and its report.

# %%
import tempfile

scratch = Path(tempfile.mkdtemp())
assert main(["train", "--preset", PRESET, "--workdir", str(scratch / "run"), "--steps", "4",
             "--set", "train.log_every=2", "--set", "train.eval_every=4"]) == 0
assert main(["eval", "--workdir", str(scratch / "run")]) == 0
assert main(["report", "--workdir", str(scratch / "run"), "--out", str(scratch / "report")]) == 0
assert (scratch / "report" / "predictions.gif").stat().st_size > 0

# %% [markdown]
# `moog demo` ends with `demo_checks`: the three numbers that say whether the
# model works, appended to `summary.md` (a 4-step run passes none of them),
# with the F that perfect binding scores on the same clips beside the model's
# (chapter 10a, §2: on the `cpu` preset's clips and grid it is about 0, not 1).
# A run with the shipped model's architecture (the `cpu` preset) also gets the
# shipped model's numbers on the same clips — what the same recipe reaches
# when trained five times longer:

# %%
checks = demo_checks(scratch / "run", scratch / "report")
assert len(checks["checks"]) == 3 and 0.0 <= checks["sharpness"] <= 1.0
assert (checks["shipped"] is None) == (PRESET != "cpu")
summary = (scratch / "report" / "summary.md").read_text()
assert "Does it work?" in summary and "perfect binding" in summary

# %% [markdown]
# Bad input gets a one-line message and exit code 2, not a traceback: values are
# checked where they are given (`_check_counts`, `runs.check_config`), and a run
# folder takes no second run (chapter 06's `prepare_run_folder`), neither a fresh
# one nor a resumed one of another config; `--force-new-run` moves the old run
# aside instead. `tests/test_bad_inputs.py` runs every such case.

# %%
import contextlib
import io

for argv in (["--set", "model.num_tokens=many"], ["--set", "train.checkpoint_every=0"],
             ["--steps", "-5"], ["--resume", "--set", "model.token_dim=48"], []):
    said = io.StringIO()
    with contextlib.redirect_stderr(said):
        code = main(["train", "--preset", PRESET, "--workdir", str(scratch / "run"),
                     "--steps", "4", *argv])
    print(code, said.getvalue(), end="")
    assert code == 2 and said.getvalue().count("\n") == 1
assert runs.read_config(scratch / "run") == configs.override(  # the run is untouched
    configs.get(PRESET), ["train.log_every=2", "train.eval_every=4"])

# %% [markdown]
# ## Summary
#
# - `moog` wraps the library: `data build`, `train`, `eval`, `report`, `demo`.
# - Runs live in a work directory, one run each; `--resume` (and `moog demo`,
#   always) continues from its newest readable checkpoint if the config matches,
#   and `--force-new-run` moves an old run aside rather than deleting it.
# - Config fields change with `--set section.field=value`.
#
# ## Exercises
#
# 1. ★ Print the help of `moog train` and list its options.
# 2. ★★ Train the session's preset with half the tokens for 2 steps using only
#    `main([...])`, and read `num_tokens` back from the run's `config.json`.
# 3. ★★ Write a shell loop that trains three seeds of the `cpu` preset into
#    `runs/seed_N` (do not run it here; print it), and say why each run needs its
#    own `--workdir`.

# %% [markdown]
# ### Solution 1

# %%
import contextlib
import io

text = io.StringIO()
with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
    main(["train", "--help"])
print(text.getvalue())
assert "--resume" in text.getvalue() and "--set" in text.getvalue()

# %% [markdown]
# ### Solution 2

# %%
half = configs.get(PRESET).model.num_tokens // 2
assert main(["train", "--preset", PRESET, "--workdir", str(scratch / "half"), "--steps", "2",
             "--set", f"model.num_tokens={half}"]) == 0
saved = json.loads((scratch / "half" / "config.json").read_text())
assert saved["model"]["num_tokens"] == half
print("trained with", half, "tokens")

# %% [markdown]
# ### Solution 3

# %%
loop = "\n".join(
    f"moog train --preset cpu --workdir runs/seed_{seed} --set train.seed={seed}" for seed in range(3)
)
print(loop)
# Each run keeps its checkpoints, metrics and config in its work directory: two runs
# sharing one would resume from (and overwrite) each other's checkpoints.
assert loop.count("--workdir runs/seed_") == 3

# %% [markdown]
# ## References
#
# - Python documentation: `argparse`.
# - Chapter 06a for what `train` does; chapter 05c for `data build`.
