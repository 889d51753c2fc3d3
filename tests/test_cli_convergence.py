"""`torchlinreg train` says how far an iterative fit is from the exact one (issue 10): the gap
in the report and the JSON, warnings in the command's words, the loss labelled for what it is.

References: numpy's lstsq R2 on the same rows, against the saved model's predictions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cli_helpers import cli, write
from corpus import load
from torchlinreg.estimator.modelfile import load as load_model


@pytest.fixture
def longley_csv(tmp_path):
    X, y = load("longley")
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]).assign(y=y)
    return write(df, tmp_path / "longley.csv"), X, y


def _lstsq_gap(model, X, y) -> float:
    A = np.c_[X, np.ones(len(X))]
    ref = np.linalg.lstsq(A, y, rcond=None)[0]
    sst = ((y - y.mean()) ** 2).sum()
    ssr = ((y - model.predict(X)) ** 2).sum()
    return (ssr - ((y - A @ ref) ** 2).sum()) / sst


def test_json_report_gives_the_gap_convergence_and_loss_units(capsys, tmp_path, longley_csv):
    path, X, y = longley_csv
    out = tmp_path / "m.safetensors"
    res = cli(capsys, "train", path, "-t", "y", "--solver", "lbfgs", "-o", out, "--json")
    assert res.code == 0 and res.err == ""
    report = res.json
    # 1) converged, 2) the reported gap is lstsq's R2 difference for the saved model,
    # 3) the loss is labelled standardized (not the MSE of the targets in their units)
    assert report["converged"] is True and report["optimality_gap_kind"] == "exact"
    gap = _lstsq_gap(load_model(out), X, y)
    assert report["optimality_gap"] == pytest.approx(gap, abs=1e-11) and gap <= 1e-8
    assert report["loss_units"] == "standardized"
    assert report["final_loss"] == pytest.approx(1 - report["metrics"]["y"]["r2"], rel=1e-6)


def test_text_report_shows_the_gap_and_the_loss_units(capsys, tmp_path, longley_csv):
    path, _, _ = longley_csv
    res = cli(capsys, "train", path, "-t", "y", "--solver", "lbfgs", "-o", tmp_path / "m.st")
    text = " ".join(res.out.split())
    assert res.code == 0
    assert "optimality gap" in text and "converged" in text and "(standardized)" in text


def test_a_fit_short_of_its_target_warns_in_the_commands_words(capsys, tmp_path, longley_csv):
    path, X, y = longley_csv
    out = tmp_path / "m.safetensors"
    res = cli(
        capsys, "train", path, "-t", "y", "--solver", "sgd", "--epochs", "3", "-o", out, "--json"
    )
    # 1) exit 0 and the model is saved, 2) one warning line that gives the gap and the
    # flags to use (not the library's max_iter), 3) the JSON says not converged
    assert res.code == 0
    lines = res.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("torchlinreg: warning: "), res.err
    for needle in ("optimality gap of", "--epochs", "--solver lbfgs", "--solver qr"):
        assert needle in lines[0]
    assert "max_iter" not in lines[0]
    report = res.json
    assert report["converged"] is False and report["epochs"] == 3
    gap = _lstsq_gap(load_model(out), X, y)
    assert report["optimality_gap"] == pytest.approx(gap, rel=1e-6) and gap > 1e-4
    assert f"{gap:.3g}" in lines[0]


def test_loss_plot_is_labelled_standardized(capsys, tmp_path, longley_csv, monkeypatch):
    from torchlinreg import plots

    labels = []
    real = plots.loss_curve

    def spy(history, path, **kw):
        labels.append(kw.get("ylabel"))
        return real(history, path, **kw)

    monkeypatch.setattr(plots, "loss_curve", spy)
    path, _, _ = longley_csv
    res = cli(
        capsys,
        "train",
        path,
        "-t",
        "y",
        "--solver",
        "lbfgs",
        "-o",
        tmp_path / "m.st",
        "--plot",
        tmp_path / "p",
    )
    assert res.code == 0 and (tmp_path / "p" / "loss.png").exists()
    assert labels and "standardized" in labels[0]


def test_data_scaled_by_1e160_trains_a_finite_right_model(capsys, tmp_path, longley_csv):
    # before: a NaN model saved with exit 0 ("final loss 0")
    _, X, y = longley_csv
    df = pd.DataFrame(X * 1e160, columns=[f"x{i}" for i in range(X.shape[1])]).assign(y=y * 1e160)
    path = write(df, tmp_path / "big.csv")
    out = tmp_path / "big.safetensors"
    res = cli(capsys, "train", path, "-t", "y", "--solver", "lbfgs", "-o", out, "--json")
    assert res.code == 0
    model = load_model(out)
    assert np.all(np.isfinite(model.coef_)) and np.isfinite(model.intercept_)
    assert res.json["converged"] is True and res.json["optimality_gap"] <= 1e-8
    # the model, mapped back to unscaled units, is the exact fit
    pred = X @ model.coef_ + model.intercept_ / 1e160
    ref = np.linalg.lstsq(np.c_[X, np.ones(len(X))], y, rcond=None)[0]
    np.testing.assert_allclose(pred, np.c_[X, np.ones(len(X))] @ ref, rtol=1e-6)
