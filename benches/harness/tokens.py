"""The cold path's tokens and the DPoP part's tokens and proofs: minted
before any timed window, in parallel `run.py --mint-worker` processes, for
the key id a server publishes."""
import itertools
import json
import os
import secrets
import subprocess
import time

from .common import RUN_PY, BenchError, log
from .peers import peers_setup, peers_venv
from .servers import http_get


class Minter:
    """Mints the cold path's token lists before any timed window, in parallel
    worker processes (one per core: 60 000 RSA signatures take about a minute
    on one core)."""

    def __init__(self, ctx, python):
        self.ctx, self.python = ctx, python
        self.cache = {}

    def token_sets(self, key_path, kid, iss, aud, workdir):
        """{kind: (path, count)} for warmup/new/known, minted once per (issuer,
        audience, key id) and reused for every stack that trusts them: each
        stack is a fresh process with an empty cache, so the tokens are new to it.
        new: subs cold-1..N; known: the same subs, other jti; warmup: subs coldwarm-i
        (with --cold-subs random, each hashed into auth0|<24 hex digits>)."""
        ident = (iss, aud, kid, str(key_path), self.ctx.args.cold_subs)
        if ident in self.cache:
            return self.cache[ident]
        a = self.ctx.args
        n, w = a.cold_tokens, a.cold_warmup_tokens
        nonce = secrets.token_hex(4)
        plan = {"warmup": ("coldwarm-", f"{nonce}-w-", w), "new": ("cold-", f"{nonce}-n-", n),
                "known": ("cold-", f"{nonce}-k-", n)}
        workers = max(1, os.cpu_count() or 1)
        now = int(time.time())
        specs = [{"key": str(key_path), "kid": kid, "iss": iss, "aud": aud, "iat": now, "exp": now + 4 * 3600,
                  "random_subs": a.cold_subs == "random", "jobs": []} for _ in range(workers)]
        parts = {}
        for kind, (sub_prefix, jti_prefix, count) in plan.items():
            parts[kind] = []
            for j in range(workers):
                lo, hi = count * j // workers + 1, count * (j + 1) // workers + 1
                if hi > lo:
                    out = workdir / f"tokens-{kind}.part{j}"
                    specs[j]["jobs"].append({"out": str(out), "sub_prefix": sub_prefix, "jti_prefix": jti_prefix,
                                             "start": lo, "count": hi - lo})
                    parts[kind].append(out)
        log(f"minting {sum(c for _, _, c in plan.values())} RS256 tokens for {iss} ({workers} processes)")
        t0 = time.monotonic()
        self.run_workers(specs)
        result, seen = {}, set()
        for kind, (_, _, count) in plan.items():
            path = workdir / f"tokens-{kind}.txt"
            with open(path, "w") as out:
                for part in parts[kind]:
                    out.write(part.read_text())
                    part.unlink()
            lines = [t for t in path.read_text().splitlines() if t]
            seen.update(lines)
            if len(lines) != count:
                raise BenchError(f"minted {len(lines)} {kind} tokens, expected {count}")
            result[kind] = (path, count)
        if len(seen) != n + n + w:
            raise BenchError("minted tokens are not all distinct")
        log(f"minted in {time.monotonic() - t0:.0f} s")
        self.cache[ident] = result
        return result

    def dpop_lists(self, key_path, kid, iss, aud, htu, keys, counts, workdir):
        """DPoP (RFC 9449): `keys` EC P-256 keys, an RS256 token bound to
        each (subs dpop-<nonce>-<k>), and for each kind in `counts` ({kind:
        n}) a file of n lines `TOKEN PROOF`, a new ES256 proof of GET `htu`
        per line, the keys in turn. Proofs carry the second they were made
        as `iat`, so they must be sent within the server's iat window
        (DPOP_IAT_WINDOW_SECS, 60 s) of this call. Returns ({kind: (path,
        n)}, the wall-clock second minting began)."""
        workers = max(1, min(keys, os.cpu_count() or 1))
        nonce = secrets.token_hex(4)
        started = time.time()
        now = int(started)
        specs = []
        for j in range(workers):
            jobs = [{"out": str(workdir / f"dpop-{kind}.part{j}"), "jti_prefix": f"{nonce}-{kind}-{j}-",
                     "count": n * (j + 1) // workers - n * j // workers} for kind, n in counts.items()]
            specs.append({"key": str(key_path), "kid": kid, "iss": iss, "aud": aud, "iat": now, "exp": now + 3600,
                          "dpop": {"keys": keys * (j + 1) // workers - keys * j // workers,
                                   "sub_prefix": f"dpop-{nonce}-{j}-", "htm": "GET", "htu": htu, "jobs": jobs}})
        log(f"minting {keys} DPoP-bound tokens and {sum(counts.values())} ES256 proofs of GET {htu} "
            f"({workers} processes)")
        self.run_workers(specs)
        result = {}
        for kind, n in counts.items():
            parts = [workdir / f"dpop-{kind}.part{j}" for j in range(workers)]
            per_part = [p.read_text().splitlines() for p in parts]
            for p in parts:
                p.unlink()
            # The workers' lines interleaved, so that every key takes turns through the whole run.
            lines = [line for row in itertools.zip_longest(*per_part) for line in row if line]
            if len(lines) != n or len({line.split(" ")[1] for line in lines}) != n:
                raise BenchError(f"minted {len(lines)} {kind} DPoP lines, expected {n} distinct proofs")
            path = workdir / f"dpop-{kind}.txt"
            path.write_text("\n".join(lines) + "\n")
            result[kind] = (path, n)
        log(f"minted in {time.time() - started:.1f} s")
        return result, started

    def run_workers(self, specs):
        """One `run.py --mint-worker` process per spec, in parallel; fails if one does."""
        procs = [subprocess.Popen([str(self.python), str(RUN_PY), "--mint-worker"],
                                  stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in specs]
        for p, spec in zip(procs, specs):
            p.stdin.write(json.dumps(spec))
            p.stdin.close()
        for p in procs:
            err = p.stderr.read()
            if p.wait() != 0:
                raise BenchError(f"minting tokens failed: {err.strip()[-2000:]}")


def ensure_mint_python(ctx):
    """The Python that signs cold tokens: --mint-python, else the peers'
    virtualenv (created with their setup.sh if missing). It must import
    `cryptography`: the standard library has no RSA."""
    py = ctx.args.mint_python or peers_venv() / "bin" / "python"
    if ctx.args.mint_python is None and not os.access(py, os.X_OK):
        if not (ctx.args.peers_dir / "setup.sh").is_file():
            raise BenchError(f"{py} missing and no {ctx.args.peers_dir}/setup.sh to create it; "
                             "pass --mint-python (a Python with `cryptography`)")
        peers_setup(ctx, ctx.raw / "cold-peers-setup.txt")
    r = subprocess.run([str(py), "-c", "import cryptography"], capture_output=True, text=True)
    if r.returncode != 0:
        raise BenchError(f"{py} cannot import cryptography: {r.stderr.strip()}")
    return py


def published_kid(jwks_url):
    """The kid a server publishes: tokens must name it, as Auth0's do."""
    status, body = http_get(jwks_url)
    if status != 200:
        raise BenchError(f"{jwks_url} answered {status}: {body!r}")
    keys = json.loads(body)["keys"]
    if len(keys) != 1:
        raise BenchError(f"{jwks_url} publishes {len(keys)} keys, expected 1")
    return keys[0]["kid"]
