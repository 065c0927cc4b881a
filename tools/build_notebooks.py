#!/usr/bin/env python
"""Generate the Kaggle notebooks (.ipynb) from their jupytext percent-format sources, reproducibly.

Cell ids are derived from the cell index, outputs and execution counts are empty, notebook metadata is
fixed and the JSON is written with sorted keys: the same source always gives the same bytes.

    python tools/build_notebooks.py               # (re)write every .ipynb
    python tools/build_notebooks.py --check       # exit 1 when an .ipynb is stale or missing
    python tools/build_notebooks.py --owner NAME  # put your Kaggle user name into every metadata id
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jupytext
import nbformat

REPO = Path(__file__).resolve().parents[1]
# source (jupytext percent format) -> generated notebook; each kernel folder holds its kernel-metadata.json
NOTEBOOKS: dict[str, str] = {
    "kernels/submission.py": "kernels/submission.ipynb",  # pushed with kernel-metadata.json at the top
    "kernels/train.py": "kernels/train/train.ipynb",  # pushed with kernels/train/kernel-metadata.json
}
METADATA_FILES = ("kernel-metadata.json", "kernels/train/kernel-metadata.json",
                  "datasets_meta/dataset-metadata.json")
NOTEBOOK_METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def render(source_text: str) -> str:
    """Percent-format source -> notebook JSON text (deterministic)."""
    nb = jupytext.reads(source_text, fmt="py:percent")
    cells = []
    for i, cell in enumerate(nb.cells):
        source = cell.source
        if cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(source)
        elif cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(source)
        else:
            new = nbformat.v4.new_raw_cell(source)
        new.id = f"cell-{i:02d}"
        tags = cell.metadata.get("tags")
        if tags:
            new.metadata["tags"] = list(tags)
        cells.append(new)
    out = nbformat.v4.new_notebook(cells=cells, metadata=json.loads(json.dumps(NOTEBOOK_METADATA)))
    out.nbformat, out.nbformat_minor = 4, 5
    nbformat.validate(out)
    text = nbformat.writes(out)  # sorted keys, indent 1, sources split into lines
    return text if text.endswith("\n") else text + "\n"


def stale(root: Path = REPO) -> list[str]:
    """Notebooks whose file differs from what their source renders to (or that are missing)."""
    out = []
    for src, dst in NOTEBOOKS.items():
        want = render((root / src).read_text(encoding="utf-8"))
        path = root / dst
        if not path.is_file() or path.read_text(encoding="utf-8") != want:
            out.append(dst)
    return out


def build(root: Path = REPO) -> list[str]:
    written = []
    for src, dst in NOTEBOOKS.items():
        text = render((root / src).read_text(encoding="utf-8"))
        path = root / dst
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(dst)
    return written


def set_owner(owner: str, root: Path = REPO) -> list[str]:
    """Replace the owner part of every id / dataset source of our own kernels and dataset."""
    if not owner or "/" in owner:
        raise ValueError(f"--owner must be a Kaggle user name, got {owner!r}")
    changed = []
    own_slugs = set()
    for rel in METADATA_FILES:
        meta = json.loads((root / rel).read_text())
        own_slugs.add(meta["id"].split("/", 1)[1])
    for rel in METADATA_FILES:
        path = root / rel
        meta = json.loads(path.read_text())
        meta["id"] = f"{owner}/{meta['id'].split('/', 1)[1]}"
        meta_sources = meta.get("dataset_sources")
        if meta_sources is not None:
            meta["dataset_sources"] = [f"{owner}/{s.split('/', 1)[1]}" if s.split("/", 1)[1] in own_slugs else s
                                       for s in meta_sources]
        text = json.dumps(meta, indent=2) + "\n"
        if text != path.read_text():
            path.write_text(text)
            changed.append(rel)
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if any notebook is stale")
    ap.add_argument("--owner", help="set the Kaggle user name in every metadata id")
    ap.add_argument("--root", type=Path, default=REPO, help=argparse.SUPPRESS)  # tests run on a copy
    args = ap.parse_args(argv)
    if args.check:
        bad = stale(args.root)
        if bad:
            print("stale notebooks (run python tools/build_notebooks.py):", *bad, sep="\n  ", file=sys.stderr)
            return 1
        print("notebooks up to date")
        return 0
    if args.owner:
        print("metadata updated:", set_owner(args.owner, args.root) or "nothing to change")
    print("notebooks written:", build(args.root) or "all up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
