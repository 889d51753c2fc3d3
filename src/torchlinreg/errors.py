"""Typed exceptions and warnings raised by torchlinreg.

Every error carries a one-line message that says what was wrong, where (file, row,
column when known) and what to do, so the CLI can print it verbatim.
"""

from __future__ import annotations

import sys


class TorchLinRegError(Exception):
    """Base class of every error torchlinreg raises on purpose."""


class DataError(TorchLinRegError, ValueError):
    """Input data is malformed: wrong shape, non-numeric, missing or non-finite values.

    ``path``, ``row`` (1-based, as a text editor counts lines) and ``column`` are set
    when the error comes from a file and the place is known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        where = []
        if path is not None:
            where.append(str(path))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        full = f"{', '.join(where)}: {message}" if where else message
        super().__init__(full)
        self.path = path
        self.row = row
        self.column = column


class ModelFileError(TorchLinRegError):
    """A model or checkpoint file is missing, corrupt, not ours, or of an unknown version."""


class DivergenceError(TorchLinRegError, ArithmeticError):
    """An iterative fit diverged (a loss that rose for several epochs in a row, exploded or
    is not finite) or ended in a model that cannot be right (non-finite or all-zero
    coefficients where the exact fit's are not).

    ``epoch`` is where it was caught, ``solver`` the iterative solver; a front end (the CLI)
    words the remedy in its own terms from them.
    """

    def __init__(
        self, message: str, *, epoch: int | None = None, solver: str | None = None
    ) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.solver = solver


class NotFittedError(TorchLinRegError, ValueError, AttributeError):
    """The estimator is used before ``fit``.

    Subclasses ``ValueError`` and ``AttributeError`` like scikit-learn's NotFittedError.
    """


_SKLEARN_NOT_FITTED: dict[type, type] = {}


def not_fitted_error(message: str) -> NotFittedError:
    """A NotFittedError that is also scikit-learn's when scikit-learn is in use.

    scikit-learn's pipelines and checks catch ``sklearn.exceptions.NotFittedError`` by
    class; torchlinreg does not import scikit-learn, so the joint class is made only when
    scikit-learn is already loaded.
    """
    sk = sys.modules.get("sklearn.exceptions")
    if sk is None:
        return NotFittedError(message)
    cls = _SKLEARN_NOT_FITTED.get(sk.NotFittedError)
    if cls is None:
        cls = type("NotFittedError", (NotFittedError, sk.NotFittedError), {})
        _SKLEARN_NOT_FITTED[sk.NotFittedError] = cls
    return cls(message)


class RankWarning(UserWarning):
    """The design matrix is rank-deficient (the named columns are aliased), or so
    ill-conditioned that the coefficients may be off.

    A fit that could not refine its coefficients against the rows (streamed, updated,
    distributed) and warns for that carries ``error`` (the estimated relative error),
    ``method`` (its factor, ``"qr"`` or ``"gram"``) and ``what`` (``"coefficients"``, or
    ``"sums"`` for its residual sum of squares), so that a front end (the CLI) can say
    what to do in its own words; they are None otherwise.
    """

    def __init__(
        self,
        message: str = "",
        *,
        error: float | None = None,
        method: str | None = None,
        what: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error = error
        self.method = method
        self.what = what if what is not None or error is None else "coefficients"


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped before its optimality gap met ``tol``, or could not measure
    the gap.

    ``gap`` (the measured optimality gap, NaN when unknown), ``tol``, ``epochs`` and ``solver``
    let a front end (the CLI) say the same in its own words.
    """

    def __init__(
        self,
        message: str = "",
        *,
        gap: float | None = None,
        tol: float | None = None,
        epochs: int | None = None,
        solver: str | None = None,
    ) -> None:
        super().__init__(message)
        self.gap = gap
        self.tol = tol
        self.epochs = epochs
        self.solver = solver


class DegenerateWarning(UserWarning):
    """A statistic is undefined (e.g. no residual degrees of freedom) and is NaN."""


class InvalidTestWarning(UserWarning):
    """A test's assumptions do not hold (e.g. an F test between robust fits)."""
