"""The condition number of a triangular factor: exact up to 512 columns, estimated above
(NOTE [condition estimate] in exact/linalg.py), against numpy's singular values."""

import math

import numpy as np
import pytest
import torch

from torchlinreg.exact.linalg import EXACT_CONDITION_MAX, condition_number


def _factor(p: int, cond_target: float, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.normal(size=(2 * p, p)))
    v, _ = np.linalg.qr(rng.normal(size=(p, p)))
    s = np.geomspace(1.0, 1.0 / cond_target, p)
    return torch.linalg.qr(torch.from_numpy((u * s) @ v.T), mode="r").R


@pytest.mark.parametrize("cond_target", [3.0, 1e4, 1e10])
def test_the_estimate_is_never_high_and_close_to_the_singular_values(cond_target):
    # 1) above the threshold the estimate is a lower bound (power iteration from below for
    #    the top, from above for the bottom); 2) within 10% of numpy's ratio
    r = _factor(EXACT_CONDITION_MAX + 88, cond_target, seed=int(math.log10(cond_target)))
    sv = np.linalg.svd(r.numpy(), compute_uv=False)
    exact = sv[0] / sv[-1]
    got = condition_number(r)
    assert got <= exact * (1 + 1e-10)  # 1
    assert got >= 0.9 * exact  # 2


def test_small_factors_are_exact_and_singular_ones_infinite():
    r = _factor(40, 1e6, seed=3)
    sv = np.linalg.svd(r.numpy(), compute_uv=False)
    assert condition_number(r) == pytest.approx(sv[0] / sv[-1], rel=1e-12)
    big = _factor(EXACT_CONDITION_MAX + 8, 10.0, seed=4)
    big[5, 5] = 0.0  # a zero pivot: singular
    assert condition_number(big) == math.inf
    assert condition_number(torch.zeros(0, 0, dtype=torch.float64)) == 1.0
