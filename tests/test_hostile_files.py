"""Hostile model files and checkpoints (issue 12): forged, oversized or endless files are
refused in one line with exit 2 before anything they claim is allocated, or read right; a
forged record never changes a prediction silently; no file is ever damaged.

Each case asserts the exit code, exactly one stderr line, a bound on memory (a child's own
peak RSS, or this process's peak growth for in-process runs: hostile_helpers) and that the
files it touched are unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import torchlinreg
from cli_helpers import FEATURES, frame, read_csv_text, write
from hostile_helpers import (
    CASE_GROWTH_MB,
    CHILD_PEAK_MB,
    cli_with_peak,
    digest,
    join_safetensors,
    one_error_line,
    rewrite_record,
    run_child,
    split_safetensors,
)
from torchlinreg.files.io import load_tensors, save_tensors
from torchlinreg.iterative.checkpoint import load_checkpoint

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """An exact (weighted, two targets) and an sgd model trained by the CLI, and their data."""
    from torchlinreg.cli.app import run

    folder = tmp_path_factory.mktemp("models")
    data = write(frame(80, seed=3), folder / "d.csv")
    common = ["train", str(data), "-t", "apples", "-t", "oranges", "--features", "a,b,c", "-q"]
    assert run([*common, "--weights", "w", "-o", str(folder / "exact.safetensors")]) == 0
    assert run([*common, "--solver", "sgd", "--seed", "0", "--epochs", "5",
                "-o", str(folder / "sgd.safetensors")]) == 0  # fmt: skip
    return folder, data


def _predictions(path, data) -> np.ndarray:
    X = np.ascontiguousarray(read_csv_text(data.read_text())[FEATURES])
    return np.asarray(torchlinreg.load(path).predict(X))


# ---------------------------------------------------------------- sizes claimed, not held


@pytest.mark.slow
@pytest.mark.parametrize(("key", "value"), [("n_features", 20_000), ("n_targets", 50_000)])
def test_a_small_model_claiming_a_huge_state_is_refused_before_allocating(
    tmp_path, models, key, value
):
    # the state's record claims 20,000 features next to a 6 x 6 factor: summary used to
    # allocate the (d + k)^2 state (3.4 GB; 50,000 targets tried 20 GB) before refusing
    folder, data = models
    forged = tmp_path / "forged.safetensors"
    forged.write_bytes(
        rewrite_record(
            (folder / "exact.safetensors").read_bytes(),
            lambda rec: rec["state"].update({key: value}),
        )
    )
    assert forged.stat().st_size < 4000
    for args in (["summary", forged], ["predict", forged, data]):
        r = run_child(args)
        line = one_error_line(r)
        assert f"the state's {key} disagree" in line
        assert r.peak_mb < CHILD_PEAK_MB, r.peak_mb


@pytest.mark.slow
def test_dev_zero_as_a_model_is_refused_at_once():
    # it used to be read until memory ran out
    r = run_child(["summary", "/dev/zero"], timeout=60)
    assert "bad header length" in one_error_line(r)
    assert r.peak_mb < CHILD_PEAK_MB, r.peak_mb


def test_a_model_over_the_size_cap_is_refused_without_reading_it(
    tmp_path, capsys, models, monkeypatch
):
    folder, _ = models
    monkeypatch.setenv("TORCHLINREG_MAX_FILE_BYTES", "1000")
    r, _ = cli_with_peak(capsys, "summary", folder / "exact.safetensors")
    assert "over the 1,000-byte cap" in one_error_line(r)
    assert "TORCHLINREG_MAX_FILE_BYTES" in r.err


# ---------------------------------------------------------------- forged records

_TOP = ["estimator", "params", "feature_names", "target_names", "y_was_1d", "n_features",
        "n_targets", "n_iter", "rank", "weighted", "training", "state"]  # fmt: skip
_NESTED = {
    "params": ["alpha", "rcond", "solver", "fit_intercept", "device", "dtype", "random_state",
               "max_iter", "lr", "tol"],
    "state": ["n_features", "n_targets", "n_samples", "n_nonzero", "sum_weights", "method",
              "dtype", "fit_intercept", "has_shift", "block_rows", "sum_log_weights", "version"],
    "training": ["rows", "seconds", "data", "metrics", "features", "weights", "updates"],
}  # fmt: skip
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
_FIELD = st.one_of(
    st.sampled_from(_TOP).map(lambda k: (k,)),
    st.sampled_from([(a, b) for a, keys in _NESTED.items() for b in keys]),
)


def _set(record: dict, path: tuple, value) -> None:
    target = record
    for key in path[:-1]:
        target = target.setdefault(key, {}) if isinstance(target, dict) else {}
    if isinstance(target, dict):
        target[path[-1]] = value


@pytest.mark.parametrize("kind", ["exact", "sgd"])
@FUZZ
@given(field=_FIELD, value=_JSON)
def test_forged_records_are_refused_or_change_nothing(tmp_path, capsys, models, kind, field, value):
    # 1) every forged record gives exit 0 or one clean line with exit 2 (never 'this is a
    #    bug'); 2) when accepted, the predictions are the original model's: a forged record
    #    never changes an answer silently; 3) memory stays bounded; 4) no file is damaged
    folder, data = models
    original = folder / f"{kind}.safetensors"
    forged = tmp_path / "forged.safetensors"
    forged.write_bytes(rewrite_record(original.read_bytes(), lambda rec: _set(rec, field, value)))
    before = (digest(forged), digest(data))
    for args in (["summary", forged, "--json"], ["predict", forged, data]):
        r, grew = cli_with_peak(capsys, *args)
        assert grew < CASE_GROWTH_MB, (field, grew)
        if r.code != 0:
            one_error_line(r)
        elif args[0] == "predict":
            got = read_csv_text(r.out).to_numpy()
            np.testing.assert_array_equal(got, _predictions(original, data))
    assert (digest(forged), digest(data)) == before


def _record_with(models, edit):
    folder, _ = models
    return rewrite_record((folder / "exact.safetensors").read_bytes(), edit)


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda r: r["training"].update(rows="many"), "training.rows"),
        (lambda r: r["params"].update(alpha=-5), "alpha"),
        (lambda r: r["params"].update(rcond="abc"), "params.rcond"),
        (lambda r: r["state"].update(n_samples=-3), "n_samples"),
        (lambda r: r["state"].update(n_nonzero=10**9), "n_nonzero"),
        (lambda r: r["state"].update(method="svd"), "state method"),
        (lambda r: r["params"].update(solver="gram"), "the solver is not the state's"),
        (lambda r: r.update(feature_names=["a", "b"]), "feature_names"),
        (lambda r: r.update(target_names=["apples", "apples"]), "target_names"),
        (lambda r: r["params"].update(device="mps\x1b]0;x\x07"), "params.device"),
        # found by the fuzz test above: a null version was compared with 2 ('this is a bug')
        (lambda r: r["state"].update(version=None), "state version"),
    ],
)
def test_wrong_typed_or_out_of_range_metadata_is_one_clean_line(
    tmp_path, capsys, models, edit, needle
):
    path = tmp_path / "m.safetensors"
    path.write_bytes(_record_with(models, edit))
    for args in (["summary", path], ["predict", path, models[1]]):
        r, grew = cli_with_peak(capsys, *args)
        assert needle in one_error_line(r)
        assert grew < CASE_GROWTH_MB


def test_a_record_nested_ten_thousand_deep_is_refused(tmp_path, capsys, models):
    path = tmp_path / "deep.safetensors"
    path.write_bytes(_record_with(models, lambda r: r.update(training={"x": []})))
    header, body = split_safetensors(path.read_bytes())
    meta = header["__metadata__"]
    meta["torchlinreg"] = meta["torchlinreg"].replace(
        '"x": []', '"x": ' + "[" * 100_000 + "]" * 100_000
    )
    path.write_bytes(join_safetensors(header, body))
    r, grew = cli_with_peak(capsys, "summary", path)
    assert "metadata" in one_error_line(r)
    assert grew < CASE_GROWTH_MB


# ---------------------------------------------------------------- forged tensors


def _forge_tensors(models, tmp_path, change) -> object:
    folder, _ = models
    tensors, meta = load_tensors(folder / "exact.safetensors")
    change(tensors, meta)
    path = tmp_path / "forged.safetensors"
    save_tensors(path, tensors, meta)
    return path


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda t, m: t.update(weight=t["weight"].round().to(torch.int64)), "dtype int64"),
        (lambda t, m: t.update(weight=t["weight"] > 0), "dtype bool"),
        (lambda t, m: t.update(bias=t["bias"].to(torch.bfloat16)), "dtype bfloat16"),
        (lambda t, m: t.update(weight=t["weight"].to(torch.float16)), "dtype float16"),
        (lambda t, m: t["weight"].__setitem__((0, 0), float("nan")), "NaN"),
        (lambda t, m: t.update({"state.r": t["state.r"][:3, :3].clone()}), "state.r shapes"),
        (lambda t, m: t.update(extra=torch.zeros(3)), "unexpected tensor"),
        (lambda t, m: t.pop("state.shift"), "no state.shift"),
        (lambda t, m: t["weight"].mul_(1.01), "disagree with the least-squares state"),
        (lambda t, m: t["bias"].add_(0.5), "disagree with the least-squares state"),
    ],
)
def test_forged_tensors_are_refused_in_one_line(tmp_path, capsys, models, change, needle):
    # integer weights used to truncate every prediction to an integer; edited weights used
    # to be used by predict and silently replaced by --update
    path = _forge_tensors(models, tmp_path, change)
    before = digest(path)
    data = models[1]
    for args in (
        ["summary", path],
        ["predict", path, data],
        ["train", data, "--update", path, "-q"],
    ):
        r, grew = cli_with_peak(capsys, *args)
        assert needle in one_error_line(r), args
        assert grew < CASE_GROWTH_MB
    assert digest(path) == before


def test_a_complex_or_float8_dtype_in_the_header_is_refused(tmp_path, models):
    folder, _ = models
    header, body = split_safetensors((folder / "exact.safetensors").read_bytes())
    for dtype in ("C64", "F8_E4M3", "U64", "weird"):
        header["bias"]["dtype"] = dtype
        path = tmp_path / "c.safetensors"
        path.write_bytes(join_safetensors(header, body))
        with pytest.raises(torchlinreg.ModelFileError, match=r"unsupported dtype|outside|needs"):
            torchlinreg.load(path)


# ---------------------------------------------------------------- forged safetensors headers

_DTYPES = st.sampled_from(["F64", "F32", "F16", "BF16", "I64", "U8", "BOOL", "C64", "F8_E5M2", ""])
_ENTRY = (
    st.fixed_dictionaries(
        {
            "dtype": _DTYPES,
            "shape": st.lists(st.integers(-2, 2**40), max_size=4),
            "data_offsets": st.lists(st.integers(-8, 2**62), min_size=0, max_size=3),
        }
    )
    | _JSON
)


@FUZZ
@given(
    entries=st.dictionaries(st.text(max_size=8), _ENTRY, max_size=4),
    meta=st.dictionaries(st.text(max_size=10), st.text(max_size=10) | _JSON, max_size=4),
    body=st.binary(max_size=96),
    keep_ours=st.booleans(),
)
def test_forged_safetensors_headers_are_refused_or_read_exactly(
    tmp_path, entries, meta, body, keep_ours
):
    # 1) any header: a ModelFileError naming the file, or tensors that are the bytes the
    # header points at; 2) nothing the header claims (2**40-element shapes, offsets near
    # 2**62) is allocated: the process's peak stays put
    if keep_ours:
        meta = {**meta, "format": "torchlinreg-model", "format_version": "1", "torchlinreg": "{}"}
    path = tmp_path / "h.safetensors"
    path.write_bytes(join_safetensors({"__metadata__": meta, **entries}, body))
    from hostile_helpers import _reset_peak, _vm

    start = _vm("VmRSS") or 0
    _reset_peak()
    try:
        tensors, _ = load_tensors(path)
    except torchlinreg.ModelFileError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
    else:
        assert sum(t.numel() * t.element_size() for t in tensors.values()) <= len(body)
    assert ((_vm("VmHWM") or 0) - start) / 1024 < CASE_GROWTH_MB


# ---------------------------------------------------------------- forged checkpoints


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from torchlinreg.cli.app import run

    folder = tmp_path_factory.mktemp("ckpt")
    data = write(frame(60, seed=5), folder / "d.csv")
    args = ["train", data, "-t", "apples", "--features", "a,b,c", "--solver", "adam",
            "--epochs", "4", "--seed", "1", "--checkpoint", folder / "c.ckpt", "-q",
            "-o", folder / "m.safetensors"]  # fmt: skip
    assert run([str(a) for a in args]) == 0
    return folder, data


def _forge_checkpoint(path, tensors, meta, name, value) -> None:
    from torchlinreg.iterative.checkpoint import CHECKPOINT_FORMAT

    target = meta["state"] if name in meta["state"] else meta["config"]
    if isinstance(value, torch.Tensor):
        tensors = {**tensors, "weight": value}
    else:
        target[name] = value
    save_tensors(path, tensors, meta, file_format=CHECKPOINT_FORMAT)


_CKPT_FIELDS = st.sampled_from(
    ["epoch", "loss_history", "stop_reason", "converged", "optimizer", "solver", "format",
     "scaler", "generator", "features", "targets", "rows", "alpha", "seed", "fingerprint"]
)  # fmt: skip
_TENSORS = st.sampled_from(
    [torch.zeros(1, 3, dtype=torch.int64), torch.zeros(2, 3), torch.zeros(1, 3, dtype=torch.bool),
     torch.full((1, 3), float("nan"), dtype=torch.float64), torch.zeros(0)]
)  # fmt: skip


@FUZZ
@given(field=_CKPT_FIELDS, value=_JSON | _TENSORS)
def test_forged_checkpoints_are_refused_or_resume(tmp_path, capsys, checkpoint, field, value):
    # malformed entries used to end in 'unexpected ...; this is a bug' with exit 1
    folder, data = checkpoint
    tensors, meta = load_tensors(folder / "c.ckpt", expected_format="torchlinreg-checkpoint")
    forged = tmp_path / "forged.ckpt"
    _forge_checkpoint(forged, tensors, meta, field, value)
    before = (digest(forged), digest(data))
    out = tmp_path / "m.safetensors"
    out.unlink(missing_ok=True)  # hypothesis runs every example in one tmp_path
    r, grew = cli_with_peak(capsys, "train", data, "-t", "apples", "--features", "a,b,c",
                            "--solver", "adam", "--epochs", "6", "--seed", "1",
                            "--resume", forged, "-o", out, "-q")  # fmt: skip
    assert grew < CASE_GROWTH_MB
    if r.code != 0:
        one_error_line(r)
        assert not out.exists()
    assert (digest(forged), digest(data)) == before


def test_a_checkpoint_entry_of_the_wrong_kind_is_named(tmp_path, checkpoint):
    folder, _ = checkpoint
    tensors, meta = load_tensors(folder / "c.ckpt", expected_format="torchlinreg-checkpoint")
    forged = tmp_path / "f.ckpt"
    _forge_checkpoint(forged, tensors, meta, "weight", torch.zeros(1, 3, dtype=torch.int64))
    with pytest.raises(torchlinreg.ModelFileError, match=r"checkpoint record is damaged.*weight"):
        load_checkpoint(forged)


def test_a_saved_model_header_round_trip_is_byte_exact(models):
    # the loader reads the bytes itself (no safetensors.load): the tensors are the file's
    folder, _ = models
    data = (folder / "exact.safetensors").read_bytes()
    header, body = split_safetensors(data)
    tensors, _ = load_tensors(folder / "exact.safetensors")
    for name, entry in header.items():
        if name != "__metadata__":
            lo, hi = entry["data_offsets"]
            assert tensors[name].contiguous().view(torch.uint8).numpy().tobytes() == body[lo:hi]
            assert list(tensors[name].shape) == entry["shape"]


@pytest.mark.parametrize(
    "history",
    [[True, 1000001.0], [1.0, 2.0], [1.0, 0.5, 0.4, 0.3, float("nan")], [1.0, 0.5, 0.4, 0.3, -1]],
)
def test_a_forged_loss_history_is_refused_not_trained_on(tmp_path, checkpoint, history):
    # hypothesis found [True, 1000001.0]: JSON true passed as a number, and the resumed run
    # stopped as 'diverged' (exit 1) on a history it never trained
    folder, _ = checkpoint
    tensors, meta = load_tensors(folder / "c.ckpt", expected_format="torchlinreg-checkpoint")
    assert meta["state"]["epoch"] == 4 and len(meta["state"]["loss_history"]) == 5
    forged = tmp_path / "f.ckpt"
    _forge_checkpoint(forged, tensors, meta, "loss_history", history)
    with pytest.raises(torchlinreg.ModelFileError, match="loss_history"):
        load_checkpoint(forged)


@pytest.mark.parametrize("tail", ["\r", ""])
def test_a_file_of_lone_carriage_returns_trains(tmp_path, capsys, tail):
    # old Mac line ends: the row bound counted LF only, found 0 rows and refused the file
    # ("at most 0 data row(s)"), though the reader takes CR as a line end
    from cli_helpers import cli
    from torchlinreg.files.csvlines import rows_at_most

    data = tmp_path / "cr.csv"
    data.write_bytes(("x,y\r1,2\r2,4\r3,7" + tail).encode())
    assert rows_at_most(str(data), False, 10) >= 3
    model = tmp_path / "m.safetensors"
    r = cli(capsys, "train", data, "-t", "y", "-o", model, "-q")
    assert r.code == 0, r.err
    import torchlinreg as tlr

    est = tlr.load(model)
    slope, icpt = np.polyfit([1.0, 2.0, 3.0], [2.0, 4.0, 7.0], 1)
    np.testing.assert_allclose([est.coef_[0], est.intercept_], [slope, icpt], rtol=1e-12)
