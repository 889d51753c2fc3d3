"""Safetensors files with a JSON record and a checksum, read as a hostile file would be.

# NOTE [reading untrusted files]
# A model or checkpoint file may come from anyone. It is read without trusting anything it
# claims: the file's size is capped (``TORCHLINREG_MAX_FILE_BYTES``, default 4 GiB) and read
# in chunks, so /dev/zero or a pipe that never ends is refused, not swallowed; the header is
# capped at 16 MiB, its tensor entries are checked (known dtype, shape that matches its bytes,
# offsets that tile the data exactly) before a byte of tensor data is read, and the JSON
# record is checked for nesting depth and size before it is used. Memory is then at most about
# twice the file's real size, never what its header claims. The checksum is required.
# Callers check what the tensors and record mean (``estimator/modelfile.py``,
# ``iterative/checkpoint.py``) before allocating anything they describe.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
from typing import Any

import torch
from torch import Tensor

from ..errors import ModelFileError
from .atomic import atomic_write_bytes

FORMAT = "torchlinreg-model"
FORMAT_VERSION = "1"
_META_KEY = "torchlinreg"
MAX_HEADER_BYTES = 16 << 20
MAX_TENSORS = 4096
MAX_DEPTH = 64
MAX_CONTAINERS = 100_000  # JSON objects and arrays in the record
_DEFAULT_MAX_FILE = 4 << 30
_CHUNK = 1 << 20
_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_BAD = "pass a model file written by torchlinreg (.safetensors)"
_DAMAGED = "re-save or restore the file"


def max_file_bytes() -> int:
    """The size cap on model and checkpoint files (``TORCHLINREG_MAX_FILE_BYTES``)."""
    try:
        return max(1, int(os.environ.get("TORCHLINREG_MAX_FILE_BYTES", _DEFAULT_MAX_FILE)))
    except ValueError:
        return _DEFAULT_MAX_FILE


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
    h = _digest_start(header)
    for name in sorted(cpu):
        t = cpu[name]
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        _digest_tensor(h, name, t.dtype, list(t.shape), raw)
    header["sha256"] = h.hexdigest()
    atomic_write_bytes(path, save(cpu, metadata=header))


def _digest_start(meta: dict[str, str]):
    """SHA-256 over the metadata strings, then each tensor's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    h.update(json.dumps({k: v for k, v in meta.items() if k != "sha256"}, sort_keys=True).encode())
    return h


def _digest_tensor(h, name: str, dtype: torch.dtype, shape: list[int], raw) -> None:
    h.update(json.dumps([name, str(dtype), shape]).encode())
    h.update(raw)


def _fail(path: str, what: str, todo: str) -> ModelFileError:
    return ModelFileError(f"{path}: {what}; {todo}")


def _read_exactly(f, n: int, path: str, what: str) -> bytes:
    """``n`` bytes, read in chunks: memory follows what the file holds, not what it claims."""
    parts, got = [], 0
    while got < n:
        chunk = f.read(min(_CHUNK, n - got))
        if not chunk:
            raise _fail(path, f"truncated ({what} ends early)", _DAMAGED)
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _open(path: str):
    try:
        f = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        raise _fail(path, "file not found", "check the path") from None
    except IsADirectoryError:
        raise _fail(path, "is a folder, not a model file", "pass the .safetensors file") from None
    except OSError as exc:
        raise _fail(
            path, f"cannot read the file ({exc.strerror})", "check its permissions"
        ) from None
    return f


def _read(path: str) -> tuple[dict, bytes]:
    """(parsed header, tensor data) of the file, every size checked before it is read."""
    cap = max_file_bytes()
    with _open(path) as f:
        info = os.fstat(f.fileno())
        regular = stat.S_ISREG(info.st_mode)
        if regular and info.st_size > cap:
            raise _fail(
                path,
                f"the file is {info.st_size:,} bytes, over the {cap:,}-byte cap on model files",
                "check that it is a torchlinreg file, or raise TORCHLINREG_MAX_FILE_BYTES",
            )
        head = f.read(8)
        if len(head) < 8:
            raise _fail(path, "not a safetensors file (too short)", _BAD)
        (n,) = struct.unpack("<Q", head)
        limit = min(MAX_HEADER_BYTES, (info.st_size - 8) if regular else cap)
        if n < 2 or n > limit:
            raise _fail(path, "not a safetensors file, or truncated (bad header length)", _BAD)
        header = _parse_header(path, _read_exactly(f, n, path, "header"))
        end = _check_entries(path, header)
        if regular and info.st_size != 8 + n + end:
            raise _fail(
                path,
                f"truncated or corrupt: tensor data lies outside the file (the header "
                f"describes {8 + n + end:,} bytes, the file has {info.st_size:,})",
                _DAMAGED,
            )
        if 8 + n + end > cap:
            raise _fail(path, f"the tensors claim more than the {cap:,}-byte cap", _BAD)
        data = _read_exactly(f, end, path, "tensor data")
        if not regular and f.read(1):
            raise _fail(path, "corrupt: bytes after the last tensor", _DAMAGED)
    return header, data


def _parse_header(path: str, raw: bytes) -> dict:
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise _fail(path, "not a safetensors file, or corrupt (header is not JSON)", _BAD) from None
    if not isinstance(header, dict):
        raise _fail(path, "corrupt safetensors header (not a JSON object)", _BAD)
    if len(header) > MAX_TENSORS + 1:
        raise _fail(path, f"corrupt: more than {MAX_TENSORS} tensors", _BAD)
    return header


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_entries(path: str, header: dict) -> int:
    """Check every tensor entry; return the length of the data they tile exactly."""
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_int(o) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            raise _fail(
                path, f"truncated or corrupt: tensor {name!r} lies outside the file", _DAMAGED
            )
        dtype, shape = entry.get("dtype"), entry.get("shape")
        if dtype not in _DTYPES:
            raise _fail(
                path, f"tensor {name!r} has an unsupported dtype {str(dtype)[:20]!r}", _DAMAGED
            )
        if (
            not isinstance(shape, list)
            or len(shape) > 8
            or not all(_is_int(s) and s >= 0 for s in shape)
        ):
            raise _fail(path, f"corrupt: tensor {name!r} has an invalid shape", _DAMAGED)
        size = _DTYPES[dtype].itemsize
        for s in shape:
            size *= s
        if size != offsets[1] - offsets[0]:
            raise _fail(
                path,
                f"truncated or corrupt: tensor {name!r} has {offsets[1] - offsets[0]} bytes, its "
                f"shape needs {size}",
                _DAMAGED,
            )
        spans.append((offsets[0], offsets[1]))
    pos = 0
    for lo, hi in sorted(spans):
        if lo != pos:
            raise _fail(path, "corrupt: tensor data overlap or leave gaps", _DAMAGED)
        pos = hi
    return pos


def _check_metadata(path: str, header: dict, expected_format: str) -> dict:
    meta = header.get("__metadata__")
    if (
        not isinstance(meta, dict)
        or _META_KEY not in meta
        or "format" not in meta
        or not all(isinstance(v, str) for v in meta.values())
    ):
        raise _fail(
            path, "a safetensors file without torchlinreg metadata", "pass a torchlinreg model file"
        )
    if meta.get("format") != expected_format:
        raise _fail(
            path,
            f"format is {meta.get('format')[:40]!r}, expected {expected_format!r}",
            "pass the right kind of file",
        )
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise _fail(
            path,
            f"format_version {str(version)[:20]!r} is not supported "
            f"(this torchlinreg reads {FORMAT_VERSION!r})",
            "upgrade torchlinreg to read files from newer versions",
        )
    info = parse_record(path, meta[_META_KEY])
    if "sha256" not in meta:
        raise _fail(path, "the file has no checksum (sha256)", "re-save it with torchlinreg")
    return info


def parse_record(path: str, text: str) -> dict:
    """The JSON record, refused when it nests deeper than MAX_DEPTH or holds too much."""
    if text.count("{") + text.count("[") > MAX_CONTAINERS:
        raise _fail(path, "the torchlinreg metadata is too large", "re-save the model")
    try:
        info = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        raise _fail(
            path, "the torchlinreg metadata is not valid JSON", "re-save the model"
        ) from None
    except RecursionError:
        info = None
        depth = MAX_DEPTH + 1
    else:
        depth = _depth(info)
    if depth > MAX_DEPTH:
        raise _fail(
            path, f"the torchlinreg metadata nests deeper than {MAX_DEPTH} levels", _DAMAGED
        )
    if not isinstance(info, dict):
        raise _fail(path, "the torchlinreg metadata is not a JSON object", "re-save the model")
    return info


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict | list):
            deepest = max(deepest, d)
            if d <= MAX_DEPTH:
                stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


def load_tensors(path, *, expected_format: str = FORMAT) -> tuple[dict[str, Tensor], dict]:
    """Load ``(tensors on CPU, metadata dict)`` written by :func:`save_tensors`.

    Raises :class:`ModelFileError` (one line: path, what, what to do) for a missing file, a
    file that is not safetensors, truncated, corrupt, over the size cap, without a checksum or
    not matching it, not ours, or of an unknown version (NOTE [reading untrusted files]).
    Never executes code from the file.

    Example:
        >>> tensors, meta = load_tensors("m.safetensors")  # doctest: +SKIP
    """
    path = os.fspath(path)
    header, data = _read(path)
    info = _check_metadata(path, header, expected_format)
    meta = header["__metadata__"]
    h = _digest_start(meta)
    tensors = {}
    view = memoryview(data)
    for name in sorted(k for k in header if k != "__metadata__"):
        entry = header[name]
        lo, hi = entry["data_offsets"]
        dtype = _DTYPES[entry["dtype"]]
        _digest_tensor(h, name, dtype, entry["shape"], view[lo:hi])
        flat = torch.frombuffer(bytearray(view[lo:hi]), dtype=dtype) if hi > lo else None
        tensors[name] = (
            flat.reshape(entry["shape"])
            if flat is not None
            else torch.zeros(entry["shape"], dtype=dtype)
        )
    if meta["sha256"] != h.hexdigest():
        raise _fail(path, "damaged: tensor data does not match its checksum", "restore the file")
    return tensors, info


__all__ = ["FORMAT", "FORMAT_VERSION", "load_tensors", "max_file_bytes", "save_tensors"]
