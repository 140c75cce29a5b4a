"""engine/environment.py: the device known without torch, and when the forkserver starts early."""

from __future__ import annotations

import pytest

from sglang_hathora.engine import environment, forkserver
from sglang_hathora.settings import Settings


def test_no_gpu_device_file_means_the_cpu_without_torch(tmp_path) -> None:
    assert environment.cheap_device("auto", (str(tmp_path / "nvidiactl"),)) == "cpu"
    (tmp_path / "nvidiactl").touch()
    assert environment.cheap_device("auto", (str(tmp_path / "nvidiactl"),)) is None  # torch must tell
    assert environment.cheap_device("cuda", ()) == "cuda"


@pytest.mark.parametrize(
    ("overrides", "device_files_exist"),
    [({"engine_forkserver": "off"}, False), ({"device": "cuda"}, False), ({}, True)],
)
def test_no_early_forkserver_when_off_or_on_a_possible_gpu(
    monkeypatch, tmp_path, overrides, device_files_exist
) -> None:
    settings = Settings(**overrides)
    device_file = tmp_path / "nvidiactl"
    if device_files_exist:
        device_file.touch()
    monkeypatch.setattr(environment, "GPU_DEVICE_FILES", (str(device_file),))
    started = []
    monkeypatch.setattr(forkserver, "start", lambda *args: started.append(args))
    monkeypatch.setattr(environment, "prepare_for", lambda device: started.append(device))
    assert environment.start_forkserver_early(settings) is False
    assert started == []


def test_early_forkserver_on_the_cpu_after_the_cpu_fixes(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(forkserver, "start", lambda *args: calls.append("forkserver"))
    monkeypatch.setattr(environment, "prepare_for", lambda device: calls.append(device))
    settings = Settings(device="cpu")
    assert environment.start_forkserver_early(settings) is True
    assert calls == ["cpu", "forkserver"]
