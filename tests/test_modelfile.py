"""torchlinreg.save / torchlinreg.load: a fitted estimator as one .safetensors file."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import torchlinreg
from torchlinreg.errors import ConvergenceWarning
from torchlinreg.estimator.modelfile import describe
from torchlinreg.iterative.checkpoint import save_checkpoint

sys.path.insert(0, str(Path(__file__).parent))


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


@pytest.mark.parametrize("name", ["Longley", "Filip", "Wampler4", "NoInt1"])
def test_every_honest_fit_of_an_ill_conditioned_problem_loads(tmp_path, name):
    # load() checks the weights against the stored state; refined coefficients (from the
    # rows) on NIST's hardest problems, float32 inputs and states, ridge and no-intercept
    # fits must all pass it (tolerance 1e-12 + eps cond^2 of the targets' sum of squares)
    import nist

    data = nist.load(name)
    X, y = data.design(), data.y
    path = tmp_path / "m.safetensors"
    for params in [{}, {"solver": "gram"}, {"alpha": 0.5}, {"dtype": "float32"},
                   {"fit_intercept": False}]:  # fmt: skip
        for Xin in (X, X.astype(np.float32)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est = torchlinreg.LinearRegression(**params).fit(Xin, y)
            torchlinreg.save(est, path)
            back = torchlinreg.load(path)
            assert torch.equal(back.model_.weight, est.model_.weight)


def test_an_edited_coefficient_is_refused_on_real_data(tmp_path):
    # diabetes (scikit-learn's copy): a 0.1% edit of one coefficient moves predictions by
    # far less than the noise, and is still caught; an edit within rounding is not
    from sklearn.datasets import load_diabetes

    from torchlinreg.files.io import load_tensors, save_tensors

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    path = tmp_path / "m.safetensors"
    torchlinreg.save(torchlinreg.LinearRegression().fit(X, y), path)
    tensors, meta = load_tensors(path)
    for j, factor, refused in [(2, 1.001, True), (7, 1 + 1e-15, False), (0, 1.001, True)]:
        edited = {**tensors, "weight": tensors["weight"].clone()}
        edited["weight"][0, j] *= factor
        save_tensors(path, edited, meta)
        if refused:
            with pytest.raises(torchlinreg.ModelFileError, match="weights disagree"):
                torchlinreg.load(path)
        else:
            torchlinreg.load(path)


@pytest.mark.parametrize("version", [None, "2", 3.5])
def test_a_state_record_with_a_bad_version_is_refused_in_one_line(tmp_path, version):
    # Found by tests/test_hostile_files.py's forged records: version None raised a TypeError.
    from torchlinreg.files.io import load_tensors, save_tensors

    X = np.random.default_rng(0).normal(size=(20, 2))
    path = tmp_path / "m.safetensors"
    torchlinreg.save(torchlinreg.LinearRegression().fit(X, X[:, 0]), path)
    tensors, meta = load_tensors(str(path))
    meta["state"]["version"] = version
    save_tensors(str(tmp_path / "bad.safetensors"), tensors, meta)
    with pytest.raises(torchlinreg.ModelFileError, match="version"):
        torchlinreg.load(tmp_path / "bad.safetensors")


@pytest.mark.parametrize("solver", ["gram", "qr"])
def test_a_loaded_float32_model_states_its_saved_coefficients(tmp_path, solver):
    # the loaded state's own solve: params 8.3e-5 from the model's coef_ (gram, diabetes),
    # where the saved coefficients, refined from the rows, are 2e-7 from statsmodels'
    import statsmodels.api as sm
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    ref = sm.OLS(y, sm.add_constant(X)).fit().params
    m = torchlinreg.LinearRegression(solver=solver, dtype=torch.float32).fit(X, y)
    torchlinreg.save(m, tmp_path / "m.safetensors")
    loaded = torchlinreg.load(tmp_path / "m.safetensors")
    params = np.asarray(loaded.results_.params)
    np.testing.assert_allclose(params, ref, rtol=1e-6)
    np.testing.assert_allclose(params, np.r_[loaded.intercept_, loaded.coef_], rtol=1e-7)
