"""Model files saved by torchlinreg 0.1.0 (the flat layout) still load, predict the same and
print the same: `tests/data/models/` holds four of them, what that version had in memory
when it saved them (`expected.json`) and what its commands printed (`cli/`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import torchlinreg as tlr
from cli_helpers import cli, read_csv_text

HERE = Path(__file__).resolve().parent / "data" / "models"
MODELS = ("exact-qr", "gram-ridge", "sgd", "library-ridge")
EXPECTED = json.loads((HERE / "expected.json").read_text())
FEATURES = ["a", "b", "c"]


@pytest.mark.parametrize("name", MODELS)
def test_a_saved_model_loads_with_the_same_coefficients_and_predictions(name):
    model = tlr.load(HERE / f"{name}.safetensors")
    expected = EXPECTED[name]
    # 1) the weights are the saved tensors, exactly
    np.testing.assert_array_equal(np.asarray(model.coef_), expected["coef"])
    np.testing.assert_array_equal(np.asarray(model.intercept_), expected["intercept"])
    # 2) predictions agree to a few ulp (a BLAS may round the product differently)
    X = pd.read_csv(HERE / "train.csv")[FEATURES].to_numpy()
    np.testing.assert_allclose(model.predict(X), expected["predict"], rtol=1e-14, atol=1e-14)


def _printed(capsys, name: str, *command: str) -> str:
    model = HERE / f"{name}.safetensors"
    data = [] if command == ("summary",) else [str(HERE / "more.csv")]
    r = cli(capsys, *command, model, *data)
    assert r.code == 0, r.err
    return r.out.replace(str(model), "MODEL").replace(str(HERE / "more.csv"), "DATA")


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("command", [("summary",), ("evaluate",), ("evaluate", "--json")])
def test_the_commands_print_what_they_printed_when_the_model_was_saved(capsys, name, command):
    reference = HERE / "cli" / f"{name}.{'-'.join(c.strip('-') for c in command)}.txt"
    if not reference.exists():  # the library model's target is unnamed: nothing to evaluate
        assert name == "library-ridge" and command[0] == "evaluate"
        return
    assert _printed(capsys, name, *command) == reference.read_text()


@pytest.mark.parametrize("name", MODELS)
def test_predict_writes_the_same_table(capsys, name):
    now = read_csv_text(_printed(capsys, name, "predict"))
    then = read_csv_text((HERE / "cli" / f"{name}.predict.txt").read_text())
    assert list(now.columns) == list(then.columns)
    np.testing.assert_allclose(now.to_numpy(), then.to_numpy(), rtol=1e-14, atol=1e-14)


def test_a_saved_exact_model_still_absorbs_new_rows(tmp_path, capsys):
    # train --update on the old file equals one fit on all rows (weighted, two targets)
    updated = tmp_path / "updated.safetensors"
    r = cli(capsys, "train", HERE / "more.csv", "--update", HERE / "exact-qr.safetensors",
            "-o", updated, "-q")  # fmt: skip
    assert r.code == 0, r.err
    rows = pd.concat([pd.read_csv(HERE / "train.csv"), pd.read_csv(HERE / "more.csv")])
    sw = np.sqrt(rows["w"].to_numpy())
    A = np.column_stack([np.ones(len(rows)), rows[FEATURES].to_numpy()]) * sw[:, None]
    Y = rows[["apples", "oranges"]].to_numpy() * sw[:, None]
    coef = np.linalg.lstsq(A, Y, rcond=None)[0]
    model = tlr.load(updated)
    np.testing.assert_allclose(model.intercept_, coef[0], rtol=1e-12)
    np.testing.assert_allclose(model.coef_, coef[1:].T, rtol=1e-11, atol=1e-14)
