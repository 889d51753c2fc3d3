"""torchlinreg.save / torchlinreg.load: a fitted estimator as one .safetensors file."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import torchlinreg
from torchlinreg.errors import ConvergenceWarning
from torchlinreg.estimator.modelfile import describe
from torchlinreg.iterative.checkpoint import save_checkpoint


def _data(n=80, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["t", "r", "h"])
    Y = pd.DataFrame(
        {"apples": X @ [1.0, -2.0, 0.5] + 4 + rng.normal(size=n), "oranges": X["t"] * 3 - 1}
    )
    return X, Y


def test_exact_model_round_trips_exactly_with_names_and_state(tmp_path):
    X, Y = _data()
    est = torchlinreg.LinearRegression().fit(X, Y)
    path = torchlinreg.save(est, tmp_path / "m.safetensors", training={"rows": 80})
    back = torchlinreg.load(path)
    np.testing.assert_array_equal(back.coef_, est.coef_)
    np.testing.assert_array_equal(back.intercept_, est.intercept_)
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    assert list(back.feature_names_in_) == ["t", "r", "h"]
    assert back.training_ == {"rows": 80}
    assert describe(path)["target_names"] == ["apples", "oranges"]


def test_loaded_exact_model_keeps_absorbing_rows(tmp_path):
    # The least-squares state is in the file: more rows later equal one fit on all rows.
    X, Y = _data(120, seed=1)
    first = torchlinreg.LinearRegression().fit(X[:70], Y[:70])
    back = torchlinreg.load(torchlinreg.save(first, tmp_path / "m.safetensors"))
    back.partial_fit(X[70:], Y[70:])
    A = np.column_stack([np.ones(120), X.to_numpy()])
    coef = np.linalg.lstsq(A, Y.to_numpy(), rcond=None)[0]
    np.testing.assert_allclose(back.intercept_, coef[0], rtol=1e-10)
    np.testing.assert_allclose(back.coef_, coef[1:].T, rtol=1e-10, atol=1e-12)


def test_iterative_model_round_trips_with_its_loss_history(tmp_path):
    X, Y = _data()
    est = torchlinreg.LinearRegression(solver="adam", max_iter=7, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, Y)
    back = torchlinreg.load(torchlinreg.save(est, tmp_path / "m.safetensors"))
    assert (back.solver, back.n_iter_, back.loss_history_) == ("adam", 7, est.loss_history_)
    np.testing.assert_array_equal(back.predict(X), est.predict(X))


def test_ridge_and_one_dimensional_targets_come_back_as_they_were(tmp_path):
    X, Y = _data()
    est = torchlinreg.Ridge(alpha=3.0).fit(X.to_numpy(), Y["apples"].to_numpy())
    back = torchlinreg.load(torchlinreg.save(est, tmp_path / "r.safetensors"))
    assert type(back) is torchlinreg.Ridge and back.alpha == 3.0
    assert back.predict(X.to_numpy()).shape == (80,)
    assert back.intercept_ == est.intercept_


def test_unfitted_estimator_cannot_be_saved(tmp_path):
    with pytest.raises(torchlinreg.NotFittedError):
        torchlinreg.save(torchlinreg.LinearRegression(), tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()


def test_a_checkpoint_is_not_a_model(tmp_path):
    save_checkpoint(tmp_path / "c.ckpt", {"epoch": 3}, {"solver": "sgd"})
    with pytest.raises(torchlinreg.ModelFileError, match="torchlinreg-checkpoint"):
        torchlinreg.load(tmp_path / "c.ckpt")


def test_a_model_trained_on_a_gpu_predicts_where_there_is_none(tmp_path):
    X, Y = _data()
    est = torchlinreg.LinearRegression().fit(X, Y)
    est.set_params(device="cuda")  # as if trained with device="cuda"
    back = torchlinreg.load(torchlinreg.save(est, tmp_path / "gpu.safetensors"))
    expected_device = "cuda" if torch.cuda.is_available() else None
    assert back.device == expected_device
    np.testing.assert_allclose(np.asarray(back.predict(X)), est.linear_model_.predict(
        torch.as_tensor(X.to_numpy())).numpy(), rtol=1e-12)  # fmt: skip
