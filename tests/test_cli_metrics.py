"""`train` and `evaluate` report the same metrics, labelled for what they are.

NOTE [metric definitions] in ``stats/metrics.py``: weighted when a weight column is given,
``r2`` the centred R2 (scikit-learn's ``r2_score`` with ``sample_weight``) and, for models
without an intercept, ``r2_uncentered`` (statsmodels' ``rsquared`` without a constant). The
references are scikit-learn's metrics on the saved model's predictions and closed forms.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_diabetes

import torchlinreg
from cli_helpers import FEATURES, TARGETS, cli, frame, write

# (solver, extra train options): exact and iterative, in memory and streamed
SOLVERS = {
    "qr": [],
    "gram": [],
    "sgd": ["--solver", "sgd", "--epochs", "3", "--seed", "1", "--batch-size", "32"],
    "sgd-stream": ["--solver", "sgd", "--epochs", "3", "--seed", "1", "--stream"],
    "lbfgs": ["--solver", "lbfgs", "--epochs", "15", "--seed", "2"],
}


def _reference(y, p, w, intercept: bool) -> dict[str, float]:
    """scikit-learn's metrics (weighted by ``w`` when given) and the uncentred R2."""
    ref = {
        "mse": skm.mean_squared_error(y, p, sample_weight=w),
        "rmse": np.sqrt(skm.mean_squared_error(y, p, sample_weight=w)),
        "mae": skm.mean_absolute_error(y, p, sample_weight=w),
        "r2": skm.r2_score(y, p, sample_weight=w),
    }
    if not intercept:
        ww = np.ones_like(y) if w is None else w
        ref["r2_uncentered"] = 1.0 - (ww * (y - p) ** 2).sum() / (ww * y**2).sum()
    return ref


def _train_and_evaluate(capsys, tmp_path, data, targets, options, weighted):
    model = tmp_path / "m.safetensors"
    columns = [x for t in targets for x in ("-t", t)] + ["--features", ",".join(FEATURES)]
    weights = ["--weights", "w"] if weighted else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few epochs on purpose
        r = cli(capsys, "train", data, *columns, *weights, *options, "-o", model, "--json")
    assert r.code == 0, r.err
    trained = r.json
    r = cli(capsys, "evaluate", model, data, *weights, "--json")
    assert r.code == 0, r.err
    return model, trained, r.json


@pytest.mark.parametrize("solver", list(SOLVERS))
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("intercept", [True, False], ids=["intercept", "no-intercept"])
def test_train_and_evaluate_print_the_same_metrics(tmp_path, capsys, solver, weighted, intercept):
    df = frame(150, seed=4)
    df[TARGETS] += 40.0  # an offset: the centred and uncentred R2 differ a lot
    data = write(df, tmp_path / "d.csv")
    # one target or two, alternating over the cases
    targets = TARGETS[: 1 + (list(SOLVERS).index(solver) + weighted + intercept) % 2]
    options = SOLVERS[solver] + ([] if intercept else ["--no-intercept"])
    model, trained, evaluated = _train_and_evaluate(
        capsys, tmp_path, data, targets, options, weighted
    )
    # 1) both say whether they are weighted
    assert trained["weighted"] is weighted and evaluated["weighted"] is weighted
    assert evaluated["weights"] == ("w" if weighted else None)
    # 2) both report the centred r2, and r2_uncentered exactly when there is no intercept
    for name in targets:
        got, train_got = evaluated["targets"][name], trained["metrics"][name]
        expected = {"mse", "rmse", "mae", "r2"} | (set() if intercept else {"r2_uncentered"})
        assert set(got) == expected
        assert set(train_got) - {"mae"} == expected - {"mae"}
        # 3) every number train prints, evaluate prints the same
        for key, value in train_got.items():
            assert value == pytest.approx(got[key], rel=1e-9, abs=1e-12), (name, key)
    # 4) and they are scikit-learn's (weighted) metrics of the saved model's predictions
    pred = np.asarray(torchlinreg.load(model).predict(df[FEATURES])).reshape(len(df), -1)
    w = df["w"].to_numpy() if weighted else None
    for j, name in enumerate(targets):
        ref = _reference(df[name].to_numpy(), pred[:, j], w, intercept)
        for key, value in ref.items():
            assert evaluated["targets"][name][key] == pytest.approx(value, rel=1e-10), key


def test_train_and_evaluate_agree_on_real_data_weighted_without_intercept(tmp_path, capsys):
    # scikit-learn's diabetes data (442 patients), weighted by a column of the file
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    df = X.assign(progression=y, w=np.linspace(0.5, 2.0, len(y)))
    data = write(df, tmp_path / "diabetes.parquet", "parquet")
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", data, "-t", "progression", "--weights", "w", "--no-intercept",
            "-o", model, "--json")  # fmt: skip
    assert r.code == 0, r.err
    trained = r.json["metrics"]["progression"]
    r = cli(capsys, "evaluate", model, data, "--weights", "w", "--json")
    assert r.code == 0, r.err
    got = r.json["targets"]["progression"]
    p = np.asarray(torchlinreg.load(model).predict(X)).reshape(-1)
    ref = _reference(y.to_numpy(), p, df["w"].to_numpy(), intercept=False)
    for key in ("mse", "rmse", "r2", "r2_uncentered"):
        assert trained[key] == pytest.approx(ref[key], rel=1e-10), key
        assert got[key] == pytest.approx(ref[key], rel=1e-10), key
    # without an intercept the two R2 differ: the labels matter
    assert abs(got["r2"] - got["r2_uncentered"]) > 0.1


def test_the_tables_say_weighted_or_unweighted(tmp_path, capsys):
    df = frame()
    data = write(df, tmp_path / "d.csv")
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", data, "-t", "apples", "--features", "a,b,c", "--weights", "w",
            "--no-intercept", "-o", model)  # fmt: skip
    assert r.code == 0, r.err
    assert "Training fit (weighted by w)" in r.out and "r2_uncentered" in r.out
    r = cli(capsys, "evaluate", model, data, "--weights", "w")
    assert r.code == 0, r.err
    assert "Metrics (weighted by w)" in r.out and "r2_uncentered" in r.out
    r = cli(capsys, "evaluate", model, data)
    assert "Metrics (unweighted)" in r.out
    r = cli(capsys, "summary", model)
    assert "Fit at training time (weighted by w)" in r.out


def _weights_file(tmp_path, w) -> str:
    df = pd.DataFrame({"a": [1.0, 2, 3, 4, 5], "y": [1.1, 2.0, 2.9, 4.2, 5.0], "w": w})
    return str(write(df, tmp_path / "w.csv"))


@pytest.mark.parametrize(
    ("weights", "column", "needles"),
    [
        ([1, 1, -2, 1, 1], "w", ["w.csv", "row 4", "column 'w'", "negative weight"]),
        ([0, 0, 0, 0, 0], "w", ["w.csv", "weight 0", "'w'"]),
        ([1, 1, 1, 1, 1], "ww", ["unknown column 'ww'", "did you mean 'w'"]),
        ([1, 1, 1, 1, 1], "a", ["'a'", "feature", "--weights"]),
        ([1, 1, 1, 1, 1], "y", ["'y'", "target", "--weights"]),
    ],
    ids=["negative", "all-zero", "unknown", "a-feature", "a-target"],
)
def test_evaluate_refuses_bad_weights_with_one_line(tmp_path, capsys, weights, column, needles):
    data = _weights_file(tmp_path, [1.0] * 5)
    model = tmp_path / "m.safetensors"
    assert cli(capsys, "train", data, "-t", "y", "--features", "a", "-o", model, "-q").code == 0
    bad = _weights_file(tmp_path, weights)
    r = cli(capsys, "evaluate", model, bad, "--weights", column)
    r.assert_one_error_line(2, *needles)
