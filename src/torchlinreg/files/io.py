"""Safe files: atomic writes, model files (safetensors + JSON metadata), prediction tables.

# NOTE [atomic writes]
# A file is written to a temporary name in the target's own folder (same file system, so the
# rename is atomic), flushed and fsync'ed, then ``os.replace``d over the target; the folder is
# fsync'ed so the rename itself survives a power cut. On any failure, KeyboardInterrupt
# included, the temporary file is removed and an existing target is left as it was. A process
# killed outright (SIGKILL) can leave a ``.<name>.*.tmp`` file behind, never a partial target.
# Writing through a symlink replaces the file it points at; a target that is not a regular
# file (/dev/stdout, a named pipe) is written directly, as there is nothing to rename over.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import stat
import struct
import sys
import tempfile
from collections.abc import Callable
from typing import TextIO

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError, ModelFileError

FORMAT = "torchlinreg-model"
FORMAT_VERSION = "1"
_META_KEY = "torchlinreg"
_MAX_HEADER = 100_000_000


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, write_fn: Callable[[str], None]) -> None:
    """Write ``path`` atomically: ``write_fn(tmp_path)`` writes a temp file that replaces it.

    See NOTE [atomic writes]. Raises :class:`OSError` with a one-line message naming the
    path when the folder is missing or not writable; errors from ``write_fn`` propagate.

    Example:
        >>> atomic_write("out.txt", lambda tmp: open(tmp, "w").write("hi"))  # doctest: +SKIP
    """
    path = os.fspath(path)
    if _is_special(path):
        # /dev/stdout, a pipe, a device: nothing to rename over (and, run as root, renaming
        # would replace the device node itself), so write straight to it.
        write_fn(path)
        return
    # Through a symlink, the file it points at is replaced, and the link stays a link.
    shown, path = path, os.path.realpath(path)
    folder = os.path.dirname(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise type(exc)(
            exc.errno,
            f"cannot write {shown}: {exc.strerror}; check that the folder exists and is writable",
        ) from None
    os.close(fd)
    try:
        write_fn(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        _keep_mode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


def _is_special(path: str) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _keep_mode(path: str, tmp: str) -> None:
    # mkstemp creates 0600; give the new file the old file's mode, or the usual umask default.
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    os.chmod(tmp, mode)


def _umask() -> int:
    # Linux shows the umask in /proc; elsewhere set-and-restore (briefly process-wide).
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`).

    Example:
        >>> atomic_write_bytes("model.bin", b"\\x00\\x01")  # doctest: +SKIP
    """

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    atomic_write(path, write)


def save_tensors(
    path, tensors: dict[str, Tensor], metadata: dict, *, file_format: str = FORMAT
) -> None:
    """Save tensors and JSON-able ``metadata`` as one ``.safetensors`` file, atomically.

    The metadata is stored as a JSON string under the header key ``"torchlinreg"``, next to
    ``"format": "torchlinreg-model"``, ``"format_version": "1"`` and ``"sha256"``, a digest
    of the metadata and tensors that lets :func:`load_tensors` notice damaged files.

    Example:
        >>> tensors = {"weight": torch.ones(1, 3)}
        >>> save_tensors("m.safetensors", tensors, {"solver": "qr"})  # doctest: +SKIP
    """
    from safetensors.torch import save

    # clone: safetensors refuses tensors that share memory (a bias that is a view of W)
    cpu = {
        k: v.detach().to("cpu").clone(memory_format=torch.contiguous_format)
        for k, v in tensors.items()
    }
    header = {
        _META_KEY: json.dumps(metadata, allow_nan=True, sort_keys=True),
        "format": file_format,
        "format_version": FORMAT_VERSION,
    }
    header["sha256"] = _digest(cpu, header)
    atomic_write_bytes(path, save(cpu, metadata=header))


def _digest(tensors: dict[str, Tensor], meta: dict[str, str]) -> str:
    """SHA-256 over the metadata strings and every tensor's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    h.update(json.dumps({k: v for k, v in meta.items() if k != "sha256"}, sort_keys=True).encode())
    for name in sorted(tensors):
        t = tensors[name]
        h.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _fail(path: str, what: str, todo: str) -> ModelFileError:
    return ModelFileError(f"{path}: {what}; {todo}")


def _read_header(path: str, data: bytes) -> dict:
    """Check the safetensors layout ourselves, so every corruption gets a clear message."""
    bad = "pass a model file written by torchlinreg (.safetensors)"
    if len(data) < 8:
        raise _fail(path, "not a safetensors file (too short)", bad)
    (n,) = struct.unpack("<Q", data[:8])
    if n > min(len(data) - 8, _MAX_HEADER) or n < 2:
        raise _fail(path, "not a safetensors file, or truncated (bad header length)", bad)
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _fail(path, "not a safetensors file, or corrupt (header is not JSON)", bad) from None
    if not isinstance(header, dict):
        raise _fail(path, "corrupt safetensors header (not a JSON object)", bad)
    body = len(data) - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= body
        ):
            raise _fail(
                path,
                f"truncated or corrupt: tensor {name!r} lies outside the file",
                "re-save or restore the model file",
            )
    return header


def _check_metadata(path: str, header: dict, expected_format: str) -> dict:
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or _META_KEY not in meta or "format" not in meta:
        raise _fail(
            path, "a safetensors file without torchlinreg metadata", "pass a torchlinreg model file"
        )
    if meta.get("format") != expected_format:
        raise _fail(
            path,
            f"format is {meta.get('format')!r}, expected {expected_format!r}",
            "pass the right kind of file",
        )
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise _fail(
            path,
            f"format_version {version!r} is not supported "
            f"(this torchlinreg reads {FORMAT_VERSION!r})",
            "upgrade torchlinreg to read files from newer versions",
        )
    try:
        info = json.loads(meta[_META_KEY])
    except (json.JSONDecodeError, TypeError):
        raise _fail(
            path, "the torchlinreg metadata is not valid JSON", "re-save the model"
        ) from None
    if not isinstance(info, dict):
        raise _fail(path, "the torchlinreg metadata is not a JSON object", "re-save the model")
    return info


def load_tensors(path, *, expected_format: str = FORMAT) -> tuple[dict[str, Tensor], dict]:
    """Load ``(tensors on CPU, metadata dict)`` written by :func:`save_tensors`.

    Raises :class:`ModelFileError` (one line: path, what, what to do) for a missing file, a
    file that is not safetensors, truncated or corrupt, not ours, or of an unknown version.
    Never executes code from the file.

    Example:
        >>> tensors, meta = load_tensors("m.safetensors")  # doctest: +SKIP
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise _fail(path, "file not found", "check the path") from None
    except IsADirectoryError:
        raise _fail(path, "is a folder, not a model file", "pass the .safetensors file") from None
    except OSError as exc:
        raise _fail(
            path, f"cannot read the file ({exc.strerror})", "check its permissions"
        ) from None
    header = _read_header(path, data)
    info = _check_metadata(path, header, expected_format)
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError, TypeError, KeyError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _fail(
            path, f"corrupt safetensors file ({first})", "re-save or restore the model file"
        ) from None
    meta = header["__metadata__"]
    if meta.get("sha256") is not None and meta["sha256"] != _digest(tensors, meta):
        raise _fail(path, "damaged: tensor data does not match its checksum", "restore the file")
    return tensors, info


def _as_table(columns: dict[str, np.ndarray]):
    import pyarrow as pa

    arrays = {str(k): np.asarray(v) for k, v in columns.items()}
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) > 1:
        raise DataError(
            f"columns have different lengths {sorted(lengths)}; pass equal-length columns"
        )
    for k, a in arrays.items():
        if a.ndim != 1:
            raise DataError(f"column {k!r} must be 1-D, got shape {a.shape}")
    return pa.table({k: pa.array(a) for k, a in arrays.items()})


def _write_csv_text(stream, table, chunk_rows: int = 65536, delimiter: str = ",") -> None:
    import csv

    import pyarrow.csv as pacsv

    # The header goes through the csv module (quotes only where needed); the rows through
    # Arrow, which writes each float64 as its shortest round-trip text, like repr, so values
    # read back bit for bit (the tests check it against float()).
    csv.writer(stream, delimiter=delimiter, lineterminator="\n").writerow(table.column_names)
    options = pacsv.WriteOptions(include_header=False, delimiter=delimiter)
    for batch in table.to_batches(max_chunksize=chunk_rows):
        buf = io.BytesIO()
        pacsv.write_csv(batch, buf, write_options=options)
        stream.write(buf.getvalue().decode("utf-8"))


def write_csv(stream: TextIO, columns: dict[str, np.ndarray]) -> None:
    """Write columns as CSV text to an open text stream (e.g. ``sys.stdout``), in chunks.

    Example:
        >>> write_csv(sys.stdout, {"y": np.array([1.5, 0.1])})
        y
        1.5
        0.1
    """
    _write_csv_text(stream, _as_table(columns))


def write_table(path, columns: dict[str, np.ndarray]) -> None:
    """Write columns to ``path`` atomically: Parquet for ``.parquet``/``.pq``, else CSV.

    CSV is tab-separated for ``.tsv``, and gzip'd when the name ends in ``.gz``
    (``pred.csv.gz``). ``path="-"`` writes CSV to standard output. CSV floats read back bit for bit.

    Example:
        >>> write_table("pred.csv", {"apples": np.array([56.1, 81.2])})  # doctest: +SKIP
    """
    if path == "-":
        write_csv(sys.stdout, columns)
        return
    path = os.fspath(path)
    table = _as_table(columns)
    if path.lower().endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        atomic_write(path, lambda tmp: pq.write_table(table, tmp))
        return

    name = path.lower().removesuffix(".gz")
    delimiter = "\t" if name.endswith((".tsv", ".tab")) else ","
    opener = gzip.open if path.lower().endswith(".gz") else open

    def write(tmp: str) -> None:
        with opener(tmp, "wt", encoding="utf-8", newline="") as f:
            _write_csv_text(f, table, delimiter=delimiter)

    atomic_write(path, write)


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "atomic_write",
    "atomic_write_bytes",
    "load_tensors",
    "save_tensors",
    "write_csv",
    "write_table",
]
