"""The warm path: our server on SQLite with 1000 users' rows, the three
routes in interleaved rounds, then the Python peers through their bench.sh."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import (BENCHES, NUSERS, REPO, REPORT_LUA, TOKENS_LUA, WARM_LABELS, WARM_PEERS, BenchError, log,
                     warn)
from .machine import cpu_busy, loadavg, vm_hwm_kb
from .peers import peers_setup
from .report import report_warm
from .servers import app, http_get, our_env, start_ours, users_jsonl
from .wrk import parse_kv_line, run_wrk, shell_join


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
                         .replace(str(work), "<tmp>").replace(str(BENCHES) + "/", "benches/"))
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
