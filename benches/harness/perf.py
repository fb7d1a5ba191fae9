"""The server's own cost per request: `perf stat` (and, with --perf-record,
`perf record`) attached to a server's processes through one run."""
import shutil
import signal
import subprocess

from .machine import process_tree


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
