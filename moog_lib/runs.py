"""A run's folder: its config file, its metrics log and plot, and the checks before training.

`MetricsLog` appends a run's metrics as JSON lines and `plot_metrics` draws them;
`read_config` and `config_from_dict` read a run's `config.json`;
`check_config` and `check_count` refuse settings training cannot use;
`prepare_run_folder` (with `config_differences`, `move_run_aside` and
`RESUMABLE_FIELDS`) decides whether a folder may start or resume a run.

Generated from chapters/06_pretraining.py by tools/export.py; do not edit.
Edit the chapter, then run `make export`.
"""


__all__ = [
    "MetricsLog",
    "plot_metrics",
    "read_config",
    "config_from_dict",
    "RESUMABLE_FIELDS",
    "COMPUTE_DTYPES",
    "check_count",
    "check_config",
    "config_differences",
    "move_run_aside",
    "prepare_run_folder",
]


import dataclasses
import json
import math
import time
from pathlib import Path

import jax

from moog_lib import configs


# chapters/06_pretraining.py, cell 39
class MetricsLog:
    """Append-only JSON lines, one record per log or evaluation: `{"step", "split", ...}`."""

    def __init__(self, path):
        self.path = Path(path)

    def write(self, step: int, split: str, metrics: dict) -> dict:
        record = {"step": int(step), "split": split, "time": time.time()}
        record.update({k: float(v) for k, v in metrics.items()})
        if jax.process_index() == 0:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")
        return record

    def read(self, split: str | None = None) -> list[dict]:
        if not self.path.exists():
            return []
        records = [json.loads(line) for line in self.path.read_text().splitlines() if line]
        return [r for r in records if split is None or r["split"] == split]


_NOT_PLOTTED = {"step", "split", "time", "loss", "grad_norm", "learning_rate",
                "frames_per_second", "data_wait_share", "copy_psnr"}


def plot_metrics(log: MetricsLog, path=None):
    """Loss and metric curves, train and every held-out split.

    The metric panel shows PSNR with the copy-the-last-frame baseline for
    pretraining, or a readout's first metric (e.g. AbsRel) otherwise.
    """
    import matplotlib.pyplot as plt

    records = log.read()
    splits = list(dict.fromkeys(r["split"] for r in records))
    metric = "psnr" if any("psnr" in r for r in records) else next(
        (k for r in records for k in r if k not in _NOT_PLOTTED), None)
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 3.8))
    for split in splits:
        rows = log.read(split)
        steps, style = [r["step"] for r in rows], "-" if split == "train" else "o-"
        ax_loss.plot(steps, [r["loss"] for r in rows], style, label=split)
        if metric is not None:
            ax_metric.plot(steps, [r.get(metric, float("nan")) for r in rows], style,
                           label=f"model, {split}")
        if metric == "psnr":
            ax_metric.plot(steps, [r["copy_psnr"] for r in rows], style, alpha=0.5,
                           label=f"copy last frame, {split}")
    ax_loss.set(xlabel="step", ylabel="loss", yscale="log", title="loss")
    ax_metric.set(xlabel="step", ylabel=metric or "", title=metric or "")
    if metric == "psnr":
        ax_metric.set(ylabel="PSNR (dB), frames 1…T−1", title="next-frame PSNR")
    for ax in (ax_loss, ax_metric):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


# chapters/06_pretraining.py, cell 43
def read_config(workdir) -> configs.Config:
    """The config a run in `workdir` was trained with (its config.json)."""
    config_path = Path(workdir) / "config.json"
    if Path(workdir).is_file():
        raise ValueError(f"{workdir} is a file, not a run folder; pass the folder a run was "
                         "trained in")
    if not config_path.exists():
        raise ValueError(f"{workdir} has no config.json; pass the config it was trained with")
    try:
        values = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_path} is not JSON ({err.msg}, line {err.lineno} column "
                         f"{err.colno}); restore the run's config (json.dumps of "
                         "dataclasses.asdict(config))") from None
    return config_from_dict(values, source=str(config_path))


def config_from_dict(values: dict, source: str = "config") -> configs.Config:
    """Rebuild a `configs.Config` from `dataclasses.asdict` output (e.g. a run's config.json).

    A missing field takes its default (a run written before the field existed); an
    unknown field or a value of another type is a ValueError naming `source` and the
    dotted field."""
    import typing

    def value_of(kind, value, name):
        if typing.get_origin(kind) is tuple and isinstance(value, list | tuple):
            item = typing.get_args(kind)[0]
            if all(type(v) is item for v in value):
                return tuple(value)
        elif kind is float and type(value) is int:
            return float(value)
        elif type(value) is kind:
            return value
        expected = "a list of numbers" if typing.get_origin(kind) is tuple else kind.__name__
        raise ValueError(f"{source}: {name} is {value!r}; expected {expected}")

    def build(cls, fields, prefix):
        section = prefix[:-1] or "the top level"
        if not isinstance(fields, dict):
            raise ValueError(f"{source}: {section} is {fields!r}; expected a section of "
                             f"{cls.__name__} fields")
        hints = typing.get_type_hints(cls)
        unknown = [prefix + name for name in fields if name not in hints]
        if unknown:
            raise ValueError(f"{source}: unknown field {', '.join(unknown)} (a typo, or a "
                             "newer version's); remove it or correct its name")
        kwargs = {name: build(hints[name], value, f"{prefix}{name}.")
                  if dataclasses.is_dataclass(hints[name])
                  else value_of(hints[name], value, prefix + name)
                  for name, value in fields.items()}
        try:
            return cls(**kwargs)
        except TypeError as err:  # a field without a default is missing
            raise ValueError(f"{source}: {section} lacks a field ({err})") from None

    return build(configs.Config, values, "")


# chapters/06_pretraining.py, cell 47
# What may change when a run is resumed, in `train` and in the readouts' `readout.train`.
RESUMABLE_FIELDS = tuple(f"{section}.{field}" for section in ("train", "readout.train")
                         for field in ("steps", "log_every", "eval_every", "checkpoint_every",
                                       "keep_checkpoints")) + ("data.data_dir",)
COMPUTE_DTYPES = ("float32", "bfloat16")
_WAYS_OUT = ("choose another workdir, or pass --force-new-run (force_new_run=True) to move "
             "the old run to <workdir>.old-<time> and start afresh")


def check_count(name: str, value, what: str) -> None:
    """A ValueError unless `value` is a positive whole number; `what` says what it counts."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}={value!r}: expected a positive whole number ({what})")


def check_config(config: configs.Config) -> configs.Config:
    """`config`, once its counts, cadences and dtype are checked; else a ValueError
    naming the dotted field and what it expects."""
    for section, t in (("train", config.train), ("readout.train", config.readout.train)):
        for field, what in (("steps", "training steps"), ("log_every", "steps per log record"),
                            ("eval_every", "steps between evaluations"),
                            ("checkpoint_every", "steps between checkpoints"),
                            ("keep_checkpoints", "checkpoints kept")):
            check_count(f"{section}.{field}", getattr(t, field), what)
        if not 0 <= t.warmup_steps or not 0 < t.peak_learning_rate < math.inf:
            raise ValueError(f"{section}: warmup_steps={t.warmup_steps}, peak_learning_rate="
                             f"{t.peak_learning_rate}; expected warmup >= 0 and a positive rate")
    for field in ("resolution", "num_frames", "batch_size", "clip_frames", "num_clips",
                  "eval_clips"):
        check_count(f"data.{field}", getattr(config.data, field), "a count of clips, frames "
                     "or pixels")
    for field in ("token_dim", "num_tokens"):
        check_count(f"model.{field}", getattr(config.model, field), "model size")
    if config.model.compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(f"model.compute_dtype={config.model.compute_dtype!r}: expected one of "
                         f"{', '.join(map(repr, COMPUTE_DTYPES))}")
    return config


# chapters/06_pretraining.py, cell 49
def config_differences(old: configs.Config, new: configs.Config) -> dict:
    """{dotted field: (old value, new value)} for every field where `new` differs."""
    def flat(node, prefix=""):
        return {k: v for f in dataclasses.fields(node) for k, v in (
            flat(getattr(node, f.name), f"{prefix}{f.name}.").items()
            if dataclasses.is_dataclass(getattr(node, f.name))
            else [(prefix + f.name, getattr(node, f.name))])}

    a, b = flat(old), flat(new)
    return {k: (a[k], b[k]) for k in a if a[k] != b[k]}


def move_run_aside(workdir) -> Path:
    """Rename `workdir` to `<workdir>.old-<time>` (deleting nothing); returns the new name."""
    workdir = Path(workdir).absolute()
    if Path.cwd().resolve().is_relative_to(workdir.resolve()):
        raise ValueError(f"cannot move {workdir} aside while it holds the current directory; "
                         "run the command from elsewhere")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, n = workdir.with_name(f"{workdir.name}.old-{stamp}"), 1
    while target.exists():
        target, n = workdir.with_name(f"{workdir.name}.old-{stamp}-{n}"), n + 1
    if jax.process_index() == 0:
        workdir.rename(target)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("moog: old run moved aside")
    return target


# chapters/06_pretraining.py, cell 51
def prepare_run_folder(config: configs.Config, workdir, *, resume: bool,
                       force_new_run: bool = False) -> Path:
    """`workdir` as a Path, once it may take this run; writes nothing except with
    `force_new_run`, which moves a run already there aside (`move_run_aside`).

    A folder holds a run when it has a config.json or checkpoints. Resuming needs
    its config to equal `config` except for `RESUMABLE_FIELDS`; a fresh run needs
    a folder without a run. Otherwise a one-line ValueError names the differing
    fields (old → new) and the ways out.
    """
    workdir = Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise ValueError(f"workdir {workdir} is a file; pass a folder (created if missing)")
    checkpoint_dir = workdir / "checkpoints"
    saved = sorted(p.name for p in checkpoint_dir.iterdir()) if checkpoint_dir.is_dir() else []
    if not saved and not (workdir / "config.json").exists():
        return workdir
    if force_new_run:
        print(f"moved the run in {workdir} to {move_run_aside(workdir)}; starting afresh")
        return workdir
    if not resume:
        raise ValueError(f"{workdir} already holds a run (checkpoints: {', '.join(saved) or 'none'}"
                         f"); pass --resume (resume=True) to continue it, or {_WAYS_OUT}")
    if not (workdir / "config.json").exists():
        raise ValueError(f"{workdir} holds checkpoints but no config.json to check them "
                         f"against; {_WAYS_OUT}")
    differences = {k: v for k, v in config_differences(read_config(workdir), config).items()
                   if k not in RESUMABLE_FIELDS}
    if differences:
        shown = [f"{k} {old!r} → {new!r}" for k, (old, new) in differences.items()]
        if len(shown) > 6:
            shown = shown[:6] + [f"and {len(shown) - 6} more"]
        raise ValueError(f"{workdir} holds a run of another config ({'; '.join(shown)}); to "
                         f"resume it pass the config it was trained with, or {_WAYS_OUT}")
    return workdir
