"""What happens when… a person hands MooG something wrong (issue 18).

Each case is one row of a "What happens when…" table: `when` (what the person
does), the docstring (what used to happen), `expect` (a piece of what they now
see) and a `setup(tmp_path, run)` that returns a `Probe`: the `moog` arguments
to run in-process through `cli.main`, or a library call that must raise
ValueError, plus an optional check afterwards (e.g. that the old checkpoints
are byte-intact). `run` is a copy of a finished 2-step tiny run, made only for
cases that ask for it. CLI cases must exit with `exit_code` (2 for bad input)
and, when refused, print exactly one line on stderr, with no traceback.
`python tests/test_bad_inputs.py` prints the table as Markdown.

Add a case with `@case(...)` on a setup function; nothing else needs to change.
"""

import dataclasses
import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from moog_lib import cli, configs, train

TINY = configs.get("tiny")


@dataclasses.dataclass(frozen=True)
class Probe:
    argv: list[str] | None = None  # run `moog <argv>` through cli.main
    call: Callable[[], object] | None = None  # or call this; it must raise ValueError
    after: Callable[[], None] | None = None  # then check this (e.g. nothing was lost)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    when: str
    expect: str
    setup: Callable[[Path, Path | None], Probe]
    needs_run: bool = False
    exit_code: int = 2

    @property
    def before(self) -> str:
        return " ".join((self.setup.__doc__ or "").split())


CASES: list[Case] = []


def case(when: str, expect: str, *, needs_run: bool = False, exit_code: int = 2):
    """Register `setup` as the case "when `when`, the person sees `expect`"."""

    def register(setup):
        CASES.append(Case(setup.__name__, when, expect, setup, needs_run, exit_code))
        return setup

    return register


def train_argv(workdir, *more: str) -> list[str]:
    return ["train", "--preset", "tiny", "--workdir", str(workdir), "--steps", "2", *more]


def file_bytes(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def unchanged(folder: Path) -> Callable[[], None]:
    """A check that every file of `folder` (checkpoints, config.json) is byte-for-byte as now."""
    before = file_bytes(folder)

    def check():
        assert file_bytes(folder) == before, "the old run was changed"

    return check


def edit_config(run: Path, edit: Callable[[dict], None] | None = None, text: str | None = None):
    path = run / "config.json"
    if text is None:
        values = json.loads(path.read_text())
        edit(values)
        text = json.dumps(values)
    path.write_text(text)


# --- A run folder belongs to one run ---------------------------------------------------------

@case("`moog train --resume --set model.token_dim=48` on a run trained with another config",
      "holds a run of another config (model.token_dim 32 → 48)", needs_run=True)
def resume_with_another_config(tmp_path, run):
    """Exited 0, restarted from scratch in the same folder, overwrote config.json, and
    checkpoint rotation deleted the old run's checkpoints."""
    return Probe(argv=train_argv(run, "--resume", "--set", "model.token_dim=48"),
                 after=unchanged(run))


@case("`moog train` (no `--resume`) in a folder that already holds a run",
      "already holds a run (checkpoints: 2); pass --resume", needs_run=True)
def fresh_run_over_a_run(tmp_path, run):
    """Refused only if checkpoints/ was non-empty, with exit code 1; the library's `fit`
    (resume=False) silently overwrote the old run."""
    return Probe(argv=train_argv(run), after=unchanged(run))


@case("`train.fit(..., resume=True)` with another config on a finished run",
      "holds a run of another config (model.token_dim 32 → 48)", needs_run=True)
def library_resume_with_another_config(tmp_path, run):
    """As on the command line: restarted from scratch and rotated the old checkpoints away."""
    other = configs.override(TINY, ["model.token_dim=48"])
    return Probe(call=lambda: train.train(other, run, steps=4, progress=False),
                 after=unchanged(run))


@case("`moog train --force-new-run --set model.token_dim=48` on a finished run",
      "starting afresh", needs_run=True, exit_code=0)
def force_new_run_moves_the_old_run_aside(tmp_path, run):
    """There was no way to start over except deleting the folder by hand."""
    old = file_bytes(run)

    def moved_aside():
        [aside] = run.parent.glob(f"{run.name}.old-*")
        assert file_bytes(aside) == old  # the old run, whole, under its new name
        assert train.read_config(run).model.token_dim == 48
        assert (run / "checkpoints" / "2").is_dir()

    return Probe(argv=train_argv(run, "--force-new-run", "--set", "model.token_dim=48"),
                 after=moved_aside)


# --- Values checked where they are handed over -----------------------------------------------

@case("`moog train --steps -5`", "--steps -5: expected a positive whole number")
def negative_steps(tmp_path, run):
    """Exited 0 having trained nothing."""
    return Probe(argv=train_argv(tmp_path / "run", "--steps", "-5"))


@case("`moog train --minutes 0`", "--minutes 0.0: expected a positive number of minutes")
def zero_minutes(tmp_path, run):
    """There was no budget: a run took `train.steps` steps however long each one took."""
    return Probe(argv=["train", "--preset", "tiny", "--workdir", str(tmp_path / "run"),
                       "--minutes", "0"])


@case("`train.train(config, workdir, steps=-5)`", "steps=-5: expected a positive whole number")
def library_negative_steps(tmp_path, run):
    """Returned at step 0 having trained nothing."""
    return Probe(call=lambda: train.train(TINY, tmp_path / "run", steps=-5, progress=False))


@case("`moog train --set train.checkpoint_every=0`",
      "train.checkpoint_every=0: expected a positive whole number")
def zero_checkpoint_cadence(tmp_path, run):
    """ZeroDivisionError (a traceback) after the first step."""
    return Probe(argv=train_argv(tmp_path / "run", "--set", "train.checkpoint_every=0"))


@case("`moog train --set model.compute_dtype=foo`",
      "model.compute_dtype='foo': expected one of 'float32', 'bfloat16'")
def unknown_compute_dtype(tmp_path, run):
    """TypeError from deep inside the model's constructor (a traceback)."""
    return Probe(argv=train_argv(tmp_path / "run", "--set", "model.compute_dtype=foo"))


@case("`train.check_config` on a config with `data.eval_clips=0`",
      "data.eval_clips=0: expected a positive whole number")
def library_zero_eval_clips(tmp_path, run):
    """The renderer refused `num=0`, a name the person never used."""
    return Probe(call=lambda: train.check_config(configs.override(TINY, ["data.eval_clips=0"])))


@case("`moog train --workdir FILE` (a file, not a folder)", "is a file; pass a folder")
def workdir_is_a_file(tmp_path, run):
    """FileExistsError (a traceback) from mkdir."""
    (tmp_path / "notes.txt").write_text("not a run")
    return Probe(argv=train_argv(tmp_path / "notes.txt"))


@case("`moog eval --workdir FILE` (a file, not a folder)", "is a file, not a run folder")
def eval_workdir_is_a_file(tmp_path, run):
    """Said the file "has no config.json"."""
    (tmp_path / "notes.txt").write_text("not a run")
    return Probe(argv=["eval", "--workdir", str(tmp_path / "notes.txt")])


@case("`moog eval --clips 0`", "--clips 0: expected a positive whole number", needs_run=True)
def zero_eval_clips(tmp_path, run):
    """A ValueError about `num`, an argument the person never gave."""
    return Probe(argv=["eval", "--workdir", str(run), "--clips", "0"])


@case("a run's `config.json` hand-edited into something that is not JSON",
      "config.json is not JSON (Expecting", needs_run=True)
def config_json_not_json(tmp_path, run):
    """JSON's own message ("Expecting property name …: line 1 column 2"), without naming
    the file."""
    edit_config(run, text="{model: 32")
    return Probe(argv=["eval", "--workdir", str(run)])


@case("a run's `config.json` with an unknown key (`model.tokens_dim`)",
      "config.json: unknown field model.tokens_dim", needs_run=True)
def config_json_unknown_key(tmp_path, run):
    """The key was silently dropped."""
    edit_config(run, lambda values: values["model"].update(tokens_dim=48))
    return Probe(argv=["eval", "--workdir", str(run)])


@case("a run's `config.json` with a field of the wrong type (`model.encoder_features: 5`)",
      "config.json: model.encoder_features is 5; expected a list of numbers", needs_run=True)
def config_json_wrong_type(tmp_path, run):
    """A TypeError (a traceback) while building the model."""
    edit_config(run, lambda values: values["model"].update(encoder_features=5))
    return Probe(argv=["eval", "--workdir", str(run)])


@case("a run's `config.json` edited to a shape its checkpoints do not have (`token_dim`)",
      "(steps 2) fits this model", needs_run=True)
def config_json_wrong_shape(tmp_path, run):
    """Reported as "no readable checkpoint; train first", exit code 1."""
    edit_config(run, lambda values: values["model"].update(token_dim=48))
    return Probe(argv=["eval", "--workdir", str(run)])


@case("`train.read_config` on a folder whose `config.json` is not JSON",
      "config.json is not JSON", needs_run=True)
def library_config_json_not_json(tmp_path, run):
    """json.JSONDecodeError without the file's name."""
    edit_config(run, text="")
    return Probe(call=lambda: train.read_config(run))


# --- Running the cases --------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished tiny run of 2 steps (checkpoint at step 2); cases get their own copy."""
    run = tmp_path_factory.mktemp("finished") / "run"
    train.train(configs.override(TINY, ["train.steps=2"]), run, progress=False)
    return run


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_what_happens_when(case, tmp_path, request, capsys):
    run = None
    if case.needs_run:
        run = tmp_path / "run"
        shutil.copytree(request.getfixturevalue("finished_run"), run)
    probe = case.setup(tmp_path, run)
    if probe.argv is not None:
        capsys.readouterr()
        code = cli.main(probe.argv)
        out, err = capsys.readouterr()
        assert code == case.exit_code, (code, err)
        said = err if code else out
        assert case.expect in said, said
        if code:
            assert err.count("\n") == 1 and "Traceback" not in err, err
    else:
        with pytest.raises(ValueError, match=re.escape(case.expect)):
            probe.call()
    if probe.after is not None:
        probe.after()


def markdown_table() -> str:
    """The "What happens when…" table: one row per case."""
    rows = ["| when | before | now |", "|---|---|---|"]
    rows += [f"| {c.when} | {c.before} | {'exit 0: ' if c.exit_code == 0 else ''}"
             f"`…{c.expect}…` |" for c in CASES]
    return "\n".join(rows)


def test_every_case_has_a_row():
    table = markdown_table()
    assert len(table.splitlines()) == len(CASES) + 2
    assert all(c.before for c in CASES), "each case says, in its docstring, what used to happen"


def test_the_readme_shows_this_table():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert markdown_table() in readme, "regenerate with: python tests/test_bad_inputs.py"


if __name__ == "__main__":
    sys.stdout.write(markdown_table() + "\n")
