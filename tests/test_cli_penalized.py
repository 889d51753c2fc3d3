"""`train --solver lasso|elasticnet [--cv K --alphas N] [--plot DIR]` (issue 15).

Invariants:
1. The saved lasso/elastic net predicts as scikit-learn's model fitted on the same rows.
2. --cv picks the alpha that LassoCV picks from the same hashed folds (one pass), and the
   saved model is the plain lasso at that alpha.
3. --plot writes the coefficient path and (with --cv) the CV curve.
4. --cv and --l1-ratio with a least-squares solver are a usage error.
"""

from __future__ import annotations

import json

import numpy as np
import sklearn.linear_model as sk

import torchlinreg
from cli_helpers import cli, frame, read_csv_text, write
from torchlinreg.estimator.penalized_cv import LassoCV

FEATURES = ["a", "b", "c"]


def test_lasso_and_elastic_net_models_predict_as_scikit_learn(tmp_path, capsys):
    df = frame(300)
    data = write(df, tmp_path / "train.csv")
    X, y = df[FEATURES].to_numpy(), df["apples"].to_numpy()
    for solver, extra, ref in (
        ("lasso", [], sk.Lasso(alpha=0.05, tol=1e-10, max_iter=100_000)),
        ("elasticnet", ["--l1-ratio", "0.3"], sk.ElasticNet(alpha=0.05, l1_ratio=0.3, tol=1e-10)),
    ):
        model = tmp_path / f"{solver}.safetensors"
        args = ["train", data, "-t", "apples", "--features", "a,b,c", "--solver", solver]
        r = cli(capsys, *args, "--alpha", "0.05", *extra, "-o", model, "-q")
        assert r.code == 0, r.err
        r = cli(capsys, "predict", model, data)
        pred = read_csv_text(r.out)["apples"].to_numpy()
        ref.fit(X, y)
        np.testing.assert_allclose(pred, ref.predict(X), rtol=1e-6)  # 1.
        assert type(torchlinreg.load(model)).__name__ == {"lasso": "Lasso"}.get(
            solver, "ElasticNet"
        )


def test_cv_picks_lasso_cv_alpha_and_plots(tmp_path, capsys):
    df = frame(400)
    data = write(df, tmp_path / "train.csv")
    model = tmp_path / "m.safetensors"
    args = ["train", data, "-t", "apples", "--features", "a,b,c", "--solver", "lasso"]
    r = cli(capsys, *args, "--cv", "4", "--alphas", "20", "--seed", "7", "-o", model, "--json",
            "--plot", tmp_path / "plots")  # fmt: skip
    assert r.code == 0, r.err
    report = json.loads(r.out)
    X, y = df[FEATURES].to_numpy(), df["apples"].to_numpy()
    ref = LassoCV(cv=4, alphas=20, random_state=7).fit_blocks([(X, y)])
    assert report["penalty"]["alpha"] == ref.alpha_  # 2.
    assert report["penalty"]["cv_folds"] == 4
    saved = torchlinreg.load(model)
    assert type(saved).__name__ == "Lasso" and saved.alpha == ref.alpha_
    np.testing.assert_allclose(saved.predict(X), ref.predict(X), rtol=1e-12)
    names = sorted(p.rsplit("/", 1)[-1] for p in report["plots"])
    assert names == ["cv.png", "fit.png", "path.png", "residuals.png"]  # 3.
    assert all((tmp_path / "plots" / n).stat().st_size > 1000 for n in names)


def test_cv_with_a_least_squares_solver_is_a_usage_error(tmp_path, capsys):
    data = write(frame(50), tmp_path / "train.csv")
    r = cli(capsys, "train", data, "-t", "apples", "--cv", "5", "-o", tmp_path / "m.safetensors")
    assert r.code == 2 and "--cv and --l1-ratio are for" in r.err  # 4.


def test_ols_inference_options_are_refused_for_penalized_fits(tmp_path, capsys):
    # a lasso's coefficients have no OLS covariance: --cov-type and --cluster must not print
    # (or store) one as if they had
    data = write(frame(100), tmp_path / "train.csv")
    model = tmp_path / "m.safetensors"
    base = ["train", data, "-t", "apples", "--features", "a,b", "--solver", "lasso"]
    for extra in (["--cov-type", "HC3"], ["--cluster", "c"]):
        r = cli(capsys, *base, "--alpha", "0.05", *extra, "-o", model)
        r.assert_one_error_line(2, "exact solver")
    assert not model.exists()


def test_an_update_of_a_cv_model_says_alpha_was_chosen_on_the_first_rows(tmp_path, capsys):
    # the record went on quoting the first rows' best CV error as the updated model's
    df = frame(400)
    first, more = write(df[:200], tmp_path / "a.csv"), write(df[200:], tmp_path / "b.csv")
    model, updated = tmp_path / "m.safetensors", tmp_path / "u.safetensors"
    r = cli(capsys, "train", first, "-t", "apples", "--features", "a,b,c", "--solver", "lasso",
            "--cv", "4", "-o", model, "-q")  # fmt: skip
    assert r.code == 0, r.err
    r = cli(capsys, "train", "--update", model, more, "-o", updated, "-q")
    assert r.code == 0, r.err
    assert "chosen by 4-fold cross-validation on the first 200 rows" in r.err, r.err
    penalty = cli(capsys, "summary", updated, "--json").json["training"]["penalty"]
    assert "cv_best_mse" not in penalty and penalty["cv_rows"] == 200
    X, y = df[FEATURES].to_numpy(), df["apples"].to_numpy()
    ref = sk.Lasso(alpha=penalty["alpha"], tol=1e-12, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(torchlinreg.load(updated).coef_, ref.coef_, rtol=1e-7, atol=1e-9)
