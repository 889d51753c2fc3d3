"""The exact-solver half of the estimators: absorb blocks, merge ranks, solve, statistics."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

from ..data import check_finite, is_sparse
from ..distributed.collectives import check_same_columns, is_distributed, merge_across_ranks
from ..errors import DataError, RankWarning
from ..exact.refine import estimated_errors
from ..exact.solve import ACCURACY_WARNING
from ..exact.state import LeastSquaresState
from ..model import LinearModel
from ..stats.fitstats import squares_out_of_range, warn_squares_out_of_range
from ..stats.metrics import metrics_from_state
from ..stats.results import OLSResults
from .inputs import check_is_fitted, resolve_dtype

EXACT_SOLVERS = ("qr", "gram")


class ExactFitMixin:
    """State handling of :class:`~torchlinreg.LinearRegression` for ``solver="qr"|"gram"``."""

    @property
    def _unpenalised(self) -> bool:
        """alpha is 0 (for every target when given one per target), no sign constraint."""
        if getattr(self, "positive", False):
            return False
        return bool(np.all(np.asarray(self.alpha, dtype=np.float64) == 0))

    def _adopt_refined(self, results: OLSResults) -> None:
        """Take the refined parameters (NOTE: only where no column is aliased: the
        coefficients of a rank-deficient fit stay the minimum-norm solution)."""
        if self.solution_.aliased:
            return
        params = torch.as_tensor(results.params, dtype=torch.float64).reshape(
            -1, self.state_.n_targets
        )
        params = params.to(self.state_.device)
        c = int(self.fit_intercept)
        intercept = params[0] if c else torch.zeros_like(params[0])
        self.model_ = LinearModel(params[c:].T.contiguous(), intercept.contiguous())

    def __getstate__(self) -> dict:
        # The results object holds closures over the training rows: a pickled estimator
        # leaves it behind and rebuilds it from the state when asked (non-robust only).
        state = self.__dict__.copy()
        state.pop("_results", None)
        return state

    @property
    def results_(self) -> OLSResults:
        """statsmodels-style statistics of an exact, unpenalised fit (stats.results).

        In-memory fits carry refined parameters and can give robust (HC) covariances;
        streamed, partial and loaded fits are built from the least-squares state alone.
        """
        check_is_fitted(self)
        cached = getattr(self, "_results", None)
        if cached is not None:
            return cached
        if not hasattr(self, "state_") or not self._unpenalised:
            raise AttributeError(
                "results_ is available for exact solvers without a penalty (alpha=0); use "
                "solver='qr' or 'gram' and alpha=0, or torchlinreg.ols(X, y)"
            )
        self._results = OLSResults.from_state(
            self.state_,
            self.solution_,
            weighted=getattr(self, "_weighted", False),
            y_was_1d=self._y_was_1d,
            feature_names=self._feature_list(),
            target_names=self._target_names,
        )
        self._results = self._label_results(self._results)
        return self._results

    def _absorb(
        self, X, y, sample_weight, *, whole_fit: bool = False
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Absorb one block into the exact state, creating it from the first block.

        ``whole_fit``: the block is all of a ``fit``'s rows, so a failure may drop the state.
        The Gram route then skips the NaN/infinity scan, one read of X that cost 12% of the
        fit: NaN and infinity always reach its totals (a product with NaN or inf is never
        finite), and only then are the rows scanned for the message naming row and column.
        """
        if hasattr(self, "_local_state"):
            # Distributed: state_ holds every rank's rows; this rank absorbs into its own.
            self.state_ = self._local_state
        first = not hasattr(self, "state_")
        if is_sparse(X):  # one block of a blocked fit: dense is a block's worth
            X = X.toarray()
        defer = whole_fit and first and self.solver == "gram"
        # float32 rows stay float32: the state and the statistics convert them block by block
        Xm, Ym, Xt, Yt, wt = self._prepare(
            X, y, sample_weight, reset=first, block=True, check_finite=not defer, upcast=False
        )
        if first:
            self.state_ = LeastSquaresState(
                Xt.shape[1],
                Yt.shape[1],
                fit_intercept=self.fit_intercept,
                method=self.solver,
                dtype=self._compute_dtype(Xm),
                device=Xt.device,
            )
            self._set_input_info(Xm, Ym)
        elif Yt.shape[1] != self.state_.n_targets:
            raise DataError(
                f"y has {Yt.shape[1]} targets, but earlier blocks had {self.state_.n_targets}."
            )
        self.state_.absorb(Xt, Yt, wt)
        if defer and not self.state_.is_finite():
            try:
                check_finite(Xm, Ym)
            except DataError:
                del self.state_  # as if the scan had come first: nothing was learned
                raise
        self._weighted = getattr(self, "_weighted", False) or wt is not None
        self._results = None
        return Xt, Yt, wt

    def _merge_ranks(self) -> None:
        """Inside a process group, make ``state_`` the state of every rank's rows.

        This rank's own state is kept (``_local_state``) for the next ``partial_fit``.
        """
        if not is_distributed():
            return
        local = getattr(self, "state_", None)
        # NOTE [columns by name across ranks]
        check_same_columns(self._feature_list() if local is not None else None)
        dtype = resolve_dtype(self.dtype) or torch.float64
        self.state_ = merge_across_ranks(
            local,
            fit_intercept=self.fit_intercept,
            method=self.solver,
            dtype=dtype if local is None else local.dtype,
            device=self.device if local is None else local.device,
        )
        if local is None:
            # This rank read no rows: take the shape from the others.
            self._local_state = LeastSquaresState(
                self.state_.n_features,
                self.state_.n_targets,
                fit_intercept=self.fit_intercept,
                method=self.solver,
                dtype=self.state_.dtype,
                device=self.state_.device,
            )
            self.n_features_in_ = self.state_.n_features
            self._y_was_1d, self._target_names = False, None
            self._output_kind = ("numpy", torch.device("cpu"))
        else:
            self._local_state = local

    def _solve_state(self) -> None:
        if not self.state_.sum_weights > 0:
            raise DataError(
                "sample_weight is zero for every row absorbed; at least one weight must be positive"
            )
        if getattr(self, "positive", False):
            self._solve_nonneg()
            return
        names = getattr(self, "feature_names_in_", None)
        names = None if names is None else list(names)
        self.solution_ = self.state_.solve(alpha=self.alpha, rcond=self.rcond, feature_names=names)
        self.rank_ = self.solution_.rank
        # A copy: the model's tensors are the user's to change, the solution stays the state's.
        self.model_ = LinearModel(self.solution_.coef.clone(), self.solution_.intercept.clone())
        self.n_iter_ = 1
        self.loss_history_ = []

    # NOTE [unrefined fits]
    # An in-memory fit refines its coefficients against the rows where the factor says
    # digits are at risk (NOTE [refinement policy]). A streamed fit (fit_blocks, the CLI's
    # train), an updated one (partial_fit) or a distributed one has only its state: its
    # coefficients are the factor's, and a Gram factor squares the condition number. A
    # streamed Gram fit of x and x^2 with x in [1000, 1001) was off by 1e-6 without a word.
    # Such a fit now warns when the estimated error of any coefficient passes
    # ACCURACY_WARNING (1e-8, as for ridge and minimum-norm solutions), quoting the
    # estimate (refine.estimated_errors, the normal equations' error for a Gram factor:
    # within 6-40x of the actual error on that data, never below it in the tests), and
    # says what to do: solver='qr', or the rows in memory.

    def _warn_unrefined(self, how: str) -> None:
        """Warn when a fit that cannot be refined against its rows may be off (NOTE
        [unrefined fits]); ``how`` names the fit ("streamed", ...)."""
        solution = getattr(self, "solution_", None)
        if solution is None or solution.aliased or not self._unpenalised:
            return  # ridge and minimum-norm solutions carry their own warning (exact.solve)
        p = int(self.fit_intercept) + self.state_.n_features
        names = getattr(self, "feature_names_in_", None)
        names = [f"x{j + 1}" for j in range(self.state_.n_features)] if names is None else names
        # the estimates below square the data too (NOTE [squares out of range]); said once
        if squares_out_of_range(self.state_).any():
            if not getattr(self, "_range_warned", False):
                warn_squares_out_of_range(self.state_, list(names), self._target_names)
                self._range_warned = True
            return
        errors, kappa, sums = estimated_errors(self.state_, p, policy=False, sums=True)
        self._warn_unrefined_sums(how, sums)
        flagged = self._flagged("_unrefined_warned", errors)
        if flagged is None:
            return
        worst, shown = flagged
        gram = self.state_.method == "gram"
        fix = "use solver='qr' (a Gram factor squares it), or " if gram else ""
        message = (
            f"{how} fit from the state alone: the coefficients of {shown} may be off by up "
            f"to {worst:.1e} (relative, estimated from the condition number {kappa:.1e}), "
            f"and there are no rows to refine them against; {fix}fit the rows in memory "
            "with fit(X, y), which refines the coefficients."
        )
        method = self.state_.method
        warnings.warn(RankWarning(message, error=worst, method=method), stacklevel=3)

    _QR_SUMS_QUOTE = 100.0

    def _flagged(self, said: str, errors: list[float]) -> tuple[float, str] | None:
        """The worst estimate and the targets past ACCURACY_WARNING, named, or None where
        nothing is to be said: partial_fit in a loop says it once, again only if the
        estimate grows tenfold (the last one said is kept in the attribute ``said``)."""
        worst = max(errors)
        if not worst > max(ACCURACY_WARNING, 10 * getattr(self, said, 0.0)):
            return None
        setattr(self, said, worst)
        names = self._target_names or [f"y{t + 1}" for t in range(len(errors))]
        which = [str(names[t]) for t, e in enumerate(errors) if e > ACCURACY_WARNING]
        shown = ", ".join(which[:5]) + (f" and {len(which) - 5} more" if len(which) > 5 else "")
        return worst, shown

    def _warn_unrefined_sums(self, how: str, sums: list[float]) -> None:
        """Warn when the rss an unrefined fit reads off its factor may be off past
        ACCURACY_WARNING (NOTE [sums at risk] in exact/refine.py): a nearly exact fit,
        whose standard errors, t and p-values, R2 and F all rest on that rss.

        A Householder factor's exact fits (y = 2x + 1) carry no estimate (NOTE [sums at
        risk]); a Gram factor cannot tell an exact fit from a nearly exact one below
        sqrt(eps) (a dummy effect of 1e9 against a noise of 1 gave an rss 27x the exact
        one), so it says so for both. A streamed Householder fit's rss was measured up to
        100x the policy's bare estimate (weights over twelve decades, blocks of 97 rows):
        the quote takes that factor. Coefficients that cancel (columns with offsets
        without an intercept, nearly collinear) put the rss at risk too: the estimate
        takes |A| |b| where it passes |y - s|.
        """
        if self.state_.method != "gram":
            sums = [self._QR_SUMS_QUOTE * e for e in sums]
        flagged = self._flagged("_unrefined_sums_warned", sums)
        if flagged is None:
            return
        worst, shown = flagged
        gram = self.state_.method == "gram"
        size = f"up to {worst:.1e} (relative, estimated)" if worst < 1 else "entirely"
        fix = "use solver='qr' (a Gram factor squares the loss), or " if gram else ""
        message = (
            f"{how} fit from the state alone: {shown} fitted so nearly exactly, or by "
            "coefficients so large against the fitted values, that the residual sum of "
            f"squares read off the factor may be off {size}, and the standard errors, t "
            "and p-values, R2 and F with it; there are no rows to refine it against; "
            f"{fix}fit the rows in memory with fit(X, y), which does."
        )
        method = self.state_.method
        warnings.warn(RankWarning(message, error=worst, method=method, what="sums"), stacklevel=4)

    def _solve_nonneg(self) -> None:
        """positive=True: Lawson-Hanson from the state (no OLS statistics, no solution_)."""
        from ..models.nonneg import nonneg_solution

        coef, intercept = nonneg_solution(self.state_, self.alpha)
        self.model_ = LinearModel(coef, intercept)
        self.rank_ = None
        self.n_iter_ = 1
        self.loss_history_ = []

    def state_metrics(self, *, target_moments=None) -> dict[str, Tensor]:
        """MSE, RMSE and R2 per target on the rows absorbed, from the exact state alone.

        No second pass over the data: for any coefficients the residual sum of squares
        comes from the state's factor (:func:`~torchlinreg.stats.metrics.metrics_from_state`).
        Weighted fits give weighted metrics. With an intercept the R2 is the centred
        ``r2``; without, ``r2_uncentered`` (as statsmodels reports it), plus the centred
        ``r2`` when ``target_moments`` (a state of the targets alone) is given; see
        NOTE [metric definitions] in ``stats/metrics.py``. After a streamed iterative fit
        (``fit_blocks`` with a factory) the first pass's moments serve instead.
        """
        check_is_fitted(self)
        state = getattr(self, "state_", getattr(self, "_moments", None))
        if state is None:
            raise AttributeError(
                "state_metrics needs an exact fit (solver 'qr' or 'gram') or a streamed "
                "iterative fit; score the rows with torchlinreg.stats.metrics instead"
            )
        return metrics_from_state(
            state, self.model_.weight, self.model_.bias, target_moments=target_moments
        )
