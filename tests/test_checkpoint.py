"""Training checkpoints: nested trainer states in one safetensors file, and back."""

from __future__ import annotations

import pytest
import torch

import torchlinreg
from torchlinreg.files.io import load_tensors, save_tensors
from torchlinreg.iterative.checkpoint import load_checkpoint, save_checkpoint


def test_nested_state_round_trips(tmp_path):
    g = torch.Generator().manual_seed(5)
    state = {
        "epoch": 4,
        "loss_history": [1.5, 0.25, float("inf")],
        "stop_reason": None,
        "converged": False,
        "weight": torch.randn(2, 3, dtype=torch.float64),
        # string keys and lists only: the trainer's state_dict contract
        "optimizer": {
            "state": {"0": {"step": torch.tensor(3.0), "exp_avg": torch.ones(2, 3)}, "1": {}},
            "param_groups": [{"lr": 0.01, "betas": [0.9, 0.999], "params": [0, 1]}],
        },
        "generator": g.get_state(),
    }
    save_checkpoint(tmp_path / "c.ckpt", state, {"solver": "adam", "features": ["a"]})
    back, config = load_checkpoint(tmp_path / "c.ckpt")
    assert config == {"solver": "adam", "features": ["a"]}
    assert back["epoch"] == 4 and back["stop_reason"] is None and back["converged"] is False
    assert back["loss_history"] == [1.5, 0.25, float("inf")]
    assert torch.equal(back["weight"], state["weight"])
    opt = back["optimizer"]
    assert set(opt["state"]) == {"0", "1"}
    assert torch.equal(opt["state"]["0"]["exp_avg"], torch.ones(2, 3))
    assert opt["param_groups"][0]["betas"] == [0.9, 0.999]
    restored = torch.Generator()
    restored.set_state(back["generator"])
    assert torch.equal(torch.rand(4, generator=restored), torch.rand(4, generator=g))


def test_unsupported_values_are_refused_before_writing(tmp_path):
    with pytest.raises(TypeError, match="set"):
        save_checkpoint(tmp_path / "c.ckpt", {"bad": {1, 2}}, {})
    assert list(tmp_path.iterdir()) == []


def test_damaged_record_is_a_model_file_error(tmp_path):
    path = tmp_path / "c.ckpt"
    save_tensors(
        path,
        {},
        {"state": {"w": {"__tensor__": "gone"}}, "config": {}},
        file_format="torchlinreg-checkpoint",
    )
    with pytest.raises(torchlinreg.ModelFileError, match="checkpoint record is damaged"):
        load_checkpoint(path)


def test_a_model_is_not_a_checkpoint(tmp_path):
    est = torchlinreg.LinearRegression().fit([[0.0], [1.0], [2.0]], [1.0, 2.0, 3.5])
    torchlinreg.save(est, tmp_path / "m.safetensors")
    with pytest.raises(torchlinreg.ModelFileError, match="expected 'torchlinreg-checkpoint'"):
        load_checkpoint(tmp_path / "m.safetensors")
    assert load_tensors(tmp_path / "m.safetensors")[1]["estimator"] == "LinearRegression"
