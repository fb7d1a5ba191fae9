"""The DPoP part: requests with DPoP-bound tokens (RFC 9449), each proof
used once, on ours with SQLite and with PostgreSQL (where a proof new to the
replay cache is also recorded in the `dpop_proofs` table before the request
is answered), for one or more binaries alternated round by round (`--bin`),
so that an A/B comparison meets the machine's noise alike."""
import os
import shutil
import tempfile
import time
from pathlib import Path

from .cold import OUR_AUDIENCE, drop_database, fresh_database, psql, settle
from .common import COLD_LABELS, BenchError, log, warn
from .machine import cpu_busy, loadavg
from .perf import CpuCount, per_request_text
from .report import report_dpop
from .servers import http_get, start_ours
from .tokens import Minter, ensure_mint_python, published_kid
from .wrk import cold_wrk

DPOP_STACKS = ["ours-postgres", "ours-sqlite"]
IAT_WINDOW = 60  # the server's DPOP_IAT_WINDOW_SECS, left at its default


def run_dpop(ctx, facts):
    """Every round: each stack, each binary in turn; then dpop.md and dpop.json."""
    a = ctx.args
    stacks = [s for s in DPOP_STACKS if s in a.stacks]
    if "ours-postgres" in stacks and shutil.which("psql") is None:
        raise BenchError("psql is not installed; ours-postgres needs it (or leave it out of --stacks)")
    bins = ctx.bins or [(facts["commit"], ctx.bin)]
    minter = Minter(ctx, ensure_mint_python(ctx))
    work = Path(tempfile.mkdtemp(prefix="actix-auth0-dpop."))
    ctx.cleanups.append(lambda: shutil.rmtree(work, ignore_errors=True))
    for f in ctx.raw.glob("dpop-*"):
        f.unlink()

    busy_before, load_before = cpu_busy(), loadavg()
    log(f"machine CPU busy before the DPoP runs: {busy_before}% (loadavg {load_before})")
    if busy_before >= 10:
        warn(f"WARNING: machine not idle before the run ({busy_before}% busy); figures will be depressed")
    results = {stack: {label: [] for label, _ in bins} for stack in stacks}
    for rnd in range(1, a.rounds + 1):
        for stack in stacks:
            for label, binary in bins:
                ctx.bin = binary
                try:
                    rec = dpop_run(ctx, stack, label, rnd, work, minter)
                except BenchError as e:
                    warn(f"FAILED: {COLD_LABELS[stack]}, {label}, round {rnd}: {e}")
                    rec = {"error": str(e)}
                    ctx.failed = True
                results[stack][label].append(rec)
    report_dpop(ctx, facts, results, bins, work, (busy_before, load_before, cpu_busy()))
    return results


def dpop_run(ctx, stack, label, rnd, work, minter):
    """One binary on one stack: a fresh database, the server started as the
    cold part starts it, tokens and proofs minted, a warm-up pass
    (discarded: it also verifies each token once and creates its user),
    then the measured pass with the server's CPU counted (and, on
    PostgreSQL, its backends'); every answer must be 200, and on PostgreSQL
    a binary with the table must have recorded every proof in `dpop_proofs`."""
    a = ctx.args
    name = f"dpop-{rnd}-{label}-{stack}"
    run_dir = work / name
    run_dir.mkdir()
    data_dir = work / "dev-issuer"  # one key for every run
    pg_name = None
    if stack == "ours-sqlite":
        db_url = str(run_dir / "dpop.db")
    else:
        pg_name = f"actix_auth0_bench_dpop_{os.getpid()}"
        db_url = fresh_database(a.postgres, pg_name)
    server = None
    try:
        server = start_ours(ctx, f"{label} ({stack})", db_url, run_dir, data_dir, ctx.raw / f"{name}-server.log")
        base = f"http://127.0.0.1:{a.port}"
        url = f"{base}/api/private"
        status = http_get(url)[0]
        if status != 401:
            raise BenchError(f"/api/private without a token answered {status}, not 401")
        lists, minted_at = minter.dpop_lists(
            data_dir / "signing-key.pem", published_kid(f"{base}/.well-known/jwks.json"),
            (data_dir / "issuer").read_text().strip(), OUR_AUDIENCE, url, a.dpop_keys,
            {"warmup": a.cold_warmup_tokens, "measured": a.dpop_proofs}, run_dir)
        admitted = 0
        path, count = lists["warmup"]
        if count:
            log(f"{label}, {COLD_LABELS[stack]}: DPoP warm-up, {count} proofs")
            warm = cold_wrk(ctx, url, path, count, f"{name}-warmup.txt")
            if warm["problems"]:
                raise BenchError("warm-up: " + "; ".join(warm["problems"]) + age_hint(minted_at))
            admitted += warm["ok200"]
        path, count = lists["measured"]
        log(f"{label}, {COLD_LABELS[stack]}: DPoP, {count} proofs (round {rnd})")
        settle()
        backends = pg_name and Backends(a.postgres, pg_name)
        cpu = CpuCount(ctx, server.pid, name)
        rec = cold_wrk(ctx, url, path, count, f"{name}.txt")
        rec["per_request"] = cpu.finish(rec["answered"])
        if backends:
            rec["postgres_cpu_us"], rec["postgres_commits"] = backends.finish(rec["answered"])
        rec["oldest_proof_age_s"] = round(time.time() - minted_at, 1)
        admitted += rec["ok200"]
        if pg_name:
            rec["ledger_rows"] = ledger_rows(a.postgres, pg_name)
            if rec["ledger_rows"] is not None and rec["ledger_rows"] != admitted:
                rec["problems"].append(f"dpop_proofs holds {rec['ledger_rows']} rows, "
                                       f"expected {admitted} (the proofs answered 200)")
        log(f"{label}, {COLD_LABELS[stack]}: {rec['rps']:.0f} req/s over {rec['window_s']:.2f} s, "
            f"p50 {rec['p50_us'] / 1000:.2f} ms, p99 {rec['p99_us'] / 1000:.2f} ms, 200s {rec['ok200']}/{count}"
            + per_request_text(rec["per_request"])
            + (f", PostgreSQL backends {rec['postgres_cpu_us']:.1f} µs, {rec['postgres_commits']} commits"
               if "postgres_cpu_us" in rec else "")
            + (f", dpop_proofs rows {rec['ledger_rows']}" if rec.get("ledger_rows") is not None else ""))
        if rec["problems"]:
            raise BenchError("; ".join(rec["problems"]) + age_hint(minted_at))
        if not server.alive():
            raise BenchError(f"the server died during the run:\n{server.output()}")
        return rec
    finally:
        if server is not None:
            ctx.stop(server)
        if pg_name is not None:
            drop_database(a.postgres, pg_name)
        shutil.rmtree(run_dir, ignore_errors=True)


def age_hint(minted_at):
    age = time.time() - minted_at
    if age < IAT_WINDOW:
        return ""
    return (f" (the first proofs were {age:.0f} s old at the end, past the server's {IAT_WINDOW} s iat window: "
            "pass fewer --dpop-proofs)")


def ledger_rows(server_url, database):
    """Rows in `dpop_proofs`; None where the binary has no such table."""
    if psql(server_url, "SELECT to_regclass('dpop_proofs') IS NOT NULL", database) != "t":
        return None
    return int(psql(server_url, "SELECT count(*) FROM dpop_proofs", database))


class Backends:
    """Through one run, the CPU time of the PostgreSQL backends serving
    `database` (our server's connections, which `perf stat` on the server
    does not see), from /proc: utime + stime of each; and the transactions
    committed there (each batch of proofs is one statement, so one
    transaction)."""

    def __init__(self, server_url, database):
        self.server_url, self.database = server_url, database
        self.commits_before = self.commits()
        self.before = self.sample()

    def sample(self):
        pids = psql(self.server_url, f"SELECT pid FROM pg_stat_activity WHERE datname = '{self.database}'")
        ticks = {}
        for pid in pids.split():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # not on this machine, or gone
            ticks[pid] = int(fields[11]) + int(fields[12])  # utime, stime
        return ticks

    def commits(self):
        """pg_stat_database's xact_commit, read after a pause: a backend
        reports its counts when idle, at most once a second. (The server's
        revocations thread reads the database a few times a second, so the
        count never stops moving: those reads are in it too.)"""
        time.sleep(1.2)
        return int(psql(self.server_url, f"SELECT xact_commit FROM pg_stat_database WHERE datname = '{self.database}'"))

    def finish(self, requests):
        """Microseconds of their CPU a request (a backend that came during
        the run counts from 0), and the transactions committed."""
        after = self.sample()
        used = sum(t - self.before.get(pid, 0) for pid, t in after.items())
        return (used / os.sysconf("SC_CLK_TCK") * 1e6 / requests if requests else 0.0,
                self.commits() - self.commits_before)
