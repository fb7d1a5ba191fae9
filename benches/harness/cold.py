"""The cold path: each token sent once, for ours on SQLite and on
PostgreSQL and for the peers against their JWKS issuer, each stack in three
passes (warm-up, new users, known users with new tokens) and a repeated-token
pass, the users rows checked against the 200s on ours."""
import os
import shutil
import tempfile
import time
from pathlib import Path

from .common import COLD_KINDS, COLD_LABELS, COLD_STACKS, REPORT_LUA, BenchError, log, warn
from .machine import cpu_busy, loadavg, openssl_rsa_speed, vm_hwm_kb
from .peers import peer_command, peers_venv, prepare_peers
from .perf import CpuCount, per_request_text
from .report import report_cold
from .servers import http_get, our_env, port_in_use, run, start_ours, users_jsonl
from .tokens import Minter, ensure_mint_python, published_kid
from .wrk import cold_wrk, parse_kv_line, run_wrk, shell_join

OUR_AUDIENCE = "https://hello-world.example.com"  # what `dev` accepts
PEER_AUDIENCE = "https://bench.example/api"  # what the peers are started with


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
        pg_name = f"actix_auth0_bench_cold_{os.getpid()}"
        db_url = fresh_database(a.postgres, pg_name)
        result["database"] = f"PostgreSQL, fresh database {pg_name}"
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
            drop_database(a.postgres, pg_name)
    return result


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


def psql(server_url, sql, database="postgres"):
    """One statement on a database of the PostgreSQL server (trust auth); its
    output, unaligned and without headers."""
    return run(["psql", f"{server_url.rstrip('/')}/{database}", "-v", "ON_ERROR_STOP=1", "-Aqtc", sql]).stdout.strip()


def fresh_database(server_url, name):
    """A new, empty PostgreSQL database `name` (one left over by an
    interrupted run is dropped first); its URL."""
    drop_database(server_url, name)
    psql(server_url, f'CREATE DATABASE "{name}"')
    return f"{server_url.rstrip('/')}/{name}"


def drop_database(server_url, name):
    psql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
