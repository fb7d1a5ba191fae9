"""Facts about the machine: how busy it is, what it is (CPU, kernel, tool
versions, commit), a process's peak memory and process tree, and the RSA-2048
speed of the server's core (the ceiling of any cold row)."""
import datetime
import os
import platform
import re
import subprocess
import time
from pathlib import Path

from .common import REPO, BenchError, log
from .servers import run


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


def vm_hwm_kb(pid):
    """Peak resident set size of a process (VmHWM), in kB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise BenchError(f"no VmHWM in /proc/{pid}/status")


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
