"""Processes we start and talk to: commands that must succeed, HTTP checks,
the Server wrapper (stopped by its PID only), the Context both parts share,
and our own binary (built, started as `dev`, asked for its users)."""
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from .common import REPO, BenchError, log, warn


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
        self.bins = []  # --bin: (label, path) of each binary to measure in turn
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
    (CARGO_TARGET_DIR included: cargo metadata knows where it is); or, with
    --bin, the binaries named there, the first as the one to run."""
    if ctx.args.bin:
        ctx.bins = ctx.args.bin
        ctx.bin = ctx.bins[0][1]
        return
    if not ctx.args.no_build:
        log("cargo build --release --locked")
        if subprocess.run(["cargo", "build", "--release", "--locked"], cwd=REPO).returncode != 0:
            raise BenchError("cargo build --release --locked failed")
    meta = json.loads(run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=REPO).stdout)
    ctx.bin = Path(meta["target_directory"]) / "release" / "actix-auth0-api"
    if not os.access(ctx.bin, os.X_OK):
        raise BenchError(f"{ctx.bin} missing after the build")


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
