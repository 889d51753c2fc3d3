"""The walk-through: linear regression from scratch in PyTorch, step by step.

Crop yields of apples and oranges predicted from temperature, rainfall and humidity.
Everything is explicit on purpose: weights ``w`` and biases ``b`` with
``requires_grad=True``, the model ``x @ w.t() + b``, a hand-written mean squared error,
``loss.backward()``, and a manual update under ``torch.no_grad()`` followed by zeroing the
gradients. The iterative engine's ``gd`` solver reproduces these losses bit for bit.

Example:
    >>> run = run_seeded(seed=0, epochs=100)
    >>> len(run.loss_history)
    101
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .datasets import load_crops

LEARNING_RATE = 1e-5

# The article printed its random initial weights rounded to 4 decimals; starting from these
# reproduces its losses to about 5 significant digits, not exactly.
ARTICLE_W = ((0.8107, 1.2951, -1.4349), (1.3329, -1.3815, -0.1888))
ARTICLE_B = (-1.1700, 0.2881)


@dataclass(frozen=True)
class ArticleFigure:
    """One loss the article printed, and after how many updates it was taken."""

    label: str
    epochs: int  # updates applied before this loss was computed; indexes loss_history
    article_loss: float


# NOTE [the doubled first gradient]
# The article's first update lands on 7475.9697, which a single gradient step does not give.
# Its notebook called loss.backward() twice before that step (once to show the gradient,
# once more in the next cell), and PyTorch *adds* gradients until they are zeroed: the first
# step used twice the gradient. From then on its figures are plain training: 10 more epochs,
# then the table's "20/200/500 epochs" rows at 30, 400 and 900 epochs after the first update.
ARTICLE_FIGURES = (
    ArticleFigure("initial loss", 0, 10040.2354),
    ArticleFigure("after the first update", 1, 7475.9697),
    ArticleFigure("after 10 more epochs", 11, 3413.1062),
    ArticleFigure("20 epochs", 31, 2621.7429),
    ArticleFigure("200 epochs", 401, 737.8288),
    ArticleFigure("500 epochs", 901, 322.5351),
)


def crop_tensors() -> tuple[Tensor, Tensor]:
    """The crop data as torch tensors, converted from numpy exactly as the article does."""
    crops = load_crops()
    inputs = torch.from_numpy(crops.data)
    targets = torch.from_numpy(crops.target)
    return inputs, targets


def model(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """The linear model of the walk-through."""
    return x @ w.t() + b


def mse(t1: Tensor, t2: Tensor) -> Tensor:
    """Mean squared error, written out as the walk-through does."""
    diff = t1 - t2
    return torch.sum(diff * diff) / diff.numel()


def update(w: Tensor, b: Tensor, lr: float) -> None:
    """One manual gradient-descent step, then zero the gradients (they accumulate otherwise)."""
    with torch.no_grad():
        w -= w.grad * lr
        b -= b.grad * lr
        w.grad.zero_()
        b.grad.zero_()


def current_loss(x: Tensor, y: Tensor, w: Tensor, b: Tensor) -> float:
    """The loss at the current weights, without recording a graph."""
    with torch.no_grad():
        return mse(model(x, w, b), y).item()


def train(
    x: Tensor,
    y: Tensor,
    w: Tensor,
    b: Tensor,
    epochs: int,
    lr: float = LEARNING_RATE,
    on_loss: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Run ``epochs`` plain updates; return ``epochs + 1`` losses.

    The loss each epoch computes before its update is the loss after the previous update,
    so the history is: the loss before any update, then the loss after each update, with
    one forward pass per epoch and one more at the end. ``on_loss(updates_done, loss)`` sees
    each value as it is computed.
    """
    history = []
    for epoch in range(epochs):
        preds = model(x, w, b)
        loss = mse(preds, y)
        history.append(loss.item())
        if on_loss is not None:
            on_loss(epoch, history[-1])
        loss.backward()
        update(w, b, lr)
    history.append(current_loss(x, y, w, b))
    if on_loss is not None:
        on_loss(epochs, history[-1])
    return history


@dataclass
class TutorialRun:
    """Losses (before any update, then after each), final weights and predictions."""

    loss_history: list[float]
    w: Tensor
    b: Tensor
    inputs: Tensor
    targets: Tensor

    @property
    def predictions(self) -> Tensor:
        with torch.no_grad():
            return model(self.inputs, self.w, self.b)


def run_seeded(
    seed: int,
    epochs: int,
    lr: float = LEARNING_RATE,
    on_loss: Callable[[int, float], None] | None = None,
) -> TutorialRun:
    """The walk-through from ``torch.manual_seed(seed)``: ``w = randn(2, 3)``, ``b = randn(2)``."""
    inputs, targets = crop_tensors()
    torch.manual_seed(seed)
    w = torch.randn(2, 3, requires_grad=True)
    b = torch.randn(2, requires_grad=True)
    history = train(inputs, targets, w, b, epochs, lr, on_loss)
    return TutorialRun(history, w.detach(), b.detach(), inputs, targets)


def run_article(on_loss: Callable[[int, float], None] | None = None) -> TutorialRun:
    """The article's run, from its printed weights, with its doubled first gradient.

    ``loss_history`` has 902 values: the initial loss, the loss after the (doubled) first
    update, then after each of 900 plain epochs. ``ARTICLE_FIGURES[i].epochs`` indexes it.
    """
    inputs, targets = crop_tensors()
    w = torch.tensor(ARTICLE_W, requires_grad=True)
    b = torch.tensor(ARTICLE_B, requires_grad=True)

    # See NOTE [the doubled first gradient]: backward() twice, then one update.
    loss = mse(model(inputs, w, b), targets)
    history = [loss.item()]
    if on_loss is not None:
        on_loss(0, history[0])
    loss.backward()
    mse(model(inputs, w, b), targets).backward()
    update(w, b, LEARNING_RATE)

    def shifted(updates_done: int, value: float) -> None:
        if on_loss is not None:
            on_loss(updates_done + 1, value)

    history += train(inputs, targets, w, b, ARTICLE_FIGURES[-1].epochs - 1, on_loss=shifted)
    return TutorialRun(history, w.detach(), b.detach(), inputs, targets)
