#!/usr/bin/env python3
"""Checks that no module of src/ imports one that imports it back.

A module's dependencies are the `crate::...` paths its code names (use
lines included, re-exports excluded), and, for a parent module, the child
modules its own code uses. A parent that only declares and re-exports its
children does not depend on them. Exits 1 and names the circle if there is
one; prints the module count otherwise.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
DECLARATION = re.compile(r"\s*(pub(\([a-z]+\))? )?(use|mod) ")


def modules():
    """Every module of the library and binary, by path ('' for the root)."""
    found = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            if parts and parts[-1] == "tests":
                continue
            found["::".join(parts)] = path
    return found


def resolve(path, known):
    """The longest known module that `path` starts with."""
    segments = path.split("::")
    while segments:
        candidate = "::".join(segments)
        if candidate in known:
            return candidate
        segments.pop()
    return ""


def dependencies(known):
    edges = {}
    for module, path in known.items():
        with open(path, encoding="utf-8") as file:
            text = file.read()
        # Unit tests may reach anywhere; they are not part of the graph, and
        # neither are comments (doc links).
        text = re.sub(r"#\[cfg\(test\)\]\s*(pub\(crate\) )?mod tests \{.*", "", text, flags=re.S)
        text = re.sub(r"^\s*//.*$", "", text, flags=re.M)
        lines = text.split("\n")
        code = "\n".join(line for line in lines if not (DECLARATION.match(line) and line.strip().startswith("pub")))
        deps = {resolve(u.rstrip(":"), known) for u in re.findall(r"crate::([A-Za-z_:]+)", code)}
        deps.discard(module)
        body = "\n".join(line for line in lines if not DECLARATION.match(line))
        depth = module.count("::") + 1 if module else 0
        for child in known:
            is_child = child.startswith(module + "::" if module else "") and child.count("::") == depth
            if child and is_child and re.search(r"\b" + child.split("::")[-1] + r"::", body):
                deps.add(child)
        edges[module] = deps
    return edges


def circle(edges):
    """A list of modules forming a circle, or None."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, stack + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def main():
    known = modules()
    found = circle(dependencies(known))
    if found:
        print("import circle: " + " -> ".join(m or "crate" for m in found))
        return 1
    print(f"module graph: {len(known)} modules, no import circles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
