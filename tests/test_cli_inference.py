"""`torchlinreg train --cluster / --cov-type / --plot`: robust coefficient tests of exact
fits (a second pass over the file) and R's diagnostic panels, against statsmodels."""

from __future__ import annotations

import io
import json
from functools import cache

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from numpy.testing import assert_allclose

from torchlinreg.cli.app import run


@cache
def _grunfeld() -> pd.DataFrame:
    data = sm.datasets.grunfeld.load_pandas()
    exog = data.exog[:200]
    firm = np.unique(np.asarray(exog["firm"]), return_inverse=True)[1].reshape(-1)
    return pd.DataFrame(
        {
            "value": exog["value"].to_numpy(float),
            "capital": exog["capital"].to_numpy(float),
            "invest": data.endog[:200].to_numpy(float),
            "firm": firm,
            "year": exog["year"].to_numpy(float).astype(int),
        }
    )


def _train(tmp_path, capsys, *args):
    path = tmp_path / "g.csv"
    _grunfeld().to_csv(path, index=False)
    model = tmp_path / "m.safetensors"
    argv = ["train", str(path), "-t", "invest", "-o", str(model), "--block-rows", "16", *args]
    code = run(argv)
    return code, capsys.readouterr()


def _reference(cov_type, **kw):
    d = _grunfeld()
    fit = sm.OLS(d["invest"].to_numpy(), sm.add_constant(d[["value", "capital"]].to_numpy())).fit()
    return fit.get_robustcov_results(cov_type, **kw)  # keeps use_t=True, as the CLI


@pytest.mark.parametrize("two_way", [False, True])
def test_train_cluster_matches_statsmodels(tmp_path, capsys, two_way):
    extra = ["--cluster", "firm"] + (["--cluster", "year"] if two_way else [])
    code, out = _train(tmp_path, capsys, "--features", "value,capital", *extra, "--json")
    assert code == 0, out.err
    inf = json.loads(out.out)["inference"]
    d = _grunfeld()
    groups = np.c_[d["firm"], d["year"]] if two_way else d["firm"].to_numpy()
    ref = _reference("cluster", groups=groups)
    assert inf["cov_type"] == "cluster" and inf["statistic"] == "t"
    assert_allclose(inf["bse"], ref.bse, rtol=1e-10)
    assert_allclose(inf["pvalues"], ref.pvalues, rtol=1e-9)
    assert_allclose(inf["conf_int"], ref.conf_int(), rtol=1e-9)


def test_train_cluster_column_is_not_a_default_feature(tmp_path, capsys):
    code, out = _train(tmp_path, capsys, "--cluster", "firm", "--json")
    assert code == 0, out.err
    report = json.loads(out.out)
    assert report["features"] == ["value", "capital", "year"]
    assert "firm" not in report.get("skipped_columns", [])
    assert report["inference"]["param_names"] == ["const", "value", "capital", "year"]


@pytest.mark.parametrize("cov_type, kw", [("HAC", {"maxlags": 4}), ("HC3", {})])
def test_train_cov_type_matches_statsmodels(tmp_path, capsys, cov_type, kw):
    args = ["--features", "value,capital", "--cov-type", cov_type]
    args += ["--maxlags", str(kw["maxlags"])] if kw else []
    code, out = _train(tmp_path, capsys, *args, "--json")
    assert code == 0, out.err
    inf = json.loads(out.out)["inference"]
    ref = _reference(cov_type, **kw)
    assert_allclose(inf["bse"], ref.bse, rtol=1e-10)
    assert_allclose(inf["fvalue"], ref.fvalue, rtol=1e-9)


def test_train_prints_the_coefficient_table(tmp_path, capsys):
    code, out = _train(tmp_path, capsys, "--features", "value,capital", "--cluster", "firm")
    assert code == 0, out.err
    assert "Covariance Type:" in out.out and "cluster" in out.out
    assert "P>|t|" in out.out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--cluster", "firm", "--solver", "sgd"], "exact solver"),
        (["--cluster", "firm", "--alpha", "1"], "exact solver"),
        (["--maxlags", "3"], "--maxlags is for --cov-type HAC"),
        (["--cluster", "firm", "--cov-type", "HC1"], "leave out --cov-type"),
        (["--cluster", "firm", "--cluster", "year", "--cluster", "value"], "one or two"),
        (["--cluster", "firm", "--cluster", "firm"], "same column twice"),
    ],
)
def test_train_inference_usage_errors(tmp_path, capsys, args, message):
    code, out = _train(tmp_path, capsys, *args)
    assert code == 2
    assert message in out.err


def test_train_plot_adds_the_four_diagnostic_panels_for_exact_fits(tmp_path, capsys):
    plots = tmp_path / "plots"
    code, out = _train(tmp_path, capsys, "--features", "value,capital", "--plot", str(plots))
    assert code == 0, out.err
    png = plots / "diagnostics.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    height, width = matplotlib.image.imread(png).shape[:2]
    assert width > 3 * height  # four panels side by side for one target
    code, out = _train(
        tmp_path, capsys, "--solver", "adam", "--epochs", "2", "--plot", str(tmp_path / "it")
    )
    assert code == 0 and not (tmp_path / "it" / "diagnostics.png").exists()


def test_train_weighted_cluster_matches_statsmodels_wls(tmp_path, capsys):
    d = _grunfeld().assign(w=lambda f: 1 / f["value"])
    path = tmp_path / "gw.csv"
    d.to_csv(path, index=False)
    argv = ["train", str(path), "-t", "invest", "--features", "value,capital", "--weights", "w"]
    argv += ["--cluster", "firm", "-o", str(tmp_path / "m.safetensors"), "--json"]
    assert run(argv) == 0
    inf = json.loads(capsys.readouterr().out)["inference"]
    exog = sm.add_constant(d[["value", "capital"]].to_numpy())
    ref = sm.WLS(d["invest"].to_numpy(), exog, weights=d["w"].to_numpy()).fit()
    ref = ref.get_robustcov_results("cluster", groups=d["firm"].to_numpy())
    assert_allclose(inf["bse"], ref.bse, rtol=1e-10)
    assert inf["weighted"] is True


@pytest.mark.distributed
def test_torchrun_cluster_equals_one_process(tmp_path):
    # two processes, each reading its byte range of the CSV; every year is on both ranks
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    _grunfeld().to_csv(tmp_path / "g.csv", index=False)
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(root / "src"), env.get("PYTHONPATH", "")])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={port}", "-m", "torchlinreg", "train",
           "g.csv", "-t", "invest", "--features", "value,capital", "--cluster", "year",
           "--cluster", "firm", "-o", "m.safetensors", "--json"]  # fmt: skip
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    inf = json.loads(done.stdout)["inference"]  # rank 0 alone prints
    d = _grunfeld()
    ref = _reference("cluster", groups=np.c_[d["year"], d["firm"]])
    assert_allclose(inf["bse"], ref.bse, rtol=1e-10)
    assert inf["n_groups"] == [20, 10]


@pytest.mark.parametrize("two_way", [False, True])
def test_train_clusters_on_a_text_column_as_statsmodels_does(tmp_path, capsys, two_way):
    # firm names as written ("firm 3"), in blocks of 16 rows: the same errors as the codes
    d = _grunfeld().assign(name=lambda f: "firm " + f["firm"].astype(str))
    path = tmp_path / "gs.csv"
    d.to_csv(path, index=False)
    extra = ["--cluster", "name"] + (["--cluster", "year"] if two_way else [])
    argv = ["train", str(path), "-t", "invest", "--features", "value,capital", "--json"]
    code = run([*argv, *extra, "--block-rows", "16", "-o", str(tmp_path / "m.safetensors")])
    out = capsys.readouterr()
    assert code == 0, out.err
    inf = json.loads(out.out)["inference"]
    groups = np.c_[d["firm"], d["year"]] if two_way else d["firm"].to_numpy()
    assert_allclose(inf["bse"], _reference("cluster", groups=groups).bse, rtol=1e-10)


def test_train_unknown_cluster_column_fails_before_fitting(tmp_path, capsys):
    path = tmp_path / "gs.csv"
    _grunfeld().to_csv(path, index=False)
    argv = ["train", str(path), "-t", "invest", "--features", "value,capital"]
    code = run([*argv, "--cluster", "nope", "-o", str(tmp_path / "m.safetensors")])
    err = capsys.readouterr().err
    assert code == 2 and "nope" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "m.safetensors").exists()  # refused before any fit


def test_text_cluster_labels_on_several_processes_are_refused_in_one_line():
    from torchlinreg.cli.inference import check_options
    from torchlinreg.errors import DataError

    class Source:  # the two questions check_options asks of a table
        path = "gs.csv"

        def _resolve(self, cols):
            return cols

        def numeric_columns(self):
            return ["invest", "value"]

    opts = {"cluster_cols": ["name"], "alpha": 0.0, "cov_type": None, "maxlags": None}
    with pytest.raises(DataError, match="on several processes cluster labels must be numbers"):
        check_options(opts, exact=True, distributed=True, source=Source())
    check_options(opts, exact=True, distributed=False, source=Source())  # one process: fine


@pytest.mark.parametrize(
    ("args", "said"),
    [(["--cluster", "firm"], "cluster"), (["--cov-type", "HAC", "--maxlags", "2"], "HAC"),
     (["--cov-type", "HC3"], None)],
)  # fmt: skip
def test_a_covariance_the_file_does_not_keep_is_said_at_train_and_predict(
    tmp_path, capsys, args, said
):
    # predict --interval gave the OLS intervals of a HAC or clustered model, 66-79% off
    # the robust ones, without a word (a predictions hunt); HC0..HC3 are kept and used
    code, out = _train(tmp_path, capsys, "--features", "value,capital", *args, "-q")
    assert code == 0, out.err
    assert ("printed here, not kept" in out.err) == (said is not None), out.err
    new = tmp_path / "new.csv"
    _grunfeld()[["value", "capital"]].head(3).to_csv(new, index=False)
    code = run(["predict", str(tmp_path / "m.safetensors"), str(new), "--interval", "0.9"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert ("which its file does not keep" in out.err) == (said is not None), out.err
    if said is None:  # HC3's intervals are statsmodels' HC3 ones
        frame = pd.read_csv(io.StringIO(out.out))
        exog = sm.add_constant(_grunfeld()[["value", "capital"]].head(3).to_numpy())
        d = _grunfeld()
        fit = sm.OLS(d["invest"], sm.add_constant(d[["value", "capital"]].to_numpy()))
        ref = fit.fit(cov_type="HC3").get_prediction(exog).summary_frame(alpha=0.1)
        assert_allclose(frame["invest_mean_ci_lower"], ref["mean_ci_lower"], rtol=1e-9)
