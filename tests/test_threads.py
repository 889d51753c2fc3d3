"""NOTE [threads on shared cores]: a fit uses the idle cores only, and restores the count."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import torch

import torchlinreg as tlr
from torchlinreg.exact.threads import _cores, busy_cores, fit_threads, threads_for_a_fit


def test_a_busy_process_beside_the_fit_takes_a_core_away():
    hog = subprocess.Popen([sys.executable, "-c", "while True:\n    pass\n"])
    try:
        time.sleep(0.3)  # let it run
        # the hog is runnable whenever we look, and it is not ours
        assert busy_cores() >= 1
        assert threads_for_a_fit() <= max(1, _cores() - 1)
    finally:
        hog.kill()
        hog.wait()


def test_the_setting_fixes_the_count_and_the_fit_restores_it(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv("TORCHLINREG_THREADS", "1")
    seen = []

    class Spy(tlr.Callback):
        def on_epoch_end(self, state):
            seen.append(torch.get_num_threads())

    X = np.random.default_rng(0).normal(size=(200, 3))
    tlr.LinearRegression(solver="gd", max_iter=2, tol=None).fit(X, X.sum(1), callbacks=[Spy()])
    assert seen == [1, 1]
    assert torch.get_num_threads() == before
    monkeypatch.setenv("TORCHLINREG_THREADS", "auto")
    with fit_threads() as n:
        assert 1 <= n <= before
    assert torch.get_num_threads() == before
