"""`ecgdigit digitize PAGE [PAGE ...] --out DIR`: each page's 12 leads as a WFDB record, a CSV and an
overlay picture. A page that cannot be read gets one line saying why and the others go on; the exit
code is 1 only when no page could be digitized (2 for a bad command line, or with --strict-weights a model that cannot be
loaded; without it that stage runs classical, said on stderr)."""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from .digitize_page import PageError, PageOutputs, digitize_page
from .io.page_files import IMAGE_SUFFIXES, expand_pages
from .io.wfdb_record import record_name_for
from .pipeline import Pipeline, PipelineOptions

LAYOUTS = ("auto", "competition")
EXIT_NONE_READ = 1
EXIT_SETUP = 2


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="ecgdigit digitize", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pages", nargs="+", metavar="PAGE",
                   help=f"image files, or folders (their {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} files)")
    p.add_argument("--out", type=Path, required=True, help="folder for the outputs (made if missing)")
    p.add_argument("--fs", type=positive_int, default=500, help="sampling rate of the records, Hz (default 500)")
    p.add_argument("--layout", choices=LAYOUTS, default="auto",
                   help="auto: find each page's layout; competition: assume the competition's look (default auto)")
    p.add_argument("--weights", type=Path, default=None, help="weights folder with manifest.json (default: weights/)")
    p.add_argument("--classical", action="store_true", help="no models: every stage uses its classical version")
    p.add_argument("--strict-weights", action="store_true",
                   help="stop (exit 2) when a listed model cannot be loaded, instead of running its stage classical")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--verbose", action="store_true", help="also the pipeline's log messages")
    return p.parse_args(argv)


def load_pipeline(args: argparse.Namespace):
    find_layout = args.layout == "auto"
    if args.classical:
        return Pipeline(options=PipelineOptions(find_layout=find_layout))
    return Pipeline.load(args.weights, args.device, strict_weights=args.strict_weights, find_layout=find_layout)


def unique_record_names(pages: list[Path]) -> list[str]:
    """One record name per page; pages whose names clash (a/p.png and b/p.png, p.png and p.jpg) get
    -2, -3 ... Compared without case: on macOS and Windows P.hea and p.hea are the same file."""
    used: set[str] = set()
    names = []
    for page in pages:
        base = record_name_for(page.stem)
        name, k = base, 1
        while name.lower() in used:
            k += 1
            name = f"{base}-{k}"
        used.add(name.lower())
        names.append(name)
    return names


@dataclass
class PageOutcome:
    page: Path
    outputs: PageOutputs | None = None  # set when the page was digitized
    problem: str | None = None  # else what is wrong with it, naming the file


def digitize_pages(pipeline, pages: list[Path], out_dir: Path, fs: int, layout: str,
                   progress: bool = True) -> Iterator[PageOutcome]:
    """Each page's outcome as soon as it is done; one page's failure never stops the next."""
    bar = tqdm(total=len(pages), unit="page", disable=not progress)
    try:
        for page, name in zip(pages, unique_record_names(pages)):
            bar.set_description(page.name)
            try:
                yield PageOutcome(page, outputs=digitize_page(pipeline, page, out_dir, name, fs, layout))
            except PageError as exc:
                yield PageOutcome(page, problem=str(exc))
            bar.update(1)
    finally:
        bar.close()


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s")
    listed = expand_pages(args.pages)
    for arg, problem in listed.problems:
        print(f"skipped {arg}: {problem}", file=sys.stderr)
    if not listed.pages:
        print("error: no page to digitize", file=sys.stderr)
        return EXIT_NONE_READ
    try:
        pipeline = load_pipeline(args)
    except Exception as exc:  # bad weights folder, unknown device: nothing can run, say so plainly
        print(f"error: cannot load the pipeline ({type(exc).__name__}: {exc})", file=sys.stderr)
        return EXIT_SETUP
    for failure in getattr(pipeline, "load_failures", []):  # its stage runs classical: say so, not only in the log
        print(f"MODEL NOT LOADED: {failure.message()}", file=sys.stderr)
    models = ", ".join(pipeline.models.names()) or "none (classical)"
    print(f"{len(listed.pages)} page(s) -> {args.out}; layout {args.layout}; models: {models}")
    n_done = 0
    for outcome in digitize_pages(pipeline, listed.pages, args.out, args.fs, args.layout, not args.quiet):
        out = outcome.outputs
        if out is None:
            tqdm.write(f"skipped {outcome.problem}", file=sys.stderr)
            continue
        n_done += 1
        notes = f", {len(out.warnings)} warning(s) in the .hea" if out.warnings else ""
        notes += "".join(f"; CAUTION: {c}" for c in out.cautions)
        tqdm.write(f"ok {outcome.page}: layout {out.layout}, {out.seconds:.1f} s -> {out.record}{notes}")
    n_asked = len(listed.pages) + len(listed.problems)
    print(f"digitized {n_done} of {n_asked} page(s) into {args.out}"
          + (f"; {n_asked - n_done} skipped (see above)" if n_done < n_asked else ""))
    return 0 if n_done else EXIT_NONE_READ
