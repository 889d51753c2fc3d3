"""`train --solver lasso|elasticnet`: the estimator, what the report adds, and the plots.

A fit with ``--cv K`` chooses alpha from K hashed folds in the same single pass over DATA
(:mod:`torchlinreg.estimator.penalized_cv`); the model saved is the lasso or elastic net at
the chosen alpha, solved from the state of all rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..estimator.penalized import ElasticNet, Lasso
from ..estimator.penalized_cv import ElasticNetCV, LassoCV
from ..models.moments import moments
from ..models.paths import alpha_grid, path_from_moments

PENALIZED_SOLVERS = ("lasso", "elasticnet")


def estimator(opts: dict[str, Any]):
    """The estimator ``train`` fits for ``--solver lasso|elasticnet``."""
    lasso = opts["solver"] == "lasso"
    common = {"fit_intercept": not opts["no_intercept"], "device": opts["device"]}
    if opts["cv"]:
        cv = {"cv": opts["cv"], "alphas": opts["alphas"], "random_state": opts["seed"], **common}
        return LassoCV(**cv) if lasso else ElasticNetCV(l1_ratio=opts["l1_ratio"], **cv)
    if lasso:
        return Lasso(alpha=opts["alpha"], **common)
    return ElasticNet(alpha=opts["alpha"], l1_ratio=opts["l1_ratio"], **common)


def to_save(est):
    """The model to write: a *CV estimator becomes the plain model at its ``alpha_``."""
    if not hasattr(est, "alpha_"):
        return est
    params = {"fit_intercept": est.fit_intercept, "tol": est.tol, "max_iter": est.max_iter}
    if isinstance(est, LassoCV):
        plain = Lasso(alpha=est.alpha_, **params)
    else:
        plain = ElasticNet(alpha=est.alpha_, l1_ratio=est.l1_ratio_, **params)
    plain.solver, plain.device = est.solver, est.device
    for key in _FITTED:
        if hasattr(est, key):
            setattr(plain, key, getattr(est, key))
    return plain


# What a fitted estimator holds that saving and predicting read.
_FITTED = (
    "state_", "model_", "n_features_in_", "feature_names_in_", "n_iter_", "dual_gap_",
    "loss_history_", "coef_", "intercept_", "_y_was_1d", "_target_names", "_output_kind",
    "_output_dtype", "_weighted",
)  # fmt: skip


def penalty_summary(est) -> dict[str, Any]:
    """What the report adds: the penalty used, and with --cv the curve it was chosen from."""
    out: dict[str, Any] = {"l1_ratio": float(est.l1_ratio)}
    if hasattr(est, "alpha_"):
        out.update(
            alpha=est.alpha_,
            l1_ratio=est.l1_ratio_,
            cv_folds=int(est.mse_path_.shape[-1]),
            cv_best_mse=float(est.mse_path_.mean(axis=-1).min()),
        )
    else:
        out["alpha"] = float(est.alpha)
    out["nonzero_coefficients"] = int(np.count_nonzero(est.model_.weight.cpu().numpy()))
    return out


def penalty_plots(est, feature_names: list[str], plot_dir: str) -> list[str]:
    """The coefficient path (first target) and, with --cv, the CV curve with its SE band."""
    from .. import plots as draw

    m = moments(est.state_)
    cv = hasattr(est, "alpha_")
    chosen = float(est.alpha_ if cv else est.alpha)
    ratio = float(est.l1_ratio_ if cv else est.l1_ratio)
    grid = getattr(est, "alphas_", None)
    if grid is None or np.ndim(grid) != 1:
        grid = alpha_grid(m, ratio, 100) if ratio > 0 else np.geomspace(chosen * 1e3, chosen, 100)
        grid = np.unique(np.append(grid, chosen))[::-1]
    coefs = path_from_moments(m, grid, ratio, tol=est.tol, max_iter=est.max_iter, warn=False)[0]
    saved = [
        draw.coefficient_path(
            grid, coefs[0], feature_names, Path(plot_dir, "path.png"), chosen=chosen
        )
    ]
    if hasattr(est, "mse_path_") and np.ndim(est.mse_path_) == 2:
        saved.append(draw.cv_curve(grid, est.mse_path_, Path(plot_dir, "cv.png"), chosen=chosen))
    return [str(p) for p in saved]
