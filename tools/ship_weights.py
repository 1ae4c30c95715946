"""Turn a finished training run into the weights this repository ships (moog_lib/trained/).

    python tools/ship_weights.py backbone --workdir runs/cpu --name cpu_moog \
        --command "moog train --preset cpu --workdir runs/cpu"
    python tools/ship_weights.py readout --task points --workdir runs/cpu/readouts/points_frozen \
        --name cpu_points --backbone cpu_moog --command "moog eval-readouts ..."

`backbone` loads the newest checkpoint of a MooG run (`train.load_trained`), scores it on
the first `--clips` test-split clips of its config (`comparison.token_following`) and writes
`<out>/<name>.npz/.json` with `checkpoint.save_weights`. `readout` does the same for the head of
a *frozen* readout run, trained on the MooG already shipped as `--backbone` (checked: the
run's backbone parameters must equal the shipped ones bit for bit), scored with
`readouts.evaluate_readout` beside the task's trivial baseline. Run from the repository
root (a preset's `data_dir` is relative to it).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
from pathlib import Path

import flax
import jax
import numpy as np
from flax import nnx

import moog_lib
from moog_lib import boxes, checkpoint, comparison, data, readouts, runs, train


class FirstClips(data.ClipSource):
    """Clips 0 … n−1 of `source`: the held-out clips the manifest names."""

    def __init__(self, source, n: int):
        self.source, self.n = source, min(n, len(source))

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return self.source[index]


def run_record(workdir: Path, config) -> dict:
    """Steps and times of a run, from its checkpoints and metrics.jsonl.

    Each train record holds the frames per second of its logging window, so the window
    lasted steps × batch × frames / fps seconds (data, steps and the first compilation;
    not evaluations or checkpoints). `training_seconds` sums the windows;
    `wall_time_seconds` runs from the start of the first window to the last record, and
    includes evaluations, checkpoints and any pause before a resumption.
    """
    checkpoints = checkpoint.Checkpointer(workdir / "checkpoints")
    steps = checkpoints.steps()
    checkpoints.close()
    records = runs.MetricsLog(workdir / "metrics.jsonl").read("train")
    frames = config.data.batch_size * config.data.num_frames
    every, previous, windows = config.train.log_every, 0, []
    for r in records:
        done = r["step"] - previous if 0 < r["step"] - previous <= every else min(r["step"], every)
        windows.append(done * frames / r["frames_per_second"])
        previous = r["step"]
    return {"steps": steps[-1] if steps else None,
            "training_seconds": round(sum(windows), 1) if records else None,
            "wall_time_seconds": round(records[-1]["time"] - records[0]["time"] + windows[0], 1)
            if records else None}


def held_out_record(config, clips: int) -> tuple[dict, FirstClips, object]:
    train_source, eval_source = train.make_sources(config, progress=True)
    first = FirstClips(eval_source, clips)
    d = config.data
    record = {"split": "test", "scene_preset": d.scene_preset, "resolution": d.resolution,
              "seed": config.train.seed, "num_clips": len(first), "clips": list(range(len(first)))}
    return record, first, train_source


def common(args, config) -> dict:
    # The shipped config renders its clips in memory (data_dir ""): the same clips, bit for
    # bit, as a dataset built with `moog data build`, and no path of the training machine.
    portable = dataclasses.replace(config, data=dataclasses.replace(config.data, data_dir=""))
    return {"name": args.name, "config": dataclasses.asdict(portable), "command": args.command,
            "run": str(args.workdir),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "versions": {"jax": jax.__version__, "flax": flax.__version__,
                         "numpy": np.__version__, "moog_lib": moog_lib.__version__}}


def ship_backbone(args) -> dict:
    loaded = train.load_trained(args.workdir)
    if loaded is None:
        sys.exit(f"{args.workdir} has no readable checkpoint")
    model, config = loaded
    held_out, first, _ = held_out_record(config, args.clips)
    batches = train.held_out_batches(first, config, keys=("video", "target_points", "occluded",
                                                          "point_valid"))
    held_out.update(num_frames=config.data.num_frames,
                    metrics=comparison.token_following(model, batches))
    manifest = {"kind": "moog", **common(args, config), **run_record(args.workdir, config),
                "held_out": held_out}
    return model, manifest


def ship_readout(args) -> dict:
    tasks = {**boxes.READOUT_TASKS, "boxes": boxes.BOXES}
    task = tasks[args.task]
    backbone, backbone_config, _ = train.load_tutorial_model(args.backbone, directory=args.out)
    config = runs.read_config(args.workdir)
    if config.model != backbone_config.model:
        sys.exit(f"{args.workdir} was trained on another model config than {args.backbone}")
    template, tx = readouts.build_readout(task, config, train.load_tutorial_model(
        args.backbone, directory=args.out)[0], frozen=True)
    readout_model = train.restore_model(template, tx, args.workdir / "checkpoints")
    if readout_model is None:
        sys.exit(f"{args.workdir} has no checkpoint readable as a frozen {task.name} readout")
    ours, theirs = (jax.tree.leaves(jax.device_get(nnx.state(m, nnx.Param)))
                    for m in (readout_model.backbone, backbone))
    if len(ours) != len(theirs) or not all(np.array_equal(a, b) for a, b in zip(ours, theirs)):
        sys.exit(f"the backbone in {args.workdir} is not the shipped {args.backbone}: "
                 "train the readout frozen on that model")
    held_out, first, train_source = held_out_record(config, args.clips)
    scores = readouts.evaluate_readout(task, config, None, args.workdir, frozen=True,
                                       sources=(train_source, first), backbone=backbone)
    held_out.update(num_frames=config.data.num_frames, long_num_frames=config.data.clip_frames,
                    metric=task.metric, higher_is_better=task.higher_is_better, metrics=scores)
    manifest = {"kind": "readout", "task": task.name, "backbone": args.backbone, "frozen": True,
                "stored": "head", **common(args, config), **run_record(args.workdir, config),
                "held_out": held_out}
    return readout_model.head, manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("backbone", "readout"))
    parser.add_argument("--workdir", type=Path, required=True, help="the finished run")
    parser.add_argument("--name", required=True, help="file stem, e.g. cpu_moog or cpu_points")
    parser.add_argument("--command", required=True, help="the command that trained the run")
    parser.add_argument("--clips", type=int, default=8, help="held-out test clips to score")
    parser.add_argument("--task", choices=("depth", "points", "boxes"), help="readout only")
    parser.add_argument("--backbone", default="cpu_moog", help="readout only: the shipped MooG")
    parser.add_argument("--out", type=Path, default=train.TRAINED_DIR)
    args = parser.parse_args(argv)
    if args.kind == "readout" and args.task is None:
        parser.error("readout needs --task")
    module, manifest = ship_backbone(args) if args.kind == "backbone" else ship_readout(args)
    path = checkpoint.save_weights(module, args.out / args.name, manifest=manifest)
    written = json.loads(path.with_suffix(".json").read_text())
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, {written['parameters']:,} "
          f"parameters) and {path.with_suffix('.json').name}")
    print(json.dumps(manifest["held_out"]["metrics"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
