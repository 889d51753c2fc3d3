"""Regression metrics per target: MSE, RMSE, MAE, R2 (optionally weighted).

NOTE [metric definitions]
One definition everywhere: :func:`regression_metrics`, :class:`StreamingMetrics`,
:func:`metrics_from_state` (the estimators' ``state_metrics``), and the ``train`` and
``evaluate`` commands, whose reports say ``weighted: true`` when a weight column was used.
With weights ``w >= 0`` (all 1 when unweighted), ``W = sum(w)`` and residuals
``e = y - prediction``, for each target:

- ``mse = sum(w e^2) / W``, ``rmse = sqrt(mse)``, ``mae = sum(w |e|) / W``;
- ``r2 = 1 - sum(w e^2) / sum(w (y - ybar)^2)`` with ``ybar = sum(w y) / W``: the centred
  R2, scikit-learn's ``r2_score(y, prediction, sample_weight=w)``;
- ``r2_uncentered = 1 - sum(w e^2) / sum(w y^2)``: statsmodels' ``rsquared`` of a model
  without a constant (compared with the null model ``y = 0``); reported only for models
  fitted without an intercept.

A zero total sum of squares gives 1.0 for a perfect prediction and 0.0 otherwise, and
fewer than two rows give NaN, as scikit-learn does. Rows of weight zero count as rows but
add nothing. The centred R2 needs the target's weighted mean, which the state of a model
without an intercept does not hold: :func:`metrics_from_state` then gives it only when
the target moments are passed (``train`` collects them while it reads the rows).
"""

from __future__ import annotations

import torch
from torch import Tensor

ORDER = ("mse", "rmse", "mae", "r2", "r2_uncentered")


def _as_2d(t: Tensor) -> Tensor:
    return t.reshape(-1, 1) if t.ndim == 1 else t


def _wsum(values: Tensor, w: Tensor | None) -> Tensor:
    """Column sums, weighted by ``w`` when given (unweighted: a plain sum, the same bits
    as before weights were taken)."""
    return values.sum(dim=0) if w is None else w @ values


def _r2(sse: Tensor, sst: Tensor, n_rows: int) -> Tensor:
    safe = torch.where(sst > 0, sst, torch.ones_like(sst))
    r2 = torch.where(sst > 0, 1.0 - sse / safe, torch.where(sse == 0, 1.0, 0.0).to(sse.dtype))
    # NaN in the data is NaN here too (it read as "no spread": R2 0 beside an MSE of NaN)
    r2 = torch.where(torch.isnan(sse) | torch.isnan(sst), float("nan"), r2)
    if n_rows < 2:  # R2 is not defined for one row (scikit-learn gives NaN too)
        r2 = torch.full_like(r2, float("nan"))
    return r2


def metrics_from_sums(
    *,
    sse: Tensor,
    sum_w: Tensor | float,
    n_rows: int,
    sae: Tensor | None = None,
    sst: Tensor | None = None,
    sst_uncentered: Tensor | None = None,
) -> dict[str, Tensor]:
    """The metrics of NOTE [metric definitions] from weighted sums: residual (``sse``),
    absolute (``sae``), centred (``sst``) and uncentred (``sst_uncentered``) sums of
    squares; the ones given as None are left out of the result.

    Example:
        >>> m = metrics_from_sums(sse=torch.tensor([1.0]), sum_w=4.0, n_rows=4,
        ...                       sst=torch.tensor([2.0]))
        >>> sorted(m), float(m["mse"][0]), float(m["r2"][0])
        (['mse', 'r2', 'rmse'], 0.25, 0.5)
    """
    mse = sse / sum_w
    out = {"mse": mse, "rmse": mse.sqrt()}
    if sae is not None:
        out["mae"] = sae / sum_w
    if sst is not None:
        out["r2"] = _r2(sse, sst, n_rows)
    if sst_uncentered is not None:
        out["r2_uncentered"] = _r2(sse, sst_uncentered, n_rows)
    return out


def regression_metrics(
    y_true: Tensor,
    y_pred: Tensor,
    sample_weight: Tensor | None = None,
    *,
    uncentered: bool = False,
) -> dict[str, Tensor]:
    """MSE, RMSE, MAE and R2 for each target column, computed in float64.

    Definitions in NOTE [metric definitions]; ``uncentered=True`` (a model without an
    intercept) adds ``r2_uncentered``.

    Example:
        >>> m = regression_metrics(torch.tensor([1.0, 2, 3]), torch.tensor([1.0, 2, 4]))
        >>> round(float(m["mse"][0]), 4), round(float(m["r2"][0]), 4)
        (0.3333, 0.5)
    """
    yt = _as_2d(y_true).to(torch.float64)
    yp = _as_2d(y_pred).to(device=yt.device, dtype=torch.float64)
    w = None if sample_weight is None else sample_weight.to(yt).reshape(-1)
    if yt.shape[0] == 0:  # NaN metrics without a word before
        raise ValueError("no rows to score: y_true is empty")
    err = yt - yp
    total = float(yt.shape[0]) if w is None else w.sum()
    if not total > 0:  # R2 read 1.0 beside an MSE of NaN
        raise ValueError("every row has weight zero: nothing to score; give some rows a weight")
    centred = yt - _wsum(yt, w) / total
    centred = centred - _wsum(centred, w) / total  # what the mean's rounding left (y ~ 1e9)
    return metrics_from_sums(
        sse=_wsum(err * err, w),
        sum_w=total,
        n_rows=yt.shape[0],
        sae=_wsum(err.abs(), w),
        sst=_wsum(centred * centred, w),
        sst_uncentered=_wsum(yt * yt, w) if uncentered else None,
    )


def r2_score(y_true: Tensor, y_pred: Tensor, sample_weight: Tensor | None = None) -> float:
    """R2 averaged uniformly over targets (scikit-learn's default for several outputs)."""
    return float(regression_metrics(y_true, y_pred, sample_weight)["r2"].mean())


def metrics_from_state(
    state, coef: Tensor, intercept: Tensor, *, target_moments=None
) -> dict[str, Tensor]:
    """MSE, RMSE and R2 of ``Y ~ X coef.T + intercept`` on the rows a least-squares state
    absorbed (:class:`~torchlinreg.exact.state.LeastSquaresState`), without the rows.

    With centred factor ``R`` of ``[X | Y]`` (``R.T R`` the weighted co-moments), means
    ``m`` and total weight ``W``, the weighted residual sum of squares of any coefficients
    is ``||R [-coef; I]||^2 + W (m_y - coef m_x - b)^2``. With an intercept the state is
    centred and gives ``r2``; without, ``m = 0`` and it gives ``r2_uncentered``, and
    ``r2`` too when ``target_moments`` (a state of the targets alone, 0 features, with an
    intercept) is given. Definitions in NOTE [metric definitions].

    Example:
        >>> from torchlinreg.exact.state import LeastSquaresState
        >>> X = torch.arange(8.0)[:, None]; y = 2 * X[:, 0] + torch.tensor([1.0, -1] * 4)
        >>> state = LeastSquaresState(1, 1).absorb(X, y)
        >>> m = metrics_from_state(state, torch.tensor([[2.0]]), torch.tensor([0.0]))
        >>> float(m["mse"][0])
        1.0
    """
    summary = state.centred_summary()
    r, d = summary.r, state.n_features
    coef = coef.to(device=r.device, dtype=r.dtype)
    b = intercept.to(device=r.device, dtype=r.dtype)
    offset = summary.means[d:] - coef @ summary.means[:d] - b
    sse = ((r[:, :d] @ coef.T - r[:, d:]) ** 2).sum(dim=0) + summary.sum_weights * offset**2
    tss = (r[:, d:] ** 2).sum(dim=0)
    sst = tss if state.fit_intercept else None
    if sst is None and target_moments is not None:
        sst = (target_moments.centred_summary().r ** 2).sum(dim=0).to(tss)
    return metrics_from_sums(
        sse=sse,
        sum_w=summary.sum_weights,
        n_rows=state.n_samples,
        sst=sst,
        sst_uncentered=None if state.fit_intercept else tss,
    )


class StreamingMetrics:
    """MSE, RMSE, MAE and R2 per target accumulated over row blocks in one pass.

    Definitions in NOTE [metric definitions]: ``sample_weight`` per block weights the rows,
    ``uncentered=True`` (a model without an intercept) adds ``r2_uncentered``. The weighted
    target means and centred sums of squares are merged block by block with the pairwise
    formula (Chan, Golub & LeVeque), so R2 keeps its digits on targets with large offsets.

    Example:
        >>> acc = StreamingMetrics()
        >>> acc.update(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]))
        >>> acc.update(torch.tensor([3.0]), torch.tensor([4.0]))
        >>> round(float(acc.result()["r2"][0]), 4)
        0.375
    """

    def __init__(self, *, uncentered: bool = False) -> None:
        self.uncentered = uncentered
        self.n = 0
        self.sum_w = 0.0
        self._sums: dict[str, Tensor] | None = None
        self._mean: Tensor | None = None
        self._m2: Tensor | None = None
        # NOTE [metrics about a shift]: the targets are taken about the first row that counts
        self._shift: Tensor | None = None

    def update(self, y_true: Tensor, y_pred: Tensor, sample_weight: Tensor | None = None) -> None:
        yt = _as_2d(y_true).to(torch.float64)
        err = yt - _as_2d(y_pred).to(device=yt.device, dtype=torch.float64)
        nb = yt.shape[0]
        if nb == 0:
            return
        w = None if sample_weight is None else sample_weight.to(yt).reshape(-1)
        wb = float(nb) if w is None else float(w.sum())
        sums = {"sse": _wsum(err * err, w), "sae": _wsum(err.abs(), w), "syy": _wsum(yt * yt, w)}
        self.n += nb
        if wb == 0:  # rows of weight zero count as rows and add nothing
            self._sums = sums if self._sums is None else self._sums
            return
        if self._shift is None:  # a row that counts: one of weight zero may hold anything
            first = 0 if w is None else int(torch.nonzero(w > 0)[0, 0])
            self._shift = yt[first].clone()
        ys = yt - self._shift  # exact near the shift: offsets cost the merges no digits
        mean_b = _wsum(ys, w) / wb
        m2_b = _wsum((ys - mean_b) ** 2, w)
        if self._mean is None:
            self._mean, self._m2 = mean_b, m2_b
        else:
            total = self.sum_w + wb
            delta = mean_b - self._mean
            self._mean = self._mean + delta * (wb / total)
            self._m2 = self._m2 + m2_b + delta * delta * (self.sum_w * wb / total)
        self.sum_w += wb
        self._sums = sums if self._sums is None else {k: self._sums[k] + sums[k] for k in sums}

    # NOTE [metrics about a shift]
    # The blocks' means were merged at the targets' own level: y near 1e9 with a spread of
    # 1e-3 rounds each mean by 1e-7, a tenth of a thousandth of the spread, and Chan's merge
    # squares that difference block after block: `evaluate`'s R2 was 2e-4 off in blocks of
    # 50 rows, 9e-4 in rows of one, silently (an iterative-and-metrics hunt). About the first
    # row the means are of the spread's size and the merge keeps its digits.

    def result(self) -> dict[str, Tensor]:
        if self.n == 0:
            raise ValueError("no rows were evaluated")
        if self.sum_w == 0:
            raise ValueError("every row evaluated has weight zero")
        return metrics_from_sums(
            sse=self._sums["sse"],
            sum_w=self.sum_w,
            n_rows=self.n,
            sae=self._sums["sae"],
            sst=self._m2,
            sst_uncentered=self._sums["syy"] if self.uncentered else None,
        )
