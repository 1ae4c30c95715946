"""Collect the percent-format chapters for nbval: `pytest --nbval-lax chapters/`.

nbval only collects `.ipynb` files. Here each `chapters/NN_slug.py` (or `NNa_slug.py`) is parsed by the
same code that writes the Colab notebooks (tools/export.py), so CI executes exactly
the notebook Colab opens, cell by cell, in a fresh kernel started in `chapters/`.
"""

import re
import sys
from pathlib import Path
from unittest import mock

import nbformat
import pytest
from nbval.plugin import IPyNbFile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import export  # noqa: E402

CHAPTER = re.compile(r"^\d\d[a-z]?_\w+\.py$")


class PercentChapter(IPyNbFile):
    """An nbval notebook whose cells come from a Jupytext percent file."""

    def collect(self):
        chapter = export.parse_chapter(Path(self.path), Path(self.path).parent.parent)
        notebook = nbformat.reads(export.render_notebook(chapter), as_version=4)
        with mock.patch("nbval.plugin.nbformat.read", lambda *args, **kwargs: notebook):
            yield from super().collect()


class _NotATestModule(pytest.File):
    """Chapters named on the command line are notebooks, not test modules."""

    def collect(self):
        return []


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path, parent):
    if CHAPTER.match(module_path.name):
        return _NotATestModule.from_parent(parent, path=module_path)
    return None


def pytest_collect_file(file_path, parent):
    opt = parent.config.option
    if (opt.nbval or opt.nbval_lax) and CHAPTER.match(file_path.name):
        return PercentChapter.from_parent(parent, path=file_path)
    return None


_chapter_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if CHAPTER.match(Path(path).name):
        _chapter_seconds[path] = _chapter_seconds.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if _chapter_seconds:
        terminalreporter.section("chapter runtimes (setup + cells + teardown)")
        for path, seconds in sorted(_chapter_seconds.items()):
            terminalreporter.write_line(f"{seconds:7.1f} s  {path}")
