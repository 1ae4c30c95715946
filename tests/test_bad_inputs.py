"""What happens when… a person hands MooG something wrong (issue 18).

Each case is one row of a "What happens when…" table: `when` (what the person
does), the docstring (what used to happen), `expect` (a piece of what they now
see) and a `setup(tmp_path, run)` that returns a `Probe`: the `moog` arguments
to run in-process through `cli.main`, or a library call that must raise
ValueError (or, where the function's signature declares the shape or dtype,
jaxtyping.TypeCheckError naming the argument), plus an optional check afterwards (e.g. that the old checkpoints
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

import jaxtyping
import numpy as np
import pytest

from moog_lib import (
    boxes,
    cli,
    configs,
    data,
    ego4d,
    points,
    release,
    render,
    runs,
    tracking,
    train,
)

TINY = configs.get("tiny")


@dataclasses.dataclass(frozen=True)
class Probe:
    argv: list[str] | None = None  # run `moog <argv>` through cli.main
    call: Callable[[], object] | None = None  # or call this; it must raise ValueError
    # (or the TypeCheckError of a declared shape or dtype)
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
        assert runs.read_config(run).model.token_dim == 48
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


@case("`runs.check_config` on a config with `data.eval_clips=0`",
      "data.eval_clips=0: expected a positive whole number")
def library_zero_eval_clips(tmp_path, run):
    """The renderer refused `num=0`, a name the person never used."""
    return Probe(call=lambda: runs.check_config(configs.override(TINY, ["data.eval_clips=0"])))


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


@case("`runs.read_config` on a folder whose `config.json` is not JSON",
      "config.json is not JSON", needs_run=True)
def library_config_json_not_json(tmp_path, run):
    """json.JSONDecodeError without the file's name."""
    edit_config(run, text="")
    return Probe(call=lambda: runs.read_config(run))


# --- Files, videos, points and boxes handed to the library ------------------------------------

TINY_EGO4D = ego4d.ego4d_config("tiny")


def tiny_ego4d_files(folder: Path) -> dict:
    """The three Ego4D files at tiny widths (random weights, the authors' layout)."""
    return release.write_random_ego4d(folder, TINY_EGO4D, seed=0)


def tiny_ego4d(folder: Path) -> release.Ego4DModels:
    return release.load_ego4d(**tiny_ego4d_files(folder), config=TINY_EGO4D)


def still_video(num_frames: int = 3, size: int = 32) -> np.ndarray:
    return np.zeros((num_frames, size, size, 3), np.uint8)


@case("an Ego4D `.npz` with a NaN weight, loaded by `release.load_ego4d`",
      "entry 'attention_readout/Dense_0/bias' must be finite, but 1 value is NaN")
def ego4d_nan_weight(tmp_path, run):
    """Loaded without a word; every track then came out NaN."""
    files = tiny_ego4d_files(tmp_path)
    head = dict(np.load(files["point_head_npz"]))
    head["attention_readout/Dense_0/bias"][3] = np.nan
    np.savez(files["point_head_npz"], **head)
    return Probe(call=lambda: release.load_ego4d(**files, config=TINY_EGO4D))


@case("a truncated Ego4D `.npz` (an interrupted download)",
      "is damaged or truncated (File is not a zip file); download it again")
def ego4d_truncated(tmp_path, run):
    """zipfile.BadZipFile (a traceback)."""
    files = tiny_ego4d_files(tmp_path)
    whole = Path(files["backbone_npz"]).read_bytes()
    Path(files["backbone_npz"]).write_bytes(whole[:len(whole) // 2])
    return Probe(call=lambda: release.load_ego4d(**files, config=TINY_EGO4D))


@case("a text file named like an Ego4D `.npz`", "is not an .npz archive (it begins with b'<html")
def ego4d_text_file(tmp_path, run):
    """A ValueError saying the file holds pickled data and suggesting `allow_pickle=True`
    (wrong, and unsafe)."""
    files = tiny_ego4d_files(tmp_path)
    Path(files["backbone_npz"]).write_text("<html>Not Found</html>\n")
    return Probe(call=lambda: release.load_ego4d(**files, config=TINY_EGO4D))


@case("`release.download_ego4d` served a web page instead of a checkpoint",
      "found something else: the backbone checkpoint")
def ego4d_download_web_page(tmp_path, run):
    """The page was saved under the checkpoint's name and returned as a checkpoint; only
    `load_ego4d` refused it later, and the page stayed in place."""
    served = tmp_path / "served"
    tiny_ego4d_files(served)
    (served / release.EGO4D_FILES["backbone_npz"]).write_text("<html>Not Found</html>\n")
    target = tmp_path / "downloads" / release.EGO4D_FILES["backbone_npz"]

    def moved_aside():
        assert not target.exists() and target.with_name(target.name + ".bad").is_file()

    return Probe(call=lambda: release.download_ego4d(tmp_path / "downloads",
                                                     base_url=served.as_uri() + "/",
                                                     config=TINY_EGO4D),
                 after=moved_aside)


def shipped_copy(tmp_path: Path, damage: Callable[[Path], None]) -> Path:
    for suffix in (".npz", ".json"):
        shutil.copy(train.TRAINED_DIR / f"cpu_moog{suffix}", tmp_path / f"cpu_moog{suffix}")
    damage(tmp_path / "cpu_moog.npz")
    return tmp_path


@case("shipped weights whose `.npz` is truncated (`train.load_tutorial_model`)",
      "recorded in cpu_moog.json: the file is damaged or belongs to other weights")
def shipped_weights_truncated(tmp_path, run):
    """Already refused (the SHA-256 in the manifest differs); registered here."""
    folder = shipped_copy(tmp_path, lambda npz: npz.write_bytes(npz.read_bytes()[:1000]))
    return Probe(call=lambda: train.load_tutorial_model("cpu_moog", directory=folder))


@case("a text file named like shipped weights (`cpu_moog.npz`)",
      "recorded in cpu_moog.json: the file is damaged or belongs to other weights")
def shipped_weights_text_file(tmp_path, run):
    """Already refused (the SHA-256 in the manifest differs); registered here."""
    folder = shipped_copy(tmp_path, lambda npz: npz.write_text("not weights\n"))
    return Probe(call=lambda: train.load_tutorial_model("cpu_moog", directory=folder))


def track_argv(tmp_path: Path, points_text: str) -> list[str]:
    """`moog track` on a real little video with tiny weights, asking for `points_text`."""
    import imageio_ffmpeg
    import mediapy

    mediapy.set_ffmpeg(imageio_ffmpeg.get_ffmpeg_exe())
    mediapy.write_video(tmp_path / "clip.mp4", still_video(8, 48), fps=10)
    tiny_ego4d_files(tmp_path / "ego4d")
    return ["track", str(tmp_path / "clip.mp4"), "--ego4d-dir", str(tmp_path / "ego4d"),
            "--size", "tiny", "--points", points_text, "--out", str(tmp_path / "out.mp4")]


@case('`moog track VIDEO --points "nan,5"`',
      "points 'nan,5' must be finite, but 1 value is NaN or Inf")
def track_nan_point(tmp_path, run):
    """Accepted after decoding the whole video and loading the weights; the track was NaN."""
    return Probe(argv=track_argv(tmp_path, "nan,5"))


@case('`moog track VIDEO --points "1,2;3"` (a malformed point list)',
      "points must look like 'x,y;x,y'")
def track_malformed_points(tmp_path, run):
    """Refused, but only after the whole video had been decoded: the points were parsed
    last."""
    return Probe(argv=track_argv(tmp_path, "1,2;3"))


@case("`tracking.parse_points(\"nan,5\")`", "points 'nan,5' must be finite")
def parse_nan_point(tmp_path, run):
    """Returned [[nan, 5]]."""
    return Probe(call=lambda: tracking.parse_points("nan,5"))


@case("`tracking.track_video(models, video, points=[[nan, 5]])`",
      "track_video: points must be finite, but 1 value is NaN or Inf")
def track_video_nan_point(tmp_path, run):
    """Tracked: every position of that point came out NaN."""
    models = tiny_ego4d(tmp_path)
    return Probe(call=lambda: tracking.track_video(models, still_video(),
                                                   points=[[np.nan, 5.0]]))


@case("`tracking.track_video` on a float video with values in 0–255",
      "video has float values in [0, 200]; expected floats in [0, 1] or uint8")
def track_video_float_255(tmp_path, run):
    """Clipped to [0, 1] without a word: the model saw a white video."""
    models = tiny_ego4d(tmp_path)
    video = np.linspace(0, 200, 3 * 32 * 32 * 3, dtype=np.float32).reshape(3, 32, 32, 3)
    return Probe(call=lambda: tracking.track_video(models, video, points=[[5.0, 5.0]]))


def one_track(t: int = 4) -> dict:
    """TAP-Vid inputs for one video with one visible, perfectly predicted point."""
    occluded = np.zeros((1, 1, t), bool)
    tracks = np.full((1, 1, t, 2), 10.0, np.float32)
    return {"query_points": np.array([[[0.0, 10.0, 10.0]]], np.float32),
            "gt_occluded": occluded, "gt_tracks": tracks, "pred_occluded": occluded,
            "pred_tracks": tracks.copy()}


@case("`points.tapvid_metrics` with a NaN query frame", "query_points must be finite")
def tapvid_nan_query_frame(tmp_path, run):
    """Scored: the NaN frame was rounded to some integer frame."""
    args = one_track()
    args["query_points"][0, 0, 0] = np.nan
    return Probe(call=lambda: points.tapvid_metrics(**args, query_mode="first"))


@case("`points.tapvid_metrics` with NaN ground-truth positions at visible points",
      "gt_tracks at visible points must be finite")
def tapvid_nan_ground_truth(tmp_path, run):
    """Scored: the NaN positions counted as misses of the prediction."""
    args = one_track()
    args["gt_tracks"][0, 0, 2] = np.nan
    return Probe(call=lambda: points.tapvid_metrics(**args, query_mode="first"))


@case("`points.tapvid_metrics` with float occlusion flags (probabilities)",
      "typechecking parameter 'gt_occluded'")
def tapvid_float_occluded(tmp_path, run):
    """Cast to bool: a probability of 0.3 counted as occluded."""
    args = one_track()
    args["gt_occluded"] = np.full((1, 1, 4), 0.3, np.float32)
    return Probe(call=lambda: points.tapvid_metrics(**args, query_mode="first"))


UNIT_BOX = np.array([0.0, 0.0, 1.0, 1.0], np.float32)


@case("`boxes.box_iou` with a NaN box", "box_iou: boxes_a must be finite")
def box_iou_nan(tmp_path, run):
    """IoU 0.0, as if the boxes did not overlap."""
    return Probe(call=lambda: boxes.box_iou(np.array([np.nan, 0, 1, 1], np.float32), UNIT_BOX))


@case("`boxes.box_iou` with boxes of 3 coordinates", "typechecking parameter 'boxes_a'")
def box_iou_three_coordinates(tmp_path, run):
    """IndexError (a traceback)."""
    return Probe(call=lambda: boxes.box_iou(UNIT_BOX[:3], UNIT_BOX[:3]))


@case("`boxes.box_iou` with boxes [2, 4] and [3, 4]", "typechecking parameter 'boxes_b'")
def box_iou_mismatched(tmp_path, run):
    """TypeError about broadcasting (a traceback); [2, 4] against [4] was broadcast
    silently."""
    return Probe(call=lambda: boxes.box_iou(np.zeros((2, 4)), np.zeros((3, 4))))


# --- Datasets and clip sources -------------------------------------------------------------

@case("`moog data build --resolution 30`",
      "resolution=30: a dataset's frames must be a multiple of 8 pixels on a side")
def data_build_resolution_30(tmp_path, run):
    """Rendered the dataset; the tiny, colab and paper models then refused its 30×30
    frames (not divisible by their decoder subsampling S = 8)."""
    return Probe(argv=["data", "build", "--num", "1", "--resolution", "30", "--data-dir",
                       str(tmp_path / "data")])


@case("`render.render_clip(..., resolution=100000)`",
      "resolution=100000: expected at most 1024 pixels on a side")
def render_clip_huge(tmp_path, run):
    """MemoryError (a traceback): "Unable to allocate 1.75 TiB"."""
    return Probe(call=lambda: render.render_clip("movi_e", "train", 0, resolution=100_000))


@case("`moog data build --data-dir FILE` (a file, not a folder)", "is a file; pass a folder")
def data_build_dir_is_a_file(tmp_path, run):
    """NotADirectoryError (a traceback)."""
    (tmp_path / "notes.txt").write_text("not a folder")
    return Probe(argv=["data", "build", "--num", "1", "--resolution", "16", "--data-dir",
                       str(tmp_path / "notes.txt")])


@case("`data.make_pipeline` on clips without the key `video` (e.g. `frames`)",
      "a clip from the source lacks ['video']")
def pipeline_clip_without_video(tmp_path, run):
    """KeyError: 'video' (a traceback)."""
    clip = data.unlabelled_clip(still_video(4, 16), num_points=2)
    clip["frames"] = clip.pop("video")
    return Probe(call=lambda: next(iter(data.make_pipeline([clip], batch_size=1, num_frames=2))))


@case("`data.make_pipeline` on an empty source", "the source holds no clips")
def pipeline_empty_source(tmp_path, run):
    """A bare StopIteration at the first batch."""
    return Probe(call=lambda: next(iter(data.make_pipeline([], batch_size=1, num_frames=2))))


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
        with pytest.raises((ValueError, jaxtyping.TypeCheckError), match=re.escape(case.expect)):
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
