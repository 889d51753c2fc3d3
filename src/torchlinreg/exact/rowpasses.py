"""Passes over the rows for refinement: residuals, gradients and sums in double-double.

One pass of :class:`RowPasses` reads the rows once, in blocks of ``block_rows``, and splits
each block once into error-free pieces (NOTE [error-free products], NOTE [blocks in cache]
in ``products.py``) that serve both products it needs: the residual ``r = y - [1 | X] x``
and the gradient ``[1 | X].T W r``, each a few GEMMs whatever the number of targets. The
same pass gathers the block's sums of squares, so the pass that finds the correction at
rounding level also delivers the sums, without another read of the rows.

Example:
    >>> import torch
    >>> X = torch.arange(40, dtype=torch.float64)[:, None]
    >>> Y = 3 - 2 * X  # exactly on the line: the gradient is exactly zero
    >>> passes = RowPasses(lambda: [(X, Y, None)], intercept=True)
    >>> x = (torch.tensor([[3.0], [-2.0]], dtype=torch.float64), torch.zeros(2, 1))
    >>> passes(x).abs().max().item()
    0.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from .ddouble import (
    DD,
    d_sub_dd,
    dd_add,
    dd_add_fast,
    dd_div_d,
    dd_mul,
    dd_mul_d,
    dd_square,
    dd_sub,
    dd_sum,
    two_square,
    two_sum,
)
from .products import BLOCK_VALUES, SplitBlock, Workspace

# A block's residuals (rows x targets) and their dozen double-double temporaries stay small
RESIDUAL_VALUES = 1 << 15


def block_rows(q: int, k: int) -> int:
    """Rows per block of a pass over ``q`` columns and ``k`` targets (NOTE [blocks in
    cache] in ``products.py``): at most ``BLOCK_VALUES`` values of X and
    ``RESIDUAL_VALUES`` residuals."""
    return max(16, min(BLOCK_VALUES // max(q, 1), RESIDUAL_VALUES // max(k, 1)))


Chunks = Callable[[], Iterable[tuple[Tensor, Tensor, Tensor | None]]]


def weighted(r: DD, w: Tensor | None) -> DD:
    return r if w is None else dd_mul_d(r, w[:, None])


def residual(fitted: DD, Y: Tensor, x: DD | Tensor, intercept: bool) -> DD:
    """``Y - [1 | X] x`` in double-double for one block, ``fitted`` its ``X x`` (dd); ``x``
    ``(c + d, k)``, a double-double or float64 (refinement's parameters: no low part)."""
    if intercept:
        hi, lo = (x, None) if isinstance(x, Tensor) else x
        b0 = hi[:1].expand_as(fitted[0])
        b0_lo = torch.zeros_like(b0) if lo is None else lo[:1].expand_as(b0)
        fitted = dd_add_fast(fitted, (b0, b0_lo))
    return d_sub_dd(Y, fitted)


def columns(x: DD | Tensor, intercept: bool) -> DD | Tensor:
    """The rows of ``x`` that multiply X (all but the intercept's)."""
    c = int(intercept)
    return x[c:] if isinstance(x, Tensor) else (x[0][c:], x[1][c:])


def gradient(
    split: SplitBlock,
    wr: DD,
    intercept: bool,
    tolerance: Tensor | None = None,
    extra: Tensor | None = None,
) -> DD:
    """``[1 | X].T wr`` in double-double for one split block, ``(c + d, k)``; ``tolerance``
    and ``extra`` as :meth:`SplitBlock.matmul_t` takes them."""
    g = split.matmul_t(wr, tolerance, extra)
    if not intercept:
        return g
    hi, lo = dd_sum(wr, 0)
    return torch.cat([hi[None], g[0]]), torch.cat([lo[None], g[1]])


Y_SUMS = ("sw", "sy", "syy", "uyy")  # the sums of y alone: the same in every pass


def block_sums(
    Y: Tensor,
    r: DD,
    w: Tensor | None,
    shift: Tensor,
    *,
    y_too: bool = True,
    fitted_too: bool = True,
) -> dict[str, DD]:
    """Mergeable dd sums of one chunk; y and fitted values are taken about ``shift``.

    ``y_too`` adds the sums of y alone (``Y_SUMS``), which a later pass can take from the
    first; ``fitted_too`` the uncentred sum of squares of the fitted values, which only a
    fit without an intercept reads.
    """
    # the specialised kernels (one split per square, no TwoSum of a zero low part) give
    # the general ones' results bit for bit, in two thirds of the vector passes
    dy = two_sum(Y, -shift.expand_as(Y))  # exact
    df = dd_sub(dy, r)

    def total(v: DD) -> DD:
        return dd_sum(weighted(v, w), 0)

    out = {"sf": total(df), "sff": total(dd_square(df)), "rss": total(dd_square(r))}
    if y_too:
        if w is None:  # the count, exactly
            count = Y.new_full((1,), float(Y.shape[0]))
            out["sw"] = (count, torch.zeros_like(count))
        else:
            out["sw"] = dd_sum((w[:, None], torch.zeros_like(w[:, None])), 0)
        out.update(sy=total(dy), syy=total(dd_square(dy)), uyy=total(two_square(Y)))
    if fitted_too:
        out["uff"] = total(dd_square(d_sub_dd(Y, r)))
    return out


def finish_sums(s: dict[str, DD], fit_intercept: bool) -> dict[str, Tensor]:
    """rss, ess and the total sums of squares from the merged chunk sums."""
    sw = s["sw"][0] + s["sw"][1]

    def about_mean(sq: DD, first: DD) -> Tensor:
        # first * (first / sw), not first^2 / sw: with weights near 1e170 the sum
        # sum w (y - s) is near 1e175 and its square overflowed, so R2 and F came out NaN
        # under no warning (a weights hunt) where the mean's product stays in range
        mean = dd_div_d(first, sw.expand_as(first[0]))
        v = dd_sub(sq, dd_mul(first, mean))
        return v[0] + v[1]

    centered = about_mean(s["syy"], s["sy"])
    ess = about_mean(s["sff"], s["sf"]) if fit_intercept else s["uff"][0] + s["uff"][1]
    return {
        "rss": s["rss"][0] + s["rss"][1],
        "ess": ess,
        "centered_tss": centered,
        "uncentered_tss": s["uyy"][0] + s["uyy"][1],
    }


def chunked(blocks: Iterable[tuple[Tensor, Tensor, Tensor | None]], rows: int):
    """Blocks cut into chunks of at most ``rows`` rows (views, no copies)."""
    for X, Y, w in blocks:
        for start in range(0, X.shape[0], rows):
            end = start + rows
            yield X[start:end], Y[start:end], None if w is None else w[start:end]


class RowPasses:
    """``g = [1 | X].T W (y - [1 | X] x)`` over the rows, remembering each pass's sums.

    ``chunks()`` returns a fresh iterable of ``(X, Y, w or None)`` (float64, X holding only
    the kept columns) each time it is called. Calling the object with a dd ``x`` makes one
    pass and returns ``g`` rounded to float64; ``sums`` and ``x`` of the last pass stay on it.
    """

    def __init__(self, chunks: Chunks, *, intercept: bool, bits: int = 106) -> None:
        self.chunks = chunks
        self.intercept = intercept
        self.bits = bits
        self.shift: Tensor | None = None
        self._y_sums: dict[str, DD] | None = None  # Y_SUMS of the first pass
        self._workspace = Workspace()  # the chunks' pieces (NOTE [reused pieces])
        self.x: DD | Tensor | None = None
        self.sums: dict[str, DD] | None = None
        # float64 A.T W (y - shift) and A.T W 1 of the last pass (see ``moments``)
        self.moments: tuple[Tensor, Tensor] | None = None
        # s: the gradient comes back as M' g = [g_0, g_x - s g_0], formed in double-double
        # (NOTE [refinement about the shift] in refine.py)
        self.gradient_shift: Tensor | None = None
        # bounds on what the last pass's products left out (NOTE [bits as needed] in
        # products.py): sum w delta_r^2 per target, and |delta g| (d, k)
        self.error: tuple[Tensor, Tensor] | None = None
        # whether a block of the last pass took fewer than 106 bits for its residuals, and
        # for its gradient
        self.cut = (False, False)

    def _blocks(self) -> Iterable[tuple[Tensor, Tensor, Tensor | None]]:
        for X, Y, w in self.chunks():
            rows = block_rows(X.shape[1], Y.shape[1])
            for Xb, Yb, wb in chunked([(X, Y, w)], rows):
                # rows of weight zero add nothing, and their values must not set the pieces'
                # bounds (NOTE [shifts from rows that count] in summaries.py): a copy of the
                # block's other rows where there are any
                if wb is not None and bool((wb == 0).any()):
                    live = wb > 0
                    if not bool(live.any()):
                        continue
                    Xb, Yb, wb = Xb[live], Yb[live], wb[live]
                yield Xb, Yb, wb

    def _shift(self, Y: Tensor, w: Tensor | None) -> Tensor:
        # the first chunk's weighted mean: sums about it lose no digits to offsets
        wy = Y if w is None else Y * w[:, None]
        sw = float(Y.shape[0]) if w is None else w.sum().clamp_min(1e-300)
        return (wy.sum(0) / sw)[None, :]

    def __call__(
        self,
        x: DD | Tensor,
        *,
        gradient_too: bool = True,
        moments: bool = False,
        tolerance: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor | None:
        """One pass at ``x`` (dd or float64); ``moments`` also gathers ``A.T W (y - shift)``
        and ``A.T W 1`` in float64 (``self.moments``), which carry the sums to a corrected
        ``x`` without another pass (NOTE [one certified step] in ``refine.py``).
        ``tolerance``: the absolute error each residual ``(k,)`` and, per row summed, each
        gradient entry ``(d, k)`` may take (NOTE [bits as needed]); ``self.error`` then
        bounds what the products left out."""
        g, total, h, c = None, None, None, None
        r_tol, g_tol = (None, None) if tolerance is None else tolerance
        err_r, err_g, cut_r, cut_g = None, None, False, False
        for X, Y, w in self._blocks():
            if self.shift is None:
                self.shift = self._shift(Y, w)
            split = SplitBlock(
                X, columns(x, self.intercept), bits=self.bits, tolerance=r_tol,
                workspace=self._workspace,
            )  # fmt: skip
            r = residual(split.fitted, Y, x, self.intercept)
            sw = float(Y.shape[0]) if w is None else float(w.sum())
            e = sw * split.error.square()
            err_r = e if err_r is None else err_r + e
            cut_r = cut_r or split.cut
            sb = block_sums(
                Y, r, w, self.shift, y_too=self._y_sums is None, fitted_too=not self.intercept
            )
            total = sb if total is None else {k: dd_add(total[k], sb[k]) for k in sb}
            right = _moments_right(Y - self.shift, w) if moments else None
            if gradient_too:
                tol = None if g_tol is None else g_tol * X.shape[0]
                gb = gradient(split, weighted(r, w), self.intercept, tol, right)
                g = gb if g is None else dd_add(g, gb)
                cut_g = cut_g or split.cut_t
                err_g = split.error_t if err_g is None else err_g + split.error_t
            if moments:  # X.T @ right came with the gradient's GEMMs
                both = split.extra_t if gradient_too else X.T @ right
                hb, cb = _moments(both, right, self.intercept)
                h, c = (hb, cb) if h is None else (h + hb, c + cb)
        if total is not None:
            if self._y_sums is None:
                self._y_sums = {k: total[k] for k in Y_SUMS}
            else:
                total.update(self._y_sums)
        self.x, self.sums = x, total
        self.moments = None if h is None else (h, c)
        self.error = None if err_r is None or err_g is None else (err_r, err_g)
        self.cut = (cut_r, cut_g)
        if g is None:
            return None
        s = self.gradient_shift
        if s is not None and self.intercept and g[0].shape[0] > 1:
            moved = dd_mul_d((g[0][:1].expand(s.shape[0], -1), g[1][:1].expand(s.shape[0], -1)),
                             s[:, None].expand(-1, g[0].shape[1]))  # fmt: skip
            rest = dd_sub((g[0][1:], g[1][1:]), moved)
            g = (torch.cat([g[0][:1], rest[0]]), torch.cat([g[1][:1], rest[1]]))
        return g[0] + g[1]


def _moments_right(dy: Tensor, w: Tensor | None) -> Tensor:
    """``[W dy | w]`` ``(m, k + 1)``: what X.T multiplies for the moments."""
    weights = dy.new_ones(dy.shape[0]) if w is None else w
    return torch.cat([dy * weights[:, None], weights[:, None]], 1)


def _moments(both: Tensor, right: Tensor, intercept: bool) -> tuple[Tensor, Tensor]:
    """``A.T W dy`` ``(q, k)`` and ``A.T W 1`` ``(q,)`` of one chunk, ``A = [1 | X]``, from
    ``both = X.T @ right`` (``X.sum(0)``, a strided reduction, took as long as a GEMM)."""
    if intercept:
        both = torch.cat([right.sum(0, keepdim=True), both])
    return both[:, :-1], both[:, -1]
