"""The solvers' optimizers are torch's, without torch._dynamo (NOTE [no torch._dynamo])."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from cli_helpers import subprocess_env
from torchlinreg.iterative.optimizers import LBFGS, Adam, PlainGD


def _problem(seed: int, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(64, 5, generator=g, dtype=dtype)
    y = X @ torch.randn(5, 2, generator=g, dtype=dtype) + 0.1 * torch.randn(64, 2, generator=g)
    return X, y.to(dtype)


def _train(make, X, y, steps: int):
    w = torch.zeros(5, 2, dtype=X.dtype, requires_grad=True)
    b = torch.zeros(2, dtype=X.dtype, requires_grad=True)
    opt = make([w, b])
    for i in range(steps):
        # mini-batches of 16 rows, so the moments see different gradients
        rows = slice(16 * (i % 4), 16 * (i % 4) + 16)
        opt.zero_grad()
        ((X[rows] @ w + b - y[rows]) ** 2).mean().backward()
        opt.step()
    return w.detach(), b.detach(), opt


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_adam_is_torch_adam_bit_for_bit(dtype):
    X, y = _problem(0, dtype)
    ours = _train(lambda ps: Adam(ps, lr=0.01), X, y, 200)
    theirs = _train(lambda ps: torch.optim.Adam(ps, lr=0.01), X, y, 200)
    assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
    # 1) the checkpointed state is torch's: same keys, same values, loadable both ways
    a, b = ours[2].state_dict(), theirs[2].state_dict()
    assert a["param_groups"] == b["param_groups"]
    for i in a["state"]:
        assert a["state"][i].keys() == b["state"][i].keys()
        for key in a["state"][i]:
            assert torch.equal(a["state"][i][key], b["state"][i][key]), key
    theirs[2].load_state_dict(a)
    ours[2].load_state_dict(b)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_adam_foreach_route_is_torch_adam_bit_for_bit(dtype):
    # parameters on a GPU take the foreach route (NOTE [small steps on a GPU]); run here
    class OnEveryDevice(Adam):
        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                live = [p for p in group["params"] if p.grad is not None]
                self._foreach_step(live, *group["betas"], group["lr"], group["eps"])

    X, y = _problem(2, dtype)
    ours = _train(lambda ps: OnEveryDevice(ps, lr=0.01), X, y, 200)
    theirs = _train(lambda ps: torch.optim.Adam(ps, lr=0.01, foreach=False), X, y, 200)
    assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1])
    a, b = ours[2].state_dict(), theirs[2].state_dict()
    for i in a["state"]:
        for key in a["state"][i]:
            assert torch.equal(a["state"][i][key], b["state"][i][key]), key


def test_lbfgs_is_torch_lbfgs():
    X, y = _problem(1)

    def run(cls):
        w = torch.zeros(5, 2, dtype=torch.float64, requires_grad=True)
        opt = cls([w], line_search_fn="strong_wolfe", max_iter=5)

        def closure():
            opt.zero_grad()
            loss = ((X @ w - y) ** 2).mean()
            loss.backward()
            return loss

        for _ in range(4):
            opt.step(closure)
        return w.detach()

    assert torch.equal(run(LBFGS), run(torch.optim.LBFGS))


def test_plain_gd_is_the_walk_through_step():
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    (w**3).sum().backward()  # gradient 3 w^2 = [3, 12]
    PlainGD([w], lr=1e-5).step()
    assert torch.equal(w.detach(), torch.tensor([1.0, -2.0]) - torch.tensor([3.0, 12.0]) * 1e-5)


def test_an_iterative_fit_never_imports_the_compiler():
    # torch._dynamo costs about a second on first import: the first fit must not pay it
    script = (
        "import sys, torchlinreg as tlr\n"
        "crops = tlr.datasets.load_crops()\n"
        "for s in ('gd', 'sgd', 'adam', 'lbfgs'):\n"
        "    tlr.LinearRegression(solver=s, max_iter=5, tol=None).fit(crops.data, crops.target)\n"
        "print('torch._dynamo' in sys.modules, 'sympy' in sys.modules)\n"
    )
    r = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script],
        env=subprocess_env(),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"]
