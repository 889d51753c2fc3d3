"""The three summaries a least-squares state can keep, and the row-block kernels that feed them.

Each summary absorbs rows in blocks of ``rows``, converting each block to its dtype and device
on the fly (extra memory: one block, never a copy of X), merges with summaries of its own kind,
and hands the solver a :class:`CentredSummary`. See NOTE [centring] in ``state.py`` for why
the QR rows are shifted and the Gram is centred.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from .linalg import CentredSummary, pow2_scales, psd_upper_factor, squared_column_sums


class Summary:
    """Running totals every kind keeps: total weight, rows with a positive weight and the
    sum of log weights over those rows (float64 whatever the summary's dtype: WLS's
    log-likelihood needs it, and 0 when unweighted).

    They stay on the device (no host sync per block). ``names`` lists the tensors that,
    with the totals, describe the summary completely.
    """

    names: tuple[str, ...] = ()
    since_version_2: tuple[str, ...] = ()  # names a version-1 state record lacks

    def __init__(self, p: int, intercept: bool, dtype: torch.dtype, device: torch.device):
        self.p, self.intercept = p, intercept
        self.sum_w = torch.zeros((), dtype=dtype, device=device)
        self.n_nonzero = torch.zeros((), dtype=torch.int64, device=device)
        self.sum_log_w = torch.zeros((), dtype=torch.float64, device=device)

    def converted(self, device: torch.device, dtype: torch.dtype) -> Summary:
        """A deep copy on ``device`` with floating tensors in ``dtype``."""
        new = copy.copy(self)
        for key, value in vars(self).items():
            if isinstance(value, Tensor):
                keep = key == "sum_log_w" or not value.is_floating_point()
                to = value.dtype if keep else dtype
                setattr(new, key, value.to(device=device, dtype=to).clone())
        return new

    def tensors(self) -> dict[str, Tensor]:
        return {name: getattr(self, name) for name in self.names}

    def absorb(self, X: Tensor, Y: Tensor, w: Any, rows: int) -> None:
        raise NotImplementedError

    def merge(self, others: Sequence[Any]) -> None:
        """Add other non-empty summaries of this kind, already on this device and dtype."""
        raise NotImplementedError

    def centred(self) -> CentredSummary:
        raise NotImplementedError

    def full_r(self) -> Tensor:
        """The upper-triangular factor of the weighted ``[1 | X | Y]`` (uncentred)."""
        raise NotImplementedError

    def full_r_columns(self, cols: slice) -> Tensor:
        """Columns ``cols`` of :meth:`full_r` (the QR summary copies only those)."""
        return self.full_r()[:, cols]

    def _weights(self, w: Any, lo: int, hi: int) -> tuple[Tensor | None, Tensor | None]:
        """Count rows ``lo:hi``; return their weights and square roots (None when unweighted)."""
        (sw, nz, slw), wb, sb = self._block_weights(w, lo, hi)
        self.sum_w += sw
        self.n_nonzero += nz
        self.sum_log_w += slw
        return wb, sb

    def _block_weights(self, w: Any, lo: int, hi: int):
        """Rows ``lo:hi``'s totals ``(sum_w, n_nonzero, sum_log_w)``, weights and their
        square roots (None when unweighted), without touching the state."""
        if w is None:
            count = self.sum_w.new_tensor(float(hi - lo))
            zero = self.sum_log_w.new_zeros(())
            return (count, self.n_nonzero.new_tensor(hi - lo), zero), None, None
        wb = w[lo:hi].to(device=self.sum_w.device, dtype=self.sum_w.dtype)
        w64 = w[lo:hi].to(device=self.sum_log_w.device, dtype=torch.float64)
        log = torch.where(w64 > 0, w64, 1.0).log().sum()  # zero weights: left out
        return (wb.sum(), (wb > 0).sum().to(self.n_nonzero.dtype), log), wb, wb.sqrt()

    def _add_totals(self, other: Summary) -> None:
        self.sum_w += other.sum_w
        self.n_nonzero += other.n_nonzero
        self.sum_log_w += other.sum_log_w.to(self.sum_log_w)


_JOINT_TARGETS = 16  # up to this many targets, one QR of [1 | X | Y] per block is cheaper
_RHS_VALUES = 1 << 19  # values in the targets' work block (past _JOINT_TARGETS targets)


class QRSummary(Summary):
    """TSQR: the R factor of ``[1 | X - shift | Y - shift]`` (rows scaled by sqrt(w)).

    NOTE [one big right-hand side]
    The targets are a right-hand side, not columns to factor: each block is factored on
    ``[1 | X]`` alone (``geqrf``), and the reflectors are applied to the targets (``ormqr``),
    so k targets cost a GEMM-like ``O(rows p k)``, not the ``O(rows (p + k)^2)`` of factoring
    ``[1 | X | Y]`` (1e5 x 100 with 1000 targets: 7.7 s -> under 2 s, and the block in
    memory shrinks with k). The target block of ``r`` is then kept diagonal: each target's
    residual norm, which is all any statistic reads (they are per target); ``r`` is still an
    upper triangular factor whose columns have the norms and projections of the full one.
    Records saved with a full target block load as they are: only its column norms are used.
    """

    names = ("r", "shift")

    def __init__(self, p: int, intercept: bool, dtype: torch.dtype, device: torch.device):
        super().__init__(p, intercept, dtype, device)
        m = p + int(intercept)
        self.r = torch.zeros(m, m, dtype=dtype, device=device)
        self.shift = torch.zeros(p, dtype=dtype, device=device)
        self.has_shift = False

    def _parts(self, d: int) -> tuple[Tensor, Tensor, Tensor]:
        """The design factor, the projected targets and the targets' residual sums."""
        px = int(self.intercept) + d
        return self.r[:px, :px], self.r[:px, px:], squared_column_sums(self.r[px:, px:])

    def _assemble(self, rx: Tensor, z: Tensor, rss: Tensor) -> None:
        px = rx.shape[0]
        like = dict(size=self.r.shape, dtype=self.r.dtype, device=self.r.device)
        # the old factor goes before the new one is made (unless rx, z are its views): with
        # 1000 targets each is 10 MB
        self.r = None
        r = torch.zeros(**like)
        r[:px, :px] = rx
        r[:px, px:] = z
        r[px:, px:].diagonal().copy_(rss.sqrt())  # torch.diag would make a dense k x k
        self.r = r

    def absorb(self, X: Tensor, Y: Tensor, w: Any, rows: int) -> None:
        """Per block: ``geqrf`` of ``[r_x; [1 | X]]``, ``ormqr`` of ``[z; Y]`` (a few
        targets: one QR of the joint block, which costs less than applying reflectors)."""
        if Y.shape[1] <= _JOINT_TARGETS:
            self._absorb_joint(X, Y, w, rows)
            self._diagonal_targets(X.shape[1])
        else:
            self._absorb_rhs(X, Y, w, rows)  # assembles its own, diagonal already

    def _diagonal_targets(self, d: int) -> None:
        """The target block kept diagonal, in place: ``_absorb_joint`` has just made ``r``
        (nobody holds a view of it), and a second factor is 800 MB at 10,000 columns."""
        px = int(self.intercept) + d
        rss = self._parts(d)[2]
        block = self.r[px:, px:]
        block.zero_()
        block.diagonal().copy_(rss.sqrt())

    def _set_shift(self, X: Tensor, Y: Tensor, w: Any, rows: int) -> None:
        if self.intercept and not self.has_shift:
            head = positive_rows(X, Y, w, rows)  # NOTE [shifts from rows that count]
            if head is None:
                return
            d = X.shape[1]
            self.shift[:d] = head[0].to(self.shift).mean(dim=0)
            self.shift[d:] = head[1].to(self.shift).mean(dim=0)
            self.has_shift = True

    def _absorb_joint(self, X: Tensor, Y: Tensor, w: Any, rows: int) -> None:
        """``r = qr([r; block]).R`` per block."""
        n, d = X.shape
        c, m = int(self.intercept), self.r.shape[0]
        rows = min(rows, n)
        self._set_shift(X, Y, w, rows)
        # Column-major work buffer, the layout LAPACK's geqrf wants (saves a transpose copy),
        # factored in place (linalg.qr copies it first: at 4,000 columns 260 MB more)
        work = torch.empty(m * (m + rows), dtype=self.r.dtype, device=self.r.device)
        tau = torch.empty(m, dtype=self.r.dtype, device=self.r.device)
        for lo in range(0, n, rows):
            hi = min(lo + rows, n)
            _, sb = self._weights(w, lo, hi)
            buf = _column_major(work, m + hi - lo, m)
            buf[:m] = self.r
            block = buf[m:]
            block[:, c : c + d].copy_(X[lo:hi])
            block[:, c + d :].copy_(Y[lo:hi])
            data = block[:, c:]
            if self.intercept:
                data.sub_(self.shift)
                block[:, 0] = 1.0 if sb is None else sb
            if sb is not None:
                data.mul_(sb[:, None])
            torch.geqrf(buf, out=(buf, tau))  # the R of linalg.qr, bitwise
            self.r = None  # in buf already: freed before the new factor is made
            self.r = buf[:m].triu()

    def _absorb_rhs(self, X: Tensor, Y: Tensor, w: Any, rows: int) -> None:
        n, d = X.shape
        c, k = int(self.intercept), Y.shape[1]
        px = c + d
        # the targets' block is a copy of Y's rows: keep it to about 4 MB (with 1000 targets
        # the factor r alone is 10 MB; issue 11 asks for at most 0.25 size(X) + the results)
        rows = max(min(rows, n, _RHS_VALUES // max(px + k, 1)), 1)
        self._set_shift(X, Y, w, rows)
        rx, z, rss = self._parts(d)
        # Column-major work buffers, the layout LAPACK wants (saves transpose copies), and
        # factored in place (geqrf's and ormqr's out=): no copy of the block per step.
        wx = torch.empty(px * (px + rows), dtype=self.r.dtype, device=self.r.device)
        wy = torch.empty(k * (px + rows), dtype=self.r.dtype, device=self.r.device)
        tau = torch.empty(px, dtype=self.r.dtype, device=self.r.device)
        for lo in range(0, n, rows):
            hi = min(lo + rows, n)
            _, sb = self._weights(w, lo, hi)
            bx, by = _column_major(wx, px + hi - lo, px), _column_major(wy, px + hi - lo, k)
            bx[:px], by[:px] = rx, z
            xb, yb = bx[px:], by[px:]
            xb[:, c:].copy_(X[lo:hi])
            yb.copy_(Y[lo:hi])
            if self.intercept:
                xb[:, c:].sub_(self.shift[:d])
                yb.sub_(self.shift[d:])
                xb[:, 0] = 1.0 if sb is None else sb
            if sb is not None:
                xb[:, c:].mul_(sb[:, None])
                yb.mul_(sb[:, None])
            torch.geqrf(bx, out=(bx, tau))
            torch.ormqr(bx, tau, by, left=True, transpose=True, out=by)
            rx, z = bx[:px].triu(), by[:px]  # z: a view, written back in place next block
            if n - hi < rows:  # the last, shorter block lays the buffer out anew
                z = z.clone()
            rss = rss + by[px:].square_().sum(0)
        self._assemble(rx, z, rss)

    def merge(self, others: Sequence[QRSummary]) -> None:
        """Stack all R factors (others moved to this shift first) and factor once."""
        d = self.d
        if self.intercept and not self.has_shift:  # no row of positive weight yet: its R is
            # zero, so it takes the first other's shift as it is (NOTE [shifts from rows that
            # count]); about zero, offsets would cost the merged factor their digits
            first = next((o for o in others if o.has_shift), None)
            if first is not None:
                self.shift, self.has_shift = first.shift.clone(), True
        rx, z, rss = self._parts(d)
        rxs, zs = [rx], [z]
        for other in others:
            orx, oz, orss = other._parts(d)
            orx, oz = orx.clone(), oz.clone()
            if self.intercept:
                # Only the first row depends on the shift: R[0, j] -= delta_j * R[0, 0].
                delta = self.shift - other.shift
                orx[0, 1:] -= delta[:d] * orx[0, 0]
                oz[0] -= delta[d:] * orx[0, 0]
            rxs.append(orx)
            zs.append(oz)
            rss = rss + orss
            self._add_totals(other)
        px = rx.shape[0]
        a, tau = torch.geqrf(torch.cat(rxs))
        q = torch.ormqr(a, tau, torch.cat(zs), left=True, transpose=True)
        self._assemble(a[:px].triu(), q[:px], rss + q[px:].square().sum(0))

    def centred(self) -> CentredSummary:
        if not self.intercept:
            return CentredSummary(self.sum_w, self.shift.new_zeros(self.p), self.r)
        r00 = self.r[0, 0]
        means = self.shift + self.r[0, 1:] / torch.where(r00 != 0, r00, 1.0)
        return CentredSummary(self.sum_w, means, self.r[1:, 1:])

    def full_r(self) -> Tensor:
        r = self.r.clone()
        if self.intercept:
            r[0, 1:] += self.shift * r[0, 0]
        return r

    def full_r_columns(self, cols: slice) -> Tensor:
        # with 1000 targets r is 10 MB: a copy of a few columns, not of all of it
        r = self.r[:, cols].clone()
        if self.intercept:
            row = self.r[0].clone()
            row[1:] += self.shift * row[0]  # full_r's first row, the same operations
            r[0] = row[cols]
        return r

    def working(self) -> tuple[Tensor, Tensor | None]:
        return self.r, self.shift if self.intercept else None


class GramSummary(Summary):
    """What both Gram summaries share: columns kept multiplied by powers of two (``scale``).

    Squares of data near 1e160 overflow and near 1e-200 underflow, so every block is scaled
    by per-column powers of two (exact) chosen from the largest magnitude seen so far, and
    the totals are rescaled (exactly again) when a larger one arrives. The solver sees the
    factor in the data's units. ``scale`` 0 marks a column that has held only zeros so far.
    Per block this costs O(rows * p) for the magnitudes and O(p^2) for the rescaling, and no
    host sync.
    """

    def __init__(self, p: int, intercept: bool, dtype: torch.dtype, device: torch.device):
        super().__init__(p, intercept, dtype, device)
        self.scale = torch.zeros(p, dtype=dtype, device=device)

    def _effective(self, scale: Tensor | None = None) -> Tensor:
        scale = self.scale if scale is None else scale
        return torch.where(scale > 0, scale, torch.ones_like(scale))

    def _rescale(self, ratio: Tensor) -> None:
        """Multiply the stored totals' columns by ``ratio`` (powers of two)."""
        raise NotImplementedError

    def _adopt_scale(self, need: Tensor) -> None:
        """Take the smaller (larger-magnitude) of the current scale and ``need`` per column."""
        new = torch.where(self.scale > 0, torch.minimum(self.scale, need), need)
        new = torch.where(need > 0, new, self.scale)
        self._rescale(self._effective(new) / self._effective())
        self.scale = new

    def _scaled_block(self, z: Tensor) -> Tensor:
        """Adopt a scale covering the raw block ``z`` and scale it in place."""
        amax = z.abs().amax(dim=0)
        self._adopt_scale(torch.where(amax > 0, pow2_scales(z), torch.zeros_like(amax)))
        return z.mul_(self._effective())

    def _align(self, others: Sequence[GramSummary]) -> None:
        """Bring self and ``others`` (copies, changed in place) to one common scale."""
        for other in others:
            self._adopt_scale(other.scale)
        for other in others:
            other._rescale(self._effective() / other._effective())
            other.scale = self.scale.clone()

    def _factor(self, m: Tensor, out: Tensor | None = None) -> Tensor:
        """The upper factor of the stored (scaled) matrix ``m``, in the data's units
        (written into ``out``, a zeroed ``p x p`` view, when given).

        Past ``_JOINT_TARGETS`` targets the targets' block of the factor is kept diagonal,
        as the QR state keeps it (NOTE [one big right-hand side]): a blocked Cholesky
        ``R11 = chol(A)``, ``R12 = R11^-T B``, and for ``chol(C - R12' R12)`` only its
        column norms, which are all the solve reads (each target's residual sum of
        squares). A thousand targets then cost a d x d Cholesky, not a (d + k)^2 one and its
        copies. A semidefinite ``A`` (aliased features) takes the whole-matrix factor.
        """
        d = getattr(self, "d", None)
        eff = self._effective()
        whole = d is None or self.p - d <= _JOINT_TARGETS or d == 0
        if not whole:
            A = m[:d, :d]
            sa = A.diagonal().clamp_min(0).sqrt()
            sa = torch.where(sa > 0, sa, torch.ones_like(sa))
            r11, info = torch.linalg.cholesky_ex(A / sa[:, None] / sa[None, :], upper=True)
            whole = int(info) != 0 or not bool(torch.isfinite(r11).all())
        if whole:
            r = psd_upper_factor(m).div_(eff[None, :])
            return r if out is None else out.copy_(r)
        r = m.new_zeros(self.p, self.p) if out is None else out
        r[:d, :d] = r11 * sa[None, :]
        r[:d, d:] = torch.linalg.solve_triangular(r[:d, :d].T, m[:d, d:], upper=False)
        rest = m.diagonal()[d:] - squared_column_sums(r[:d, d:])
        r[d:, d:].diagonal().copy_(rest.clamp_min(0).sqrt())
        return r.div_(eff[None, :])


class CentredGramSummary(GramSummary):
    """Weighted means and centred co-moments of ``[X | Y]`` (Gram route with an intercept).

    As the QR state, it subtracts a fixed shift (the first block's means, in scaled units)
    from every row before anything else, exactly for data near its offset: ``mean`` is
    taken about ``shift``, so block means and the differences of means that the pairwise
    merge squares carry the rounding of the centred data, not of the offsets.
    """

    names = ("mean", "comoment", "scale", "shift")
    since_version_2 = ("scale", "shift")

    def __init__(self, p: int, intercept: bool, dtype: torch.dtype, device: torch.device):
        super().__init__(p, intercept, dtype, device)
        self.mean = torch.zeros(p, dtype=dtype, device=device)
        self.comoment = torch.zeros(p, p, dtype=dtype, device=device)
        self.shift = torch.zeros(p, dtype=dtype, device=device)
        self.has_shift = False

    def _rescale(self, ratio: Tensor) -> None:
        self.mean.mul_(ratio)
        self.shift.mul_(ratio)
        _scale_both_sides(self.comoment, ratio)

    def absorb(self, X: Tensor, Y: Tensor, w: Any, rows: int) -> None:
        """Absorb rows (NOTE [gram fast path]), or block by block where scales change."""
        rows = _gram_rows(rows, self.p)
        if not self.has_shift:  # the first block fixes the shift and the scales
            first = min(rows, X.shape[0])
            head = X[:first], Y[:first], None if w is None else w[:first]
            X, Y, w = X[first:], Y[first:], None if w is None else w[first:]
            if X.shape[0] and (self.p + 1) ** 2 > _PARALLEL_GRAM_VALUES:
                # a large Gram: the rest straight into the co-moment, the head merged after
                # it (NOTE [an empty state's co-moment])
                self._fix_shift(*head)
                if self.has_shift and self._fast(X, Y, w, rows, into_state=True):
                    self._absorb_blocks(*head, rows)
                    return
                self._reset()
            self._absorb_blocks(*head, rows)
        if X.shape[0] and not self._fast(X, Y, w, rows):
            self._absorb_blocks(X, Y, w, rows)

    # NOTE [an empty state's co-moment]
    # The fast path sums a call's blocks into a Gram of its own and folds it into the state
    # only once it has proved finite: should a block overflow, the state is untouched and
    # the careful path redoes the call. With a thousand targets that Gram is as large as the
    # state's ((d + k)^2 values, 9.7 MB at 100 x 1000) and was a third of the fit's memory.
    # An empty state has nothing to protect: the first block fixes the shift and scales
    # without being absorbed, the rows after it go through the fast path straight into the
    # state's co-moment, and the first block is then merged on the careful path (Chan's
    # merge does not depend on the order; the careful path keeps, for instance, the exact
    # zero co-moment of a single row of positive weight). A failure resets the state and
    # takes the careful path for the whole call. Whole in-memory fits are such calls;
    # streamed blocks after the first keep their own Gram. Only Grams past 2^18 values
    # (511 columns and targets) take this road: below that the second Gram is at most 2 MB,
    # and folding the moments out of the panel products costs 3-5% of the fit at 100 columns.

    def _fix_shift(self, X: Tensor, Y: Tensor, w: Any) -> None:
        """Scales and shift from the rows of a first block, which is not absorbed, of
        positive weight (NOTE [shifts from rows that count]; none: neither is fixed)."""
        head = positive_rows(X, Y, w, X.shape[0])
        if head is None:
            return
        work = torch.empty(head[0].shape[0], self.p, dtype=self.mean.dtype, device=self.mean.device)
        z = self._scaled_block(_fill(work, *head, X.shape[1]))
        self.shift = z.mean(dim=0)
        self.has_shift = True

    def _reset(self) -> None:
        """Back to the empty state (after a fast path that could not take a first call)."""
        self.mean.zero_()
        self.comoment.zero_()
        self.shift = torch.zeros_like(self.shift)
        self.scale = torch.zeros_like(self.scale)
        self.has_shift = False

    # NOTE [gram fast path]
    # The careful path below centres every block on its own mean (Chan's merge) and
    # re-checks the power-of-two scales: half a dozen passes over each block, 3-4x the time
    # of the bare X'X. Once the first block has fixed the shift and the scales, the fast
    # path forms ``[z | sqrt(w)]`` with ``z = sqrt(w) (x * scale - shift)`` in one fused pass
    # and accumulates its Gram with one GEMM per block: the shifted second moments, the
    # first moments and the weight total at once. One Chan update per call then centres
    # them. Centring once about the fixed shift costs ``eps (|mean - shift| / sd)^2``, and
    # the shift is the first block's mean, so data far from its offset are what it is for.
    # A block that would overflow (or a column still without a scale) sends the whole call
    # back to the careful path, which redoes it from the rows: the result never depends on
    # which path ran, beyond rounding. torch has no syrk, so the GEMM runs on column panels
    # and forms only the upper block triangle (NOTE [upper block triangle]).

    def _fast(self, X: Tensor, Y: Tensor, w: Any, rows: int, into_state: bool = False) -> bool:
        if not bool((self.scale > 0).all()):
            return False
        n = X.shape[0]
        p = self.p
        rows = min(rows, n)
        eff, neg = self._effective(), -self.shift
        if into_state:  # NOTE [an empty state's co-moment]
            cuts = _column_cuts(p)
            into = (self.comoment, X, Y, w, rows, eff, neg, cuts, self._block_weights)
            acc, moments, (sw, nz, slw) = _shifted_gram_into(*into)
            part_w = sw.to(moments)
        else:
            cuts = _column_cuts(p + 1)

            def part(lo: int, hi: int) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
                return _shifted_gram(X, Y, w, lo, hi, rows, eff, neg, cuts, self._block_weights)

            ranges = _row_ranges(n, rows, _parallel_parts(X, p, n, rows))
            # NOTE [parallel row ranges]
            parts = [part(*ranges[0])] if len(ranges) == 1 else _in_threads(part, ranges)
            acc = parts[0][0]
            for other, _ in parts[1:]:
                acc.add_(other)
            sw, nz, slw = parts[0][1]
            for _, block in parts[1:]:
                sw, nz, slw = sw + block[0], nz + block[1], slw + block[2]
            moments, part_w = acc[p, :p], acc[p, p]
        acc = _symmetrized(acc, cuts)
        if not (bool(torch.isfinite(acc).all()) and bool(torch.isfinite(moments).all())):
            return False  # a block out of the scales' range
        self.sum_w += sw  # the totals, once the path has succeeded
        self.n_nonzero += nz
        self.sum_log_w += slw
        part_mean = moments / torch.where(part_w > 0, part_w, 1.0)
        prior = self.sum_w - part_w
        if not into_state:
            self.comoment.add_(acc[:p, :p])
        self.comoment.addr_(moments, part_mean, alpha=-1)
        self._chan_update(prior, part_w, part_mean)
        return True

    def _absorb_blocks(self, X: Tensor, Y: Tensor, w: Any, rows: int) -> None:
        """Centre each block on its own weighted mean, ``addmm_`` it, fold in with Chan."""
        n, d = X.shape
        rows = min(rows, n)
        work = torch.empty(rows, self.p, dtype=self.mean.dtype, device=self.mean.device)
        for lo in range(0, n, rows):
            hi = min(lo + rows, n)
            prior = self.sum_w.clone()
            wb, sb = self._weights(w, lo, hi)
            z = self._scaled_block(_drop_dead(_fill(work[: hi - lo], X[lo:hi], Y[lo:hi], d), wb))
            if not self.has_shift:  # NOTE [shifts from rows that count]
                if wb is None:
                    self.shift, self.has_shift = z.mean(dim=0), True
                else:
                    live = (wb > 0).to(z.dtype)
                    count = live.sum()
                    if bool(count > 0):
                        self.shift, self.has_shift = (live @ z) / count, True
            z.sub_(self.shift)
            if wb is None:
                block_w = torch.full((), float(hi - lo), dtype=z.dtype, device=z.device)
                block_mean = z.mean(dim=0)
            else:
                block_w = wb.sum()
                block_mean = (wb @ z) / torch.where(block_w > 0, block_w, 1.0)
            z.sub_(block_mean)
            if sb is not None:
                z.mul_(sb[:, None])
            self.comoment.addmm_(z.T, z)
            self._chan_update(prior, block_w, block_mean)

    def merge(self, others: Sequence[CentredGramSummary]) -> None:
        self._align(others)
        for other in others:
            prior = self.sum_w.clone()
            self.comoment += other.comoment
            self._add_totals(other)
            # other's mean about this state's shift (the shifts' difference is exact when
            # they are close, as shifts of one data set are)
            self._chan_update(prior, other.sum_w, other.mean + (other.shift - self.shift))

    def _chan_update(self, prior_w: Tensor, part_w: Tensor, part_mean: Tensor) -> None:
        """Fold a part's weight and mean into ``mean``; its own co-moment is already added.

        Chan, Golub & LeVeque: ``M = Ma + Mb + d d' Wa Wb / (Wa + Wb)``, ``d = mean_b - mean_a``.
        """
        total = prior_w + part_w
        frac = part_w / torch.where(total > 0, total, 1.0)
        delta = part_mean - self.mean
        self.mean.add_(delta * frac)
        self.comoment.addr_(delta * (prior_w * frac), delta)

    def centred(self) -> CentredSummary:
        means = (self.shift + self.mean) / self._effective()
        return CentredSummary(self.sum_w, means, self._factor(self.comoment))

    def full_r(self) -> Tensor:
        r, means = self.working()
        r[0, 1:] = r[0, 0] * means
        return r

    def working(self) -> tuple[Tensor, Tensor | None]:
        r = torch.zeros(self.p + 1, self.p + 1, dtype=self.mean.dtype, device=self.mean.device)
        r[0, 0] = self.sum_w.sqrt()
        self._factor(self.comoment, out=r[1:, 1:])
        return r, (self.shift + self.mean) / self._effective()


class RawGramSummary(GramSummary):
    """Raw weighted Gram of ``[X | Y]`` (Gram route without an intercept: nothing to centre)."""

    names = ("gram", "scale")
    since_version_2 = ("scale",)

    def __init__(self, p: int, intercept: bool, dtype: torch.dtype, device: torch.device):
        super().__init__(p, intercept, dtype, device)
        self.gram = torch.zeros(p, p, dtype=dtype, device=device)

    def _rescale(self, ratio: Tensor) -> None:
        _scale_both_sides(self.gram, ratio)

    def absorb(self, X: Tensor, Y: Tensor, w: Any, rows: int) -> None:
        n, d = X.shape
        rows = min(_gram_rows(rows, self.p), n)
        work = torch.empty(rows, self.p, dtype=self.gram.dtype, device=self.gram.device)
        for lo in range(0, n, rows):
            hi = min(lo + rows, n)
            wb, sb = self._weights(w, lo, hi)
            z = self._scaled_block(_drop_dead(_fill(work[: hi - lo], X[lo:hi], Y[lo:hi], d), wb))
            if sb is not None:
                z.mul_(sb[:, None])
            self.gram.addmm_(z.T, z)

    def merge(self, others: Sequence[RawGramSummary]) -> None:
        self._align(others)
        for other in others:
            self.gram += other.gram
            self._add_totals(other)

    def centred(self) -> CentredSummary:
        return CentredSummary(self.sum_w, self.gram.new_zeros(self.p), self.full_r())

    def full_r(self) -> Tensor:
        return self._factor(self.gram)

    def working(self) -> tuple[Tensor, Tensor | None]:
        return self.full_r(), None


def new_summary(
    method: str, p: int, intercept: bool, dtype: torch.dtype, device: torch.device, d: int
) -> Summary:
    """The empty summary of ``method`` ("qr" or "gram") for ``p = d + k`` columns."""
    if method == "qr":
        summary = QRSummary(p, intercept, dtype, device)
        summary.d = d  # the targets are a right-hand side (NOTE [one big right-hand side])
        return summary
    kind = CentredGramSummary if intercept else RawGramSummary
    summary = kind(p, intercept, dtype, device)
    summary.d = d  # past _JOINT_TARGETS targets their factor block is diagonal
    return summary


def _scale_both_sides(m: Tensor, ratio: Tensor) -> None:
    """``m <- diag(ratio) m diag(ratio)`` in place, one side at a time: ``outer(ratio, ratio)``
    overflows for a column that held only zeros so far (ratio up to 2**1074, times 0)."""
    m.mul_(ratio[:, None]).mul_(ratio[None, :])


def _column_major(flat: Tensor, rows: int, cols: int) -> Tensor:
    """A ``rows x cols`` column-major view of the start of ``flat``: its leading dimension
    is ``rows`` exactly, or LAPACK's in-place calls (geqrf, ormqr ``out=``) copy the block
    (the last, shorter one: 1.1 GB at 10,000 columns)."""
    return flat[: rows * cols].view(cols, rows).T


# NOTE [shifts from rows that count]
# A state's shift (its first rows' mean: NOTE [centring]) and a Gram state's power-of-two
# column scales were taken from every row, those of weight zero too. A row of weight zero
# contributes nothing to the fit, so it may hold anything: Longley with a zero-weight first
# row holding 1e9 gave a streamed Gram fit 97% off and a QR fit with y = 1e50 there an
# intercept of 2e34, silently (the shift sat at the junk, and every real row was rounded to
# eps times it); in memory the standard errors were 1e-4 off. Shifts are now the mean of the
# first rows of positive weight (none yet: no shift, and the state stays zero, so a later one
# needs no correction), and a Gram block's rows of weight zero are multiplied by zero before
# its scales are read (infinity and NaN stay not finite, and are refused as ever).


def positive_rows(X: Tensor, Y: Tensor, w: Any, rows: int) -> tuple[Tensor, Tensor] | None:
    """The first ``rows`` rows of positive weight (the first ``rows`` when unweighted), or
    None where no row has any (NOTE [shifts from rows that count])."""
    if w is None:
        return X[:rows], Y[:rows]
    live = torch.nonzero(w > 0).reshape(-1)[:rows]
    if not live.numel():
        return None
    live = live.to(X.device)
    return X.index_select(0, live), Y.index_select(0, live)


def _drop_dead(z: Tensor, wb: Tensor | None) -> Tensor:
    """``z`` with its rows of weight zero multiplied by zero, in place (their values must
    not set a scale: NOTE [shifts from rows that count])."""
    if wb is not None:
        z.mul_((wb > 0).to(z.dtype)[:, None])
    return z


def _fill(z: Tensor, xb: Tensor, yb: Tensor, d: int) -> Tensor:
    # One joint product of [X | Y] later: X.T @ Y alone is slow in torch (PERFORMANCE.md, trap 3).
    z[:, :d].copy_(xb)
    z[:, d:].copy_(yb)
    return z


# NOTE [upper block triangle]
# A Gram is symmetric, but ``z.T @ z`` computes both halves. Cutting the columns into ``m``
# panels and forming only the panels on and above the diagonal does ``(m + 1) / 2m`` of the
# work: with m = 3 at 100 columns the fast path went from 1.30x to 1.17x a bare ``X.T @ X``
# (one thread). Panels narrower than about 32 columns make the GEMMs inefficient, so small
# Grams stay one product; more than 8 panels gain little against the calls' overhead.
# Every entry is the same sum of the same products as the full GEMM's, so the result is
# the same to rounding (the summation order inside BLAS may differ).
_PANEL = 32
_MAX_PANELS = 8


def _column_cuts(q: int) -> list[int]:
    """Panel boundaries for a ``q``-column Gram (NOTE [upper block triangle])."""
    m = max(1, min(_MAX_PANELS, q // _PANEL))
    return [round(i * q / m) for i in range(m + 1)]


def _panels(z: Tensor, cuts: list[int]) -> list[tuple[Tensor, Tensor]]:
    """The operands of each panel's product in ``z.T @ z``'s upper block triangle."""
    return [(z[:, a:b].T, z[:, a:]) for a, b in itertools.pairwise(cuts)]


def _upper_rows(acc: Tensor, cuts: list[int]) -> list[Tensor]:
    """Where each panel's product lands in ``acc``."""
    return [acc[a:b, a:] for a, b in itertools.pairwise(cuts)]


def _add_upper_gram(rows: list[Tensor], panels: list[tuple[Tensor, Tensor]]) -> None:
    """``acc += z.T @ z`` on the panels on and above the diagonal only, given
    :func:`_upper_rows` of ``acc`` and :func:`_panels` of ``z``."""
    for into, (left, right) in zip(rows, panels, strict=True):
        into.addmm_(left, right)


def _symmetrized(acc: Tensor, cuts: list[int]) -> Tensor:
    """The full Gram from its upper block triangle, in place (panel by panel: no copy of
    the whole matrix, which is most of the memory with a thousand targets)."""
    for a, b in itertools.pairwise(cuts[:-1]):
        acc[b:, a:b].copy_(acc[a:b, b:].T)
    return acc


# A block's work buffers (the block, its magnitudes in the careful path) are capped at
# this many values: with a thousand targets 4096 rows of [X | Y] were 36 MB, three times
# over in the first block, where the issue allows a quarter of X.
_BLOCK_VALUES = 1 << 19


def _gram_rows(rows: int, p: int) -> int:
    return max(64, min(rows, _BLOCK_VALUES // max(p + 1, 1)))


# NOTE [views made once]
# A block's own work is two fused shift passes and a few panel GEMMs; at 1M x 100 the
# Python around them (slicing the block, the panels and the shift for every block, a
# weight total per block, refilling the column of ones) cost 30-45 ms of a 0.38 s fit,
# more on two Python threads, which take turns on the GIL for it. So the views of a
# full-size block are made once, the column of ones is written once, and an unweighted
# range's totals are counted once; only the last, shorter block gets views of its own.


class _Block:
    """The views into a work buffer of ``rows`` rows that every block of that size uses."""

    def __init__(self, work: Tensor, rows: int, d: int, cuts: list[int]) -> None:
        p = work.shape[1] - 1
        self.z = work[:rows]
        self.zx, self.zy, self.zp = self.z[:, :d], self.z[:, d:p], self.z[:, :p]
        self.panels = _panels(self.z, cuts)


def _shifted_blocks(X, Y, w, lo, hi, rows, eff, neg, cuts, block_weights, work, totals: list):
    """Each block of rows ``lo:hi`` as ``[z | sqrt(w)]`` with ``z = sqrt(w) (x * scale -
    shift)`` (in ``work``, NOTE [gram fast path]), yielded as its :class:`_Block` of views;
    ``totals`` gets the weight totals of the rows (NOTE [views made once])."""
    d, p = X.shape[1], eff.shape[0]
    neg_x, eff_x, neg_y, eff_y = neg[:d], eff[:d], neg[d:], eff[d:]
    same = X.device == work.device and Y.device == work.device
    full = _Block(work, rows, d, cuts)
    if w is None:
        work[:, p] = 1.0
        totals[:] = block_weights(None, lo, hi)[0]
    for start in range(lo, hi, rows):
        stop = min(start + rows, hi)
        blk = full if stop - start == rows else _Block(work, stop - start, d, cuts)
        xb, yb = X[start:stop], Y[start:stop]
        if not same:
            xb, yb = xb.to(work.device), yb.to(work.device)
        torch.addcmul(neg_x, xb, eff_x, out=blk.zx)
        torch.addcmul(neg_y, yb, eff_y, out=blk.zy)
        if w is not None:
            block, _, sb = block_weights(w, start, stop)
            totals[:] = [a + b for a, b in zip(totals, block, strict=True)] if totals else block
            blk.zp.mul_(sb[:, None])
            blk.z[:, p] = sb
        yield blk


def _shifted_gram(X, Y, w, lo, hi, rows, eff, neg, cuts, block_weights):
    """The upper block triangle of ``[z | sqrt(w)]``'s Gram over rows ``lo:hi`` (NOTE [gram
    fast path]), a block of ``rows`` at a time, and those rows' weight totals."""
    p = eff.shape[0]
    rows = min(rows, hi - lo)
    work = torch.empty(rows, p + 1, dtype=eff.dtype, device=eff.device)
    acc = torch.zeros(p + 1, p + 1, dtype=eff.dtype, device=eff.device)
    targets = _upper_rows(acc, cuts)  # NOTE [upper block triangle]
    totals: list = []
    for blk in _shifted_blocks(X, Y, w, lo, hi, rows, eff, neg, cuts, block_weights, work, totals):
        _add_upper_gram(targets, blk.panels)
    return acc, tuple(totals)


def _shifted_gram_into(acc, X, Y, w, rows, eff, neg, cuts, block_weights):
    """:func:`_shifted_gram` of every row of the call straight into ``acc`` (the state's
    ``p x p`` co-moment, NOTE [an empty state's co-moment]): the first moments
    ``sum sqrt(w) z`` come back on their own. Each block still carries a last column of
    ``sqrt(w)``, and each panel's product lands in a small buffer whose last column is its
    share of the moments (a GEMV per block re-read the block: +15% at 1M x 100)."""
    n, p = X.shape[0], eff.shape[0]
    rows = min(rows, n)
    work = torch.empty(rows, p + 1, dtype=eff.dtype, device=eff.device)
    moments = torch.zeros(p, dtype=eff.dtype, device=eff.device)
    panels = list(itertools.pairwise(cuts))
    flat = work.new_empty(max((b - a) * (p + 1 - a) for a, b in panels))
    outs = [flat[: (b - a) * (p + 1 - a)].view(b - a, p + 1 - a) for a, b in panels]
    # each panel's product, where it lands in acc and in the moments
    lands = [(out, acc[a:b, a:], out[:, :-1], moments[a:b], out[:, -1])
             for out, (a, b) in zip(outs, panels, strict=True)]  # fmt: skip
    totals: list = []
    for blk in _shifted_blocks(X, Y, w, 0, n, rows, eff, neg, cuts, block_weights, work, totals):
        for (out, into, part, mom, col), (left, right) in zip(lands, blk.panels, strict=True):
            torch.mm(left, right, out=out)  # NOTE [upper block triangle]
            into.add_(part)
            mom.add_(col)
    return acc, moments, tuple(totals)


# NOTE [parallel row ranges]
# A block's shift pass and its panel products are small kernels (a few hundred thousand
# numbers): spread over two intra-op threads they scale poorly (1M x 100 took 1.5x the bare
# X'X on two threads, 1.2x on one) and stall at every barrier beside a busy process (NOTE
# [threads on shared cores]). So with several threads and a Gram small enough to hold one
# per thread (at most 2^18 values), the rows are cut into one contiguous range per thread,
# each range's blocks run on a Python thread with one intra-op thread, and the ranges'
# Grams are added. The totals are the same sums in another order: the result equals the
# one-thread fit to rounding.
_PARALLEL_GRAM_VALUES = 1 << 18


def _parallel_parts(X: Tensor, p: int, n: int, rows: int) -> int:
    threads = torch.get_num_threads()
    if threads < 2 or X.device.type != "cpu" or (p + 1) ** 2 > _PARALLEL_GRAM_VALUES:
        return 1
    return max(1, min(threads, n // (4 * rows)))


def _row_ranges(n: int, rows: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ranges of whole blocks covering ``0:n``."""
    blocks = -(-n // rows)
    cuts = [min(n, round(i * blocks / parts) * rows) for i in range(parts + 1)]
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def _in_threads(fn, ranges):
    """``fn(lo, hi)`` for each range on its own Python thread, one intra-op thread each."""
    from concurrent.futures import ThreadPoolExecutor

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(len(ranges)) as pool:
            return list(pool.map(lambda r: fn(*r), ranges))
    finally:
        torch.set_num_threads(before)
