"""Make the `ecgdigit-bundle` dataset usable from a Kaggle notebook: one call, `setup()`.

Shipped at the bundle's ROOT as `ecgdigit_bootstrap.py` (tools/build_bundle.py copies it there), so a
notebook can import it by path before `lib/` is on `sys.path`, even while `lib/` is still a packed zip.
Standard library only for that reason; the notebooks hold nothing but a locator and the call.

`setup()`:
1. finds the bundle: `$ECGDIGIT_BUNDLE_DIR`, else under `$ECGDIGIT_KAGGLE_INPUT` (default /kaggle/input)
   `<input>/ecgdigit-bundle`, `<input>/datasets/*/ecgdigit-bundle`, else the shallowest folder (depth 1-3)
   holding BUNDLE_MANIFEST.json;
2. unpacks any `*.zip` Kaggle left packed (lib.zip, weights.zip, wheels.zip) into a temporary folder;
3. sets `$ECGDIGIT_WEIGHTS` to the bundle's weights/ unless it is already set;
4. pip-installs the bundle's wheels offline (`--no-index`), only for imports that fail;
5. puts the folder holding the `ecgdigit` package first on `sys.path`, configures logging, imports
   `ecgdigit` and prints one summary line; returns that lib folder.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BUNDLE_SLUG = "ecgdigit-bundle"  # = ecgdigit.config.BUNDLE_SLUG (not importable yet; a test keeps them equal)
MARKER = "BUNDLE_MANIFEST.json"  # = build_bundle.MANIFEST_NAME
FILE_NAME = "ecgdigit_bootstrap.py"  # this module's name at the bundle's root
PACKAGE = "ecgdigit"
BUNDLE_ENV = "ECGDIGIT_BUNDLE_DIR"
INPUT_ENV = "ECGDIGIT_KAGGLE_INPUT"
WEIGHTS_ENV = "ECGDIGIT_WEIGHTS"
KAGGLE_INPUT = "/kaggle/input"
MARKER_DEPTHS = ("*", "*/*", "*/*/*")  # bounded: the competition's image folders lie deeper
WHEEL_IMPORTS = {"timm": "timm", "safetensors": "safetensors"}  # import name -> wheel name
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def find_bundle() -> Path:
    """$ECGDIGIT_BUNDLE_DIR, else <input>/<slug>, <input>/datasets/*/<slug>, else any folder with the marker."""
    if os.environ.get(BUNDLE_ENV):
        bundle = Path(os.environ[BUNDLE_ENV])
        if not (bundle / MARKER).is_file():
            raise FileNotFoundError(f"${BUNDLE_ENV}={bundle} holds no {MARKER}")
        return bundle
    base = Path(os.environ.get(INPUT_ENV) or KAGGLE_INPUT)
    candidates = [base / BUNDLE_SLUG, *sorted(base.glob(f"datasets/*/{BUNDLE_SLUG}"))]
    candidates += [m.parent for depth in MARKER_DEPTHS for m in sorted(base.glob(f"{depth}/{MARKER}"))]
    for bundle in candidates:
        if (bundle / MARKER).is_file():
            return bundle
    raise FileNotFoundError(f"no {MARKER} under {base}: attach the {BUNDLE_SLUG} dataset to this notebook")


def unpacked_roots(bundle: Path) -> list[Path]:
    """The bundle, plus a temporary folder holding whatever zips Kaggle left packed (one folder per zip)."""
    archives = sorted(bundle.glob("*.zip"))
    if not archives:
        return [bundle]
    extra = Path(tempfile.mkdtemp(prefix=f"{BUNDLE_SLUG}-"))
    for archive in archives:
        shutil.unpack_archive(archive, extra / archive.stem)
    return [bundle, extra]


def find_lib(roots: list[Path]) -> Path:
    """The shallowest folder holding the package (lib/ in the bundle)."""
    found = [p.parent.parent for root in roots for p in root.glob(f"**/{PACKAGE}/__init__.py")]
    if not found:
        raise FileNotFoundError(f"no {PACKAGE}/__init__.py in {', '.join(map(str, roots))}: the bundle is incomplete")
    return min(found, key=lambda p: len(p.parts))


def find_weights(roots: list[Path]) -> Path | None:
    """The bundle's weights/ folder (beside lib/), or None for a bundle without weights."""
    manifests = sorted((p for root in roots for p in root.glob("**/weights/manifest.json")),
                       key=lambda p: len(p.parts))
    return manifests[0].parent if manifests else None


def install_missing_wheels(roots: list[Path], wheel_imports: dict[str, str] = WHEEL_IMPORTS) -> list[str]:
    """pip install (offline, from the bundle's wheels/) the wheels whose import is missing; returns them."""
    missing = [wheel for mod, wheel in wheel_imports.items() if importlib.util.find_spec(mod) is None]
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet",
                        *(f"--find-links={root / 'wheels'}" for root in roots), *missing], check=True)
        importlib.invalidate_caches()  # the running interpreter must see the new site-packages entries
    return missing


def setup(bundle: str | Path | None = None, *, wheel_imports: dict[str, str] = WHEEL_IMPORTS,
          log_level: int = logging.INFO) -> Path:
    """Find (unless given), unpack, install from and import the bundle; returns the lib folder now on sys.path."""
    bundle = Path(bundle) if bundle is not None else find_bundle()
    if not (bundle / MARKER).is_file():
        raise FileNotFoundError(f"{bundle} holds no {MARKER}: not an {BUNDLE_SLUG} folder")
    roots = unpacked_roots(bundle)
    lib = find_lib(roots)
    weights = find_weights(roots)
    if weights is not None:
        os.environ.setdefault(WEIGHTS_ENV, str(weights))  # an explicit $ECGDIGIT_WEIGHTS wins
    installed = install_missing_wheels(roots, wheel_imports)
    sys.path[:] = [str(lib), *(p for p in sys.path if p != str(lib))]  # first, once: the bundle's copy wins
    logging.basicConfig(level=log_level, format=LOG_FORMAT, force=True)
    package = importlib.import_module(PACKAGE)
    print(f"bundle {bundle} (lib {lib}), {PACKAGE} {package.__version__}, installed wheels: {installed or 'none'}")
    return lib
