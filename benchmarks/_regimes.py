"""The regimes of issue 11: tall, wide, many targets and float32 input, each a family of cases.

``benchmarks/run.py --only regimes`` (or ``--only tall,wide,targets,float32``, or one case
such as ``--only wide_2000``) times the same peers on every case of a regime, each peer in
its own process, and reports time, the ratios to scikit-learn and to the best bare
``X.T @ X``, peak extra memory and accuracy. This module holds what is particular to the
regimes: the cases, which peers run (and which are skipped for memory), the selection of
``--only``, the targets of issue 11 items 2 and 3, and the Markdown tables.

Not a test and not part of the library: run ``benchmarks/run.py``.
"""

from __future__ import annotations

import statistics

from _peers import PEERS, Case

GROUPS = ("tall", "wide", "targets", "float32")
K = 3  # targets of the tall, wide and float32 cases (as the headline case)

# Peers of every regime case, in table order. The floors fit nothing: they bound what a
# fit that reads X once (gram) can cost.
REGIME_PEERS = (
    "tlr_qr",
    "tlr_gram",
    "sk_linreg",
    "sm_ols",
    "np_lstsq",
    "torch_lstsq",
    "torch_qr",
    "floor_torch",
    "floor_numpy",
)

# Peak extra memory of the peers that copy the data, as a multiple of the bytes of
# [1 | X | Y] in the input's dtype (statsmodels: of [1 | X] in float64), measured on
# 1M x 100 x 3 (RESULTS.md, 2026-11-26): they centre or augment a copy, and LAPACK
# factors a copy of that.
MEMORY_MULTIPLE = {"sk_linreg": 2.1, "np_lstsq": 2.1, "torch_lstsq": 2.1, "torch_qr": 2.1}
SM_MULTIPLE = 4.1
MEMORY_LIMIT_GB = 12.0  # the project machine has 24 GB, shared


def _short(n: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if n >= size and n % (size // 10) == 0:
            return f"{n / size:g}{unit}"
    return str(n)


def _case(group: str, n: int, d: int, k: int, dtype: str = "float64") -> Case:
    name = {
        "tall": f"tall_{_short(n)}",
        "wide": f"wide_{d}",
        "targets": f"targets_{k}",
        "float32": f"float32_{_short(n)}",
    }[group]
    title = f"{group}: {n:,} x {d}, {k} target{'s' if k > 1 else ''}, {dtype}"
    return Case(name, title, n, d, k, "sk_linreg", dtype=dtype, group=group)


def regime_cases(quick: bool) -> dict[str, Case]:
    """Every regime case, full size (issue 11, item 6) or, with ``quick``, tiny."""
    if quick:
        tall = [_case("tall", n, 5, K) for n in (2_000, 8_000)]
        wide = [_case("wide", 4_000, d, K) for d in (3, 60)]
        targets = [_case("targets", 3_000, 10, k) for k in (1, 40)]
        f32 = [_case("float32", 5_000, 10, K, "float32")]
    else:
        tall = [_case("tall", n, 50, K) for n in (10_000, 100_000, 1_000_000, 4_000_000)]
        wide = [_case("wide", 200_000, d, K) for d in (10, 100, 500, 2000)]
        targets = [_case("targets", 100_000, 100, k) for k in (1, 10, 100, 1000)]
        f32 = [_case("float32", 1_000_000, 100, K, "float32")]
    return {c.name: c for c in (*tall, *wide, *targets, *f32)}


def skip_reason(peer: str, case: Case, limit_gb: float = MEMORY_LIMIT_GB) -> str | None:
    """Why ``peer`` does not run on ``case`` (its estimated peak over ``limit_gb``), or None."""
    item = 4 if case.dtype == "float32" else 8
    data = case.n * (case.d + case.k) * item
    if peer == "sm_ols":
        extra = SM_MULTIPLE * case.n * (case.d + 1) * 8
    elif peer in MEMORY_MULTIPLE:
        extra = MEMORY_MULTIPLE[peer] * case.n * (case.d + 1 + case.k) * item
    else:
        return None
    need = (data + extra) / 1e9
    if need <= limit_gb:
        return None
    return f"skipped: would need ~{need:.0f} GB (limit {limit_gb:g} GB)"


def plan(only: str, case_map: dict[str, Case]) -> dict[str, list[str]]:
    """``{case: peers}`` that ``--only`` asks for.

    Names are cases (``exact``, ``wide_2000``), regimes (``tall`` ... or ``regimes`` for all
    four) or peers. A case runs when it or its regime is named; a classic case (exact, sgd,
    walk) also runs when nothing is named, or when one of its peers is named and no regime
    is. A case runs the named peers that belong to it, or all of its peers if none is named.
    """
    wanted = {w.strip() for w in only.split(",") if w.strip()}
    names = set(PEERS) | set(case_map) | set(GROUPS) | {"regimes"}
    unknown = wanted - names
    if unknown:
        raise SystemExit(
            f"--only: unknown names {sorted(unknown)}; choose cases {list(case_map)}, "
            f"regimes {[*GROUPS, 'regimes']} or peers {list(PEERS)}"
        )
    named_peers = wanted & set(PEERS)
    regime_named = any(
        c.group and (c.name in wanted or c.group in wanted) for c in case_map.values()
    ) or ("regimes" in wanted)
    out: dict[str, list[str]] = {}
    for name, case in case_map.items():
        own = (
            list(REGIME_PEERS)
            if case.group
            else [p for p, peer in PEERS.items() if peer.case == name]
        )
        if case.group:
            run = name in wanted or case.group in wanted or "regimes" in wanted
        else:
            run = (
                not wanted
                or name in wanted
                or (not regime_named and any(p in named_peers for p in own))
            )
        if run:
            chosen = [p for p in own if p in named_peers]
            out[name] = chosen or own
    return out


# ----------------------------------------------------------------------------- numbers


def _t(results: dict, name: str) -> float | None:
    res = results.get(name)
    if not res or "walls" not in res:
        return None
    return statistics.median(res["walls"])


def floor_time(results: dict) -> float | None:
    """The faster bare ``X.T @ X`` (torch or numpy) of one case's results."""
    times = [t for t in (_t(results, "floor_torch"), _t(results, "floor_numpy")) if t]
    return min(times) if times else None


def check_regimes(all_results: dict, case_map: dict) -> list[dict]:
    """Issue 11, item 2: many targets and wide data no slower than scikit-learn, and, for
    many targets, extra memory within 0.25 size(X) + the k x d results."""
    checks = []
    for name, results in all_results.items():
        case = case_map.get(name)
        if case is None or case.get("group") not in ("targets", "wide"):
            continue
        sk = _t(results, "sk_linreg")
        for peer, who in (("tlr_qr", "LinearRegression()"), ("tlr_gram", "gram")):
            t = _t(results, peer)
            ok = None if t is None or sk is None else t / sk
            checks.append(
                {
                    "target": f"{name} [{who}]: time / sklearn LinearRegression <= 1",
                    "value": ok,
                    "goal": 1.0,
                    "met": None if ok is None else ok <= 1.0,
                }
            )
            res = results.get(peer, {})
            # Below 16 MB of X, the allocator's and the thread pools' own megabytes dominate.
            if case["group"] != "targets" or res.get("x_bytes", 0) < 16 * 2**20:
                continue
            allowed = 0.25 * res["x_bytes"] + case["k"] * (case["d"] + 1) * 8
            checks.append(
                {
                    "target": f"{name} [{who}]: extra memory / (0.25 size(X) + k x d) <= 1",
                    "value": res["extra_bytes"] / allowed,
                    "goal": 1.0,
                    "met": res["extra_bytes"] <= allowed,
                }
            )
    return checks


# ----------------------------------------------------------------------------- Markdown

SHORT = {
    "tlr_qr": "torchlinreg (qr)",
    "tlr_gram": "torchlinreg gram",
    "sk_linreg": "scikit-learn",
    "sm_ols": "statsmodels",
    "np_lstsq": "numpy lstsq",
    "torch_lstsq": "torch lstsq",
    "torch_qr": "torch QR [1,X,Y]",
}


def _time(seconds: float) -> str:
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1e3:.0f} ms" if seconds >= 0.01 else f"{seconds * 1e3:.2g} ms"


def _shape(case: dict) -> str:
    dtype = " f32" if case["dtype"] == "float32" else ""
    return f"{_short(case['n'])} x {case['d']} x {case['k']}{dtype}"


def _cell(res: dict | None, sk: float | None, repeat: int, what: str) -> str:
    """One summary cell: time (÷ scikit-learn), or memory as a multiple of size(X)."""
    if not res:
        return ""
    if "skipped" in res:
        return "skipped " + res["skipped"].split("~")[-1].split(" (")[0].join("()")
    if "error" in res:
        return "timeout" if "timed out" in res["error"] else "error"
    if what == "memory":  # below 1 MB of X, a multiple of size(X) says nothing
        return f"{res['extra_bytes'] / res['x_bytes']:.2f}" if res["x_bytes"] >= 2**20 else "-"
    t = statistics.median(res["walls"])
    mark = "*" if len(res["walls"]) < repeat else ""
    return f"{_time(t)}{mark}" + (f" ({t / sk:.2f})" if sk else "")


def _floor_cell(results: dict) -> str:
    best = floor_time(results)
    if best is None:
        return ""
    who = min(
        (n for n in ("floor_torch", "floor_numpy") if _t(results, n)),
        key=lambda n: _t(results, n),
    )
    return f"{_time(best)} ({who.split('_')[1]})"


def _summary(data: dict, names: list[str], what: str) -> list[str]:
    peers = [p for p in SHORT if any(p in data["results"][n] for n in names)]
    head = "| regime | n x d x k | " + " | ".join(SHORT[p] for p in peers)
    if what == "time":
        head += " | bare X'X (best) | load before / after"
    lines = [head + " |", "|---|---|" + "---:|" * (len(peers) + 2 * (what == "time"))]
    for name in names:
        case, results = data["cases"][name], data["results"][name]
        info = data.get("case_info", {}).get(name, {})
        repeat = info.get("repeat", 3)
        sk = _t(results, "sk_linreg")
        cells = [_cell(results.get(p), sk, repeat, what) for p in peers]
        if what == "time":
            loads = [info.get(k, "?").split()[0] for k in ("load_before", "load_after")]
            cells += [_floor_cell(results), " / ".join(loads)]
        lines.append(f"| {case['group']} | {_shape(case)} | " + " | ".join(cells) + " |")
    return lines


def _details(data: dict, name: str) -> list[str]:
    case, results = data["cases"][name], data["results"][name]
    info = data.get("case_info", {}).get(name, {})
    sk, floor = _t(results, "sk_linreg"), floor_time(results)
    x_mb = case["n"] * case["d"] * (4 if case["dtype"] == "float32" else 8) / 2**20
    lines = [
        f"**{case['title']}** (size(X) {x_mb:,.0f} MB; "
        f"{info.get('date', '?')}, load average {info.get('load_before', '?')} before, "
        f"{info.get('load_after', '?')} after; {info.get('threads', '?')} thread(s))",
        "",
        "| peer | time | ÷ scikit-learn | ÷ bare X'X | extra memory (x size(X)) | rel. error |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for res in results.values():
        label = res.get("label", "?")
        if "walls" not in res:
            lines.append(f"| {label} | {res.get('skipped') or 'error: ' + res['error']} |")
            continue
        t = statistics.median(res["walls"])
        runs = len(res["walls"])
        cpu = statistics.median(res["cpus"])
        mem = f"{res['extra_bytes'] / 2**20:,.0f} MB ({res['extra_bytes'] / res['x_bytes']:.2f})"
        err = f"{res['rel_err']:.1e}" if res.get("rel_err") is not None else "-"
        lines.append(
            f"| {label} | {_time(t)} ({runs} run{'s' * (runs > 1)}, cpu {_time(cpu)}) | "
            f"{t / sk:.3f} | {t / floor:.2f} | {mem} | {err} |"
            if sk and floor
            else f"| {label} | {_time(t)} | - | - | {mem} | {err} |"
        )
    return [*lines, ""]


def render_regimes(data: dict, details: bool) -> list[str]:
    """The regimes' summary tables (every regime, time and memory) and, with ``details``,
    one table per case."""
    names = [n for n, c in data["cases"].items() if c.get("group")]
    order = {g: i for i, g in enumerate(GROUPS)}
    names.sort(key=lambda n: order[data["cases"][n]["group"]])  # stable: sizes as run
    budgets = {data.get("case_info", {}).get(n, {}).get("budget_s") for n in names} - {None}
    out = [
        "**Every regime: median time (÷ scikit-learn's in the same case)**; each peer in "
        "its own process, float64 unless marked f32, k targets.",
        "",
        *_summary(data, names, "time"),
        "",
        f"\\* fewer runs than asked: the peer's runs exceeded the per-peer budget "
        f"({', '.join(f'{b:g} s' for b in sorted(budgets))}). Load: the 1-minute load "
        "average before and after the case.",
        "",
        "**Peak extra memory, as a multiple of size(X)**",
        "",
        *_summary(data, names, "memory"),
        "",
    ]
    if details:
        for name in names:
            out += _details(data, name)
    return out
