"""Fits spread over time (--update, partial_fit) and processes (--nproc), from a hunt on them.

- An update kept the old rows' robust covariance and showed the new coefficients with it,
  under "HC3"; `--update --cov-type/--cluster` were taken and ignored.
- Rows of weight zero were left out of `--nproc` and `--update` fits (not of one process's):
  nobs 300 for 442, standard errors 22% larger on two ranks, and `--cluster` across ranks
  refused the fit for a row count it had changed itself.
- Updating a formula or grouped model gave messages about the wrong thing.

References: statsmodels WLS on all rows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.datasets import load_diabetes

import torchlinreg as tlr
from cli_helpers import cli


def _diabetes(tmp_path, zero_weights: bool = False):
    X, y = load_diabetes(return_X_y=True)
    frame = pd.DataFrame(X[:, :3], columns=["age", "sex", "bmi"]).assign(y=y)
    frame["w"] = 1.0 + (np.arange(len(y)) % 3)
    if zero_weights:
        frame.loc[300:, "w"] = 0.0
    frame["g"] = np.arange(len(y)) % 17
    frame.iloc[:200].to_csv(tmp_path / "a.csv", index=False)
    frame.iloc[200:].to_csv(tmp_path / "b.csv", index=False)
    frame.to_csv(tmp_path / "all.csv", index=False)
    return frame


def _wls(frame):
    return sm.WLS(frame["y"], sm.add_constant(frame[["age", "sex", "bmi"]]), weights=frame["w"])


def test_an_update_drops_the_old_rows_robust_covariance(tmp_path, capsys):
    frame = _diabetes(tmp_path)
    model = tmp_path / "m.safetensors"
    args = ["-t", "y", "--features", "age,sex,bmi", "--weights", "w"]
    r = cli(capsys, "train", tmp_path / "a.csv", *args, "--cov-type", "HC3", "-o", model, "-q")
    assert r.code == 0, r.err
    r = cli(capsys, "train", tmp_path / "b.csv", "--update", model, "-q")
    assert r.code == 0, r.err
    res = tlr.load(model).results_
    # before: cov_type HC3 with the 200 rows' standard errors beside 442 rows' coefficients
    assert res.cov_type == "nonrobust"
    ref = _wls(frame).fit()
    np.testing.assert_allclose(np.asarray(res.bse), ref.bse.to_numpy(), rtol=1e-9)
    # in the library too
    est = tlr.LinearRegression().fit(frame[["age", "sex", "bmi"]][:200], frame["y"][:200])
    est.robust_cov_ = (est.results_.get_robustcov_results("HC3")._robust_cov_basis, "HC3")
    est.partial_fit(frame[["age", "sex", "bmi"]][200:], frame["y"][200:])
    assert est.results_.cov_type == "nonrobust"


@pytest.mark.parametrize("flag", [["--cov-type", "HC1"], ["--cluster", "g"]])
def test_an_update_refuses_a_robust_covariance(tmp_path, capsys, flag):
    _diabetes(tmp_path)
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", tmp_path / "a.csv", "-t", "y", "--features", "age,sex,bmi",
            "-o", model, "-q")  # fmt: skip
    assert r.code == 0, r.err
    r = cli(capsys, "train", tmp_path / "b.csv", "--update", model, *flag)
    r.assert_one_error_line(2, "need the residuals of every row")


def test_an_update_counts_rows_of_weight_zero(tmp_path, capsys):
    frame = _diabetes(tmp_path, zero_weights=True)
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", tmp_path / "a.csv", "-t", "y", "--features", "age,sex,bmi",
            "--weights", "w", "-o", model, "-q")  # fmt: skip
    assert r.code == 0, r.err
    r = cli(capsys, "train", tmp_path / "b.csv", "--update", model, "--block-rows", 50, "-q")
    assert r.code == 0, r.err
    res = tlr.load(model).results_
    ref = _wls(frame).fit()
    assert res.nobs == ref.nobs == 442  # 300 before: blocks of weight zero were left out
    np.testing.assert_allclose(np.asarray(res.bse), ref.bse.to_numpy(), rtol=1e-9)


def test_updating_formula_and_grouped_models_says_why_not(tmp_path, capsys):
    _diabetes(tmp_path)
    formula = tmp_path / "f.safetensors"
    r = cli(capsys, "train", tmp_path / "a.csv", "--formula", "y ~ age + C(g)", "-o", formula)
    assert r.code == 0, r.err
    r = cli(capsys, "train", tmp_path / "b.csv", "--update", formula)
    r.assert_one_error_line(2, "a --formula model cannot be updated yet")
    grouped = tmp_path / "g.safetensors"
    r = cli(capsys, "train", tmp_path / "a.csv", "-t", "y", "--features", "age", "--by", "g",
            "-o", grouped, "-q")  # fmt: skip
    assert r.code == 0, r.err
    r = cli(capsys, "train", tmp_path / "b.csv", "--update", grouped)
    r.assert_one_error_line(2, "a grouped (--by) model cannot be updated yet")
    r = cli(capsys, "train", tmp_path / "b.csv", "--update", formula, "--missing", "drop")
    r.assert_one_error_line(2, "--update takes no --formula or --missing drop")


def test_two_processes_count_rows_of_weight_zero(tmp_path):
    # one process counted them (nobs 442, as statsmodels); two left them out (nobs 300,
    # standard errors 22% larger), and --cluster across the ranks then refused the fit
    frame = _diabetes(tmp_path, zero_weights=True)
    ref = _wls(frame).fit()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for extra in ([], ["--cluster", "g"]):
        model = tmp_path / "m.safetensors"
        done = subprocess.run(
            [sys.executable, "-m", "torchlinreg", "train", str(tmp_path / "all.csv"), "-t", "y",
             "--features", "age,sex,bmi", "--weights", "w", "--nproc", "2", *extra,
             "--block-rows", "64", "-o", str(model), "-q"],
            capture_output=True, text=True, timeout=240, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = tlr.load(model).results_
        assert res.nobs == 442 and res.df_resid == ref.df_resid
        if not extra:
            np.testing.assert_allclose(np.asarray(res.bse), ref.bse.to_numpy(), rtol=1e-9)
