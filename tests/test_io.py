"""Safe files (torchlinreg.files.io): atomic writes, model files, prediction tables."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import save as st_save

from torchlinreg.errors import DataError, ModelFileError
from torchlinreg.files.io import (
    atomic_write,
    atomic_write_bytes,
    load_tensors,
    save_tensors,
    write_csv,
    write_table,
    write_table_blocks,
)

TENSORS = {
    "weight": torch.tensor([[1.5, -2.25, 1e-300]], dtype=torch.float64),
    "bias": torch.tensor([3.0], dtype=torch.float64),
    "scale": torch.arange(4, dtype=torch.float32),
}
META = {"feature_names": ["temp", "rain", "hum"], "solver": "qr", "alpha": 0.5, "n": None}


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a
    )


@pytest.fixture
def model_bytes(tmp_path) -> bytes:
    path = tmp_path / "m.safetensors"
    save_tensors(path, TENSORS, META)
    return path.read_bytes()


def test_round_trip_keeps_tensors_dtypes_and_metadata(tmp_path):
    path = tmp_path / "m.safetensors"
    save_tensors(path, TENSORS, META)
    tensors, meta = load_tensors(path)
    assert _equal(tensors, TENSORS) and meta == META
    assert all(t.device.type == "cpu" for t in tensors.values())


def test_views_and_shared_memory_tensors_are_saved(tmp_path):
    base = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    tensors = {"w": base, "wt": base.T, "row": base[1]}
    save_tensors(tmp_path / "v.safetensors", tensors, {})
    loaded, _ = load_tensors(tmp_path / "v.safetensors")
    assert all(torch.equal(loaded[k], tensors[k]) for k in tensors)


def test_header_carries_format_and_version(model_bytes):
    (n,) = struct.unpack("<Q", model_bytes[:8])
    header = json.loads(model_bytes[8 : 8 + n])["__metadata__"]
    assert header["format"] == "torchlinreg-model" and header["format_version"] == "1"
    assert json.loads(header["torchlinreg"]) == META


def test_truncation_at_any_offset_is_refused(tmp_path, model_bytes):
    path = tmp_path / "t.safetensors"
    for k in range(len(model_bytes)):
        path.write_bytes(model_bytes[:k])
        with pytest.raises(ModelFileError, match=r"t\.safetensors: "):
            load_tensors(path)


def test_random_byte_flips_are_refused_or_harmless(tmp_path, model_bytes):
    # a flip may land in JSON padding or make an equivalent header; then the load must give
    # exactly the original content, never different numbers
    rng = np.random.default_rng(0)
    path = tmp_path / "f.safetensors"
    refused = 0
    for _ in range(400):
        data = bytearray(model_bytes)
        i = int(rng.integers(len(data)))
        data[i] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(data))
        try:
            tensors, meta = load_tensors(path)
        except ModelFileError as exc:
            assert "\n" not in str(exc)
            refused += 1
            continue
        assert _equal(tensors, TENSORS) and meta == META
    assert refused > 350


def test_flipped_tensor_data_is_caught_by_the_checksum(tmp_path, model_bytes):
    data = bytearray(model_bytes)
    data[-1] ^= 0x01  # last byte of the last tensor's data
    path = tmp_path / "f.safetensors"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="does not match its checksum"):
        load_tensors(path)


def test_a_pickle_renamed_to_safetensors_is_refused_without_running_it(tmp_path):
    path = tmp_path / "evil.safetensors"
    torch.save({"weight": torch.ones(2)}, path)
    with pytest.raises(ModelFileError, match="not a safetensors file"):
        load_tensors(path)


def test_someone_elses_safetensors_file_is_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    path.write_bytes(st_save({"w": torch.ones(2)}))
    with pytest.raises(ModelFileError, match="without torchlinreg metadata"):
        load_tensors(path)
    path.write_bytes(st_save({"w": torch.ones(2)}, metadata={"format": "pt"}))
    with pytest.raises(ModelFileError, match="without torchlinreg metadata"):
        load_tensors(path)


@pytest.mark.parametrize(
    "metadata, pattern",
    [
        (
            {"format": "torchlinreg-model", "format_version": "2", "torchlinreg": "{}"},
            "upgrade torchlinreg",
        ),
        (
            {"format": "torchlinreg-model", "format_version": "1", "torchlinreg": "{nope"},
            "not valid JSON",
        ),
        (
            {"format": "torchlinreg-model", "format_version": "1", "torchlinreg": "[1]"},
            "not a JSON object",
        ),
        (
            {"format": "torchlinreg-checkpoint", "format_version": "1", "torchlinreg": "{}"},
            "expected 'torchlinreg-model'",
        ),
    ],
)
def test_unknown_versions_and_bad_metadata_are_refused(tmp_path, metadata, pattern):
    path = tmp_path / "m.safetensors"
    path.write_bytes(st_save({"w": torch.ones(2)}, metadata=metadata))
    with pytest.raises(ModelFileError, match=pattern):
        load_tensors(path)


def test_other_formats_load_when_asked_for(tmp_path):
    path = tmp_path / "c.safetensors"
    save_tensors(path, {"w": torch.ones(2)}, {"epoch": 3}, file_format="torchlinreg-checkpoint")
    assert load_tensors(path, expected_format="torchlinreg-checkpoint")[1] == {"epoch": 3}


def test_a_file_without_its_checksum_is_refused(tmp_path, model_bytes):
    # 1) the checksum is required: dropping its key must not skip the check
    (n,) = struct.unpack("<Q", model_bytes[:8])
    header = json.loads(model_bytes[8 : 8 + n])
    del header["__metadata__"]["sha256"]
    path = tmp_path / "m.safetensors"
    path.write_bytes(_with_header(header, model_bytes[8 + n :]))
    with pytest.raises(ModelFileError, match="no checksum"):
        load_tensors(path)


def _with_header(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


@pytest.mark.parametrize(
    "entry",
    [
        {"dtype": "F64", "shape": [4], "data_offsets": [0, 64]},  # past the end of the file
        {"dtype": "F64", "shape": [4], "data_offsets": [0, 16]},  # shape needs 32 bytes
        {"dtype": "F64", "shape": [2], "data_offsets": [16, 0]},
        {"dtype": "F64", "shape": [2], "data_offsets": "x"},
        {"dtype": "Q99", "shape": [2], "data_offsets": [0, 16]},
    ],
)
def test_headers_that_lie_about_sizes_and_offsets_are_refused(tmp_path, entry):
    meta = {"format": "torchlinreg-model", "format_version": "1", "torchlinreg": "{}"}
    path = tmp_path / "lie.safetensors"
    path.write_bytes(_with_header({"__metadata__": meta, "w": entry}, bytes(32)))
    with pytest.raises(ModelFileError, match=r"lie\.safetensors: "):
        load_tensors(path)


def test_missing_file_and_folder_are_refused(tmp_path):
    with pytest.raises(ModelFileError, match="file not found; check the path"):
        load_tensors(tmp_path / "nope.safetensors")
    with pytest.raises(ModelFileError, match="is a folder"):
        load_tensors(tmp_path)


def _files(folder) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.mark.parametrize("error", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_failed_write_leaves_the_old_file_and_no_temp_files(tmp_path, error):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old content")

    def write_half_then_fail(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(b"new con")
        raise error

    with pytest.raises(type(error)):
        atomic_write(target, write_half_then_fail)
    assert target.read_bytes() == b"old content"
    assert _files(tmp_path) == ["model.safetensors"]


def test_atomic_write_replaces_and_keeps_the_files_mode(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert os.stat(target).st_mode & 0o777 == 0o640
    assert _files(tmp_path) == ["out.bin"]
    # a new file gets the mode open() would give it, not mkstemp's 0600
    umask = os.umask(0o022)
    os.umask(umask)
    atomic_write_bytes(tmp_path / "new.bin", b"x")
    assert os.stat(tmp_path / "new.bin").st_mode & 0o777 == 0o666 & ~umask


def test_unwritable_targets_raise_a_one_line_os_error(tmp_path):
    (tmp_path / "afile").write_bytes(b"")
    for target in [tmp_path / "no" / "such" / "dir" / "m.safetensors", tmp_path / "afile" / "m"]:
        with pytest.raises(
            OSError, match=r"cannot write .*m(\.safetensors)?: .*check that the folder exists"
        ) as info:
            atomic_write_bytes(target, b"x")
        assert "\n" not in str(info.value)


_WRITER = textwrap.dedent(
    """
    import sys
    from torchlinreg.files.io import atomic_write

    path, size = sys.argv[1], int(sys.argv[2])
    version = 1
    while True:
        def write(tmp, v=version):
            with open(tmp, "wb") as f:
                for _ in range(size // 65536):
                    f.write(bytes([v % 256]) * 65536)
                    f.flush()
        atomic_write(path, write)
        print(version, flush=True)
        version += 1
    """
)


@pytest.mark.slow
def test_a_process_killed_while_writing_never_leaves_a_partial_file(tmp_path):
    size = 8 << 20
    target = tmp_path / "big.bin"
    target.write_bytes(bytes([0]) * size)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for delay in [0.0, 0.05, 0.13, 0.31]:
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(target), str(size)], env=env, stdout=subprocess.PIPE
        )
        assert proc.stdout.readline()  # one complete write done
        time.sleep(delay)  # then die somewhere inside a later one
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        data = target.read_bytes()
        # old content or one complete version, never a mix or a short file
        assert len(data) == size and data == bytes([data[0]]) * size
    # the killed writers' temp files are removed by the next write to the same path
    atomic_write_bytes(target, b"done")
    assert _files(tmp_path) == ["big.bin"] and target.read_bytes() == b"done"


def test_write_table_csv_round_trips_float64_exactly(tmp_path):
    rng = np.random.default_rng(3)
    values = np.concatenate(
        [rng.normal(size=50) * 10.0 ** rng.integers(-300, 300, 50), [0.1, -0.0, 5e-324]]
    )
    path = tmp_path / "pred.csv"
    write_table(path, {"apples": values, "id": np.arange(len(values))})
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["apples", "id"]
    back = np.array([float(r[0]) for r in rows[1:]])
    assert (back.view(np.int64) == values.view(np.int64)).all()
    assert [int(r[1]) for r in rows[1:]] == list(range(len(values)))


def test_write_table_parquet_and_stdout(tmp_path, capsys):
    values = np.array([1.5, 2.25])
    path = tmp_path / "pred.parquet"
    write_table(path, {"y": values})
    np.testing.assert_array_equal(pq.read_table(path).column("y").to_numpy(), values)
    write_table("-", {"y": values})
    assert capsys.readouterr().out == "y\n1.5\n2.25\n"
    buf = io.StringIO()
    write_csv(buf, {"a": np.array([0.1])})
    assert buf.getvalue() == "a\n0.1\n"


def test_write_table_refuses_ragged_columns(tmp_path):
    with pytest.raises(DataError, match="different lengths"):
        write_table(tmp_path / "p.csv", {"a": np.ones(2), "b": np.ones(3)})
    assert _files(tmp_path) == []


@pytest.mark.parametrize("name", ["p.csv", "p.parquet", "p.tsv.gz"])
def test_write_table_blocks_writes_every_block_and_the_header_once(tmp_path, name):
    import pyarrow.csv as pacsv

    blocks = [{"y": np.arange(3.0) + 10 * i, "z": -np.arange(3.0)} for i in range(4)]
    path = tmp_path / name
    assert write_table_blocks(path, ["y", "z"], iter(blocks)) == 12
    if name.endswith(".parquet"):
        table = pq.read_table(path)
    else:
        table = pacsv.read_csv(
            path, parse_options=pacsv.ParseOptions(delimiter="\t" if ".tsv" in name else ",")
        )
    assert table.column_names == ["y", "z"]
    np.testing.assert_array_equal(
        table.column("y").to_numpy(), np.concatenate([b["y"] for b in blocks])
    )
    # no rows: the header alone (a Parquet schema of float64 columns)
    write_table_blocks(tmp_path / "empty.parquet", ["y"], iter([]))
    assert pq.read_table(tmp_path / "empty.parquet").schema.names == ["y"]
    assert _files(tmp_path) == sorted([name, "empty.parquet"])


def test_a_failure_half_way_through_the_blocks_keeps_the_old_file(tmp_path):
    def blocks():
        yield {"y": np.ones(3)}
        raise DataError("bad row 4")

    path = tmp_path / "p.csv"
    path.write_text("old\n")
    with pytest.raises(DataError, match="bad row 4"):
        write_table_blocks(path, ["y"], blocks())
    assert path.read_text() == "old\n" and _files(tmp_path) == ["p.csv"]


def test_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    import errno

    path = tmp_path / "m.bin"
    path.write_bytes(b"old")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(
        OSError, match=r"cannot write .*m\.bin: No space left on device; free"
    ) as info:
        atomic_write_bytes(path, b"new")
    assert "\n" not in str(info.value) and path.read_bytes() == b"old"
    assert _files(tmp_path) == ["m.bin"]


def test_locked_serialises_two_writers_of_one_file(tmp_path):
    import threading

    from torchlinreg.files.io import locked

    path = tmp_path / "count.bin"
    atomic_write_bytes(path, b"0")

    def add_one():
        with locked(path):
            n = int(path.read_bytes())
            time.sleep(0.02)  # a slow read-modify-write: without the lock, updates are lost
            atomic_write_bytes(path, str(n + 1).encode())

    threads = [threading.Thread(target=add_one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert path.read_bytes() == b"8" and _files(tmp_path) == ["count.bin"]


def test_an_interrupt_just_after_the_temp_file_is_created_leaves_nothing(tmp_path, monkeypatch):
    # Ctrl-C/SIGTERM inside mkstemp, after it created the file and before its name was
    # returned, left a temp file behind (seen under load). Invariants: 1) the interrupt
    # propagates; 2) the old file is intact; 3) no temp file remains
    from torchlinreg.files import atomic

    out = tmp_path / "p.csv"
    out.write_text("old\n")
    real_open = os.open

    def interrupted_open(name, flags, *args):
        if str(name).endswith(".tmp"):  # the temp file exists, then the interrupt lands
            os.close(real_open(name, flags, *args))
            raise KeyboardInterrupt
        return real_open(name, flags, *args)

    monkeypatch.setattr(atomic.os, "open", interrupted_open)
    with pytest.raises(KeyboardInterrupt):  # 1
        atomic.atomic_write(out, lambda tmp: tmp_path.joinpath(tmp).write_text("new\n"))
    monkeypatch.undo()
    assert out.read_text() == "old\n"  # 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]  # 3
