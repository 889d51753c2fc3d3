"""The public paths on a CUDA device against the same calls on the CPU.

Every test fits the same data on the device and on the CPU and asserts that results agree
to rounding, that they stay on the device where the user put the data, and that warnings
and errors are the same. Skipped where no CUDA device is present (the project's CI has
none); ``benchmarks/gpu_check.py`` times the same paths. To check the tests themselves on
a machine without CUDA, set ``TORCHLINREG_TEST_DEVICE=cpu``: they then compare the CPU
with itself.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import torchlinreg as tlr
from cli_helpers import cli, frame, read_csv_text, write
from nist import NAMES, exact_solution, load, lre
from torchlinreg.errors import RankWarning
from torchlinreg.exact.state import LeastSquaresState, fit_exact

DEVICE = os.environ.get("TORCHLINREG_TEST_DEVICE", "cuda")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        DEVICE == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device"
    ),
]


def _np(a) -> np.ndarray:
    return torch.as_tensor(a).detach().cpu().double().numpy()


def _on_device(t) -> bool:
    return isinstance(t, torch.Tensor) and t.device.type == torch.device(DEVICE).type


def _close(got, want, rtol, atol=0.0):
    np.testing.assert_allclose(_np(got), _np(want), rtol=rtol, atol=atol, equal_nan=True)


def _data(n=3000, d=6, k=2, seed=0, offset=1e3):
    """Raw-unit columns with offsets, k targets, weights in [0.5, 2]."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64) * torch.logspace(-1, 2, d)
    X = X + offset * torch.linspace(-1, 1, d)
    B = torch.randn(d, k, generator=g, dtype=torch.float64)
    Y = X @ B + 5.0 + torch.randn(n, k, generator=g, dtype=torch.float64)
    w = torch.rand(n, generator=g, dtype=torch.float64) * 1.5 + 0.5
    return X, Y, w


def _dev(*tensors):
    return tuple(t.to(DEVICE) for t in tensors)


@pytest.mark.parametrize("method", ["qr", "gram"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("intercept", [True, False])
def test_exact_fit_matches_cpu(method, weighted, intercept):
    X, Y, w = _data(seed=1)
    w = w if weighted else None
    _, cpu = fit_exact(X, Y, sample_weight=w, method=method, fit_intercept=intercept)
    state, dev = fit_exact(
        *_dev(X, Y), sample_weight=None if w is None else w.to(DEVICE),
        method=method, fit_intercept=intercept,
    )  # fmt: skip
    assert _on_device(dev.coef) and _on_device(state.r_factor())
    # the raw solution, before refinement: as accurate as its factor (NOTE [accuracy
    # estimate]); a Gram factor without centring squares the condition number
    kappa = cpu.cond ** (2 if method == "gram" else 1)
    _close(dev.coef, cpu.coef, max(1e-10, 100 * 2.2e-16 * kappa))
    public = tlr.LinearRegression(solver=method, fit_intercept=intercept)
    cpu_fit = public.fit(X, Y, sample_weight=w).coef_.clone()
    dev_fit = public.fit(*_dev(X, Y), sample_weight=None if w is None else w.to(DEVICE))
    _close(dev_fit.coef_, cpu_fit, 1e-12)  # refined on both: the same float64 solution
    _close(dev.intercept, cpu.intercept, 1e-10, 1e-12)
    _close(dev.rss, cpu.rss, 1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_ols_on_the_device_meets_the_nist_levels(name):
    # the refinement's error-free products run as separate device kernels: a fused
    # multiply-add would break them, and these levels would show it
    s = load(name)
    X, y = _dev(torch.tensor(s.design()), torch.tensor(s.y))
    res = tlr.ols(X, y, fit_intercept=s.intercept)
    level = 7.0 if name == "Filip" else 12.5
    assert lre(_np(res.params), s.params).min() >= level
    assert lre(_np(res.bse), s.sds).min() >= (7.0 if name == "Filip" else 12.0)
    if name != "Filip":  # the correctly rounded solution of the float64 data, as on CPU
        np.testing.assert_array_max_ulp(_np(res.params), exact_solution(s), maxulp=1)


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "HC3"])
def test_ols_statistics_match_cpu(cov_type):
    X, Y, w = _data(n=800, d=4, k=1, seed=2)
    y = Y[:, 0]
    cpu = tlr.ols(X, y, sample_weight=w, cov_type=cov_type)
    dev = tlr.ols(*_dev(X, y), sample_weight=w.to(DEVICE), cov_type=cov_type)
    for name in ("params", "bse", "tvalues", "pvalues"):
        _close(getattr(dev, name), getattr(cpu, name), 1e-9, 1e-300)
    for name in ("rsquared", "rsquared_adj", "fvalue", "llf", "aic", "bic", "ssr"):
        _close(getattr(dev, name), getattr(cpu, name), 1e-10)
    _close(dev.conf_int(), cpu.conf_int(), 1e-9)
    assert "R-squared" in str(dev.summary())


def test_estimator_keeps_the_device_and_predicts_there():
    X, Y, w = _data(seed=3)
    cpu = tlr.LinearRegression().fit(X, Y, sample_weight=w)
    # numpy in, numpy out (scikit-learn's convention), computed on the device
    as_np = tlr.LinearRegression(device=DEVICE).fit(X.numpy(), Y.numpy(), sample_weight=w.numpy())
    assert isinstance(as_np.coef_, np.ndarray)
    _close(as_np.coef_, cpu.coef_, 1e-10)
    dev = tlr.LinearRegression().fit(*_dev(X, Y), sample_weight=w.to(DEVICE))
    assert _on_device(dev.coef_)
    _close(dev.coef_, cpu.coef_, 1e-10)
    _close(dev.intercept_, cpu.intercept_, 1e-10)
    pred = dev.predict(X[:50].to(DEVICE))
    assert _on_device(pred)
    _close(pred, cpu.predict(X[:50]), 1e-12)
    _close(dev.results_.bse, cpu.results_.bse, 1e-9)
    assert dev.score(X.to(DEVICE), Y.to(DEVICE)) == pytest.approx(cpu.score(X, Y), rel=1e-12)


def test_float32_input_on_the_device():
    X, Y, _ = _data(seed=4, offset=10.0)
    X32, Y32 = X.float(), Y.float()
    cpu = tlr.LinearRegression().fit(X32, Y32)
    dev = tlr.LinearRegression().fit(*_dev(X32, Y32))
    assert _on_device(dev.coef_)
    # both refine to the float64 solution of the float32 data
    _close(dev.coef_, cpu.coef_, 1e-5)


def test_rank_deficient_design_warns_and_matches_cpu():
    X, Y, _ = _data(n=500, d=4, k=1, seed=5)
    X = torch.cat([X, X[:, :1] * 2.0 - X[:, 1:2]], dim=1)  # an exact combination
    with pytest.warns(RankWarning):
        cpu = tlr.LinearRegression().fit(X, Y)
    with pytest.warns(RankWarning):
        dev = tlr.LinearRegression().fit(*_dev(X, Y))
    assert dev.rank_ == cpu.rank_ == 4
    _close(dev.predict(X.to(DEVICE)), cpu.predict(X), 1e-9)


@pytest.mark.parametrize(
    "make",
    [
        lambda d: tlr.Ridge(alpha=3.0, device=d),
        lambda d: tlr.Lasso(alpha=0.5, device=d, tol=1e-10, max_iter=5000),
        lambda d: tlr.ElasticNet(alpha=0.5, l1_ratio=0.3, device=d, tol=1e-10, max_iter=5000),
        lambda d: tlr.HuberRegressor(device=d, max_iter=500),
        lambda d: tlr.RidgeCV(alphas=(0.1, 1.0, 10.0), device=d),
        lambda d: (
            tlr.LassoCV(cv=3, device=d, n_alphas=20, random_state=0)
            if "n_alphas" in tlr.LassoCV().get_params()
            else tlr.LassoCV(cv=3, alphas=20, device=d, random_state=0)
        ),
    ],
    ids=["ridge", "lasso", "enet", "huber", "ridgecv", "lassocv"],
)
def test_penalized_and_robust_estimators_match_cpu(make):
    X, Y, _ = _data(n=600, d=5, k=1, seed=6, offset=5.0)
    y = Y[:, 0]
    cpu = make("cpu").fit(X.numpy(), y.numpy())
    dev = make(DEVICE).fit(X.numpy(), y.numpy())
    _close(dev.coef_, cpu.coef_, 1e-6, 1e-9)
    _close(dev.predict(X.numpy()[:20]), cpu.predict(X.numpy()[:20]), 1e-7)


# the gap each solver's default tol aims at (convergence.DEFAULT_TOL)
@pytest.mark.parametrize("solver, target", [("gd", 1e-6), ("lbfgs", 1e-12), ("sgd", 1e-4),
                                            ("adam", 1e-4)])  # fmt: skip
def test_iterative_solvers_reach_the_exact_fit_on_the_device(solver, target):
    X, Y, _ = _data(n=2000, d=4, k=2, seed=7, offset=3.0)
    exact = tlr.LinearRegression().fit(X, Y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dev = tlr.LinearRegression(solver=solver, random_state=0).fit(*_dev(X, Y))
    assert _on_device(dev.coef_)
    gap = exact.score(X, Y) - dev.score(X.to(DEVICE), Y.to(DEVICE))
    warned = [c for c in caught if issubclass(c.category, tlr.ConvergenceWarning)]
    # converged, or said how far off it is: never a silent miss
    assert gap <= 1.5 * target or warned, gap


def test_states_merge_across_devices_and_move():
    X, Y, w = _data(seed=8)
    half = X.shape[0] // 2
    a = LeastSquaresState(X.shape[1], Y.shape[1]).absorb(X[:half], Y[:half], w[:half])
    b = LeastSquaresState(X.shape[1], Y.shape[1], device=DEVICE)
    b.absorb(*_dev(X[half:], Y[half:], w[half:]))
    merged = LeastSquaresState.merge_all([a.to(DEVICE), b]).solve()
    _, whole = fit_exact(X, Y, sample_weight=w)
    assert _on_device(merged.coef)
    _close(merged.coef, whole.coef, 1e-10)


@pytest.mark.parametrize("weighted", [False, True])
def test_grouped_ols_matches_cpu_with_bad_groups_counted(weighted):
    X, Y, w = _data(n=4000, d=3, k=1, seed=9, offset=10.0)
    g = torch.arange(4000) % 400
    keep = g != 7
    keep[g == 7] = torch.arange(int((g == 7).sum())) < 2  # group 7: 2 rows, too few
    X, y, w, g = X[keep], Y[keep, 0], w[keep], g[keep]
    sw = w if weighted else None
    with pytest.warns(tlr.DegenerateWarning, match="1 of 400 groups"):
        cpu = tlr.ols(X, y, groups=g, sample_weight=sw, cov_type="HC1")
    with pytest.warns(tlr.DegenerateWarning, match="1 of 400 groups"):
        dev = tlr.ols(*_dev(X, y), groups=g.to(DEVICE), sample_weight=None if sw is None
                      else sw.to(DEVICE), cov_type="HC1")  # fmt: skip
    for name in ("params", "bse", "tvalues", "rsquared", "fvalue", "llf"):
        _close(getattr(dev, name), getattr(cpu, name), 1e-10, 1e-300)
    # a p-value of 1e-245 moves by t * dt relative: compare its logarithm
    logp = [np.log(np.maximum(_np(r.pvalues), 1e-300)) for r in (dev, cpu)]
    _close(logp[0], logp[1], 1e-10)
    assert np.isnan(_np(dev.params)[7]).all()
    pd.testing.assert_frame_equal(dev.to_frame(), cpu.to_frame(), rtol=1e-10)


@pytest.mark.parametrize("expanding", [False, True])
def test_rolling_ols_matches_cpu_on_a_long_offset_series(expanding):
    X, Y, _ = _data(n=20_000, d=3, k=1, seed=10, offset=1e5)
    y = Y[:, 0]
    g = torch.arange(20_000) // 5000  # four series, each rolled on its own
    kw = {"window": 250, "expanding": expanding, "min_nobs": 50 if expanding else None}
    cpu = tlr.rolling_ols(X, y, groups=g, **kw)
    dev = tlr.rolling_ols(*_dev(X, y), groups=g.to(DEVICE), **kw)
    for name in ("params", "bse", "rsquared"):
        _close(getattr(dev, name), getattr(cpu, name), 1e-8, 1e-12)


def test_model_file_of_a_device_fit_round_trips(tmp_path):
    X, Y, _ = _data(seed=11)
    est = tlr.LinearRegression(device=DEVICE).fit(X, Y)
    path = tlr.save(est, tmp_path / "m.safetensors")
    back = tlr.load(path)
    _close(back.coef_, est.coef_, 0.0)
    _close(back.predict(X[:10].to(back.coef_.device)), est.predict(X[:10].to(DEVICE)), 1e-15)


def test_cli_trains_predicts_and_groups_on_the_device(tmp_path, capsys):
    df = frame(400)
    data = write(df, tmp_path / "d.parquet", "parquet")
    cpu_m, dev_m = tmp_path / "cpu.safetensors", tmp_path / "dev.safetensors"
    for out, device in ((cpu_m, "cpu"), (dev_m, DEVICE)):
        r = cli(capsys, "train", data, "-t", "apples", "-t", "oranges", "--features", "a,b,c",
                "--weights", "w", "--device", device, "-o", out)  # fmt: skip
        assert r.code == 0, r.err
    cpu = read_csv_text(cli(capsys, "predict", cpu_m, data).out)
    dev = read_csv_text(cli(capsys, "predict", dev_m, data).out)
    np.testing.assert_allclose(dev[["apples", "oranges"]], cpu[["apples", "oranges"]], rtol=1e-10)
    # one model per group, and rolling paths, with --device
    df["store"] = np.arange(len(df)) % 4
    df["day"] = np.arange(len(df))[::-1]
    data = write(df, tmp_path / "g.csv")
    for extra, out in ((["--by", "store"], "g.safetensors"),
                       (["--window", "50", "--order-by", "day"], "paths.csv")):  # fmt: skip
        outs = []
        for device in ("cpu", DEVICE):
            path = tmp_path / f"{device}-{out}"
            r = cli(capsys, "train", data, "-t", "apples", "--features", "a,b,c", *extra,
                    "--device", device, "-o", path)  # fmt: skip
            assert r.code == 0, r.err
            outs.append(path)
        if out.endswith(".csv"):
            a, b = (pd.read_csv(p) for p in outs)
            np.testing.assert_allclose(b.select_dtypes("number"), a.select_dtypes("number"),
                                       rtol=1e-8, equal_nan=True)  # fmt: skip
        else:
            a, b = (cli(capsys, "summary", p, "--json").json["coefficients"] for p in outs)
            for label in a:
                for name, v in a[label].items():
                    assert b[label][name] == pytest.approx(v, rel=1e-10), (label, name)


def test_a_streamed_fit_on_the_device_says_when_it_may_be_off():
    # NOTE [unrefined fits]: the estimate is computed where the state lies
    rng = np.random.default_rng(12)
    x = rng.uniform(0, 1, 40_000) + 1e3
    X = torch.tensor(np.c_[x, x**2, rng.normal(size=x.size)])
    y = X @ torch.tensor([3.0, -0.1, 2.0], dtype=torch.float64) + 1e-3 * torch.randn(x.size)
    rows = range(0, 40_000, 10_000)
    blocks = [(X[i : i + 10_000].to(DEVICE), y[i : i + 10_000].to(DEVICE)) for i in rows]
    with pytest.warns(RankWarning, match="may be off by up to") as caught:
        dev = tlr.LinearRegression(solver="gram").fit_blocks(blocks)
    assert _on_device(dev.coef_) and caught[0].message.error > 1e-8
    ref = tlr.LinearRegression().fit(X, y).coef_
    error = float(((dev.coef_.cpu() - ref).abs() / ref.abs()).max())
    assert error <= caught[0].message.error


def test_device_tensors_stay_there_and_errors_are_located_there():
    # moved from test_data.py, which imports polars (absent from some GPU images)
    from torchlinreg.data import as_matrix, as_weights

    X = torch.randn(100, 3, device=DEVICE, dtype=torch.float64)
    m = as_matrix(X)
    assert _on_device(m.values) and m.values.data_ptr() == X.data_ptr()
    assert _on_device(m.wrap(torch.ones(100, 1, device=DEVICE)))
    X[41, 2] = float("nan")
    with pytest.raises(tlr.DataError, match="NaN at row 42, column 3"):
        as_matrix(X)
    assert _on_device(as_matrix(np.ones((6, 3)), device=DEVICE).values)
    assert _on_device(as_weights(torch.ones(100, device=DEVICE), 100))
