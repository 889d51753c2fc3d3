"""The `torchlinreg` command on real files: train -> predict -> evaluate -> summary.

Every run goes through ``torchlinreg.cli.app.run`` in this process (same code as the console
script, minus the interpreter start); the references are numpy, scikit-learn and the
library called directly.
"""

from __future__ import annotations

import io
import struct
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import torch
from rich.console import Console
from sklearn import linear_model
from sklearn import metrics as skm

import torchlinreg
from cli_helpers import FEATURES, TARGETS, cli, frame, read_csv_text, write
from torchlinreg.cli.output import ProgressBar
from torchlinreg.errors import ConvergenceWarning
from torchlinreg.iterative.callbacks import TrainState

# (solver, extra CLI options, the same settings as LinearRegression parameters)
SOLVERS = {
    "qr": ([], {}),
    "gram": ([], {}),
    "lbfgs": (["--epochs", "30", "--seed", "3"], {"max_iter": 30, "random_state": 3}),
    "sgd": (
        ["--epochs", "4", "--seed", "5", "--batch-size", "16"],
        {"max_iter": 4, "random_state": 5, "batch_size": 16},
    ),
    "adam": (["--epochs", "5", "--seed", "7"], {"max_iter": 5, "random_state": 7}),
}
CASES = [(kind, "qr") for kind in ("csv", "parquet", "csv.gz", "semicolon", "bom")] + [
    (kind, solver) for solver in ("gram", "lbfgs", "sgd", "adam") for kind in ("csv", "parquet")
]


def _suffix(kind: str) -> str:
    return {"parquet": ".parquet", "csv.gz": ".csv.gz"}.get(kind, ".csv")


def _python_fit(df: pd.DataFrame, solver: str, **params) -> torchlinreg.LinearRegression:
    est = torchlinreg.LinearRegression(solver=solver, **SOLVERS[solver][1], **params)
    # Row-major like the blocks the CLI reads: a column-major frame takes other BLAS paths,
    # whose last-bit differences iterative solvers grow to ~1e-9.
    X = np.ascontiguousarray(df[FEATURES].to_numpy())
    Y = np.ascontiguousarray(df[TARGETS].to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # few epochs on purpose
        return est.fit(X, Y)


def _lstsq_predictions(df: pd.DataFrame) -> np.ndarray:
    A = np.column_stack([np.ones(len(df)), df[FEATURES].to_numpy()])
    coef = np.linalg.lstsq(A, df[TARGETS].to_numpy(), rcond=None)[0]
    return A @ coef


@pytest.mark.parametrize(("kind", "solver"), CASES)
def test_train_predict_evaluate_round_trip(tmp_path, capsys, kind, solver):
    df = frame()
    data = write(df, tmp_path / f"train{_suffix(kind)}", kind)
    model = tmp_path / "model.safetensors"
    extra = SOLVERS[solver][0]
    targets = ["-t", "apples", "-t", "oranges", "--features", "a,b,c"]
    r = cli(capsys, "train", data, *targets, "--solver", solver, *extra, "-o", model, "-q")
    assert r.code == 0, r.err
    assert (r.out, model.exists()) == ("", True)

    # predict to stdout: one column per target, named after it, one row per input row
    r = cli(capsys, "predict", model, data)
    assert r.code == 0, r.err
    pred = read_csv_text(r.out)
    assert list(pred.columns) == TARGETS
    assert len(pred) == len(df)
    library = torchlinreg.load(model).predict(df[FEATURES])
    np.testing.assert_allclose(pred.to_numpy(), library, rtol=1e-12, atol=1e-12)
    python = _python_fit(df, solver).predict(df[FEATURES].to_numpy())
    np.testing.assert_allclose(pred.to_numpy(), python, rtol=1e-12, atol=1e-12)
    if solver in ("qr", "gram"):
        np.testing.assert_allclose(pred.to_numpy(), _lstsq_predictions(df), rtol=1e-9)

    # evaluate: the same numbers as scikit-learn's metrics on these predictions
    r = cli(capsys, "evaluate", model, data, "--json")
    assert r.code == 0, r.err
    report = r.json
    assert set(report) == {"targets", "rows", "weighted", "weights"}
    assert report["rows"] == len(df) and (report["weighted"], report["weights"]) == (False, None)
    assert list(report["targets"]) == TARGETS
    for j, name in enumerate(TARGETS):
        y, p = df[name].to_numpy(), pred.to_numpy()[:, j]
        got = report["targets"][name]
        assert set(got) == {"mse", "rmse", "mae", "r2"}
        assert got["mse"] == pytest.approx(skm.mean_squared_error(y, p), rel=1e-10)
        assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)), rel=1e-10)
        assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, p), rel=1e-10)
        assert got["r2"] == pytest.approx(skm.r2_score(y, p), rel=1e-10)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_predict_writes_csv_or_parquet_in_row_order(tmp_path, capsys, suffix):
    df = frame()
    data = write(df, tmp_path / "d.csv")
    model = tmp_path / "m.safetensors"
    assert cli(capsys, "train", data, "-t", "apples", "--features", "a,b,c", "-o", model).code == 0
    out = tmp_path / f"pred{suffix}"
    r = cli(capsys, "predict", model, data, "-o", out)
    assert (r.code, r.out, r.err) == (0, "", "")
    got = pd.read_parquet(out) if suffix == ".parquet" else read_csv_text(out.read_text())
    assert list(got.columns) == ["apples"]
    expected = torchlinreg.load(model).predict(np.ascontiguousarray(df[FEATURES]))
    # CSV floats are written as their shortest round-trip text: equal bit for bit
    np.testing.assert_array_equal(got["apples"].to_numpy(), expected)


def test_predict_matches_columns_by_name_not_position(tmp_path, capsys):
    df = frame()
    model = tmp_path / "m.safetensors"
    train = write(df, tmp_path / "train.csv")
    assert cli(capsys, "train", train, "-t", "apples", "-t", "oranges", "-o", model).code == 0
    shuffled = df[["oranges", "c", "name", "a", "w", "b"]].iloc[::-1]
    data = write(shuffled, tmp_path / "shuffled.parquet", "parquet")
    r = cli(capsys, "predict", model, data)
    assert r.code == 0, r.err
    X = np.ascontiguousarray(shuffled[["a", "b", "c", "w"]])
    expected = torchlinreg.load(model).predict(X)
    np.testing.assert_array_equal(read_csv_text(r.out).to_numpy(), expected)


def test_default_features_are_the_other_numeric_columns(tmp_path, capsys):
    df = frame()
    data = write(df, tmp_path / "d.csv")
    r = cli(capsys, "train", data, "-t", "apples", "--weights", "w", "-o", tmp_path / "m", "--json")
    assert r.code == 0, r.err
    # 'name' is text, 'apples' the target and 'w' the weights: none of them is a feature
    assert r.json["features"] == ["a", "b", "c", "oranges"]
    assert r.json["weights"] == "w"


def test_weights_no_intercept_and_alpha_match_scikit_learn(tmp_path, capsys):
    df = frame()
    data = write(df, tmp_path / "d.csv")
    X, Y, w = df[FEATURES].to_numpy(), df[TARGETS].to_numpy(), df["w"].to_numpy()
    runs = [
        (["--weights", "w"], linear_model.LinearRegression().fit(X, Y, sample_weight=w)),
        (["--no-intercept"], linear_model.LinearRegression(fit_intercept=False).fit(X, Y)),
        (["--alpha", "2.5"], linear_model.Ridge(alpha=2.5, solver="svd").fit(X, Y)),
        (
            ["--alpha", "4", "--weights", "w"],
            linear_model.Ridge(alpha=4.0, solver="svd").fit(X, Y, sample_weight=w),
        ),
    ]
    for options, reference in runs:
        model = tmp_path / "m.safetensors"
        r = cli(capsys, "train", data, "-t", "apples", "-t", "oranges", "--features", "a,b,c",
                *options, "-o", model, "-q")  # fmt: skip
        assert r.code == 0, (options, r.err)
        loaded = torchlinreg.load(model)
        np.testing.assert_allclose(loaded.coef_, reference.coef_, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(loaded.intercept_, reference.intercept_, rtol=1e-9, atol=1e-12)


def test_train_json_report_has_the_documented_shape(tmp_path, capsys):
    df = frame()
    data = write(df, tmp_path / "d.csv")
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", data, "-t", "apples", "--features", "a,b", "-o", model, "--json")
    assert r.code == 0, r.err
    rep = r.json
    assert rep["rows"] == len(df) and rep["solver"] == "qr"
    assert rep["features"] == ["a", "b"] and rep["targets"] == ["apples"]
    assert rep["seconds"] >= 0 and rep["model"] == str(model)
    p = torchlinreg.load(model).predict(df[["a", "b"]])
    y = df["apples"].to_numpy()
    assert rep["metrics"]["apples"]["r2"] == pytest.approx(skm.r2_score(y, p), rel=1e-9)
    assert rep["metrics"]["apples"]["mse"] == pytest.approx(skm.mean_squared_error(y, p), rel=1e-9)


def test_summary_shows_the_model(tmp_path, capsys):
    df = frame()
    data = write(df, tmp_path / "d.csv")
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", data, "-t", "apples", "-t", "oranges", "--features", "a,b,c",
            "--solver", "lbfgs", "--epochs", "20", "-o", model, "-q")  # fmt: skip
    assert r.code == 0, r.err
    est = torchlinreg.load(model)

    r = cli(capsys, "summary", model, "--json")
    assert r.code == 0, r.err
    s = r.json
    assert (s["features"], s["targets"], s["solver"]) == (FEATURES, TARGETS, "lbfgs")
    for j, t in enumerate(TARGETS):
        assert s["coefficients"][t]["intercept"] == est.intercept_[j]
        assert [s["coefficients"][t][f] for f in FEATURES] == list(est.coef_[j])
    assert s["training"]["rows"] == len(df) and s["training"]["seconds"] >= 0
    assert set(s["training"]["metrics"]) == set(TARGETS)

    r = cli(capsys, "summary", model)
    assert r.code == 0, r.err
    for text in [*FEATURES, *TARGETS, "intercept", "lbfgs", f"{len(df):,} rows", "r2"]:
        assert text in r.out, text
    assert f"{est.coef_[1, 2]:.10g}" in r.out


def test_quiet_prints_nothing_but_warnings(tmp_path, capsys):
    data = write(frame(), tmp_path / "d.csv")
    for solver in ("qr", "lbfgs"):
        r = cli(capsys, "train", data, "-t", "apples", "--solver", solver, "-o", tmp_path / "m",
                "-q")  # fmt: skip
        assert (r.code, r.out, r.err) == (0, "", "")
    # a warning is still news: one line on stderr, nothing on stdout
    r = cli(capsys, "train", data, "-t", "apples", "--solver", "sgd", "--epochs", "1",
            "-o", tmp_path / "m", "-q")  # fmt: skip
    assert (r.code, r.out) == (0, "")
    assert r.err.startswith("torchlinreg: warning: ") and r.err.count("\n") == 1


def test_text_report_names_rows_solver_and_model(tmp_path, capsys):
    data = write(frame(), tmp_path / "d.csv")
    deep = tmp_path / ("a_long_folder_name_" * 4)
    deep.mkdir()
    model = deep / "m.safetensors"  # longer than a line: still on one line
    r = cli(capsys, "train", data, "-t", "apples", "-o", model)
    assert r.code == 0, r.err
    assert "trained qr on 120 rows" in r.out and f"model saved to {model}\n" in r.out
    assert "\x1b[" not in r.out  # no colours or progress bar when stdout is not a terminal
    r = cli(capsys, "evaluate", model, data)
    assert r.code == 0 and "120 rows" in r.out and "rmse" in r.out


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize(("solver", "plots"), [("qr", 3), ("adam", 3)])
def test_plot_folder_gets_valid_pngs(tmp_path, capsys, solver, plots):
    data = write(frame(), tmp_path / "d.csv")
    folder = tmp_path / "plots" / "new"
    r = cli(capsys, "train", data, "-t", "apples", "-t", "oranges", "--solver", solver,
            "--epochs", "60", "-o", tmp_path / "m", "--plot", folder, "--json")  # fmt: skip
    assert r.code == 0, r.err
    # exact fits add R's four diagnostic panels, iterative ones the loss curve
    names = ["fit.png", "residuals.png"] + (["loss.png"] if solver == "adam" else [])
    names += ["diagnostics.png"] if solver == "qr" else []
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)
    assert len(r.json["plots"]) == plots
    import matplotlib.image

    for name in names:
        w, h = _png_size(folder / name)
        assert w > 100 and h > 100
        assert matplotlib.image.imread(folder / name).shape[:2] == (h, w)


def _state(epoch: int, loss: float) -> TrainState:
    return TrainState(epoch=epoch, loss=loss, loss_history=[loss], max_iter=10)


def test_progress_bar_renders_on_a_terminal():
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    bar = ProgressBar(enabled=True, console=console)
    bar.on_train_begin(_state(0, 2.0))
    for epoch in range(1, 11):
        bar.on_epoch_end(_state(epoch, 1.0 / epoch))
    bar.on_train_end(_state(10, 0.1))
    text = buffer.getvalue()
    assert "training" in text and "10/10" in text and "loss 0.1" in text


def test_progress_bar_is_off_when_stdout_is_not_a_terminal(capsys):
    bar = ProgressBar()
    assert bar.enabled is False
    bar.on_train_begin(_state(0, 2.0))
    bar.on_epoch_end(_state(1, 1.0))
    bar.on_train_end(_state(1, 1.0))
    assert capsys.readouterr() == ("", "")


def test_device_option_is_checked(tmp_path, capsys):
    data = write(frame(), tmp_path / "d.csv")
    r = cli(capsys, "train", data, "-t", "apples", "--device", "tpu", "-o", tmp_path / "m")
    r.assert_one_error_line(2, "tpu", "--help")
    if not torch.cuda.is_available():
        r = cli(capsys, "train", data, "-t", "apples", "--device", "cuda", "-o", tmp_path / "m")
        r.assert_one_error_line(2, "CUDA is not available")


@pytest.mark.parametrize("name", ["tab", "\\t", "\t"])
def test_delimiter_can_be_named(tmp_path, capsys, name):
    df = frame(40)
    data = tmp_path / "d.txt"
    data.write_text(df.to_csv(index=False, sep="\t", float_format=lambda v: repr(float(v))))
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", data, "-t", "apples", "--features", "a,b,c", "--delimiter", name,
            "-o", model, "-q")  # fmt: skip
    assert r.code == 0, r.err
    A = np.column_stack([np.ones(40), df[FEATURES].to_numpy()])
    coef = np.linalg.lstsq(A, df["apples"].to_numpy(), rcond=None)[0]
    np.testing.assert_allclose(torchlinreg.load(model).coef_, coef[1:], rtol=1e-10)


def test_small_blocks_give_the_same_model_predictions_and_metrics(tmp_path, capsys):
    # Files are read in blocks: the exact state absorbs them one by one, predictions come
    # back in row order, metrics add up across blocks.
    df = frame(100)
    data = write(df, tmp_path / "d.csv")
    opts = ["-t", "apples", "-t", "oranges", "--features", "a,b,c"]
    one, many = tmp_path / "one.safetensors", tmp_path / "many.safetensors"
    assert cli(capsys, "train", data, *opts, "-o", one).code == 0
    assert cli(capsys, "train", data, *opts, "--block-rows", "7", "-o", many).code == 0
    a, b = torchlinreg.load(one), torchlinreg.load(many)
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(b.intercept_, a.intercept_, rtol=1e-12)
    whole = read_csv_text(cli(capsys, "predict", many, data).out)
    blocked = read_csv_text(cli(capsys, "predict", many, data, "--block-rows", "9").out)
    # Same rows in the same order; a BLAS may round a 9-row product differently from a
    # 100-row one in the last bit, so values agree to a few ulp, not byte for byte.
    assert list(blocked.columns) == list(whole.columns)
    np.testing.assert_allclose(blocked.to_numpy(), whole.to_numpy(), rtol=1e-14, atol=0)
    e1 = cli(capsys, "evaluate", many, data, "--json").json
    e2 = cli(capsys, "evaluate", many, data, "--json", "--block-rows", "11").json
    for t in TARGETS:
        for key in ("mse", "rmse", "mae", "r2"):
            assert e2["targets"][t][key] == pytest.approx(e1["targets"][t][key], rel=1e-12)


def test_one_target_from_the_command_is_a_1d_target(tmp_path, capsys):
    # scikit-learn's shapes: one target column gives coef_ (d,), a scalar intercept_ and
    # predictions (n,); several give (k, d), (k,) and (n, k), for every solver
    df = frame(60)
    data = write(df, tmp_path / "d.csv")
    for solver in ("qr", "sgd"):
        one, two = tmp_path / f"one-{solver}.safetensors", tmp_path / f"two-{solver}.safetensors"
        opts = ["--features", "a,b,c", "--solver", solver, "--seed", "0", "-q"]
        assert cli(capsys, "train", data, "-t", "apples", *opts, "-o", one).code == 0
        assert (
            cli(capsys, "train", data, "-t", "apples", "-t", "oranges", *opts, "-o", two).code == 0
        )
        m1, m2 = torchlinreg.load(one), torchlinreg.load(two)
        X = df[FEATURES].to_numpy()
        assert (
            m1.coef_.shape == (3,) and np.ndim(m1.intercept_) == 0 and m1.predict(X).shape == (60,)
        )
        assert m2.coef_.shape == (2, 3) and m2.intercept_.shape == (2,)
        assert m2.predict(X).shape == (60, 2)
        if solver == "qr":
            np.testing.assert_allclose(m1.coef_, m2.coef_[0], rtol=1e-12)
            assert m1.results_.params.shape == (4,)


def test_summary_json_names_two_ranks_apart(tmp_path, capsys):
    # one key "rank" held scikit-learn's rank_ (1 for a line) and statistics.rank
    # statsmodels' (2, the constant counted)
    df = frame()
    data = write(df, tmp_path / "d.csv")
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", data, "-t", "apples", "--features", "a,b", "-o", model, "-q")
    assert r.code == 0, r.err
    s = cli(capsys, "summary", model, "--json").json
    assert "rank" not in s
    ref = sm.OLS(df["apples"], sm.add_constant(df[["a", "b"]])).fit()
    assert s["statistics"]["rank"] == ref.df_model + 1 == 3
    assert s["feature_rank"] == torchlinreg.load(model).rank_ == 2
