"""The exporter: output format, determinism, drift detection and its errors."""

import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import export  # noqa: E402

HEADER = "# %% [markdown]\n# # {n} — {title}\n#\n# Prose.\n\n"


def write_chapter(root: Path, name: str, title: str, cells: list[str]) -> Path:
    path = root / "chapters" / f"{name}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = HEADER.format(n=name[:2], title=title) + "".join(f"# %%\n{c}\n\n" for c in cells)
    path.write_text(body)
    return path


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "moog_lib").mkdir()
    (tmp_path / "moog_lib" / "__init__.py").write_text('"""Hand-written."""\n')
    write_chapter(
        tmp_path,
        "01_alpha",
        "Alpha things",
        [
            "#| default_exp alpha",
            "#| export\nimport math\n\n\ndef area(r):\n    return math.pi * r * r",
            "assert area(1) > 3",
            "#| export\nSCALE = 2\n_PRIVATE = 3\n\n\nclass Box:\n    pass",
        ],
    )
    write_chapter(
        tmp_path, "02_beta", "Beta", ["#| default_exp beta", "#| export\ndef beta():\n    return 1"]
    )
    return tmp_path


def run(root, *args):
    return export.main(list(args), root=root)


def test_export_writes_module_with_header_all_and_provenance(repo):
    assert run(repo) == 0
    text = (repo / "moog_lib" / "alpha.py").read_text()
    assert text.startswith('"""Alpha things.\n\nGenerated from chapters/01_alpha.py')
    assert "do not edit" in text.splitlines()[2]
    assert '__all__ = [\n    "area",\n    "SCALE",\n    "Box",\n]' in text
    assert "_PRIVATE" not in text.split("]")[0]
    assert "]\n\n\nimport math\n\n\n# chapters/01_alpha.py, cell 3\ndef area" in text  # imports on top
    assert "# chapters/01_alpha.py, cell 5\nSCALE = 2" in text
    assert "assert area(1)" not in text  # only exported cells
    assert "#| export" not in text
    namespace = {}
    exec(compile(text, "alpha.py", "exec"), namespace)
    assert namespace["area"](1) == pytest.approx(3.14159, abs=1e-4)
    notebook = json.loads((repo / "notebooks" / "01_alpha.ipynb").read_text())
    assert [c["cell_type"] for c in notebook["cells"]] == ["markdown"] + ["code"] * 4
    assert all(c["outputs"] == [] for c in notebook["cells"] if c["cell_type"] == "code")
    assert notebook["cells"][0]["source"][0] == "# 01 — Alpha things\n"


def test_export_is_deterministic_and_check_passes_after_export(repo):
    assert run(repo) == 0
    first = {p: p.read_bytes() for p in sorted(repo.rglob("*")) if p.is_file()}
    assert run(repo) == 0
    assert first == {p: p.read_bytes() for p in sorted(repo.rglob("*")) if p.is_file()}
    assert run(repo, "--check") == 0


def test_check_fails_when_chapter_edited_without_export(repo, capsys):
    assert run(repo) == 0
    chapter = repo / "chapters" / "02_beta.py"
    chapter.write_text(chapter.read_text().replace("return 1", "return 2"))
    assert run(repo, "--check") == 1
    err = capsys.readouterr().err
    assert "moog_lib/beta.py" in err and "notebooks/02_beta.ipynb" in err
    assert "alpha" not in err


def test_check_fails_on_hand_edited_module_and_stale_files(repo, capsys):
    assert run(repo) == 0
    module = repo / "moog_lib" / "alpha.py"
    module.write_text(module.read_text() + "\nHACK = 1\n")
    shutil.copy(repo / "moog_lib" / "beta.py", repo / "moog_lib" / "gamma.py")
    assert run(repo, "--check") == 1
    err = capsys.readouterr().err
    assert "changed: moog_lib/alpha.py" in err and "stale:   moog_lib/gamma.py" in err
    assert run(repo) == 0 and not (repo / "moog_lib" / "gamma.py").exists()
    assert (repo / "moog_lib" / "__init__.py").exists()  # hand-written, untouched


@pytest.mark.parametrize(
    "name, cells, message",
    [
        ("03_dup", ["#| default_exp beta"], "module 'beta' is already exported by chapters/02_beta.py"),
        ("03_twice", ["#| default_exp gamma", "#| export\ndef area():\n    pass"],
         "'area' is already exported by moog_lib/alpha.py"),
        ("03_unknown", ["#| default_exp gamma", "#| exprot\nx = 1"], "cell 3: unknown directive '#| exprot'"),
        ("03_orphan", ["#| export\nx = 1"], "cell 2: '#| export' in a chapter without '#| default_exp'"),
        ("03_two", ["#| default_exp gamma", "#| default_exp delta"], "cell 3: second '#| default_exp'"),
        ("03_broken", ["#| default_exp gamma", "#| export\ndef f(:\n    pass"], "does not parse"),
    ],
)
def test_errors_name_file_and_cell(repo, capsys, name, cells, message):
    write_chapter(repo, name, "Broken", cells)
    assert run(repo) == 2
    err = capsys.readouterr().err
    assert f"chapters/{name}.py" in err and message in err


def test_a_chapter_may_own_several_modules_and_name_what_they_hold(repo):
    write_chapter(repo, "03_gamma", "Gamma", [
        "#| default_exp gamma",
        "#| export\ndef gamma():\n    return 3",
        '#| export delta\n"""Deltas: what this module holds."""\nimport math\n\n\ndef delta():\n'
        "    return math.e",
        "#| export gamma_extra\nEXTRA = 1",
    ])
    assert run(repo) == 0
    delta = (repo / "moog_lib" / "delta.py").read_text()
    assert delta.startswith('"""Deltas: what this module holds.\n\nGenerated from chapters/03_gamma.py')
    assert delta.count("Deltas") == 1 and '"delta",' in delta and "import math" in delta
    assert (repo / "moog_lib" / "gamma_extra.py").read_text().startswith('"""Gamma.')
    assert '"gamma",' in (repo / "moog_lib" / "gamma.py").read_text()
    write_chapter(repo, "04_epsilon", "Epsilon", ["#| export delta\nx = 1"])
    assert run(repo) == 2  # a module has exactly one owning chapter


def test_solution_code_is_collapsed_in_the_notebook_and_still_runs(repo):
    path = repo / "chapters" / "03_sol.py"
    path.write_text(HEADER.format(n="03", title="Sol") + "# %%\nx = 1\n\n"
                    "# %% [markdown]\n# ### Solution 1\n\n# %%\nassert x == 1\n\n"
                    "# %% [markdown]\n# ## References\n\n# %%\ny = 2\n")
    cells = json.loads(export.render_notebook(export.parse_chapter(path, repo)))["cells"]
    solution = next(c for c in cells if "".join(c["source"]).endswith("assert x == 1"))
    assert solution["metadata"] == {"cellView": "form", "jupyter": {"source_hidden": True}}
    assert solution["source"][0].startswith("# @title Solution 1")
    assert all(c["metadata"] == {} for c in cells if c is not solution)  # only the solution


def test_imports_of_every_cell_are_hoisted_sorted_and_merged(repo):
    write_chapter(repo, "03_late", "Late", [
        "#| default_exp late",
        "#| export\nimport sys\nfrom moog_lib import beta\n\n\ndef f():\n    return sys.argv",
        "#| export\nimport os  # a comment stays with its import\nfrom moog_lib import alpha\n\nX = 1",
        "#| export\nimport sys",  # only an import: nothing else of the cell remains
    ])
    assert run(repo) == 0
    text = (repo / "moog_lib" / "late.py").read_text()
    top = text.split("]\n\n\n", 1)[1].split("\n\n\n# chapters/")[0]
    assert top == ("import os  # a comment stays with its import\nimport sys\n\n"
                   "from moog_lib import alpha, beta")
    assert sum(line.startswith(("import ", "from ")) for line in text.splitlines()) == 3
    assert "cell 5" not in text
    assert run(repo, "--check") == 0


def test_cell_metadata_survives_into_the_notebook(repo):
    path = repo / "chapters" / "03_tags.py"
    path.write_text(HEADER.format(n="03", title="Tags") + '# %% tags=["raises-exception"]\n'
                    'raise ValueError("shown to the student")\n\n# %%\nx = 1\n')
    cells = json.loads(export.render_notebook(export.parse_chapter(path, repo)))["cells"]
    assert cells[1]["metadata"] == {"tags": ["raises-exception"]}  # nbval reads this tag
    assert cells[2]["metadata"] == {}  # Jupytext's layout keys are not carried over


def test_same_name_twice_in_one_module_is_an_error(repo, capsys):
    write_chapter(repo, "03_same", "Same", ["#| default_exp gamma", "#| export\nx = 1", "#| export\nx = 2"])
    assert run(repo) == 2
    assert "'x' is exported twice in module 'gamma'" in capsys.readouterr().err


def test_repository_is_in_sync():
    """The committed moog_lib/ and notebooks/ are exactly what the chapters export."""
    assert export.main(["--check"]) == 0


def test_library_modules_import_only_earlier_chapters():
    """Later chapters import earlier ones, never the reverse (the layering of CONTRIBUTING.md);
    of the modules one chapter owns, each imports only those whose first exported cell
    comes earlier in the chapter."""
    import ast

    chapters = [export.parse_chapter(p) for p in sorted((ROOT / "chapters").glob(export.CHAPTER_GLOB))]
    order = {chapter.rel: i for i, chapter in enumerate(chapters)}  # 05_data before 05a_scenes before 05b_render before 05c_datasets
    owner = {}  # module -> (chapter's place in the course, its first exported cell)
    for name, module in export.collect_modules(chapters).items():
        owner[name] = (order[module.chapter.rel], module.cells[0][0].index)
    assert len(owner) >= 10
    for module, place in owner.items():
        tree = ast.parse((ROOT / "moog_lib" / f"{module}.py").read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "moog_lib":
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("moog_lib."):
                imported.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                imported |= {a.name.split(".")[1] for a in node.names
                             if a.name.startswith("moog_lib.")}
        for other in imported - {module}:
            assert other in owner, f"{module} imports unknown module {other}"
            assert owner[other] < place, (
                f"moog_lib/{module}.py ({chapters[place[0]].rel}, cell {place[1]}) imports {other} "
                f"({chapters[owner[other][0]].rel}, cell {owner[other][1]}): modules may only "
                "import earlier chapters, or modules their own chapter exports earlier")
