"""Where the CLI writes: atomically, through symlinks, onto pipes, and never half a file."""

from __future__ import annotations

import errno
import os
import threading

import numpy as np
import pytest

import torchlinreg
from cli_helpers import FEATURES, cli, frame, read_csv_text, write
from torchlinreg.files import io as tio


@pytest.fixture
def trained(tmp_path, capsys):
    df = frame(50)
    data = write(df, tmp_path / "d.csv")
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", data, "-t", "apples", "--features", "a,b,c", "-o", model, "-q")
    assert r.code == 0, r.err
    expected = torchlinreg.load(model).predict(np.ascontiguousarray(df[FEATURES]))
    return data, model, expected


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp") or "probe" in p.name)


def test_predict_replaces_an_existing_file_whole(tmp_path, capsys, trained):
    data, model, expected = trained
    out = tmp_path / "p.csv"
    out.write_text("old\n" * 10_000)  # longer than the predictions: no old tail may remain
    assert cli(capsys, "predict", model, data, "-o", out).code == 0
    np.testing.assert_array_equal(read_csv_text(out.read_text())["apples"], expected)
    assert _leftovers(tmp_path) == []


def test_predict_through_a_symlink_writes_the_file_it_points_at(tmp_path, capsys, trained):
    data, model, expected = trained
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    assert cli(capsys, "predict", model, data, "-o", link).code == 0
    assert link.is_symlink()
    np.testing.assert_array_equal(read_csv_text(real.read_text())["apples"], expected)


def test_predict_into_a_named_pipe_writes_into_it(tmp_path, capsys, trained):
    # /dev/stdout and pipes cannot be renamed over (run as root, the rename would replace
    # the device node itself): they are written directly.
    data, model, expected = trained
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    try:
        r = cli(capsys, "predict", model, data, "-o", fifo)
    finally:
        reader.join(timeout=30)
    assert r.code == 0, r.err
    np.testing.assert_array_equal(read_csv_text(received[0])["apples"], expected)
    assert fifo.is_fifo()


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_while_writing_predictions_keeps_the_old_file(
    tmp_path, capsys, monkeypatch, trained
):
    data, model, _ = trained
    out = tmp_path / "p.parquet"
    out.write_bytes(b"precious")
    monkeypatch.setattr(tio.os, "fsync", _disk_full)
    r = cli(capsys, "predict", model, data, "-o", out)
    r.assert_one_error_line(1, "No space left on device", str(out))
    assert out.read_bytes() == b"precious"
    assert _leftovers(tmp_path) == []


def test_disk_full_while_saving_a_model_keeps_the_old_model(tmp_path, capsys, monkeypatch):
    data = write(frame(30), tmp_path / "d.csv")
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"old model")
    monkeypatch.setattr(tio.os, "replace", _disk_full)
    r = cli(capsys, "train", data, "-t", "apples", "-o", model)
    r.assert_one_error_line(1, "No space left on device", str(model))
    assert model.read_bytes() == b"old model"
    assert _leftovers(tmp_path) == []


def test_ctrl_c_during_an_exact_fit_is_one_line_and_exit_130(tmp_path, capsys, monkeypatch):
    data = write(frame(30), tmp_path / "d.csv")
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"old model")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torchlinreg.LinearRegression, "fit_blocks", interrupted)
    r = cli(capsys, "train", data, "-t", "apples", "-o", model)
    assert (r.code, r.out, r.err) == (130, "", "torchlinreg: interrupted\n")
    assert model.read_bytes() == b"old model"


def test_unexpected_errors_are_still_one_line(tmp_path, capsys, monkeypatch):
    data = write(frame(30), tmp_path / "d.csv")

    def broken(*args, **kwargs):
        raise RuntimeError("some\ninternal failure")

    monkeypatch.setattr(torchlinreg.LinearRegression, "fit_blocks", broken)
    r = cli(capsys, "train", data, "-t", "apples", "-o", tmp_path / "m")
    r.assert_one_error_line(1, "RuntimeError", "some internal failure", "--debug")


def test_predict_needs_a_model_with_feature_names(tmp_path, capsys):
    df = frame(30)
    est = torchlinreg.LinearRegression().fit(df[FEATURES].to_numpy(), df["apples"].to_numpy())
    torchlinreg.save(est, tmp_path / "numpy.safetensors")
    data = write(df, tmp_path / "d.csv")
    r = cli(capsys, "predict", tmp_path / "numpy.safetensors", data)
    r.assert_one_error_line(2, "no feature names", "train it with `torchlinreg train`")
    r = cli(capsys, "summary", tmp_path / "numpy.safetensors", "--json")
    assert r.code == 0, r.err
    assert r.json["features"] == ["x0", "x1", "x2"] and r.json["targets"] == ["target_0"]
    assert r.json["coefficients"]["target_0"]["x2"] == est.coef_[2]


@pytest.mark.slow
def test_real_process_exit_codes_and_a_closed_pipe(tmp_path, capsys):
    import subprocess

    from cli_helpers import PYTHON, subprocess_env

    df = frame(20_000)
    data = write(df, tmp_path / "d.csv")
    model = tmp_path / "m.safetensors"
    assert cli(capsys, "train", data, "-t", "apples", "--features", "a,b,c", "-o", model).code == 0
    tool = [PYTHON, "-m", "torchlinreg"]
    env = subprocess_env()
    pipe = subprocess.PIPE
    # `torchlinreg predict ... | head -1`: the reader leaves, the tool stops quietly
    reader = subprocess.Popen([*tool, "predict", model, data], env=env, stdout=pipe, stderr=pipe)
    bad = subprocess.Popen(
        [*tool, "train", tmp_path / "nope.csv", "-t", "y", "-o", tmp_path / "x"],
        env=env, stdout=pipe, stderr=pipe, text=True,
    )  # fmt: skip
    assert reader.stdout.readline() == b"apples\n"
    reader.stdout.close()
    err = reader.stderr.read()
    reader.stderr.close()
    # 1 when the closed pipe is met mid-write; 0 in the rare schedule where the kernel took
    # the last bytes before the reader left. Either way: no message, no traceback.
    assert reader.wait(timeout=60) in (0, 1)
    assert err == b""
    out, err = bad.communicate(timeout=60)
    assert (bad.returncode, out) == (2, "")
    assert err.count("\n") == 1 and "nope.csv: file not found" in err


@pytest.mark.parametrize("name", ["p.csv.gz", "p.tsv", "p.tsv.gz"])
def test_predict_writes_gzip_and_tab_separated_by_name(tmp_path, capsys, trained, name):
    import gzip

    data, model, expected = trained
    out = tmp_path / name
    assert cli(capsys, "predict", model, data, "-o", out).code == 0
    raw = out.read_bytes()
    text = (gzip.decompress(raw) if name.endswith(".gz") else raw).decode()
    lines = text.splitlines()
    assert lines[0] == "apples" and len(lines) == 51
    assert [float(v) for v in lines[1:]] == list(expected)
    # and our own reader reads it back: gzip and delimiter detected
    back = torchlinreg.open_table(out).read_all(["apples"]).X[:, 0].numpy()
    np.testing.assert_array_equal(back, expected)


def test_a_numerical_failure_is_one_line(tmp_path, capsys, monkeypatch):
    import torch

    data = write(frame(30), tmp_path / "d.csv")

    def fails(*args, **kwargs):
        raise torch.linalg.LinAlgError("linalg.eigh: The algorithm failed to converge")

    monkeypatch.setattr(torchlinreg.LinearRegression, "fit_blocks", fails)
    r = cli(capsys, "train", data, "-t", "apples", "--solver", "gram", "-o", tmp_path / "m")
    r.assert_one_error_line(1, "failed numerically", "eigh", "rescale the columns")
