import sys
from pathlib import Path

# `pip install -e .` makes ecgdigit importable; these lines keep the tests on THIS checkout's lib/ and
# tools/ even where another checkout is the installed one (several worktrees on one machine), and let
# tests load a tool that imports its sibling (bench_real imports bench_accuracy), as running it does.
REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "lib"), str(REPO / "tools")]
