"""Export the chapters into `moog_lib/` and `notebooks/`, or check that they agree.

The chapters (`chapters/NN_slug.py`, or `NNa_slug.py` sorting right after `NN`; Jupytext percent format,
read with Jupytext, so cells and their metadata are those nbval runs) are the only source.
Two nbdev-style directives, on the first lines of a code cell, control the export:

    #| default_exp fourier     once per chapter: the module its `export` cells go to
    #| export                  this cell's code goes to that module
    #| export notebook         this cell's code goes to `notebook`, another module
                               this chapter owns

A chapter may own several modules; every module has exactly one owning chapter. The
module-level imports of all of a module's cells are gathered at its top, sorted and merged
by ruff (`ruff check --select I`, the repository's settings).
When the first exported cell of a module opens with a string literal, that string
is the module's docstring (say what the module holds); otherwise the docstring is
the chapter's title.

Usage:
    python tools/export.py            write moog_lib/<module>.py and notebooks/<chapter>.ipynb
    python tools/export.py --check    exit 1 and list the files that differ; write nothing

Errors (exit 2, naming the file and cell): an unknown directive, a chapter with two
`default_exp`, a bare `export` cell in a chapter without one, two chapters exporting
to one module, the same top-level name exported twice anywhere in the package, and
exported code that does not parse.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parent.parent
CHAPTER_GLOB = "[0-9][0-9]*_*.py"  # 05_data.py, then 05a_scenes.py, 05b_render.py and 05c_datasets.py after it
GENERATED_MARKER = "do not edit"
KNOWN_DIRECTIVES = {"default_exp", "export"}
DIRECTIVE = re.compile(r"^#\|\s*(\S+)\s*(.*?)\s*$")
JUPYTEXT_LAYOUT = {"lines_to_next_cell", "lines_to_end_of_cell_marker", "cell_marker"}


class ExportError(Exception):
    """A problem in a chapter that stops the export; the message names file and cell."""


@dataclasses.dataclass
class Cell:
    kind: str  # "code" or "markdown"
    source: str
    index: int  # 1-based position in the chapter
    metadata: dict = dataclasses.field(default_factory=dict)  # e.g. `# %% tags=["raises-exception"]`


@dataclasses.dataclass
class Chapter:
    path: Path
    rel: str  # path relative to the repository root, as written in generated files
    cells: list[Cell]

    @property
    def title(self) -> str:
        for cell in self.cells:
            if cell.kind == "markdown":
                for line in cell.source.splitlines():
                    if line.startswith("# "):
                        return line[2:].strip()
        raise ExportError(f"{self.rel}: no '# Title' line in any markdown cell")


def parse_chapter(path: Path, root: Path = ROOT) -> Chapter:
    """The chapter's cells as Jupytext reads them — the cells nbval runs — with their
    metadata, less Jupytext's own layout keys (blank lines between cells)."""
    notebook = jupytext.read(path)
    cells = [Cell(cell.cell_type, cell.source, index,
                  {k: v for k, v in cell.metadata.items() if k not in JUPYTEXT_LAYOUT})
             for index, cell in enumerate(notebook.cells, 1)]
    return Chapter(path, path.relative_to(root).as_posix(), cells)


def directives(cell: Cell) -> tuple[list[tuple[str, str]], str]:
    """The leading `#| name args` lines of a code cell, and the code after them."""
    found, lines = [], cell.source.splitlines()
    while lines and DIRECTIVE.match(lines[0]):
        name, arg = DIRECTIVE.match(lines.pop(0)).groups()
        found.append((name, arg))
    return found, "\n".join(lines).strip("\n")


@dataclasses.dataclass
class Module:
    name: str
    chapter: Chapter
    cells: list[tuple[Cell, str]]  # (cell, code without directives)

    def public_names(self) -> list[str]:
        names: list[str] = []
        for cell, code in self.cells:
            for name in _defined_names(code, f"{self.chapter.rel}, cell {cell.index}"):
                if name in names:
                    raise ExportError(
                        f"{self.chapter.rel}, cell {cell.index}: '{name}' is exported twice "
                        f"in module '{self.name}'"
                    )
                names.append(name)
        return [n for n in names if not n.startswith("_")]

    def render(self) -> str:
        cells = list(self.cells)
        docstring, rest = _leading_docstring(cells[0][1]) if cells else (None, "")
        if docstring is None:
            title = re.sub(r"^\d+[a-z]?\s*[—–\-:·.]\s*", "", self.chapter.title).rstrip(".")
            docstring = f"{title}."
        else:
            cells[0] = (cells[0][0], rest)
        header = (
            f'"""{docstring}\n\n'
            f"Generated from {self.chapter.rel} by tools/export.py; {GENERATED_MARKER}.\n"
            f'Edit the chapter, then run `make export`.\n"""\n'
        )
        names = self.public_names()
        all_block = "__all__ = [\n" + "".join(f'    "{n}",\n' for n in names) + "]\n"
        imports, bodies = [], []
        for cell, code in cells:
            found, body = _split_imports(code)
            imports += [line for line in found if line not in imports]
            if body:
                bodies.append(f"# {self.chapter.rel}, cell {cell.index}\n{body}\n")
        parts = [header, all_block] + (["\n".join(imports) + "\n"] if imports else [])
        return _sort_imports("\n\n".join(parts + bodies), self.name)


def _split_imports(code: str) -> tuple[list[str], str]:
    """The module-level import statements of a cell (whole lines, comments kept) and the
    rest of its code: the generated module hoists them all to its top."""
    lines = code.splitlines()
    spans = [range(node.lineno - 1, node.end_lineno) for node in ast.parse(code).body
             if isinstance(node, ast.Import | ast.ImportFrom)]
    imported = {i for span in spans for i in span}
    body = "\n".join(line for i, line in enumerate(lines) if i not in imported)
    return (["\n".join(lines[i] for i in span) for span in spans],
            re.sub(r"\n{3,}", "\n\n\n", body).strip("\n"))


def _sort_imports(text: str, module: str) -> str:
    """`text` with its import blocks sorted, merged and spaced as `ruff check --select I`
    wants them (ruff does it, with the repository's settings)."""
    ruff = Path(sys.executable).with_name("ruff")
    done = subprocess.run([str(ruff if ruff.exists() else "ruff"), "check", "--select", "I",
                           "--fix-only", "--exit-zero", "--quiet", "--stdin-filename",
                           f"moog_lib/{module}.py", "-"], input=text, capture_output=True,
                          text=True, cwd=ROOT, check=True)
    return done.stdout


def _leading_docstring(code: str) -> tuple[str | None, str]:
    """A string literal opening `code` (its text, stripped) and the code after it."""
    try:
        body = ast.parse(code).body
    except SyntaxError:
        return None, code  # reported by public_names with the cell's name
    if not (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        return None, code
    lines = code.splitlines()
    return body[0].value.value.strip(), "\n".join(lines[body[0].end_lineno:]).strip("\n")


def _defined_names(code: str, where: str) -> list[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError as err:
        raise ExportError(f"{where}: exported code does not parse: {err}") from err
    names = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    return names


def _module_name(arg: str, where: str, directive: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", arg):
        raise ExportError(f"{where}: '#| {directive}' needs a module name, got {arg!r}")
    return arg


def collect_modules(chapters: list[Chapter]) -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for chapter in chapters:
        module, exported, named = None, [], {}  # named: module -> cells of `export <module>`
        for cell in chapter.cells:
            if cell.kind != "code":
                continue
            found, code = directives(cell)
            for name, arg in found:
                where = f"{chapter.rel}, cell {cell.index}"
                if name not in KNOWN_DIRECTIVES:
                    raise ExportError(f"{where}: unknown directive '#| {name}' (known: default_exp, export)")
                if name == "default_exp":
                    if module is not None:
                        raise ExportError(f"{where}: second '#| default_exp' (already '{module}')")
                    module = _module_name(arg, where, name)
                elif name == "export" and arg:
                    named.setdefault(_module_name(arg, where, name), []).append((cell, code))
                elif name == "export":
                    exported.append((cell, code))
        if exported and module is None:
            where = f"{chapter.rel}, cell {exported[0][0].index}"
            raise ExportError(f"{where}: '#| export' in a chapter without '#| default_exp'")
        owned = dict(named)
        if module is not None:
            owned[module] = sorted(exported + owned.get(module, []), key=lambda c: c[0].index)
        for name, cells in owned.items():
            if name in modules:
                where = f"{chapter.rel}, cell {cells[0][0].index}" if cells else chapter.rel
                raise ExportError(
                    f"{where}: module '{name}' is already exported by {modules[name].chapter.rel}"
                )
            modules[name] = Module(name, chapter, cells)
    owner: dict[str, str] = {}
    for module in modules.values():
        for name in module.public_names():
            if name in owner:
                raise ExportError(
                    f"{module.chapter.rel}: '{name}' is already exported by moog_lib/{owner[name]}.py"
                )
            owner[name] = module.name
    return modules


SOLUTION = re.compile(r"^#+\s*(Solution\b.*)$")


def render_notebook(chapter: Chapter) -> str:
    """An output-free .ipynb for Colab; deterministic (no ids, sorted keys).

    The code of a solution (the code cells after a markdown cell headed
    "### Solution …", up to the next markdown cell) is collapsed: Colab shows a
    titled form (`# @title`, `cellView: form`) and Jupyter hides the source
    (`jupyter.source_hidden`); it still runs with "Run all" and under nbval.
    """
    cells, solution = [], None
    for cell in chapter.cells:
        source, metadata = cell.source, dict(cell.metadata)
        if cell.kind == "markdown":
            heading = SOLUTION.match(source.splitlines()[0]) if source else None
            solution = heading.group(1) if heading else None
        elif solution is not None:
            source = f"# @title {solution} (double-click to show the code)\n{source}"
            metadata |= {"cellView": "form", "jupyter": {"source_hidden": True}}
        entry = {"cell_type": cell.kind, "metadata": metadata, "source": source.splitlines(keepends=True)}
        if cell.kind == "code":
            entry.update(execution_count=None, outputs=[])
        cells.append(entry)
    notebook = {
        "cells": cells,
        "metadata": {
            "accelerator": "TPU",
            "colab": {"gpuType": "V5E1", "provenance": [], "toc_visible": True},
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 4,
    }
    return json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def expected_files(root: Path = ROOT) -> dict[Path, str]:
    chapters = [parse_chapter(p, root) for p in sorted((root / "chapters").glob(CHAPTER_GLOB))]
    files = {root / "moog_lib" / f"{m.name}.py": m.render() for m in collect_modules(chapters).values()}
    for chapter in chapters:
        files[root / "notebooks" / (chapter.path.stem + ".ipynb")] = render_notebook(chapter)
    return files


def stale_files(root: Path, expected: dict[Path, str]) -> list[Path]:
    """Generated files that no chapter produces any more."""
    stale = [
        p
        for p in sorted((root / "moog_lib").glob("*.py"))
        if p not in expected and GENERATED_MARKER in p.read_text(encoding="utf-8")[:400]
    ]
    stale += [p for p in sorted((root / "notebooks").glob("*.ipynb")) if p not in expected]
    return stale


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing, exit 1 on drift")
    args = parser.parse_args(argv)
    try:
        expected = expected_files(root)
    except ExportError as err:
        print(f"export error: {err}", file=sys.stderr)
        return 2
    differ = [p for p, text in expected.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    stale = stale_files(root, expected)
    if args.check:
        if differ or stale:
            print("chapters and generated files differ; run `make export`:", file=sys.stderr)
            for p in differ:
                print(f"  {'changed' if p.exists() else 'missing'}: {p.relative_to(root)}", file=sys.stderr)
            for p in stale:
                print(f"  stale:   {p.relative_to(root)}", file=sys.stderr)
            return 1
        print(f"export check: {len(expected)} generated files agree with the chapters")
        return 0
    for p in differ:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(expected[p], encoding="utf-8")
        print(f"wrote {p.relative_to(root)}")
    for p in stale:
        p.unlink()
        print(f"removed {p.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
