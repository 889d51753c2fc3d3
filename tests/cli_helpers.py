"""Shared helpers for the CLI tests: run the tool in-process, write data files."""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from torchlinreg.cli.app import run

SRC = str(Path(__file__).resolve().parents[1] / "src")


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)

    def assert_one_error_line(self, code: int, *needles: str) -> str:
        """Exactly one line on stderr, no traceback, the exit code, and the given texts."""
        assert self.code == code, (self.code, self.err)
        assert "Traceback" not in self.err
        lines = self.err.splitlines()
        assert len(lines) == 1, self.err
        line = lines[0]
        assert line.startswith("torchlinreg: error: "), line
        for needle in needles:
            assert needle in line, (needle, line)
        return line


def cli(capsys, *args) -> Result:
    """Run ``torchlinreg ARGS`` in this process and return its exit code and output."""
    capsys.readouterr()
    code = run([str(a) for a in args])
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Three features on different scales, a text column, two targets and a weight."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rng.normal(10.0, 5.0, size=n)
    c = rng.uniform(-100, 100, size=n)
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


FEATURES = ["a", "b", "c"]
TARGETS = ["apples", "oranges"]


def write(df: pd.DataFrame, path: Path, kind: str = "csv") -> Path:
    """Write ``df`` as ``kind``: csv, parquet, csv.gz, semicolon (;-delimited), bom."""
    if kind == "parquet":
        df.to_parquet(path, index=False)
        return path
    text = df.to_csv(
        index=False, sep=";" if kind == "semicolon" else ",", float_format=lambda v: repr(float(v))
    )
    data = text.encode("utf-8")
    if kind == "bom":
        data = b"\xef\xbb\xbf" + data
    if kind == "csv.gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def read_csv_text(text: str) -> pd.DataFrame:
    """CSV text as a DataFrame, floats parsed exactly (pyarrow rounds correctly)."""
    import pyarrow.csv as pacsv

    return pacsv.read_csv(io.BytesIO(text.encode())).to_pandas()


def subprocess_env() -> dict[str, str]:
    """The environment of a child ``torchlinreg``: this checkout's sources, and this process's
    intra-op thread count, since BLAS results can differ in the last bit between thread counts
    and the resume tests compare a child's model with one trained here, bit for bit."""
    import torch

    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(torch.get_num_threads())
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("TORCHLINREG_DEBUG", None)
    return env


PYTHON = sys.executable


def statsmodels_by_group(train: pd.DataFrame, new: pd.DataFrame, by: str = "store") -> np.ndarray:
    """Each row of ``new`` predicted by statsmodels' OLS of y on x1, x2 over its own group
    of ``train`` (the reference for routed predictions)."""
    import statsmodels.api as sm

    want = np.empty(len(new))
    for label in new[by].unique():
        part = train[train[by] == label]
        ref = sm.OLS(part.y, sm.add_constant(part[["x1", "x2"]])).fit()
        m = (new[by] == label).to_numpy()
        want[m] = ref.predict(sm.add_constant(new.loc[m, ["x1", "x2"]], has_constant="add"))
    return want


def write_lines(path: Path, lines: list[str], layout: str) -> tuple[Path, int]:
    """``lines`` written as a CSV file (CRLF where ``layout`` says so), and the line of the
    one row ending ",BAD", counted as an editor counts: a value's own "\\n" starts a line in
    a CRLF file too."""
    newline = "\r\n" if "CRLF" in layout else "\n"
    content = newline.join(lines) + newline
    path.write_bytes(content.encode())
    found = [n for n, line in enumerate(content.splitlines(), 1) if line.endswith(",BAD")]
    assert len(found) == 1
    return path, found[0]
