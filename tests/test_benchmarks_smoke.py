"""Smoke tests of the benchmark scripts: they run, print their tables and fail when they should.

The figures themselves are not checked (they depend on the machine); what is checked is that
the scripts work, that their JSON parses, and that the accuracy column compares each peer
against an independent float64 reference.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", BENCH / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gpu_check", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def one_thread():
    # The quick check's tensors are tiny: with 2 intra-op threads on a busy 2-core machine
    # each op can stall for milliseconds at an OpenMP barrier (see conftest.py).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_gpu_check_quick_passes_on_cpu_and_says_so(capsys, one_thread):
    gpu_check = _load_gpu_check()
    assert gpu_check.main(["--quick", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "checking CPU against CPU" in out
    assert "exact qr, weighted, float64" in out
    assert "fit_iterative gd" in out
    assert "all checks passed" in out


def test_gpu_check_exits_nonzero_when_device_and_cpu_disagree(capsys, monkeypatch):
    gpu_check = _load_gpu_check()
    calls = []

    def drifting(device):
        # Each call returns a different answer: the second side disagrees with the first.
        calls.append(device)
        return torch.full((2, 3), float(len(calls))), torch.zeros(2)

    monkeypatch.setattr(
        gpu_check, "build_checks", lambda *a: [gpu_check.Check("drifting", drifting, 1e-10, 1)]
    )
    assert gpu_check.main(["--quick", "--device", "cpu"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out
    assert "FAILED: drifting" in out


def test_run_quick_prints_table_and_writes_json(tmp_path):
    out_json = tmp_path / "bench.json"
    peers = "tlr_qr,exact_gram,sk_linreg,floor_torch,wt_plain,wt_engine"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    args = ["--quick", "--only", peers, "--repeat", "1", "--json", str(out_json)]
    proc = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "scikit-learn LinearRegression" in out
    assert "torchlinreg LinearRegression() (qr)" in out
    assert "us/ep" in out  # the walk-through reports per-epoch times
    assert "## Targets" in out
    data = json.loads(out_json.read_text())
    exact = data["results"]["exact"]
    assert set(exact) == {"tlr_qr", "exact_gram", "sk_linreg", "floor_torch"}
    assert exact["tlr_qr"]["median_s"] > 0
    # Exact solvers agree with the independent LAPACK-QR reference to float64 rounding.
    assert exact["tlr_qr"]["rel_err"] < 1e-10
    assert exact["sk_linreg"]["rel_err"] < 1e-10
    assert exact["floor_torch"]["rel_err"] is None  # X.T @ X alone fits nothing
    # The workers run without the machine's OpenBLAS overrides, and say which BLAS they use.
    for res in exact.values():
        assert res["env_openblas"] == {"OPENBLAS_CORETYPE": None, "OPENBLAS_L2_SIZE": None}
    assert any(t["target"].startswith("walk-through") for t in data["targets"])


@pytest.mark.slow
def test_startup_measures_every_solver_and_the_command(tmp_path):
    out = tmp_path / "startup.json"
    r = subprocess.run(
        [sys.executable, str(BENCH / "startup.py"), "--repeat", "1", "--json", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert set(result["first_fit"]) == {"qr", "gram", "gd", "sgd", "adam", "lbfgs"}
    # what the README reports: no heavy import for the command, no compiler for a fit
    assert all(not c["heavy_imports"] for c in result["commands"].values())
    assert not any(f["dynamo_imported"] for f in result["first_fit"].values())


def test_lasso_cv_benchmark_runs_and_both_peers_choose_a_grid_alpha(tmp_path):
    peers = "torchlinreg LassoCV (memory);scikit-learn LassoCV"
    args = ["--rows", "3000", "--features", "8", "--alphas", "10", "--peers", peers, "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run(
        [sys.executable, str(BENCH / "lasso_cv.py"), *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    assert set(results) == set(peers.split(";"))
    for r in results.values():
        assert r["seconds"] > 0 and r["alpha"] > 0 and r["mse"] > 0
    # the same data and grid: held-out errors agree closely though the folds differ
    mses = [r["mse"] for r in results.values()]
    assert abs(mses[0] - mses[1]) < 0.05 * mses[1]
