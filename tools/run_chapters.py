"""Execute chapters and keep what they show: `python tools/run_chapters.py --out runs/demo`.

Each chapter runs in a fresh kernel (the preset comes from MOOG_PRESET). Written to
the output folder: the executed notebook (`chapters/NN_slug.ipynb`, open it in Jupyter
or VS Code), every figure as a PNG (`figures/`), and `index.md` listing both with
each chapter's run time.
"""

import argparse
import base64
import os
import sys
import time
from pathlib import Path

import nbclient
import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import export  # noqa: E402


def run_chapter(chapter_path: Path, out: Path) -> tuple[float, list[Path]]:
    chapter = export.parse_chapter(chapter_path)
    notebook = nbformat.reads(export.render_notebook(chapter), as_version=4)
    start = time.perf_counter()
    nbclient.NotebookClient(
        notebook, timeout=3600, kernel_name="python3",
        resources={"metadata": {"path": str(chapter_path.parent)}},
    ).execute()
    seconds = time.perf_counter() - start
    (out / "chapters").mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, out / "chapters" / f"{chapter_path.stem}.ipynb")
    figures = []
    for index, cell in enumerate(notebook.cells):
        for number, output in enumerate(cell.get("outputs", [])):
            png = output.get("data", {}).get("image/png")
            if png:
                path = out / "figures" / f"{chapter_path.stem}_cell{index:02d}_{number}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(base64.b64decode(png))
                figures.append(path)
    return seconds, figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    parser.add_argument("chapters", nargs="*", type=Path, help="default: every chapter")
    args = parser.parse_args()
    chapters = args.chapters or sorted((export.ROOT / "chapters").glob(export.CHAPTER_GLOB))
    preset = os.environ.get("MOOG_PRESET", "tiny")
    lines = [f"# Chapter outputs (preset `{preset}`)", ""]
    for path in chapters:
        print(f"running {path.name} ...", flush=True)
        seconds, figures = run_chapter(path.resolve(), args.out)
        print(f"  {seconds:.1f} s, {len(figures)} figures", flush=True)
        lines.append(f"## {path.stem} ({seconds:.1f} s)")
        lines.append(f"- executed notebook: [chapters/{path.stem}.ipynb](chapters/{path.stem}.ipynb)")
        lines += [f"\n![{f.stem}](figures/{f.name})" for f in figures]
        lines.append("")
    (args.out / "index.md").write_text("\n".join(lines))
    print(f"wrote {args.out / 'index.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
