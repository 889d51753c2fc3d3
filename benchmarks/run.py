"""torchlinreg against the tools people would otherwise use, on the same data, side by side.

Run from the repository root::

    PYTHONPATH=src python benchmarks/run.py            # full size, about 5-10 minutes
    PYTHONPATH=src python benchmarks/run.py --quick    # tiny sizes, a smoke test
    python benchmarks/run.py --only exact --repeat 3 --json out.json

Three cases (the targets of issue 5): exact fits on 1M x 100 float64 with 3 targets, one
mini-batch SGD epoch on 1M x 20 (1 target: SGDRegressor fits one), and the walk-through's
5 x 3 crop data. Each peer runs in a fresh subprocess that rebuilds the same data from a fixed
seed, so its peak extra memory (resident high-water mark above the resident set before the
run) is its own. Times are medians of ``--repeat`` runs (fewer for a peer whose runs exceed
the per-peer budget); ratios are taken between peers of the same invocation only: absolute
times on a shared 2-core machine vary by +-25%.

The subprocesses run without ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE``: this machine
sets them, and they make numpy's OpenBLAS (hence scipy, scikit-learn and statsmodels) pick
slower kernels than the CPU supports. ``--keep-openblas-env`` keeps them. The BLAS libraries
and kernels each worker loaded are printed (threadpoolctl).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _peers import PEERS, Case, cases, scaled_rows, worker_main  # noqa: E402

OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
MARKER = "@@RESULT@@"


def _worker_env(threads: int, keep_openblas: bool, src: str) -> dict[str, str]:
    env = dict(os.environ)
    if not keep_openblas:
        for var in OPENBLAS_VARS:
            env.pop(var, None)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def run_worker(spec: dict, names: list[str], env: dict[str, str], timeout: float) -> dict:
    """Run one worker subprocess; ``{peer: result or {"error": ...}}`` for ``names``."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {n: {"error": f"timed out after {timeout:.0f} s"} for n in names}
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(MARKER)), None)
    if proc.returncode != 0 or line is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {n: {"error": f"exit {proc.returncode}: {tail[0][:200]}"} for n in names}
    return json.loads(line[len(MARKER) :])


# ----------------------------------------------------------------------------- numbers


def rel_err(result: dict, ref: dict | None) -> float | None:
    """max over targets of ||coef - ref|| / ||ref|| (intercepts excluded)."""
    if ref is None or result.get("coef") is None:
        return None
    worst = 0.0
    for got, want in zip(result["coef"], ref["coef"], strict=True):
        num = sum((g - w) ** 2 for g, w in zip(got, want, strict=True)) ** 0.5
        den = sum(w * w for w in want) ** 0.5
        worst = max(worst, num / den if den else num)
    return worst


def median(result: dict) -> float | None:
    return statistics.median(result["walls"]) if result.get("walls") else None


def _fmt_time(seconds: float | None, per: int = 0) -> str:
    if seconds is None:
        return "-"
    if per:
        return f"{seconds / per * 1e6:8.1f} us/ep"
    if seconds >= 1:
        return f"{seconds:8.2f} s "
    return f"{seconds * 1e3:8.1f} ms"


def print_table(case: Case, results: dict[str, dict], ref: dict | None) -> None:
    base = median(results.get(case.baseline, {}))
    per = case.epochs
    x_mb = case.n * case.d * 8 / 2**20
    print()
    print(f"## {case.title}: n={case.n:,} d={case.d} k={case.k} float64", end="")
    if case.name == "sgd":
        print(f", batch {case.batch}", end="")
    if per:
        print(f", {per} epochs per run", end="")
    print(f"  (size(X) = {x_mb:,.1f} MB)")
    head = (
        f"{'peer':<52} {'median':>14} {'runs':>4} {'cpu':>9} "
        f"{'/' + case.baseline:>11} {'extra mem':>10} {'xX':>6} {'rel.err coef':>12}"
    )
    print(head)
    print("-" * len(head))
    for name, res in results.items():
        label = PEERS[name].label
        if "error" in res:
            print(f"{label:<52} ERROR {res['error']}")
            continue
        t = median(res)
        cpu = statistics.median(res["cpus"])
        ratio = f"{t / base:10.3f}x" if base else f"{'-':>11}"
        mb = res["extra_bytes"] / 2**20
        err = rel_err(res, ref)
        err_s = f"{err:12.1e}" if err is not None else f"{'-':>12}"
        xx = res["extra_bytes"] / res["x_bytes"] if res["x_bytes"] >= 2**20 else None
        xx_s = f"{xx:6.2f}" if xx is not None else f"{'-':>6}"
        print(
            f"{label:<52} {_fmt_time(t, per):>14} {len(res['walls']):>4} "
            f"{cpu * 1e3:7.0f}ms {ratio} {mb:8.1f}MB {xx_s} {err_s}"
        )


def check_targets(all_results: dict[str, dict[str, dict]]) -> list[dict]:
    """The issue's targets, each as measured ratio vs threshold, met or missed."""
    checks = []

    def t(case, name):
        res = all_results.get(case, {}).get(name)
        return None if res is None or "error" in res else median(res)

    def add(what, value, goal, ok_if_at_most=False):
        if value is None:
            checks.append({"target": what, "value": None, "goal": goal, "met": None})
            return
        met = value <= goal if ok_if_at_most else value >= goal
        checks.append({"target": what, "value": value, "goal": goal, "met": met})

    def ratio(a, b):
        return None if a is None or b is None else a / b

    ex = all_results.get("exact", {})
    sk = t("exact", "sk_linreg")
    lstsq = [v for v in (t("exact", "torch_lstsq"), t("exact", "torch_lstsq_gelsd")) if v]
    floors = [v for v in (t("exact", "floor_torch"), t("exact", "floor_numpy")) if v]
    for who, qr, gram in (
        ("LinearRegression()", "tlr_qr", "tlr_gram"),
        ("fit_exact", "exact_qr", "exact_gram"),
    ):
        add(f"qr [{who}]: sklearn LinearRegression / qr >= 4", ratio(sk, t("exact", qr)), 4.0)
        add(
            f"qr [{who}]: fastest torch.linalg.lstsq / qr > 1",
            ratio(min(lstsq) if lstsq else None, t("exact", qr)),
            1.0,
        )
        res = ex.get(qr)
        mem = None if res is None or "error" in res else res["extra_bytes"] / res["x_bytes"]
        add(f"qr [{who}]: extra memory / size(X) < 0.25", mem, 0.25, ok_if_at_most=True)
        add(f"gram [{who}]: sklearn LinearRegression / gram >= 8", ratio(sk, t("exact", gram)), 8)
        add(
            f"gram [{who}]: gram / best bare X.T @ X <= 1.3",
            ratio(t("exact", gram), min(floors) if floors else None),
            1.3,
            ok_if_at_most=True,
        )
    for who, name in (("LinearRegression(sgd)", "tlr_sgd"), ("fit_iterative", "engine_sgd")):
        add(
            f"sgd epoch [{who}]: epoch / SGDRegressor epoch <= 1",
            ratio(t("sgd", name), t("sgd", "sk_sgd")),
            1.0,
            ok_if_at_most=True,
        )
        add(
            f"sgd epoch [{who}]: DataLoader loop / epoch >= 5",
            ratio(t("sgd", "dataloader"), t("sgd", name)),
            5.0,
        )
    for who, name in (("fit_iterative(gd)", "wt_engine"), ("LinearRegression(gd)", "wt_estimator")):
        add(
            f"walk-through [{who}]: per epoch / plain loop <= 1.2",
            ratio(t("walk", name), t("walk", "wt_plain")),
            1.2,
            ok_if_at_most=True,
        )
    return checks


def print_targets(checks: list[dict], quick: bool) -> None:
    print("\n## Targets (ratios measured in this run)")
    if quick:
        print("  (--quick sizes: the targets are stated for the full sizes; shown as a smoke test)")
    for c in checks:
        if c["met"] is None:
            print(f"  n/a     {c['target']} (a peer did not run)")
            continue
        mark = "MET   " if c["met"] else "MISSED"
        print(f"  {mark}  {c['target']}: {c['value']:.3g}")


def print_environment(info: dict) -> None:
    print("# torchlinreg benchmark")
    keys = ("date", "machine", "cpu", "cores", "load_before", "threads", "versions")
    for key in (*keys, "torchlinreg_src"):
        print(f"{key}: {info[key]}")
    print(info["openblas_note"])


def blas_summary(all_results: dict[str, dict[str, dict]]) -> list[str]:
    seen = set()
    for results in all_results.values():
        for res in results.values():
            for lib in res.get("blas", []):
                desc = ", ".join(
                    f"{k}={lib[k]}"
                    for k in ("internal_api", "version", "architecture", "num_threads")
                    if k in lib
                )
                seen.add(f"{desc} ({Path(lib.get('prefix') or '?').name})")
    return sorted(seen)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _versions() -> str:
    names = ("torch", "numpy", "scipy", "scikit-learn", "statsmodels", "threadpoolctl")
    out = []
    for name in names:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name} -")
    return ", ".join(out)


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test in seconds")
    ap.add_argument(
        "--only",
        default="",
        help="comma-separated case names (exact, sgd, walk) or peer names: " + ", ".join(PEERS),
    )
    ap.add_argument("--repeat", type=int, default=None, help="runs per peer (default 5, quick 3)")
    ap.add_argument("--json", metavar="OUT", help="write every measurement to this JSON file")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads per peer")
    ap.add_argument("--budget", type=float, default=None, help="seconds of runs per peer")
    ap.add_argument(
        "--src", default=None, help="torchlinreg source folder to time (default: ./src)"
    )
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the rows (not walk)")
    ap.add_argument("--sgd-batch", type=int, default=256, help="rows per mini-batch (sgd case)")
    ap.add_argument(
        "--isolate",
        choices=("peer", "case"),
        default=None,
        help="one subprocess per peer (default; memory figures are each peer's own) or per "
        "case (default with --quick: faster, memory figures only indicative)",
    )
    ap.add_argument(
        "--keep-openblas-env",
        action="store_true",
        help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE in the peers' environment",
    )
    return ap.parse_args(argv)


def selected(only: str, case_map: dict[str, Case]) -> dict[str, list[str]]:
    wanted = {w.strip() for w in only.split(",") if w.strip()}
    unknown = wanted - set(PEERS) - set(case_map)
    if unknown:
        raise SystemExit(f"--only: unknown names {sorted(unknown)}; choose from {list(PEERS)}")
    plan: dict[str, list[str]] = {}
    for name, peer in PEERS.items():
        if not wanted or name in wanted or peer.case in wanted:
            plan.setdefault(peer.case, []).append(name)
    return plan


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    case_map = {k: scaled_rows(c, args.scale) for k, c in cases(args.quick, args.sgd_batch).items()}
    plan = selected(args.only, case_map)
    repeat = args.repeat or (3 if args.quick else 5)
    budget = args.budget or (5.0 if args.quick else 20.0)
    timeout = 120.0 if args.quick else 400.0
    isolate = args.isolate or ("case" if args.quick else "peer")
    src = str(Path(args.src).resolve()) if args.src else str(HERE.parent / "src")
    env = _worker_env(args.threads, args.keep_openblas_env, src)
    removed = {v: os.environ[v] for v in OPENBLAS_VARS if v in os.environ}
    if args.keep_openblas_env:
        note = f"OpenBLAS variables kept in the peers' environment: {removed or 'none set'}"
    else:
        note = (
            f"OpenBLAS variables unset in every peer subprocess (this shell had {removed});"
            " numpy/scipy/scikit-learn/statsmodels then pick the CPU's own kernels"
            if removed
            else "no OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE in the environment"
        )
    info = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.node()} {platform.machine()}",
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "load_before": "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg()),
        "threads": f"{args.threads} per peer (torch.set_num_threads, OMP/MKL/OPENBLAS threads)",
        "versions": _versions(),
        "torchlinreg_src": src,
        "openblas_note": note,
        "repeat": repeat,
        "quick": args.quick,
    }
    print_environment(info)
    sys.stdout.flush()
    all_results: dict[str, dict[str, dict]] = {}
    refs: dict[str, dict | None] = {}
    for case_name, peers in plan.items():
        case = case_map[case_name]
        spec = {"case": asdict(case), "repeat": repeat, "budget_s": budget, "threads": args.threads}
        groups = (
            [["reference", *peers]] if isolate == "case" else [["reference"]] + [[p] for p in peers]
        )
        results: dict[str, dict] = {}
        for group in groups:
            results.update(run_worker({**spec, "peers": group}, group, env, timeout))
        ref = results.pop("reference")
        refs[case_name] = None if "error" in ref else ref
        all_results[case_name] = results
        print_table(case, results, refs[case_name])
        sys.stdout.flush()
    checks = check_targets(all_results)
    print_targets(checks, args.quick)
    info["load_after"] = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    info["blas"] = blas_summary(all_results)
    print(f"\nload after: {info['load_after']}")
    print("BLAS seen by the peers (threadpoolctl, and torch's own MKL):")
    for line in info["blas"]:
        print(f"  {line}")
    if args.json:
        out = {
            "info": info,
            "cases": {k: asdict(case_map[k]) for k in all_results},
            "references": refs,
            "results": all_results,
            "targets": checks,
        }
        for results in all_results.values():
            for name, res in results.items():
                if "error" not in res:
                    res["median_s"] = median(res)
                    res["rel_err"] = rel_err(res, refs.get(PEERS[name].case))
        Path(args.json).write_text(json.dumps(out, indent=1))
        print(f"wrote {args.json}")
    failed = [n for r in all_results.values() for n, v in r.items() if "error" in v]
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
    else:
        sys.exit(main(sys.argv[1:]))
