from __future__ import annotations

import json
from pathlib import Path

import pytest

from mirror.cli import run


def test_demo_fetches_the_sample_newsroom(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "demo"
    assert run(["demo", "--dir", str(folder), "--articles", "6", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["fetch"]["new"] == 6
    assert report["fetch"]["failed"] == []
    assert Path(report["store"]).is_file()
    assert report["build"]["version"] == 1 and report["build"]["articles"] == 6
    assert report["verify"]["ok"] is True
    assert (Path(report["edition"]) / "index.html").is_file()
    # a second demo starts afresh in its own folder
    assert run(["demo", "--dir", str(folder), "--articles", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fetch"]["new"] == 3


def test_demo_refuses_to_wipe_a_folder_that_is_not_a_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    assert run(["demo", "--dir", str(tmp_path)]) == 2
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    assert "not a mirror demo folder" in capsys.readouterr().err
