"""Using formula models: contrasts, dropped-row counts, nothing left to evaluate, messages.

Found by a hunt on the formula path (2026-11-29): ``C(g, Sum)`` fitted but its predict
looked for a data column named Sum (and `train --formula` refused it); a model file lost
``nobs_dropped`` (summary --json said 0 beside training.rows_dropped 3); `evaluate --missing
drop` with every row dropped printed "unexpected ValueError ... this is a bug"; and the
errors for unseen levels told library users to pass a ``missing=`` that predict does not
take. References: statsmodels' formula API.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import torchlinreg as tlr
from cli_helpers import cli


def _fair() -> pd.DataFrame:
    return sm.datasets.fair.load_pandas().data


@pytest.mark.parametrize("contrast", ["Sum", "Helmert", "Diff", "Treatment()"])
def test_contrasts_fit_and_predict_as_statsmodels(contrast):
    d = _fair()
    ours = f"affairs ~ C(occupation, {contrast}) + age"
    theirs = ours.replace("Treatment()", "Treatment")
    ref = smf.ols(theirs, d).fit()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = tlr.ols(ours, data=d)
        est = tlr.LinearRegression().fit_formula(ours, d)
        new = d.iloc[:7]
        np.testing.assert_allclose(np.asarray(res.params), ref.params.to_numpy(), rtol=1e-10)
        np.testing.assert_allclose(est.predict(new), ref.predict(new), rtol=1e-10)
        np.testing.assert_allclose(
            res.get_prediction(new).predicted_mean, ref.get_prediction(new).predicted_mean,
            rtol=1e-10,
        )  # fmt: skip


def test_a_bare_treatment_contrast_says_how_to_write_it():
    with pytest.raises(tlr.errors.DataError, match=r"Treatment\(\) \(with parentheses\)"):
        tlr.ols("affairs ~ C(occupation, Treatment) + age", data=_fair())


def test_train_takes_a_sum_contrast(capsys, tmp_path):
    d = _fair()
    data = tmp_path / "fair.csv"
    d.to_csv(data, index=False)
    formula = "affairs ~ C(occupation, Sum) + age"
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", data, "--formula", formula, "-o", model, "-q")
    assert r.code == 0, r.err
    ref = smf.ols(formula, d).fit()
    est = tlr.load(model)
    np.testing.assert_allclose(est.predict(d.iloc[:5]), ref.predict(d.iloc[:5]), rtol=1e-9)


def test_a_model_file_keeps_the_rows_dropped(capsys, tmp_path):
    d = _fair()
    d.loc[[1, 2, 3], "age"] = np.nan
    est = tlr.LinearRegression().fit_formula("affairs ~ age + C(occupation)", d, missing="drop")
    assert est.results_.nobs_dropped == 3
    path = tmp_path / "m.safetensors"
    tlr.save(est, path)
    assert tlr.load(path).results_.nobs_dropped == 3  # 0 before
    data = tmp_path / "fair.csv"
    d.to_csv(data, index=False)
    model = tmp_path / "cli.safetensors"
    r = cli(capsys, "train", data, "--formula", "affairs ~ age + C(occupation)", "--missing",
            "drop", "-o", model, "-q")  # fmt: skip
    assert r.code == 0, r.err
    r = cli(capsys, "summary", model, "--json")
    report = json.loads(r.out)
    assert report["statistics"]["nobs_dropped"] == report["training"]["rows_dropped"] == 3


def test_evaluate_with_every_row_dropped_says_so(capsys, tmp_path):
    d = _fair()
    data = tmp_path / "train.csv"
    d.to_csv(data, index=False)
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", data, "--formula", "affairs ~ age + C(occupation)", "-o", model, "-q")
    assert r.code == 0, r.err
    unseen = tmp_path / "unseen.csv"
    d.iloc[:30].assign(occupation=99.0).to_csv(unseen, index=False)
    r = cli(capsys, "evaluate", model, unseen, "--missing", "drop", "--json")
    r.assert_one_error_line(2, "all 30 rows were dropped")


def test_unseen_levels_say_what_a_library_user_can_do():
    d = _fair()
    est = tlr.LinearRegression().fit_formula("affairs ~ age + C(occupation)", d)
    new = d.iloc[:5].assign(occupation=[1.0, 2.0, 99.0, 3.0, 4.0])
    with pytest.raises(tlr.errors.DataError) as info:
        est.predict(new)
    message = str(info.value)
    assert "row 3" in message and "leave such rows out" in message
    assert "missing='keep'" not in message  # predict takes no such argument


def test_summary_prints_whole_parameter_names():
    res = tlr.ols("affairs ~ rate_marriage + C(occupation)", data=_fair())
    text = res.summary()
    for name in res.param_names:  # C(occupation)[T.2.0] and its siblings were cut to 14
        assert f"\n{name} " in text


def test_scale_follows_r_and_standardize_follows_patsy():
    # the README's statement: formulaic's scale divides by sd with ddof 1 (as R), patsy's
    # (statsmodels') with ddof 0, which formulaic's standardize matches
    rng = np.random.default_rng(0)
    d = pd.DataFrame({"x": rng.normal(size=60) * 3 + 2})
    d["y"] = 2 * d["x"] + rng.normal(size=60)
    ref = smf.ols("y ~ scale(x)", d).fit().params.to_numpy()
    ours = np.asarray(tlr.ols("y ~ scale(x)", data=d).params)
    np.testing.assert_allclose(ours[1], ref[1] * np.sqrt(60 / 59), rtol=1e-12)
    same = np.asarray(tlr.ols("y ~ standardize(x)", data=d).params)
    np.testing.assert_allclose(same, ref, rtol=1e-12)
