"""wrk: installing it, running it (pinned to its core), and reading what
the Lua scripts in benches/wrk/ print (report.lua's WRK line, cold.lua's COLD
record, which a cold run checks token by token)."""
import json
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

from .common import COLD_LUA, BenchError, log


def ensure_wrk():
    """wrk from Debian's packages when missing (we are root on these machines)."""
    if shutil.which("wrk"):
        return
    log("installing wrk (apt-get)")
    subprocess.run("apt-get update -qq && apt-get install -y -qq wrk", shell=True,
                   stdout=sys.stderr, stderr=sys.stderr)
    if not shutil.which("wrk"):
        raise BenchError("wrk is not installed")


def parse_kv_line(text, prefix):
    """The key=value pairs of the one line starting with `prefix` (report.lua's WRK line)."""
    for line in text.splitlines():
        if line.startswith(prefix + " "):
            return dict(re.findall(r"(\w+)=(\S+)", line))
    return None


def shell_join(args):
    """The arguments as run.sh showed them: those with spaces in double quotes."""
    return " ".join(f'"{a}"' if " " in a else a for a in args)


def run_wrk(ctx, args):
    """One wrk run on core 1 (PIN=1); its stdout. A failed wrk fails the step."""
    r = subprocess.run([*ctx.wrk_pin, "wrk", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f"wrk {' '.join(args)} failed (exit {r.returncode}): {r.stdout}{r.stderr}")
    return r.stdout


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
