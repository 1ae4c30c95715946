"""Write the API reference of `moog_lib` (every module) to `docs/api/`, or check it.

The reference is pdoc's HTML, rendered from the library's docstrings (Markdown), without
the "View Source" panels (they would quadruple its size: the source is in `chapters/`),
without the search index and without MathJax or Mermaid. Two things that would differ
from one machine or pdoc release to another are taken out after rendering: the
repository's absolute path (in default values such as `train.TRAINED_DIR`) and the
pdoc version in each page's `<meta name="generator">`. Rendering twice gives the same
bytes.

Usage:
    python tools/api_reference.py            write docs/api/ (what `make api` runs)
    python tools/api_reference.py --check    render into a temporary folder; exit 1 and
                                             list the files that differ from docs/api/

`moog_lib/` is generated from the chapters (`tools/export.py`), so after changing a
docstring in a chapter run `make export`, then `make api`.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "api"
PACKAGE = "moog_lib"
REGENERATE = "python tools/api_reference.py  (or: make api)"
GENERATOR = re.compile(r'(<meta name="generator" content="pdoc)[^"]*(")')


def render(out: Path) -> list[Path]:
    """Render the reference of every module of `moog_lib` into `out` (emptied first);
    returns the files written, relative to `out`."""
    sys.path.insert(0, str(ROOT))  # this checkout's moog_lib, installed or not
    import pdoc
    import pdoc.render

    pdoc.render.configure(docformat="markdown", search=False, show_source=False,
                          math=False, mermaid=False)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    with warnings.catch_warnings():
        # pdoc warns about annotations of third-party types it cannot resolve
        # (tensorflow-datasets', optax's); they render as written.
        warnings.simplefilter("ignore")
        pdoc.pdoc(PACKAGE, output_directory=out)
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    for rel in files:
        path = out / rel
        text = path.read_text(encoding="utf-8")
        text = text.replace(str(ROOT) + "/", "").replace(str(ROOT), ".")
        text = GENERATOR.sub(r"\1\2", text)
        path.write_text(text, encoding="utf-8")
    return files


def differences(expected: Path, actual: Path) -> list[str]:
    """Paths (relative, sorted) present in only one of two folders or differing in bytes."""
    def listing(folder: Path) -> set[Path]:
        return {p.relative_to(folder) for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else set()

    wanted, found = listing(expected), listing(actual)
    differ = [f"{rel} (missing)" for rel in wanted - found]
    differ += [f"{rel} (not generated any more)" for rel in found - wanted]
    differ += [str(rel) for rel in wanted & found
               if not filecmp.cmp(expected / rel, actual / rel, shallow=False)]
    return sorted(differ)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help=f"compare a fresh rendering with {OUT.relative_to(ROOT)}/, write nothing, "
                             "exit 1 when they differ")
    args = parser.parse_args(argv)
    shown = OUT.relative_to(ROOT)
    if not args.check:
        files = render(OUT)
        size = sum((OUT / rel).stat().st_size for rel in files)
        print(f"api reference: {len(files)} files, {size / 1e6:.2f} MB in {shown}/")
        return 0
    with tempfile.TemporaryDirectory() as temporary:
        fresh = Path(temporary) / "api"
        render(fresh)
        differ = differences(fresh, OUT)
    if differ:
        print(f"api reference: {len(differ)} files of {shown}/ differ from moog_lib's docstrings:",
              file=sys.stderr)
        for rel in differ:
            print(f"  {shown}/{rel}", file=sys.stderr)
        print(f"regenerate with: {REGENERATE}, and commit {shown}/", file=sys.stderr)
        return 1
    print(f"api reference check: {shown}/ agrees with moog_lib's docstrings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
