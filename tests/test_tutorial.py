"""The walk-through against the article's printed numbers and independent recomputations."""

import json

import numpy as np
import pytest
import torch

from torchlinreg import tutorial
from torchlinreg.cli.app import run
from torchlinreg.datasets import load_crops


def _article_run_float64() -> list[float]:
    """The article's run recomputed in float64 numpy with hand-written gradients."""
    crops = load_crops()
    x, y = crops.data.astype(np.float64), crops.target.astype(np.float64)
    w = np.array(tutorial.ARTICLE_W, dtype=np.float64)
    b = np.array(tutorial.ARTICLE_B, dtype=np.float64)

    def loss_and_grads(w, b):
        diff = x @ w.T + b - y
        scale = 2.0 / diff.size
        return (diff**2).sum() / diff.size, scale * diff.T @ x, scale * diff.sum(axis=0)

    history = []
    for step in range(901):
        loss, gw, gb = loss_and_grads(w, b)
        history.append(loss)
        factor = 2.0 if step == 0 else 1.0  # the article's doubled first gradient
        w, b = w - 1e-5 * factor * gw, b - 1e-5 * factor * gb
    history.append(loss_and_grads(w, b)[0])
    return history


def _plain_loop(seed: int, epochs: int) -> list[float]:
    """The walk-through's own code, written out independently of the package."""
    crops = load_crops()
    inputs, targets = torch.from_numpy(crops.data), torch.from_numpy(crops.target)
    torch.manual_seed(seed)
    w = torch.randn(2, 3, requires_grad=True)
    b = torch.randn(2, requires_grad=True)
    losses = []
    for _ in range(epochs):
        preds = inputs @ w.t() + b
        diff = preds - targets
        loss = torch.sum(diff * diff) / diff.numel()
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            w -= w.grad * 1e-5
            b -= b.grad * 1e-5
            w.grad.zero_()
            b.grad.zero_()
    diff = inputs @ w.t() + b - targets
    losses.append((torch.sum(diff * diff) / diff.numel()).item())
    return losses


def test_article_figures_within_two_hundredths_of_a_percent():
    run_ = tutorial.run_article()
    assert len(run_.loss_history) == 902
    for fig in tutorial.ARTICLE_FIGURES:
        ours = run_.loss_history[fig.epochs]
        assert abs(ours - fig.article_loss) / fig.article_loss < 2e-4, fig


def test_article_history_matches_float64_recomputation():
    ours = np.array(tutorial.run_article().loss_history)
    ref = np.array(_article_run_float64())
    np.testing.assert_allclose(ours, ref, rtol=1e-4)


def test_single_gradient_does_not_give_the_article_second_figure():
    # The doubled gradient is what the article did: one gradient misses its figure by far.
    x, y = tutorial.crop_tensors()
    w = torch.tensor(tutorial.ARTICLE_W, requires_grad=True)
    b = torch.tensor(tutorial.ARTICLE_B, requires_grad=True)
    single = tutorial.train(x, y, w, b, epochs=1)[-1]
    assert abs(single - 7475.9697) / 7475.9697 > 0.1


@pytest.mark.parametrize("seed,epochs", [(0, 0), (0, 50), (7, 300), (123, 5)])
def test_seeded_run_equals_plain_loop_exactly(seed, epochs):
    assert tutorial.run_seeded(seed, epochs).loss_history == _plain_loop(seed, epochs)


def test_demo_json_article_mode(tmp_path, capsys):
    plot = tmp_path / "loss.png"
    assert run(["demo", "--json", "--plot", str(plot)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "article"
    assert len(out["loss_history"]) == 902
    assert np.array(out["weight"]).shape == (2, 3) and len(out["bias"]) == 2
    assert [s["article_loss"] for s in out["steps"]] == [
        10040.2354,
        7475.9697,
        3413.1062,
        2621.7429,
        737.8288,
        322.5351,
    ]
    for s in out["steps"]:
        assert s["loss"] == out["loss_history"][s["epochs"]]
        assert abs(s["loss"] - s["article_loss"]) / s["article_loss"] < 2e-4
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_json_seed_mode_matches_plain_loop(tmp_path, capsys):
    assert run(["demo", "--seed", "3", "--epochs", "40", "--json", "--no-plot"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["loss_history"] == _plain_loop(3, 40)
    assert out["plot"] is None
    assert not list(tmp_path.iterdir())


def test_demo_text_explains_the_doubled_gradient(tmp_path, capsys):
    assert run(["demo", "--plot", str(tmp_path / "l.png")]) == 0
    text = " ".join(capsys.readouterr().out.split())  # undo the terminal's line wrapping
    assert "twice" in text and "7475.9697" in text and "322.5351" in text
    assert "5 significant digits" in text
