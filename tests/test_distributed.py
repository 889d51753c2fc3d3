"""torch.distributed: 2 gloo processes on the loopback interface give the 1-process model.

The library cases run once in two worker processes (tests/_dist_worker.py, rendezvous
through a FileStore: no port at all); the CLI cases run ``torch.distributed.run`` on
127.0.0.1. Each test then compares what the ranks produced with an independent reference
(numpy's lstsq) and with a plain 1-process fit.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from torchlinreg import LinearRegression
from torchlinreg.datasets import make_regression

pytestmark = pytest.mark.distributed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from _dist_worker import problem  # noqa: E402


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env["GLOO_SOCKET_IFNAME"] = "lo"  # loopback only
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict[str, np.ndarray]]:
    out = tmp_path_factory.mktemp("ranks")
    worker = str(Path(__file__).parent / "_dist_worker.py")
    store = str(out / "store")
    procs = [
        subprocess.Popen(
            [sys.executable, worker, store, str(r), "2", str(out)],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for r in range(2)
    ]
    logs = [p.communicate(timeout=180)[0].decode() for p in procs]
    for r, (p, log) in enumerate(zip(procs, logs, strict=True)):
        # gloo's C++ teardown has aborted a worker at interpreter exit a few times under
        # load, after its results were written and the group destroyed (SIGABRT, "terminate
        # called without an active exception"). That exit is not what is tested here; any
        # other failure, or an abort before the results exist, still fails.
        teardown_abort = (
            p.returncode == -6
            and "terminate called without an active exception" in log
            and (out / f"rank{r}.npz").exists()
        )
        assert p.returncode == 0 or teardown_abort, log
    return [dict(np.load(out / f"rank{r}.npz")) for r in range(2)]


def _lstsq(X, Y, w=None):
    """Independent reference: weighted least squares with an intercept via numpy."""
    A = np.column_stack([np.ones(len(X)), X])
    s = np.ones(len(X)) if w is None else np.sqrt(w)
    sol = np.linalg.lstsq(A * s[:, None], Y * s[:, None], rcond=None)[0]
    return sol[1:].T, sol[0]


def test_every_rank_gets_the_same_bits(ranks):
    r0, r1 = ranks
    assert r0.keys() == r1.keys()
    for key in r0:
        np.testing.assert_array_equal(r0[key], r1[key], err_msg=key)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("solver", ["qr", "gram"])
def test_exact_fit_on_two_ranks_equals_one_process(ranks, solver, weighted):
    X, Y, w = problem(3000, 6, 3, seed=1)
    w = w if weighted else None
    key = f"{solver}_{'w' if weighted else 'u'}"
    one = LinearRegression(solver=solver).fit(X, Y, w)
    # 1) the merged state holds every rank's rows
    assert int(ranks[0][f"{key}_n"][0]) == 3000
    # 2) the model equals the 1-process model to 1e-10
    np.testing.assert_allclose(ranks[0][f"{key}_coef"], one.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ranks[0][f"{key}_icpt"], one.intercept_, rtol=1e-12, atol=1e-10)
    # 3) and numpy's answer
    coef, icpt = _lstsq(X, Y, w)
    np.testing.assert_allclose(ranks[0][f"{key}_coef"], coef, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ranks[0][f"{key}_icpt"], icpt, rtol=1e-10)
    # 4) the log-likelihood of the merged state is statsmodels' (WLS: sum(log w) merged)
    sm = pytest.importorskip("statsmodels.api")
    for j in range(3):
        ref = sm.WLS(Y[:, j], sm.add_constant(X), weights=1.0 if w is None else w).fit()
        np.testing.assert_allclose(ranks[0][f"{key}_llf"][j], ref.llf, rtol=1e-10)


def test_fit_blocks_with_a_rank_that_has_no_rows(ranks):
    X, Y, _ = problem(3000, 6, 3, seed=1)
    coef, icpt = _lstsq(X, Y)
    np.testing.assert_allclose(ranks[0]["blocks_coef"], coef, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ranks[0]["blocks_icpt"], icpt, rtol=1e-10)


def test_lasso_and_lasso_cv_on_two_ranks_use_every_rank_rows(ranks):
    from sklearn.linear_model import Lasso as SkLasso

    X, Y, w = problem(3000, 6, 3, seed=1)
    ref = SkLasso(alpha=0.5, tol=1e-12, max_iter=100_000).fit(X, Y[:, 0], sample_weight=w)
    np.testing.assert_allclose(ranks[0]["lasso_coef"], ref.coef_, rtol=1e-8)
    np.testing.assert_allclose(ranks[0]["lasso_icpt"], ref.intercept_, rtol=1e-8)
    # LassoCV: the refit at the chosen alpha is on all 3000 rows (folds merged over ranks)
    assert int(ranks[0]["lassocv_n"][0]) == 3000 and ranks[0]["lassocv_mse"].shape == (8, 3)
    alpha = float(ranks[0]["lassocv_alpha"][0])
    ref = SkLasso(alpha=alpha, tol=1e-12, max_iter=100_000).fit(X, Y[:, 0])
    np.testing.assert_allclose(ranks[0]["lassocv_coef"], ref.coef_, rtol=1e-8)


def test_columns_in_another_order_on_one_rank_are_refused(ranks):
    # merged by position before: coefficients [2.15, 1.42, 2.32] for [1.01, 2.00, 3.00]
    for solver in ("qr", "lbfgs"):
        message = ranks[0][f"columns_{solver}"].tobytes().decode()
        assert "rank 1's feature columns are not rank 0's" in message, message


def test_cv_estimators_fit_on_every_rank_rows_or_refuse(ranks):
    # RidgeCV/LassoCV.fit fitted each rank's rows alone (alpha_ 10 on one rank, 0.1 on
    # the other); leave-one-out and Huber cannot merge, and say so
    from sklearn.linear_model import Lasso as SkLasso
    from sklearn.linear_model import Ridge as SkRidge

    X, Y, _ = problem(3000, 6, 3, seed=1)
    assert int(ranks[0]["ridgecv_n"][0]) == int(ranks[0]["lassocv_fit_n"][0]) == 3000
    ref = SkRidge(alpha=float(ranks[0]["ridgecv_alpha"][0])).fit(X, Y[:, 0])
    np.testing.assert_allclose(ranks[0]["ridgecv_coef"], ref.coef_, rtol=1e-9)
    alpha = float(ranks[0]["lassocv_fit_alpha"][0])
    ref = SkLasso(alpha=alpha, tol=1e-12, max_iter=100_000).fit(X, Y[:, 0])
    np.testing.assert_allclose(ranks[0]["lassocv_fit_coef"], ref.coef_, rtol=1e-8)
    assert "leave-one-out" in ranks[0]["refused_ridgecv_loo"].tobytes().decode()
    assert "every row in one process" in ranks[0]["refused_huber"].tobytes().decode()


def test_an_iterative_fit_takes_a_rank_whose_rows_weigh_nothing(ranks):
    Xi, yi = (np.asarray(a) for a in make_regression(4000, 8, noise=1.0, seed=3)[:2])
    coef, icpt = _lstsq(Xi[1600:], yi[1600:, None])  # rank 1's rows: the only ones that count
    np.testing.assert_allclose(ranks[0]["zero_rank_coef"], coef[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ranks[0]["zero_rank_icpt"], icpt, rtol=1e-6, atol=1e-6)
    assert "zero for every row" in ranks[0]["error_all_zero"].tobytes().decode()


def test_an_iterative_fit_with_float32_rows_on_one_rank(ranks):
    Xi, yi = (np.asarray(a) for a in make_regression(4000, 8, noise=1.0, seed=3)[:2])
    coef, _ = _lstsq(np.r_[Xi[:1600], Xi[1600:].astype(np.float32)], yi[:, None])
    np.testing.assert_allclose(ranks[0]["mixed_dtype_coef"], coef[0], rtol=1e-5, atol=1e-5)


def test_partial_fit_merges_the_ranks_at_every_call(ranks):
    X, Y, _ = problem(3000, 6, 3, seed=1)
    coef, icpt = _lstsq(X, Y)
    np.testing.assert_allclose(ranks[0]["partial_coef"], coef, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ranks[0]["partial_icpt"], icpt, rtol=1e-10)


@pytest.mark.parametrize("solver", ["sgd", "adam", "gd", "lbfgs"])
def test_iterative_fit_on_two_ranks_converges_to_the_exact_r2(ranks, solver):
    X, y = make_regression(4000, 8, noise=1.0, seed=3)[:2]
    exact = LinearRegression().fit(X, y)
    pred = X @ ranks[0][f"{solver}_coef"].T + ranks[0][f"{solver}_icpt"]
    ss_res = ((y - pred[:, 0]) ** 2).sum()
    r2 = 1.0 - ss_res / ((y - y.mean()) ** 2).sum()
    assert exact.score(X, y) - r2 < 1e-3
    # the gap every rank reports is that of all rows (the Gram merged over the ranks)
    assert ranks[0][f"{solver}_gap"][0] == pytest.approx(
        exact.score(X, y) - r2, rel=1e-6, abs=1e-12
    )
    # the history is the global loss: it ends where the exact optimum's loss is
    history = ranks[0][f"{solver}_loss"]
    assert history[-1] < history[0]


def test_full_batch_gd_on_two_ranks_follows_the_one_process_history(ranks):
    # gd on all rows is deterministic: the global loss history must match 1 process.
    X, y = make_regression(4000, 8, noise=1.0, seed=3)[:2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = LinearRegression(solver="gd", random_state=0, max_iter=100).fit(X, y)
    np.testing.assert_allclose(ranks[0]["gd_loss"], one.loss_history_, rtol=1e-10)


def test_metrics_and_row_counts_cover_every_rank(ranks):
    from torchlinreg.stats.metrics import regression_metrics

    X, Y, w = problem(3000, 6, 3, seed=1)
    pred = torch.as_tensor(Y) + torch.as_tensor(X[:, :3]) * 0.1
    want = regression_metrics(torch.as_tensor(Y), pred, torch.as_tensor(w), uncentered=True)
    assert "r2_uncentered" in want
    for name, values in want.items():
        np.testing.assert_allclose(ranks[0][f"metric_{name}"], values.numpy(), rtol=1e-12)
    assert int(ranks[1]["rows"][0]) == 3000


@pytest.mark.parametrize("solver", ["qr", "adam"])
def test_bad_value_on_one_rank_fails_every_rank(ranks, solver):
    for r in ranks:
        message = bytes(r[f"error_{solver}"]).decode()
        assert "NaN" in message, message


def test_helpers_are_the_identity_outside_a_process_group():
    from torchlinreg.distributed import collectives as distributed

    t = torch.arange(3.0)
    assert distributed.world() == (0, 1)
    assert not distributed.is_distributed()
    assert distributed.allreduce_sum(t) is t
    with distributed.agree_on_errors():
        pass


# ---------------------------------------------------------------- the CLI under torchrun


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=1",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        *args,
    ]
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=180)


BAD_ROW = 3400  # in the last third of bad.csv: only rank 1 reads it


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory) -> Path:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path_factory.mktemp("tables")
    rng = np.random.default_rng(5)
    n = 4000
    X = rng.normal(size=(n, 4)) * [1, 10, 0.1, 5] + [100, 0, 3, -20]
    Y = X @ np.array([[1, 2, 3, 4], [0.5, -1, 2, 0]]).T + rng.normal(size=(n, 2))
    df = pd.DataFrame(X, columns=list("abcd")).assign(y=Y[:, 0], z=Y[:, 1])
    df["w"] = rng.uniform(0.5, 2, n)
    df.to_csv(out / "data.csv", index=False)
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, out / "data.parquet", row_group_size=600)
    pq.write_table(table.slice(0, 500), out / "one_group.parquet")  # rank 1 reads nothing
    (out / "folder").mkdir()
    for i, (lo, hi) in enumerate([(0, 900), (900, 1500), (1500, 2900), (2900, n)]):
        if i % 2:
            pq.write_table(table.slice(lo, hi - lo), out / "folder" / f"p{i}.parquet")
        else:
            df.iloc[lo:hi].to_csv(out / "folder" / f"p{i}.csv", index=False)
    lines = (out / "data.csv").read_text().splitlines()
    cells = lines[BAD_ROW - 1].split(",")
    cells[1] = "oops"
    lines[BAD_ROW - 1] = ",".join(cells)
    (out / "bad.csv").write_text("\n".join(lines) + "\n")
    return out


def _one_process(args: list[str], cwd: Path):
    from torchlinreg import load
    from torchlinreg.cli.app import run

    here = os.getcwd()
    os.chdir(cwd)
    try:
        assert run([*args, "-q"]) == 0
    finally:
        os.chdir(here)
    return load(cwd / args[args.index("-o") + 1])


def _same_model(path: Path, reference, tol: float = 1e-10) -> None:
    from torchlinreg import load

    got = load(path)
    np.testing.assert_allclose(got.coef_, reference.coef_, rtol=0, atol=tol)
    np.testing.assert_allclose(got.intercept_, reference.intercept_, rtol=tol, atol=tol)


def test_torchrun_train_csv_equals_one_process_and_reports_once(table_dir):
    args = ["train", "data.csv", "-t", "y", "-t", "z", "--weights", "w", "-o", "two.safetensors"]
    done = _torchrun(["-m", "torchlinreg", *args], table_dir)
    assert done.returncode == 0, done.stderr
    # 1) rank 0 alone reports
    assert done.stdout.count("model saved to") == 1, done.stdout
    assert done.stdout.count("4,000 rows") == 1, done.stdout
    # 2) the exact model of 2 processes is the 1-process model
    one = _one_process([*args[:-1], "one.safetensors"], table_dir)
    _same_model(table_dir / "two.safetensors", one)


def test_torchrun_parquet_folder_iterative_and_a_bad_row(table_dir):
    from torchlinreg import load

    commands = [
        ["train", "data.parquet", "-t", "y", "-t", "z", "--weights", "w", "--solver", "gram"],
        ["train", "folder", "-t", "y", "-t", "z", "--features", "a,b,c,d"],
        ["train", "data.csv", "-t", "y", "--features", "a,b,c,d", "--solver", "sgd", "--seed", "0"],
        ["train", "one_group.parquet", "-t", "y", "-t", "z", "--features", "a,b,c,d"],
        ["train", "data.csv", "-t", "y", "--solver", "adam", "--checkpoint", "c.ckpt"],
        ["train", "bad.csv", "-t", "y", "--features", "a,b,c,d"],
        ["train", "data.csv", "-t", "y", "-t", "z", "--weights", "w", "--no-intercept",
         "--features", "a,b,c,d"],
        # rank 1 reads no rows of one_group.parquet: an iterative fit used to fail there
        ["train", "one_group.parquet", "-t", "y", "--features", "a,b,c,d", "--solver", "sgd",
         "--seed", "0"],
    ]  # fmt: skip
    commands = [[*c, "-o", f"two{i}.safetensors"] for i, c in enumerate(commands)]
    (table_dir / "commands.json").write_text(__import__("json").dumps(commands))
    driver = str(Path(__file__).parent / "_dist_cli.py")
    done = _torchrun([driver, str(table_dir), "commands.json"], table_dir)
    codes = [__import__("json").loads((table_dir / f"codes{r}.json").read_text()) for r in (0, 1)]
    # 1) checkpoints are refused, the bad row fails both ranks with the usage/data exit
    # code, and nothing hangs
    assert codes == [[0, 0, 0, 0, 2, 2, 0, 0], [0, 0, 0, 0, 2, 2, 0, 0]], done.stderr
    assert done.stderr.count("not supported under torchrun") == 1
    # 2) one clean line, from rank 0, naming the file row that only rank 1 read
    errors = [line for line in done.stderr.splitlines() if line.startswith("torchlinreg: error")]
    assert errors[1:] == [
        f"torchlinreg: error: bad.csv, row {BAD_ROW}, column 'b': non-numeric "
        "value 'oops'; numeric columns need numbers, fix or drop the row"
    ]
    assert not (table_dir / "two5.safetensors").exists()
    # 3) Parquet row groups, a folder of files, a rank with no rows, no intercept: the
    # 1-process model, and the same training metrics (without an intercept the centred
    # r2 comes from the targets' moments merged across the ranks)
    for i in (0, 1, 3, 6):
        one = _one_process([*commands[i][:-1], f"one{i}.safetensors"], table_dir)
        _same_model(table_dir / f"two{i}.safetensors", one)
        two = load(table_dir / f"two{i}.safetensors").training_["metrics"]
        for target, values in one.training_["metrics"].items():
            assert values.keys() == two[target].keys()
            for key, value in values.items():
                assert two[target][key] == pytest.approx(value, rel=1e-10), (i, target, key)
    assert set(two["y"]) == {"mse", "rmse", "r2", "r2_uncentered"}
    # 4) sgd on two ranks reaches the exact R2 within 1e-3
    exact = load(table_dir / "one1.safetensors")
    data = np.loadtxt(table_dir / "data.csv", delimiter=",", skiprows=1)
    X, y = data[:, :4], data[:, 4]
    sgd = load(table_dir / "two2.safetensors")
    r2 = 1 - ((y - np.reshape(sgd.predict(X), -1)) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    r2_exact = 1 - ((y - exact.predict(X)[:, 0]) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert r2_exact - r2 < 1e-3
    # 5) sgd with a rank that read no rows (its rows are spread again) fits the 500 rows
    # about as well as the exact fit (r2 within 0.01: 200 epochs of 2 steps)
    part, y = data[:500], data[:500, 4]
    sgd = load(table_dir / "two7.safetensors")
    resid = y - np.reshape(sgd.predict(part[:, :4]), -1)
    A = np.column_stack([np.ones(500), part[:, :4]])
    best = y - A @ np.linalg.lstsq(A, y, rcond=None)[0]
    sst = ((y - y.mean()) ** 2).sum()
    assert ((resid**2).sum() - (best**2).sum()) / sst < 0.01


@pytest.mark.parametrize(("counts", "batch"), [([1500, 1500], 1), ([3, 0], 1), ([5, 2, 1], 2)])
def test_a_global_batch_smaller_than_the_ranks_still_splits_every_row_once(counts, batch):
    # a batch of 1 on 2 ranks divided by an empty global batch (ZeroDivisionError in every
    # worker). Invariants: 1) every step has rows on some rank; 2) each rank's batches take
    # each of its rows once; 3) the scaled weights of a step sum to world_size (DDP averages)
    from torchlinreg.distributed.ddp import RankBatches, RankInfo

    steps_seen = set()
    totals: dict[int, float] = {}
    for rank, n in enumerate(counts):
        info = RankInfo(rank, len(counts), counts, float(sum(counts)))
        X = torch.arange(max(n, 1), dtype=torch.float64)[:, None]
        batches = RankBatches(X[:n], X[:n], None, info, batch_size=batch)
        seen = []
        for j, (xb, _, w) in enumerate(batches.epoch(torch.Generator().manual_seed(0))):
            w = torch.ones(xb.shape[0], dtype=torch.float64) if w is None else w
            if float(w.sum()) > 0:
                steps_seen.add(j)
                seen += xb[:, 0].tolist()
            totals[j] = totals.get(j, 0.0) + float(w.mean())
        assert sorted(seen) == list(range(n))  # 2
    assert steps_seen == set(totals)  # 1
    for total in totals.values():
        assert total == pytest.approx(len(counts))  # 3
