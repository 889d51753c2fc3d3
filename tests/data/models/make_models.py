"""How the model files in this folder were made: run once by torchlinreg 0.1.0 (commit
97ca440, the flat layout, before the package was split into subpackages).

Do not re-run it to "refresh" them: the files are evidence that files saved by that version
still load, and `expected.json` holds what that version had in memory when it saved them.
`tests/test_legacy_models.py` reads them.

    python tests/data/models/make_models.py
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import torchlinreg as tlr

HERE = Path(__file__).resolve().parent


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b, c = rng.normal(size=n), rng.normal(10.0, 5.0, size=n), rng.uniform(-100, 100, size=n)
    return pd.DataFrame(
        {
            "a": a,
            "name": [f"row{i}" for i in range(n)],
            "b": b,
            "c": c,
            "apples": 3.0 + 2.0 * a - 0.5 * b + 0.01 * c + rng.normal(scale=0.3, size=n),
            "oranges": -1.0 + 0.7 * a + 0.2 * b - 0.03 * c + rng.normal(scale=0.5, size=n),
            "w": rng.uniform(0.2, 3.0, size=n),
        }
    )


def cli(*args: object) -> None:
    subprocess.run([sys.executable, "-m", "torchlinreg", *map(str, args)], check=True)


def main() -> None:
    train, more = HERE / "train.csv", HERE / "more.csv"
    frame(200, 0).to_csv(train, index=False, float_format=lambda v: repr(float(v)))
    frame(50, 1).to_csv(more, index=False, float_format=lambda v: repr(float(v)))
    opts = ["-t", "apples", "-t", "oranges", "--features", "a,b,c", "-q"]
    cli("train", train, *opts, "--weights", "w", "-o", HERE / "exact-qr.safetensors")
    cli("train", train, *opts, "--solver", "gram", "--alpha", "0.5", "--no-intercept",
        "-o", HERE / "gram-ridge.safetensors")  # fmt: skip
    cli("train", train, *opts, "--solver", "sgd", "--epochs", "20", "--seed", "3",
        "--batch-size", "16", "-o", HERE / "sgd.safetensors")  # fmt: skip
    # the library: a 1-D target, a DataFrame's feature names
    df = pd.read_csv(train)
    ridge = tlr.Ridge(alpha=2.0).fit(df[["a", "b", "c"]], df["apples"].to_numpy())
    tlr.save(ridge, HERE / "library-ridge.safetensors")

    X = df[["a", "b", "c"]].to_numpy()
    expected = {}
    for name in ("exact-qr", "gram-ridge", "sgd", "library-ridge"):
        model = tlr.load(HERE / f"{name}.safetensors")
        expected[name] = {
            "coef": np.asarray(model.coef_).tolist(),
            "intercept": np.asarray(model.intercept_).tolist(),
            "predict": np.asarray(model.predict(X)).tolist(),
        }
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")

    # What the commands printed for them, byte for byte (the model's path as MODEL).
    from torchlinreg.cli.app import run

    for name in ("exact-qr", "gram-ridge", "sgd", "library-ridge"):
        model = HERE / f"{name}.safetensors"
        commands = [["summary"], ["evaluate", "--json"], ["evaluate"], ["predict"]]
        if name == "library-ridge":  # its target is unnamed (target_0): nothing to evaluate
            commands = [["summary"], ["predict"]]
        for command in commands:
            args = [*command, str(model)] + ([] if command == ["summary"] else [str(more)])
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                assert run(args) == 0
            text = out.getvalue().replace(str(model), "MODEL").replace(str(more), "DATA")
            (HERE / "cli" / f"{name}.{'-'.join(c.strip('-') for c in command)}.txt").write_text(
                text
            )


if __name__ == "__main__":
    main()
