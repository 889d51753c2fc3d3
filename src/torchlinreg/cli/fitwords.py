"""The library's convergence and accuracy warnings and divergence errors, said in the
command's words.

The library tells a Python user to raise ``max_iter``, to pass ``solver="lbfgs"`` or to fit
in memory; the command's user types ``--epochs`` and ``--solver lbfgs``, and the command
always streams. The warnings and the error carry what they are about (``gap``, ``tol``,
``epochs``, ``solver``; ``error``, ``method``; ``epoch``), so the command rewords them
here instead of parsing messages. ``app.py`` then prints each as one line.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import ConvergenceWarning, DivergenceError, RankWarning

__all__ = ["convergence_in_cli_words", "divergence_remedy"]

_REMEDY = "use a smaller --lr, or --solver lbfgs, or the exact --solver qr"


def divergence_remedy(message: str) -> str:
    """``message`` with the library's remedy (after its last ``"; "``) in CLI words."""
    what = message.rsplit("; ", 1)[0]
    return f"{what}; {_REMEDY}"


def convergence_message(w: ConvergenceWarning) -> str:
    """A ConvergenceWarning in CLI words (``--epochs``, ``--solver``)."""
    if w.gap is None or (isinstance(w.gap, float) and math.isnan(w.gap)):
        return (
            f"the {w.solver} solver's optimality gap is not known (more than 2048 features and "
            "targets, where no Gram is formed, and no --alpha for a bound); for a fit you can "
            "trust use the exact --solver qr"
        )
    other = "" if w.solver == "lbfgs" else "or use --solver lbfgs, "  # not to lbfgs itself
    return (
        f"the {w.solver} solver stopped after {w.epochs} epochs at an optimality gap of "
        f"{w.gap:.3g} (the exact fit's R2 minus this fit's), above its target {w.tol:g}; "
        f"train for more --epochs, {other}or the exact --solver qr"
    )


def accuracy_message(w: RankWarning) -> str:
    """An unrefined fit's accuracy warning in CLI words (NOTE [unrefined fits])."""
    if w.what == "sums":
        size = f"up to {w.error:.1e} (relative, estimated)" if w.error < 1 else "entirely"
        fix = (
            "train with --solver qr (a Gram factor squares the loss)"
            if w.method == "gram"
            else "fit the rows in memory with the library to refine it"
        )
        return (
            f"the fit is so nearly exact (or its coefficients so large against the fitted "
            f"values) that its residual sum of squares may be off {size}, and the standard "
            "errors, t and p-values, R2 and F with it: a streamed fit has no second pass to "
            f"refine it; {fix}"
        )
    fix = (
        "train with --solver qr (a Gram factor squares the condition number)"
        if w.method == "gram"
        else "drop or combine the nearly collinear columns"
    )
    return (
        f"the coefficients may be off by up to {w.error:.1e} (relative, estimated): the "
        f"data are ill-conditioned and a streamed fit has no second pass to refine them; "
        f"{fix}"
    )


@contextmanager
def convergence_in_cli_words() -> Iterator[None]:
    """Re-issue the fit's ConvergenceWarnings and accuracy warnings in CLI words (others
    unchanged) and re-raise its DivergenceError with the CLI's remedy."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except DivergenceError as exc:
            raise DivergenceError(
                divergence_remedy(str(exc)), epoch=exc.epoch, solver=exc.solver
            ) from None
    for w in caught:
        if isinstance(w.message, ConvergenceWarning) and w.message.solver is not None:
            warnings.warn(convergence_message(w.message), ConvergenceWarning, stacklevel=3)
        elif isinstance(w.message, RankWarning) and w.message.error is not None:
            warnings.warn(accuracy_message(w.message), RankWarning, stacklevel=3)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
