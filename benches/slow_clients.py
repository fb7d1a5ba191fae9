#!/usr/bin/env python3
"""Slow clients against a release binary: do they lock a fresh client out, and
what do they cost in memory?

Starts `BINARY dev` (no tenant needed) in a temporary folder, under an
open-file limit, then opens N connections that each send one complete request,
read its answer, and then either trickle the next head a byte every 200 ms
(`--mode trickle`) or send all but the end of a large head and wait
(`--mode half-sent`). While they are attached, a fresh client asks for
/api/messages/public every second. Prints one JSON object: how many slow
connections the server closed and when, the fresh client's answers and
latencies, and the server's RSS at the start, at its peak and at the end.

    python3 benches/slow_clients.py --binary target/release/actix-auth0-api \\
        --mode trickle --conns 1000 --nofile 1024
    python3 benches/slow_clients.py --binary target/release/actix-auth0-api \\
        --mode half-sent --conns 2000 --head-kb 120 --nofile 8192
"""

import argparse
import asyncio
import json
import os
import socket
import subprocess
import tempfile
import time

HOST = b"Host: 127.0.0.1\r\n"  # `dev` answers only requests for this machine
REQUEST = b"GET /api/messages/public HTTP/1.1\r\n" + HOST + b"\r\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def read_answer(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
    await reader.readexactly(length)
    return head.split(b" ", 2)[1]


async def slow_client(port, mode, head_kb, duration, closed_at, started):
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST)
        await writer.drain()
        await read_answer(reader)
    except (OSError, asyncio.IncompleteReadError):
        return "no first answer"
    head = b"GET /api/messages/public HTTP/1.1\r\n" + HOST + b"X-Slow: "
    if mode == "half-sent":
        head += b"x" * (head_kb * 1024)
    deadline = time.monotonic() + duration
    sent = 0
    try:
        while time.monotonic() < deadline:
            if mode == "half-sent":
                if sent == 0:
                    writer.write(head)
                    await writer.drain()
                    sent = len(head)
            else:
                writer.write(head[sent:sent + 1] if sent < len(head) else b"z")
                await writer.drain()
                sent += 1
            try:
                data = await asyncio.wait_for(reader.read(1024), 0.2)
            except asyncio.TimeoutError:
                continue
            if not data:
                closed_at.append(time.monotonic() - started)
                return "closed"
            return "answered"
        return "still open"
    except OSError:
        closed_at.append(time.monotonic() - started)
        return "closed"
    finally:
        writer.close()


async def fresh_client(port, duration, answers):
    end = time.monotonic() + duration
    while time.monotonic() < end:
        began = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
            writer.write(REQUEST)
            await writer.drain()
            status = await asyncio.wait_for(read_answer(reader), 5)
            writer.close()
            answers.append((status.decode(), round((time.monotonic() - began) * 1000, 1)))
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as err:
            answers.append((type(err).__name__, round((time.monotonic() - began) * 1000, 1)))
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - began)))


async def run(args, port, pid):
    started = time.monotonic()
    start_rss = rss_mib(pid)
    closed_at, answers, peak = [], [], [start_rss]

    async def watch_rss():
        while True:
            peak[0] = max(peak[0], rss_mib(pid))
            await asyncio.sleep(0.1)

    watcher = asyncio.create_task(watch_rss())
    clients = [asyncio.create_task(slow_client(port, args.mode, args.head_kb, args.duration, closed_at, started))
               for _ in range(args.conns)]
    fresh = asyncio.create_task(fresh_client(port, args.duration, answers))
    outcomes = await asyncio.gather(*clients)
    await fresh
    await asyncio.sleep(2)
    watcher.cancel()
    counts = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    closed_at.sort()
    ok = [ms for status, ms in answers if status == "200"]
    return {
        "mode": args.mode,
        "conns": args.conns,
        "nofile": args.nofile,
        "slow_clients": counts,
        "closed_after_s": {
            "first": round(closed_at[0], 1) if closed_at else None,
            "last": round(closed_at[-1], 1) if closed_at else None,
        },
        "fresh_client": {
            "asked": len(answers),
            "answered_200": len(ok),
            "max_ms": max(ok) if ok else None,
            "failures": [a for a in answers if a[0] != "200"][:5],
        },
        "rss_mib": {"start": round(start_rss, 1), "peak": round(peak[0], 1), "end": round(rss_mib(pid), 1)},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--mode", choices=["trickle", "half-sent"], default="trickle")
    parser.add_argument("--conns", type=int, default=1000)
    parser.add_argument("--head-kb", type=int, default=120)
    parser.add_argument("--nofile", type=int, default=1024, help="the server's open-file limit")
    parser.add_argument("--duration", type=float, default=30, help="seconds the slow clients keep at it")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        env = dict(os.environ, PORT=str(port), RUST_LOG="warn")
        env.update(item.split("=", 1) for item in args.env)
        server = subprocess.Popen(
            ["prlimit", f"--nofile={args.nofile}:{args.nofile}", os.path.abspath(args.binary), "dev"],
            cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            result = asyncio.run(run(args, port, server.pid))
            print(json.dumps(result))
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
