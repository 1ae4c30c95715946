"""docs/api/ (pdoc's reference of moog_lib) agrees with the library's docstrings."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import api_reference  # noqa: E402


def test_committed_reference_matches_the_docstrings():
    """What `make check-export` runs: a fresh rendering equals docs/api/ byte for byte."""
    result = subprocess.run([sys.executable, "tools/api_reference.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_reference_covers_every_module():
    modules = sorted(p.stem for p in (ROOT / "moog_lib").glob("*.py") if p.stem != "__init__")
    pages = sorted(p.stem for p in (ROOT / "docs" / "api" / "moog_lib").glob("*.html"))
    assert pages == modules


def test_differences_names_changed_missing_and_extra_files(tmp_path):
    fresh, committed = tmp_path / "fresh", tmp_path / "committed"
    for folder in (fresh, committed):
        (folder / "moog_lib").mkdir(parents=True)
        (folder / "index.html").write_text("same")
    (fresh / "moog_lib" / "train.html").write_text("new docstring")
    (committed / "moog_lib" / "train.html").write_text("old docstring")
    (fresh / "moog_lib" / "viz.html").write_text("a new module")
    (committed / "moog_lib" / "gone.html").write_text("a removed module")
    assert api_reference.differences(fresh, committed) == [
        "moog_lib/gone.html (not generated any more)", "moog_lib/train.html",
        "moog_lib/viz.html (missing)"]
    assert api_reference.differences(fresh, fresh) == []


def test_output_holds_no_path_or_pdoc_version():
    """Nothing that differs between checkouts or pdoc releases: the check must pass in CI."""
    for page in (ROOT / "docs" / "api").rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert str(ROOT) not in text and "PosixPath(&#39;/" not in text, page
        assert '<meta name="generator" content="pdoc"/>' in text or page.name == "index.html", page
