"""The peers that benchmarks/run.py times, and the worker that times one of them.

One worker process times one peer: it builds the case's data from a fixed seed (so every
peer sees the same numbers), then runs the peer ``repeat`` times. Memory is the peak
resident set during a run minus the resident set just before it: the kernel's high-water
mark (``VmHWM``) is reset before each run by writing ``5`` to ``/proc/self/clear_refs``
(Linux >= 4.0), so it sees numpy, torch and LAPACK allocations alike (tracemalloc does not).

Not a test and not part of the library: run ``benchmarks/run.py``.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

# ----------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One data shape and the peers timed on it."""

    name: str
    title: str
    n: int
    d: int
    k: int
    baseline: str  # the peer every ratio of this case is taken against
    scaled: bool = True  # per-column scales and offsets (exact fits) or unit scale (SGD)
    epochs: int = 0  # walk-through only: epochs per timed run
    batch: int = 256  # mini-batch case: rows per batch for every loop
    dtype: str = "float64"  # the input's dtype (the data are drawn in float64, then cast)
    group: str = ""  # the regime (tall, wide, targets, float32) of a benchmarks/_regimes.py case


def cases(quick: bool, sgd_batch: int) -> dict[str, Case]:
    """The three cases at full size (the issue's targets) or, with ``quick``, tiny."""
    if quick:
        exact = Case("exact", "Exact fits", 20_000, 20, 3, "sk_linreg")
        sgd = Case("sgd", "One mini-batch epoch", 20_000, 10, 1, "sk_sgd", False, 0, sgd_batch)
        walk = Case("walk", "The walk-through (crops, 5 x 3)", 5, 3, 2, "wt_plain", epochs=100)
    else:
        exact = Case("exact", "Exact fits", 1_000_000, 100, 3, "sk_linreg")
        sgd = Case("sgd", "One mini-batch epoch", 1_000_000, 20, 1, "sk_sgd", False, 0, sgd_batch)
        walk = Case("walk", "The walk-through (crops, 5 x 3)", 5, 3, 2, "wt_plain", epochs=2000)
    return {c.name: c for c in (exact, sgd, walk)}


def scaled_rows(case: Case, scale: float) -> Case:
    """``case`` with ``scale`` times the rows (the walk-through's data is fixed)."""
    if case.name == "walk" or scale == 1.0:
        return case
    return replace(case, n=max(100, round(case.n * scale)))


NOISE_ROWS = 65_536  # Y's noise is drawn this many rows at a time (the same stream)


def make_data(case: Case) -> tuple[Any, Any]:
    """``X`` (n, d) and ``Y`` (n, k) numpy arrays of ``case.dtype``, the same for every peer.

    Y is built in place, its noise drawn in row chunks (the generator fills row-major, so
    the numbers are those of one ``(n, k)`` draw): with 1000 targets a temporary copy of Y
    would cost 800 MB per copy at 1e5 rows.
    """
    import numpy as np

    if case.name == "walk":
        from torchlinreg.datasets import load_crops

        crops = load_crops()
        return np.asarray(crops.data, dtype=np.float64), np.asarray(crops.target, np.float64)
    rng = np.random.default_rng(12345)
    X = rng.standard_normal((case.n, case.d))
    if case.scaled:
        # In place: a temporary copy of X would raise the high-water mark before the baseline.
        X *= rng.uniform(0.5, 20.0, case.d)
        X += rng.uniform(-10.0, 10.0, case.d)
    W = rng.standard_normal((case.d, case.k))
    Y = X @ W
    Y += rng.standard_normal(case.k)
    for start in range(0, case.n, NOISE_ROWS):
        rows = min(NOISE_ROWS, case.n - start)
        Y[start : start + rows] += rng.standard_normal((rows, case.k))
    if case.dtype != "float64":
        return X.astype(case.dtype), Y.astype(case.dtype)
    return X, Y


# ----------------------------------------------------------------------------- peers


@dataclass
class Peer:
    """A named way to fit; ``make(case, X, Y)`` returns a zero-argument callable that fits
    and returns ``(coef (k, d), intercept (k,))`` as nested lists or arrays."""

    name: str
    case: str
    label: str
    make: Callable[[Case, Any, Any], Callable[[], Any]]
    notes: str = ""
    tags: set[str] = field(default_factory=set)


def _np_out(coef, intercept):
    import numpy as np

    return np.asarray(coef, dtype=np.float64), np.asarray(intercept, dtype=np.float64)


def _torch(X, Y):
    import torch

    return torch.from_numpy(X), torch.from_numpy(Y)


# ---- exact fits


def _tlr_estimator(solver: str):
    def make(case, X, Y):
        from torchlinreg.estimator.linear import LinearRegression

        def fit():
            m = LinearRegression(solver=solver).fit(X, Y)
            return m.coef_, m.intercept_

        return fit

    return make


def _tlr_engine(method: str):
    def make(case, X, Y):
        from torchlinreg.exact.state import fit_exact

        Xt, Yt = _torch(X, Y)

        def fit():
            _, sol = fit_exact(Xt, Yt, method=method)
            return sol.coef.numpy(), sol.intercept.numpy()

        return fit

    return make


def _sk_linreg(case, X, Y):
    from sklearn.linear_model import LinearRegression

    def fit():
        m = LinearRegression().fit(X, Y)
        return m.coef_, m.intercept_

    return fit


def _sk_ridge(case, X, Y):
    from sklearn.linear_model import Ridge

    def fit():
        # A penalty ~1e-12 of X'X's diagonal: the same solution as OLS to float64 rounding.
        m = Ridge(alpha=1e-6, solver="cholesky").fit(X, Y)
        return m.coef_, m.intercept_

    return fit


def _sm_ols(case, X, Y):
    import statsmodels.api as sm

    def fit():
        res = sm.OLS(Y, sm.add_constant(X, has_constant="add")).fit()
        params = res.params.reshape(case.d + 1, -1)
        return params[1:].T, params[0]

    return fit


def _np_lstsq(case, X, Y):
    import numpy as np

    def fit():
        A = np.empty((X.shape[0], X.shape[1] + 1), dtype=X.dtype)
        A[:, 0] = 1.0
        A[:, 1:] = X
        sol = np.linalg.lstsq(A, Y, rcond=None)[0]
        return sol[1:].T, sol[0]

    return fit


def _torch_lstsq(driver: str | None):
    def make(case, X, Y):
        import torch

        Xt, Yt = _torch(X, Y)

        def fit():
            A = torch.cat([torch.ones(Xt.shape[0], 1, dtype=Xt.dtype), Xt], 1)
            sol = torch.linalg.lstsq(A, Yt, driver=driver).solution
            return sol[1:].T.numpy(), sol[0].numpy()

        return fit

    return make


def _torch_qr(case, X, Y):
    """R of ``[1 | X | Y]`` by Householder QR, then one triangular solve: a fit's floor
    when it is done by factoring the data (what torchlinreg's qr does per row block)."""
    import torch

    Xt, Yt = _torch(X, Y)
    p = Xt.shape[1] + 1

    def fit():
        A = torch.cat([torch.ones(Xt.shape[0], 1, dtype=Xt.dtype), Xt, Yt], 1)
        R = torch.linalg.qr(A, mode="r").R
        del A
        sol = torch.linalg.solve_triangular(R[:p, :p], R[:p, p:], upper=True)
        return sol[1:].T.numpy(), sol[0].numpy()

    return fit


def _floor_torch(case, X, Y):
    Xt, _ = _torch(X, Y)

    def fit():
        Xt.T @ Xt

    return fit


def _floor_numpy(case, X, Y):
    def fit():
        X.T @ X

    return fit


# ---- one mini-batch epoch


def _tlr_sgd_estimator(case, X, Y):
    from torchlinreg.estimator.linear import LinearRegression

    y = Y[:, 0]

    def fit():
        m = LinearRegression(
            solver="sgd", max_iter=1, tol=None, batch_size=case.batch, random_state=0
        ).fit(X, y)
        return m.coef_[None], [m.intercept_]

    return fit


def _tlr_sgd_engine(case, X, Y):
    from torchlinreg.iterative.fit import fit_iterative

    Xt, Yt = _torch(X, Y)

    def fit():
        res = fit_iterative(
            Xt,
            Yt,
            solver="sgd",
            standardize=False,
            max_iter=1,
            tol=None,
            batch_size=case.batch,
            random_state=0,
        )
        return res.coef.numpy(), res.intercept.numpy()

    return fit


def _sk_sgd(case, X, Y):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import SGDRegressor

    y = Y[:, 0]

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            m = SGDRegressor(max_iter=1, tol=None, random_state=0).fit(X, y)
        return m.coef_[None], m.intercept_

    return fit


def _loop_body():
    """The plain loop's step: forward, mean squared error, backward, update (sgd's rate)."""
    import torch

    def step(w, b, xb, yb, lr):
        diff = xb @ w.t() + b - yb
        loss = torch.sum(diff * diff) / diff.numel()
        loss.backward()
        with torch.no_grad():
            w -= w.grad * lr
            b -= b.grad * lr
        w.grad = None
        b.grad = None

    return step


def _plain_loop(case, X, Y):
    import torch

    Xt, Yt = _torch(X, Y)
    step = _loop_body()

    def fit():
        g = torch.Generator().manual_seed(0)
        w = torch.zeros(Yt.shape[1], Xt.shape[1], dtype=Xt.dtype, requires_grad=True)
        b = torch.zeros(Yt.shape[1], dtype=Xt.dtype, requires_grad=True)
        perm = torch.randperm(Xt.shape[0], generator=g)
        for idx in perm.split(case.batch):
            step(w, b, Xt[idx], Yt[idx], 0.04)
        return w.detach().numpy(), b.detach().numpy()

    return fit


def _dataloader_loop(case, X, Y):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    Xt, Yt = _torch(X, Y)
    step = _loop_body()

    def fit():
        g = torch.Generator().manual_seed(0)
        w = torch.zeros(Yt.shape[1], Xt.shape[1], dtype=Xt.dtype, requires_grad=True)
        b = torch.zeros(Yt.shape[1], dtype=Xt.dtype, requires_grad=True)
        loader = DataLoader(TensorDataset(Xt, Yt), batch_size=case.batch, shuffle=True, generator=g)
        for xb, yb in loader:
            step(w, b, xb, yb, 0.04)
        return w.detach().numpy(), b.detach().numpy()

    return fit


# ---- the walk-through


def _crops(X, Y):
    import torch

    return torch.from_numpy(X.astype("float32")), torch.from_numpy(Y.astype("float32"))


def _wt_plain(case, X, Y):
    """The article's loop, written out here (independent of tutorial.py)."""
    import torch

    inputs, targets = _crops(X, Y)

    def fit():
        torch.manual_seed(0)
        w = torch.randn(2, 3, requires_grad=True)
        b = torch.randn(2, requires_grad=True)
        for _ in range(case.epochs):
            preds = inputs @ w.t() + b
            diff = preds - targets
            loss = torch.sum(diff * diff) / diff.numel()
            loss.item()  # the article prints it; the library records it
            loss.backward()
            with torch.no_grad():
                w -= w.grad * 1e-5
                b -= b.grad * 1e-5
                w.grad.zero_()
                b.grad.zero_()
        return w.detach().numpy(), b.detach().numpy()

    return fit


def _wt_tutorial(case, X, Y):
    import torch

    from torchlinreg import tutorial

    inputs, targets = _crops(X, Y)

    def fit():
        torch.manual_seed(0)
        w = torch.randn(2, 3, requires_grad=True)
        b = torch.randn(2, requires_grad=True)
        tutorial.train(inputs, targets, w, b, case.epochs)
        return w.detach().numpy(), b.detach().numpy()

    return fit


def _wt_engine(case, X, Y):
    from torchlinreg.iterative.fit import fit_iterative

    inputs, targets = _crops(X, Y)

    def fit():
        res = fit_iterative(
            inputs,
            targets,
            solver="gd",
            standardize=False,
            lr=1e-5,
            init="randn",
            random_state=0,
            max_iter=case.epochs,
            tol=None,
        )
        return res.coef.numpy(), res.intercept.numpy()

    return fit


def _wt_estimator(case, X, Y):
    from torchlinreg.estimator.linear import LinearRegression

    inputs, targets = _crops(X, Y)

    def fit():
        m = LinearRegression(
            solver="gd",
            standardize=False,
            lr=1e-5,
            init="randn",
            random_state=0,
            max_iter=case.epochs,
            tol=None,
        ).fit(inputs, targets)
        return m.coef_.numpy(), m.intercept_.numpy()

    return fit


PEERS: dict[str, Peer] = {
    p.name: p
    for p in [
        Peer("tlr_qr", "exact", "torchlinreg LinearRegression() (qr)", _tlr_estimator("qr")),
        Peer(
            "tlr_gram",
            "exact",
            "torchlinreg LinearRegression(solver='gram')",
            _tlr_estimator("gram"),
        ),
        Peer("exact_qr", "exact", "torchlinreg fit_exact(method='qr')", _tlr_engine("qr")),
        Peer("exact_gram", "exact", "torchlinreg fit_exact(method='gram')", _tlr_engine("gram")),
        Peer("sk_linreg", "exact", "scikit-learn LinearRegression", _sk_linreg),
        Peer("sk_ridge", "exact", "scikit-learn Ridge(cholesky, alpha=1e-6)", _sk_ridge),
        Peer("sm_ols", "exact", "statsmodels OLS (pinv)", _sm_ols),
        Peer("np_lstsq", "exact", "numpy.linalg.lstsq [1, X] (gelsd)", _np_lstsq),
        Peer("torch_lstsq", "exact", "torch.linalg.lstsq [1, X] (gelsy)", _torch_lstsq(None)),
        Peer(
            "torch_lstsq_gelsd", "exact", "torch.linalg.lstsq [1, X] (gelsd)", _torch_lstsq("gelsd")
        ),
        Peer("floor_torch", "exact", "floor: torch X.T @ X", _floor_torch, tags={"floor"}),
        Peer("floor_numpy", "exact", "floor: numpy X.T @ X", _floor_numpy, tags={"floor"}),
        Peer("torch_qr", "regimes", 'torch.linalg.qr([1, X, Y], mode="r") + solve', _torch_qr),
        Peer("tlr_sgd", "sgd", "torchlinreg LinearRegression(solver='sgd')", _tlr_sgd_estimator),
        Peer(
            "engine_sgd", "sgd", "torchlinreg fit_iterative(sgd, no standardize)", _tlr_sgd_engine
        ),
        Peer("sk_sgd", "sgd", "scikit-learn SGDRegressor (batch 1)", _sk_sgd),
        Peer("plain_loop", "sgd", "plain torch loop (randperm slicing)", _plain_loop),
        Peer("dataloader", "sgd", "torch DataLoader(TensorDataset) loop", _dataloader_loop),
        Peer("wt_plain", "walk", "plain loop (the article's code)", _wt_plain),
        Peer("wt_tutorial", "walk", "torchlinreg tutorial.train", _wt_tutorial),
        Peer("wt_engine", "walk", "torchlinreg fit_iterative(gd) (walk-through path)", _wt_engine),
        Peer("wt_estimator", "walk", "torchlinreg LinearRegression(solver='gd')", _wt_estimator),
    ]
}


# ----------------------------------------------------------------------------- measuring


def _proc_status() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in bytes."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _torch_blas() -> dict[str, Any]:
    """torch links MKL statically, so threadpoolctl does not list it: ask torch."""
    import torch

    lines = torch.__config__.parallel_info().splitlines()
    mkl = next((ln.strip() for ln in lines if "Math Kernel Library" in ln), None)
    return {
        "internal_api": "torch " + ("mkl" if torch.backends.mkl.is_available() else "blas"),
        "version": mkl.split("Version")[1].split()[0].split("-")[0]
        if mkl and "Version" in mkl
        else None,
        "num_threads": torch.get_num_threads(),
        "prefix": "torch",
    }


def _blas_info() -> list[dict[str, Any]]:
    out = [_torch_blas()]
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [*out, {"error": "threadpoolctl not installed"}]
    keep = ("internal_api", "version", "num_threads", "architecture", "threading_layer")
    for lib in threadpool_info():
        entry = {k: lib.get(k) for k in keep if lib.get(k) is not None}
        entry["prefix"] = lib.get("prefix")
        out.append(entry)
    return out


def reference(case: Case) -> dict[str, Any]:
    """Float64 least-squares coefficients by LAPACK Householder QR (numpy, not torchlinreg)
    of the centred ``[X | Y]``, then one step of refinement by the seminormal equations."""
    import numpy as np
    import scipy.linalg

    # float32 input: the reference solves the stored (rounded) numbers exactly, in float64.
    X, Y = (np.asarray(a, dtype=np.float64) for a in make_data(case))
    mx, my = X.mean(0), Y.mean(0)
    X -= mx  # in place: at 2e5 x 2000, X is 3.2 GB
    Y -= my
    A = np.hstack([X, Y])
    del X, Y
    R = np.linalg.qr(A, mode="r")
    d = case.d
    coef = scipy.linalg.solve_triangular(R[:d, :d], R[:d, d:])
    resid = A[:, d:] - A[:, :d] @ coef
    g = A[:, :d].T @ resid
    coef += scipy.linalg.cho_solve((R[:d, :d], False), g)
    intercept = my - mx @ coef
    return {"coef": coef.T.tolist(), "intercept": intercept.tolist()}


def _warm_up(peer: Peer, case: Case, X, Y) -> None:
    """One untimed run on the first rows: lazy imports, thread pools and LAPACK work buffers
    are set up here, so the measured peak is the fit's own (not a one-off start-up cost)."""
    m = X.shape[0] if case.name == "walk" else min(X.shape[0], max(2000, 4 * case.d))
    peer.make(case, X[:m].copy(), Y[:m].copy())()


def time_peer(name: str, case: Case, repeat: int, budget_s: float, data=None) -> dict:
    """Time ``repeat`` runs of one peer (fewer when they exceed ``budget_s``)."""
    import numpy as np

    peer = PEERS[name]
    X, Y = data if data is not None else make_data(case)
    warnings.simplefilter("ignore")
    _warm_up(peer, case, X, Y)
    fit = peer.make(case, X, Y)
    # The imported modules' objects move to a generation the collector no longer walks: the
    # collection before each run then costs microseconds, not 0.2 s (a quick run's time).
    gc.collect()
    gc.freeze()
    walls, cpus, extras = [], [], []
    out = None
    exact_peak = True
    for i in range(max(repeat, 1)):
        gc.collect()
        exact_peak = _reset_peak() and exact_peak
        before = _proc_status()
        t0, c0 = time.perf_counter(), time.process_time()
        out = fit()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        after = _proc_status()
        # Without clear_refs only the first run's peak is meaningful (and may include data
        # generation's own peak: an upper bound).
        if exact_peak or i == 0:
            extras.append(max(0, after["VmHWM"] - before["VmRSS"]))
        walls.append(wall)
        cpus.append(cpu)
        if sum(walls) > budget_s:
            break
    coef = intercept = None
    if out is not None:
        c, b = _np_out(*out)
        coef, intercept = c.reshape(case.k, -1).tolist(), b.reshape(-1).tolist()
    return {
        "peer": name,
        "label": peer.label,
        "walls": walls,
        "cpus": cpus,
        "extra_bytes": max(extras),
        "peak_exact": exact_peak,
        "x_bytes": int(np.asarray(X).nbytes),
        "coef": coef,
        "intercept": intercept,
        "blas": _blas_info(),
        "torch_threads": _torch_threads(),
    }


def _torch_threads() -> int | None:
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:  # pragma: no cover
        return None


def run_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Time ``spec["peers"]`` (or compute the reference) on ``spec["case"]``."""
    case = Case(**spec["case"])
    results: dict[str, Any] = {}
    data = make_data(case) if len(spec["peers"]) > 1 else None
    for name in spec["peers"]:
        try:
            if name == "reference":
                results[name] = reference(case)
            else:
                results[name] = time_peer(name, case, spec["repeat"], spec["budget_s"], data)
        except Exception as exc:  # one failing peer must not hide the others
            results[name] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        results[name]["env_openblas"] = {
            k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
        }
    return results


def worker_main(argv: list[str]) -> None:
    """``run.py --worker JSON``: time some peers (or the reference); one JSON line out.

    Several peers in one worker share the data (``--quick``); their memory figures then
    include what the allocator kept from the peers before them. ``{"jobs": [spec, ...]}``
    runs several cases in this one process (``--isolate run``), keyed by case name.
    """
    spec = json.loads(argv[0])
    try:
        import torch

        torch.set_num_threads(spec["threads"])
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if "jobs" in spec:
        out = {job["case"]["name"]: run_spec(job) for job in spec["jobs"]}
    else:
        out = run_spec(spec)
    sys.stdout.write("\n@@RESULT@@" + json.dumps(out) + "\n")
