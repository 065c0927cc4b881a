#!/usr/bin/env python
"""Assemble, check and publish the Kaggle dataset "bundle" that the notebooks run from.

Layout of the bundle folder (default build/bundle/):
    lib/ecgdigit/...          the package: .py files and the data files it reads, no caches
    weights/                  weights/manifest.json and every file it lists (absent without weights)
    wheels/                   wheels Kaggle's image may lack (with --wheels or --wheel-dir)
    ecgdigit_bootstrap.py     tools/kaggle_bootstrap.py: the notebooks import it by path and call setup()
    BUNDLE_MANIFEST.json      git commit + every file above with sha256 and size, sorted
    dataset-metadata.json     copied from datasets_meta/ (read by the kaggle CLI, never uploaded)

The same commit (and the same weights/wheels) gives byte-identical files: sorted walks, no
timestamps in any content, file mtimes pinned so that the CLI's zips are stable too.

Usage (each one command):
    python tools/build_bundle.py                      # build build/bundle/ (no wheels)
    python tools/build_bundle.py --wheels             # ... plus wheels downloaded from PyPI
    python tools/build_bundle.py --check              # verify an existing bundle
    python tools/build_bundle.py --wheels --publish -m "v3: new weights"       # build, check, upload
    python tools/build_bundle.py --wheels --publish --new                      # first upload
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger("build_bundle")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "build" / "bundle"
MANIFEST_NAME = "BUNDLE_MANIFEST.json"
DATASET_METADATA = "dataset-metadata.json"
# Stdlib-only setup the notebooks import by path (at the root, so never inside a zip Kaggle may leave packed).
BOOTSTRAP_SOURCE = Path("tools") / "kaggle_bootstrap.py"
BOOTSTRAP_NAME = "ecgdigit_bootstrap.py"
# Files beside the payload that the manifest does not list (the CLI reads and skips the metadata).
UNLISTED = frozenset({MANIFEST_NAME, DATASET_METADATA})
# Data files the package may read at run time; everything else in lib/ (caches, notebooks) stays out.
LIB_SUFFIXES = frozenset({".py", ".json", ".csv", ".txt", ".yaml", ".yml", ".npz", ".npy", ".ttf"})
SKIP_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ipynb_checkpoints"})
# Kaggle's Python and platform for `pip download` (the image is CPython 3.11 on x86_64 Linux).
KAGGLE_PYTHON = "3.11"
KAGGLE_PLATFORMS = ("manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_28_x86_64")
# What Kaggle's image may lack; versions are pinned from requirements.txt.
WHEEL_PACKAGES = ("timm", "safetensors")
FIXED_MTIME = 315532800  # 1980-01-01, the earliest time a zip entry can hold
BUNDLE_ENV = "ECGDIGIT_BUNDLE_DIR"


class BundleError(RuntimeError):
    """The bundle cannot be built or fails its check; the message names the file and the problem."""


@dataclass
class CheckReport:
    ok: bool
    problems: list[str] = field(default_factory=list)
    n_files: int = 0


# ---------------------------------------------------------------- helpers
def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def git_commit(repo: Path = REPO) -> dict:
    """HEAD commit and whether lib/ or weights/ differ from it (a dirty bundle is not reproducible)."""
    def git(*args: str) -> str:
        r = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""

    commit = git("rev-parse", "HEAD") or "unknown"
    dirty = bool(git("status", "--porcelain", "--", "lib", "weights", "datasets_meta", BOOTSTRAP_SOURCE.as_posix()))
    return {"commit": commit, "dirty": dirty}


def _walk_sorted(root: Path):
    """Files under root in a deterministic order, skipping caches and hidden entries."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


def requirement_pins(requirements: Path = REPO / "requirements.txt") -> dict[str, str]:
    pins: dict[str, str] = {}
    if requirements.is_file():
        for line in requirements.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if "==" in line:
                name, version = line.split("==", 1)
                pins[name.strip().lower()] = version.strip()
    return pins


def weight_files(weights_dir: Path) -> list[str]:
    """Relative paths of the files weights/manifest.json lists (tolerant of its exact shape).

    Accepted: {"weights"/"files": {name: {..}}} (the trainer's), {"files": [..]}, {name: {..}}, where an
    entry is a file name or a dict with "file"/"path"/"filename". A listed file that is missing is an
    error; no manifest -> [] (a bundle without weights).
    """
    manifest = weights_dir / "manifest.json"
    if not manifest.is_file():
        return []
    try:
        data = json.loads(manifest.read_text())
    except json.JSONDecodeError as e:
        raise BundleError(f"{manifest}: not valid JSON ({e})") from None
    names: set[str] = set()

    def visit(node, key: str | None = None) -> None:
        if isinstance(node, str):
            if key in (None, "file", "path", "filename") and (weights_dir / node).is_file():
                names.add(node)
            elif key in ("file", "path", "filename"):
                raise BundleError(f"{manifest}: lists {node!r}, which is not in {weights_dir}")
        elif isinstance(node, list):
            for item in node:
                visit(item)
        elif isinstance(node, dict):
            for k, v in node.items():
                if (weights_dir / str(k)).is_file() and k != "manifest.json":
                    names.add(str(k))
                elif key in ("weights", "files"):  # keys of these tables are file names
                    raise BundleError(f"{manifest}: lists {k!r}, which is not in {weights_dir}")
                visit(v, str(k) if isinstance(v, (str, dict)) else None)

    visit(data)
    for name in names:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise BundleError(f"{manifest}: entry {name!r} must be a path inside {weights_dir}")
    return sorted(names)


# ---------------------------------------------------------------- wheels
def fetch_wheels(dest: Path, cache: Path, packages=WHEEL_PACKAGES, pins: dict[str, str] | None = None) -> list[Path]:
    """`pip download --no-deps --only-binary=:all:` for Kaggle's Python into cache, then copy to dest.

    Needs PyPI access the first time; later builds reuse the cache (nothing is fetched when a wheel of
    the pinned version is already there).
    """
    pins = requirement_pins() if pins is None else pins
    cache.mkdir(parents=True, exist_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for pkg in packages:
        spec = f"{pkg}=={pins[pkg]}" if pkg in pins else pkg
        prefix = pkg.replace("-", "_").lower() + "-" + (pins.get(pkg, "") if pkg in pins else "")
        have = sorted(p for p in cache.glob("*.whl") if p.name.lower().startswith(prefix))
        if not have:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--python-version", KAGGLE_PYTHON, "--implementation", "cp", "--dest", str(cache)]
            for plat in KAGGLE_PLATFORMS:
                cmd += ["--platform", plat]
            cmd.append(spec)
            logger.info("downloading %s: %s", spec, " ".join(cmd))
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                raise BundleError(f"pip download {spec} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
            have = sorted(p for p in cache.glob("*.whl") if p.name.lower().startswith(prefix))
        if not have:
            raise BundleError(f"no wheel for {spec} in {cache} after pip download")
        for whl in have:
            shutil.copyfile(whl, dest / whl.name)
            copied.append(dest / whl.name)
    return copied


def copy_wheel_dir(src: Path, dest: Path) -> list[Path]:
    if not src.is_dir():
        raise BundleError(f"--wheel-dir {src}: not a folder")
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for whl in sorted(src.glob("*.whl")):
        shutil.copyfile(whl, dest / whl.name)
        out.append(dest / whl.name)
    return out


# ---------------------------------------------------------------- build
def build_bundle(out: Path = DEFAULT_OUT, *, repo: Path = REPO, wheels: bool = False,
                 wheel_dir: Path | None = None, wheel_cache: Path | None = None,
                 weights_dir: Path | None = None) -> Path:
    """Build the bundle into `out` (replaced as a whole, so no stale file survives); returns out."""
    out = Path(out).resolve()
    lib = repo / "lib" / "ecgdigit"
    if not (lib / "__init__.py").is_file():
        raise BundleError(f"{lib}: not a package (no __init__.py)")
    meta_src = repo / "datasets_meta" / DATASET_METADATA
    if not meta_src.is_file():
        raise BundleError(f"{meta_src}: missing dataset metadata")
    bootstrap_src = repo / BOOTSTRAP_SOURCE
    if not bootstrap_src.is_file():
        raise BundleError(f"{bootstrap_src}: missing (the notebooks' bootstrap, shipped as {BOOTSTRAP_NAME})")
    weights_dir = Path(weights_dir) if weights_dir is not None else repo / "weights"

    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for src in _walk_sorted(lib):
            if src.suffix in LIB_SUFFIXES:
                dst = stage / "lib" / src.relative_to(repo / "lib")
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
        names = weight_files(weights_dir)
        if names:
            for name in ["manifest.json", *names]:
                dst = stage / "weights" / name
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(weights_dir / name, dst)
        else:
            logger.warning("no weights: %s has no manifest.json listing files; bundle built without"
                           " weights", weights_dir)
        if wheel_dir is not None:
            copy_wheel_dir(Path(wheel_dir), stage / "wheels")
        elif wheels:
            fetch_wheels(stage / "wheels", Path(wheel_cache) if wheel_cache else repo / "build" / "wheel_cache")
        shutil.copyfile(bootstrap_src, stage / BOOTSTRAP_NAME)
        shutil.copyfile(meta_src, stage / DATASET_METADATA)
        write_manifest(stage, git_commit(repo))
        for path in _walk_sorted(stage):
            os.utime(path, (FIXED_MTIME, FIXED_MTIME))
        if out.exists():
            shutil.rmtree(out)
        os.replace(stage, out)
    finally:
        if stage.exists():
            shutil.rmtree(stage)
    logger.info("bundle built in %s", out)
    return out


def payload_files(bundle: Path) -> list[Path]:
    return [p for p in _walk_sorted(bundle) if p.relative_to(bundle).as_posix() not in UNLISTED]


def present_files(bundle: Path) -> list[str]:
    """Every file under the bundle, caches and hidden files included (the check must see what
    _walk_sorted skips: a __pycache__ left in the bundle would be uploaded with it)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(bundle):
        dirnames.sort()
        for name in sorted(filenames):
            rel = (Path(dirpath) / name).relative_to(bundle).as_posix()
            if rel not in UNLISTED:
                found.append(rel)
    return found


def write_manifest(bundle: Path, git: dict) -> dict:
    files = [{"path": p.relative_to(bundle).as_posix(), "sha256": sha256_file(p), "size": p.stat().st_size}
             for p in payload_files(bundle)]
    files.sort(key=lambda f: f["path"])
    manifest = {"format": 1, "git_commit": git["commit"], "git_dirty": git["dirty"], "files": files}
    (bundle / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


# ---------------------------------------------------------------- check
IMPORT_PROBE = r"""
import importlib, pkgutil, sys
lib, repo = sys.argv[1], sys.argv[2]
def in_repo(p):  # the bundle itself may sit inside the repo (build/bundle)
    return p.startswith(repo) and not p.startswith(lib)
sys.path[:] = [lib] + [p for p in sys.path if p and not in_repo(p)]
import ecgdigit
assert ecgdigit.__file__.startswith(lib), ecgdigit.__file__
bad = []
for m in sorted(pkgutil.walk_packages(ecgdigit.__path__, "ecgdigit."), key=lambda m: m.name):
    try:
        mod = importlib.import_module(m.name)
        assert mod.__file__.startswith(lib), mod.__file__
    except Exception as e:
        bad.append(f"{m.name}: {type(e).__name__}: {e}")
leaked = sorted(n for n, mod in sys.modules.items()
                if in_repo(getattr(mod, "__file__", None) or ""))
if leaked:
    bad.append("modules loaded from the source tree: " + ", ".join(leaked))
print("\n".join(bad))
sys.exit(1 if bad else 0)
"""


def check_bundle(bundle: Path, *, repo: Path = REPO, import_check: bool = True) -> CheckReport:
    """Every manifest file present with its hash and size, nothing unlisted, and `import ecgdigit`
    (with every submodule) working from the bundle alone in a fresh interpreter outside the repo."""
    bundle = Path(bundle).resolve()
    report = CheckReport(ok=False)
    manifest_path = bundle / MANIFEST_NAME
    if not manifest_path.is_file():
        report.problems.append(f"{manifest_path}: missing")
        return report
    try:
        manifest = json.loads(manifest_path.read_text())
        listed = {f["path"]: f for f in manifest["files"]}
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        report.problems.append(f"{manifest_path}: unreadable ({e})")
        return report
    report.n_files = len(listed)
    for rel, entry in sorted(listed.items()):
        p = bundle / rel
        if not p.is_file():
            report.problems.append(f"{rel}: listed in the manifest but missing")
        elif p.stat().st_size != entry["size"] or sha256_file(p) != entry["sha256"]:
            report.problems.append(f"{rel}: size/sha256 differ from the manifest")
    for rel in present_files(bundle):
        if rel not in listed:
            report.problems.append(f"{rel}: present but not in the manifest")
    if not (bundle / "lib" / "ecgdigit" / "__init__.py").is_file():
        report.problems.append("lib/ecgdigit/__init__.py: missing")
    if BOOTSTRAP_NAME not in listed:
        report.problems.append(f"{BOOTSTRAP_NAME}: not in the manifest (the notebooks cannot start)")
    elif import_check and not report.problems:
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
            # -B: importing every module must not write __pycache__ into the bundle it checks
            # (-I ignores $PYTHONDONTWRITEBYTECODE, so the flag is the only switch that holds)
            r = subprocess.run([sys.executable, "-I", "-B", "-c", IMPORT_PROBE, str(bundle / "lib"), str(repo.resolve())],
                               cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            report.problems.append("import from the bundle alone failed:\n" + (r.stdout + r.stderr)[-3000:])
    report.ok = not report.problems
    return report


# ---------------------------------------------------------------- publish
def publish_command(bundle: Path, message: str | None, new: bool) -> list[str]:
    if new:
        return ["kaggle", "datasets", "create", "-p", str(bundle), "-r", "zip"]
    if not message:
        raise BundleError("--publish needs -m MESSAGE (the version notes)")
    return ["kaggle", "datasets", "version", "-p", str(bundle), "-m", message, "-r", "zip"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="bundle folder (default build/bundle)")
    ap.add_argument("--wheels", action="store_true", help="pip download timm/safetensors wheels (needs PyPI once)")
    ap.add_argument("--wheel-dir", type=Path, help="copy every *.whl from this folder instead of downloading")
    ap.add_argument("--wheel-cache", type=Path, help="pip download cache (default build/wheel_cache)")
    ap.add_argument("--weights", type=Path, help="weights folder (default weights/)")
    ap.add_argument("--check", action="store_true", help="only check an existing bundle (no build)")
    ap.add_argument("--publish", action="store_true", help="after build + check, upload with the kaggle CLI")
    ap.add_argument("-m", "--message", help="version notes for --publish")
    ap.add_argument("--new", action="store_true", help="with --publish: `kaggle datasets create` (first time)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.publish:
            publish_command(args.out, args.message, args.new)  # argument errors before any work
        if not args.check:
            build_bundle(args.out, wheels=args.wheels, wheel_dir=args.wheel_dir,
                         wheel_cache=args.wheel_cache, weights_dir=args.weights)
        report = check_bundle(args.out)
        if not report.ok:
            print(f"bundle check FAILED for {args.out}:", *report.problems, sep="\n  ", file=sys.stderr)
            return 1
        print(f"bundle check ok: {args.out} ({report.n_files} files)")
        if args.publish:
            cmd = publish_command(args.out, args.message, args.new)
            print("running:", " ".join(cmd))
            return subprocess.run(cmd).returncode
    except BundleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
