"""What `torchlinreg train` tells the user about the columns it chose."""

import json

from torchlinreg.cli.app import run


def test_report_names_the_features_and_the_columns_left_out(tmp_path, capsys):
    data = tmp_path / "d.csv"
    rows = ["region,a,b,y"] + [f"r{i},{i},{(i * 7) % 5},{2 * i + 1}" for i in range(10)]
    data.write_text("\n".join(rows) + "\n")
    model = tmp_path / "m.safetensors"
    assert run(["train", str(data), "-t", "y", "-o", str(model), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["features"] == ["a", "b"] and report["skipped_columns"] == ["region"]
    assert run(["train", str(data), "-t", "y", "-o", str(model)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "features: a, b (not numeric, left out: region)" in text
    assert run(["train", str(data), "-t", "y", "--features", "a", "-o", str(model), "--json"]) == 0
    assert "skipped_columns" not in json.loads(capsys.readouterr().out)
