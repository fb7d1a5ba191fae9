#!/usr/bin/env python3
"""Lists the direct dependencies that have newer releases than Cargo.lock holds.

Run by `.ci/run` on every build, so that a stale lockfile shows in each log: it
never fails the run (a machine without crates.io says so in one line). Two
kinds of news, from `cargo update --dry-run --verbose`, which reads the index
but writes nothing:

- `compatible`: Cargo.toml already allows it; `cargo update` takes it.
- `held back`: a newer release that `cargo update` does not pick: a new major
  (or 0.x minor) outside Cargo.toml's requirement, or one whose own
  dependencies cannot be met; `cargo update --verbose` says which.

Security fixes reach crates' changelogs before any advisory database: when
this lists a crate, read its changelog from the locked version on (docs/development.md,
"Keeping dependencies current").
"""

import json
import re
import subprocess
import sys

# `Updating actix-web v4.12.1 -> v4.18.1 (available: v4.20.0)` and
# `Unchanged base64 v0.22.1 (available: v0.23.1)`.
UPDATING = re.compile(r"^\s*Updating (\S+) v(\S+) -> v(\S+)(?: \(available: v(\S+)\))?$")
UNCHANGED = re.compile(r"^\s*Unchanged (\S+) v(\S+) \(available: v(\S+)\)$")


def run(args, timeout=180):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def direct_dependencies():
    """The names this package depends on itself, of every kind."""
    metadata = run(["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"])
    if metadata.returncode != 0:
        raise RuntimeError(metadata.stderr.strip().splitlines()[-1])
    (package,) = [p for p in json.loads(metadata.stdout)["packages"] if p["source"] is None]
    return {d["name"] for d in package["dependencies"] if d.get("path") is None}


def main():
    try:
        direct = direct_dependencies()
        update = run(["cargo", "update", "--dry-run", "--verbose"])
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as err:
        print(f"outdated dependencies: not checked ({err})")
        return 0
    if update.returncode != 0:
        last = (update.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"outdated dependencies: not checked (cargo update --dry-run: {last})")
        return 0

    compatible, held_back = [], []
    for line in update.stderr.splitlines():
        if m := UPDATING.match(line):
            name, locked, newer, available = m.groups()
            if name in direct:
                compatible.append(f"{name} {locked} -> {newer}")
                if available:
                    held_back.append(f"{name} {newer} -> {available} (after `cargo update`)")
        elif m := UNCHANGED.match(line):
            name, locked, available = m.groups()
            if name in direct:
                held_back.append(f"{name} {locked} -> {available}")

    if not compatible and not held_back:
        print("outdated dependencies: none; every direct dependency is at its newest release")
        return 0
    if compatible:
        print(f"outdated dependencies: {len(compatible)} with a newer compatible release "
              "(`cargo update`, then read their changelogs):")
        for entry in compatible:
            print(f"  {entry}")
    if held_back:
        print(f"outdated dependencies: {len(held_back)} with a newer release `cargo update` does not pick:")
        for entry in held_back:
            print(f"  {entry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
