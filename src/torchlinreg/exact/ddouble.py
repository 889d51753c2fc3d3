"""Double-double arithmetic on float64 tensors: about 32 significant digits, float64 only.

A double-double number is an unevaluated pair ``(hi, lo)`` with ``|lo| <= ulp(hi) / 2``.
The kernels are the error-free transformations of Knuth (TwoSum) and Dekker (Split,
TwoProduct), vectorized elementwise over torch tensors, so they run on any device.

# NOTE [ no fused multiply-add ]
Dekker's split needs every product and sum rounded on its own. Eager torch runs each
operation as a separate kernel, so nothing contracts ``a * b + c`` into an FMA; do not
wrap these functions in ``torch.compile``, which may fuse them and break the algebra.
The split overflows for ``|a| > 2**996``; regression data never gets there.

Example:
    >>> import torch
    >>> a = torch.tensor([1e16], dtype=torch.float64)
    >>> hi, lo = two_sum(a, torch.ones_like(a))
    >>> float(hi), float(lo)
    (1e+16, 1.0)
"""

from __future__ import annotations

import torch
from torch import Tensor

_SPLITTER = 134217729.0  # 2**27 + 1, Dekker's constant for 53-bit mantissas

DD = tuple[Tensor, Tensor]


def two_sum(a: Tensor, b: Tensor) -> DD:
    """Return ``(s, e)`` with ``s = fl(a + b)`` and ``a + b = s + e`` exactly."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


def quick_two_sum(a: Tensor, b: Tensor) -> DD:
    """TwoSum when ``|a| >= |b|`` (or ``a == 0``): three flops instead of six."""
    s = a + b
    e = b - (s - a)
    return s, e


def split(a: Tensor) -> DD:
    """Dekker's split: ``a = hi + lo`` with each half holding 26 bits."""
    c = _SPLITTER * a
    hi = c - (c - a)
    return hi, a - hi


def two_prod(a: Tensor, b: Tensor) -> DD:
    """Return ``(p, e)`` with ``p = fl(a * b)`` and ``a * b = p + e`` exactly."""
    p = a * b
    ah, al = split(a)
    bh, bl = split(b)
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


def two_square(a: Tensor) -> DD:
    """``two_prod(a, a)`` with one split: ``(p, e)``, ``p = fl(a * a)``, ``a * a = p + e``."""
    p = a * a
    ah, al = split(a)
    e = ((ah * ah - p) + 2.0 * (ah * al)) + al * al
    return p, e


def dd_square(a: DD) -> DD:
    """``dd_mul(a, a)``, bit for bit, with one split and one cross product."""
    p, e = two_square(a[0])
    e = e + 2.0 * (a[0] * a[1])
    return quick_two_sum(p, e)


def d_sub_dd(a: Tensor, b: DD) -> DD:
    """``dd_sub(dd_from(a), b)``, bit for bit, without the TwoSum of a zero low part."""
    s, e = two_sum(a, -b[0])
    return quick_two_sum(s, e - b[1])


def dd_add(a: DD, b: DD) -> DD:
    """Accurate double-double addition (the IEEE-style variant, relative error ~ 2**-104)."""
    s, e = two_sum(a[0], b[0])
    t, f = two_sum(a[1], b[1])
    e = e + t
    s, e = quick_two_sum(s, e)
    e = e + f
    return quick_two_sum(s, e)


def dd_add_fast(a: DD, b: DD) -> DD:
    """Double-double addition without the low-part TwoSum (Dekker's "sloppy" add).

    Its error is bounded by about ``eps**2 * (|a| + |b|)`` absolutely, not relative to the
    result: exactly what residuals ``y - X b`` and long sums need (the same bound as a
    compensated sum), at half the cost of :func:`dd_add`.
    """
    s, e = two_sum(a[0], b[0])
    e = e + (a[1] + b[1])
    return quick_two_sum(s, e)


def dd_neg(a: DD) -> DD:
    return -a[0], -a[1]


def dd_sub(a: DD, b: DD) -> DD:
    return dd_add(a, dd_neg(b))


def dd_mul_d(a: DD, b: Tensor) -> DD:
    """Double-double times double."""
    p, e = two_prod(a[0], b)
    e = e + a[1] * b
    return quick_two_sum(p, e)


def dd_mul(a: DD, b: DD) -> DD:
    """Double-double times double-double."""
    p, e = two_prod(a[0], b[0])
    e = e + (a[0] * b[1] + a[1] * b[0])
    return quick_two_sum(p, e)


def dd_div_d(a: DD, b: Tensor) -> DD:
    """Double-double divided by double (one Newton correction of the quotient)."""
    q1 = a[0] / b
    r = dd_sub(a, two_prod(q1, b))
    q2 = r[0] / b
    r = dd_sub(r, two_prod(q2, b))
    q3 = r[0] / b
    return dd_add(quick_two_sum(q1, q2), (q3, torch.zeros_like(q3)))


def dd_sum(a: DD, dim: int = 0) -> DD:
    """Sum a double-double tensor along ``dim``, to about ``log2(n) * eps**2 * sum(|a|)``.

    NOTE [exact sums]: the high parts are cut (error-free) into two pieces on a grid fixed
    by the column's largest power of two, each narrow enough that any float64 sum of ``n``
    of them is exact; what they leave, below ``2^-(2 (52 - log2 n))`` of the largest term,
    is summed plainly with the low parts. A dozen vector passes, where the pairwise TwoSum
    tree this replaces took ~8 per halving (about a hundred at 4096 rows): refinement sums
    nine of these per chunk. Non-finite input takes the pairwise tree, which propagates it.
    """
    hi, lo = a[0].movedim(dim, 0), a[1].movedim(dim, 0)
    n = hi.shape[0]
    if n == 0:
        z = hi.new_zeros(hi.shape[1:])
        return z, z.clone()
    if n < 16:
        return _dd_sum_pairwise(hi, lo)
    top = hi.abs().amax(dim=0, keepdim=True)
    if not bool(torch.isfinite(top).all()):
        return _dd_sum_pairwise(hi, lo)
    bound = torch.ldexp(torch.ones_like(top), torch.frexp(top).exponent)
    bits = 53 - max(n - 1, 1).bit_length() - 1
    sigma = bound * 2.0 ** (53 - bits)
    first = (hi + sigma) - sigma
    rest = hi - first
    sigma = sigma * 2.0**-bits
    second = (rest + sigma) - sigma
    rest = (rest - second) + lo
    s, e = two_sum(first.sum(0), second.sum(0))  # both sums exact: TwoSum keeps them whole
    return quick_two_sum(s, e + rest.sum(0))


def _dd_sum_pairwise(hi: Tensor, lo: Tensor) -> DD:
    """Pairwise halving with double-double adds (log2(n) vector steps) along dim 0."""
    while hi.shape[0] > 1:
        odd = hi.shape[0] % 2
        half = hi.shape[0] // 2
        new_hi, new_lo = dd_add_fast(
            (hi[:half], lo[:half]), (hi[half : 2 * half], lo[half : 2 * half])
        )
        if odd:  # fold the leftover row into the first instead of padding (no full copy)
            first = dd_add_fast((new_hi[:1], new_lo[:1]), (hi[-1:], lo[-1:]))
            new_hi[:1], new_lo[:1] = first
        hi, lo = new_hi, new_lo
    return hi[0], lo[0]


def dd_from(a: Tensor) -> DD:
    """Lift a float64 tensor to double-double."""
    return a, torch.zeros_like(a)
