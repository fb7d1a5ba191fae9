#!/usr/bin/env python3
"""Load benchmark of the API with wrk: the warm path and the cold path.

  python3 benches/run.py                          # both parts, every stack
  python3 benches/run.py --only warm              # repeated tokens, 1000 users, Python peers
  python3 benches/run.py --only cold              # every token used once
  python3 benches/run.py --only cold --stacks ours-sqlite,axum --cold-tokens 2000

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

Raw wrk outputs and server logs go to results/raw/ (git-ignored). The exit
status is non-zero if a step fails, if a row of ours has non-2xx answers or
zero requests/s, if a cold run answered anything but 200 to any token or
left a token unanswered, if the users rows do not match, or if a requested
peer comparison failed.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import queue
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import chart  # noqa: E402  benches/chart.py: the SVG bar chart
REPO = HERE.parent
WRK_DIR = HERE / "wrk"
REPORT_LUA = WRK_DIR / "report.lua"
TOKENS_LUA = WRK_DIR / "tokens.lua"
COLD_LUA = WRK_DIR / "cold.lua"

NUSERS = 1000  # users in the warm path's round-robin route
OUR_AUDIENCE = "https://hello-world.example.com"  # what `dev` accepts
PEER_AUDIENCE = "https://bench.example/api"  # what the peers are started with
EXPRESS_DIR = Path("/tmp/peer-express")  # the peers' README: a writable copy
AXUM_TARGET = Path("/tmp/peer-axum-target")
AXUM_BIN = AXUM_TARGET / "release" / "axum-jwt-authorizer-peer"

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


class BenchError(Exception):
    """A failure that stops the current step; printed as one line."""

def machine_lines(ctx, facts, pinned):
    """The start of a report's "Machine" section: date, commit and how the cores were shared."""
    lines = ["## Machine", "", f"- date: {facts['date']}", f"- commit: {facts['commit']}"]
    if ctx.pin:
        lines.append(f"- cores (nproc): {facts['nproc']}; {pinned}")
    else:
        lines.append(f"- cores (nproc): {facts['nproc']}, shared by wrk and the server (unpinned)")
    return lines

def log(msg):
    print(f"== {msg}", file=sys.stderr, flush=True)


def warn(msg):
    print(f"run.py: {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ options


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
                   help="warm path: interleaved rounds per route, the median reported "
                        "(env ROUNDS; default %(default)s)")
    p.add_argument("--pin", type=zero_or_one, default=env_default("PIN", 1, zero_or_one),
                   help="1: server on core 0 with one worker, wrk (one thread) on core 1 with taskset; "
                        "0: both unpinned, server one worker per core, wrk -t2 (env PIN; default %(default)s)")
    p.add_argument("--port", type=positive, default=env_default("PORT", 6090, positive),
                   help="port of the server under test, ours and the cold peers' (env PORT; default %(default)s)")
    p.add_argument("--peers", type=zero_or_one, default=env_default("PEERS", 1, zero_or_one),
                   help="0: our server only, whatever --stacks says (env PEERS; default %(default)s)")
    p.add_argument("--only", choices=["warm", "cold"],
                   help="run one part only (default: warm, then cold)")
    p.add_argument("--stacks", type=stack_list, default=list(ALL_STACKS), metavar="LIST",
                   help="comma-separated: ours-sqlite, ours-postgres (or ours for both), django, flask, "
                        "axum, express (default: all). Warm: ours-sqlite, django, flask; "
                        "cold: ours-sqlite, ours-postgres, axum, express, flask")
    p.add_argument("--cold-tokens", type=positive, default=env_default("COLD_TOKENS", 60000, positive), metavar="N",
                   help="cold path: tokens per measured run (env COLD_TOKENS; default %(default)s)")
    p.add_argument("--cold-warmup-tokens", type=non_negative, metavar="N",
                   default=env_default("COLD_WARMUP_TOKENS", 2000, non_negative),
                   help="cold path: tokens of the discarded warm-up pass per stack, 0 for none "
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
                   metavar="URL", help="cold path: PostgreSQL server for ours-postgres, a fresh database is "
                                       "created and dropped there (env BENCH_POSTGRES_URL; default %(default)s)")
    p.add_argument("--peers-dir", type=Path, default=REPO.parent / "shared" / "peers", metavar="DIR",
                   help="the peers (default: ../shared/peers beside the repository)")
    p.add_argument("--mint-python", type=Path, metavar="PYTHON",
                   help="a Python with `cryptography`, to mint cold tokens (default: the peers' "
                        "virtualenv, $PEERS_VENV or /tmp/peers-venv, created with their setup.sh)")
    p.add_argument("--results-dir", type=Path, default=HERE / "results", metavar="DIR",
                   help="where results and raw/ go (default: benches/results; use another for smoke runs)")
    p.add_argument("--perf-record", action="store_true",
                   help="cold path: also `perf record -g` each server through each run, into "
                        "raw/perf-<run>.data, for `perf report -i` (where the time goes)")
    p.add_argument("--no-build", action="store_true",
                   help="skip `cargo build --release --locked` (the binary must exist)")
    return p.parse_args(argv)


# ------------------------------------------------------------------ machine helpers


def cpu_busy():
    """Percent of all CPU time not idle/iowait over 1 s (whole machine): a busy
    machine depresses every figure, so it is reported beside them."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        return v[3] + v[4], sum(v)
    i1, t1 = sample()
    time.sleep(1)
    i2, t2 = sample()
    total = t2 - t1
    return 100 * (total - (i2 - i1)) // total if total > 0 else 0


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def port_in_use(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def http_get(url, headers=None, timeout=5):
    """(status, body) of a GET; (None, error text) when nothing answered."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError as e:
        return None, str(e)


def run(cmd, **kw):
    """subprocess.run that raises BenchError with the command's output on failure."""
    kw.setdefault("text", True)
    kw.setdefault("capture_output", True)
    r = subprocess.run(cmd, **kw)
    if r.returncode != 0:
        out = ((r.stdout or "") + (r.stderr or "")).strip()
        raise BenchError(f"{' '.join(map(str, cmd))} failed (exit {r.returncode}): {out[-2000:]}")
    return r


def vm_hwm_kb(pid):
    """Peak resident set size of a process (VmHWM), in kB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise BenchError(f"no VmHWM in /proc/{pid}/status")


class Server:
    """A process under test (or helper) started by us, stopped by its PID only."""

    def __init__(self, name, cmd, env, cwd, log_path):
        self.name, self.log_path = name, log_path
        self.log_file = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def output(self):
        self.log_file.flush()
        return Path(self.log_path).read_text(errors="replace")

    def wait_http(self, url, timeout_s, want=200):
        """Polls `url` until it answers `want`; fails at once if the process dies."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise BenchError(f"{self.name} exited (code {self.proc.returncode}) before {url} answered; "
                                 f"its output:\n{self.output()}")
            if http_get(url, timeout=2)[0] == want:
                return
            time.sleep(0.1)
        raise BenchError(f"{self.name} did not answer {want} on {url} within {timeout_s} s; "
                         f"its output:\n{self.output()}")

    def stop(self):
        """TERM, up to 10 s to exit, then KILL (run.sh's stop_pid)."""
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


class Context:
    """What both parts share: settings, pinning, the binary, facts about the machine."""

    def __init__(self, args):
        self.args = args
        self.results = args.results_dir.resolve()
        self.raw = self.results / "raw"
        self.raw.mkdir(parents=True, exist_ok=True)
        self.perf_record = args.perf_record and shutil.which("perf") is not None
        # With PIN=1 the server runs one worker on core 0 and wrk one thread on
        # core 1, so that the load generator never steals the server's CPU
        # (unpinned, the two fight over both cores and p99 measures the scheduler).
        self.pin = bool(args.pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset"))
        if args.pin and not self.pin:
            warn("PIN=1 needs 2 cores and taskset; running unpinned")
        self.server_pin = ["taskset", "-c", "0"] if self.pin else []
        self.wrk_pin = ["taskset", "-c", "1"] if self.pin else []
        self.wrk_threads = 1 if self.pin else 2
        self.bin = None  # set by build()
        self.failed = False
        self.servers = []
        self.cleanups = []

    def start(self, name, cmd, env, cwd, log_path):
        s = Server(name, cmd, env, cwd, log_path)
        self.servers.append(s)
        return s

    def stop(self, server):
        server.stop()
        if server in self.servers:
            self.servers.remove(server)

    def cleanup(self):
        """Stops what we started (newest first), then runs the registered cleanups."""
        for s in reversed(self.servers):
            s.stop()
        self.servers.clear()
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:  # cleanup must not hide the real error
                warn(f"cleanup: {e}")
        self.cleanups.clear()

    def show(self, path):
        """A path as printed in reports: relative to the repository when inside it."""
        try:
            return str(Path(path).resolve().relative_to(REPO))
        except ValueError:
            return str(path)


def build(ctx):
    """cargo build --release --locked, then find the binary in cargo's target dir
    (CARGO_TARGET_DIR included: cargo metadata knows where it is)."""
    if not ctx.args.no_build:
        log("cargo build --release --locked")
        if subprocess.run(["cargo", "build", "--release", "--locked"], cwd=REPO).returncode != 0:
            raise BenchError("cargo build --release --locked failed")
    meta = json.loads(run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=REPO).stdout)
    ctx.bin = Path(meta["target_directory"]) / "release" / "actix-auth0-api"
    if not os.access(ctx.bin, os.X_OK):
        raise BenchError(f"{ctx.bin} missing after the build")


def ensure_wrk():
    """wrk from Debian's packages when missing (we are root on these machines)."""
    if shutil.which("wrk"):
        return
    log("installing wrk (apt-get)")
    subprocess.run("apt-get update -qq && apt-get install -y -qq wrk", shell=True,
                   stdout=sys.stderr, stderr=sys.stderr)
    if not shutil.which("wrk"):
        raise BenchError("wrk is not installed")


def machine_facts():
    """Facts printed with every result: figures mean nothing without them."""
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            m = re.match(r"^(model name|Hardware|cpu model|Model)\s*:\s*(.*)", line)
            if m:
                cpu = m.group(2)
                break
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no",
                            "--", "src", "Cargo.toml", "Cargo.lock"], capture_output=True, text=True).stdout
    if dirty.strip():
        commit += " (with uncommitted changes under src/ or Cargo.*)"
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit,
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": f"{platform.system()} {platform.release()} {platform.machine()}",
        "rustc": rustc or "rustc unknown",
        "wrk": ((wrk_v.stdout or "") + (wrk_v.stderr or "")).splitlines()[0].strip(),
    }


def parse_kv_line(text, prefix):
    """The key=value pairs of the one line starting with `prefix` (report.lua's WRK line)."""
    for line in text.splitlines():
        if line.startswith(prefix + " "):
            return dict(re.findall(r"(\w+)=(\S+)", line))
    return None


def shell_join(args):
    """The arguments as run.sh showed them: those with spaces in double quotes."""
    return " ".join(f'"{a}"' if " " in a else a for a in args)


def fmt_ratio(r):
    return f"{r:.2f}" if r >= 0.1 else f"{r:.3f}"


def command_line(args):
    """The exact command that reproduces this run, for the reports."""
    parts = ["python3 benches/run.py", f"--duration {args.duration}", f"--warmup {args.warmup}",
             f"--conns {args.conns}", f"--rounds {args.rounds}", f"--pin {args.pin}", f"--port {args.port}",
             f"--peers {args.peers}"]
    if args.only:
        parts.append(f"--only {args.only}")
    if args.stacks != ALL_STACKS:
        parts.append(f"--stacks {','.join(args.stacks)}")
    if args.only != "warm":
        parts += [f"--cold-tokens {args.cold_tokens}", f"--cold-warmup-tokens {args.cold_warmup_tokens}"]
        if args.cold_subs != "sequential":
            parts.append(f"--cold-subs {args.cold_subs}")
    return " ".join(parts)


# ------------------------------------------------------------------ our server


def our_env(ctx, database_url):
    """The environment of every run of our binary. (Its working directory is
    always a fresh temporary folder, so a .env in the repository, read by
    dotenvy, cannot change what is measured.)"""
    env = dict(os.environ, HOST="127.0.0.1", PORT=str(ctx.args.port), DATABASE_URL=str(database_url),
               RUST_LOG="warn")
    env.pop("WORKERS", None)
    if ctx.pin:
        env["WORKERS"] = "1"
    return env


def app(ctx, env, workdir, *args):
    """Runs the binary with the benchmark's environment; its stdout."""
    return run([str(ctx.bin), *args], env=env, cwd=workdir).stdout


def start_ours(ctx, name, database_url, workdir, data_dir, log_path, **extra_env):
    """`dev` on 127.0.0.1:PORT (pinned with one worker under PIN=1), ready on /readyz."""
    if port_in_use(ctx.args.port):
        raise BenchError(f"something already listens on 127.0.0.1:{ctx.args.port}; pass --port")
    env = dict(our_env(ctx, database_url), **extra_env)
    s = ctx.start(name, [*ctx.server_pin, str(ctx.bin), "dev", "--data-dir", str(data_dir)], env, workdir, log_path)
    s.wait_http(f"http://127.0.0.1:{ctx.args.port}/readyz", 30)
    return s


def users_jsonl(ctx, env, workdir):
    """The users table, one JSON object per line, through our own `users --json`."""
    return [line for line in app(ctx, env, workdir, "users", "--json").splitlines() if line.strip()]


# ------------------------------------------------------------------ warm path


def run_wrk(ctx, args):
    """One wrk run on core 1 (PIN=1); its stdout. A failed wrk fails the step."""
    r = subprocess.run([*ctx.wrk_pin, "wrk", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f"wrk {' '.join(args)} failed (exit {r.returncode}): {r.stdout}{r.stderr}")
    return r.stdout


def create_users(base, tokens):
    """One request per token on one keep-alive connection: the first sight of
    each sub, so that its row exists before the 1000-user route is measured."""
    import http.client
    conn = http.client.HTTPConnection(base.split("//", 1)[1], timeout=10)
    codes = {}
    try:
        for t in tokens:
            conn.request("GET", "/api/private", headers={"Authorization": f"Bearer {t}"})
            r = conn.getresponse()
            r.read()
            codes[r.status] = codes.get(r.status, 0) + 1
    finally:
        conn.close()
    return codes


WARM_LABELS = {"public": "/api/public", "private-1token": "/api/private (1 token)",
               "private-1000users": f"/api/private ({NUSERS} users round-robin)"}


def run_warm(ctx, facts):
    """The warm path, as bench/run.sh did it: ours, then the Python peers,
    then the table, latest.md, results.json and the chart."""
    a = ctx.args
    ours = "ours-sqlite" in a.stacks
    peers = [p for p in WARM_PEERS if p in a.stacks] if a.peers else []
    for pattern in ("ours-*.txt", "rounds-*.txt", "server.log", "peers*", "users.jsonl", "rss.txt"):
        for f in ctx.raw.glob(pattern):
            f.unlink()

    busy_before, load_before = cpu_busy(), loadavg()
    log(f"machine CPU busy before the run: {busy_before}% (loadavg {load_before})")
    if busy_before >= 10:
        warn(f"WARNING: machine not idle before the run ({busy_before}% busy); figures will be depressed")
    measured = warm_ours(ctx) if ours else None
    peer_rows, peer_note, peer_failed = run_warm_peers(ctx, peers)
    busy = (busy_before, load_before, cpu_busy())
    summary = report_warm(ctx, facts, measured, peer_rows, peer_note, busy)

    for key, s in summary.items():
        if s["non2xx"] != 0 or s["rps"] <= 0:
            warn(f"FAILED: ours {WARM_LABELS[key]}: rps={s['rps']} non2xx={s['non2xx']}")
            ctx.failed = True
    if peer_failed:
        ctx.failed = True


def warm_ours(ctx):
    """Our server on SQLite in a fresh folder: 1000 users' rows created and
    checked first, then the three routes measured in interleaved rounds.
    Returns the rounds, peak RSS and what the report shows of the commands."""
    a = ctx.args
    work = Path(tempfile.mkdtemp(prefix="actix-auth0-bench."))
    ctx.cleanups.append(lambda: shutil.rmtree(work, ignore_errors=True))
    data_dir, db = work / "dev-issuer", work / "bench.db"
    env = our_env(ctx, db)
    base = f"http://127.0.0.1:{a.port}"
    server_cmd = (f"PORT={a.port} DATABASE_URL=<tmp>/bench.db RUST_LOG=warn HOST=127.0.0.1"
                  f"{' WORKERS=1' if ctx.pin else ''} {' '.join(ctx.server_pin + [''])}"
                  f"target/release/actix-auth0-api dev --data-dir <tmp>/dev-issuer")
    log(f"starting: {server_cmd}   (<tmp> = {work})")
    server = start_ours(ctx, "our server", db, work, data_dir, ctx.raw / "server.log")
    log(f"server ready (pid {server.pid})")

    token = app(ctx, env, work, "token", "--sub", "bench", "--data-dir", str(data_dir), "--ttl", "2h").strip()
    tokens_file = work / "tokens.txt"
    tokens_file.write_text(app(ctx, env, work, "token", "--sub", "bench", "--data-dir", str(data_dir),
                               "--ttl", "2h", "--count", str(NUSERS)))
    tokens = [t for t in tokens_file.read_text().splitlines() if t]
    if len(tokens) != NUSERS:
        raise BenchError(f"expected {NUSERS} tokens, got {len(tokens)}")
    code = http_get(f"{base}/api/private", {"Authorization": f"Bearer {token}"})[0]
    if code != 200:
        raise BenchError(f"/api/private with the bench token answered {code}, not 200")

    log(f"creating the {NUSERS} users (one request per token)")
    codes = create_users(base, tokens)
    if codes.get(200, 0) != NUSERS:
        raise BenchError(f"{NUSERS - codes.get(200, 0)} of {NUSERS} first requests with the users' tokens "
                         f"were not 200: {codes}")
    nusers, rows = 0, []
    for _ in range(50):
        rows = users_jsonl(ctx, env, work)
        nusers = sum(1 for r in rows if re.fullmatch(r"bench-[0-9]+", json.loads(r).get("sub", "")))
        if nusers >= NUSERS:
            break
        time.sleep(0.1)
    (ctx.raw / "users.jsonl").write_text("\n".join(rows) + "\n")
    if nusers < NUSERS:
        raise BenchError(f"users table has {nusers} bench-N rows, expected {NUSERS}")
    log(f"users table: {nusers} bench-N rows ({len(rows)} rows in all)")

    t = ctx.wrk_threads
    routes = [
        ("public", f"{base}/api/public", ["-s", str(REPORT_LUA)], []),
        ("private-1token", f"{base}/api/private", ["-s", str(REPORT_LUA), "-H", f"Authorization: Bearer {token}"], []),
        ("private-1000users", f"{base}/api/private", ["-s", str(TOKENS_LUA)], ["--", str(tokens_file), str(t)]),
    ]
    rounds, shown = {}, []
    # Rounds interleave the routes, so that a slow spell of the machine hits
    # them all alike; the median round of each route is reported.
    for rnd in range(1, a.rounds + 1):
        for key, url, opts, sargs in routes:
            common = [f"-t{t}", f"-c{a.conns}"]
            log(f"{key}: warm-up {a.warmup}s")
            run_wrk(ctx, [*common, f"-d{a.warmup}s", *opts, url, *sargs])
            log(f"{key}: measuring {a.duration}s")
            args = [*common, f"-d{a.duration}s", "--latency", *opts, url, *sargs]
            # never write the token itself
            shown.append(" ".join(ctx.wrk_pin + ["wrk", shell_join(args)]).replace(token, "$TOKEN")
                         .replace(str(work), "<tmp>").replace(str(HERE) + "/", "benches/"))
            out = run_wrk(ctx, args)
            (ctx.raw / f"ours-{key}-round{rnd}.txt").write_text(out)
            kv = parse_kv_line(out, "WRK")
            if kv is None:
                raise BenchError(f"no WRK summary line from wrk for {key}:\n{out}")
            r = {"rps": float(kv["rps"]), "p50_ms": round(int(kv["p50_us"]) / 1000, 2),
                 "p99_ms": round(int(kv["p99_us"]) / 1000, 2), "non2xx": int(kv["non2xx"]),
                 "sock": [int(kv[k]) for k in ("sock_connect", "sock_read", "sock_write", "sock_timeout")],
                 "requests": int(kv["requests"])}
            rounds.setdefault(key, []).append(r)
            log(f"{key} (round {rnd}): rps={r['rps']} p50={r['p50_ms']:.2f}ms p99={r['p99_ms']:.2f}ms "
                f"non2xx={r['non2xx']} sock={'/'.join(map(str, r['sock']))}")

    if not server.alive():
        raise BenchError(f"the server died during the run:\n{server.output()}")
    hwm = vm_hwm_kb(server.pid)
    log(f"server peak RSS (VmHWM): {hwm / 1024:.1f} MB")
    (ctx.raw / "rss.txt").write_text(f"VmHWM {hwm} kB\n")
    ctx.stop(server)
    return {"rounds": rounds, "rss_mb": round(hwm / 1024, 1), "server_cmd": server_cmd, "wrk_cmds": shown}


def summarize(rounds):
    """The round with the median requests/s stands for the route (its rps,
    p50, p99; the lower middle one for an even count, as run.sh's sort did);
    non-2xx and socket errors are summed over all rounds."""
    summary = {}
    for key, rs in rounds.items():
        med = sorted(rs, key=lambda r: r["rps"])[(len(rs) + 1) // 2 - 1]
        summary[key] = dict(med, non2xx=sum(r["non2xx"] for r in rs),
                            sock=[sum(r["sock"][i] for r in rs) for i in range(4)])
        log(f"{key}: median of {len(rs)} rounds rps={med['rps']} p50={med['p50_ms']:.2f}ms "
            f"p99={med['p99_ms']:.2f}ms non2xx={summary[key]['non2xx']}")
    return summary


def report_warm(ctx, facts, measured, peer_rows, peer_note, busy):
    """The warm table (printed and in latest.md), results.json and the chart.
    Returns our summarized rows, for the exit status."""
    a = ctx.args
    busy_before, load_before, busy_after = busy
    rounds = measured["rounds"] if measured else {}
    rss_mb = measured["rss_mb"] if measured else None
    summary = summarize(rounds)
    pub = summary.get("public", {}).get("rps")

    def ratio(v):
        return fmt_ratio(v / pub) if pub else "n/a"

    table = ["| server | route | requests/s | ratio to our /api/public | p50 ms | p99 ms | non-2xx | peak RSS MB |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    json_rows, sock_parts = [], []
    for key, s in summary.items():
        label, sock = WARM_LABELS[key], "/".join(map(str, s["sock"]))
        table.append(f"| ours | {label} | {s['rps']:.0f} | {ratio(s['rps'])} | {s['p50_ms']:.2f} | "
                     f"{s['p99_ms']:.2f} | {s['non2xx']} | {rss_mb:.1f} |")
        json_rows.append({"server": "ours", "route": label, "rps": s["rps"], "p50_ms": s["p50_ms"],
                          "p99_ms": s["p99_ms"], "non2xx": s["non2xx"], "socket_errors": sock,
                          "peak_rss_mb": rss_mb, "rounds_rps": [r["rps"] for r in rounds[key]]})
        sock_parts.append(f"ours {label} {sock}")
    for p in peer_rows:
        table.append(f"| {p['server']} | {p['route']} | {p['rps']:.0f} | {ratio(p['rps'])} | {p['p50_ms']:.2f} | "
                     f"{p['p99_ms']:.2f} | {p['non2xx']} | n/a |")
        json_rows.append(dict(p, peak_rss_mb=None))
        sock_parts.append(f"{p['server']} {p['route']} {p['socket_errors']}")
    table = "\n".join(table)
    sock_line = "socket errors (connect/read/write/timeout): " + "".join(f"{s}; " for s in sock_parts).rstrip()

    # The same round's routes ran back to back: their ratio is the fair one.
    def paired(key):
        rs = sorted(r["rps"] / p["rps"] for r, p in zip(rounds[key], rounds["public"]))
        return f"median {rs[(len(rs) + 1) // 2 - 1]:.2f}, worst {rs[0]:.2f}"

    paired_line = vs_line = ""
    if measured:
        worst_p99 = max(r["p99_ms"] for rs in rounds.values() for r in rs)
        paired_line = (f"per round, /api/private ÷ /api/public of the same round: 1 token {paired('private-1token')}; "
                       f"{NUSERS} users {paired('private-1000users')}. "
                       f"Worst p99 of any round of ours: {worst_p99:g} ms.")
        django = next((p for p in peer_rows if p["server"] == "django" and p["route"] == "/api/private"), None)
        if django:
            vs_line = (f"ours /api/private vs django /api/private: "
                       f"{summary['private-1token']['rps'] / django['rps']:.1f}x\n"
                       f"ours /api/private ({NUSERS} users) vs django /api/private: "
                       f"{summary['private-1000users']['rps'] / django['rps']:.1f}x")

    data = {
        "title": f"Requests per second (wrk -t{ctx.wrk_threads} -c{a.conns}, {a.duration}s after {a.warmup}s warm-up)",
        "subtitle": f"{facts['date']}, commit {facts['commit']}, {facts['nproc']} cores: {facts['cpu']}",
        "date": facts["date"], "commit": facts["commit"], "nproc": facts["nproc"],
        "duration_s": a.duration, "warmup_s": a.warmup, "connections": a.conns, "wrk_threads": ctx.wrk_threads,
        "rounds": a.rounds, "pinned": ctx.pin, "rows": json_rows,
    }
    md = ["# Benchmark results", "", table, "", sock_line, ""]
    md += [line + "\n" for line in (paired_line, vs_line, peer_note) if line]
    md += ["![requests per second](requests-per-second.svg)", ""]
    md += machine_lines(ctx, facts, "our server pinned to core 0 with one worker, wrk (one thread) to core 1; "
                        "the peers' harness runs unpinned (gunicorn 2 workers, wrk -t2)")
    md += [f"- CPU: {facts['cpu']}", f"- kernel: {facts['kernel']}", f"- {facts['rustc']}; {facts['wrk']}",
           f"- machine CPU busy before the run: {busy_before}% (loadavg {load_before}); after: {busy_after}%",
           "", "## Command", "", "```", command_line(a), "```", ""]
    if measured:
        md += [f"Server: `{measured['server_cmd']}` (cwd and <tmp> a fresh `mktemp -d` folder).",
               f"Measured runs (each after a {a.warmup}s warm-up with the same arguments; $TOKEN is one token, "
               f"tokens.txt holds {NUSERS} tokens for subs bench-1..bench-{NUSERS}, all rows created before the run):",
               "", "```", *measured["wrk_cmds"], "```", ""]
    md += ["## Notes", "",
           "- non-2xx is wrk's status-error count (HTTP status > 399); no route redirects.",
           "- peak RSS is the server's VmHWM after all three of our runs (one process), in MiB (raw/rss.txt).",
           "- the table's ratio divides medians of the routes, which may come from different rounds; "
           "the per-round line above pairs each round's routes.",
           f"- the {NUSERS}-user route sends requests formatted once per token at wrk's start "
           "(benches/wrk/tokens.lua) and picks the next one from Lua; the other routes send one fixed request."]
    if peer_rows:
        md.append("- peers: gunicorn with 2 sync workers, which answer `Connection: close` (a new TCP connection per "
                  "request); their output is in raw/peers.txt, their wrk outputs and logs in raw/peers-*. "
                  "They were run after our server was stopped.")
    md.append(f"- raw wrk outputs: {ctx.show(ctx.raw)}/ (not committed).")
    if json_rows:
        (ctx.results / "results.json").write_text(json.dumps(data, indent=2) + "\n")
        chart.write(data, ctx.results / "requests-per-second.svg")
        (ctx.results / "latest.md").write_text("\n".join(md) + "\n")

    print()
    print(table)
    print()
    print(sock_line)
    for line in (paired_line, vs_line, peer_note):
        if line:
            print(line)
    r = ctx.show(ctx.results)
    print(f"(written: {r}/latest.md, {r}/results.json, {r}/requests-per-second.svg, raw in {r}/raw/)")
    return summary


def peers_venv():
    return Path(os.environ.get("PEERS_VENV", "/tmp/peers-venv"))


def peers_setup(ctx, log_path):
    """The peers' setup.sh: their virtualenv (Flask, Django, Authlib, gunicorn,
    cryptography). Idempotent; output to raw/ and shown on failure."""
    peers_dir = ctx.args.peers_dir
    log(f"peers: bash {peers_dir}/setup.sh")
    with open(log_path, "w") as f:
        r = subprocess.run(["bash", str(peers_dir / "setup.sh")], cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        print("\n".join(Path(log_path).read_text().splitlines()[-20:]), file=sys.stderr)
        raise BenchError(f"setup.sh failed (see {ctx.show(log_path)})")


def run_warm_peers(ctx, peers):
    """Django and Flask through the peers' own bench.sh (unpinned, gunicorn 2
    workers, wrk -t2), after our server has stopped. Returns (rows, note, failed)."""
    a = ctx.args
    if not peers:
        return [], "peer comparison skipped (PEERS=0)" if not a.peers else "", False
    bench_sh = a.peers_dir / "bench.sh"
    if not bench_sh.is_file():
        return [], f"peer comparison skipped ({bench_sh} not found)", False
    raw = ctx.show(ctx.raw)
    try:
        peers_setup(ctx, ctx.raw / "peers-setup.txt")
    except BenchError as e:
        warn(str(e))
        return [], f"peer comparison FAILED: setup.sh failed (see {raw}/peers-setup.txt)", True
    log(f"peers: DURATION={a.duration} WARMUP={a.warmup} CONNS={a.conns} bash {bench_sh} {' '.join(peers)}")
    env = dict(os.environ, DURATION=str(a.duration), WARMUP=str(a.warmup), CONNS=str(a.conns))
    out_lines = []
    with subprocess.Popen(["bash", str(bench_sh), *peers], cwd=REPO, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as p:
        for line in p.stdout:
            sys.stderr.write(line)
            out_lines.append(line)
    out = "".join(out_lines)
    (ctx.raw / "peers.txt").write_text(out)
    if p.returncode != 0:
        return [], f"peer comparison FAILED: bench.sh failed (see {raw}/peers.txt)", True
    # summary lines: <peer> <route> rps=... p50=...ms p99=...ms non2xx=... sock_err(c/r/w/t)=a/b/c/d
    rows = []
    summary = out.split("\n## summary", 1)
    line_re = re.compile(r"^([a-z]+)\s+(/api/public|/api/private)\s+rps=([\d.]+)\s+p50=([\d.]+)ms\s+"
                         r"p99=([\d.]+)ms\s+non2xx=(\d+)\s+sock_err\([^)]*\)=(\d+/\d+/\d+/\d+)", re.M)
    if len(summary) == 2:
        for m in line_re.finditer(summary[1]):
            rows.append({"server": m[1], "route": m[2], "rps": float(m[3]), "p50_ms": float(m[4]),
                         "p99_ms": float(m[5]), "non2xx": int(m[6]), "socket_errors": m[7]})
        # bench.sh leaves its wrk outputs and server logs in a /tmp/peers-logs.*
        # folder: move them beside ours
        m = re.search(r"logs in ([^)]*)\)", summary[1].splitlines()[0])
        if m and m[1].startswith("/tmp/peers-logs.") and os.path.isdir(m[1]):
            for f in Path(m[1]).iterdir():
                if f.is_file():
                    shutil.copy(f, ctx.raw / f"peers-{f.name}")
            shutil.rmtree(m[1], ignore_errors=True)
    if not rows:
        return [], f"peer comparison FAILED: no summary lines in bench.sh output (see {raw}/peers.txt)", True
    return rows, "", False


# ------------------------------------------------------------------ cold path: tokens


def mint_worker():
    """`python run.py --mint-worker` under a Python with `cryptography` (the
    peers' venv): reads a JSON job list on stdin, writes one token per line per
    job. RS256 as an Auth0 tenant signs: header {alg, typ, kid}, claims {iss,
    sub, aud, iat, exp, jti}. The only code here outside the standard library,
    imported only in this mode."""
    import base64
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    def b64url(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    spec = json.load(sys.stdin)
    key = serialization.load_pem_private_key(Path(spec["key"]).read_bytes(), password=None)
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": spec["kid"]}, separators=(",", ":")).encode())
    pad, sha = padding.PKCS1v15(), hashes.SHA256()
    for job in spec["jobs"]:
        with open(job["out"], "w") as f:
            for i in range(job["start"], job["start"] + job["count"]):
                sub = f"{job['sub_prefix']}{i}"
                if spec.get("random_subs"):
                    # As Auth0 makes them (a connection, then 24 hex digits), the same for
                    # the same prefix and i, so that the known-users pass finds the rows.
                    sub = "auth0|" + hashlib.sha256(sub.encode()).hexdigest()[:24]
                claims = {"iss": spec["iss"], "sub": sub, "aud": spec["aud"],
                          "iat": spec["iat"], "exp": spec["exp"], "jti": f"{job['jti_prefix']}{i}"}
                signing_input = header + "." + b64url(json.dumps(claims, separators=(",", ":")).encode())
                sig = key.sign(signing_input.encode("ascii"), pad, sha)
                f.write(signing_input + "." + b64url(sig) + "\n")


class Minter:
    """Mints the cold path's token lists before any timed window, in parallel
    worker processes (one per core: 60 000 RSA signatures take about a minute
    on one core)."""

    def __init__(self, ctx, python):
        self.ctx, self.python = ctx, python
        self.cache = {}

    def token_sets(self, key_path, kid, iss, aud, workdir):
        """{kind: (path, count)} for warmup/new/known, minted once per (issuer,
        audience, key id) and reused for every stack that trusts them: each
        stack is a fresh process with an empty cache, so the tokens are new to it.
        new: subs cold-1..N; known: the same subs, other jti; warmup: subs coldwarm-i
        (with --cold-subs random, each hashed into auth0|<24 hex digits>)."""
        ident = (iss, aud, kid, str(key_path), self.ctx.args.cold_subs)
        if ident in self.cache:
            return self.cache[ident]
        a = self.ctx.args
        n, w = a.cold_tokens, a.cold_warmup_tokens
        nonce = secrets.token_hex(4)
        plan = {"warmup": ("coldwarm-", f"{nonce}-w-", w), "new": ("cold-", f"{nonce}-n-", n),
                "known": ("cold-", f"{nonce}-k-", n)}
        workers = max(1, os.cpu_count() or 1)
        now = int(time.time())
        specs = [{"key": str(key_path), "kid": kid, "iss": iss, "aud": aud, "iat": now, "exp": now + 4 * 3600,
                  "random_subs": a.cold_subs == "random", "jobs": []} for _ in range(workers)]
        parts = {}
        for kind, (sub_prefix, jti_prefix, count) in plan.items():
            parts[kind] = []
            for j in range(workers):
                lo, hi = count * j // workers + 1, count * (j + 1) // workers + 1
                if hi > lo:
                    out = workdir / f"tokens-{kind}.part{j}"
                    specs[j]["jobs"].append({"out": str(out), "sub_prefix": sub_prefix, "jti_prefix": jti_prefix,
                                             "start": lo, "count": hi - lo})
                    parts[kind].append(out)
        log(f"minting {sum(c for _, _, c in plan.values())} RS256 tokens for {iss} ({workers} processes)")
        t0 = time.monotonic()
        procs = [subprocess.Popen([str(self.python), str(Path(__file__).resolve()), "--mint-worker"],
                                  stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in specs]
        for p, spec in zip(procs, specs):
            p.stdin.write(json.dumps(spec))
            p.stdin.close()
        for p in procs:
            err = p.stderr.read()
            if p.wait() != 0:
                raise BenchError(f"minting tokens failed: {err.strip()[-2000:]}")
        result, seen = {}, set()
        for kind, (_, _, count) in plan.items():
            path = workdir / f"tokens-{kind}.txt"
            with open(path, "w") as out:
                for part in parts[kind]:
                    out.write(part.read_text())
                    part.unlink()
            lines = [t for t in path.read_text().splitlines() if t]
            seen.update(lines)
            if len(lines) != count:
                raise BenchError(f"minted {len(lines)} {kind} tokens, expected {count}")
            result[kind] = (path, count)
        if len(seen) != n + n + w:
            raise BenchError("minted tokens are not all distinct")
        log(f"minted in {time.monotonic() - t0:.0f} s")
        self.cache[ident] = result
        return result


def ensure_mint_python(ctx):
    """The Python that signs cold tokens: --mint-python, else the peers'
    virtualenv (created with their setup.sh if missing). It must import
    `cryptography`: the standard library has no RSA."""
    py = ctx.args.mint_python or peers_venv() / "bin" / "python"
    if ctx.args.mint_python is None and not os.access(py, os.X_OK):
        if not (ctx.args.peers_dir / "setup.sh").is_file():
            raise BenchError(f"{py} missing and no {ctx.args.peers_dir}/setup.sh to create it; "
                             "pass --mint-python (a Python with `cryptography`)")
        peers_setup(ctx, ctx.raw / "cold-peers-setup.txt")
    r = subprocess.run([str(py), "-c", "import cryptography"], capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f"{py} cannot import cryptography: {r.stderr.strip()}")
    return py


def published_kid(jwks_url):
    """The kid a server publishes: tokens must name it, as Auth0's do."""
    status, body = http_get(jwks_url)
    if status != 200:
        raise BenchError(f"{jwks_url} answered {status}: {body!r}")
    keys = json.loads(body)["keys"]
    if len(keys) != 1:
        raise BenchError(f"{jwks_url} publishes {len(keys)} keys, expected 1")
    return keys[0]["kid"]


# ------------------------------------------------------------------ cold path: runs


def openssl_rsa_speed(ctx):
    """RSA-2048 signatures verified per second on the server's core: the floor
    cost of a new token, so the ceiling of any cold row on one core."""
    cmd = [*ctx.server_pin, "openssl", "speed", "-seconds", "3", "rsa2048"]
    log(" ".join(cmd))
    out = run(cmd).stdout
    (ctx.raw / "cold-openssl-speed.txt").write_text(out)
    m = re.search(r"^rsa\s+2048\s+bits\s+[\d.]+s\s+[\d.]+s\s+([\d.]+)\s+([\d.]+)", out, re.M)
    if not m:
        raise BenchError(f"no 'rsa 2048 bits' line in openssl speed output:\n{out}")
    version = run(["openssl", "version"]).stdout.strip()
    return {"sign_per_s": float(m[1]), "verify_per_s": float(m[2]), "command": " ".join(cmd), "openssl": version}


def cold_wrk(ctx, url, tokens_file, count, raw_name):
    """One cold run: wrk with cold.lua over `tokens_file`. wrk itself would
    sleep its whole -d, so we send it SIGINT (it then reports at once) as soon
    as every thread has printed COLD-THREAD-DONE; -d is only the bound
    (--cold-timeout). Returns cold.lua's COLD record plus the command."""
    a = ctx.args
    t = ctx.wrk_threads
    args = [f"-t{t}", f"-c{max(a.conns, t)}", f"-d{a.cold_timeout}s", "--timeout", "10s", "-s", str(COLD_LUA),
            url, "--", str(tokens_file), str(t)]
    cmd = [*ctx.wrk_pin, "wrk", *args]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = queue.Queue()

    def reader():
        for line in p.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=reader, daemon=True).start()
    out, done_threads, interrupted = [], 0, False
    deadline = time.monotonic() + a.cold_timeout + 60
    while True:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            p.kill()
            raise BenchError(f"wrk did not end within {a.cold_timeout + 60} s: {''.join(out)}")
        if line is None:
            break
        out.append(line)
        if line.startswith("COLD-THREAD-DONE"):
            done_threads += 1
            if done_threads == t and not interrupted:
                p.send_signal(signal.SIGINT)
                interrupted = True
    p.wait()
    text = "".join(out)
    (ctx.raw / raw_name).write_text(" ".join(cmd) + "\n" + text)
    if p.returncode != 0:
        raise BenchError(f"wrk failed (exit {p.returncode}):\n{text}")
    rec = None
    for line in text.splitlines():
        if line.startswith("COLD "):
            rec = json.loads(line[5:])
    if rec is None:
        raise BenchError(f"no COLD line from wrk:\n{text}")
    problems = []
    if rec["tokens"] != count:
        problems.append(f"the script loaded {rec['tokens']} tokens, the file has {count}")
    if rec["threads_finished"] != rec["threads"] or rec["answered"] != count:
        problems.append(f"{rec['answered']} of {count} tokens answered "
                        f"({rec['threads_finished']} of {rec['threads']} threads finished within {a.cold_timeout} s)")
    if rec["sent"] != rec["answered"] or rec["unreserved"]:
        problems.append(f"sent {rec['sent']}, answered {rec['answered']}, unreserved requests {rec['unreserved']}")
    if rec["ok200"] != rec["answered"]:
        problems.append(f"{rec['answered'] - rec['ok200']} of {rec['answered']} answers were not 200 "
                        f"({rec['non2xx']} non-2xx, {rec['other2xx']} other 2xx)")
    socks = [rec[k] for k in ("sock_connect", "sock_read", "sock_write", "sock_timeout")]
    if any(socks):
        problems.append(f"socket errors (connect/read/write/timeout) {'/'.join(map(str, socks))}")
    rec["problems"] = problems
    rec["command"] = " ".join(ctx.wrk_pin + ["wrk", shell_join(args)])
    return rec


def process_tree(pid):
    """`pid` and every process descending from it (gunicorn's workers)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    return tree


class CpuCount:
    """`perf stat` on a server's processes through one cold run: the CPU time
    they used, which the neighbours' load moves less than requests per
    second (it is the server's own cost, not its share of the core), and
    their instructions where the machine has hardware counters (virtual
    machines often have none). Nothing (and no failure) when perf is
    missing or cannot attach."""

    EVENTS = "task-clock,instructions:u,instructions:k"

    def __init__(self, ctx, pid, name):
        self.proc, self.out = None, ctx.raw / f"perf-{name}.csv"
        if pid is None or not shutil.which("perf"):
            return
        pids = ",".join(map(str, process_tree(pid)))
        self.proc = subprocess.Popen(["perf", "stat", "--per-thread", "-x,", "-e", self.EVENTS, "-p", pids,
                                      "-o", str(self.out)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.record = None
        if ctx.perf_record:
            self.record = subprocess.Popen(["perf", "record", "-g", "-q", "-p", pids,
                                            "-o", str(ctx.raw / f"perf-{name}.data")],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def finish(self, requests):
        """Per request: CPU microseconds, and user and kernel instructions
        when counted; {} if perf did not run."""
        if self.proc is None:
            return {}
        for proc in filter(None, [self.record, self.proc]):
            proc.send_signal(signal.SIGINT)
        if self.record is not None:
            try:
                self.record.wait(60)
            except subprocess.TimeoutExpired:
                self.record.kill()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return {}
        counts, threads = {}, {}
        for line in self.out.read_text(errors="replace").splitlines():
            # --per-thread: "<comm>-<tid>,<count>,<unit>,<event>,..."
            fields = line.split(",")
            if len(fields) > 3 and fields[3] in self.EVENTS.split(","):
                try:
                    count = float(fields[1])
                except ValueError:
                    continue  # "<not counted>", "<not supported>"
                counts[fields[3]] = counts.get(fields[3], 0.0) + count
                if fields[3] == "task-clock":
                    thread = fields[0].rsplit("-", 1)[0]
                    threads[thread] = threads.get(thread, 0.0) + count
        if "task-clock" not in counts or not requests:
            return {}
        per = {"cpu_us": counts["task-clock"] * 1000 / requests,  # task-clock is in ms
               "threads_us": {name: round(ms * 1000 / requests, 2) for name, ms in sorted(threads.items())
                              if ms * 1000 / requests >= 0.05}}
        if "instructions:u" in counts and "instructions:k" in counts:
            per["instructions_user"] = counts["instructions:u"] / requests
            per["instructions_kernel"] = counts["instructions:k"] / requests
        return per


def per_request_text(per):
    """The log's words for a run's per-request cost."""
    if not per:
        return ""
    text = f", {per['cpu_us']:.1f} µs CPU a request"
    if len(per.get("threads_us", {})) > 1:
        text += " (" + ", ".join(f"{name} {us:.1f}" for name, us in per["threads_us"].items()) + ")"
    if "instructions_user" in per:
        text += f" ({per['instructions_user']:.0f} + {per['instructions_kernel']:.0f} instructions, user + kernel)"
    return text


def users_commits(metrics_url):
    """Transactions and rows the users writer has committed, from its
    `users_write_batch_rows` histogram."""
    status, body = http_get(metrics_url)
    if status != 200:
        raise BenchError(f"{metrics_url} answered {status}")
    found = {}
    for line in body.decode().splitlines():
        for key in ("count", "sum"):
            if line.startswith(f"users_write_batch_rows_{key} "):
                found[key] = float(line.split()[1])
    return found.get("count", 0.0), found.get("sum", 0.0)


def cold_passes(ctx, stack, base, token_sets, pid, users=None, commits=None):
    """The three passes of one stack: warm-up (discarded), new users, known
    users with new tokens, with the server's (`pid`) CPU counted through
    each. `users` (ours only) counts the users rows: rows created must equal
    the 200s answered (none in the known-users pass); `commits` (ours only)
    counts the writer's transactions, for the rows each one wrote."""
    label = COLD_LABELS[stack]
    status = http_get(f"{base}/api/private")[0]
    if status != 401:
        raise BenchError(f"/api/private without a token answered {status}, not 401")
    runs = {}
    for kind in ("warmup", "new", "known"):
        path, count = token_sets[kind]
        if count == 0:
            continue
        rows_before = users() if users else None
        commits_before = commits() if commits else None
        log(f"{label}: cold {COLD_KINDS[kind]}, {count} tokens")
        settle()
        cpu = CpuCount(ctx, pid, f"cold-{stack}-{kind}")
        rec = cold_wrk(ctx, f"{base}/api/private", path, count, f"cold-{stack}-{kind}.txt")
        rec["per_request"] = cpu.finish(rec["answered"])
        if commits:
            transactions, rows = (after - before for after, before in zip(commits(), commits_before))
            rec["commits"] = int(transactions)
            rec["rows_per_commit"] = round(rows / transactions, 1) if transactions else None
        if users:
            expected = rec["ok200"] if kind in ("warmup", "new") else 0
            created = None
            for _ in range(50):  # rows exist before the 200 is sent; allow a moment anyway
                created = users() - rows_before
                if created == expected:
                    break
                time.sleep(0.1)
            rec["rows_before"], rec["rows_created"] = rows_before, created
            if created != expected:
                rec["problems"].append(f"users rows created {created}, expected {expected} "
                                       f"({rec['ok200']} 200s answered)")
        log(f"{label}: {COLD_KINDS[kind]}: {rec['rps']:.0f} req/s over {rec['window_s']:.2f} s, "
            f"p50 {rec['p50_us'] / 1000:.2f} ms, p99 {rec['p99_us'] / 1000:.2f} ms, 200s {rec['ok200']}/{count}"
            + (f", rows created {rec['rows_created']}" if users else "")
            + (f" in {rec['commits']} commits" if rec.get("commits") else "")
            + per_request_text(rec["per_request"]))
        runs[kind] = rec
        if rec["problems"]:
            raise BenchError(f"{COLD_KINDS[kind]}: " + "; ".join(rec["problems"]))
    path, count = token_sets["known"]
    if count:
        with open(path) as tokens:
            runs["repeat"] = repeat_pass(ctx, stack, base, tokens.readline().strip(), pid)
    return runs


def settle():
    """Writes the machine's dirty pages back before a timed run, so that an
    earlier step's writeback (npm ci, minted token files, another stack's
    database) neither takes CPU from the run nor slows its fsyncs."""
    os.sync()


def repeat_pass(ctx, stack, base, token, pid):
    """The warm path under the cold part's pinning: one token, already
    verified in the known-users pass, sent on every request for --duration
    (after --warmup), so that every stack, the non-Python peers too, has a
    repeated-token figure beside its cold ones."""
    a, label = ctx.args, COLD_LABELS[stack]
    t = ctx.wrk_threads
    opts = [f"-t{t}", f"-c{a.conns}", "-s", str(REPORT_LUA), "-H", f"Authorization: Bearer {token}"]
    log(f"{label}: one repeated token, warm-up {a.warmup}s, then {a.duration}s")
    run_wrk(ctx, [*opts, f"-d{a.warmup}s", f"{base}/api/private"])
    settle()
    cpu = CpuCount(ctx, pid, f"cold-{stack}-repeat")
    args = [*opts, f"-d{a.duration}s", "--latency", f"{base}/api/private"]
    out = run_wrk(ctx, args)
    (ctx.raw / f"cold-{stack}-repeat.txt").write_text(out)
    kv = parse_kv_line(out, "WRK")
    if kv is None:
        raise BenchError(f"no WRK summary line from wrk for {label}'s repeated token:\n{out}")
    rec = {"rps": float(kv["rps"]), "p99_us": int(kv["p99_us"]), "non2xx": int(kv["non2xx"]),
           "requests": int(kv["requests"]),
           "command": " ".join(ctx.wrk_pin + ["wrk", shell_join(args)]).replace(token, "$TOKEN")}
    rec["per_request"] = cpu.finish(rec["requests"])
    log(f"{label}: one repeated token: {rec['rps']:.0f} req/s, p99 {rec['p99_us'] / 1000:.2f} ms, "
        f"non-2xx {rec['non2xx']}" + per_request_text(rec["per_request"]))
    if rec["non2xx"]:
        raise BenchError(f"{label}: {rec['non2xx']} non-2xx answers to a repeated valid token")
    return rec


def psql(server_url, sql):
    """One statement on the PostgreSQL server's `postgres` database (trust auth)."""
    run(["psql", server_url.rstrip("/") + "/postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql])


def cold_ours(ctx, stack, work, minter):
    """Ours on SQLite (a file in `work`) or on a fresh PostgreSQL database,
    dropped afterwards; the server is stopped whatever happens."""
    a = ctx.args
    data_dir = work / "dev-issuer"  # one key for both of ours, so one set of tokens
    result = {"stack": stack, "label": COLD_LABELS[stack]}
    pg_name = None
    if stack == "ours-sqlite":
        db_url = str(work / "cold.db")
        result["database"] = "SQLite file"
    else:
        name = pg_name = f"actix_auth0_bench_cold_{os.getpid()}"
        psql(a.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        psql(a.postgres, f'CREATE DATABASE "{name}"')
        db_url = f"{a.postgres.rstrip('/')}/{name}"
        result["database"] = f"PostgreSQL, fresh database {name}"
    server = None
    try:
        env = our_env(ctx, db_url)
        metrics = f"127.0.0.1:{a.port + 1}"
        server = start_ours(ctx, f"our server ({stack})", db_url, work, data_dir,
                            ctx.raw / f"cold-{stack}-server.log", METRICS_ADDR=metrics)
        result["server_command"] = (
            f"PORT={a.port} DATABASE_URL={'<tmp>/cold.db' if stack == 'ours-sqlite' else '<fresh db>'}"
            f" RUST_LOG=warn HOST=127.0.0.1{' WORKERS=1' if ctx.pin else ''} "
            f"{' '.join(ctx.server_pin + [''])}target/release/actix-auth0-api dev --data-dir <tmp>/dev-issuer")
        base = f"http://127.0.0.1:{a.port}"
        issuer = (data_dir / "issuer").read_text().strip()
        kid = published_kid(f"{base}/.well-known/jwks.json")
        sets = minter.token_sets(data_dir / "signing-key.pem", kid, issuer, OUR_AUDIENCE, work)
        result["runs"] = cold_passes(ctx, stack, base, sets, server.pid,
                                     users=lambda: len(users_jsonl(ctx, env, work)),
                                     commits=lambda: users_commits(f"http://{metrics}/metrics"))
        if not server.alive():
            raise BenchError(f"the server died during the run:\n{server.output()}")
        result["peak_rss_mb"] = round(vm_hwm_kb(server.pid) / 1024, 1)
    finally:
        if server is not None:
            ctx.stop(server)
        if pg_name is not None:
            psql(a.postgres, f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
    return result


def prepare_peers(ctx, stacks):
    """Everything the cold peers need, before anything is timed (building
    uses both cores): the venv, the express copy with `npm ci`, the axum build."""
    peers_dir = ctx.args.peers_dir
    if not os.access(peers_venv() / "bin" / "gunicorn", os.X_OK):
        peers_setup(ctx, ctx.raw / "cold-peers-setup.txt")
    if "express" in stacks:
        src = peers_dir / "express"
        lock = (src / "package-lock.json").read_bytes()
        if not ((EXPRESS_DIR / "node_modules").is_dir() and (EXPRESS_DIR / "package-lock.json").is_file()
                and (EXPRESS_DIR / "package-lock.json").read_bytes() == lock
                and (EXPRESS_DIR / "server.js").read_bytes() == (src / "server.js").read_bytes()):
            log(f"express peer: copy to {EXPRESS_DIR}, npm ci")
            shutil.rmtree(EXPRESS_DIR, ignore_errors=True)
            shutil.copytree(src, EXPRESS_DIR)
            for p in [EXPRESS_DIR, *EXPRESS_DIR.rglob("*")]:
                p.chmod(p.stat().st_mode | 0o200)  # ../shared is read-only; the copy must not be
            run(["npm", "ci", "--no-audit", "--no-fund"], cwd=EXPRESS_DIR)
    if "axum" in stacks:
        log(f"axum peer: cargo build --release --locked (CARGO_TARGET_DIR={AXUM_TARGET})")
        r = subprocess.run(["cargo", "build", "--release", "--locked", "--manifest-path",
                            str(peers_dir / "axum-jwt-authorizer" / "Cargo.toml")],
                           env=dict(os.environ, CARGO_TARGET_DIR=str(AXUM_TARGET)))
        if r.returncode != 0 or not os.access(AXUM_BIN, os.X_OK):
            raise BenchError("building the axum peer failed")


def peer_command(ctx, stack, port):
    """How each peer is started, as its README says: pinned to core 0 with one
    worker under PIN=1 (for Flask, gunicorn with one sync worker: run_peer.sh
    fixes two); unpinned, their defaults (run_peer.sh for Flask)."""
    peers_dir, venv = ctx.args.peers_dir, peers_venv()
    env = {"PORT": str(port)}
    if stack == "axum":
        if ctx.pin:
            env["WORKERS"] = "1"
        return [*ctx.server_pin, str(AXUM_BIN)], env
    if stack == "express":
        return [*ctx.server_pin, "node", str(EXPRESS_DIR / "server.js")], env
    if stack == "flask":
        if ctx.pin:
            return [*ctx.server_pin, str(venv / "bin" / "gunicorn"), "-w", "1", "-k", "sync",
                    "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--chdir", str(peers_dir),
                    "flask_app:app"], env
        return ["bash", str(peers_dir / "run_peer.sh"), "flask", str(port)], env
    raise ValueError(stack)


def cold_peer(ctx, stack, issuer, token_sets, work):
    """One peer: started against the local issuer, then the three passes."""
    a = ctx.args
    if port_in_use(a.port):
        raise BenchError(f"something already listens on 127.0.0.1:{a.port}; pass --port")
    cmd, extra = peer_command(ctx, stack, a.port)
    env = dict(os.environ, ISSUER=issuer, AUDIENCE=PEER_AUDIENCE, **extra)
    env.pop("NODE_ENV", None)  # express-oauth2-jwt-bearer refuses an http issuer under production
    if "WORKERS" not in extra:
        env.pop("WORKERS", None)
    server = ctx.start(stack, cmd, env, work, ctx.raw / f"cold-{stack}-server.log")
    base = f"http://127.0.0.1:{a.port}"
    server.wait_http(f"{base}/api/public", 30)
    result = {"stack": stack, "label": COLD_LABELS[stack],
              "server_command": f"ISSUER={issuer} AUDIENCE={PEER_AUDIENCE} "
                                + " ".join(f"{k}={v}" for k, v in extra.items()) + " " + " ".join(cmd)}
    result["runs"] = cold_passes(ctx, stack, base, token_sets, server.pid)
    if not server.alive():
        raise BenchError(f"{stack} died during the run:\n{server.output()}")
    ctx.stop(server)
    return result


def peer_versions(ctx, stacks):
    """The versions compared, for the report."""
    out = []
    if "axum" in stacks:
        lock = (ctx.args.peers_dir / "axum-jwt-authorizer" / "Cargo.lock").read_text()
        vers = {m[1]: m[2] for m in re.finditer(r'name = "([^"]+)"\nversion = "([^"]+)"', lock)}
        out.append(f"axum {vers.get('axum', '?')} + jwt-authorizer {vers.get('jwt-authorizer', '?')} "
                   f"(jsonwebtoken {vers.get('jsonwebtoken', '?')})")
    if "express" in stacks:
        def npm_version(name):
            try:
                return json.loads((EXPRESS_DIR / "node_modules" / name / "package.json").read_text())["version"]
            except OSError:
                return "?"
        node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        out.append(f"node {node}, express {npm_version('express')}, express-oauth2-jwt-bearer "
                   f"{npm_version('express-oauth2-jwt-bearer')}, jose {npm_version('jose')}")
    if "flask" in stacks:
        r = subprocess.run([str(peers_venv() / "bin" / "python"), "-c",
                            "import sys; from importlib.metadata import version as v; "
                            "print('python', sys.version.split()[0], 'flask', v('flask'), 'authlib', v('authlib'), "
                            "'joserfc', v('joserfc'), 'gunicorn', v('gunicorn'))"], capture_output=True, text=True)
        out.append(r.stdout.strip() or "flask: versions unknown")
    return out


def run_cold(ctx, facts):
    """The cold path: every stack, then the table, cold.md, cold.json, the chart."""
    a = ctx.args
    stacks = [s for s in COLD_STACKS if s in a.stacks and (a.peers or s.startswith("ours"))]
    if not (a.peers_dir / "jwks_issuer.py").is_file() and any(not s.startswith("ours") for s in stacks):
        warn(f"cold peers skipped: {a.peers_dir}/jwks_issuer.py not found")
        stacks = [s for s in stacks if s.startswith("ours")]
        if not stacks:
            raise BenchError("nothing left to run in the cold part")
    peers = [s for s in stacks if not s.startswith("ours")]
    for f in ctx.raw.glob("cold-*"):
        f.unlink()
    if shutil.which("openssl") is None:
        raise BenchError("openssl is not installed (apt-get install openssl)")
    if "ours-postgres" in stacks and shutil.which("psql") is None:
        raise BenchError("psql is not installed; ours-postgres needs it (or leave it out of --stacks)")

    # Preparation first: nothing below may compete with a timed window.
    mint_python = ensure_mint_python(ctx)
    if peers:
        prepare_peers(ctx, peers)
    minter = Minter(ctx, mint_python)
    work = Path(tempfile.mkdtemp(prefix="actix-auth0-cold."))
    ctx.cleanups.append(lambda: shutil.rmtree(work, ignore_errors=True))

    busy_before, load_before = cpu_busy(), loadavg()
    log(f"machine CPU busy before the cold runs: {busy_before}% (loadavg {load_before})")
    if busy_before >= 10:
        warn(f"WARNING: machine not idle before the run ({busy_before}% busy); figures will be depressed")
    rsa = openssl_rsa_speed(ctx)
    log(f"RSA-2048 on the server's core: {rsa['verify_per_s']:.0f} verify/s, {rsa['sign_per_s']:.0f} sign/s")

    results = []
    for stack in [s for s in stacks if s.startswith("ours")]:
        try:
            results.append(cold_ours(ctx, stack, work, minter))
        except BenchError as e:
            warn(f"FAILED: {COLD_LABELS[stack]}: {e}")
            results.append({"stack": stack, "label": COLD_LABELS[stack], "error": str(e)})
    if peers:
        try:
            cold_peers(ctx, peers, work, minter, results)
        except BenchError as e:  # the issuer: every peer not yet run fails with it
            done = {r["stack"] for r in results}
            for stack in peers:
                if stack not in done:
                    warn(f"FAILED: {COLD_LABELS[stack]}: {e}")
                    results.append({"stack": stack, "label": COLD_LABELS[stack], "error": str(e)})
    busy_after = cpu_busy()

    report_cold(ctx, facts, results, rsa, stacks, work, (busy_before, load_before, busy_after))
    if any("error" in r for r in results):
        ctx.failed = True
    return results


def cold_peers(ctx, peers, work, minter, results):
    """The peers' JWKS issuer (their jwks_issuer.py, one key), one token set
    for its issuer and audience, then each peer in turn against it."""
    a = ctx.args
    keydir = work / "peer-issuer"
    py = peers_venv() / "bin" / "python"
    run([str(py), str(a.peers_dir / "jwks_issuer.py"), "init", "--dir", str(keydir)])
    if port_in_use(a.issuer_port):
        raise BenchError(f"something already listens on 127.0.0.1:{a.issuer_port}; pass --issuer-port")
    issuer = f"http://127.0.0.1:{a.issuer_port}/"
    iss_server = ctx.start("jwks issuer", [str(py), str(a.peers_dir / "jwks_issuer.py"), "serve", "--dir",
                                           str(keydir), "--port", str(a.issuer_port)],
                           dict(os.environ), work, ctx.raw / "cold-issuer.log")
    try:
        iss_server.wait_http(f"{issuer}.well-known/jwks.json", 15)
        kid = published_kid(f"{issuer}.well-known/jwks.json")
        sets = minter.token_sets(keydir / "private.pem", kid, issuer, PEER_AUDIENCE, work)
        for stack in peers:
            try:
                results.append(cold_peer(ctx, stack, issuer, sets, work))
            except BenchError as e:
                warn(f"FAILED: {COLD_LABELS[stack]}: {e}")
                results.append({"stack": stack, "label": COLD_LABELS[stack], "error": str(e)})
                for s in [s for s in ctx.servers if s is not iss_server]:
                    ctx.stop(s)
    finally:
        ctx.stop(iss_server)


def report_cold(ctx, facts, results, rsa, stacks, work, busy):
    """The cold table (printed and in cold.md), cold.json and the chart."""
    a = ctx.args
    busy_before, load_before, busy_after = busy
    table = ["| stack | cold req/s, new users | cold req/s, known users, new tokens | cold p99 "
             "| warm req/s, one repeated token |",
             "|---|---:|---:|---:|---:|"]
    chart_rows = []
    for r in results:
        if "error" in r:
            table.append(f"| {r['label']} | FAILED | FAILED | n/a | FAILED |")
            continue
        new, known, repeat = r["runs"]["new"], r["runs"]["known"], r["runs"].get("repeat")
        table.append(f"| {r['label']} | {new['rps']:.0f} | {known['rps']:.0f} | "
                     f"{new['p99_us'] / 1000:.2f} / {known['p99_us'] / 1000:.2f} ms | "
                     + (f"{repeat['rps']:.0f} |" if repeat else "n/a |"))
        chart_rows += [{"server": r["label"], "route": "· new users", "rps": new["rps"]},
                       {"server": r["label"], "route": "· known users, new tokens", "rps": known["rps"]}]
    table = "\n".join(table)
    cost = ["| stack | server CPU µs a request, new users | known users, new tokens | one repeated token |",
            "|---|---:|---:|---:|"]
    for r in results:
        pr = ([r["runs"].get(k, {}).get("per_request") for k in ("new", "known", "repeat")]
              if "error" not in r else [None])
        if all(pr):
            cells = []
            for p in pr:
                cell = f"{p['cpu_us']:.1f}"
                if "instructions_user" in p:
                    cell += f" ({p['instructions_user'] / 1000:.0f}k + {p['instructions_kernel'] / 1000:.0f}k instr.)"
                cells.append(cell)
            cost.append(f"| {r['label']} | " + " | ".join(cells) + " |")
    cost = "\n".join(cost) if len(cost) > 2 else ""
    where = "on the server's core" if ctx.pin else "on one core"
    rsa_line = (f"RSA-2048 {where} (`{rsa['command']}`): {rsa['verify_per_s']:.0f} verify/s "
                f"({1e6 / rsa['verify_per_s']:.1f} µs each), the floor cost of a new token: no row can "
                f"pass it on one core.")
    rows_lines = []
    for r in results:
        if "error" not in r and r["stack"].startswith("ours"):
            rs = r["runs"]
            rows_lines.append(
                f"{r['label']}: users rows created = 200s answered in every run: "
                + "; ".join(f"{COLD_KINDS[k]} {rs[k]['rows_created']} rows for {rs[k]['ok200']} 200s"
                            for k in ("warmup", "new", "known") if k in rs)
                + f"; peak RSS {r['peak_rss_mb']:.1f} MB.")
    for r in results:
        new = r.get("runs", {}).get("new", {})
        if r["stack"].startswith("ours") and len(new.get("per_request", {}).get("threads_us", {})) > 1:
            rows_lines.append(
                f"{r['label']}, new users: CPU µs a request by thread: "
                + ", ".join(f"{name} {us:.1f}" for name, us in new["per_request"]["threads_us"].items())
                + (f"; {new['commits']} commits, {new['rows_per_commit']} rows each" if new.get("commits") else "")
                + ".")
    failures = [f"FAILED: {r['label']}: {r['error']}" for r in results if "error" in r]

    threads = ctx.wrk_threads
    title = (f"Cold path: requests/s, each token used once ({a.cold_tokens} tokens, "
             f"wrk -t{threads} -c{max(a.conns, threads)})")
    subtitle = f"{facts['date']}, commit {facts['commit']}, {facts['nproc']} cores: {facts['cpu']}"
    data = {"title": title, "subtitle": subtitle, "date": facts["date"], "commit": facts["commit"],
            "nproc": facts["nproc"], "tokens": a.cold_tokens, "warmup_tokens": a.cold_warmup_tokens,
            "connections": max(a.conns, threads), "wrk_threads": threads, "pinned": ctx.pin, "rsa2048": rsa,
            "stacks": results, "rows": chart_rows}
    written = []
    if results:
        (ctx.results / "cold.json").write_text(json.dumps(data, indent=2) + "\n")
        written += ["cold.md", "cold.json"]
    if chart_rows:
        chart.write(data, ctx.results / "cold-requests-per-second.svg")
        written.append("cold-requests-per-second.svg")

    md = ["# Cold path results", "",
          f"Each token used once: {a.cold_tokens} tokens per run, none sent twice, none beyond the list; "
          "req/s over the window from the first request to the last response; p99 shown as new users / "
          "known users.", "", table, "", rsa_line, ""]
    if cost:
        md += ["What each request cost the server's processes: their CPU time through each run (`perf stat`), "
               "divided by the requests. The machine's other load moves it less than requests per second.",
               "", cost, ""]
    md += [line + "\n" for line in rows_lines + failures]
    md += ["![cold path requests per second](cold-requests-per-second.svg)", ""]
    md += machine_lines(ctx, facts, "every server pinned to core 0 with one worker (Flask: gunicorn, one sync "
                        "worker; express: one Node process), wrk (one thread) to core 1")
    md += [f"- CPU: {facts['cpu']}", f"- kernel: {facts['kernel']}", f"- {facts['rustc']}; {facts['wrk']}; "
           f"{rsa['openssl']}"]
    md += [f"- {v}" for v in peer_versions(ctx, stacks)]
    md += [f"- machine CPU busy before the cold runs: {busy_before}% (loadavg {load_before}); after: {busy_after}%",
           "", "## Command", "", "```", command_line(a), "```", "", "Servers (cwd a fresh `mktemp -d` folder, <tmp>):",
           ""]
    md += [f"- {r['label']}: `{r['server_command']}`" for r in results if "server_command" in r]
    md += ["", "Runs of each stack, in order: a warm-up pass of new tokens (discarded), new users, known users "
           "with new tokens (-d is only a bound: run.py interrupts wrk when every thread is done), then one "
           "token of the known-users pass repeated for the warm column (after a discarded warm-up of the same "
           "command with the warm-up duration):", "", "```"]
    for r in results:
        if r.get("runs"):
            md.append(f"# {r['label']}")
        for k, rec in r.get("runs", {}).items():
            md.append(rec["command"].replace(str(HERE) + "/", "benches/").replace(str(work), "<tmp>"))
    md += ["```", "", "## Notes", "",
           "- tokens: RS256, header {alg, typ, kid} with the kid the server publishes, claims {iss, sub, aud, iat, "
           "exp, jti}; new users: subs cold-1..cold-N" + (" hashed into auth0|<24 hex digits>" if a.cold_subs == "random"
                                                            else "") + "; known users: the same subs, another jti (so a new token "
           "and a new signature check, but the row exists); minted before the timed window.",
           "- the peers have no users table: for them both columns measure the same work, run twice.",
           "- the window and the counts come from benches/wrk/cold.lua (CLOCK_MONOTONIC through LuaJIT's FFI); "
           "p99 is wrk's latency histogram, which holds exactly the listed requests.",
           "- PostgreSQL is the machine's server, not pinned: its backends share both cores with our server "
           "and wrk, which is part of what the PostgreSQL row costs.",
           "- Flask's gunicorn sync worker answers `Connection: close`: each of its requests is a new TCP "
           "connection, as in its quickstart deployment.",
           f"- raw wrk outputs and server logs: {ctx.show(ctx.raw)}/cold-* (not committed)."]
    if results:
        (ctx.results / "cold.md").write_text("\n".join(md) + "\n")

    print()
    print(table)
    print()
    if cost:
        print(cost)
        print()
    print(rsa_line)
    for line in rows_lines + failures:
        print(line)
    r = ctx.show(ctx.results)
    print(f"(written: {', '.join(f'{r}/{f}' for f in written)}, raw in {r}/raw/cold-*)")


# ------------------------------------------------------------------ main


def main(argv):
    if argv[:1] == ["--mint-worker"]:
        mint_worker()
        return 0
    args = parse_args(argv)
    parts = [args.only] if args.only else ["warm", "cold"]
    warm_stacks = [s for s in args.stacks if s == "ours-sqlite" or (args.peers and s in WARM_PEERS)]
    cold_stacks = [s for s in args.stacks if s in COLD_STACKS and (args.peers or s.startswith("ours"))]
    todo = {"warm": warm_stacks, "cold": cold_stacks}
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
            (run_warm if part == "warm" else run_cold)(ctx, facts)
    except BenchError as e:
        print(f"run.py: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        ctx.cleanup()
    return 1 if ctx.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
