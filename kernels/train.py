# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # ecgdigit: training
# Trains with the kit's engine on Kaggle's GPU (one process per GPU with torchrun on two T4s) and saves
# the weights as notebook output (`/kaggle/working/weights/`), ready to be copied into `weights/` and
# published with the next bundle. `STAGE` below (or `$ECGDIGIT_TRAIN_STAGE`) picks one stage, default all.

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

T0 = time.time()
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
# Parameters: the stage ("0", "1", "2" or "all") and the training variant; $ECGDIGIT_TRAIN_ARGS adds flags
# (e.g. "--steps 2 --device cpu" for a smoke run). Weights go to <working>/weights with their manifest.
import shlex  # noqa: E402

STAGE = os.environ.get("ECGDIGIT_TRAIN_STAGE", "all")
VARIANT = os.environ.get("ECGDIGIT_TRAIN_VARIANT", "gpu")
WORKING = Path(os.environ.get("ECGDIGIT_OUTPUT", "/kaggle/working"))
OUT = WORKING / "weights"
ARGS = ["--stage", STAGE, "--variant", VARIANT, "--out", str(WORKING / "run"), "--weights-dir", str(OUT),
        "--no-progress", *shlex.split(os.environ.get("ECGDIGIT_TRAIN_ARGS", ""))]
try:  # the competition's real images join the synthetic ones in stage 2 when the competition is attached
    from ecgdigit.io.competition_files import CompetitionFolder  # noqa: E402

    ARGS += ["--real-dir", str(CompetitionFolder.resolve().root)]
except FileNotFoundError as exc:
    print(f"no competition folder, synthetic data only: {exc}")
print("training arguments:", ARGS)

# %%
import torch  # noqa: E402

n_gpu = torch.cuda.device_count()
if n_gpu > 1:
    # Two T4s: one process per GPU, i.e. `torchrun --nproc_per_node=2 -m ecgdigit.training.cli ...`
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(LIB), os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={n_gpu}",
                    "-m", "ecgdigit.training.cli", *ARGS], check=True, env=env)
else:
    from ecgdigit.training.cli import main  # noqa: E402

    main(ARGS)
print(f"trained stage {STAGE!r} in {(time.time() - T0) / 3600:.2f} h; weights in {OUT}:",
      sorted(p.name for p in OUT.glob("*")))
