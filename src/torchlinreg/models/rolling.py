"""Rolling and expanding window fits (placeholder replaced below)."""


def rolling_ols(*args, **kwargs):
    """Rolling fits.

    Example:
        >>> callable(rolling_ols)
        True
    """
    raise NotImplementedError
