"""Build the HTML documentation of the analysis notebooks: execute each notebook in
notebooks/ (a fresh kernel from this interpreter, matplotlib's inline backend, so every figure
lands in the cell outputs) and render it with nbconvert into ``--out`` (docs/_build by default),
with an index page. ``--screenshot FILE`` then photographs the finality notebook's first
figure with headless Chromium (Debian package ``chromium``), as committed in
docs/notebook-finality.png.

    make docs                                              # = .venv/bin/python scripts/build_docs.py
    .venv/bin/python scripts/build_docs.py --quick --screenshot docs/notebook-finality.png

``--quick`` gives the throughput notebook smaller sizes (under a minute in all instead of several).
The committed notebooks stay clean: executed copies live only under ``--out``.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("finality_analysis.ipynb", "verify_throughput.ipynb")
# The finality notebook's own parameters are already small (40K rows).
QUICK = {
    "verify_throughput.ipynb": "batch_sizes = [1, 8, 64, 256]\nrepeat = 2\nprofile_rows = 2048\n"
                               "out_dir = 'verify-throughput-out'\n",
}
KERNEL = "bizra-docs-python"
# The section the screenshot shows: nbconvert gives each heading an anchor.
SCREENSHOT_ANCHOR = "Finality-lag"


def _kernel_dir(base: Path) -> Path:
    """A kernelspec for this interpreter, so a user's own `python3` kernel is never picked."""
    spec = base / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "bizra docs", "language": "python"}))
    return base


def execute(name: str, work: Path, *, quick: bool) -> nbformat.NotebookNode:
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    if quick and name in QUICK:
        (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        cell.source = QUICK[name]
    work.mkdir(parents=True, exist_ok=True)
    NotebookClient(nb, kernel_name=KERNEL, timeout=1800, resources={"metadata": {"path": str(work)}}).execute()
    return nb


def _chromium(*args: str) -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("--screenshot needs headless Chromium (Debian: apt-get install -y chromium)")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                               f"--user-data-dir={profile}", *args], check=True, capture_output=True, text=True,
                              timeout=180).stdout


def screenshot(page: Path, target: Path, *, width: int = 1100, height: int = 860) -> None:
    """``width`` x ``height`` pixels of ``page`` from the first figure after the
    SCREENSHOT_ANCHOR heading down.

    Headless Chromium paints a blank page when it is scrolled (by a #fragment or a script), so
    the figure's offset is read from the DOM first, then the page is photographed from the
    top down to there and cropped."""
    probe = page.with_name(f".{page.stem}.probe.html")
    probe.write_text(page.read_text().replace("</body>", (
        f"<script>const heading = document.getElementById({json.dumps(SCREENSHOT_ANCHOR)});"
        "const figure = [...document.querySelectorAll('img')].find("
        "  img => heading.compareDocumentPosition(img) & Node.DOCUMENT_POSITION_FOLLOWING);"
        "document.body.dataset.anchorTop = Math.round(figure.getBoundingClientRect().top + window.scrollY);"
        "</script></body>")))
    try:
        dom = _chromium(f"--window-size={width},{height}", "--dump-dom", probe.resolve().as_uri())
    finally:
        probe.unlink()
    top = int(re.search(r'data-anchor-top="(\d+)"', dom).group(1)) - 8
    tall = target.with_name(f".{target.name}.tall.png")
    _chromium(f"--window-size={width},{top + height}", f"--screenshot={tall.resolve()}", page.resolve().as_uri())
    try:
        with Image.open(tall) as image:
            image.crop((0, top, width, top + height)).save(target, optimize=True)
    finally:
        tall.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "_build")
    parser.add_argument("--quick", action="store_true", help="smaller sizes for the throughput notebook")
    parser.add_argument("--screenshot", type=Path, default=None, metavar="PNG",
                        help="photograph the finality notebook's first figure into this file")
    args = parser.parse_args(argv)

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["JUPYTER_PATH"] = str(_kernel_dir(out / "jupyter"))
    # Headless, and still inline: the kernel renders each figure to PNG in the cell's outputs.
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    exporter = HTMLExporter()
    links = []
    for name in NOTEBOOKS:
        stem = Path(name).stem
        print(f"executing {name} ...", flush=True)
        nb = execute(name, out / "work" / stem, quick=args.quick)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": stem}})
        (out / f"{stem}.html").write_text(body)
        links.append(f'<li><a href="{stem}.html">{html.escape(stem)}</a></li>')
        print(f"  -> {out / f'{stem}.html'}")
    (out / "index.html").write_text("<!doctype html><title>bizra notebooks</title><h1>bizra analysis notebooks</h1>"
                                    f"<ul>{''.join(links)}</ul>\n")
    if args.screenshot is not None:
        screenshot(out / "finality_analysis.html", args.screenshot)
        print(f"screenshot -> {args.screenshot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
