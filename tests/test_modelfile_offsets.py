"""Model files of `train --cov-type HC*` for columns far from their spread.

The file held only the robust covariance of the raw parameters; a loaded model has no rows,
so get_prediction (and `predict --interval`), which take the covariance about the offsets
(NOTE [robust covariances in model files] in stats/robust_blocks.py), raised "TypeError:
'NoneType' object is not callable" for a column near 1e9 with a spread of 0.01. References
are computed in mpmath at 60 digits from the float64 data as the file holds them.
"""

from __future__ import annotations

import warnings

import mpmath as mp
import numpy as np
import pandas as pd
import pytest

import torchlinreg as tlr
from cli_helpers import cli
from test_robust_offsets import _mp_hc
from torchlinreg.errors import DataError, ModelFileError
from torchlinreg.files.io import load_tensors, save_tensors


def _write(tmp_path, offset: float, spread: float, seed: int = 0, n: int = 60):
    rng = np.random.default_rng(seed)
    x = offset + spread * rng.standard_normal(n)
    noise = rng.standard_normal((n, 2)) * (1 + np.abs(x - offset)[:, None] / spread)
    frame = pd.DataFrame({"x": x, "y": 2.0 * x + noise[:, 0], "z": -x + 0.5 * noise[:, 1]})
    data = tmp_path / "near.csv"
    frame.to_csv(data, index=False)
    back = pd.read_csv(data)  # the file's numbers as the reader takes them
    return data, back[["x"]].to_numpy(), back[["y", "z"]].to_numpy()


def _new_rows(offset: float, spread: float) -> np.ndarray:
    return offset + spread * np.array([[0.3], [-2.0], [0.0], [1.7]])


def _at(new: np.ndarray) -> np.ndarray:
    return np.hstack([np.ones((len(new), 1)), new])


def _mp_nonrobust_se_mean(X, y, params, at) -> np.ndarray:
    with mp.workdps(60):
        A = mp.matrix([[mp.mpf(1), mp.mpf(float(v))] for v in X[:, 0]])
        C = mp.inverse(A.T * A)
        b = mp.matrix([mp.mpf(float(v)) for v in params])
        e = mp.matrix([mp.mpf(float(v)) for v in y]) - A * b
        s2 = sum(v * v for v in e) / (len(y) - 2)
        rows = [mp.matrix([[mp.mpf(float(v)) for v in r]]) for r in at]
        return np.array([float(mp.sqrt(s2 * (r * C * r.T)[0])) for r in rows])


def _train(capsys, tmp_path, data, *extra):
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", data, "-t", "y", "-t", "z", "--block-rows", 7, "-o", model, *extra)
    assert r.code == 0, r.err
    return model


def _strip_offsets(model, tmp_path):
    """The model file as versions before the covariance about the offsets wrote it."""
    tensors, meta = load_tensors(str(model))
    assert {"cov_about_offsets", "offsets"} <= set(meta["robust_cov"])
    meta["robust_cov"] = {k: meta["robust_cov"][k] for k in ("cov_type", "cov")}
    old = tmp_path / "old.safetensors"
    save_tensors(old, tensors, meta)
    return old


@pytest.mark.parametrize("kind", ["HC0", "HC1", "HC2", "HC3"])
def test_loaded_hc_model_predicts_standard_errors_about_the_offsets(capsys, tmp_path, kind):
    # before: TypeError from get_prediction (no rows to take the covariance about the
    # offsets from); now <= 1e-15 from the 60-digit reference
    data, X, Y = _write(tmp_path, 1e9, 0.01)
    model = _train(capsys, tmp_path, data, "--cov-type", kind)
    new = _new_rows(1e9, 0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = tlr.load(model).results_
        got = np.asarray(res.get_prediction(new).se_mean)
        memory = tlr.ols(X, Y).get_robustcov_results(kind)
        in_memory = np.asarray(memory.get_prediction(new).se_mean)
    assert got.shape == (len(new), 2)
    for t in range(2):
        # the least-squares residuals', in memory (NOTE [the residuals HC squares]) and in
        # the file's second pass, which reads DATA again at them where the streamed
        # parameters' would be off (NOTE [blocks at the least-squares residuals]; their
        # intercept's ulp, 2.4e-7 at ~2e9, moves residuals of ~1 by ~1e-7)
        ref = _mp_hc(X, Y[:, t], intercept=True, at=_at(new))[kind]
        np.testing.assert_allclose(got[:, t], ref, rtol=1e-13)
        np.testing.assert_allclose(in_memory[:, t], ref, rtol=1e-13)


def test_loaded_nonrobust_model_predicts_about_the_offsets(capsys, tmp_path):
    # a guard: without --cov-type the state's factor about the offsets serves (the scale
    # is the state's residual sum of squares: 1e-13 here)
    data, X, Y = _write(tmp_path, 1e9, 0.01)
    model = _train(capsys, tmp_path, data)
    new = _new_rows(1e9, 0.01)
    res = tlr.load(model).results_
    got = np.asarray(res.get_prediction(new).se_mean)
    params = np.asarray(res.params)
    for t in range(2):
        ref = _mp_nonrobust_se_mean(X, Y[:, t], params[:, t], _at(new))
        np.testing.assert_allclose(got[:, t], ref, rtol=1e-12)


def test_predict_interval_of_a_loaded_hc_model(capsys, tmp_path):
    # before: "unexpected TypeError: 'NoneType' object is not callable", exit 1
    data, _, _ = _write(tmp_path, 1e9, 0.01)
    model = _train(capsys, tmp_path, data, "--cov-type", "HC1")
    rows = tmp_path / "new.csv"
    new = _new_rows(1e9, 0.01)
    pd.DataFrame({"x": new[:, 0]}).to_csv(rows, index=False)
    r = cli(capsys, "predict", model, rows, "--interval", "0.9")
    assert r.code == 0, r.err
    out = pd.read_csv(pd.io.common.StringIO(r.out))
    frame = tlr.load(model).results_.get_prediction(new).summary_frame(alpha=0.1)
    lower = np.asarray(frame["mean_ci_lower"]).reshape(len(new), -1)
    np.testing.assert_array_equal(out["y_mean_ci_lower"].to_numpy(), lower[:, 0])


def test_formula_train_stores_the_covariance_about_the_offsets(capsys, tmp_path):
    data, X, Y = _write(tmp_path, 1e9, 0.01)
    model = tmp_path / "f.safetensors"
    r = cli(capsys, "train", data, "--formula", "y ~ x", "--cov-type", "HC3", "-o", model)
    assert r.code == 0, r.err
    new = _new_rows(1e9, 0.01)
    res = tlr.load(model).results_
    got = np.asarray(res.get_prediction(pd.DataFrame({"x": new[:, 0]})).se_mean)
    ref = _mp_hc(X, Y[:, 0], intercept=True, at=_at(new))["HC3"]  # least squares' residuals
    np.testing.assert_allclose(got, ref, rtol=1e-13)


def test_an_older_file_near_1e9_says_it_cannot_give_prediction_errors(capsys, tmp_path):
    # the raw covariance's intercept entries are ~1e18 times the slope's: the covariance
    # about the offsets is below their rounding, so no number is better than a wrong one
    data, X, Y = _write(tmp_path, 1e9, 0.01)
    old = _strip_offsets(_train(capsys, tmp_path, data, "--cov-type", "HC1"), tmp_path)
    est = tlr.load(old)
    res = est.results_
    ref = _mp_hc(X, Y[:, 0], intercept=True)["HC1"]  # least squares' residuals
    np.testing.assert_allclose(np.asarray(res.bse)[:, 0], ref, rtol=1e-13)  # still served
    new = _new_rows(1e9, 0.01)
    assert est.predict(new).shape == (len(new), 2)
    with pytest.raises(DataError, match="Re-train and save again"):
        res.get_prediction(new)
    rows = tmp_path / "new.csv"
    pd.DataFrame({"x": new[:, 0]}).to_csv(rows, index=False)
    cli(capsys, "predict", old, rows, "--interval", "0.9").assert_one_error_line(
        2, "covariance about the columns' offsets"
    )


def test_an_older_file_with_moderate_offsets_still_predicts(capsys, tmp_path):
    # offsets 300 times the spread: the raw covariance maps back with digits to spare
    data, X, Y = _write(tmp_path, 300.0, 1.0, seed=1)
    old = _strip_offsets(_train(capsys, tmp_path, data, "--cov-type", "HC1"), tmp_path)
    res = tlr.load(old).results_
    new = _new_rows(300.0, 1.0)
    got = np.asarray(res.get_prediction(new).se_mean)
    params = np.asarray(res.params)
    for t in range(2):
        ref = _mp_hc(X, Y[:, t], intercept=True, params=params[:, t], at=_at(new))["HC1"]
        np.testing.assert_allclose(got[:, t], ref, rtol=1e-8)


@pytest.mark.parametrize(
    "change",
    [
        {"offsets": [1.0, 2.0]},
        {"offsets": ["1e9"]},
        {"cov_about_offsets": [[1.0]]},
        {"cov_about_offsets": None},
    ],
)
def test_a_damaged_covariance_about_the_offsets_is_refused(capsys, tmp_path, change):
    data, _, _ = _write(tmp_path, 1e9, 0.01)
    tensors, meta = load_tensors(str(_train(capsys, tmp_path, data, "--cov-type", "HC1")))
    meta["robust_cov"].update(change)
    bad = tmp_path / "bad.safetensors"
    save_tensors(bad, tensors, meta)
    with pytest.raises(ModelFileError, match="re-train and save again"):
        tlr.load(bad)


def test_a_refit_forgets_the_covariance_about_the_offsets(capsys, tmp_path):
    # the loaded model holds it beside robust_cov_; a refit of the same estimator on other
    # rows learns afresh and must not carry it (nor its robust_cov_) over
    data, X, Y = _write(tmp_path, 1e9, 0.01)
    est = tlr.load(_train(capsys, tmp_path, data, "--cov-type", "HC1"))
    assert getattr(est, "_robust_offsets", None) is not None  # the premise
    est.fit(X[:200], Y[:200])
    assert not hasattr(est, "_robust_offsets") and not hasattr(est, "robust_cov_")
