"""Render a ``benchmarks/run.py --json`` file as Markdown tables (for RESULTS.md / the README).

python benchmarks/_report.py results.json > tables.md
python benchmarks/_report.py --summary results.json   # the regimes' summary tables only
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from _regimes import render_regimes


def _time(seconds: float, epochs: int) -> str:
    if epochs:
        return f"{seconds / epochs * 1e6:.0f} µs/epoch"
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1e3:.0f} ms"


def _isolation(isolate: str) -> str:
    return {
        "peer": "each peer in its own process",
        "case": "the peers of a case sharing one process (memory figures only indicative)",
        "run": "every case in one process (memory figures only indicative)",
    }[isolate]


def _merged_runs(data: dict) -> list[str]:
    """With ``run.py --merge``, the invocations the cases come from."""
    runs = data.get("runs", [])
    if len(runs) < 2:
        return []
    said = "; ".join(
        f"{r['date']} `{' '.join(r.get('argv', []))}` (load {r['load_before']} before, "
        f"{r.get('load_after', '?')} after)"
        for r in runs
    )
    return [f"Cases merged from {len(runs)} invocations: {said}.", ""]


def render(data: dict) -> str:
    info = data["info"]
    out = [
        f"Measured {info['date']}, {info['cpu']}, {info['cores']} cores, {info['threads']}; "
        f"load average before {info['load_before']}, after {info.get('load_after', '?')}; "
        f"{info['versions']}; median of up to {info['repeat']} runs per peer, "
        + _isolation(info.get("isolate", "peer"))
        + ".",
        "",
        *_merged_runs(data),
        info["openblas_note"] + ".",
        "BLAS kernels seen: " + "; ".join(info.get("blas", [])) + ".",
        "",
    ]
    for name, case in data["cases"].items():
        if case.get("group"):
            continue  # the regimes: render_regimes
        results = data["results"][name]
        base = results.get(case["baseline"], {})
        base_t = base.get("median_s")
        x_mb = case["n"] * case["d"] * 8 / 2**20
        title = f"**{case['title']}**: {case['n']:,} x {case['d']}, {case['k']} target(s), float64"
        if name == "sgd":
            title += f", batch {case['batch']}"
        if case["epochs"]:
            title += f", {case['epochs']} epochs per run"
        out += [title, ""]
        mem_head = " | extra memory (x size(X))" if x_mb >= 1 else ""
        base_label = base.get("label", case["baseline"])
        out.append(f"| peer | time | time ÷ {base_label}{mem_head} | rel. error |")
        out.append("|---|---:|---:|" + ("---:|" if mem_head else "") + "---:|")
        for res in results.values():
            if "error" in res or "skipped" in res:
                why = res.get("skipped") or f"error: {res['error']}"
                out.append(f"| {res.get('label', '?')} | {why} |")
                continue
            t = res["median_s"]
            ratio = f"{t / base_t:.3f}" if base_t else "-"
            mem = ""
            if mem_head:
                mb = res["extra_bytes"] / 2**20
                mem = f" | {mb:,.0f} MB ({res['extra_bytes'] / res['x_bytes']:.2f})"
            err = f"{res['rel_err']:.1e}" if res.get("rel_err") is not None else "-"
            runs = len(res["walls"])
            cpu = statistics.median(res["cpus"])
            note = f" ({runs} run{'s' if runs > 1 else ''}, cpu {_time(cpu, case['epochs'])})"
            out.append(
                f"| {res['label']} | {_time(t, case['epochs'])}{note} | {ratio}{mem} | {err} |"
            )
        out.append("")
    if any(c.get("group") for c in data["cases"].values()):
        out += render_regimes(data, details=True)
    out.append("**Targets** (ratios from this run):")
    out.append("")
    for c in data["targets"]:
        if c["met"] is None:
            out.append(f"- n/a: {c['target']}")
        else:
            mark = "met" if c["met"] else "**missed**"
            out.append(f"- {mark}: {c['target']} — measured {c['value']:.3g}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    if sys.argv[1] == "--summary":
        found = json.loads(Path(sys.argv[2]).read_text())
        sys.stdout.write("\n".join(render_regimes(found, details=False)) + "\n")
    else:
        sys.stdout.write(render(json.loads(Path(sys.argv[1]).read_text())))
