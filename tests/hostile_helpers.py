"""Helpers of the hostile-input tests: peak memory of a case, forged files, file snapshots."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cli_helpers import SRC, Result, cli

# A child `torchlinreg` that imports torch and pyarrow peaks near 350 MB on the project
# machine; the attacks this bounds cost 2.4 GB to 20 GB before the fixes.
CHILD_PEAK_MB = 1000
# In-process cases: what a case may add to this process's peak (a forged file is a few KB).
CASE_GROWTH_MB = 200
# A child is never allowed this much address space, so a regression fails the test
# instead of exhausting the shared machine's memory.
_CHILD_AS_LIMIT = 8 << 30


@dataclass
class Child(Result):
    peak_mb: float = 0.0


def run_child(args, *, cwd=None, env_extra: dict | None = None, timeout: float = 180) -> Child:
    """``python -m torchlinreg ARGS`` in a fresh process: exit code, output, its own peak RSS
    (``wait4``: this child's alone, not the largest child so far)."""
    env = {**os.environ, "PYTHONPATH": SRC, **(env_extra or {})}
    env.pop("TORCHLINREG_DEBUG", None)

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (_CHILD_AS_LIMIT, _CHILD_AS_LIMIT))

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "torchlinreg", *map(str, args)],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=err,
            preexec_fn=limit,
        )
        try:
            _, status, usage = _wait4(proc, timeout)
        finally:
            if proc.returncode is None:
                proc.kill()
        out.seek(0)
        err.seek(0)
        return Child(
            os.waitstatus_to_exitcode(status),
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            usage.ru_maxrss / 1024,
        )


def _wait4(proc: subprocess.Popen, timeout: float):
    import time

    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return pid, status, usage
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            raise AssertionError(f"timed out after {timeout} s")
        time.sleep(0.02)


def _vm(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])  # kB
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset this process's peak RSS (Linux: write 5 to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cli_with_peak(capsys, *args) -> tuple[Result, float]:
    """Run the CLI in this process; also return how far above its starting RSS this
    process's peak went during the run (MB), from VmHWM after a reset."""
    start = _vm("VmRSS")
    if _reset_peak() and start is not None:
        r = cli(capsys, *args)
        return r, max(0, (_vm("VmHWM") or 0) - start) / 1024
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = cli(capsys, *args)
    return r, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


def digest(path) -> str | None:
    """A file's SHA-256 (None when it does not exist): 'no file damaged' compares these."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def snapshot(folder) -> dict[str, str | None]:
    """Every file of a folder and its digest."""
    return {p.name: digest(p) for p in sorted(Path(folder).iterdir()) if p.is_file()}


def split_safetensors(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def join_safetensors(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + body


_TORCH_DTYPES = {"F64": "torch.float64", "F32": "torch.float32", "I64": "torch.int64"}


def checksum(header: dict, body: bytes) -> str:
    """The file's sha256 as torchlinreg defines it (the metadata strings, then each
    tensor's name, dtype, shape and bytes), written out here as a forger would."""
    meta = header["__metadata__"]
    h = hashlib.sha256()
    h.update(json.dumps({k: v for k, v in meta.items() if k != "sha256"}, sort_keys=True).encode())
    for name in sorted(k for k in header if k != "__metadata__"):
        entry = header[name]
        lo, hi = entry["data_offsets"]
        h.update(json.dumps([name, _TORCH_DTYPES[entry["dtype"]], entry["shape"]]).encode())
        h.update(body[lo:hi])
    return h.hexdigest()


def rewrite_record(data: bytes, edit) -> bytes:
    """The model file ``data`` with its JSON record changed by ``edit(record)`` and the
    checksum recomputed, as a forger who read the format would do."""
    header, body = split_safetensors(data)
    meta = header["__metadata__"]
    record = json.loads(meta["torchlinreg"])
    edit(record)
    meta["torchlinreg"] = json.dumps(record)
    meta["sha256"] = checksum(header, body)
    return join_safetensors(header, body)


def one_error_line(r: Result, code: int = 2) -> str:
    """The single error line of a refused run (no traceback, no 'this is a bug')."""
    line = r.assert_one_error_line(code)
    assert "this is a bug" not in line, line
    assert "\x1b" not in r.err and "\x07" not in r.err
    return line
