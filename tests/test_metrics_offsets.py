"""Metrics on targets with large offsets, and inputs with nothing to score.

`evaluate`'s streamed R2 merged block means at the targets' level: y near 1e9 with a
spread of 1e-3 gave R2 2e-4 off in blocks of 50 rows, 9e-4 in rows of one (NOTE [metrics
about a shift] in stats/metrics.py); NaN targets gave R2 0 beside an MSE of NaN, zero
weights R2 1.0, empty input NaN without a word (an iterative-and-metrics hunt). The
reference is exact rational arithmetic.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from torchlinreg.stats.metrics import StreamingMetrics, regression_metrics


def _exact_r2(y, p, w) -> float:
    Y, P, W = ([Fraction(float(v)) for v in a] for a in (y, p, w))
    sw = sum(W)
    mean = sum(wi * yi for wi, yi in zip(W, Y, strict=True)) / sw
    sst = sum(wi * (yi - mean) ** 2 for wi, yi in zip(W, Y, strict=True))
    sse = sum(wi * (yi - pi) ** 2 for wi, yi, pi in zip(W, Y, P, strict=True))
    return float(1 - sse / sst)


@pytest.mark.parametrize("block", [1, 50, 1000])
@pytest.mark.parametrize("weighted", [False, True])
def test_r2_keeps_its_digits_on_targets_near_1e9(block, weighted):
    rng = np.random.default_rng(0)
    n = 1000
    y = 1e9 + 1e-3 * rng.normal(size=n)
    p = y + 1e-3 * rng.normal(size=n) * 0.97
    w = rng.uniform(0.5, 2, n) if weighted else np.ones(n)
    ref = _exact_r2(y, p, w)
    acc = StreamingMetrics()
    for lo in range(0, n, block):
        acc.update(torch.from_numpy(y[lo : lo + block]), torch.from_numpy(p[lo : lo + block]),
                   torch.from_numpy(w[lo : lo + block]) if weighted else None)  # fmt: skip
    assert abs(float(acc.result()["r2"][0]) - ref) < 1e-12 * max(1.0, abs(ref))
    batch = regression_metrics(torch.from_numpy(y), torch.from_numpy(p),
                               torch.from_numpy(w) if weighted else None)  # fmt: skip
    assert abs(float(batch["r2"][0]) - ref) < 1e-12 * max(1.0, abs(ref))


def test_nothing_to_score_is_said():
    y = torch.tensor([1.0, float("nan"), 3.0])
    assert torch.isnan(regression_metrics(y, torch.tensor([1.0, 2.0, 3.0]))["r2"]).all()
    with pytest.raises(ValueError, match="weight zero"):
        regression_metrics(torch.ones(3), torch.ones(3), torch.zeros(3))
    with pytest.raises(ValueError, match="empty"):
        regression_metrics(torch.ones(0), torch.ones(0))


def test_a_first_row_of_weight_zero_sets_no_shift():
    # such a row may hold anything (NOTE [shifts from rows that count]): about 1e50 the
    # targets near 1e9 would keep no digit
    rng = np.random.default_rng(1)
    y = 1e9 + 1e-3 * rng.normal(size=200)
    p = y + 1e-3 * rng.normal(size=200)
    w = np.ones(200)
    y[0], w[0] = 1e50, 0.0
    acc = StreamingMetrics()
    acc.update(torch.from_numpy(y), torch.from_numpy(p), torch.from_numpy(w))
    ref = _exact_r2(y[1:], p[1:], w[1:])
    assert abs(float(acc.result()["r2"][0]) - ref) < 1e-12 * max(1.0, abs(ref))
