# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # ecgdigit: submission
# Offline (internet off). Cell 1 finds the `ecgdigit-bundle` dataset wherever Kaggle mounts it and calls
# the bootstrap at its root (`ecgdigit_bootstrap.setup()`: unpacks, installs its wheels only if an import
# fails, puts its `lib/` on `sys.path`). Cell 2 runs the whole submission: test.csv read tolerantly, a
# valid all-zero `submission.csv` first, then real predictions in one worker process per core until the
# deadline. A stage whose model cannot be loaded runs its classical version: its warning is printed first.
#
# Environment overrides (used by the tests; none is needed on Kaggle): `ECGDIGIT_BUNDLE_DIR`,
# `ECGDIGIT_KAGGLE_INPUT` (instead of /kaggle/input), `ECGDIGIT_COMPETITION_DIR`, `ECGDIGIT_OUTPUT`,
# `ECGDIGIT_DEADLINE_S` (seconds for the whole notebook), `ECGDIGIT_PREDICTOR` (`pipeline`, `classical`,
# `zeros` or `zeros:<seconds per image>`), `ECGDIGIT_WORKERS` (default: the cores), `ECGDIGIT_STRICT_WEIGHTS=1`
# (stop when a model cannot be loaded).

# %%
import importlib.util
import os
import time
from pathlib import Path

T0 = time.time()  # the deadline counts from here
# The bundle's root holds ecgdigit_bootstrap.py: $ECGDIGIT_BUNDLE_DIR, else up to 3 folders into the input.
BASE = Path(os.environ.get("ECGDIGIT_BUNDLE_DIR") or os.environ.get("ECGDIGIT_KAGGLE_INPUT") or "/kaggle/input")
BOOT = next((p for d in range(4) for p in sorted(BASE.glob("*/" * d + "ecgdigit_bootstrap.py"))),
            BASE / "ecgdigit_bootstrap.py")  # when absent, the FileNotFoundError below names it
spec = importlib.util.spec_from_file_location("ecgdigit_bootstrap", BOOT)
spec.loader.exec_module(bootstrap := importlib.util.module_from_spec(spec))
bootstrap.setup()  # unpacks, sets $ECGDIGIT_WEIGHTS, installs missing wheels offline, lib/ on sys.path

# %%
from ecgdigit.runner import run_submission  # noqa: E402

report = run_submission(
    None,  # the competition folder: $ECGDIGIT_COMPETITION_DIR or wherever Kaggle mounts it
    os.environ.get("ECGDIGIT_OUTPUT", "/kaggle/working/submission.csv"),
    deadline_s=float(os.environ.get("ECGDIGIT_DEADLINE_S", 8.5 * 3600)) - (time.time() - T0),
)
for warning in report.warnings + report.test_csv_problems:
    print("WARNING:", warning)
print(report)
