"""Reader for the NIST StRD linear-regression files in tests/data/nist-strd (test helper)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NIST_DIR = Path(__file__).parent / "data" / "nist-strd"
NAMES = (
    "Norris",
    "Pontius",
    "NoInt1",
    "NoInt2",
    "Filip",
    "Longley",
    "Wampler1",
    "Wampler2",
    "Wampler3",
    "Wampler4",
    "Wampler5",
)
POLYNOMIAL = (
    "Norris",
    "Pontius",
    "Filip",
    "Wampler1",
    "Wampler2",
    "Wampler3",
    "Wampler4",
    "Wampler5",
)
_NUMBER = r"[-+]?\d+(?:\.\d*)?(?:[EeDd][-+]?\d+)?"


@dataclass(frozen=True)
class NistSet:
    """One certified dataset: raw columns, the certified model and its certified values."""

    name: str
    y: np.ndarray  # (n,)
    x: np.ndarray  # (n, q) predictors as in the file
    intercept: bool
    degree: int | None  # polynomial degree for one-predictor sets, else None
    params: np.ndarray  # certified B (intercept first when present)
    sds: np.ndarray  # certified standard deviations of B
    residual_sd: float
    rsquared: float

    def design(self) -> np.ndarray:
        """The float64 design without the intercept column: powers of x prebuilt, or x."""
        if self.degree is None:
            return self.x.copy()
        x = self.x[:, 0]
        return np.stack([x**j for j in range(1, self.degree + 1)], axis=1)


def _lines(path: Path, first: int, last: int) -> list[str]:
    text = path.read_text(encoding="ascii").splitlines()
    return text[first - 1 : last]


def load(name: str) -> NistSet:
    """Parse ``<name>.dat`` from the header's own line ranges."""
    path = NIST_DIR / f"{name}.dat"
    header = path.read_text(encoding="ascii")
    cert = re.search(r"Certified Values\s+\(lines\s+(\d+)\s+to\s+(\d+)\)", header)
    data = re.search(r"Data\s+\(lines\s+(\d+)\s+to\s+(\d+)\)", header)
    assert cert and data, f"{path}: header has no line ranges"
    params, sds, intercept = [], [], False
    residual_sd = rsquared = math.nan
    for line in _lines(path, int(cert.group(1)), int(cert.group(2))):
        fields = line.split()
        m = re.fullmatch(r"B(\d+)", fields[0]) if fields else None
        if m and len(fields) >= 3:
            intercept = intercept or m.group(1) == "0"
            params.append(float(fields[1]))
            sds.append(float(fields[2]))
        elif line.strip().startswith("Standard Deviation") or "Residual Standard Deviation" in line:
            residual_sd = float(re.findall(_NUMBER, line)[-1])
        elif line.strip().startswith("R-Squared"):
            rsquared = float(re.findall(_NUMBER, line)[-1])
    rows = [
        [float(v) for v in line.split()]
        for line in _lines(path, int(data.group(1)), int(data.group(2)))
        if line.strip()
    ]
    table = np.array(rows, dtype=np.float64)
    y, x = table[:, 0], table[:, 1:]
    degree = len(params) - int(intercept) if x.shape[1] == 1 else None
    return NistSet(
        name=name,
        y=y,
        x=x,
        intercept=intercept,
        degree=degree,
        params=np.array(params),
        sds=np.array(sds),
        residual_sd=residual_sd,
        rsquared=rsquared,
    )


def lre(estimate, certified, cap: float = 15.0) -> np.ndarray:
    """Log relative error: -log10(|est - cert| / |cert|), or -log10|est| where cert == 0."""
    est = np.asarray(estimate, dtype=np.float64)
    cert = np.asarray(certified, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(cert == 0, np.abs(est), np.abs(est - cert) / np.abs(cert))
        out = np.where(err == 0, cap, -np.log10(err))
    out = np.where(np.isnan(est), 0.0, out)
    return np.clip(out, 0.0, cap)


def exact_solution(s: NistSet) -> np.ndarray:
    """The exact least-squares solution of the float64 data, correctly rounded.

    The certified values solve the decimal data; the float64 data differ from them by
    rounding, and so does their own solution. This one is computed in rationals (normal
    equations, Gauss-Jordan), so an estimate can be scored against the float64 ceiling
    itself. Parameters in the certified order (intercept first).
    """
    from fractions import Fraction

    A = s.design()
    if s.intercept:
        A = np.c_[np.ones(len(s.y)), A]
    p = A.shape[1]
    F = [[Fraction(float(v)) for v in row] for row in A]
    b = [Fraction(float(v)) for v in s.y]
    cols = list(zip(*F, strict=True))
    M = [
        [sum(u * v for u, v in zip(cols[a], cols[c], strict=True)) for c in range(p)]
        + [sum(u * v for u, v in zip(cols[a], b, strict=True))]
        for a in range(p)
    ]
    for c in range(p):
        pivot = next(r for r in range(c, p) if M[r][c] != 0)
        M[c], M[pivot] = M[pivot], M[c]
        for r in range(p):
            if r != c and M[r][c] != 0:
                f = M[r][c] / M[c][c]
                M[r] = [u - f * v for u, v in zip(M[r], M[c], strict=True)]
    return np.array([float(M[c][p] / M[c][c]) for c in range(p)])
