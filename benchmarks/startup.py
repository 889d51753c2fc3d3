"""How fast the command starts and what the first fit of a process costs.

Each measurement runs in a fresh interpreter, ``--repeat`` times (medians):

1. the command: ``torchlinreg --version``, ``--help`` and ``train --help`` (wall time of the
   whole process), and the modules they import, which must include none of torch, pyarrow,
   scipy, matplotlib or pandas;
2. ``python -X importtime -c "import torchlinreg.cli"``: the package's own import time;
3. per solver, on the walk-through's crop data: ``import torchlinreg`` (lazy, NOTE [lazy
   imports]), the first use of ``tlr.LinearRegression`` (this is where torch, numpy, scipy
   and the engines are imported), then three fits of fresh estimators in the same process:
   the first fit's extra cost over the second is what the process pays once (target: at
   most 0.3 s for every solver). Exact solvers also time ``results_.summary()``.

Usage::

    python benchmarks/startup.py               # 5 repeats
    python benchmarks/startup.py --repeat 3 --json out.json
    python benchmarks/startup.py --src ../old-tree/src      # the same for another tree
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
HEAVY = ("torch", "pyarrow", "scipy", "matplotlib", "pandas", "numpy")
SOLVERS = ("qr", "gram", "gd", "sgd", "adam", "lbfgs")

COMMAND = """
import json, sys
from torchlinreg.cli import run
code = run({args!r})
print("RESULT", json.dumps([m for m in {heavy!r} if m in sys.modules]), file=sys.stderr)
"""

FIRST_FIT = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
t = time.perf_counter()
import torchlinreg as tlr
t_import = time.perf_counter() - t
t = time.perf_counter()
Est = tlr.LinearRegression
crops = tlr.datasets.load_crops()
t_names = time.perf_counter() - t
fits, summaries = [], []
for _ in range(3):
    est = Est(solver={solver!r}, random_state=0)
    t = time.perf_counter()
    est.fit(crops.data, crops.target)
    fits.append(time.perf_counter() - t)
    if {solver!r} in ("qr", "gram"):
        t = time.perf_counter()
        est.results_.summary()
        summaries.append(time.perf_counter() - t)
print("RESULT", json.dumps([t_import, t_names, fits, summaries, "torch._dynamo" in sys.modules]))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("OMP_NUM_THREADS", None)
    return env


def command_times(repeat: int) -> dict[str, dict]:
    out = {}
    for args in (["--version"], ["--help"], ["train", "--help"]):
        walls, heavy = [], set()
        for _ in range(repeat):
            code = COMMAND.format(args=args, heavy=HEAVY)
            t0 = time.perf_counter()
            r = subprocess.run(
                [sys.executable, "-c", code], env=_env(), capture_output=True, text=True
            )
            walls.append(time.perf_counter() - t0)
            line = next(ln for ln in r.stderr.splitlines() if ln.startswith("RESULT"))
            heavy.update(json.loads(line.removeprefix("RESULT")))
        out[" ".join(args)] = {"wall_s": statistics.median(walls), "heavy_imports": sorted(heavy)}
    return out


def import_time(repeat: int) -> float:
    totals = []
    for _ in range(repeat):
        r = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import torchlinreg.cli"],
            env=_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        last = [ln for ln in r.stderr.splitlines() if ln.rstrip().endswith("torchlinreg.cli")]
        totals.append(int(last[-1].split("|")[1]) / 1e6)
    return statistics.median(totals)


def first_fits(repeat: int) -> dict[str, dict]:
    out = {}
    for solver in SOLVERS:
        rows = []
        for _ in range(repeat):
            r = subprocess.run(
                [sys.executable, "-c", FIRST_FIT.format(solver=solver)],
                env=_env(),
                capture_output=True,
                text=True,
                check=True,
            )
            line = next(ln for ln in r.stdout.splitlines() if ln.startswith("RESULT"))
            rows.append(json.loads(line.removeprefix("RESULT")))
        med = statistics.median
        out[solver] = {
            "import_torchlinreg_s": med(r[0] for r in rows),
            "first_name_s": med(r[1] for r in rows),
            "first_fit_s": med(r[2][0] for r in rows),
            "second_fit_s": med(r[2][1] for r in rows),
            "extra_s": med(r[2][0] - r[2][1] for r in rows),
            "first_summary_s": med(r[3][0] for r in rows) if rows[0][3] else None,
            "second_summary_s": med(r[3][1] for r in rows) if rows[0][3] else None,
            "dynamo_imported": any(r[4] for r in rows),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", default=None)
    parser.add_argument("--src", default=None, help="time another source tree (e.g. a release)")
    args = parser.parse_args()
    if args.src:
        global SRC
        SRC = str(Path(args.src).resolve())
    result = {
        "commands": command_times(args.repeat),
        "import_torchlinreg_cli_s": import_time(args.repeat),
        "first_fit": first_fits(args.repeat),
    }
    print(
        f"python -X importtime: import torchlinreg.cli {result['import_torchlinreg_cli_s']:.3f} s"
    )
    for name, r in result["commands"].items():
        print(f"torchlinreg {name:12s} {r['wall_s']:.3f} s  heavy imports: {r['heavy_imports']}")
    print("solver  import  first name  first fit  second fit  extra   summary 1st/2nd  dynamo")
    for solver, r in result["first_fit"].items():
        summ = (
            f"{r['first_summary_s']:.3f}/{r['second_summary_s']:.3f}"
            if r["first_summary_s"] is not None
            else "-"
        )
        print(
            f"{solver:6s}  {r['import_torchlinreg_s']:.3f}   {r['first_name_s']:.3f}       "
            f"{r['first_fit_s']:.3f}      {r['second_fit_s']:.3f}       {r['extra_s']:.3f}   "
            f"{summ:15s}  {r['dynamo_imported']}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
