"""Load benchmark of the API with wrk: the warm path and the cold path (and,
on request, DPoP requests).

  python3 benches/run.py                          # both parts, every stack
  python3 benches/run.py --only warm              # repeated tokens, 1000 users, Python peers
  python3 benches/run.py --only cold              # every token used once
  python3 benches/run.py --only cold --stacks ours-sqlite,axum --cold-tokens 2000
  python3 benches/run.py --only dpop --bin before=A --bin after=B   # DPoP proofs, binaries A/B

Warm path: in a fresh temporary folder (its own database and development key;
the repository's .env, .dev-issuer/ and app.db are never read or written) it
starts `actix-auth0-api dev`, waits for /readyz, creates 1000 users' rows (and
checks them with `users --json`), then measures /api/public, /api/private with
one repeated token and /api/private with the 1000 users' tokens round-robin:
each run is a warm-up (discarded) then a measured wrk run, the three routes
interleaved for --rounds rounds, the median round reported with per-round
paired ratios. Then the server's peak RSS (VmHWM), and the Python peers
(Django, Flask) through ../shared/peers/bench.sh with the same settings.
Writes results/latest.md, results/results.json, results/requests-per-second.svg.

Cold path: each token is sent once (wrk/cold.lua walks a token list, stops
each thread when its slice ends and times the window itself), for ours on
SQLite and on PostgreSQL and for the peers in ../shared/peers (jwt-authorizer
on axum, express-oauth2-jwt-bearer, Flask + Authlib), each server on core 0
and wrk on core 1. Two measured runs per stack after a short cold warm-up:
"new users" (every token a new sub) and "known users, new tokens" (the same
subs again, with tokens never seen: another jti); then, for a warm figure
under the same pinning, one of those tokens repeated for --duration s. On ours, the users rows
created must equal the 200s answered in every run (none in the known-users
run). Tokens are minted before the timed window with the `cryptography`
package of the peers' virtualenv (`run.py --mint-worker`, the only code here
that is not standard library). The ceiling is printed beside the table:
RSA-2048 verifications per second on the server's core (`openssl speed`).
When `perf` is installed, each run also counts the server's CPU time (and
instructions, where the machine has hardware counters) with `perf stat`, per
request: the server's own cost, which the neighbours' load moves less than
requests per second.
Writes results/cold.md, results/cold.json, results/cold-requests-per-second.svg.

DPoP (--only dpop, not part of the full run): ours on PostgreSQL and on
SQLite, each request `Authorization: DPoP <token>` with a proof never sent
before (wrk/cold.lua walks a list of `TOKEN PROOF` lines), --dpop-keys
DPoP-bound tokens taking turns, --dpop-proofs proofs a run after a warm-up of
--cold-warmup-tokens. Tokens and proofs (ES256, iat the second each is made)
are minted with the same `cryptography` before each run, which must end
within the server's 60 s iat window. Each --bin (repeatable, [LABEL=]PATH)
is measured in turn within each of --rounds rounds, each run on a fresh
database and server; the report gives each binary's medians and, per round,
its requests/s ratio and CPU difference to the first --bin. Every answer
must be 200, and on PostgreSQL a binary that records proofs must have as
many rows in `dpop_proofs` as proofs answered 200. Writes results/dpop.md
and results/dpop.json.

Raw wrk outputs and server logs go to results/raw/ (git-ignored). The exit
status is non-zero if a step fails, if a row of ours has non-2xx answers or
zero requests/s, if a cold run answered anything but 200 to any token or
left a token unanswered, if the users rows do not match, or if a requested
peer comparison failed.
"""
# The docstring above is the command's --help (its first paragraph the
# description, the rest the epilog): the command line of the load benchmark,
# and main(), which runs the parts in order and gives the exit status.
import argparse
import os
import re
import signal
import sys
from pathlib import Path

from . import mint_worker
from .cold import run_cold
from .dpop import DPOP_STACKS, run_dpop
from .common import ALL_STACKS, BENCHES, COLD_STACKS, REPO, WARM_PEERS, BenchError, log
from .machine import machine_facts
from .servers import Context, build
from .warm import run_warm
from .wrk import ensure_wrk


def positive(text):
    if not re.fullmatch(r"[1-9][0-9]*", text):
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def non_negative(text):
    if not re.fullmatch(r"[0-9]+", text):
        raise argparse.ArgumentTypeError(f"expected 0 or a positive integer, got {text!r}")
    return int(text)


def zero_or_one(text):
    if text not in ("0", "1"):
        raise argparse.ArgumentTypeError(f"expected 0 or 1, got {text!r}")
    return int(text)


def env_default(name, default, check):
    """The env variable as the flag's default (run.sh's knobs keep working),
    validated like the flag, so that `DURATION=x` fails as clearly as `--duration x`."""
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        return check(raw)
    except argparse.ArgumentTypeError as e:
        print(f"run.py: {name}: {e}", file=sys.stderr)
        sys.exit(2)


def binary(text):
    """--bin: [LABEL=]PATH of an executable; the label defaults to the file's name."""
    label, sep, path = text.partition("=")
    if not sep or "/" in label:
        label, path = Path(text).name, text
    if not (Path(path).is_file() and os.access(path, os.X_OK)):
        raise argparse.ArgumentTypeError(f"{path!r} is not an executable file")
    return label, Path(path).resolve()


def stack_list(text):
    """--stacks: a comma-separated subset of ALL_STACKS; `ours` stands for both of ours."""
    out = []
    for name in (s.strip() for s in text.split(",")):
        names = ["ours-sqlite", "ours-postgres"] if name == "ours" else ["all"] if name == "all" else [name]
        for n in names:
            if n == "all":
                out.extend(ALL_STACKS)
            elif n in ALL_STACKS:
                out.append(n)
            else:
                raise argparse.ArgumentTypeError(
                    f"unknown stack {name!r}; choose from ours, {', '.join(ALL_STACKS)}, all")
    return list(dict.fromkeys(out))


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python3 benches/run.py",
        description=__doc__.split("\n\n", 1)[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=positive, default=env_default("DURATION", 10, positive), metavar="S",
                   help="warm path: measured seconds per wrk run (env DURATION; default %(default)s)")
    p.add_argument("--warmup", type=positive, default=env_default("WARMUP", 2, positive), metavar="S",
                   help="warm path: discarded wrk seconds before each measured run (env WARMUP; default %(default)s)")
    p.add_argument("--conns", type=positive, default=env_default("CONNS", 32, positive), metavar="N",
                   help="wrk connections, both paths (env CONNS; default %(default)s)")
    p.add_argument("--rounds", type=positive, default=env_default("ROUNDS", 3, positive), metavar="N",
                   help="warm path (and dpop): interleaved rounds per route (binary), the median reported "
                        "(env ROUNDS; default %(default)s)")
    p.add_argument("--pin", type=zero_or_one, default=env_default("PIN", 1, zero_or_one),
                   help="1: server on core 0 with one worker, wrk (one thread) on core 1 with taskset; "
                        "0: both unpinned, server one worker per core, wrk -t2 (env PIN; default %(default)s)")
    p.add_argument("--port", type=positive, default=env_default("PORT", 6090, positive),
                   help="port of the server under test, ours and the cold peers' (env PORT; default %(default)s)")
    p.add_argument("--peers", type=zero_or_one, default=env_default("PEERS", 1, zero_or_one),
                   help="0: our server only, whatever --stacks says (env PEERS; default %(default)s)")
    p.add_argument("--only", choices=["warm", "cold", "dpop"],
                   help="run one part only (default: warm, then cold; dpop runs only when asked)")
    p.add_argument("--stacks", type=stack_list, default=list(ALL_STACKS), metavar="LIST",
                   help="comma-separated: ours-sqlite, ours-postgres (or ours for both), django, flask, "
                        "axum, express (default: all). Warm: ours-sqlite, django, flask; "
                        "cold: ours-sqlite, ours-postgres, axum, express, flask; dpop: ours-postgres, ours-sqlite")
    p.add_argument("--cold-tokens", type=positive, default=env_default("COLD_TOKENS", 60000, positive), metavar="N",
                   help="cold path: tokens per measured run (env COLD_TOKENS; default %(default)s)")
    p.add_argument("--cold-warmup-tokens", type=non_negative, metavar="N",
                   default=env_default("COLD_WARMUP_TOKENS", 2000, non_negative),
                   help="cold path (and dpop): tokens (proofs) of the discarded warm-up pass per run, 0 for none "
                        "(env COLD_WARMUP_TOKENS; default %(default)s)")
    p.add_argument("--cold-subs", choices=["sequential", "random"], default="sequential",
                   help="cold path: subs cold-1..cold-N (neighbours in the users index), or random "
                        "auth0|<24 hex> as Auth0 issues them (each new row on its own index page) "
                        "(default: %(default)s)")
    p.add_argument("--cold-timeout", type=positive, default=600, metavar="S",
                   help="cold path: most seconds one run may take before it counts as failed (default %(default)s)")
    p.add_argument("--issuer-port", type=positive, default=9999,
                   help="cold path: port of the peers' JWKS issuer (default %(default)s)")
    p.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432"),
                   metavar="URL", help="cold path and dpop: PostgreSQL server for ours-postgres, a fresh database is "
                                       "created and dropped there (env BENCH_POSTGRES_URL; default %(default)s)")
    p.add_argument("--peers-dir", type=Path, default=REPO.parent / "shared" / "peers", metavar="DIR",
                   help="the peers (default: ../shared/peers beside the repository)")
    p.add_argument("--mint-python", type=Path, metavar="PYTHON",
                   help="a Python with `cryptography`, to mint cold tokens (default: the peers' "
                        "virtualenv, $PEERS_VENV or /tmp/peers-venv, created with their setup.sh)")
    p.add_argument("--results-dir", type=Path, default=BENCHES / "results", metavar="DIR",
                   help="where results and raw/ go (default: benches/results; use another for smoke runs)")
    p.add_argument("--perf-record", action="store_true",
                   help="cold path: also `perf record -g` each server through each run, into "
                        "raw/perf-<run>.data, for `perf report -i` (where the time goes)")
    p.add_argument("--no-build", action="store_true",
                   help="skip `cargo build --release --locked` (the binary must exist)")
    p.add_argument("--bin", type=binary, action="append", metavar="[LABEL=]PATH",
                   help="measure this binary instead of building one (implies --no-build); repeatable with "
                        "--only dpop: the binaries take turns in every round, the first is the reference")
    p.add_argument("--dpop-proofs", type=positive, default=env_default("DPOP_PROOFS", 60000, positive),
                   metavar="N", help="dpop: proofs (requests) per measured run (env DPOP_PROOFS; default "
                                     "%(default)s; all must be sent within 60 s of their minting)")
    p.add_argument("--dpop-keys", type=positive, default=64, metavar="N",
                   help="dpop: DPoP-bound tokens, one key each, taking turns (default %(default)s; a key "
                        "may have at most DPOP_REPLAY_PER_KEY, 10 000, proofs in a minute)")
    return p.parse_args(argv)


def main(argv):
    if argv[:1] == ["--mint-worker"]:
        mint_worker.main()
        return 0
    args = parse_args(argv)
    parts = [args.only] if args.only else ["warm", "cold"]
    warm_stacks = [s for s in args.stacks if s == "ours-sqlite" or (args.peers and s in WARM_PEERS)]
    cold_stacks = [s for s in args.stacks if s in COLD_STACKS and (args.peers or s.startswith("ours"))]
    todo = {"warm": warm_stacks, "cold": cold_stacks, "dpop": [s for s in DPOP_STACKS if s in args.stacks]}
    if args.bin and len(args.bin) > 1 and args.only != "dpop":
        print("run.py: several --bin only with --only dpop", file=sys.stderr)
        return 2
    for part in parts:
        if not todo[part]:
            print(f"run.py: nothing to run in the {part} part with --stacks {','.join(args.stacks)} "
                  f"--peers {args.peers}", file=sys.stderr)
            return 2
    ctx = Context(args)

    def on_term(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    try:
        if any(s.startswith("ours") for part in parts for s in todo[part]):
            build(ctx)
        ensure_wrk()
        facts = machine_facts()
        for part in parts:
            log(f"{part} path: {', '.join(todo[part])}")
            {"warm": run_warm, "cold": run_cold, "dpop": run_dpop}[part](ctx, facts)
    except BenchError as e:
        print(f"run.py: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        ctx.cleanup()
    return 1 if ctx.failed else 0
