"""The iterative engine against independent oracles: the walk-through, lstsq, scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from torchlinreg import tutorial
from torchlinreg.datasets import make_regression
from torchlinreg.errors import ConvergenceWarning, DataError, DivergenceError
from torchlinreg.iterative.batches import ShuffledBatches
from torchlinreg.iterative.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    LambdaCallback,
    TrainState,
)
from torchlinreg.iterative.fit import SOLVERS, fit_iterative

# --- oracles -------------------------------------------------------------------------------


def lstsq_fit(X, Y, w=None, intercept=True):
    """Weighted least squares by numpy lstsq on sqrt(w)-scaled rows; returns coef (k,d), b (k,)."""
    X, Y = np.asarray(X, float), np.asarray(Y, float).reshape(len(X), -1)
    A = np.c_[X, np.ones(len(X))] if intercept else X
    s = np.ones(len(X)) if w is None else np.sqrt(np.asarray(w, float))
    sol = np.linalg.lstsq(A * s[:, None], Y * s[:, None], rcond=None)[0]
    if intercept:
        return sol[:-1].T, sol[-1]
    return sol.T, np.zeros(Y.shape[1])


def r2(X, Y, coef, intercept):
    X, Y = np.asarray(X, float), np.asarray(Y, float).reshape(len(X), -1)
    resid = Y - X @ np.asarray(coef, float).T - np.asarray(intercept, float)
    return 1 - (resid**2).sum(0) / ((Y - Y.mean(0)) ** 2).sum(0)


def problem(scales: bool, n_targets: int = 1, seed: int = 0):
    X, Y, _, _ = make_regression(4000, 10, n_targets, noise=1.0, scales=scales, seed=seed)
    return torch.from_numpy(X), torch.from_numpy(Y.reshape(len(X), -1))


# --- the walk-through ------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "epochs"), [(0, 100), (1, 500), (42, 7), (7, 0)])
def test_gd_reproduces_walkthrough_bit_for_bit(seed, epochs):
    x, y = tutorial.crop_tensors()
    ref = tutorial.run_seeded(seed, epochs)
    res = fit_iterative(
        x, y, solver="gd", standardize=False, lr=1e-5, init="randn",
        random_state=seed, max_iter=epochs, tol=None,
    )  # fmt: skip
    assert res.loss_history == ref.loss_history
    assert torch.equal(res.coef, ref.w)
    assert torch.equal(res.intercept, ref.b)
    assert res.n_iter == epochs


def test_gd_on_raw_crop_data_with_large_lr_raises_divergence_naming_the_epoch():
    x, y = tutorial.crop_tensors()
    with pytest.raises(DivergenceError, match=r"epoch \d+.*smaller lr or standardize=True") as ei:
        fit_iterative(x, y, solver="gd", standardize=False, lr=1.0, max_iter=100, tol=None)
    assert ei.value.epoch is not None and 1 <= ei.value.epoch <= 100
    assert f"epoch {ei.value.epoch}" in str(ei.value)


# --- accuracy with defaults --------------------------------------------------------------------


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("scales", [False, True])
def test_each_solver_with_defaults_reaches_exact_r2(solver, scales):
    # 1) each solver's default tol (1e-12 lbfgs, 1e-6 gd, 1e-4 sgd and adam) is met, by
    # lstsq's R2, without a warning (the suite turns warnings into errors); 2) the gap the
    # fit reports is lstsq's R2 difference; 3) full-batch solvers' coefficients follow
    X, Y = problem(scales, seed=3)
    coef, b = lstsq_fit(X, Y)
    res = fit_iterative(X, Y, solver=solver, random_state=0)
    want = {"lbfgs": 1e-12, "gd": 1e-6, "sgd": 1e-4, "adam": 1e-4}[solver]
    gap = float(np.max(r2(X, Y, coef, b) - r2(X, Y, res.coef, res.intercept)))
    assert res.converged and gap <= want * (1 + 1e-6) + 1e-15
    assert abs(res.optimality_gap - gap) <= 1e-3 * want
    if solver in ("gd", "lbfgs"):
        # in standardized units a gap g leaves coefficients ~sqrt(g) off (uncorrelated X)
        std = (res.coef.numpy() - coef) * X.std(0).numpy() / Y.std().item()
        assert np.abs(std).max() < 10 * np.sqrt(want)


@pytest.mark.parametrize("solver", SOLVERS)
def test_several_targets_each_reach_their_exact_fit(solver):
    X, Y = problem(False, n_targets=3, seed=4)
    coef, b = lstsq_fit(X, Y)
    res = fit_iterative(X, Y, solver=solver, random_state=1)
    assert res.coef.shape == (3, 10) and res.intercept.shape == (3,)
    assert np.all(r2(X, Y, coef, b) - r2(X, Y, res.coef, res.intercept) < 1e-4)


@pytest.mark.parametrize("solver", ["gd", "lbfgs"])
def test_float32_input_trains_in_float32(solver):
    X, Y = problem(False, seed=5)
    res = fit_iterative(X.float(), Y.float(), solver=solver)
    assert res.coef.dtype == torch.float32
    # 1) float32 training aims at a gap of 1e-6 (it cannot resolve much less), 2) which an
    # independent lstsq R2 confirms
    coef, b = lstsq_fit(X, Y)
    got = r2(X, Y, res.coef.double(), res.intercept.double())
    assert res.tol == 1e-6 and res.converged
    assert np.all(r2(X, Y, coef, b) - got < 2e-6)


def test_constant_column_does_not_divide_by_zero():
    X, Y = problem(False, seed=6)
    X = torch.cat([X, torch.full((len(X), 1), 3.0, dtype=X.dtype)], 1)
    res = fit_iterative(X, Y, solver="lbfgs", tol=None, max_iter=50)
    assert torch.isfinite(res.coef).all() and torch.isfinite(res.intercept).all()
    coef, b = lstsq_fit(X[:, :-1], Y)
    np.testing.assert_allclose(res.coef[:, :-1], coef, atol=1e-6)
    np.testing.assert_allclose(res.coef[:, -1] * 3.0 + res.intercept, b, atol=1e-6)


@pytest.mark.parametrize("standardize", [True, False])
def test_no_intercept_matches_lstsq_through_the_origin(standardize):
    X, Y = problem(False, seed=7)
    coef, _ = lstsq_fit(X, Y, intercept=False)
    # 1) the default tol: the R2 gap (over the centred SST) is within 1e-12 of the exact
    # fit's; 2) a gap of 1e-16 puts the coefficients within 1e-7 of lstsq's
    res = fit_iterative(X, Y, solver="lbfgs", fit_intercept=False, standardize=standardize)
    sst = ((Y - Y.mean(0)) ** 2).sum(0).numpy()
    ssr = lambda c: ((Y.numpy() - X.numpy() @ np.asarray(c).T) ** 2).sum(0)  # noqa: E731
    assert res.converged and np.all((ssr(res.coef) - ssr(coef)) / sst < 1e-12)
    assert abs(res.optimality_gap - float(((ssr(res.coef) - ssr(coef)) / sst).max())) < 1e-14
    res = fit_iterative(
        X, Y, solver="lbfgs", fit_intercept=False, standardize=standardize, tol=1e-16
    )
    np.testing.assert_allclose(res.coef, coef, atol=1e-7)
    assert torch.equal(res.intercept, torch.zeros(1, dtype=X.dtype))


# --- objective: weights and penalty -----------------------------------------------------------


@pytest.mark.parametrize("solver", ["gd", "lbfgs"])
def test_sample_weight_two_equals_duplicated_row(solver):
    X, Y = problem(True, seed=8)
    X, Y = X[:300], Y[:300]
    w = torch.ones(300, dtype=X.dtype)
    w[:50] = 2.0
    kw = {"solver": solver, "tol": None, "max_iter": 300 if solver == "gd" else 60}
    weighted = fit_iterative(X, Y, sample_weight=w, **kw)
    duplicated = fit_iterative(torch.cat([X, X[:50]]), torch.cat([Y, Y[:50]]), **kw)
    # 1) weight 2 equals the row repeated twice; 2) both equal weighted lstsq. L-BFGS stops
    # at an R2 gap near 1e-13, which leaves the coefficients ~1e-8 from the optimum: the two
    # runs agree to that, not to the last bit (their sums round differently).
    tight = 1e-9 if solver == "gd" else 3e-8
    torch.testing.assert_close(weighted.coef, duplicated.coef, rtol=tight, atol=tight)
    torch.testing.assert_close(weighted.intercept, duplicated.intercept, rtol=tight, atol=tight)
    coef, b = lstsq_fit(X, Y, w.numpy())
    np.testing.assert_allclose(weighted.coef, coef, rtol=0, atol=1e-8 * np.abs(coef).max())
    np.testing.assert_allclose(weighted.intercept, b, rtol=1e-8)


@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_alpha_matches_sklearn_ridge(standardize, weighted):
    # Raw training needs well-conditioned columns; standardized training copes with scales.
    X, Y = problem(standardize, n_targets=2, seed=9)
    X, Y = X[:500], Y[:500]
    w = torch.rand(500, generator=torch.Generator().manual_seed(0), dtype=X.dtype) + 0.5
    sw = w if weighted else None
    ref = Ridge(alpha=300.0, solver="cholesky").fit(X.numpy(), Y.numpy(), sample_weight=sw)
    res = fit_iterative(
        X, Y, sample_weight=sw, solver="lbfgs", alpha=300.0, standardize=standardize,
        tol=None, max_iter=100,
    )  # fmt: skip
    np.testing.assert_allclose(res.coef, ref.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(res.intercept, ref.intercept_, rtol=1e-6, atol=1e-6)


def test_gd_with_alpha_matches_sklearn_ridge():
    X, Y = problem(False, seed=10)
    ref = Ridge(alpha=1000.0).fit(X.numpy(), Y.numpy())
    res = fit_iterative(X, Y, solver="gd", alpha=1000.0, tol=None, max_iter=200)
    np.testing.assert_allclose(res.coef, ref.coef_.reshape(1, -1), rtol=1e-9)
    np.testing.assert_allclose(res.intercept, np.ravel(ref.intercept_), rtol=1e-9)


# --- stopping, warnings, callbacks -------------------------------------------------------------


def test_early_stopping_stops_before_max_iter_and_reports_converged():
    X, Y = problem(False, seed=11)
    res = fit_iterative(X, Y, solver="gd", max_iter=200)
    assert res.converged and res.n_iter < 50
    assert len(res.loss_history) == res.n_iter + 1


def test_early_stopping_rule_counts_epochs_without_relative_improvement():
    stopper = EarlyStopping(tol=0.1, n_iter_no_change=2)
    history = [10.0]
    stopper.on_train_begin(TrainState(0, 10.0, history, 99))
    decisions = []
    for loss in [8.0, 7.5, 7.4, 6.0, 5.9, 5.9]:
        history.append(loss)
        decisions.append(
            bool(stopper.on_epoch_end(TrainState(len(history) - 1, loss, history, 99)))
        )
    # 8.0 improves (< 9.0); 7.5 and 7.4 do not improve on 8.0 by 10%: stop at the second.
    assert decisions[:3] == [False, False, True]
    assert decisions[3:] == [False, False, True]


def test_max_iter_too_small_warns_with_the_gap_quoting_max_iter_and_tol():
    X, Y = problem(False, seed=12)
    with pytest.warns(ConvergenceWarning, match=r"max_iter=1\).*gap of .*tol=0.0001") as rec:
        res = fit_iterative(X, Y, solver="adam", max_iter=1, random_state=0)
    assert not res.converged and res.n_iter == 1
    # the warning carries the gap it quotes, which is the result's, and is above tol
    (w,) = rec
    assert w.message.gap == res.optimality_gap > 1e-4 and w.message.tol == 1e-4


def test_tol_none_runs_every_epoch_without_warning():
    X, Y = problem(False, seed=12)
    res = fit_iterative(X[:100], Y[:100], solver="gd", max_iter=30, tol=None)
    assert res.n_iter == 30 and not res.converged


def test_callbacks_see_every_epoch_and_can_stop():
    X, Y = problem(False, seed=13)
    seen = []

    class Recorder(Callback):
        def on_train_begin(self, state):
            seen.append(("begin", state.epoch, state.loss))

        def on_epoch_end(self, state):
            seen.append(("epoch", state.epoch, state.loss))
            return state.epoch == 4

        def on_train_end(self, state):
            seen.append(("end", state.epoch, state.loss))

    res = fit_iterative(X, Y, solver="sgd", tol=None, callbacks=[Recorder()], random_state=0)
    assert [s[:2] for s in seen] == [("begin", 0), *[("epoch", e) for e in range(1, 5)], ("end", 4)]
    assert [s[2] for s in seen[:-1]] == res.loss_history
    assert res.n_iter == 4 and not res.converged


# --- determinism and checkpoints ---------------------------------------------------------------


def test_same_seed_same_result_different_seed_different_shuffle():
    X, Y = problem(False, seed=14)
    kw = {"solver": "sgd", "max_iter": 3, "tol": None}
    a = fit_iterative(X, Y, random_state=5, **kw)
    b = fit_iterative(X, Y, random_state=5, **kw)
    c = fit_iterative(X, Y, random_state=6, **kw)
    assert torch.equal(a.coef, b.coef) and a.loss_history == b.loss_history
    assert not torch.equal(a.coef, c.coef)


def test_shuffled_batches_cover_every_row_once_per_epoch_in_a_new_order():
    X = torch.arange(10.0)[:, None]
    src = ShuffledBatches(X, X, batch_size=3)
    g = torch.Generator().manual_seed(0)
    orders = [torch.cat([xb[:, 0] for xb, _, _ in src.epoch(g)]) for _ in range(2)]
    for order in orders:
        assert sorted(order.tolist()) == list(range(10))
    assert not torch.equal(orders[0], orders[1])


def _is_plain(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_is_plain(v) for v in value)
    return value is None or isinstance(value, torch.Tensor | int | float | str | bool)


@pytest.mark.parametrize("solver", ["sgd", "adam", "gd"])
def test_resume_from_checkpoint_equals_uninterrupted_run_bit_for_bit(solver):
    X, Y = problem(False, n_targets=2, seed=15)
    X, Y = X[:1000], Y[:1000]
    w = torch.rand(len(X), generator=torch.Generator().manual_seed(1), dtype=X.dtype)
    # gd stops early (tol), so resuming also crosses an early stop; sgd and adam run 12 epochs.
    tol = 1e-3 if solver == "gd" else None
    kw = {"solver": solver, "sample_weight": w, "random_state": 3, "max_iter": 12, "tol": tol}
    saved = {}
    full = fit_iterative(
        X, Y, callbacks=[Checkpoint(lambda s: saved.setdefault(s["epoch"], s))], **kw
    )
    assert set(range(1, full.n_iter + 1)) <= set(saved)
    assert _is_plain(saved[3])
    resumed = fit_iterative(X, Y, resume_from=saved[3], **kw)
    assert torch.equal(resumed.coef, full.coef) and torch.equal(resumed.intercept, full.intercept)
    assert resumed.loss_history == full.loss_history and resumed.n_iter == full.n_iter
    # Resuming the final checkpoint changes nothing.
    again = fit_iterative(X, Y, resume_from=saved[full.n_iter], **kw)
    assert torch.equal(again.coef, full.coef) and again.n_iter == full.n_iter


def test_resume_with_another_solver_is_refused():
    X, Y = problem(False, seed=16)
    states = []
    fit_iterative(X, Y, solver="sgd", max_iter=2, tol=None, callbacks=[Checkpoint(states.append)])
    with pytest.raises(ValueError, match="resume with the solver"):
        fit_iterative(X, Y, solver="adam", resume_from=states[-1])


def test_lambda_callback_receives_losses():
    X, Y = problem(False, seed=17)
    losses = []
    res = fit_iterative(
        X,
        Y,
        solver="gd",
        tol=None,
        max_iter=5,
        callbacks=[LambdaCallback(lambda s: losses.append(s.loss))],
    )
    assert losses == res.loss_history[1:]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"solver": "newton"}, "'solver' parameter must be one of"),
        ({"lr": -1.0}, "Invalid learning rate"),
        ({"init": "ones"}, "'init' parameter"),
        ({"alpha": -1.0}, "Invalid alpha"),
        ({"batch_size": 0}, "Invalid batch_size"),
    ],
)
def test_bad_parameters_are_refused_with_the_value(kwargs, message):
    X, Y = problem(False, seed=18)
    with pytest.raises(ValueError, match=message):
        fit_iterative(X[:10], Y[:10], **{"solver": "sgd", **kwargs})


def test_non_finite_input_is_a_data_error():
    X, Y = problem(False, seed=19)
    X[5, 2] = float("nan")
    with pytest.raises(DataError, match="X contains NaN"):
        fit_iterative(X, Y, solver="gd")


@pytest.mark.distributed
def test_trainer_drives_a_ddp_wrapped_module_to_the_same_weights(tmp_path):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from torchlinreg.iterative.batches import ShuffledBatches
    from torchlinreg.iterative.solvers import resolve_solver
    from torchlinreg.iterative.trainer import LinearModule, Trainer

    X, Y = problem(False, seed=20)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    try:
        weights = []
        for wrap in (False, True):
            linear = LinearModule(torch.zeros(1, 10, dtype=X.dtype), torch.zeros(1, dtype=X.dtype))
            module = DistributedDataParallel(linear) if wrap else linear
            spec = resolve_solver("sgd", n_targets=1, n_rows=len(X))
            source = ShuffledBatches(X, Y, batch_size=256)
            gen = torch.Generator().manual_seed(0)
            Trainer(module, source, spec, max_iter=3, generator=gen).fit()
            weights.append(linear.weight.detach().clone())
    finally:
        dist.destroy_process_group()
    # One rank averages gradients over itself: the same steps, up to summation order.
    torch.testing.assert_close(weights[0], weights[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_checkpoint_survives_safetensors_and_json_and_resumes_bit_for_bit(solver, tmp_path):
    import json

    from safetensors.torch import load_file, save_file

    from torchlinreg.iterative.trainer import flatten_state, unflatten_state

    X, Y = problem(False, seed=21)
    X, Y = X[:1000], Y[:1000]
    kw = {"solver": solver, "random_state": 2, "max_iter": 8, "tol": None}
    saved = []
    full = fit_iterative(X, Y, callbacks=[Checkpoint(saved.append, every=4)], **kw)
    tensors, meta = flatten_state(saved[0])
    save_file(tensors, tmp_path / "ckpt.safetensors")
    (tmp_path / "ckpt.json").write_text(json.dumps(meta))
    state = unflatten_state(
        load_file(tmp_path / "ckpt.safetensors"), json.loads((tmp_path / "ckpt.json").read_text())
    )
    assert state["epoch"] == 4
    resumed = fit_iterative(X, Y, resume_from=state, **kw)
    assert torch.equal(resumed.coef, full.coef) and resumed.loss_history == full.loss_history


@pytest.mark.parametrize("alpha", [0.0, 3.0])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("intercept", [True, False])
def test_adam_closed_form_gradient_equals_autograd(alpha, weighted, intercept, monkeypatch):
    # adam's batches take the gradient written out (NOTE [small steps on a GPU]); the
    # autograd graph it replaces gives the same steps up to rounding
    from torchlinreg.iterative import trainer

    X, Y = problem(True, n_targets=2, seed=12)
    X, Y = X[:3000], Y[:3000]
    w = torch.rand(3000, generator=torch.Generator().manual_seed(1), dtype=X.dtype) + 0.5
    kw = dict(sample_weight=w if weighted else None, solver="adam", alpha=alpha, tol=None,
              max_iter=4, random_state=0, fit_intercept=intercept)  # fmt: skip
    real, calls = trainer.Trainer._closed_form_grads, []

    def checked(self, X, Y, w):  # each batch's gradient against autograd's
        with torch.enable_grad():
            self._loss(X, Y, w).backward()
        want = [p.grad.clone() for p in self.params]
        for p in self.params:
            p.grad = None
        real(self, X, Y, w)
        for p, g in zip(self.params, want, strict=True):
            torch.testing.assert_close(p.grad, g, rtol=1e-12, atol=1e-15)
        calls.append(1)

    monkeypatch.setattr(trainer.Trainer, "_closed_form_grads", checked)
    fast = fit_iterative(X, Y, **kw)
    assert len(calls) > 4  # every batch of every epoch

    def by_autograd(self, X, Y, w):
        with torch.enable_grad():
            self._loss(X, Y, w).backward()

    monkeypatch.setattr(trainer.Trainer, "_closed_form_grads", by_autograd)
    slow = fit_iterative(X, Y, **kw)
    np.testing.assert_allclose(fast.coef, slow.coef, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(fast.intercept, slow.intercept, rtol=1e-11, atol=1e-13)
    assert fast.loss_history == pytest.approx(slow.loss_history, rel=1e-11)


def test_large_data_take_at_most_1024_steps_an_epoch_and_still_reach_the_target():
    # NOTE [steps per epoch]: batches grow past their caps on large data only
    from torchlinreg.iterative.solvers import default_batch, resolve_solver

    for name, cap in (("adam", 128), ("sgd", 256)):
        assert cap - 4 <= resolve_solver(name, n_targets=1, n_rows=20_000).batch_size <= cap
        assert default_batch(1024 * cap, cap) == cap
        for n in (1024 * cap + 1, 10**6, 10**7):
            bs = resolve_solver(name, n_targets=1, n_rows=n).batch_size
            assert -(-n // bs) <= 1024 and bs <= -(-n // 1024) + 1
    # 300,000 rows (batches of 293, not 128): the default target, by lstsq's R2
    g = torch.Generator().manual_seed(2)
    X = torch.randn(300_000, 10, generator=g, dtype=torch.float64) * 5 + 3
    Y = X @ torch.randn(10, 1, generator=g, dtype=torch.float64) + torch.randn(
        300_000, 1, generator=g, dtype=torch.float64
    )
    coef, b = lstsq_fit(X, Y)
    res = fit_iterative(X, Y, solver="adam", random_state=0)
    gap = float(np.max(r2(X, Y, coef, b) - r2(X, Y, res.coef, res.intercept)))
    assert res.converged and gap <= 1e-4 and abs(res.optimality_gap - gap) <= 1e-7
