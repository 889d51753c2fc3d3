"""Checkpoints, Ctrl-C and --resume: an interrupted run, resumed, ends with the same model,
bit for bit, as one that was never interrupted."""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import pytest
import torch

from cli_helpers import PYTHON, cli, frame, subprocess_env, write
from torchlinreg.files.io import load_tensors
from torchlinreg.iterative.checkpoint import load_checkpoint

TRAIN = [PYTHON, "-m", "torchlinreg", "train"]


def _options(solver: str) -> list[str]:
    return ["-t", "apples", "-t", "oranges", "--features", "a,b,c", "--solver", solver,
            "--batch-size", "8", "--epochs", "60", "--seed", "11"]  # fmt: skip


def _interrupt_when_written(proc: subprocess.Popen, path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists():
            proc.send_signal(signal.SIGINT)
            return
        time.sleep(0.005)


def _same_model(a, b) -> None:
    ta, meta_a = load_tensors(a)
    tb, meta_b = load_tensors(b)
    for name in ("weight", "bias", "loss_history"):
        assert torch.equal(ta[name], tb[name]), name
    assert meta_a["n_iter"] == meta_b["n_iter"]


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_ctrl_c_saves_a_checkpoint_and_resume_gives_the_uninterrupted_model(
    tmp_path, capsys, solver
):
    data = write(frame(3000, seed=4), tmp_path / "d.csv")
    ckpt = tmp_path / "run.ckpt"
    killed = tmp_path / "interrupted.safetensors"
    proc = subprocess.Popen(
        [
            *TRAIN,
            data,
            *_options(solver),
            "--checkpoint",
            ckpt,
            "--checkpoint-every",
            "1",
            "-o",
            killed,
        ],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watcher = threading.Thread(target=_interrupt_when_written, args=(proc, ckpt))
    watcher.start()
    try:
        # the uninterrupted reference, in this process, while the other one trains
        reference = tmp_path / "reference.safetensors"
        r = cli(capsys, "train", data, *_options(solver), "-o", reference, "-q")
        assert r.code == 0, r.err
        watcher.join(timeout=120)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.count("\n") == 1
    assert "interrupted after epoch" in err and f"--resume {ckpt}" in err
    assert not killed.exists()  # no model from an unfinished run
    state, config = load_checkpoint(ckpt)
    final_epochs = load_tensors(reference)[1]["n_iter"]
    assert 1 <= state["epoch"] < final_epochs  # it really stopped mid-training
    assert config["solver"] == solver

    resumed = tmp_path / "resumed.safetensors"
    r = cli(capsys, "train", data, *_options(solver), "--resume", ckpt, "-o", resumed, "--json")
    assert r.code == 0, r.err
    assert r.json["epochs"] == final_epochs
    _same_model(resumed, reference)


@pytest.fixture(scope="module")
def finished_checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    data = write(frame(200, seed=2), folder / "d.csv")
    ckpt = folder / "run.ckpt"
    model = folder / "m.safetensors"
    code = _run_quietly(
        [
            "train",
            data,
            *_options("sgd"),
            *["--checkpoint", ckpt, "--checkpoint-every", "3"],
            *["-o", model],
        ]
    )
    assert code == 0
    return data, ckpt, model


def _run_quietly(args) -> int:
    from torchlinreg.cli.app import run

    return run([str(a) for a in [*args, "-q"]])


def test_checkpoint_of_a_finished_run_resumes_to_the_same_model(
    tmp_path, capsys, finished_checkpoint
):
    data, ckpt, model = finished_checkpoint
    state, _ = load_checkpoint(ckpt)
    assert state["epoch"] == load_tensors(model)[1]["n_iter"]  # written at the end too
    assert state["stop_reason"]  # and it knows why the run stopped
    again = tmp_path / "again.safetensors"
    r = cli(capsys, "train", data, *_options("sgd"), "--resume", ckpt, "-o", again, "-q")
    assert (r.code, r.err) == (0, "")
    _same_model(again, model)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (["--solver", "adam"], "solver='sgd'"),
        (["--features", "a,b"], "features=['a', 'b', 'c']"),
        (["--alpha", "0.5"], "alpha=0.0"),
        (["--no-intercept"], "fit_intercept=True"),
        (["--weights", "w"], "weights=None"),
    ],
)
def test_resume_with_other_settings_is_a_clean_error(
    tmp_path, capsys, finished_checkpoint, change, needle
):
    data, ckpt, _ = finished_checkpoint
    opts = _options("sgd")
    for flag in ("--solver", "--features"):
        if flag in change:
            i = opts.index(flag)
            del opts[i : i + 2]
    out = tmp_path / "m.safetensors"
    r = cli(capsys, "train", data, *opts, *change, "--resume", ckpt, "-o", out)
    r.assert_one_error_line(2, str(ckpt), needle, "same settings")
    assert not out.exists()


def test_resume_on_other_data_is_a_clean_error(tmp_path, capsys, finished_checkpoint):
    _, ckpt, _ = finished_checkpoint
    other = write(frame(150, seed=9), tmp_path / "other.csv")
    r = cli(capsys, "train", other, *_options("sgd"), "--resume", ckpt, "-o", tmp_path / "m")
    r.assert_one_error_line(2, str(ckpt), "rows=200", "150", "same settings")


def test_resume_with_an_exact_solver_is_a_usage_error(tmp_path, capsys, finished_checkpoint):
    data, ckpt, _ = finished_checkpoint
    r = cli(capsys, "train", data, "-t", "apples", "--resume", ckpt, "-o", tmp_path / "m")
    r.assert_one_error_line(2, "--resume", "iterative solvers")


def test_damaged_checkpoint_is_a_clean_error(tmp_path, capsys, finished_checkpoint):
    data, ckpt, _ = finished_checkpoint
    bad = tmp_path / "bad.ckpt"
    raw = ckpt.read_bytes()
    bad.write_bytes(raw[: len(raw) // 2])
    r = cli(capsys, "train", data, *_options("sgd"), "--resume", bad, "-o", tmp_path / "m")
    r.assert_one_error_line(2, str(bad))


@pytest.mark.parametrize(
    ("change", "needle"),
    [(["--lr", "0.05"], "--lr 0.05 is not what the checkpoint"),
     (["--batch-size", "16"], "was written with (8)")],
)  # fmt: skip
def test_resume_with_another_rate_or_batch_size_says_so(
    tmp_path, capsys, finished_checkpoint, change, needle
):
    # taken from the resumed epoch on (the model differs), said: before, nothing was
    data, ckpt, _ = finished_checkpoint
    out = tmp_path / "again.safetensors"
    r = cli(capsys, "train", data, *_options("sgd"), *change, "--resume", ckpt, "-o", out, "-q")
    assert r.code == 0, r.err
    assert needle in r.err and "epochs from" in r.err, r.err
    same = cli(capsys, "train", data, *_options("sgd"), "--resume", ckpt, "-o", out, "-q")
    assert (same.code, same.err) == (0, "")
