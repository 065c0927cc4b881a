"""`python -m ecgdigit COMMAND ...` and the `ecgdigit` console command: one subcommand per job."""
from __future__ import annotations

import sys

from .digitize_cli import main as digitize

USAGE = """usage: ecgdigit COMMAND [ARGS]

commands:
  digitize   ECG page images -> WFDB records, CSVs and overlay pictures (ecgdigit digitize --help)
"""


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "digitize":
        return digitize(rest)
    print(f"ecgdigit: unknown command {command!r}\n\n{USAGE}", end="", file=sys.stderr)
    return 2


if __name__ == "__main__":  # guarded: the Kaggle bundle check imports every module, this one too
    sys.exit(main())
