"""Estimators fitted through a formula, and missing rows: the formula half of the estimators.

Why a method, ``fit_formula(formula, data)``, and not ``LinearRegression(formula=...)``: a
formula names the target as well as the features, which scikit-learn's ``fit(X, y)``
cannot express, and a hyper-parameter would make ``get_params``/``clone`` carry data
column names. The method reads as statsmodels' ``smf.ols(formula, data)`` and leaves the
estimator's parameters and ``fit(X, y)`` as they are. The encoding learned (levels,
reference levels, transforms' parameters) stays in ``formula_encoding_``; ``predict``,
``get_prediction`` and :func:`torchlinreg.save`/``load`` apply it to new tables.

Example:
    >>> import pandas as pd, torchlinreg as tlr
    >>> df = pd.DataFrame({"y": [1.0, 2.1, 2.9, 4.2, 5.1, 5.8], "x": range(6), "g": list("aabbab")})
    >>> model = tlr.LinearRegression().fit_formula("y ~ x + C(g)", df)
    >>> list(model.feature_names_in_)
    ['x', 'C(g)[T.b]']
    >>> model.predict(pd.DataFrame({"x": [6.0], "g": ["b"]})).shape
    (1,)
"""

from __future__ import annotations

from typing import Any

from ..errors import DataError, ModelFileError
from ..stats.frames import _formula_weights, check_aligned, count_the_constant, label


class FormulaMixin:
    """``fit_formula``, formula-aware ``predict`` input, labelled ``results_``."""

    def fit_formula(self, formula: str, data, sample_weight=None, *, missing: str = "raise"):
        """Fit the model a formula describes on a table and return ``self``.

        ``formula`` is Wilkinson notation as statsmodels and R write it (``"y ~ x1 + C(g)
        + a:b + I(x**2) + np.log(x) - 1"``; several targets: ``"y1 + y2 ~ ..."``); ``data``
        a pandas (polars, pyarrow) table or a dict of columns; ``missing`` ``"raise"`` or
        ``"drop"``. The formula decides the intercept: ``fit_intercept`` is set from it.
        """
        import pandas as pd

        from ..formula.encoding import Encoding
        from ..stats.frames import MISSING

        if missing not in MISSING:
            raise ValueError(f"missing must be one of {MISSING}; got {missing!r}")
        check_aligned(data, sample_weight=sample_weight)  # NOTE [rows matched by index]
        enc, design = Encoding.fit(formula, data, missing=missing)
        w, keep = _formula_weights(sample_weight, design, missing)
        index = design.index[keep]
        X = pd.DataFrame(design.X[keep], columns=enc.features, index=index)
        Y = design.Y[keep]
        y = (
            pd.Series(Y[:, 0], name=enc.targets[0], index=index)
            if Y.shape[1] == 1
            else pd.DataFrame(Y, columns=enc.targets, index=index)
        )
        self.fit_intercept = enc.fit_intercept
        if not enc.fit_intercept and not enc.constant_columns:
            enc.constant_columns = _columns_summing_to_one(design.X[keep], enc.features)
        self.fit(X, y, w)
        self.formula_encoding_ = enc
        self.nobs_dropped_ = design.dropped + int((~keep).sum())
        if getattr(self, "_results", None) is not None:
            self._results = self._label_results(self._results)
        return self

    def _label_results(self, res):
        """Results named as statsmodels names them (labelled when fitted on a table)."""
        enc = getattr(self, "formula_encoding_", None)
        res.nobs_dropped = getattr(self, "nobs_dropped_", 0)
        robust = getattr(self, "robust_cov_", None)
        if robust is not None and res.cov_type == "nonrobust":
            from ..stats.streamhc import with_robust

            with_robust(res, *robust)
            _attach_offsets_covariance(self, res, robust)
        if enc is None:
            index = getattr(self, "_row_index", None)
            return res if index is None else label(res, row_index=index)
        if enc.fit_intercept and res.param_names and res.param_names[0] == "const":
            res.param_names[0] = "Intercept"
        if enc.constant_columns and not enc.fit_intercept:  # NOTE [an implicit constant]
            count_the_constant(res, enc.constant_columns)
        return label(res, row_index=getattr(self, "_row_index", None), encoding=enc)

    def _formula_rows(self, X):
        """A table given to a formula-fitted model becomes the model's columns (levels
        checked, NaN refused); arrays of those columns pass through unchanged."""
        enc = getattr(self, "formula_encoding_", None)
        if enc is None or not _is_table(X):
            return X
        import pandas as pd

        design = enc.design(X, missing="raise")
        return pd.DataFrame(design.X, columns=enc.features, index=design.index)

    def get_prediction(self, X=None, weights=None):
        """``results_.get_prediction``: mean and observation intervals for new rows (a table
        for a formula fit), or for the fitted rows when ``X`` is None."""
        return self.results_.get_prediction(X, weights)


def _is_table(X) -> bool:
    module = type(X).__module__.partition(".")[0]
    if module in ("polars", "pyarrow"):  # their tables have no ndim (an AttributeError)
        return hasattr(X, "columns") or hasattr(X, "column_names")
    return isinstance(X, dict) or (module == "pandas" and X.ndim == 2)


def keep_offsets_covariance(estimator, shifted, shift) -> None:
    """Keep the robust covariance about the offsets ``shift`` with ``robust_cov_`` (which
    must be set): predictions and the model file take it (NOTE [robust covariances in
    model files] in stats/robust_blocks.py). It is tied to that very ``robust_cov_``, so
    a refit that replaces or drops it leaves this one unused."""
    estimator._robust_offsets = (estimator.robust_cov_, shifted, shift)


def _kept_offsets(estimator):
    kept = getattr(estimator, "_robust_offsets", None)
    robust = getattr(estimator, "robust_cov_", None)
    return kept if kept is not None and robust is not None and kept[0] is robust else None


def _attach_offsets_covariance(estimator, res, robust) -> None:
    """Give ``res`` (with_robust's) its covariance about the offsets where the fit takes
    them: the kept one if it was taken about these offsets, else mapped from the raw one
    where that keeps the digits; else none, and predictions say so (OLSResults._robust)."""
    import torch

    from ..stats.robust_blocks import offsets_covariance_from_raw

    factor = res._shifted_factor()
    if factor is None:
        return
    shift = factor.shift.detach().cpu().to(torch.float64)
    kept = _kept_offsets(estimator)
    if kept is not None and torch.equal(kept[2].detach().cpu().to(torch.float64), shift):
        cov = kept[1]
    else:
        cov = offsets_covariance_from_raw(robust[0], shift)
    if cov is not None:
        res._robust_about_offsets = cov.to(res._r.device, torch.float64)


def robust_record(estimator) -> dict[str, Any] | None:
    """A streamed fit's robust covariance (train --cov-type) as plain JSON, with the one
    about the offsets and the offsets where it was kept (optional keys: files without them
    still load, and earlier versions ignore them)."""
    from ..stats.streamhc import cov_record

    robust = getattr(estimator, "robust_cov_", None)
    if robust is None:
        return None
    record = cov_record(*robust)
    kept = _kept_offsets(estimator)
    if kept is not None:
        record["cov_about_offsets"] = cov_record(kept[1], robust[1])["cov"]
        record["offsets"] = [float(v) for v in kept[2].detach().cpu().reshape(-1)]
    return record


def restore_robust(estimator, path: str, record: Any) -> None:
    """Validate the robust covariance against the loaded state and keep it."""
    import math

    import torch

    from ..stats.streamhc import cov_from_record

    # robust covariances are stored for full-rank fits only: the basis is [1 |] X
    q = int(estimator.n_features_in_) + int(bool(estimator.fit_intercept))
    k = int(estimator.model_.n_targets)
    try:
        estimator.robust_cov_ = cov_from_record(record, q, k)
        if "cov_about_offsets" in record or "offsets" in record:
            cov_type = estimator.robust_cov_[1]
            shifted, _ = cov_from_record(
                {"cov_type": cov_type, "cov": record.get("cov_about_offsets")}, q, k
            )
            offsets = record.get("offsets")
            if not (
                isinstance(offsets, list)
                and len(offsets) == q - 1
                and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    for v in offsets
                )
            ):
                raise DataError(f"the robust covariance's offsets are not {q - 1} numbers")
            shift = torch.tensor(offsets, dtype=torch.float64)
            keep_offsets_covariance(estimator, shifted, shift)
    except DataError as exc:
        raise ModelFileError(f"{path}: {exc}; re-train and save again") from None


def encoding_record(estimator) -> dict[str, Any] | None:
    """The formula encoding of a fitted estimator as plain JSON, for its model file."""
    enc = getattr(estimator, "formula_encoding_", None)
    return None if enc is None else enc.to_json()


def restore_encoding(estimator, path: str, record: Any) -> None:
    """Validate a model file's formula record and attach it (ModelFileError if invalid)."""
    from ..formula.encoding import Encoding

    try:
        enc = Encoding.from_json(record)
    except DataError as exc:
        raise ModelFileError(
            f"{path}: the formula encoding is invalid ({str(exc)[:200]}); re-train and save again"
        ) from None
    names = getattr(estimator, "feature_names_in_", None)
    agrees = (
        names is not None
        and list(names) == enc.features
        and enc.fit_intercept == bool(estimator.fit_intercept)
        and (estimator._target_names is None or estimator._target_names == enc.targets)
    )
    if not agrees:
        raise ModelFileError(
            f"{path}: the formula encoding's columns {enc.features[:6]} disagree with the "
            "model's features; the file was edited or damaged; re-train and save again"
        )
    estimator.formula_encoding_ = enc


def _columns_summing_to_one(X, names: list[str]) -> list[str]:
    """Columns that hold the constant as their sum, found from the rows (``ra + rna - 1``
    of two 0/1 columns, a column of ones): in memory the rank test counted such a constant,
    a model file knew only categorical terms coded with every level, so a loaded model
    reported the uncentred R2 (0.109 for 0.018), F 260 for 59, silently (a formula hunt).
    Kept where the least-squares combination is ones on a set of columns; else none."""
    import numpy as np

    from ..stats.frames import spans_the_constant

    if X.shape[1] == 0 or not spans_the_constant(X):
        return []
    c = np.linalg.lstsq(X, np.ones(X.shape[0]), rcond=None)[0]
    picked = np.abs(c) > 1e-8
    if not picked.any() or not np.allclose(c[picked], 1.0, rtol=0, atol=1e-8):
        return []
    if not np.allclose(X[:, picked].sum(1), 1.0, rtol=0, atol=1e-12):
        return []
    return [names[j] for j in np.flatnonzero(picked)]
