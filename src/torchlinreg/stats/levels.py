"""The level of an interval: ``alpha`` checked, and its two-sided quantile.

``conf_int(1.5)`` returned intervals whose lower end lay above the upper (the quantile of
a probability below 1/2 is negative), without a word, as statsmodels does (a predictions
hunt). An ``alpha`` outside (0, 1) is refused.

Example:
    >>> from scipy import stats
    >>> round(float(two_sided(stats.norm(), 0.05)), 4)
    1.96
"""

from __future__ import annotations

import numbers


def check_alpha(alpha) -> float:
    """``alpha`` as a float in (0, 1), else a ValueError saying what it means."""
    if not isinstance(alpha, numbers.Real) or not 0 < float(alpha) < 1:
        raise ValueError(
            f"alpha must lie between 0 and 1 (the intervals' level is 1 - alpha: 0.05 for "
            f"95%); got {alpha!r}"
        )
    return float(alpha)


def two_sided(dist, alpha) -> float:
    """The ``1 - alpha / 2`` quantile of ``dist`` (a scipy distribution)."""
    return dist.ppf(1 - check_alpha(alpha) / 2)
