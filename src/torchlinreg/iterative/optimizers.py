"""The optimizers the solvers step: plain gradient descent, Adam and L-BFGS.

NOTE [no torch._dynamo]
``torch.optim.Optimizer`` wraps ``add_param_group`` (run by every constructor),
``zero_grad``, ``state_dict`` and ``load_state_dict`` in ``torch._disable_dynamo``, and
``Adam.step`` in a wrapper that imports ``torch._dynamo`` on every call. That import pulls in
the compiler stack (sympy, torch.fx, torch.distributed.tensor): about 1 s, measured here,
paid by the first iterative fit of every process for nothing, since the loop is never
compiled. The disabling matters only while torch.compile traces a function; in eager mode
the undecorated method (``__wrapped__``) does exactly the same. So these optimizers are
torch's, with the same defaults, state and ``state_dict`` (checkpoints are unchanged), but
they call the undecorated methods, and Adam's single-tensor update is written out with
torch's arithmetic, operation for operation (a test compares it with ``torch.optim.Adam``
bit for bit).
"""

from __future__ import annotations

from typing import Any

import torch


def _undecorated(method):
    return getattr(method, "__wrapped__", method)


class _Eager:
    """torch.optim.Optimizer's bookkeeping without its torch._dynamo wrappers."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _undecorated(torch.optim.Optimizer.add_param_group)(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _undecorated(torch.optim.Optimizer.zero_grad)(self, set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return _undecorated(torch.optim.Optimizer.state_dict)(self)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        _undecorated(torch.optim.Optimizer.load_state_dict)(self, state_dict)


class PlainGD(_Eager, torch.optim.Optimizer):
    """Stateless gradient descent with exactly the walk-through's arithmetic.

    ``torch.optim.SGD`` computes ``p.add_(grad, alpha=-lr)``, which can round differently
    from ``p - grad * lr``; this optimizer keeps the walk-through's form.

    Example:
        >>> w = torch.ones(2, requires_grad=True)
        >>> (w * w).sum().backward()
        >>> PlainGD([w], lr=0.25).step()
        >>> w
        tensor([0.5000, 0.5000], requires_grad=True)
    """

    def __init__(self, params, lr: float) -> None:
        if not lr > 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr = group["lr"]
            for p in group["params"]:
                if p.grad is not None:
                    p -= p.grad * lr
        return None


class Adam(_Eager, torch.optim.Adam):
    """``torch.optim.Adam(params, lr)`` with its defaults, as torch computes it on a CPU.

    Example:
        >>> w = torch.ones(2, requires_grad=True)
        >>> (w * w).sum().backward()
        >>> Adam([w], lr=0.1).step()
        >>> w
        tensor([0.9000, 0.9000], requires_grad=True)
    """

    def __init__(self, params, lr: float) -> None:
        super().__init__(params, lr=lr)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps = group["lr"], group["eps"]
            live = [p for p in group["params"] if p.grad is not None]
            if live and live[0].device.type != "cpu":
                self._foreach_step(live, beta1, beta2, lr, eps)
                continue
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self._state_of(p)
                exp_avg, exp_avg_sq, step_t = state["exp_avg"], state["exp_avg_sq"], state["step"]
                step_t += 1
                exp_avg.lerp_(p.grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                step = step_t.item()
                step_size = lr / (1 - beta1**step)
                bias_correction2_sqrt = (1 - beta2**step) ** 0.5
                denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
                p.addcdiv_(exp_avg, denom, value=-step_size)
        return loss

    def _state_of(self, p) -> dict:
        """``p``'s Adam state, made as torch makes it on the first step."""
        state = self.state[p]
        if not state:
            # torch keeps the step count on the CPU, in float64 only when that is the
            # default dtype
            double = torch.get_default_dtype() == torch.float64
            state["step"] = torch.tensor(0.0, dtype=torch.float64 if double else torch.float32)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    def _foreach_step(self, params, beta1: float, beta2: float, lr: float, eps: float) -> None:
        """The same update for every parameter at once, as torch's Adam runs on a GPU by
        default (``foreach``): the same arithmetic per element, a launch per operation
        for all parameters rather than one per parameter (NOTE [small steps on a GPU])."""
        states = [self._state_of(p) for p in params]
        grads = [p.grad for p in params]
        avgs = [st["exp_avg"] for st in states]
        sqs = [st["exp_avg_sq"] for st in states]
        for st in states:
            st["step"] += 1
        torch._foreach_lerp_(avgs, grads, 1 - beta1)
        torch._foreach_mul_(sqs, beta2)
        torch._foreach_addcmul_(sqs, grads, grads, 1 - beta2)
        steps = [st["step"].item() for st in states]
        denom = torch._foreach_sqrt(sqs)
        torch._foreach_div_(denom, [(1 - beta2**t) ** 0.5 for t in steps])
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(params, avgs, denom, [-(lr / (1 - beta1**t)) for t in steps])


class LBFGS(_Eager, torch.optim.LBFGS):
    """``torch.optim.LBFGS`` as it is (its step needs no torch._dynamo).

    Example:
        >>> w = torch.zeros(1, requires_grad=True)
        >>> opt = LBFGS([w], line_search_fn="strong_wolfe")
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = ((w - 3) ** 2).sum()
        ...     loss.backward()
        ...     return loss
        >>> _ = opt.step(closure)
        >>> round(w.item(), 6)
        3.0
    """
