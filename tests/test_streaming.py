"""Streaming: exact fits from files and block iterables, --update, streamed iterative fits.

Oracles: numpy.linalg.lstsq on all rows in memory, scikit-learn's metrics, and the peak RSS
of fresh subprocesses (memory must not grow with the file).
"""

import json
import os
import re
import sqlite3
import subprocess
import sys
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import torch

import torchlinreg as tlr
from torchlinreg.cli.app import run
from torchlinreg.datasets import make_regression
from torchlinreg.errors import DataError
from torchlinreg.estimator.modelfile import describe, load, save
from torchlinreg.files.blocksources import TableBlocks, prefetch
from torchlinreg.files.tables import open_table
from torchlinreg.iterative.streaming import ShuffleBufferBatches
from torchlinreg.stats.metrics import metrics_from_state

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _lstsq(X, y, w=None):
    """Intercept and coefficients by numpy lstsq on ``[1 | X]`` (rows scaled by sqrt(w))."""
    A = np.column_stack([np.ones(len(X)), X])
    if w is not None:
        s = np.sqrt(w)
        A, y = A * s[:, None], y * (s if y.ndim == 1 else s[:, None])
    sol = np.linalg.lstsq(A, y, rcond=None)[0]
    return sol[0], sol[1:].T


def _table(X, y, w=None) -> pa.Table:
    cols = {f"x{j}": X[:, j] for j in range(X.shape[1])}
    cols["y"] = y
    if w is not None:
        cols["w"] = w
    return pa.table(cols)


def _write_parquet(path, n, d, *, seed=0, row_group=32_768):
    """``n x d`` features and a target, written one row group at a time."""
    rng = np.random.default_rng(seed)
    coef = rng.normal(size=d)
    with pq.ParquetWriter(path, _table(np.zeros((1, d)), np.zeros(1)).schema) as writer:
        for lo in range(0, n, row_group):
            m = min(row_group, n - lo)
            X = rng.standard_normal((m, d)) * 3.0 + 10.0
            y = X @ coef + 2.0 + rng.standard_normal(m)
            writer.write_table(_table(X, y), row_group_size=m)


def _train(*args) -> None:
    assert run(["train", *map(str, args), "-q"]) == 0


def _coefs(path):
    m = load(path)
    return np.concatenate([np.atleast_1d(m.intercept_), np.ravel(m.coef_)])


# ---------------------------------------------------------------- exact fits from files


def _peak_rss_mb(args) -> float:
    """Peak RSS of a fresh ``python -m torchlinreg`` process (its own, from wait4)."""
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen(
        [sys.executable, "-m", "torchlinreg", *map(str, args)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, proc.stderr.read().decode()
    proc.stderr.close()
    return usage.ru_maxrss / 1024


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_streamed_exact_fit_memory_is_flat_in_the_file_size(tmp_path, fmt):
    small, large = tmp_path / f"small.{fmt}", tmp_path / f"large.{fmt}"
    _write_parquet(small, 250_000, 10, seed=1)
    _write_parquet(large, 1_000_000, 10, seed=2)  # 88 MB of values, 4x the small one
    if fmt == "csv":
        for path in (small, large):
            pacsv.write_csv(pq.read_table(path), path)
    peaks = [
        _peak_rss_mb(["train", path, "-t", "y", "-o", tmp_path / f"{path.stem}.safetensors"])
        for path in (small, large)
    ]
    # 1) Holding the rows (or pyarrow keeping what it read) would add 66 MB or more;
    # 2) the answer is the in-memory one.
    assert peaks[1] - peaks[0] < 25, peaks
    t = pq.read_table(large) if fmt == "parquet" else pacsv.read_csv(large)
    X = np.column_stack([t.column(f"x{j}").to_numpy() for j in range(10)])
    b, W = _lstsq(X, t.column("y").to_numpy())
    assert _rel(_coefs(tmp_path / "large.safetensors"), np.concatenate([[b], W])) < 1e-9


def test_train_on_a_folder_or_glob_equals_the_concatenated_file(tmp_path):
    X, y, _, _ = make_regression(3000, 4, 1, seed=5)
    w = np.random.default_rng(2).uniform(0.5, 2.0, 3000)
    parts = tmp_path / "parts"
    parts.mkdir()
    for i, lo in enumerate(range(0, 3000, 1000)):
        pacsv.write_csv(
            _table(X[lo : lo + 1000], y[lo : lo + 1000], w[lo : lo + 1000]), parts / f"part{i}.csv"
        )
    (parts / "README.txt").write_text("not data")
    pacsv.write_csv(_table(X, y, w), tmp_path / "all.csv")
    common = ["-t", "y", "--weights", "w"]
    _train(tmp_path / "all.csv", *common, "-o", tmp_path / "all.safetensors")
    _train(parts, *common, "-o", tmp_path / "folder.safetensors")
    _train(str(parts / "part*.csv"), *common, "-o", tmp_path / "glob.safetensors")
    b, W = _lstsq(X, y, w)
    want = np.concatenate([[b], W])
    for name in ("all", "folder", "glob"):
        assert _rel(_coefs(tmp_path / f"{name}.safetensors"), want) < 1e-10, name
    assert describe(tmp_path / "folder.safetensors")["training"]["rows"] == 3000


# ---------------------------------------------------------------- fit_blocks sources


@pytest.mark.parametrize("kind", ["numpy", "torch", "pandas"])
def test_fit_blocks_takes_a_generator_of_blocks(kind):
    X, y, _, _ = make_regression(2000, 5, 2, seed=11)
    w = np.random.default_rng(4).uniform(0.1, 3.0, 2000)

    def blocks():
        for lo in range(0, 2000, 300):
            sl = slice(lo, lo + 300)
            if kind == "torch":
                yield torch.from_numpy(X[sl]), torch.from_numpy(y[sl]), torch.from_numpy(w[sl])
            elif kind == "pandas":
                pd = pytest.importorskip("pandas")
                frame = pd.DataFrame(X[sl], columns=[f"f{j}" for j in range(5)])
                yield frame, pd.DataFrame(y[sl], columns=["a", "b"]), pd.Series(w[sl])
            else:
                yield X[sl], y[sl], w[sl]

    model = tlr.LinearRegression().fit_blocks(blocks())
    b, W = _lstsq(X, y, w)
    assert _rel(np.asarray(model.coef_), W) < 1e-10
    assert _rel(np.asarray(model.intercept_), b) < 1e-10
    if kind == "pandas":
        assert list(model.feature_names_in_) == [f"f{j}" for j in range(5)]


def test_fit_blocks_streams_from_a_database_cursor():
    X, y, _, _ = make_regression(1500, 3, 1, seed=3)
    db = sqlite3.connect(":memory:")
    db.execute("create table t (a real, b real, c real, y real)")
    db.executemany("insert into t values (?, ?, ?, ?)", np.column_stack([X, y]).tolist())
    cursor = db.execute("select a, b, c, y from t order by rowid")

    def blocks(cursor, size=256):
        while rows := cursor.fetchmany(size):
            arr = np.asarray(rows, dtype=np.float64)
            yield arr[:, :3], arr[:, 3]

    model = tlr.LinearRegression().fit_blocks(blocks(cursor), feature_names=["a", "b", "c"])
    b, W = _lstsq(X, y)
    assert _rel(model.coef_, W[:, 0] if W.ndim == 2 else W) < 1e-10
    assert abs(model.intercept_ - b) < 1e-10 * max(1.0, abs(b))
    assert list(model.feature_names_in_) == ["a", "b", "c"]
    assert model.state_.n_samples == 1500


def test_fit_blocks_with_a_factory_calls_it_once_for_exact_solvers():
    X, y, _, _ = make_regression(500, 2, 1, seed=1)
    calls = []

    def factory():
        calls.append(1)
        return ((X[lo : lo + 100], y[lo : lo + 100]) for lo in range(0, 500, 100))

    model = tlr.LinearRegression(solver="gram").fit_blocks(factory)
    assert len(calls) == 1
    assert _rel(model.coef_, _lstsq(X, y)[1]) < 1e-9


def test_partial_fit_blocks_on_a_fitted_model_equals_one_fit():
    X, y, _, _ = make_regression(1200, 4, 2, seed=9)
    whole = tlr.LinearRegression().fit(X, y)
    model = tlr.LinearRegression().fit(X[:500], y[:500])
    model.partial_fit_blocks((X[lo : lo + 100], y[lo : lo + 100]) for lo in range(500, 1200, 100))
    assert _rel(model.coef_, whole.coef_) < 1e-10
    assert _rel(model.intercept_, whole.intercept_) < 1e-10
    assert model.state_.n_samples == 1200


# ---------------------------------------------------------------- train --update


def _csv_parts(tmp_path, *, weights=True):
    """a.csv (1000 rows) + b.csv (1400 rows) = ab.csv, columns x0..x3, y1, y2[, w]."""
    X, y, _, _ = make_regression(2400, 4, 2, seed=21)
    w = np.random.default_rng(8).uniform(0.2, 2.0, 2400) if weights else None
    for name, sl in (("a", slice(0, 1000)), ("b", slice(1000, 2400)), ("ab", slice(None))):
        cols = {f"x{j}": X[sl, j] for j in range(4)}
        cols.update(y1=y[sl, 0], y2=y[sl, 1])
        if weights:
            cols["w"] = w[sl]
        pacsv.write_csv(pa.table(cols), tmp_path / f"{name}.csv")
    return X, y, w


@pytest.mark.parametrize("solver", ["qr", "gram"])
def test_update_with_new_rows_equals_training_on_all_rows(tmp_path, solver):
    X, y, w = _csv_parts(tmp_path)
    opts = ["-t", "y1", "-t", "y2", "--weights", "w", "--solver", solver]
    _train(tmp_path / "a.csv", *opts, "-o", tmp_path / "a.safetensors")
    _train(tmp_path / "ab.csv", *opts, "-o", tmp_path / "ab.safetensors")
    # 1) into a new file with -o; 2) over the model itself without it.
    _train(
        tmp_path / "b.csv", "--update", tmp_path / "a.safetensors", "-o", tmp_path / "u.safetensors"
    )
    _train(tmp_path / "b.csv", "--update", tmp_path / "a.safetensors")
    b, W = _lstsq(X, y, w)
    want = np.concatenate([b, W.ravel()])
    for name in ("ab", "u", "a"):
        got = _coefs(tmp_path / f"{name}.safetensors")
        assert _rel(got, _coefs(tmp_path / "ab.safetensors")) < 1e-10, name
        assert _rel(got, want) < 1e-9, name
    training = describe(tmp_path / "a.safetensors")["training"]
    assert training["rows"] == 2400
    assert [u["rows"] for u in training["updates"]] == [1400]
    full = describe(tmp_path / "ab.safetensors")["training"]["metrics"]
    for target in ("y1", "y2"):
        assert training["metrics"][target]["r2"] == pytest.approx(full[target]["r2"], rel=1e-10)


def test_update_of_an_iterative_model_is_refused_with_the_reason(tmp_path, capsys):
    X, y, _ = _csv_parts(tmp_path, weights=False)
    model = tmp_path / "sgd.safetensors"
    sgd = tlr.LinearRegression(solver="sgd", max_iter=2, tol=None).fit(X[:1000], y[:1000])
    save(sgd, model)
    before = model.read_bytes()
    assert run(["train", str(tmp_path / "b.csv"), "--update", str(model)]) == 2
    err = capsys.readouterr().err
    assert "iterative solver 'sgd'" in err and "exact solver" in err
    assert err.count("\n") == 1
    assert model.read_bytes() == before


def test_update_with_other_columns_is_a_clean_error(tmp_path, capsys):
    _csv_parts(tmp_path, weights=False)
    model = tmp_path / "a.safetensors"
    _train(tmp_path / "a.csv", "-t", "y1", "--features", "x0,x1", "-o", model)
    pacsv.write_csv(pa.table({"x0": [1.0, 2.0], "y1": [3.0, 4.0]}), tmp_path / "c.csv")
    assert run(["train", str(tmp_path / "c.csv"), "--update", str(model)]) == 2
    assert "lacks column(s) ['x1']" in capsys.readouterr().err
    assert run(["train", str(tmp_path / "b.csv"), "--update", str(model), "-t", "y2"]) == 2
    assert "--target" in capsys.readouterr().err
    assert run(["train", str(tmp_path / "b.csv"), "--update", str(model), "--solver", "gram"]) == 2
    assert "--solver 'qr'" in capsys.readouterr().err
    missing = tmp_path / "none.safetensors"
    assert run(["train", str(tmp_path / "b.csv"), "--update", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "none.safetensors" in err and err.count("\n") == 1


# ---------------------------------------------------------------- streamed iterative fits


def test_shuffle_buffer_yields_every_row_once_in_a_fresh_order_each_epoch():
    rows = torch.arange(1000, dtype=torch.float64)[:, None]
    blocks = [(rows[lo : lo + 150], rows[lo : lo + 150], None) for lo in range(0, 1000, 150)]
    src = ShuffleBufferBatches(
        lambda: iter(blocks), lambda b: b, n_rows=1000, batch_size=64, buffer_rows=300
    )
    g = torch.Generator().manual_seed(0)
    orders = []
    for _ in range(2):
        batches = list(src.epoch(g))
        # 1) all batches full but the last; 2) each row exactly once; 3) rows mixed.
        assert all(len(b[0]) == 64 for b in batches[:-1]) and len(batches[-1][0]) <= 64
        seen = torch.cat([b[0][:, 0] for b in batches])
        assert torch.equal(seen.sort().values, rows[:, 0])
        assert not torch.equal(seen, rows[:, 0])
        orders.append(seen)
    assert not torch.equal(orders[0], orders[1])
    again = torch.cat([b[0][:, 0] for b in src.epoch(torch.Generator().manual_seed(0))])
    assert torch.equal(again, orders[0])
    assert torch.equal(torch.cat([b[0] for b in src.eval_batches()]), rows)


def test_table_blocks_permute_row_groups_with_the_generator(tmp_path):
    path = tmp_path / "d.parquet"
    _write_parquet(path, 10_000, 2, row_group=1000)
    blocks = TableBlocks(open_table(path), ["x0", "x1"], ["y"], block_rows=400)
    in_order = torch.cat([b.X for b in blocks()])
    assert blocks.n_rows == 10_000 and len(blocks.units()) == 10
    firsts = [[b.first_row for b in blocks(torch.Generator().manual_seed(s))] for s in (1, 2)]
    assert firsts[0] != firsts[1]
    shuffled = list(blocks(torch.Generator().manual_seed(1)))
    rows = torch.cat([b.X for b in shuffled])
    starts = torch.tensor([b.first_row - 1 for b in shuffled])
    # 1) each block's rows are the file's rows at its first_row; 2) all rows, once each.
    for b, s in zip(shuffled, starts.tolist(), strict=True):
        assert torch.equal(b.X, in_order[s : s + b.n_rows])
    assert rows.shape == in_order.shape
    assert torch.equal(rows[:, 0].sort().values, in_order[:, 0].sort().values)


@pytest.fixture(scope="module")
def sgd_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sgd") / "train.parquet"
    X, y, _, _ = make_regression(20_000, 5, 1, noise=1.0, seed=17)
    w = np.random.default_rng(5).uniform(0.5, 2.0, 20_000)
    pq.write_table(_table(X, y, w), path, row_group_size=2500)
    return path, X, y, w


def test_streamed_sgd_converges_to_the_exact_r2_and_repeats_for_a_seed(sgd_file):
    path, X, y, w = sgd_file
    from sklearn.metrics import r2_score

    blocks = TableBlocks(open_table(path), [f"x{j}" for j in range(5)], ["y"], "w", block_rows=1000)
    exact = tlr.LinearRegression().fit(X, y, w)
    exact_r2 = exact.score(X, y, w)
    fits = [
        tlr.LinearRegression(solver="sgd", random_state=s, max_iter=30).fit_blocks(
            blocks, buffer_rows=5000
        )
        for s in (0, 0, 1)
    ]
    r2 = r2_score(y, fits[0].predict(X), sample_weight=w)
    assert abs(r2 - exact_r2) < 1e-3
    assert np.array_equal(fits[0].coef_, fits[1].coef_)
    assert not np.array_equal(fits[0].coef_, fits[2].coef_)
    # The metrics from the first pass's moments are those of the predictions.
    metrics = fits[0].state_metrics()
    assert float(metrics["r2"][0]) == pytest.approx(r2, rel=1e-10)


def test_state_metrics_score_any_coefficients_exactly():
    from sklearn.metrics import mean_squared_error, r2_score

    X, y, _, _ = make_regression(800, 3, 2, seed=2)
    w = np.random.default_rng(0).uniform(0.1, 2.0, 800)
    state = tlr.LinearRegression(solver="gram").fit(X, y, w).state_
    coef = torch.tensor(np.random.default_rng(1).normal(size=(2, 3)))
    bias = torch.tensor([0.3, -2.0], dtype=torch.float64)
    pred = X @ coef.numpy().T + bias.numpy()
    got = metrics_from_state(state, coef, bias)
    want_mse = mean_squared_error(y, pred, sample_weight=w, multioutput="raw_values")
    want_r2 = r2_score(y, pred, sample_weight=w, multioutput="raw_values")
    assert _rel(got["mse"].numpy(), want_mse) < 1e-10
    assert _rel(got["r2"].numpy(), want_r2) < 1e-10


def test_streamed_sgd_skips_blocks_whose_weights_are_all_zero():
    X, y, _, _ = make_regression(6000, 3, 1, noise=1.0, seed=6)
    w = np.ones(6000)
    w[2000:3000] = 0.0  # one whole block adds nothing (and alone would be refused)
    blocks = [
        (X[lo : lo + 1000], y[lo : lo + 1000], w[lo : lo + 1000]) for lo in range(0, 6000, 1000)
    ]
    model = tlr.LinearRegression(solver="sgd", random_state=0, max_iter=40)
    model.fit_blocks(lambda: iter(blocks), buffer_rows=2000)
    exact_r2 = tlr.LinearRegression().fit(X, y, w).score(X, y, w)
    assert abs(model.score(X, y, w) - exact_r2) < 1e-3


def test_streamed_fit_refuses_full_batch_solvers():
    X, y, _, _ = make_regression(100, 2, 1, seed=0)
    with pytest.raises(DataError, match="mini-batch solver"):
        tlr.LinearRegression(solver="gd").fit_blocks(lambda: iter([(X, y)]))


def test_train_stream_flag_fits_sgd_from_the_file_in_blocks(sgd_file, tmp_path, capsys):
    path, X, y, w = sgd_file
    args = ["-t", "y", "--weights", "w", "--solver", "sgd", "--seed", "3", "--epochs", "20"]
    out = tmp_path / "s.safetensors"
    assert (
        run(
            [
                "train",
                str(path),
                *args,
                "--stream",
                "--buffer-rows",
                "5000",
                "-o",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    exact_r2 = tlr.LinearRegression().fit(X, y, w).score(X, y, w)
    model = load(out)
    assert abs(model.score(X, y, w) - exact_r2) < 1e-3
    assert report["rows"] == 20_000
    assert report["metrics"]["y"]["r2"] == pytest.approx(model.score(X, y, w), rel=1e-9)


def test_streamed_sgd_resumed_from_a_checkpoint_equals_an_uninterrupted_run(sgd_file, tmp_path):
    path = sgd_file[0]
    args = ["train", str(path), "-t", "y", "--solver", "sgd", "--seed", "4", "--stream"]
    # A small step: four epochs do not reach the gap that stops sgd, so the run does not end
    # before the checkpoint.
    args += ["--buffer-rows", "4000", "--batch-size", "512", "--lr", "1e-4", "-q"]
    ck = tmp_path / "ck.safetensors"
    with warnings.catch_warnings():
        # Too few epochs to converge: the ConvergenceWarning is expected and printed.
        warnings.simplefilter("default")
        assert run([*args, "--epochs", "4", "-o", str(tmp_path / "full.safetensors")]) == 0
        assert (
            run(
                [
                    *args,
                    "--epochs",
                    "2",
                    "--checkpoint",
                    str(ck),
                    "-o",
                    str(tmp_path / "half.safetensors"),
                ]
            )
            == 0
        )
        assert (
            run(
                [
                    *args,
                    "--epochs",
                    "4",
                    "--resume",
                    str(ck),
                    "-o",
                    str(tmp_path / "resumed.safetensors"),
                ]
            )
            == 0
        )
    full, resumed = _coefs(tmp_path / "full.safetensors"), _coefs(tmp_path / "resumed.safetensors")
    assert np.array_equal(full, resumed)
    assert not np.array_equal(full, _coefs(tmp_path / "half.safetensors"))


@pytest.mark.slow
def test_streamed_sgd_memory_is_flat_in_the_file_size(tmp_path):
    small, large = tmp_path / "small.parquet", tmp_path / "large.parquet"
    _write_parquet(small, 250_000, 10, seed=1)
    _write_parquet(large, 1_000_000, 10, seed=2)
    opts = ["-t", "y", "--solver", "sgd", "--stream", "--epochs", "1", "--batch-size", "4096"]
    peaks = [
        _peak_rss_mb(["train", p, *opts, "-o", tmp_path / f"{p.stem}.safetensors"])
        for p in (small, large)
    ]
    # The buffer (262,144 rows, 23 MB here) is the same for both; the rows are not kept.
    assert peaks[1] - peaks[0] < 25, peaks


def test_prefetch_keeps_order_raises_reader_errors_and_stops_early():

    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))

    def failing():
        yield 1
        raise DataError("bad row 7")

    got = []
    with pytest.raises(DataError, match="bad row 7"):
        for x in prefetch(failing()):
            got.append(x)
    assert got == [1]
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    it = prefetch(endless(), depth=2)
    assert [next(it) for _ in range(5)] == list(range(5))
    it.close()  # the reader thread stops: at most depth + 2 blocks were read ahead
    assert len(produced) <= 5 + 4


@pytest.mark.parametrize(("solver", "streams"), [("sgd", True), ("adam", True), ("lbfgs", False)])
def test_train_streams_files_above_the_threshold_for_mini_batch_solvers(
    sgd_file, tmp_path, monkeypatch, solver, streams
):
    import torchlinreg.cli.train as cli_train

    made = []

    class Spy(TableBlocks):
        def __init__(self, *args, **kwargs):
            made.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(cli_train, "TableBlocks", Spy)
    monkeypatch.setattr(cli_train, "STREAM_AUTO_BYTES", 1000)  # the file is larger
    out = tmp_path / "m.safetensors"
    args = ["train", str(sgd_file[0]), "-t", "y", "--solver", solver, "--seed", "0"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ConvergenceWarning is not the point here
        assert run([*args, "--epochs", "2", "-o", str(out), "-q"]) == 0
    assert bool(made) == streams


def _offset_quadratic(offset: float, n: int = 100_000, seed: int = 0):
    """x, x^2 and noise columns, x in [offset, offset + 1): ill-conditioned by the offset."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, n) + offset
    X = np.c_[x, x**2, rng.normal(size=n)]
    y = X @ np.array([3.0, -0.1, 2.0]) + rng.normal(size=n) * 1e-3
    return X, y


def _blocks(X, y, rows=20_000):
    return [(X[i : i + rows], y[i : i + rows]) for i in range(0, len(y), rows)]


@pytest.mark.parametrize("offset", [1e1, 1e2, 1e3, 3e3])
@pytest.mark.parametrize("solver", ["qr", "gram"])
def test_a_streamed_fit_that_may_be_off_says_by_how_much(offset, solver):
    # NOTE [unrefined fits]: no rows to refine against, so a fit whose estimated error
    # passes 1e-8 warns with that estimate; the estimate covers the actual error, and a
    # fit that does not warn is within 1e-8. Reference: the refined in-memory fit.
    X, y = _offset_quadratic(offset)
    ref = tlr.LinearRegression().fit(X, y).coef_
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = tlr.LinearRegression(solver=solver).fit_blocks(_blocks(X, y)).coef_
    error = float(np.max(np.abs(got - ref) / np.abs(ref)))
    said = [str(w.message) for w in caught if getattr(w.message, "what", "") == "coefficients"]
    # what else it may say is about the rss (NOTE [sums at risk]; tests/test_refine_policy_sums)
    sums = [w for w in caught if getattr(w.message, "what", "") == "sums"]
    assert len(caught) == len(said) + len(sums) and len(said) <= 1 and len(sums) <= 1
    if said:
        quoted = float(said[0].split("off by up to ")[1].split(" ")[0])
        # first-order, and 2p eps (NOTE [a warning's constant]): pessimistic, not absurd
        assert error <= quoted <= 1e4 * max(error, 1e-12), (error, said)
        assert "y1" in said[0] and "fit(X, y)" in said[0]
        assert ("solver='qr'" in said[0]) == (solver == "gram")
    else:
        assert error <= 1e-8, error
    if solver == "gram" and offset >= 1e3:
        assert said  # a Gram factor at kappa 1e8: these must warn (actual error 1e-6)


def test_partial_fit_warns_as_a_streamed_fit_and_an_in_memory_fit_does_not():
    X, y = _offset_quadratic(1e3, n=40_000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tlr.LinearRegression(solver="gram").partial_fit(X, y)
    assert any(re.search("partial_fit.* may be off by up to", str(w.message)) for w in caught)
    with warnings.catch_warnings(record=True) as caught:  # in a loop: each said once
        warnings.simplefilter("always")
        model = tlr.LinearRegression(solver="gram")
        for rows in np.array_split(np.arange(len(y)), 8):
            model.partial_fit(X[rows], y[rows])
    # the coefficients, and (noise 1e-3: NOTE [sums at risk]) the rss, once each
    assert sorted(w.message.what for w in caught) == ["coefficients", "sums"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refined against the rows: nothing to say
        tlr.LinearRegression(solver="gram").fit(X, y)


def test_train_says_an_ill_conditioned_gram_fit_may_be_off_in_its_own_words(tmp_path, capsys):
    from cli_helpers import cli

    X, y = _offset_quadratic(1e3, n=30_000)
    data = tmp_path / "d.csv"
    np.savetxt(data, np.c_[X, y], delimiter=",", header="x,x2,z,y", comments="", fmt="%.17g")
    r = cli(capsys, "train", data, "-t", "y", "--solver", "gram", "-q", "-o", tmp_path / "g")
    assert r.code == 0, r.err
    lines = sorted(r.err.splitlines())  # the coefficients, and the rss (noise 1e-3)
    assert len(lines) == 2 and lines[0].startswith("torchlinreg: warning: the coefficients")
    assert lines[1].startswith("torchlinreg: warning: the fit is so nearly exact")
    assert all("may be off" in line and "--solver qr" in line for line in lines)
    assert all("fit(X, y)" not in line for line in lines)  # the library's words stay there
    r = cli(capsys, "train", data, "-t", "y", "-q", "-o", tmp_path / "q")
    assert r.code == 0 and r.err == ""  # qr: within 1e-8 (tested above), nothing to say
