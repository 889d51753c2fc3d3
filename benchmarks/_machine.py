"""What a benchmark run records about the machine: CPU, versions, load, BLAS, source tree."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path


def print_environment(info: dict) -> None:
    print("# torchlinreg benchmark")
    keys = ("date", "machine", "cpu", "cores", "load_before", "threads", "versions")
    for key in (*keys, "torchlinreg_src"):
        print(f"{key}: {info[key]}")
    print(info["openblas_note"])


def blas_summary(all_results: dict[str, dict[str, dict]]) -> list[str]:
    seen = set()
    for results in all_results.values():
        for res in results.values():
            for lib in res.get("blas", []):
                desc = ", ".join(
                    f"{k}={lib[k]}"
                    for k in ("internal_api", "version", "architecture", "num_threads")
                    if k in lib
                )
                seen.add(f"{desc} ({Path(lib.get('prefix') or '?').name})")
    return sorted(seen)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def versions() -> str:
    names = ("torch", "numpy", "scipy", "scikit-learn", "statsmodels", "threadpoolctl")
    out = []
    for name in names:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name} -")
    return ", ".join(out)


def loadavg() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def git_head(src: str) -> str:
    """The commit of the timed source tree, ``+dirty`` when it has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", src, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", src, "status", "--porcelain", "."], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "?"
    return (head or "?") + ("+dirty" if dirty else "")
