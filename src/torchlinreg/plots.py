"""PNG plots a person would rather look at than read: loss curves, fit and residuals.

matplotlib is imported lazily with the Agg backend, so importing torchlinreg never needs a
display, and every file is written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .files.io import atomic_write


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    finally:
        _pyplot().close(fig)
    return path


def loss_curve(
    history: Sequence[float],
    path: str | Path,
    *,
    title: str = "Training loss",
    marks: Sequence[tuple[int, float, str]] = (),
    ylabel: str = "mean squared error",
) -> Path:
    """Save the loss per epoch (log scale) as a PNG; ``marks`` are (epoch, loss, label) dots.

    ``ylabel`` says what the loss is: the walk-through's is the MSE in the data's units, a
    standardized fit's is not.

    Example:
        >>> loss_curve([4.0, 2.0, 1.0], "loss.png")  # doctest: +SKIP
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(np.arange(len(history)), np.asarray(history, dtype=float), lw=1.6, label="loss")
    for epoch, value, label in marks:
        ax.plot([epoch], [value], "o", ms=5, color="tab:red")
        ax.annotate(label, (epoch, value), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel("epoch (updates applied)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _per_target(y_true, y_pred, target_names, path, draw) -> Path:
    """One panel per target; ``draw(ax, actual, predicted, name)`` fills each."""
    plt = _pyplot()
    y_true, y_pred = np.atleast_2d(y_true.T).T, np.atleast_2d(y_pred.T).T
    k = y_true.shape[1]
    fig, axes = plt.subplots(1, k, figsize=(4.2 * k, 4.0), squeeze=False)
    for j, ax in enumerate(axes[0]):
        draw(ax, y_true[:, j], y_pred[:, j], target_names[j])
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def predicted_vs_actual(
    y_true: np.ndarray, y_pred: np.ndarray, target_names: Sequence[str], path: str | Path
) -> Path:
    """One scatter per target of prediction against truth, with the identity line."""

    def draw(ax, actual, predicted, name):
        ax.scatter(actual, predicted, s=8, alpha=0.6)
        lo = float(min(actual.min(), predicted.min()))
        hi = float(max(actual.max(), predicted.max()))
        ax.plot([lo, hi], [lo, hi], color="k", lw=1)
        ax.set_xlabel(f"actual {name}")
        ax.set_ylabel(f"predicted {name}")

    return _per_target(y_true, y_pred, target_names, path, draw)


def residuals(
    y_true: np.ndarray, y_pred: np.ndarray, target_names: Sequence[str], path: str | Path
) -> Path:
    """One scatter per target of residual (actual - predicted) against prediction."""

    def draw(ax, actual, predicted, name):
        ax.scatter(predicted, actual - predicted, s=8, alpha=0.6)
        ax.axhline(0.0, color="k", lw=1)
        ax.set_xlabel(f"predicted {name}")
        ax.set_ylabel("residual")

    return _per_target(y_true, y_pred, target_names, path, draw)


def regression_diagnostics(
    diag: dict[str, np.ndarray], n_params: int, target_names: Sequence[str], path: str | Path
) -> Path:
    """R's ``plot(lm)`` four panels per target, in one PNG: residuals vs fitted, normal Q-Q
    of the standardized residuals, scale-location, and residuals vs leverage with Cook's
    distance contours at 0.5 and 1. ``diag`` holds ``fitted``, ``resid``, ``std_resid``
    ``(n, k)`` and ``leverage`` ``(n,)`` (``stats.influence.influence_of_rows``).

    Example:
        >>> regression_diagnostics(d, 3, ["y"], "diagnostics.png")  # doctest: +SKIP
    """
    from scipy import stats

    plt = _pyplot()
    k = len(target_names)
    fig, axes = plt.subplots(k, 4, figsize=(16, 3.8 * k), squeeze=False)
    h = np.asarray(diag["leverage"], dtype=float)
    for t, name in enumerate(target_names):
        fitted, resid = diag["fitted"][:, t], diag["resid"][:, t]
        std = diag["std_resid"][:, t]
        ok = np.isfinite(std)
        ax = axes[t, 0]
        ax.scatter(fitted, resid, s=6, alpha=0.5)
        ax.axhline(0, color="grey", lw=0.8, ls="--")
        ax.set(xlabel="fitted values", ylabel="residuals", title=f"{name}: residuals vs fitted")
        ax = axes[t, 1]
        (osm, osr), (slope, icpt, _) = stats.probplot(std[ok], dist="norm")
        ax.scatter(osm, osr, s=6, alpha=0.5)
        ax.plot(osm, slope * osm + icpt, color="tab:red", lw=1)
        ax.set(xlabel="theoretical quantiles", ylabel="standardized residuals", title="normal Q-Q")
        ax = axes[t, 2]
        ax.scatter(fitted[ok], np.sqrt(np.abs(std[ok])), s=6, alpha=0.5)
        ax.set(xlabel="fitted values", ylabel="sqrt(|standardized residuals|)")
        ax.set_title("scale-location")
        ax = axes[t, 3]
        ax.scatter(h[ok], std[ok], s=6, alpha=0.5)
        grid = np.linspace(max(h[ok].min(), 1e-3), max(h[ok].max(), 1e-2) * 1.05, 200)
        for d, style in ((0.5, "--"), (1.0, ":")):
            r = np.sqrt(d * n_params * (1 - grid) / grid)
            ax.plot(grid, r, color="tab:red", ls=style, lw=1, label=f"Cook's D = {d:g}")
            ax.plot(grid, -r, color="tab:red", ls=style, lw=1)
        lim = np.nanmax(np.abs(std[ok])) * 1.2 if ok.any() else 1.0
        ax.set_ylim(-lim, lim)
        ax.axhline(0, color="grey", lw=0.8, ls="--")
        ax.set(xlabel="leverage", ylabel="standardized residuals", title="residuals vs leverage")
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return _save(fig, path)


def coefficient_path(
    alphas: np.ndarray,
    coefs: np.ndarray,
    feature_names: Sequence[str],
    path: str | Path,
    *,
    chosen: float | None = None,
) -> Path:
    """Each coefficient against alpha (log scale; ``coefs`` is (d, n_alphas)), the chosen
    alpha as a dashed line; named in a legend for at most ten features.

    Example:
        >>> coefficient_path(np.array([1.0, 0.1]), np.eye(2), ["a", "b"], "p.png")  # doctest: +SKIP
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for j, name in enumerate(feature_names):
        ax.plot(alphas, coefs[j], lw=1.2, label=name)
    if chosen is not None:
        ax.axvline(chosen, color="k", ls="--", lw=1, label=f"alpha = {chosen:.3g}")
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("alpha (penalty)")
    ax.set_ylabel("coefficient")
    ax.set_title("Coefficient path")
    if len(feature_names) <= 10:
        ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def cv_curve(alphas: np.ndarray, mse_path: np.ndarray, path: str | Path, *, chosen: float) -> Path:
    """Mean held-out MSE against alpha with a band of one standard error across folds
    (``mse_path`` is (n_alphas, n_folds)), the chosen alpha as a dashed line.

    Example:
        >>> cv_curve(np.array([1.0, 0.1]), np.ones((2, 3)), "cv.png", chosen=0.1)  # doctest: +SKIP
    """
    plt = _pyplot()
    mean = mse_path.mean(axis=1)
    se = mse_path.std(axis=1, ddof=1) / np.sqrt(mse_path.shape[1])
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(alphas, mean, lw=1.6, label="mean held-out MSE")
    ax.fill_between(alphas, mean - se, mean + se, alpha=0.25, label="one standard error")
    ax.axvline(chosen, color="k", ls="--", lw=1, label=f"alpha = {chosen:.3g}")
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("alpha (penalty)")
    ax.set_ylabel("mean squared error")
    ax.set_title(f"{mse_path.shape[1]}-fold cross-validation")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
