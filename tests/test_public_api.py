"""The public names are what they should be, and each is documented."""

import inspect

import torchlinreg

EXPECTED = {
    "Callback", "Checkpoint", "ConvergenceWarning", "DataError", "DegenerateWarning",
    "DivergenceError", "DivergenceGuard", "EarlyStopping", "InvalidTestWarning", "IterativeResult",
    "LeastSquaresState", "LinearModel", "LinearRegression", "ModelFileError",
    "NotFittedError", "OLSResults", "RankWarning", "Ridge", "TorchLinRegError", "TrainState",
    "__version__", "anova_lm", "datasets", "fit_exact", "fit_iterative", "load", "ols",
    "open_table", "polyfit", "save", "tutorial",
}  # fmt: skip
# issues 15 and 16: more linear models on the state, many fits at once
EXPECTED |= {
    "ElasticNet", "ElasticNetCV", "HuberRegressor", "Lasso", "LassoCV", "RidgeCV",
    "enet_path", "lasso_path",
    "GroupedOLSResults", "rolling_ols",
}  # fmt: skip


def test_public_names():
    assert set(torchlinreg.__all__) == EXPECTED
    assert torchlinreg.__all__ == sorted(torchlinreg.__all__)
    for name in EXPECTED:
        assert hasattr(torchlinreg, name), name


def test_every_public_callable_has_a_docstring_with_an_example_or_is_an_exception():
    for name in torchlinreg.__all__:
        obj = getattr(torchlinreg, name)
        if inspect.ismodule(obj) or name == "__version__":
            continue
        doc = inspect.getdoc(obj) or ""
        assert doc, name
        if inspect.isclass(obj) and issubclass(obj, (Exception, Warning)):
            continue
        if name in {"TrainState", "IterativeResult", "Callback"}:
            continue  # records and a protocol: described, no behaviour to show
        assert "Example" in doc or ">>>" in doc, name


def test_version_matches_the_package_metadata():
    from importlib.metadata import version

    assert torchlinreg.__version__ == version("torchlinreg")
