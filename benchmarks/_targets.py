"""The targets of issue 5 on the classic cases (exact, sgd, walk), each met or missed.

Ratios are taken between peers of the same ``benchmarks/run.py`` invocation. The regimes'
targets (issue 11) are in ``_regimes.py``.
"""

from __future__ import annotations

import statistics


def median(result: dict) -> float | None:
    return statistics.median(result["walls"]) if result.get("walls") else None


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
