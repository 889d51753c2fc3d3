"""Matrix products to double-double accuracy with float64 GEMMs only (the Ozaki scheme).

NOTE [error-free products]
Refinement needs ``A @ x`` and ``A.T @ r`` to about 30 digits. Elementwise double-double
(``ddouble.py``) costs ~20 flops per product term, at vector speed, once per target. Here a
block of rows of A is split *once* into a few float64 pieces, and each product becomes a
few GEMMs that are exact whatever order the BLAS sums in:

- every column of A is scaled by a power of two (exact) so that all its entries are at
  most 1; a piece ``hi = (rest + s) - s`` with ``s = 2^(53 - a)`` then holds ``a`` bits on
  the grid ``2^(1 - a)``, the next piece the next ``a`` bits, and so on;
- the other operand (x, or r) is split per column the same way into pieces of ``b`` bits;
- an A piece times a B piece, summed over m terms, is an integer multiple of the product
  of the two grids and below ``m 2^(a + b)`` of them; with ``a + b + log2(m) <= 53`` every
  partial sum a GEMM can form is a float64, so the product is exact (Ozaki, Ogita, Oishi &
  Rump, 2012). All B pieces go side by side into one GEMM per A piece: A is read once per
  piece, whatever the number of targets.

The exact partial products are added with TwoSum. What the pieces leave out is below
``2^-bits`` of ``|A| |B|`` (column maxima of A). Limits: entries within about
2^-900 .. 2^900, where the scalings stay normal numbers; regression data is far inside.

Example:
    >>> import torch
    >>> A = torch.tensor([[1e16, 1.0, -1e16]], dtype=torch.float64)
    >>> x = torch.ones(3, 1, dtype=torch.float64)
    >>> hi, lo = SplitBlock(A, x).fitted
    >>> float(hi[0, 0]), float((A @ x)[0, 0])
    (1.0, 0.0)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .ddouble import DD, dd_add_fast

_MANTISSA = 53
FULL_BITS = 106  # what elementwise double-double arithmetic gives


def _log2(m: int) -> int:
    return math.ceil(math.log2(max(m, 2)))


def _power_of_two_bound(values: Tensor, dim: int) -> Tensor:
    """``2^e >= max |values|`` along ``dim`` (kept), 1 where the maximum is 0."""
    top = values.abs().amax(dim=dim, keepdim=True)
    return torch.ldexp(torch.ones_like(top), torch.frexp(top).exponent)


def _split(M: Tensor, bound: Tensor, bits: int, count: int) -> list[Tensor]:
    """``count`` pieces of M (``|M| <= bound``), each ``bits`` bits below the last."""
    pieces = []
    rest = M
    sigma = bound * 2.0 ** (_MANTISSA - bits)
    step = 2.0**-bits
    for _ in range(count):
        hi = (rest + sigma) - sigma
        pieces.append(hi)
        rest = rest - hi
        sigma = sigma * step
    return pieces


# NOTE [the remainder]
# A piece of ``a`` bits times a piece of ``b`` bits, summed over ``2^L`` terms, is exact when
# a + b + L <= 53: wide A pieces leave narrow pieces of the other operand. The other operand
# is small (the parameters, or one chunk's residuals), A is the rows: so A is cut into wide
# pieces (few elementwise passes over the rows) and the small operand into many narrow ones,
# side by side in one GEMM per A piece. What the exact A pieces leave (below 2^(-count a))
# is multiplied as it is, by the other operand's float64 part: that product rounds, by at
# most about 2^(L - 53 - count a) of |A| |B|, so ``count`` is taken to put that below
# 2^-bits. How wide the A pieces are is a trade (``_a_bits``): each A piece costs three
# passes over the chunk, each pair of pieces a GEMM column per target; with many targets
# the balanced split (a = b) of Ozaki et al. is cheaper, with few the wide one.
_PASS_COST = 10  # one elementwise pass over a chunk, in GEMM flops per element of A


def _exact_pieces(bits: int, a: int, L: int) -> int:
    return max(1, math.ceil((bits - _MANTISSA + L) / a))


def _pairs(bits: int, a: int, b: int, count: int) -> int:
    return sum(max(0, math.ceil((bits - s * a) / b)) for s in range(count))


def _accumulate(groups: list[tuple[int, Tensor]], bits: int) -> DD:
    """The sum of exact partial products as a double-double.

    ``groups`` holds ``(e, P)``: P is below ``2^-e`` of ``|A| |B|``. TwoSum where a term's
    rounding would show (``e < bits - 53``, a few leading terms); the rest, too small for
    their float64 rounding to matter, are summed plainly and added once.
    """
    groups = sorted(groups, key=lambda g: g[0])
    hi = groups[0][1].clone()
    lo = torch.zeros_like(hi)
    tail = None
    for e, P in groups[1:]:
        if e < bits - _MANTISSA + 2:
            hi, lo = dd_add_fast((hi, lo), (P, torch.zeros_like(P)))
        else:
            tail = P.clone() if tail is None else tail.add_(P)
    if tail is not None:
        hi, lo = dd_add_fast((hi, lo), (tail, torch.zeros_like(tail)))
    return hi, lo


# NOTE [reused pieces]
# A chunk's pieces are a few copies of the chunk (3 MB each at 4096 x 100). Made afresh for
# every chunk, the allocator handed their pages back and took new ones each time: 120,000
# to 200,000 page faults and 12% of a refinement pass at 1M x 100 (2.96 s without them,
# 3.36 s with). A :class:`Workspace` keeps one buffer per piece for a whole pass.


class Workspace:
    """Buffers for the pieces of successive :class:`SplitBlock`, reused block after block."""

    def __init__(self) -> None:
        self.flat: Tensor | None = None

    def views(self, count: int, m: int, q: int, like: Tensor) -> list[Tensor]:
        """``count`` contiguous ``(m, q)`` buffers (the previous chunk's, where they fit)."""
        need = count * m * q
        flat = self.flat
        fits = flat is not None and flat.numel() >= need
        if not (fits and flat.dtype == like.dtype and flat.device == like.device):
            flat = self.flat = like.new_empty(need)
        return [flat[i * m * q : (i + 1) * m * q].view(m, q) for i in range(count)]


# NOTE [blocks in cache]
# A pass used to split chunks of 4096 rows: at 100 columns a chunk and its pieces (13 MB)
# live in L3, where each of the dozen elementwise passes ran at half the speed it has in
# L2, and every chunk paid ~300 small double-double operations on its residuals. A
# :class:`SplitBlock` splits a larger block (``BLOCK_VALUES``) slice by slice, each slice
# (``SLICE_VALUES``) with its pieces in L2, and takes the slice's products with x right
# there; the residuals and sums are then formed once per block. A.T @ r needs the whole
# block's residuals first, so it reads the kept pieces once more, one GEMM per piece.
# The two products sum over different lengths (q columns, m rows), so each gets the
# widest pieces of the other operand its own length allows. The pieces stay in A's
# units: a column's pieces all lie on one power-of-two grid, so x's pieces are scaled
# by the column's bound instead (exact), and A is never divided.
SLICE_VALUES = 1 << 16
BLOCK_VALUES = 1 << 20


def _block_a_bits(bits: int, L_x: int, L_t: int, targets: int) -> int:
    """The width of A's pieces with the least estimated work for both products."""
    best, best_cost = None, math.inf
    L = max(L_x, L_t)  # both products' other operand keeps pieces of 3 bits or more
    for a in range(max(1, (_MANTISSA - L) // 3), _MANTISSA - L - 2):
        count = _exact_pieces(bits, a, L_t)
        pairs = _pairs(bits, a, _MANTISSA - L_x - a, count) + _pairs(
            bits, a, _MANTISSA - L_t - a, count
        )
        cost = 3 * _PASS_COST * count + 2 * targets * (pairs + 2)
        if cost < best_cost:
            best, best_cost = a, cost
    return best if best is not None else (_MANTISSA - L) // 2


def _operand_pieces(hi: Tensor, lo: Tensor | None, bits: int, b: int) -> list[tuple[int, Tensor]]:
    """The other operand ``hi + lo`` cut into pieces of ``b`` bits below its column bound,
    each tagged with how many bits below the bound it starts (lo from ``2^-52`` of it)."""
    bound = _power_of_two_bound(hi, 0)
    out = [(t * b, p) for t, p in enumerate(_split(hi, bound, b, math.ceil(bits / b)))]
    if lo is not None:
        count = math.ceil(max(bits - 52, 0) / b)
        out += [(52 + t * b, p) for t, p in enumerate(_split(lo, bound * 2.0**-52, b, count))]
    return out


class SplitBlock:
    """A block of rows of ``A`` ``(m, q)`` split once, with ``A @ x`` taken on the way.

    ``x`` ``(q, k)`` is float64 or a double-double. ``fitted`` holds ``A @ x`` to about
    ``2^-bits`` of ``|A| |x|`` (column maxima of A); :meth:`matmul_t` gives ``A.T @ r``
    from the kept pieces (NOTE [blocks in cache], NOTE [error-free products]).

    Example:
        >>> A = torch.tensor([[1e16, 1.0, -1e16]], dtype=torch.float64)
        >>> block = SplitBlock(A, torch.ones(3, 1, dtype=torch.float64))
        >>> float(block.fitted[0][0, 0])
        1.0
    """

    def __init__(
        self,
        A: Tensor,
        x: DD | Tensor | None,
        *,
        bits: int = FULL_BITS,
        tolerance: Tensor | None = None,
        workspace: Workspace | None = None,
        slice_values: int = SLICE_VALUES,
    ) -> None:
        m, q = A.shape
        # x None: only the pieces, for A.T @ r (sized as for one column)
        if x is None:
            x_hi, x_lo = A.new_zeros(q, 1), None
        else:
            x_hi, x_lo = (x, None) if isinstance(x, Tensor) else x
        k = x_hi.shape[1]
        self.shape, self.L_x, self.L_t = (m, q), _log2(q), _log2(m)
        self.pieces: list[Tensor] = []
        # |A @ x - fitted| per row and target, at most (NOTE [bits as needed])
        # whether a tolerance took bits from A @ x, and from A.T @ r
        self.error, self.cut, self.cut_t = x_hi.new_zeros(k), False, False
        if m == 0 or q == 0:
            zero = x_hi.new_zeros(m, k)
            self.fitted: DD | None = None if x is None else (zero, zero.clone())
            self.bits = bits + 6
            return
        # the columns' power-of-two bounds, from two reads (A.abs() would be a copy)
        top = torch.maximum(A.amax(0, keepdim=True), -A.amin(0, keepdim=True))
        self.col = col = torch.ldexp(torch.ones_like(top), torch.frexp(top).exponent)
        scale = q * _power_of_two_bound(x_hi * col.T, 0)[0]  # (k,): the products' bound
        if tolerance is not None:
            bits = min(bits, _bits_for(scale, tolerance))
        self.error = scale * 2.0**-bits
        self.cut = bits < FULL_BITS
        self.bits = bits + 6  # margin: the pairs left out add up over a few dozen terms
        a = self.a_bits = _block_a_bits(self.bits, self.L_x, self.L_t, k)
        # rem.T @ r rounds over m terms (more pieces if its tolerance asks: ``_extend``)
        count = _exact_pieces(self.bits, a, self.L_t)
        # x's pieces in A's units: A's column j lies on col_j's grid, x_j's pieces on the
        # grid of x_j col_j, so each product term sits on one grid per row (exact sums)
        colT = col.T
        others = [] if x is None else [
            (e, p / colT)
            for e, p in _operand_pieces(
                x_hi * colT, None if x_lo is None else x_lo * colT, self.bits,
                _MANTISSA - a - self.L_x,
            )
        ]  # fmt: skip
        wanted = [[(e, p) for e, p in others if s * a + e < self.bits] for s in range(count)]
        rights = [torch.cat([p for _, p in w], 1) if w else None for w in wanted]
        space = workspace if workspace is not None else Workspace()
        *pieces, rem = space.views(count + 1, m, q, A)
        outs = [None if r is None else A.new_empty(m, r.shape[1]) for r in rights]
        out_rem = A.new_empty(m, k)
        sigmas = [col * 2.0 ** (_MANTISSA - (s + 1) * a) for s in range(count)]
        step = max(1, slice_values // q)
        for i in range(0, m, step):
            src, rest = A[i : i + step], rem[i : i + step]
            for s in range(count):
                hi = torch.add(src if s == 0 else rest, sigmas[s], out=pieces[s][i : i + step])
                hi.sub_(sigmas[s])
                if s == 0:
                    torch.sub(src, hi, out=rest)
                else:
                    rest.sub_(hi)
                if rights[s] is not None:
                    torch.mm(hi, rights[s], out=outs[s][i : i + step])
            if x is not None:
                torch.mm(rest, x_hi, out=out_rem[i : i + step])
        self.pieces = [*pieces, rem]
        self.fitted = None
        if x is None:
            return
        groups = [
            (s * a + e, outs[s][:, j * k : (j + 1) * k])
            for s in range(count)
            for j, (e, _) in enumerate(wanted[s])
        ]
        groups.append((count * a, out_rem))
        self.fitted = _accumulate(groups, self.bits)

    def matmul_t(self, R: DD, tolerance: Tensor | None = None, extra: Tensor | None = None) -> DD:
        """``A.T @ (R_hi + R_lo)``, ``R`` a double-double ``(m, k)``; ``tolerance``
        ``(q, k)``: the absolute error each entry may have (NOTE [bits as needed]), which
        ``error_t`` then bounds. ``extra`` ``(m, e)``: ``A.T @ extra`` is also taken, in
        float64, by the same GEMMs (``extra_t``), so the pieces are read only once."""
        m, q = self.shape
        r_hi, r_lo = R
        k = r_hi.shape[1]
        self.error_t = r_hi.new_zeros(q, k)
        self.extra_t = None if extra is None else r_hi.new_zeros(q, extra.shape[1])
        if not self.pieces:
            zero = r_hi.new_zeros(q, k)
            return zero, zero.clone()
        bits, a = self.bits, self.a_bits
        if tolerance is not None:
            scale = m * self.col.T * _power_of_two_bound(r_hi, 0)  # (q, k)
            need = _bits_for(scale, tolerance) + 6
            if need > bits:  # more of A's pieces than A @ x needed
                self._extend(_exact_pieces(need, a, self.L_t))
            bits = need
            self.error_t = scale * 2.0 ** (6 - bits)
            self.cut_t = bits - 6 < FULL_BITS
        others = _operand_pieces(r_hi, r_lo, bits, _MANTISSA - a - self.L_t)
        *exact, rem = self.pieces
        groups, more = [], 0 if extra is None else extra.shape[1]
        for s, piece in enumerate(exact):
            wanted = [(e, p) for e, p in others if s * a + e < bits]
            if not wanted and extra is None:
                break
            product = piece.T @ torch.cat(
                [p for _, p in wanted] + ([] if extra is None else [extra]), 1
            )
            groups += [
                (s * a + e, product[:, j * k : (j + 1) * k]) for j, (e, _) in enumerate(wanted)
            ]
            if extra is not None:
                self.extra_t += product[:, product.shape[1] - more :]
        last = rem.T @ (r_hi if extra is None else torch.cat([r_hi, extra], 1))
        if extra is not None:
            self.extra_t += last[:, k:]
        groups.append((len(exact) * a, last[:, :k]))
        return _accumulate(groups, bits)

    def _extend(self, count: int) -> None:
        """Cut A's remainder into more pieces, up to ``count`` exact ones."""
        *exact, rem = self.pieces
        for s in range(len(exact), count):
            sigma = self.col * 2.0 ** (_MANTISSA - (s + 1) * self.a_bits)
            hi = torch.add(rem, sigma)
            hi.sub_(sigma)
            rem.sub_(hi)
            exact.append(hi)
        self.pieces = [*exact, rem]


# NOTE [bits as needed]
# 106 bits make every product as good as double-double arithmetic, which small fits (the
# NIST sets) take. A large fit's refinement needs fewer: a residual off by delta moves the
# correction by at most |delta| / sigma_min (the column-scaled factor's), the sums of
# squares by 2 |r| |delta|, and the gradient's error by (R'R)^-1 of it; the caller turns
# what it needs of those into an absolute tolerance per residual and per gradient entry,
# and each block takes the fewest bits whose bound (``q 2^-bits`` times the largest
# column-scaled term, ``m 2^-bits`` for A.T @ r) meets it. Fewer bits mean fewer pieces of
# A (each three passes over the block) and of the other operand (GEMM columns). The bound
# each block used is kept (``error``, ``error_t``), so the caller can check afterwards
# that what it needed was met (exact/refine.py) and do the pass again at 106 bits if not.


def _bits_for(scale: Tensor, tolerance: Tensor) -> int:
    """The fewest bits (53..FULL_BITS) with ``scale 2^-bits <= tolerance`` everywhere."""
    ratio = float((scale / tolerance).amax())
    if ratio <= 0.0:  # nothing to multiply
        return _MANTISSA
    if not math.isfinite(ratio):  # NaN included
        return FULL_BITS
    return min(FULL_BITS, max(_MANTISSA, math.ceil(math.log2(ratio))))


def dd_matmul(A: Tensor, B: DD, *, bits: int = FULL_BITS) -> DD:
    """``A @ B`` to about ``2^-bits`` of ``|A| |B|`` (B a double-double), by GEMMs."""
    return SplitBlock(A, B, bits=bits).fitted


def dd_matmul_t(A: Tensor, R: DD, *, bits: int = FULL_BITS) -> DD:
    """``A.T @ R`` to about ``2^-bits`` of ``|A|.T |R|`` (R a double-double), by GEMMs."""
    return SplitBlock(A, None, bits=bits).matmul_t(R)
