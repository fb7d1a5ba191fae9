"""What every module of the harness shares: the paths of benches/ and its
wrk scripts, the stacks and their labels, the error that stops a step, and the
two kinds of line written to stderr (progress and warnings).

Standard library only, and imports nothing else of the harness.
"""
import sys
from pathlib import Path

BENCHES = Path(__file__).resolve().parent.parent  # benches/: run.py, wrk/, results/
REPO = BENCHES.parent
RUN_PY = BENCHES / "run.py"  # the entry point; `run.py --mint-worker` signs cold tokens
WRK_DIR = BENCHES / "wrk"
REPORT_LUA = WRK_DIR / "report.lua"
TOKENS_LUA = WRK_DIR / "tokens.lua"
COLD_LUA = WRK_DIR / "cold.lua"

NUSERS = 1000  # users in the warm path's round-robin route

WARM_PEERS = ["django", "flask"]
COLD_STACKS = ["ours-sqlite", "ours-postgres", "axum", "express", "flask"]
ALL_STACKS = ["ours-sqlite", "ours-postgres", "django", "flask", "axum", "express"]
COLD_LABELS = {
    "ours-sqlite": "ours, SQLite",
    "ours-postgres": "ours, PostgreSQL",
    "axum": "jwt-authorizer on axum (no users table)",
    "express": "express-oauth2-jwt-bearer (Auth0's Node SDK)",
    "flask": "Flask + Authlib",
}
COLD_KINDS = {
    "warmup": "warm-up (new users, discarded)",
    "new": "new users",
    "known": "known users, new tokens",
}
WARM_LABELS = {"public": "/api/public", "private-1token": "/api/private (1 token)",
               "private-1000users": f"/api/private ({NUSERS} users round-robin)"}


class BenchError(Exception):
    """A failure that stops the current step; printed as one line."""


def log(msg):
    print(f"== {msg}", file=sys.stderr, flush=True)


def warn(msg):
    print(f"run.py: {msg}", file=sys.stderr, flush=True)
