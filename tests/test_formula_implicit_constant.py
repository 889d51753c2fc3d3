"""A formula without an intercept whose dummies sum to one: the constant is in the span.

``y ~ C(q) - 1 + x`` has every level's dummy, so statsmodels reports the centred R2,
df_model = rank - 1 and ess = tss - ssr. ``ols(formula)`` did; a fit_formula estimator, a
saved model and `train --formula` reported the uncentred R2 of a model without a constant
(0.9927 against 0.9559 on macrodata by quarter, F 5416 against 1074), silently (NOTE [an
implicit constant] in formula/encoding.py). Reference: statsmodels' formula API.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import torchlinreg as tlr
from cli_helpers import cli
from torchlinreg.files.io import load_tensors, save_tensors

STATS = ("rsquared", "rsquared_adj", "fvalue", "df_model", "ess", "centered_tss")
FORMULAS = [
    "realgdp ~ C(q) - 1 + realinv",
    "realgdp ~ realinv + C(q) - 1",
    "realgdp ~ C(q):C(era) - 1 + realinv",
    "realgdp ~ realinv + C(q):realinv - 1 + C(half)",
]


def _macro():
    d = sm.datasets.macrodata.load_pandas().data
    d["q"] = d["quarter"].astype(int)
    d["half"] = np.where(d["q"] <= 2, "first", "second")
    d["era"] = np.where(d["year"] < 1985, "early", "late")
    d["w"] = 1.0 + (np.arange(len(d)) % 5)
    return d


def _check(got: dict, ref, rtol: float) -> None:
    for name in STATS:
        want = getattr(ref, name)
        assert np.isclose(float(np.ravel(got[name])[0]), want, rtol=rtol), (name, got[name], want)


@pytest.mark.parametrize("formula", FORMULAS)
@pytest.mark.parametrize("weighted", [False, True])
def test_fit_formula_and_its_model_file_count_the_constant(tmp_path, formula, weighted):
    d = _macro()
    ref = (smf.wls(formula, d, weights=d["w"]) if weighted else smf.ols(formula, d)).fit()
    kw = {"sample_weight": d["w"].to_numpy()} if weighted else {}
    est = tlr.LinearRegression().fit_formula(formula, d, **kw)
    _check({n: getattr(est.results_, n) for n in STATS}, ref, 1e-10)
    path = tmp_path / "m.safetensors"
    tlr.save(est, path)
    loaded = tlr.load(path).results_  # from the state alone: the factor centres it
    _check({n: getattr(loaded, n) for n in STATS}, ref, 1e-9)
    # and ols(formula), which always did (the rows' rank)
    _check({n: getattr(tlr.ols(formula, data=d, **kw), n) for n in STATS}, ref, 1e-10)


def test_a_formula_without_a_spanned_constant_stays_uncentred():
    d = _macro()
    formula = "realgdp ~ C(q):realinv - 1"  # every level's slope: no constant in the span
    ref = smf.ols(formula, d).fit()
    res = tlr.LinearRegression().fit_formula(formula, d).results_
    assert res.k_constant == ref.k_constant == 0
    assert np.isclose(float(res.rsquared), ref.rsquared, rtol=1e-10)


def test_train_formula_counts_the_constant(capsys, tmp_path):
    d = _macro()
    data = tmp_path / "macro.csv"
    d.to_csv(data, index=False)
    formula = FORMULAS[0]
    ref = smf.wls(formula, d, weights=d["w"]).fit()
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", data, "--formula", formula, "--weights", "w", "--block-rows", 50,
            "-o", model, "-q")  # fmt: skip
    assert r.code == 0, r.err
    r = cli(capsys, "summary", model, "--json")
    assert r.code == 0, r.err
    stats = json.loads(r.out)["statistics"]
    for name in ("rsquared", "rsquared_adj", "fvalue", "df_model", "ess"):
        assert np.isclose(stats[name], getattr(ref, name), rtol=1e-9), name


def test_a_model_file_from_before_still_loads(tmp_path):
    d = _macro()
    est = tlr.LinearRegression().fit_formula(FORMULAS[0], d)
    path = tmp_path / "m.safetensors"
    tlr.save(est, path)
    tensors, meta = load_tensors(str(path))
    # the encoding's record in the metadata, wherever the file keeps it
    key = next(k for k, v in meta.items() if isinstance(v, dict) and "constant_columns" in v)
    meta[key].pop("constant_columns")
    old = tmp_path / "old.safetensors"
    save_tensors(old, tensors, meta)
    res = tlr.load(old).results_  # reads as before: no constant known, uncentred
    assert res.k_constant == 0
