# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # ecgdigit: submission
# Offline (internet off). Cell 1 finds the `ecgdigit-bundle` dataset wherever Kaggle mounts it, installs
# its wheels only if an import fails, and puts its `lib/` on `sys.path`. Cell 2 runs the whole submission:
# a valid all-zero `submission.csv` first, then real predictions image by image until the deadline.
#
# Environment overrides (used by the tests; none is needed on Kaggle): `ECGDIGIT_BUNDLE_DIR`,
# `ECGDIGIT_KAGGLE_INPUT` (instead of /kaggle/input), `ECGDIGIT_COMPETITION_DIR`, `ECGDIGIT_OUTPUT`,
# `ECGDIGIT_DEADLINE_S` (seconds for the whole notebook), `ECGDIGIT_PREDICTOR` (`pipeline`, `zeros` or
# `zeros:<seconds per image>`).

# %%
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T0 = time.time()  # the deadline counts from here
BUNDLE_SLUG = "ecgdigit-bundle"
MARKER = "BUNDLE_MANIFEST.json"
WHEEL_IMPORTS = {"timm": "timm", "safetensors": "safetensors"}  # import name -> wheel name


def find_bundle() -> Path:
    """$ECGDIGIT_BUNDLE_DIR, else <input>/<slug>, <input>/datasets/*/<slug>, else any folder with the marker."""
    if os.environ.get("ECGDIGIT_BUNDLE_DIR"):
        bundle = Path(os.environ["ECGDIGIT_BUNDLE_DIR"])
        if not (bundle / MARKER).is_file():
            raise FileNotFoundError(f"$ECGDIGIT_BUNDLE_DIR={bundle} holds no {MARKER}")
        return bundle
    base = Path(os.environ.get("ECGDIGIT_KAGGLE_INPUT") or "/kaggle/input")
    candidates = [base / BUNDLE_SLUG, *sorted(base.glob(f"datasets/*/{BUNDLE_SLUG}"))]
    candidates += [m.parent for depth in ("*", "*/*", "*/*/*") for m in sorted(base.glob(f"{depth}/{MARKER}"))]
    for bundle in candidates:
        if (bundle / MARKER).is_file():
            return bundle
    raise FileNotFoundError(f"no {MARKER} under {base}: attach the {BUNDLE_SLUG} dataset to this notebook")


BUNDLE = find_bundle()
ROOTS = [BUNDLE]
if sorted(BUNDLE.glob("*.zip")):  # Kaggle unpacks uploaded folder zips; should one stay packed, unpack it
    ROOTS.append(Path(tempfile.mkdtemp(prefix="ecgdigit-bundle-")))
    for archive in sorted(BUNDLE.glob("*.zip")):
        shutil.unpack_archive(archive, ROOTS[-1] / archive.stem)
# The shallowest folder holding the package (lib/ in the bundle) goes on sys.path.
LIB = min((p.parent.parent for root in ROOTS for p in root.glob("**/ecgdigit/__init__.py")),
          key=lambda p: len(p.parts))
# Weights travel in the bundle's weights/ (beside lib/); an explicit $ECGDIGIT_WEIGHTS wins.
WEIGHTS = sorted((p for root in ROOTS for p in root.glob("**/weights/manifest.json")), key=lambda p: len(p.parts))
if WEIGHTS:
    os.environ.setdefault("ECGDIGIT_WEIGHTS", str(WEIGHTS[0].parent))
missing = [wheel for mod, wheel in WHEEL_IMPORTS.items() if importlib.util.find_spec(mod) is None]
if missing:
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet",
                    *(f"--find-links={root / 'wheels'}" for root in ROOTS), *missing], check=True)
sys.path.insert(0, str(LIB))
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
import ecgdigit  # noqa: E402

print(f"bundle {BUNDLE} (lib {LIB}), ecgdigit {ecgdigit.__version__}, installed wheels: {missing or 'none'}")

# %%
from ecgdigit.runner import run_submission  # noqa: E402

report = run_submission(
    None,  # the competition folder: $ECGDIGIT_COMPETITION_DIR or wherever Kaggle mounts it
    os.environ.get("ECGDIGIT_OUTPUT", "/kaggle/working/submission.csv"),
    deadline_s=float(os.environ.get("ECGDIGIT_DEADLINE_S", 8.5 * 3600)) - (time.time() - T0),
)
print(report)
