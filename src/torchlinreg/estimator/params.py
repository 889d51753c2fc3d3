"""scikit-learn's estimator contract without depending on scikit-learn at run time.

``get_params``/``set_params`` read the keyword-only ``__init__`` signature, so
``clone``, ``Pipeline`` and ``GridSearchCV`` work; ``__sklearn_tags__`` imports
scikit-learn only when scikit-learn itself asks for the tags.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar


class ParamsMixin:
    """Hyper-parameters are the keyword-only arguments of ``__init__``, stored unchanged."""

    # Allowed values, checked at the top of fit: name -> tuple of allowed values or a predicate
    # with a description.
    _parameter_constraints: ClassVar[dict[str, Any]] = {}

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any):
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {type(self).__name__}. "
                    f"Valid parameters are: {valid!r}."
                )
            setattr(self, name, value)
        return self

    def _validate_params(self) -> None:
        if "device" in self._param_names():
            _check_device(self.device, type(self).__name__)
        if "dtype" in self._param_names():
            _check_dtype(self.dtype, type(self).__name__)
        for name, rule in self._parameter_constraints.items():
            value = getattr(self, name)
            if isinstance(rule, tuple) and not callable(rule[0]):
                if value not in rule:
                    allowed = "{" + ", ".join(repr(v) for v in rule) + "}"
                    raise ValueError(
                        f"The {name!r} parameter of {type(self).__name__} must be one of "
                        f"{allowed}. Got {value!r} instead."
                    )
            else:
                check, description = rule
                if not check(value):
                    raise ValueError(
                        f"The {name!r} parameter of {type(self).__name__} must be "
                        f"{description}. Got {value!r} instead."
                    )

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        changed = [
            f"{name}={getattr(self, name)!r}"
            for name in self._param_names()
            if getattr(self, name) is not sig.parameters[name].default
            and getattr(self, name) != sig.parameters[name].default
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self):
        from sklearn.utils import RegressorTags, Tags, TargetTags

        tags = Tags(
            estimator_type="regressor",
            target_tags=TargetTags(required=True, multi_output=True, single_output=True),
            regressor_tags=RegressorTags(),
        )
        # the exact solvers take scipy.sparse X (in dense row blocks)
        tags.input_tags.sparse = bool(getattr(self, "_is_exact", False))
        return tags


# device= and dtype= were passed to torch as given: "meta" failed deep in a fit ("Tensor.item()
# cannot be called on meta tensors"), "cuda" without CUDA with torch's AssertionError,
# dtype="float16" with KeyError: 'float16' (a device hunt). Checked with the other parameters.
def _check_device(device: Any, owner: str) -> None:
    if device is None:
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"The 'device' parameter of {owner} must be None, 'cpu', 'cuda' or 'cuda:N'. "
            f"Got {device!r} instead."
        ) from None
    if dev.type == "meta":
        raise ValueError(f"{owner} cannot fit on device 'meta' (tensors without data): use 'cpu'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"{owner}(device={device!r}): CUDA is not available here; use device='cpu', or "
            "None (the data's own device)"
        )


def _check_dtype(dtype: Any, owner: str) -> None:
    if dtype is None:
        return
    import numpy as np
    import torch

    if isinstance(dtype, torch.dtype):
        ok = dtype in (torch.float32, torch.float64)
    else:
        try:
            ok = np.dtype(dtype) in (np.float32, np.float64)
        except TypeError:
            ok = False
    if not ok:
        raise ValueError(
            f"The 'dtype' parameter of {owner} must be None, float32 or float64 (a torch or "
            f"numpy dtype, or its name). Got {dtype!r} instead."
        )
