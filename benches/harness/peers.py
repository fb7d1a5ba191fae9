"""The peers in ../shared/peers: their virtualenv (setup.sh), the express
copy and the axum build the cold path needs, how each is started, and the
versions the reports name."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .common import REPO, BenchError, log
from .servers import run

EXPRESS_DIR = Path("/tmp/peer-express")  # the peers' README: a writable copy
AXUM_TARGET = Path("/tmp/peer-axum-target")
AXUM_BIN = AXUM_TARGET / "release" / "axum-jwt-authorizer-peer"


def peers_venv():
    return Path(os.environ.get("PEERS_VENV", "/tmp/peers-venv"))


def peers_setup(ctx, log_path):
    """The peers' setup.sh: their virtualenv (Flask, Django, Authlib, gunicorn,
    cryptography). Idempotent; output to raw/ and shown on failure."""
    peers_dir = ctx.args.peers_dir
    log(f"peers: bash {peers_dir}/setup.sh")
    with open(log_path, "w") as f:
        r = subprocess.run(["bash", str(peers_dir / "setup.sh")], cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        print("\n".join(Path(log_path).read_text().splitlines()[-20:]), file=sys.stderr)
        raise BenchError(f"setup.sh failed (see {ctx.show(log_path)})")


def prepare_peers(ctx, stacks):
    """Everything the cold peers need, before anything is timed (building
    uses both cores): the venv, the express copy with `npm ci`, the axum build."""
    peers_dir = ctx.args.peers_dir
    if not os.access(peers_venv() / "bin" / "gunicorn", os.X_OK):
        peers_setup(ctx, ctx.raw / "cold-peers-setup.txt")
    if "express" in stacks:
        src = peers_dir / "express"
        lock = (src / "package-lock.json").read_bytes()
        if not ((EXPRESS_DIR / "node_modules").is_dir() and (EXPRESS_DIR / "package-lock.json").is_file()
                and (EXPRESS_DIR / "package-lock.json").read_bytes() == lock
                and (EXPRESS_DIR / "server.js").read_bytes() == (src / "server.js").read_bytes()):
            log(f"express peer: copy to {EXPRESS_DIR}, npm ci")
            shutil.rmtree(EXPRESS_DIR, ignore_errors=True)
            shutil.copytree(src, EXPRESS_DIR)
            for p in [EXPRESS_DIR, *EXPRESS_DIR.rglob("*")]:
                p.chmod(p.stat().st_mode | 0o200)  # ../shared is read-only; the copy must not be
            run(["npm", "ci", "--no-audit", "--no-fund"], cwd=EXPRESS_DIR)
    if "axum" in stacks:
        log(f"axum peer: cargo build --release --locked (CARGO_TARGET_DIR={AXUM_TARGET})")
        r = subprocess.run(["cargo", "build", "--release", "--locked", "--manifest-path",
                            str(peers_dir / "axum-jwt-authorizer" / "Cargo.toml")],
                           env=dict(os.environ, CARGO_TARGET_DIR=str(AXUM_TARGET)))
        if r.returncode != 0 or not os.access(AXUM_BIN, os.X_OK):
            raise BenchError("building the axum peer failed")


def peer_command(ctx, stack, port):
    """How each peer is started, as its README says: pinned to core 0 with one
    worker under PIN=1 (for Flask, gunicorn with one sync worker: run_peer.sh
    fixes two); unpinned, their defaults (run_peer.sh for Flask)."""
    peers_dir, venv = ctx.args.peers_dir, peers_venv()
    env = {"PORT": str(port)}
    if stack == "axum":
        if ctx.pin:
            env["WORKERS"] = "1"
        return [*ctx.server_pin, str(AXUM_BIN)], env
    if stack == "express":
        return [*ctx.server_pin, "node", str(EXPRESS_DIR / "server.js")], env
    if stack == "flask":
        if ctx.pin:
            return [*ctx.server_pin, str(venv / "bin" / "gunicorn"), "-w", "1", "-k", "sync",
                    "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--chdir", str(peers_dir),
                    "flask_app:app"], env
        return ["bash", str(peers_dir / "run_peer.sh"), "flask", str(port)], env
    raise ValueError(stack)


def peer_versions(ctx, stacks):
    """The versions compared, for the report."""
    out = []
    if "axum" in stacks:
        lock = (ctx.args.peers_dir / "axum-jwt-authorizer" / "Cargo.lock").read_text()
        vers = {m[1]: m[2] for m in re.finditer(r'name = "([^"]+)"\nversion = "([^"]+)"', lock)}
        out.append(f"axum {vers.get('axum', '?')} + jwt-authorizer {vers.get('jwt-authorizer', '?')} "
                   f"(jsonwebtoken {vers.get('jsonwebtoken', '?')})")
    if "express" in stacks:
        def npm_version(name):
            try:
                return json.loads((EXPRESS_DIR / "node_modules" / name / "package.json").read_text())["version"]
            except OSError:
                return "?"
        node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        out.append(f"node {node}, express {npm_version('express')}, express-oauth2-jwt-bearer "
                   f"{npm_version('express-oauth2-jwt-bearer')}, jose {npm_version('jose')}")
    if "flask" in stacks:
        r = subprocess.run([str(peers_venv() / "bin" / "python"), "-c",
                            "import sys; from importlib.metadata import version as v; "
                            "print('python', sys.version.split()[0], 'flask', v('flask'), 'authlib', v('authlib'), "
                            "'joserfc', v('joserfc'), 'gunicorn', v('gunicorn'))"], capture_output=True, text=True)
        out.append(r.stdout.strip() or "flask: versions unknown")
    return out
