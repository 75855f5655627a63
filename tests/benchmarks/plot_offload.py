#!/usr/bin/env python3
"""Plot bench_offload CSV output: seconds per step against GB offloaded, one
line per source, with the additive "sum model" (resident time + bytes / link
bandwidth — what a non-overlapping offloader such as DisTorch2 pays) dashed
beside each real or simulated link, like the seed's tables.

    python3 tests/benchmarks/plot_offload.py OUT.png RESULTS.csv [TITLE]
"""
import csv
import re
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path):
    comments, rows = [], []
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                comments.append(line[1:].strip())
    with open(path) as f:
        for r in csv.DictReader(line for line in f if not line.startswith("#")):
            rows.append(r)
    return comments, rows


def bandwidths(comments):
    text = " ".join(comments)
    bw = {}
    m = re.search(r"host link ([0-9.]+) GB/s", text)
    if m:
        bw["host"] = float(m.group(1))
    m = re.search(r"(cuda:\d+) link ([0-9.]+) GB/s", text)
    if m:
        bw["donor-" + m.group(1)] = float(m.group(2))
    return bw


def main():
    out, path = sys.argv[1], sys.argv[2]
    title = sys.argv[3] if len(sys.argv) > 3 else path
    comments, rows = read(path)
    bw = bandwidths(comments)
    base = [float(r["s_per_step"]) for r in rows if r["source"] == "none"]
    resident = base[0] if base else None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    sources = []
    for r in rows:
        if r["source"] != "none" and r["source"] not in sources:
            sources.append(r["source"])
    for i, s in enumerate(sources):
        pts = sorted((float(r["gb_offloaded"]), float(r["s_per_step"])) for r in rows if r["source"] == s)
        label = s + (" (SIMULATED)" if any(r["simulated"] for r in rows if r["source"] == s) else "")
        if s.startswith("auto"):  # one point: the planner's own placement within a budget
            peak = [float(r["peak_vram_gb"]) for r in rows if r["source"] == s]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "*", ms=12, color="k",
                    label=f"{s}: planner's placement, peak VRAM {max(peak):.1f} GB")
            continue
        line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"{label}: ours")
        sim = re.search(r"sim-([0-9.]+)", s)
        link = float(sim.group(1)) if sim else bw.get(s)
        if link and resident:
            xs = [p[0] for p in pts]
            ax.plot(xs, [resident + x / link for x in xs], "--", color=line.get_color(), alpha=0.6,
                    label=f"{label}: sum model ({link:.1f} GB/s)")
    if resident:
        ax.axhline(resident, color="k", lw=0.8, label=f"resident {resident:.3f} s")
    ax.set_xlabel("GB of weights streamed per step")
    ax.set_ylabel("seconds per step")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
