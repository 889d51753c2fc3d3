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
import json
import os
import platform
import statistics
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _machine import (  # noqa: E402
    blas_summary,
    cpu_name,
    git_head,
    loadavg,
    now,
    print_environment,
    versions,
)
from _peers import PEERS, Case, cases, scaled_rows, worker_main  # noqa: E402
from _regimes import check_regimes, floor_time, plan, regime_cases, skip_reason  # noqa: E402
from _targets import check_targets, median, print_targets  # noqa: E402

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
    floor = floor_time(results) if case.group else None
    per = case.epochs
    x_mb = case.n * case.d * (4 if case.dtype == "float32" else 8) / 2**20
    print()
    print(f"## {case.title}: n={case.n:,} d={case.d} k={case.k} {case.dtype}", end="")
    if case.name == "sgd":
        print(f", batch {case.batch}", end="")
    if per:
        print(f", {per} epochs per run", end="")
    print(f"  (size(X) = {x_mb:,.1f} MB)")
    head = (
        f"{'peer':<52} {'median':>14} {'runs':>4} {'cpu':>9} "
        f"{'/' + case.baseline:>11} {'/X.T@X' if floor else '':>8} "
        f"{'extra mem':>10} {'xX':>6} {'rel.err coef':>12}"
    )
    print(head)
    print("-" * len(head))
    for name, res in results.items():
        label = PEERS[name].label
        if "error" in res or "skipped" in res:
            print(f"{label:<52} {res.get('skipped') or 'ERROR ' + res['error']}")
            continue
        t = median(res)
        cpu = statistics.median(res["cpus"])
        ratio = f"{t / base:10.3f}x" if base else f"{'-':>11}"
        to_floor = f"{t / floor:7.2f}x" if floor else f"{'':>8}"
        mb = res["extra_bytes"] / 2**20
        err = rel_err(res, ref)
        err_s = f"{err:12.1e}" if err is not None else f"{'-':>12}"
        xx = res["extra_bytes"] / res["x_bytes"] if res["x_bytes"] >= 2**20 else None
        xx_s = f"{xx:6.2f}" if xx is not None else f"{'-':>6}"
        print(
            f"{label:<52} {_fmt_time(t, per):>14} {len(res['walls']):>4} "
            f"{cpu * 1e3:7.0f}ms {ratio} {to_floor} {mb:8.1f}MB {xx_s} {err_s}"
        )


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test in seconds")
    ap.add_argument(
        "--only",
        default="",
        help="comma-separated cases (exact, sgd, walk, or a regime case such as wide_2000), "
        "regimes (tall, wide, targets, float32, or regimes for all four; not run by default) "
        "or peers: " + ", ".join(PEERS),
    )
    ap.add_argument(
        "--repeat", type=int, default=None, help="runs per peer (default 5; regimes, quick 3)"
    )
    ap.add_argument("--json", metavar="OUT", help="write every measurement to this JSON file")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads per peer")
    ap.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds of runs per peer, after which it stops early (default 20; regimes 60)",
    )
    ap.add_argument(
        "--src", default=None, help="torchlinreg source folder to time (default: ./src)"
    )
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the rows (not walk)")
    ap.add_argument("--sgd-batch", type=int, default=256, help="rows per mini-batch (sgd case)")
    ap.add_argument(
        "--isolate",
        choices=("peer", "case", "run"),
        default=None,
        help="one subprocess per peer (default; memory figures are each peer's own), per "
        "case, or one for the whole run (default with --quick: fastest; memory figures and "
        "per-case load averages only indicative)",
    )
    ap.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds per peer process (default 400; regimes 1200, quick 120)",
    )
    ap.add_argument(
        "--mem-limit-gb",
        type=float,
        default=12.0,
        help="regimes: skip a peer whose estimated peak exceeds this (default 12)",
    )
    ap.add_argument(
        "--merge",
        action="store_true",
        help="keep the cases already in the --json file; replace only those run now",
    )
    ap.add_argument(
        "--skip-done",
        action="store_true",
        help="with --merge: do not rerun the cases already in the --json file (resume)",
    )
    ap.add_argument(
        "--keep-openblas-env",
        action="store_true",
        help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE in the peers' environment",
    )
    return ap.parse_args(argv)


def _settings(case: Case, args: argparse.Namespace) -> dict:
    regime = bool(case.group)
    return {
        "repeat": args.repeat or (3 if args.quick or regime else 5),
        "budget_s": args.budget or (5.0 if args.quick else 60.0 if regime else 20.0),
        "timeout": args.timeout or (120.0 if args.quick else 1200.0 if regime else 400.0),
        "isolate": args.isolate or ("run" if args.quick else "peer"),
    }


def _spec(case: Case, peers: list[str], args: argparse.Namespace) -> tuple[dict, dict]:
    """The worker spec of ``case`` (reference first) and the peers skipped for memory."""
    skipped = {}
    for name in peers:
        reason = skip_reason(name, case, args.mem_limit_gb) if case.group else None
        if reason:
            skipped[name] = {"skipped": reason, "label": PEERS[name].label}
    s = _settings(case, args)
    spec = {
        "case": asdict(case),
        "repeat": s["repeat"],
        "budget_s": s["budget_s"],
        "threads": args.threads,
        "peers": ["reference", *(p for p in peers if p not in skipped)],
    }
    return spec, skipped


def run_together(todo: dict, case_map: dict, args: argparse.Namespace, env: dict) -> dict:
    """``--isolate run``: every case in one worker process (a smoke test's speed)."""
    jobs = [_spec(case_map[c], peers, args)[0] for c, peers in todo.items()]
    timeout = sum(_settings(case_map[c], args)["timeout"] for c in todo)
    raw = run_worker({"jobs": jobs, "threads": args.threads}, ["all"], env, timeout)
    if "all" in raw:  # the worker failed: every peer of every case carries its error
        return {job["case"]["name"]: {n: raw["all"] for n in job["peers"]} for job in jobs}
    return raw


def run_case(
    case: Case, peers: list[str], args: argparse.Namespace, env: dict, measured: dict | None
) -> tuple:
    """Time ``peers`` on ``case`` (or take them from ``measured``, timed together):
    ``(results, reference, case_info)``."""
    s = _settings(case, args)
    spec, skipped = _spec(case, peers, args)
    runnable = spec.pop("peers")
    info = {"date": now(), "load_before": loadavg(), "repeat": s["repeat"]}
    results: dict[str, dict] = dict(skipped)
    if measured is not None:
        results.update(measured)
    elif s["isolate"] == "case":
        results.update(run_worker({**spec, "peers": runnable}, runnable, env, s["timeout"]))
    else:
        for name in runnable:
            results.update(run_worker({**spec, "peers": [name]}, [name], env, s["timeout"]))
    info.update(
        load_after=loadavg(), budget_s=s["budget_s"], threads=args.threads, isolate=s["isolate"]
    )
    ref = results.pop("reference")
    ref = None if "error" in ref else ref
    return {p: results[p] for p in peers}, ref, info


def _empty_output() -> dict:
    return {"runs": [], "cases": {}, "case_info": {}, "references": {}, "results": {}}


def _load_output(args: argparse.Namespace) -> dict:
    """What ``--merge`` starts from: the cases already in the ``--json`` file."""
    if not (args.merge and args.json and Path(args.json).exists()):
        return _empty_output()
    old = json.loads(Path(args.json).read_text())
    out = _empty_output()
    out.update({k: old[k] for k in out if k in old})
    if not out["runs"] and "info" in old:  # a file written before --merge existed
        out["runs"] = [old["info"]]
    for name in out["cases"]:
        out["case_info"].setdefault(name, {"date": old.get("info", {}).get("date")})
    return out


def _slim(res: dict, most: int = 1000) -> None:
    """Drop coefficients beyond ``most`` numbers (1000 targets x 100 would make the JSON
    tens of MB); the relative error computed from them stays."""
    coef = res.get("coef")
    if coef and len(coef) * len(coef[0]) > most:
        res["coef"] = res["intercept"] = None
        res["coef_omitted"] = f"more than {most} coefficients: only rel_err is kept"


def _finish(out: dict, info: dict, case_map: dict[str, Case]) -> None:
    """Medians, errors and targets of everything in ``out`` (merged cases included)."""
    for name, results in out["results"].items():
        ref = out["references"].get(name)
        for res in results.values():
            if "walls" in res:
                res["median_s"] = median(res)
                if res.get("coef") is not None or "rel_err" not in res:
                    res["rel_err"] = rel_err(res, ref)
                _slim(res)
        if ref:
            _slim(ref)
    classic = any(name in out["results"] for name in ("exact", "sgd", "walk"))
    out["targets"] = (check_targets(out["results"]) if classic else []) + check_regimes(
        out["results"], out["cases"]
    )
    info["blas"] = blas_summary(out["results"])
    out["info"] = info


def _write(out: dict, path: str) -> None:
    tmp = Path(path + ".tmp")
    tmp.write_text(json.dumps(out, indent=1))
    tmp.replace(path)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    args.merge = args.merge or args.skip_done
    if args.merge and not args.json:
        raise SystemExit("--merge and --skip-done need --json FILE")
    every = {**cases(args.quick, args.sgd_batch), **regime_cases(args.quick)}
    case_map = {k: scaled_rows(c, args.scale) for k, c in every.items()}
    todo = plan(args.only, case_map)
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
        "date": now(),
        "machine": f"{platform.node()} {platform.machine()}",
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "load_before": loadavg(),
        "threads": f"{args.threads} per peer (torch.set_num_threads, OMP/MKL/OPENBLAS threads)",
        "versions": versions(),
        "torchlinreg_src": f"{src} (git {git_head(src)})",
        "openblas_note": note,
        "repeat": args.repeat or (3 if args.quick else 5),
        "quick": args.quick,
        "isolate": args.isolate or ("run" if args.quick else "peer"),
        "argv": argv,
    }
    print_environment(info)
    out = _load_output(args)
    if args.skip_done:
        done = [c for c in todo if c in out["results"]]
        todo = {c: p for c, p in todo.items() if c not in done}
        if done:
            print(f"already in {args.json}, not rerun: {', '.join(done)}")
    sys.stdout.flush()
    failed = []
    together = {}
    if todo and (args.isolate or ("run" if args.quick else "peer")) == "run":
        together = run_together(todo, case_map, args, env)
    for case_name, peers in todo.items():
        case = case_map[case_name]
        results, ref, case_info = run_case(case, peers, args, env, together.get(case_name))
        print_table(case, results, ref)
        print(f"  load average before {case_info['load_before']}, after {case_info['load_after']}")
        sys.stdout.flush()
        failed += [n for n, v in results.items() if "error" in v]
        out["cases"][case_name] = asdict(case)
        out["case_info"][case_name] = case_info
        out["references"][case_name] = ref
        out["results"][case_name] = results
        if args.json:  # after every case: an interrupted run keeps what it measured
            _finish(out, dict(info), case_map)
            _write(out, args.json)
    info["load_after"] = loadavg()
    out["runs"] = [*out["runs"], info]
    _finish(out, info, case_map)
    print_targets(out["targets"], args.quick)
    print(f"\nload after: {info['load_after']}")
    print("BLAS seen by the peers (threadpoolctl, and torch's own MKL):")
    for line in info["blas"]:
        print(f"  {line}")
    if args.json:
        _write(out, args.json)
        print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
    else:
        sys.exit(main(sys.argv[1:]))
