#!/usr/bin/env python3
"""The load benchmark's one entry point: `python3 benches/run.py --help`.

The program is the package harness/ beside this file (its cli module holds
the command line and the help text); this launcher only starts it, and is
also what the harness runs as `run.py --mint-worker` to sign cold tokens.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.cli import main  # noqa: E402  benches/harness/: the program

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
