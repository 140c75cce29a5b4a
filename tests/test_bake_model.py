"""docker/bake_model.py, the step of Dockerfile.hathora that puts the weights into the image: from a hub
(tests/fake_hub.py, through the real huggingface_hub) with the build's secret token, or from the build
context's docker/models/. The image built with it is tested in tests/test_containers.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_hub import FakeHub
from tests.server_process import PROJECT_DIR

REPO = "acme/tiny-chat"
FILES = {
    "config.json": b'{"model_type": "llama"}',
    "tokenizer.json": b"{}",
    "model-00001-of-00001.safetensors": b"weights" * 100,
    "pytorch_model.bin": b"the same weights again",
    "original/consolidated.00.pth": b"and again",
}
# Run as the image runs it, with the secret's and the context's places moved into the test's folder.
RUN = (
    "import sys; from pathlib import Path; sys.path.insert(0, 'docker'); import bake_model as b;"
    "b.SECRET, b.CONTEXT = Path(sys.argv[1]), Path(sys.argv[2]); sys.exit(b.main(sys.argv[2:]))"
)


def bake(tmp_path: Path, model_id: str, token: str | None, env: dict[str, str] | None = None):
    secret = tmp_path / "secret"
    if token is not None:
        secret.write_text(token + "\n")
    context, target = tmp_path / "context", tmp_path / "image" / "model"
    return subprocess.run(
        [sys.executable, "-c", RUN, str(secret), str(context), model_id, str(target)],
        cwd=PROJECT_DIR,
        env={**os.environ, "HF_HOME": str(tmp_path / "hf-home"), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    ), target


@pytest.fixture
def hub():
    server = FakeHub(REPO, FILES)
    yield server
    server.close()


def test_a_hub_model_is_downloaded_with_the_secret_token_and_without_its_duplicate_weights(hub, tmp_path) -> None:
    result, target = bake(tmp_path, REPO, "hf_secret_123", {"HF_ENDPOINT": hub.url})
    assert result.returncode == 0, result.stderr
    assert hub.downloaded() == {"config.json", "tokenizer.json", "model-00001-of-00001.safetensors"}
    assert {auth for _, path, auth in hub.requests if REPO in path} == {"Bearer hf_secret_123"}
    files = {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()}
    assert files == {"config.json", "tokenizer.json", "model-00001-of-00001.safetensors", ".baked"}
    assert (target / "model-00001-of-00001.safetensors").read_bytes() == FILES["model-00001-of-00001.safetensors"]
    assert all(p.stat().st_mode & 0o004 for p in target.rglob("*"))  # the server's uid reads every file
    baked = (target / ".baked").read_text()
    assert "token given: yes" in baked and "hf_secret_123" not in baked + result.stdout + result.stderr


def test_without_a_secret_no_token_is_sent(hub, tmp_path) -> None:
    result, target = bake(tmp_path, REPO, None, {"HF_ENDPOINT": hub.url, "HF_TOKEN": ""})
    assert result.returncode == 0, result.stderr
    assert hub.downloaded() and {auth for _, _, auth in hub.requests} == {None}
    assert "token given: no" in (target / ".baked").read_text()


def test_a_checkpoint_from_the_build_context_is_copied(tmp_path) -> None:
    source = tmp_path / "context" / "docker" / "models" / "tiny"
    source.mkdir(parents=True)
    (source / "config.json").write_text("{}")
    (source / "model.safetensors").write_bytes(b"w")
    (source / "model.safetensors").chmod(0o600)  # as safetensors writes it
    result, target = bake(tmp_path, "./docker/models/tiny", None)
    assert result.returncode == 0, result.stderr
    assert (target / "model.safetensors").read_bytes() == b"w"
    assert (target / "model.safetensors").stat().st_mode & 0o004


@pytest.mark.parametrize("model_id", ["./docker/models/absent", "./elsewhere/tiny"])
def test_a_context_path_that_is_not_a_checkpoint_under_docker_models_fails_with_one_line(tmp_path, model_id) -> None:
    elsewhere = tmp_path / "context" / "elsewhere" / "tiny"
    elsewhere.mkdir(parents=True)
    (elsewhere / "config.json").write_text("{}")
    result, _ = bake(tmp_path, model_id, None)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"bake_model: {model_id} is not a checkpoint folder (with config.json) under ./docker/models/"
    ]
