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
import os
import time
from pathlib import Path

T0 = time.time()  # the training time is reported from here
# The bundle's root holds ecgdigit_bootstrap.py: $ECGDIGIT_BUNDLE_DIR, else up to 3 folders into the input.
BASE = Path(os.environ.get("ECGDIGIT_BUNDLE_DIR") or os.environ.get("ECGDIGIT_KAGGLE_INPUT") or "/kaggle/input")
BOOT = next((p for d in range(4) for p in sorted(BASE.glob("*/" * d + "ecgdigit_bootstrap.py"))),
            BASE / "ecgdigit_bootstrap.py")  # when absent, the FileNotFoundError below names it
spec = importlib.util.spec_from_file_location("ecgdigit_bootstrap", BOOT)
spec.loader.exec_module(bootstrap := importlib.util.module_from_spec(spec))
LIB = bootstrap.setup()  # unpacks, sets $ECGDIGIT_WEIGHTS, installs missing wheels offline, lib/ on sys.path

# %%
# Parameters: the stage ("0", "1", "2" or "all") and the training variant; $ECGDIGIT_TRAIN_ARGS adds flags
# (e.g. "--steps 2 --device cpu" for a smoke run). Weights go to <working>/weights with their manifest.
import shlex  # noqa: E402

STAGE = os.environ.get("ECGDIGIT_TRAIN_STAGE", "all")
VARIANT = os.environ.get("ECGDIGIT_TRAIN_VARIANT", "gpu")
WORKING = Path(os.environ.get("ECGDIGIT_WORKING_DIR", "/kaggle/working"))
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
import subprocess  # noqa: E402
import sys  # noqa: E402

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
