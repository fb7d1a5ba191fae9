#!/usr/bin/env python3
"""Scale-out test: HAProxy in front of several `serve` instances on one
PostgreSQL database, each instance restarted in turn under a mixed load.

Sets up by itself: HAProxy (`apt-get install haproxy` when missing), a fresh
database on the PostgreSQL server at --postgres (dropped at the end), an
issuer (one `dev` instance, whose JWKS the others fetch over loopback), and
--instances `serve` instances, each on its own port, with PUBLIC_BASE_URL the
HAProxy address (so DPoP proofs name it, whichever instance answers). HAProxy
health-checks /readyz (its configuration is written to the temporary folder,
and shown in docs/deployment.md, "Behind HAProxy").

Then, with tokens and DPoP proofs minted beforehand by the binary's own
`token` and `proof`, --workers threads send a paced, bounded load through
HAProxy: known users (expect 200), first sights of new users (200), invalid
tokens (401) and DPoP requests (200, a fresh proof each). Meanwhile each
instance in turn gets SIGTERM, must exit 0, is started again, and must be
seen UP by HAProxy before the next one goes. Afterwards:

- replays: proofs accepted by one instance (sent to it directly) are sent
  again to another instance, and must be refused 401 "replayed";
- revocation: `users revoke` a user whose token every instance has cached;
  each instance is polled directly until it refuses the token, within 2 s.

Prints one line per check with its figures, `PASS` or `FAIL`, and exits 1 when
any check fails (2 when the set-up fails). Needs root only to install HAProxy.

    python3 scripts/scale-out.py --binary target/release/actix-auth0-api
    python3 scripts/scale-out.py --binary target/debug/actix-auth0-api --instances 2

Standard library only.
"""

import argparse
import concurrent.futures
import csv
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
AUDIENCE = "https://hello-world.example.com"  # the development issuer's (DEV_AUDIENCE)
REVOCATION_BOUND_S = 2.0
# Ten requests, interleaved: 5 of known users, 2 first sights, 2 invalid, 1 DPoP (each DPoP
# request needs a proof of its own, minted beforehand by `proof`, about 30 ms apiece).
MIX = ["valid", "first", "valid", "invalid", "dpop", "valid", "first", "valid", "invalid", "valid"]
EXPECTED = {"valid": 200, "first": 200, "invalid": 401, "dpop": 200}


class SetupError(Exception):
    """The test could not be set up; printed as one line, exit code 2."""


def log(msg):
    print(f"== {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, **kw):
    """subprocess.run that raises SetupError with the command's output on failure."""
    kw.setdefault("text", True)
    kw.setdefault("capture_output", True)
    r = subprocess.run([str(c) for c in cmd], **kw)
    if r.returncode != 0:
        out = ((r.stdout or "") + (r.stderr or "")).strip()
        raise SetupError(f"{' '.join(map(str, cmd))} failed (exit {r.returncode}): {out[-1500:]}")
    return r


def get(port, path, headers=None, timeout=5):
    """(status, body as text) of one GET on a fresh connection; (None, error) when nothing answered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    except (OSError, http.client.HTTPException) as e:
        return None, f"{type(e).__name__}: {e}"
    finally:
        conn.close()


# --- set-up -------------------------------------------------------------------


def ensure_haproxy():
    found = shutil.which("haproxy") or (Path("/usr/sbin/haproxy").exists() and "/usr/sbin/haproxy")
    if found:
        return found
    log("apt-get install -y haproxy")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "haproxy"]
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        run(["apt-get", "update", "-qq"], env=env)
        run(cmd, env=env)
    found = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(found).exists():
        raise SetupError("haproxy is not installed and apt-get did not install it")
    return found


class Process:
    """A process we started, stopped by its PID only; its output goes to a log file."""

    def __init__(self, name, cmd, env, cwd, log_path):
        self.name, self.cmd, self.env, self.cwd, self.log_path = name, cmd, env, cwd, log_path
        self.proc = None
        self.start()

    def start(self):
        with open(self.log_path, "a") as out:
            out.write(f"--- start {time.strftime('%H:%M:%S')}\n")
            out.flush()
            self.proc = subprocess.Popen([str(c) for c in self.cmd], env=self.env, cwd=self.cwd,
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines=15):
        text = Path(self.log_path).read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def wait_ready(self, port, timeout_s=30):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise SetupError(f"{self.name} exited (code {self.proc.returncode}) before /readyz "
                                 f"answered 200; its log:\n{self.tail()}")
            if get(port, "/readyz", timeout=2)[0] == 200:
                return
            time.sleep(0.05)
        raise SetupError(f"{self.name}: /readyz not 200 within {timeout_s} s; its log:\n{self.tail()}")

    def stop(self, sig=signal.SIGTERM, timeout_s=15):
        """Sends `sig` (then SIGKILL after timeout_s); the exit code."""
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return None if self.proc is None else self.proc.returncode


def base_env(**extra):
    """A clean environment: nothing of the caller's shell (an AUTH0_* or
    DPOP_* there) changes what is tested; the working directory, a fresh
    folder, has no .env either."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ") if k in os.environ}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def haproxy_config(front_port, backends, stats_socket):
    """The configuration docs/deployment.md shows (with its ports)."""
    servers = "\n".join(f"    server api{i + 1} 127.0.0.1:{port} check" for i, port in enumerate(backends))
    return f"""\
global
    stats socket {stats_socket} mode 600 level admin

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout http-request 5s
    # below the API's KEEP_ALIVE_SECS (5 s)
    timeout http-keep-alive 4s
    # a refused or reset connection (an instance stopping) is retried,
    # the last time on another server
    retries 2
    option redispatch
    retry-on conn-failure empty-response

frontend api
    bind 127.0.0.1:{front_port}
    default_backend instances

backend instances
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    # a draining instance (503) is out within 0.5 s; back after two good checks
    default-server inter 500ms fall 1 rise 2
{servers}
"""


def haproxy_stat(stats_socket):
    """`show stat` from the stats socket: {(proxy, server): row}."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        s.connect(str(stats_socket))
        s.sendall(b"show stat\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    text = data.decode().lstrip("# ")
    return {(row["pxname"], row["svname"]): row for row in csv.DictReader(io.StringIO(text))}


def server_status(stats_socket, name):
    try:
        return haproxy_stat(stats_socket)[("instances", name)]["status"]
    except (OSError, KeyError):
        return "?"


# --- tokens and proofs ---------------------------------------------------------


class Minter:
    """Tokens and proofs from the binary's `token` and `proof`, for the issuer `dev` serves."""

    def __init__(self, binary, data_dir, cwd):
        self.binary, self.data_dir, self.cwd = binary, data_dir, cwd

    def token(self, sub, *extra):
        return run([self.binary, "token", "--data-dir", self.data_dir, "--sub", sub, *extra],
                   cwd=self.cwd, env=base_env()).stdout.strip()

    def tokens(self, prefix, count):
        """Tokens for `prefix-1` ... `prefix-count` (one process)."""
        out = run([self.binary, "token", "--data-dir", self.data_dir, "--sub", prefix, "--count", count],
                  cwd=self.cwd, env=base_env()).stdout.split()
        return [(f"{prefix}-{n}", t) for n, t in enumerate(out, 1)]

    def proof(self, key, token, url):
        return run([self.binary, "proof", "--dpop-key", key, "--token", token, "--url", url],
                   cwd=self.cwd, env=base_env()).stdout.strip()

    def proofs(self, key, token, url, count, parallel=4):
        with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
            return list(pool.map(lambda _: self.proof(key, token, url), range(count)))


def tampered(token):
    head, payload, sig = token.split(".")
    i = len(sig) // 2
    return f"{head}.{payload}.{sig[:i]}{'A' if sig[i] != 'A' else 'B'}{sig[i + 1:]}"


# --- the load ------------------------------------------------------------------


class Load:
    """A paced, bounded mixed load through HAProxy from several threads.

    Request i is due at start + i / rate and is of kind MIX[i % 10]; the load
    stops at `stop()` or after `max_requests`, whichever comes first."""

    def __init__(self, port, rate, max_requests, workers, known, firsts, invalid, dpop_token, proofs):
        self.port, self.rate, self.max_requests, self.workers = port, rate, max_requests, workers
        self.known, self.firsts, self.invalid = known, firsts, invalid
        self.dpop_token, self.proofs = dpop_token, proofs
        self.lock = threading.Lock()
        self.next_index = 0
        self.counts = {kind: 0 for kind in EXPECTED}
        self.stopping = threading.Event()
        self.results = []  # (t, kind, status or error, latency_s, sub)
        self.threads = []
        self.started = None
        self.exhausted = None  # what ended the load before stop(), if anything

    def ticket(self):
        with self.lock:
            i = self.next_index
            if self.stopping.is_set():
                return None
            if i >= self.max_requests:
                self.exhausted = self.exhausted or "--max-requests reached"
                return None
            kind = MIX[i % len(MIX)]
            n = self.counts[kind]
            if (kind == "first" and n >= len(self.firsts)) or (kind == "dpop" and n >= len(self.proofs)):
                self.exhausted = self.exhausted or f"out of pre-minted {kind} tokens or proofs"
                return None
            self.next_index += 1
            self.counts[kind] += 1
        sub = None
        if kind == "valid":
            sub, token = self.known[n % len(self.known)]
            headers = {"Authorization": f"Bearer {token}"}
            path = "/api/me" if n % 2 else "/api/private"
        elif kind == "first":
            sub, token = self.firsts[n]
            headers = {"Authorization": f"Bearer {token}"}
            path = "/api/private"
        elif kind == "invalid":
            headers = {"Authorization": self.invalid[n % len(self.invalid)]}
            path = "/api/private"
        else:
            headers = {"Authorization": f"DPoP {self.dpop_token}", "DPoP": self.proofs[n]}
            path = "/api/private"
        return i, kind, path, headers, sub

    def worker(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        mine = []
        while (ticket := self.ticket()) is not None:
            i, kind, path, headers, sub = ticket
            due = self.started + i / self.rate
            if (wait := due - time.monotonic()) > 0:
                time.sleep(wait)
            began = time.monotonic()
            try:
                conn.request("GET", path, headers=headers)
                r = conn.getresponse()
                r.read()
                outcome = r.status
            except (OSError, http.client.HTTPException) as e:
                outcome = f"{type(e).__name__}: {e}"
                conn.close()
            mine.append((began - self.started, kind, outcome, time.monotonic() - began, sub))
        conn.close()
        with self.lock:
            self.results.extend(mine)

    def start(self):
        self.started = time.monotonic()
        self.threads = [threading.Thread(target=self.worker, daemon=True) for _ in range(self.workers)]
        for t in self.threads:
            t.start()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join()
        self.results.sort(key=lambda r: r[0])


# --- the test ------------------------------------------------------------------


class Cluster:
    """The processes, the database and the temporary folder; `close()` undoes them all."""

    def __init__(self, args):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="scale-out-"))
        self.db_name = f"scale_out_{os.getpid()}_{int(time.time())}"
        self.admin_url = args.postgres.rstrip("/")
        self.database_url = f"{self.admin_url}/{self.db_name}"
        self.db_created = False
        self.issuer = None
        self.instances = []  # (name, port, Process)
        self.haproxy = None
        self.front_port = free_port()
        self.stats_socket = self.tmp / "haproxy.sock"
        self.config_path = self.tmp / "haproxy.cfg"

    def psql(self, database_url, sql):
        return run(["psql", database_url, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql]).stdout

    def create_database(self):
        self.psql(f"{self.admin_url}/postgres", f'CREATE DATABASE "{self.db_name}"')
        self.db_created = True

    def start_issuer(self, binary):
        port = free_port()
        data_dir = self.tmp / "issuer"
        env = base_env(HOST="127.0.0.1", PORT=port, DATABASE_URL=self.tmp / "issuer.db", RUST_LOG="warn")
        self.issuer = Process("issuer (dev)", [binary, "dev", "--data-dir", data_dir], env, self.tmp,
                              self.tmp / "issuer.log")
        self.issuer.wait_ready(port)
        issuer_url = (data_dir / "issuer").read_text().strip()
        return issuer_url, data_dir

    def instance_env(self, issuer_url, port):
        return base_env(
            HOST="127.0.0.1", PORT=port, WORKERS=2, RUST_LOG="info",
            AUTH0_ISSUER=issuer_url, AUTH0_AUDIENCE=AUDIENCE,
            AUTH0_JWKS_URL=f"{issuer_url}.well-known/jwks.json",
            DATABASE_URL=self.database_url,
            PUBLIC_BASE_URL=f"http://127.0.0.1:{self.front_port}",
            SHUTDOWN_GRACE_SECS=self.args.grace,
        )

    def start_instances(self, binary, issuer_url):
        for i in range(self.args.instances):
            name, port = f"api{i + 1}", free_port()
            proc = Process(name, [binary, "serve"], self.instance_env(issuer_url, port), self.tmp,
                           self.tmp / f"{name}.log")
            self.instances.append((name, port, proc))
        for name, port, proc in self.instances:
            proc.wait_ready(port)

    def start_haproxy(self, haproxy):
        config = haproxy_config(self.front_port, [port for _, port, _ in self.instances], self.stats_socket)
        self.config_path.write_text(config)
        run([haproxy, "-c", "-q", "-f", self.config_path])
        self.haproxy = Process("haproxy", [haproxy, "-db", "-f", self.config_path], base_env(), self.tmp,
                               self.tmp / "haproxy.log")
        self.wait_all_up(15)
        return config

    def wait_up(self, name, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if server_status(self.stats_socket, name) == "UP":
                return True
            time.sleep(0.05)
        return False

    def wait_all_up(self, timeout_s):
        for name, _, _ in self.instances:
            if not self.wait_up(name, timeout_s):
                raise SetupError(f"HAProxy does not see {name} UP within {timeout_s} s "
                                 f"(status {server_status(self.stats_socket, name)})")

    def close(self, keep):
        if self.haproxy:
            self.haproxy.stop()
        for _, _, proc in self.instances:
            proc.stop()
        if self.issuer:
            self.issuer.stop()
        if self.db_created:
            try:
                self.psql(f"{self.admin_url}/postgres", f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            except SetupError as e:
                print(f"scale-out: cleanup: {e}", file=sys.stderr)
        if keep:
            log(f"logs and HAProxy configuration kept in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


def rolling_restart(cluster, issuer_url, load, pause_s):
    """Each instance in turn: SIGTERM, its exit, a new start, UP in HAProxy. One dict per restart."""
    restarts = []
    for name, port, proc in cluster.instances:
        r = {"name": name, "sigterm_at": time.monotonic() - load.started}
        began = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        down_after = None
        while proc.alive() and time.monotonic() - began < cluster.args.grace + 10:
            if down_after is None and server_status(cluster.stats_socket, name).startswith("DOWN"):
                down_after = time.monotonic() - began
            time.sleep(0.02)
        if proc.alive():
            proc.stop(signal.SIGKILL)
        r["exit"] = proc.proc.returncode
        r["exited_after"] = time.monotonic() - began
        r["down_after"] = down_after
        proc.env = cluster.instance_env(issuer_url, port)
        proc.start()
        try:
            proc.wait_ready(port)
            r["ready_after"] = time.monotonic() - began
        except SetupError as e:
            r["error"] = str(e)
        r["up_after"] = time.monotonic() - began if cluster.wait_up(name, 15) else None
        r["up_at"] = time.monotonic() - load.started
        restarts.append(r)
        log(f"{name}: SIGTERM, HAProxy DOWN after {fmt_s(down_after)}, exit {r['exit']} after "
            f"{r['exited_after']:.1f} s, ready after {fmt_s(r.get('ready_after'))}, "
            f"UP after {fmt_s(r['up_after'])}")
        time.sleep(pause_s)
    return restarts


def fmt_s(seconds):
    return "never" if seconds is None else f"{seconds:.2f} s"


def replay_check(cluster, minter, key, token, url, count):
    """Proofs accepted by one instance, sent again to the next one: refused as replayed?"""
    ports = [port for _, port, _ in cluster.instances]
    proofs = minter.proofs(key, token, url, count)
    accepted = refused = same_refused = 0
    other = {}
    for n, proof in enumerate(proofs):
        first, second = ports[n % len(ports)], ports[(n + 1) % len(ports)]
        headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
        status, _ = get(first, "/api/private", headers)
        if status != 200:
            other[f"first use {status}"] = other.get(f"first use {status}", 0) + 1
            continue
        accepted += 1
        status, body = get(second, "/api/private", headers)
        if status == 401 and "replayed" in body:
            refused += 1
        else:
            other[f"replay elsewhere {status}"] = other.get(f"replay elsewhere {status}", 0) + 1
        status, body = get(first, "/api/private", headers)
        same_refused += status == 401 and "replayed" in body
    return accepted, refused, same_refused, other


def revocation_check(cluster, binary, minter, sub):
    """Every instance caches a token of `sub`; `users revoke`; the delay until each refuses it."""
    token = minter.token(sub)
    headers = {"Authorization": f"Bearer {token}"}
    for name, port, _ in cluster.instances:
        status, body = get(port, "/api/private", headers)
        if status != 200:
            return None, f"{name} answered {status} before the revocation: {body[:200]}"
    time.sleep(1.1)  # the revocation is of tokens issued until now, in whole seconds at worst
    run([binary, "users", "revoke", sub], env=base_env(DATABASE_URL=cluster.database_url), cwd=cluster.tmp)
    revoked_at = time.monotonic()
    delays = {}

    def poll(name, port):
        while time.monotonic() - revoked_at < REVOCATION_BOUND_S + 3:
            status, body = get(port, "/api/private", headers)
            if status == 401 and "revoked" in body:
                delays[name] = time.monotonic() - revoked_at
                return
            time.sleep(0.02)
        delays[name] = None

    threads = [threading.Thread(target=poll, args=(name, port)) for name, port, _ in cluster.instances]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return delays, None


def percentile(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


class Checks:
    def __init__(self):
        self.failed = []

    def line(self, ok, text):
        verdict = {True: "PASS", False: "FAIL", None: "info"}[ok]
        print(f"{verdict:<5} {text}", flush=True)
        if ok is False:
            self.failed.append(text)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", type=Path, help="the actix-auth0-api binary "
                   "(default: target/release/actix-auth0-api, under CARGO_TARGET_DIR when set)")
    p.add_argument("--instances", type=int, default=3, choices=[2, 3, 4], help="instances behind HAProxy (3)")
    p.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432",
                   help="PostgreSQL server, no database (postgres://postgres@127.0.0.1:5432)")
    p.add_argument("--rate", type=float, default=200, help="requests a second through HAProxy (200)")
    p.add_argument("--max-requests", type=int, default=8000,
                   help="bound of the load (8000); it ends earlier, 2 s after the last restart")
    p.add_argument("--workers", type=int, default=8, help="client threads (8)")
    p.add_argument("--grace", type=int, default=6, help="SHUTDOWN_GRACE_SECS of the instances (6)")
    p.add_argument("--replays", type=int, default=20, help="proofs replayed on another instance (20)")
    p.add_argument("--skip-replay-check", action="store_true",
                   help="for diagnosis only: do not count the cross-instance replay check")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, config)")
    args = p.parse_args(argv)

    if args.binary is None:
        target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
        args.binary = target / "release" / "actix-auth0-api"
    binary = args.binary.resolve()
    if not os.access(binary, os.X_OK):
        print(f"scale-out: no binary at {binary} (build it, or pass --binary)", file=sys.stderr)
        return 2

    started = time.monotonic()
    checks = Checks()
    cluster = Cluster(args)
    try:
        haproxy = ensure_haproxy()
        log(f"database {cluster.db_name}, issuer, {args.instances} instances, HAProxy on "
            f"127.0.0.1:{cluster.front_port}")
        cluster.create_database()
        issuer_url, data_dir = cluster.start_issuer(binary)
        cluster.start_instances(binary, issuer_url)
        cluster.start_haproxy(haproxy)

        minter = Minter(binary, data_dir, cluster.tmp)
        front = f"http://127.0.0.1:{cluster.front_port}"
        # The load lasts 2 s, about 4 s a restart, 1 s: size the pools for 5 s a restart and 6 s more.
        expected = min(args.max_requests, int(args.rate * (args.instances * 5 + 6)))
        n_firsts, n_proofs = (expected * MIX.count(kind) // len(MIX) + 1 for kind in ("first", "dpop"))
        log(f"minting tokens: 20 known users, {n_firsts} first sights, invalid ones, DPoP")
        known = minter.tokens("scale|known", 20)
        firsts = minter.tokens("scale|new", n_firsts)
        dpop_key = cluster.tmp / "dpop-key.pem"
        dpop_token = minter.token("scale|dpop", "--dpop-key", dpop_key)
        invalid = [
            "Bearer not-a-token",
            f"Bearer {tampered(known[0][1])}",
            f"Bearer {minter.token('scale|other-aud', '--aud', 'https://other.example.com')}",
            f"Bearer {dpop_token}",  # a DPoP-bound token as a bearer token
            "Basic c2NhbGU6b3V0",
        ]
        for sub, token in known:  # known from now on: rows made before the load
            status, body = get(cluster.front_port, "/api/private", {"Authorization": f"Bearer {token}"})
            if status != 200:
                raise SetupError(f"known user {sub}: {status} {body[:200]}")
        mint_began = time.monotonic()
        proofs = minter.proofs(dpop_key, dpop_token, f"{front}/api/private", n_proofs)
        minting = time.monotonic() - mint_began
        log(f"{len(proofs)} DPoP proofs minted in {minting:.1f} s")
        if minting + expected / args.rate > 50:
            log(f"warning: proofs are refused 60 s after they are made; minting took {minting:.0f} s: "
                f"lower --rate if DPoP requests fail")

        load = Load(cluster.front_port, args.rate, args.max_requests, args.workers, known, firsts,
                    invalid, dpop_token, proofs)
        log(f"load: {args.rate:.0f} requests/s through HAProxy from {args.workers} threads; "
            f"restarting each instance in turn")
        load.start()
        time.sleep(2)
        restarts = rolling_restart(cluster, issuer_url, load, pause_s=1)
        time.sleep(1)
        load_ended_early = load.exhausted
        load.stop()
        window = time.monotonic() - load.started

        # --- the load's figures
        results = load.results
        by_status, by_kind = {}, {}
        failures = []
        for t, kind, outcome, latency, sub in results:
            key = outcome if isinstance(outcome, int) else "connection error"
            by_status[key] = by_status.get(key, 0) + 1
            by_kind.setdefault(kind, {})
            by_kind[kind][key] = by_kind[kind].get(key, 0) + 1
            if outcome != EXPECTED[kind]:
                failures.append((t, kind, outcome))
        conn_errors = sum(1 for f in failures if not isinstance(f[2], int))
        server_errors = sum(1 for f in failures if isinstance(f[2], int) and f[2] >= 500)
        wrong = len(failures) - conn_errors - server_errors
        latencies = [r[3] * 1000 for r in results]
        checks.line(None, f"requests sent through HAProxy: {len(results)} in {window:.1f} s "
                          f"({', '.join(f'{k} {sum(v.values())}' for k, v in sorted(by_kind.items()))})")
        checks.line(None, "responses by status: " + ", ".join(f"{k}: {v}" for k, v in
                                                              sorted(by_status.items(), key=str)))
        checks.line(None, "by kind: " + "; ".join(
            f"{kind} (expect {EXPECTED[kind]}) " + ", ".join(f"{k}: {v}" for k, v in sorted(s.items(), key=str))
            for kind, s in sorted(by_kind.items())))
        checks.line(None, f"latency through HAProxy: p50 {percentile(latencies, 50):.1f} ms, "
                          f"p99 {percentile(latencies, 99):.1f} ms, max {max(latencies, default=0):.1f} ms")
        checks.line(not failures, f"failed requests: {len(failures)} ({conn_errors} connection errors, "
                                  f"{server_errors} 5xx, {wrong} wrong status for their kind)")
        for t, kind, outcome in failures[:10]:
            print(f"        at {t:.2f} s: {kind}: {outcome}")
        stat = haproxy_stat(cluster.stats_socket)
        backend = stat[("instances", "BACKEND")]
        checks.line(None, f"HAProxy: {backend['wretr']} retries, {backend['wredis']} redispatches, "
                          f"{backend['econ']} connection errors, {backend['eresp']} response errors, "
                          f"5xx sent {stat[('api', 'FRONTEND')]['hrsp_5xx']}")

        # --- restarts
        exits = [r["exit"] for r in restarts]
        all_up = all(r["up_after"] is not None and "error" not in r for r in restarts)
        # Seen DOWN: the health checks took the draining instance out before its listener closed.
        seen_down = sum(r["down_after"] is not None for r in restarts)
        checks.line(len(restarts) == args.instances and exits == [0] * args.instances and all_up
                    and seen_down == args.instances,
                    f"restarts: {len(restarts)} of {args.instances}, exit statuses {exits}, "
                    f"seen DOWN by HAProxy: {seen_down}, back UP in HAProxy: "
                    f"{sum(r['up_after'] is not None for r in restarts)}")
        for r in restarts:
            print(f"        {r['name']}: SIGTERM at {r['sigterm_at']:.1f} s; HAProxy DOWN after "
                  f"{fmt_s(r['down_after'])}; exited after {r['exited_after']:.2f} s; /readyz 200 after "
                  f"{fmt_s(r.get('ready_after'))}; UP after {fmt_s(r['up_after'])}"
                  + (f"; {r['error']}" if "error" in r else ""))
        last_up = max((r["up_at"] for r in restarts), default=0)
        covered = not load_ended_early and results and results[-1][0] >= last_up
        checks.line(bool(covered), f"load covered every restart: last request at "
                                   f"{results[-1][0] if results else 0:.1f} s, last instance UP at "
                                   f"{last_up:.1f} s" + (f" (ended early: {load_ended_early})"
                                                         if load_ended_early else ""))

        # --- first sights: one row each, exactly for the 200s
        ok_subs = {sub for t, kind, outcome, _, sub in results if kind == "first" and outcome == 200}
        sent_subs = {sub for t, kind, _, _, sub in results if kind == "first"}
        rows = {}
        for line in cluster.psql(cluster.database_url,
                                 "SELECT sub, count(*) FROM users WHERE sub LIKE 'scale|new-%' "
                                 "GROUP BY sub").splitlines():
            sub, n = line.rsplit("|", 1)
            rows[sub] = int(n)
        doubles = sum(1 for n in rows.values() if n > 1)
        without_200 = len(set(rows) - ok_subs)
        missing = len(ok_subs - set(rows))
        checks.line(sum(rows.values()) == len(ok_subs) and not doubles and not without_200 and not missing,
                    f"users rows of first-sight subs: {sum(rows.values())} == first-sight 200s "
                    f"{len(ok_subs)} (of {len(sent_subs)} sent; {doubles} subs with several rows, "
                    f"{without_200} rows without a 200, {missing} 200s without a row)")

        # --- replays across instances
        accepted, refused, same_refused, other = replay_check(
            cluster, minter, dpop_key, dpop_token, f"{front}/api/private", args.replays)
        text = (f"DPoP replay on another instance refused (401 replayed): {refused} of {accepted} "
                f"accepted proofs ({same_refused} of {accepted} refused on the same instance"
                + (f"; {', '.join(f'{k}: {v}' for k, v in sorted(other.items()))}" if other else "") + ")")
        if args.skip_replay_check:
            checks.line(None, text + " [not counted: --skip-replay-check]")
        else:
            checks.line(accepted == args.replays and refused == accepted, text)

        # --- revocation
        delays, error = revocation_check(cluster, binary, minter, "scale|revoked")
        if error:
            checks.line(False, f"revocation: {error}")
        else:
            slow = [n for n, d in delays.items() if d is None or d > REVOCATION_BOUND_S]
            checks.line(not slow, f"revocation refused by every instance within {REVOCATION_BOUND_S:.0f} s: "
                                  + ", ".join(f"{n} {fmt_s(d)}" for n, d in sorted(delays.items())))
    except SetupError as e:
        print(f"scale-out: {e}", file=sys.stderr)
        cluster.close(keep=True)
        return 2
    except BaseException:
        cluster.close(keep=True)
        raise
    cluster.close(keep=args.keep or bool(checks.failed))
    print(f"{'FAIL' if checks.failed else 'PASS'}  scale-out: {len(checks.failed)} checks failed, "
          f"{time.monotonic() - started:.0f} s in all")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
