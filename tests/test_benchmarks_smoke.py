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


def test_iterative_time_quick_times_peers_against_an_lstsq_reference(tmp_path):
    out_json = tmp_path / "itime.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    args = ["--quick", "--only", "tlr_lbfgs,sk_lsqr", "--threads", "1", "--json", str(out_json)]
    proc = subprocess.run(
        [sys.executable, str(BENCH / "iterative_time.py"), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "torchlinreg lbfgs" in proc.stdout and "solver='lsqr'" in proc.stdout
    results = json.loads(out_json.read_text())["results"]
    # each peer reached the target, as numpy's lstsq R2 on all rows says
    for res in results.values():
        assert res["seconds"] > 0 and res["gap"] <= 1e-6


def test_iterative_corpus_prints_the_readme_table(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, str(BENCH / "iterative_corpus.py"), "--only", "stackloss"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| stackloss | 21 x 3 |" in proc.stdout
    assert "lbfgs: 1/1 within 1e-4, 1 within 1e-08" in proc.stdout


def _regimes_module(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import _regimes

    return _regimes


def _run_bench(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, str(BENCH / "run.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )


def test_regimes_skip_only_the_peers_that_would_not_fit_the_machine(monkeypatch):
    regimes = _regimes_module(monkeypatch)
    full = regimes.regime_cases(quick=False)
    # 1. The sizes of issue 11, item 6.
    assert [c.n for c in full.values() if c.group == "tall"] == [10**4, 10**5, 10**6, 4 * 10**6]
    assert [c.d for c in full.values() if c.group == "wide"] == [10, 100, 500, 2000]
    assert [c.k for c in full.values() if c.group == "targets"] == [1, 10, 100, 1000]
    assert [c.dtype for c in full.values() if c.group == "float32"] == ["float32"]
    # 2. statsmodels' pinv needs ~4x [1 | X] on top of the data: 2e5 x 2000 is over 12 GB,
    #    2e5 x 500 and 4e6 x 50 are not; scikit-learn (~2x) fits at 2e5 x 2000.
    assert "GB" in regimes.skip_reason("sm_ols", full["wide_2000"])
    assert regimes.skip_reason("sm_ols", full["wide_500"]) is None
    assert regimes.skip_reason("sm_ols", full["tall_4M"]) is None
    assert regimes.skip_reason("sk_linreg", full["wide_2000"]) is None
    # 3. torchlinreg and the floors copy nothing: never skipped.
    assert regimes.skip_reason("tlr_qr", full["wide_2000"], limit_gb=0.001) is None


def test_only_selects_regimes_cases_and_peers(monkeypatch):
    regimes = _regimes_module(monkeypatch)
    import _peers

    case_map = {**_peers.cases(True, 256), **regimes.regime_cases(True)}
    # 1. A regime names its cases; a peer named beside it narrows them, and adds no classic case.
    assert regimes.plan("wide,tlr_qr", case_map) == {"wide_3": ["tlr_qr"], "wide_60": ["tlr_qr"]}
    # 2. Nothing named: the classic cases only (the regimes take long at full size).
    assert set(regimes.plan("", case_map)) == {"exact", "sgd", "walk"}
    # 3. As before the regimes: a peer name alone selects its classic case.
    plan = regimes.plan("exact,wt_plain", case_map)
    assert plan["walk"] == ["wt_plain"] and "tlr_qr" in plan["exact"] and "sgd" not in plan
    assert len(regimes.plan("regimes", case_map)) == len(regimes.regime_cases(True))
    with pytest.raises(SystemExit, match="unknown"):
        regimes.plan("tal", case_map)


def test_run_quick_regimes_covers_every_regime_and_merges(tmp_path, monkeypatch):
    regimes = _regimes_module(monkeypatch)
    out_json = tmp_path / "regimes.json"
    base = ["--quick", "--repeat", "1", "--threads", "1", "--json", str(out_json)]
    proc = _run_bench(*base, "--only", "regimes")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "load average before" in proc.stdout
    data = json.loads(out_json.read_text())
    quick = regimes.regime_cases(quick=True)
    assert set(data["results"]) == set(quick)
    for name, results in data["results"].items():
        case = quick[name]
        assert list(results) == list(regimes.REGIME_PEERS)
        assert data["case_info"][name]["load_before"]
        # Every fitting peer agrees with the float64 LAPACK reference of the stored numbers:
        # to float64 rounding, or for float32 input to float32's (statsmodels upcasts).
        tol = 1e-4 if case.dtype == "float32" else 1e-10
        for peer in ("tlr_qr", "tlr_gram", "sk_linreg", "sm_ols", "np_lstsq", "torch_qr"):
            assert results[peer]["rel_err"] < tol, (name, peer, results[peer]["rel_err"])
        assert results["floor_torch"]["rel_err"] is None
    # torchlinreg's exact solvers compute in float64 and return float32: float32 rounding.
    assert data["results"]["float32_5k"]["tlr_qr"]["rel_err"] < 1e-6

    # Rerun one case with a memory limit nothing fits, merged into the same file.
    proc = _run_bench(*base, "--only", "wide_60", "--merge", "--mem-limit-gb", "1e-6")
    assert proc.returncode == 0, proc.stderr[-2000:]
    merged = json.loads(out_json.read_text())
    assert set(merged["results"]) == set(quick)  # the other cases were kept
    assert len(merged["runs"]) == 2
    wide = merged["results"]["wide_60"]
    assert "GB" in wide["sm_ols"]["skipped"] and "walls" in wide["tlr_qr"]
    assert merged["results"]["tall_2k"] == data["results"]["tall_2k"]

    report = subprocess.run(
        [sys.executable, str(BENCH / "_report.py"), str(out_json)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # The summary has a row for every regime case, the skipped peer said as such.
    for case in quick.values():
        assert f"| {case.group} | " in report
    assert "skipped (" in report and "merged from 2 invocations" in report


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
