#!/usr/bin/env python3
"""Horizontal bar chart (SVG) of requests/s per (server, route).

Usage: python3 benches/harness/chart.py results.json out.svg
       (the harness's report module imports it: chart.write(data, path))

results.json (written by benches/run.py; cold.json has the same shape):
  {"title": "...", "subtitle": "...",
   "rows": [{"server": "ours", "route": "/api/public", "rps": 51234.5, ...}, ...]}

One bar per row, in the file's order, coloured by server, labelled with the
server and route on the left and the value on the right. Standard library only.
"""
import json
import math
import sys
from xml.sax.saxutils import escape

PALETTE = ["#1f6feb", "#d4a72c", "#2da44e", "#cf222e", "#8250df", "#6e7781"]


def nice_step(vmax, ticks=5):
    """A round tick step giving about `ticks` gridlines up to vmax."""
    if vmax <= 0:
        return 1
    raw = vmax / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def fmt(v):
    return f"{v:,.0f}" if v >= 100 or v == int(v) else f"{v:,.1f}"


def render(data):
    """The SVG text for `data` ({"title", "subtitle", "rows": [{"server", "route", "rps"}]})."""
    rows = [r for r in data.get("rows", []) if r.get("rps") is not None]
    if not rows:
        raise ValueError("no rows with rps")

    servers = []
    for r in rows:
        if r["server"] not in servers:
            servers.append(r["server"])
    colour = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(servers)}

    labels = [f'{r["server"]}  {r["route"]}' for r in rows]
    label_w = max(len(s) for s in labels) * 7 + 20   # ~7 px per char at 12 px
    bar_h, gap, top, value_w, plot_w = 22, 10, 70, 110, 520
    left = label_w
    width = left + plot_w + value_w
    height = top + len(rows) * (bar_h + gap) + 40
    vmax = max(float(r["rps"]) for r in rows)
    step = nice_step(vmax)
    axis_max = step * math.ceil(vmax / step) if vmax > 0 else 1
    scale = plot_w / axis_max

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">'
        f'{escape(data.get("title", "Requests per second"))}</text>',
    ]
    if data.get("subtitle"):
        out.append(f'<text x="10" y="40" fill="#57606a">{escape(data["subtitle"])}</text>')

    # gridlines and tick labels
    plot_bottom = top + len(rows) * (bar_h + gap)
    t = 0.0
    while t <= axis_max + 1e-9:
        x = left + t * scale
        out.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{plot_bottom}" '
                   f'stroke="#d0d7de" stroke-width="1"/>')
        out.append(f'<text x="{x:.1f}" y="{plot_bottom + 16}" text-anchor="middle" '
                   f'fill="#57606a">{fmt(t)}</text>')
        t += step
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{plot_bottom + 32}" text-anchor="middle" '
               f'fill="#57606a">requests/s</text>')

    for i, (r, label) in enumerate(zip(rows, labels)):
        y = top + i * (bar_h + gap)
        v = float(r["rps"])
        w = max(v * scale, 1.0)      # a visible sliver for tiny values
        out.append(f'<text x="{left - 8}" y="{y + bar_h / 2 + 4:.1f}" text-anchor="end">'
                   f'{escape(label)}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                   f'fill="{colour[r["server"]]}"><title>{escape(label)}: {fmt(v)} req/s</title></rect>')
        out.append(f'<text x="{left + w + 6:.1f}" y="{y + bar_h / 2 + 4:.1f}">{fmt(v)}</text>')

    out.append("</svg>")
    return "\n".join(out) + "\n"


def write(data, path):
    """Writes the chart of `data` to `path`."""
    with open(path, "w") as f:
        f.write(render(data))


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        data = json.load(f)
    try:
        write(data, argv[2])
    except ValueError as err:
        print(f"chart.py: {err} in {argv[1]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
