"""Results writing: the tables printed at the end of each part, and the
files in the results folder (latest.md, results.json and
requests-per-second.svg for the warm path; cold.md, cold.json and
cold-requests-per-second.svg for the cold one; dpop.md and dpop.json for the
DPoP part), with the machine's facts and the command that reproduces the run."""
import json
from statistics import median

from . import chart
from .common import ALL_STACKS, BENCHES, COLD_KINDS, COLD_LABELS, NUSERS, WARM_LABELS, log
from .peers import peer_versions


def machine_lines(ctx, facts, pinned):
    """The start of a report's "Machine" section: date, commit and how the cores were shared."""
    lines = ["## Machine", "", f"- date: {facts['date']}", f"- commit: {facts['commit']}"]
    if ctx.pin:
        lines.append(f"- cores (nproc): {facts['nproc']}; {pinned}")
    else:
        lines.append(f"- cores (nproc): {facts['nproc']}, shared by wrk and the server (unpinned)")
    return lines


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
    if args.only == "dpop":
        parts += [f"--dpop-proofs {args.dpop_proofs}", f"--dpop-keys {args.dpop_keys}",
                  f"--cold-warmup-tokens {args.cold_warmup_tokens}"]
    elif args.only != "warm":
        parts += [f"--cold-tokens {args.cold_tokens}", f"--cold-warmup-tokens {args.cold_warmup_tokens}"]
        if args.cold_subs != "sequential":
            parts.append(f"--cold-subs {args.cold_subs}")
    parts += [f"--bin {label}={path}" for label, path in args.bin or []]
    return " ".join(parts)


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
            md.append(rec["command"].replace(str(BENCHES) + "/", "benches/").replace(str(work), "<tmp>"))
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


def report_dpop(ctx, facts, results, bins, work, busy):
    """The DPoP tables (printed and in dpop.md) and dpop.json: per stack,
    each binary's rounds and medians, then each binary's per-round ratio
    and CPU difference to the first one (the reference)."""
    a = ctx.args
    busy_before, load_before, busy_after = busy
    ref = bins[0][0]
    sections, summary = [], {}
    for stack, by_bin in results.items():
        lines = ["| binary | req/s, each round | median req/s | p50 ms | p99 ms | server CPU µs a request "
                 "| of which proof-ledger threads | PostgreSQL backends CPU µs a request |",
                 "|---|---|---:|---:|---:|---:|---:|---:|"]
        summary[stack] = {}
        for label, recs in by_bin.items():
            ok = [r for r in recs if "error" not in r]
            each = ", ".join("FAILED" if "error" in r else f"{r['rps']:.0f}" for r in recs)
            if not ok:
                lines.append(f"| {label} | {each} | n/a | n/a | n/a | n/a | n/a | n/a |")
                continue
            m = {"rps": median(r["rps"] for r in ok), "p50_ms": median(r["p50_us"] for r in ok) / 1000,
                 "p99_ms": median(r["p99_us"] for r in ok) / 1000,
                 "cpu_us": median_of(ok, lambda r: r["per_request"].get("cpu_us")),
                 "ledger_us": median_of(ok, ledger_us),
                 "postgres_us": median_of(ok, lambda r: r.get("postgres_cpu_us"))}
            summary[stack][label] = m
            lines.append(f"| {label} | {each} | {m['rps']:.0f} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | "
                         f"{cell(m['cpu_us'])} | {cell(m['ledger_us'])} | {cell(m['postgres_us'])} |")
        table = "\n".join(lines)
        pairs = []
        for label, recs in list(by_bin.items())[1:]:
            rows = ["| round | req/s ratio | server CPU µs a request, difference | with the PostgreSQL backends |",
                    "|---:|---:|---:|---:|"]
            diffs = {"ratio": [], "cpu": [], "total": []}
            for rnd, (r, b) in enumerate(zip(recs, by_bin[ref]), 1):
                if "error" in r or "error" in b or not r["per_request"] or not b["per_request"]:
                    rows.append(f"| {rnd} | n/a | n/a | n/a |")
                    continue
                ratio = r["rps"] / b["rps"]
                cpu = r["per_request"]["cpu_us"] - b["per_request"]["cpu_us"]
                total = cpu + r.get("postgres_cpu_us", 0.0) - b.get("postgres_cpu_us", 0.0)
                for k, v in (("ratio", ratio), ("cpu", cpu), ("total", total)):
                    diffs[k].append(v)
                rows.append(f"| {rnd} | {ratio:.3f} | {cpu:+.1f} ({cpu / b['per_request']['cpu_us']:+.1%}) | "
                            f"{total:+.1f} |")
            if diffs["ratio"]:
                ref_cpu = summary[stack][ref]["cpu_us"]
                med = {k: median(v) for k, v in diffs.items()}
                med["cpu_pct"] = 100 * med["cpu"] / ref_cpu if ref_cpu else None
                summary[stack][f"{label} against {ref}"] = med
                rows.append(f"| median | {med['ratio']:.3f} | {med['cpu']:+.1f}"
                            + (f" ({med['cpu_pct']:+.1f}%)" if med["cpu_pct"] is not None else "")
                            + f" | {med['total']:+.1f} |")
            pairs.append((label, "\n".join(rows)))
        sections.append((stack, table, pairs))

    checks = []
    for stack, by_bin in results.items():
        for label, recs in by_bin.items():
            for rnd, r in enumerate(recs, 1):
                if "error" in r:
                    checks.append(f"FAILED: {COLD_LABELS[stack]}, {label}, round {rnd}: {r['error']}")
                elif r.get("ledger_rows") is not None:
                    checks.append(f"{COLD_LABELS[stack]}, {label}, round {rnd}: {r['ok200']} of {r['answered']} "
                                  f"answered 200; dpop_proofs rows after it {r['ledger_rows']} (warm-up "
                                  f"included); {r['postgres_commits']} commits in the database through the run "
                                  f"({r['answered'] / max(r['postgres_commits'], 1):.1f} proofs each); oldest proof "
                                  f"{r['oldest_proof_age_s']} s old at the end")
                else:
                    checks.append(f"{COLD_LABELS[stack]}, {label}, round {rnd}: {r['ok200']} of {r['answered']} "
                                  f"answered 200" + (f"; no dpop_proofs table; {r['postgres_commits']} commits in "
                                                     "the database through the run" if stack == "ours-postgres" else "")
                                  + f"; oldest proof {r['oldest_proof_age_s']} s old at the end")

    threads = ctx.wrk_threads
    data = {"date": facts["date"], "commit": facts["commit"], "nproc": facts["nproc"], "cpu": facts["cpu"],
            "proofs": a.dpop_proofs, "warmup_proofs": a.cold_warmup_tokens, "keys": a.dpop_keys,
            "rounds": a.rounds, "connections": max(a.conns, threads), "wrk_threads": threads, "pinned": ctx.pin,
            "binaries": [{"label": label, "path": str(path)} for label, path in bins],
            "summary": summary, "runs": results}
    (ctx.results / "dpop.json").write_text(json.dumps(data, indent=2) + "\n")

    md = ["# DPoP requests, each proof used once", "",
          f"{a.dpop_proofs} requests a run to `/api/private`, each `Authorization: DPoP <token>` with a proof "
          f"never sent before (ES256, `htm`, `htu`, `iat`, `jti`, `ath`), {a.dpop_keys} DPoP-bound tokens "
          f"(one EC P-256 key each) taking turns, after a warm-up of {a.cold_warmup_tokens} other proofs "
          "(discarded; it verifies each token once and creates its user, so the measured requests pay "
          f"the proof alone); wrk -t{threads} -c{max(a.conns, threads)}; {a.rounds} round(s), the binaries "
          f"in turn within each ({', '.join(label for label, _ in bins)}), each run on a fresh database "
          "and a fresh server. req/s over the window from the first request to the last response; "
          "p50 and p99 from wrk's histogram; CPU from `perf stat` on the server (its every thread) and "
          "from /proc for the PostgreSQL backends of its connections, divided by the requests. Medians "
          "of the rounds; the differences are per round, against the first binary.", ""]
    md += ["Binaries:", ""] + [f"- {label}: `{path}`" for label, path in bins] + [""]
    for stack, table, pairs in sections:
        md += [f"## {COLD_LABELS[stack]}", "", table, ""]
        for label, rows in pairs:
            md += [f"{label} against {ref}, round by round:", "", rows, ""]
    md += ["## Checks", ""] + [f"- {line}" for line in checks] + [""]
    if a.bin:
        facts = dict(facts, commit=f"{facts['commit']} (the harness's; the binaries measured are named above)")
    md += machine_lines(ctx, facts, "the server pinned to core 0 with one worker, wrk (one thread) to core 1")
    md += [f"- CPU: {facts['cpu']}", f"- kernel: {facts['kernel']}", f"- {facts['rustc']}; {facts['wrk']}",
           f"- machine CPU busy before the runs: {busy_before}% (loadavg {load_before}); after: {busy_after}%",
           "", "## Command", "", "```", command_line(a), "```", "",
           "Each run: `DATABASE_URL=<fresh db> RUST_LOG=warn HOST=127.0.0.1"
           f"{' WORKERS=1' if ctx.pin else ''} {' '.join(ctx.server_pin + [''])}<binary> dev --data-dir "
           "<tmp>/dev-issuer`, then the warm-up and the measured pass, each (another file for the warm-up):",
           "", "```"]
    for by_bin in results.values():
        for recs in by_bin.values():
            for r in recs[:1]:
                if "command" in r:
                    md.append(r["command"].replace(str(BENCHES) + "/", "benches/").replace(str(work), "<tmp>"))
    md += ["```", "", "## Notes", "",
           "- PostgreSQL is the machine's server, not pinned: its backends share both cores with our server and "
           "wrk; their CPU is the last column, not in the server's.",
           f"- raw wrk outputs and server logs: {ctx.show(ctx.raw)}/dpop-* (not committed)."]
    (ctx.results / "dpop.md").write_text("\n".join(md) + "\n")

    for stack, table, pairs in sections:
        print(f"\n{COLD_LABELS[stack]}\n\n{table}")
        for label, rows in pairs:
            print(f"\n{label} against {ref}:\n\n{rows}")
    print()
    for line in checks:
        print(line)
    r = ctx.show(ctx.results)
    print(f"(written: {r}/dpop.md, {r}/dpop.json, raw in {r}/raw/dpop-*)")


def median_of(recs, value):
    values = [v for v in map(value, recs) if v is not None]
    return median(values) if values else None


def ledger_us(rec):
    """CPU µs a request of the proof-ledger threads (PostgreSQL, with the ledger); None without them."""
    threads = rec["per_request"].get("threads_us", {})
    found = [us for name, us in threads.items() if name.startswith("proof-ledger")]
    return sum(found) if found else None


def cell(value):
    return "n/a" if value is None else f"{value:.1f}"
