"""What a model file must hold, checked before anything it describes is built.

A model file may come from anyone (NOTE [reading untrusted files] in ``files/tensorfile.py``):
its record could claim 20,000 features next to a 5 x 5 state, integer or complex weights,
rows as a string, a negative penalty. :func:`check_model` checks every field the loader uses
(types, ranges, the shapes of every tensor against the sizes the record gives, dtypes) so
that the only memory allocated is proportional to the tensors really in the file, and every
defect is one :class:`ModelFileError` naming the field. :func:`weights_match_state` then
checks that the weights are the solution of the stored least-squares state (an edited weight
would otherwise be used by ``predict`` and silently replaced by ``--update``).

Files saved by torchlinreg 0.1.0 (``tests/data/models/``) hold every field required here.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..errors import ModelFileError

_FLOATS = (torch.float32, torch.float64)
_STATE_PREFIX = "state."
_STATE_TENSORS = {("qr", True): ("r", "shift"), ("qr", False): ("r", "shift")}
_STATE_TENSORS.update({("gram", True): ("mean", "comoment"), ("gram", False): ("gram",)})
# what a version-2 record adds (the gram state's power-of-two column scales and its shift)
_STATE_TENSORS_V2 = {("gram", True): ("scale", "shift"), ("gram", False): ("scale",)}
_DEVICES = ("cpu", "cuda")


class _Fail:
    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, what: str) -> ModelFileError:
        return ModelFileError(
            f"{self.path}: the model record is incomplete or invalid ({what}); the file is "
            "damaged or not a torchlinreg model: restore it, or re-train and save again"
        )


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _strings(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(s, str) for s in v)


def _require(fail: _Fail, ok: bool, what: str) -> None:
    if not ok:
        raise fail(what)


def check_model(path: str, meta: dict, tensors: dict[str, Tensor]) -> tuple[int, int]:
    """Check a model file's record and tensors; return ``(n_targets, n_features)``."""
    fail = _Fail(path)
    known_estimators = ("LinearRegression", "Ridge", "Lasso", "ElasticNet")
    _require(fail, meta.get("estimator") in known_estimators, "unknown estimator")
    k, d = meta.get("n_targets"), meta.get("n_features")
    _require(fail, _int(k) and k >= 1, "n_targets is not a positive integer")
    _require(fail, _int(d) and d >= 0, "n_features is not a non-negative integer")
    _check_tensor(fail, tensors, "weight", (k, d))
    _check_tensor(fail, tensors, "bias", (k,))
    _check_params(fail, meta.get("params"))
    for key, n in (("feature_names", d), ("target_names", k)):
        names = meta.get(key)
        ok = names is None or (_strings(names) and len(names) == n == len(set(names)))
        _require(fail, ok, f"bad {key} (not {n} distinct names)")
    for key in ("y_was_1d", "weighted"):
        _require(fail, isinstance(meta.get(key, False), bool), f"{key} is not true or false")
    _require(fail, _int(meta.get("n_iter", 0)) and meta.get("n_iter", 0) >= 0, "bad n_iter")
    rank = meta.get("rank")
    _require(fail, rank is None or (_int(rank) and 0 <= rank <= d + 1), "bad rank")
    _check_training(fail, meta.get("training", {}))
    known = {"weight", "bias"}
    if "loss_history" in tensors:
        losses = tensors["loss_history"]
        _require(fail, losses.dim() == 1 and losses.dtype in _FLOATS, "bad loss_history")
        known.add("loss_history")
    if "state" in meta:
        known.update(_check_state(fail, meta, tensors, d, k))
    unknown = sorted(set(tensors) - known)
    _require(fail, not unknown, f"unexpected tensor(s) {unknown[:5]}")
    return k, d


def _check_tensor(fail: _Fail, tensors: dict[str, Tensor], name: str, shape: tuple) -> None:
    t = tensors.get(name)
    _require(fail, t is not None, f"no {name} tensor")
    _require(
        fail,
        t.dtype in _FLOATS,
        f"{name} has dtype {str(t.dtype).removeprefix('torch.')}, not float32 or float64",
    )
    _require(
        fail,
        tuple(t.shape) == tuple(shape),
        f"{name} shapes disagree: {name} is {tuple(t.shape)}, the record says {tuple(shape)}",
    )
    _require(fail, bool(torch.isfinite(t).all()), f"{name} holds NaN or infinity")


def _check_params(fail: _Fail, params: Any) -> None:
    _require(fail, isinstance(params, dict), "params is not an object")
    for key in ("lr", "tol", "rcond"):
        value = params.get(key)
        ok = value is None or _number(value) or (key == "tol" and value == "auto")
        _require(fail, ok, f"params.{key} is not a finite number")
    # one penalty, or one per target (a list whose length the loader checks against k)
    alpha = params.get("alpha")
    values = alpha if isinstance(alpha, list) else [0.0 if alpha is None else alpha]
    ok = bool(values) and all(_number(a) and a >= 0 for a in values)
    _require(fail, ok, "params.alpha is not a non-negative number (or one per target)")
    ratio = params.get("l1_ratio", 0.0)  # ElasticNet
    _require(fail, _number(ratio) and 0 <= ratio <= 1, "params.l1_ratio is not in [0, 1]")
    seed = params.get("random_state")
    _require(fail, seed is None or (_int(seed) and abs(seed) < 2**63), "bad params.random_state")
    _require(fail, params.get("dtype") in (None, "float32", "float64"), "bad params.dtype")
    device = params.get("device")
    ok = device is None or (
        isinstance(device, str) and device.partition(":")[0] in _DEVICES and len(device) < 16
    )
    _require(fail, ok, "bad params.device")


_TRAINING = {
    "rows": lambda v: _int(v) and v >= 0,
    "seconds": lambda v: _number(v) and v >= 0,
    "data": lambda v: isinstance(v, str),
    "epochs": lambda v: v is None or (_int(v) and v >= 0),
    "final_loss": lambda v: v is None or isinstance(v, int | float),
    "features": _strings,
    "targets": _strings,
    "skipped_columns": _strings,
    "weights": lambda v: v is None or isinstance(v, str),
    "solver": lambda v: isinstance(v, str),
    "weighted": lambda v: isinstance(v, bool),
    "metrics": lambda v: (
        isinstance(v, dict)
        and all(
            isinstance(m, dict) and all(x is None or isinstance(x, int | float) for x in m.values())
            for m in v.values()
        )
    ),
    "updates": lambda v: (
        isinstance(v, list)
        and all(
            isinstance(u, dict)
            and isinstance(u.get("data", ""), str)
            and _int(u.get("rows", 0))
            and _number(u.get("seconds", 0))
            for u in v
        )
    ),
}


def _check_training(fail: _Fail, training: Any) -> None:
    """The training summary that ``summary`` prints and ``--update`` extends."""
    _require(fail, isinstance(training, dict), "training is not an object")
    for key, ok in _TRAINING.items():
        if key in training:
            _require(fail, ok(training[key]), f"training.{key} has the wrong type or range")


def _check_state(fail: _Fail, meta: dict, tensors: dict[str, Tensor], d: int, k: int) -> set:
    """The least-squares state's record and tensors agree with each other and with (k, d)."""
    state = meta["state"]
    _require(fail, isinstance(state, dict), "state is not an object")
    _require(fail, state.get("n_features") == d and _int(d), "the state's n_features disagree")
    _require(fail, state.get("n_targets") == k and _int(k), "the state's n_targets disagree")
    method, icpt = state.get("method"), state.get("fit_intercept")
    _require(fail, method in ("qr", "gram"), "bad state method")
    _require(fail, meta["params"].get("solver", method) == method, "the solver is not the state's")
    _require(fail, isinstance(icpt, bool), "bad state fit_intercept")
    _require(fail, icpt == meta["params"].get("fit_intercept", icpt), "fit_intercept disagrees")
    _require(fail, state.get("dtype") in ("float32", "float64"), "bad state dtype")
    _require(fail, _int(state.get("block_rows")) and state["block_rows"] >= 1, "bad block_rows")
    n, nonzero = state.get("n_samples"), state.get("n_nonzero")
    _require(fail, _int(n) and n >= 1, "the state's n_samples is not a positive integer")
    _require(fail, _int(nonzero) and 0 <= nonzero <= n, "the state's n_nonzero is out of range")
    _require(
        fail, _number(state.get("sum_weights")) and state["sum_weights"] >= 0, "bad sum_weights"
    )
    log_w = state.get("sum_log_weights")
    _require(fail, log_w is None or _number(log_w), "bad sum_log_weights")
    if method == "qr":
        _require(fail, isinstance(state.get("has_shift"), bool), "bad has_shift")
    p = d + k
    m = p + int(icpt)
    shapes = {"r": (m, m), "shift": (p,), "mean": (p,), "comoment": (p, p), "gram": (p, p)}
    shapes["scale"] = (p,)
    names = _STATE_TENSORS[(method, icpt)]
    version = state.get("version", 1)
    _require(fail, version in (1, 2) and _int(version), "bad state version (not 1 or 2)")
    if version >= 2:
        names = names + _STATE_TENSORS_V2.get((method, icpt), ())
    for name in names:
        _check_tensor(fail, tensors, _STATE_PREFIX + name, shapes[name])
    return {_STATE_PREFIX + name for name in names}


def weights_match_state(state, solution, weight: Tensor, bias: Tensor, alpha) -> bool:
    """True when ``(weight, bias)`` is as good a fit to the state as its own solution.

    Compares the objective (weighted residual sum of squares, plus the ridge penalty) of the
    stored weights with that of the state's solution, per target, from the state alone. The
    tolerance, relative to the targets' total sum of squares, is ``1e-12 + eps * cond**2``
    (what the state's factor can vouch for; plus a thousand times what rounding to float32
    costs, for float32 weights): on a well-conditioned fit an edit that moves predictions by
    a millionth of the targets' spread is refused, while refined coefficients (better than
    the state's own solve) always pass. A rank-deficient fit must also keep the
    minimum-norm coefficients, since any other minimiser differs only where no data speaks.
    """
    alpha = torch.as_tensor(alpha, dtype=torch.float64)  # one number, or one per target
    summ = state.centred_summary()
    r, means = summ.r.double().cpu(), summ.means.double().cpu()
    sw, d = float(summ.sum_weights), state.n_features
    W, b = weight.double().cpu(), bias.double().cpu()
    if not state.fit_intercept and bool((b != 0).any()):
        return False

    def objective(coef: Tensor, intercept: Tensor) -> Tensor:
        resid = r[:, :d] @ coef.T - r[:, d:]
        value = resid.square().sum(0) + alpha * coef.square().sum(1)
        if state.fit_intercept:
            value = value + sw * (intercept - (means[d:] - coef @ means[:d])).square()
        return value

    coef, intercept = solution.coef.double().cpu(), solution.intercept.double().cpu()
    best, ours = objective(coef, intercept), objective(W, b)
    # The state's own factor is only as good as its conditioning: trust it to eps * cond^2.
    cond = float(solution.cond) if math.isfinite(solution.cond) else math.inf
    rel = min(1.0, 1e-12 + torch.finfo(state.dtype).eps * cond * cond)
    slack = rel * (r[:, d:].square().sum(0) + best.abs())
    if state.fit_intercept:
        # the intercept's term, mean(y) - coef . mean(x), rounds to eps times its largest
        # part, which a refined fit does not share with the state: diabetes scaled 1e-3 and
        # shifted by 1e6 was a valid fit refused as "edited or damaged" (a saved-model hunt)
        eps = torch.finfo(torch.float64).eps
        size = means[d:].abs() + W.abs() @ means[:d].abs() + b.abs()
        slack = slack + sw * (4 * (d + 1) * eps * size).square()
    if weight.dtype != torch.float64:
        # float32 weights: what rounding the state's own solution to float32 costs, with room
        rounded = objective(coef.to(weight.dtype).double(), intercept.to(bias.dtype).double())
        slack = slack + 1000 * (rounded - best).clamp_min(0)
    if not bool((ours - best <= slack + 1e-300).all()):
        return False
    if solution.aliased and bool((alpha == 0).all()):
        norm, min_norm = W.square().sum(1), solution.coef.double().cpu().square().sum(1)
        return bool((norm <= min_norm * (1 + 1e-6) + 1e-300).all())
    return True


__all__ = ["check_model", "weights_match_state"]
