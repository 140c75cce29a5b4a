"""engine/object_storage.py: MODEL_PATH=gs://... streams the weights from Cloud Storage.

The real engine on the bundled model, uploaded to a local Cloud Storage emulator (gcp-storage-emulator,
over HTTP on 127.0.0.1): the streamer's two clients are pointed at it by their own variables
(STORAGE_EMULATOR_HOST for google-cloud-storage, CLOUD_STORAGE_EMULATOR_ENDPOINT for google-cloud-cpp),
with anonymous credentials, as the emulator wants. Plus the key handed over in memory only.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from pydantic import SecretStr

from sglang_hathora.engine import object_storage
from tests.server_process import ServerProcess, free_port


def test_a_bucket_path_takes_the_streamer_load_format_and_a_local_one_does_not() -> None:
    assert object_storage.engine_args("gs://models/smol") == {"load_format": "runai_streamer"}
    assert object_storage.engine_args("/srv/models/smol") == {}
    assert object_storage.engine_args("Qwen/Qwen2.5-7B-Instruct") == {}


def test_the_key_is_handed_over_in_memory_and_readable_by_a_child(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "RUNAI_STREAMER_GCS_CREDENTIAL_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(object_storage, "_key_fd", None)
    key = b'{"type": "service_account", "private_key": "SECRET-KEY-TEXT"}'
    path = object_storage.provide_credentials(SecretStr(base64.b64encode(key).decode()))
    assert path is not None and path.startswith(f"/proc/{os.getpid()}/fd/")
    assert os.environ["GOOGLE_APPLICATION_CREDENTIALS"] == path == os.environ["RUNAI_STREAMER_GCS_CREDENTIAL_FILE"]
    assert os.readlink(path).startswith("/memfd:gcp-service-account-key")  # memory, not a file on a disk
    child = subprocess.run(["cat", path], capture_output=True, check=True)  # what the engine's children read
    assert child.stdout == key
    os.close(object_storage._key_fd)


def test_an_operators_own_key_file_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/etc/keys/mine.json")
    monkeypatch.setattr(object_storage, "_key_fd", None)
    assert object_storage.provide_credentials(SecretStr(base64.b64encode(b"{}").decode())) is None
    assert os.environ["GOOGLE_APPLICATION_CREDENTIALS"] == "/etc/keys/mine.json"
    assert object_storage.provide_credentials(None) is None


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    port = free_port()
    command = [str(Path(sys.executable).parent / "gcp-storage-emulator"), "start", "--host", "127.0.0.1"]
    proc = subprocess.Popen([*command, "--port", str(port), "--in-memory"], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/storage/v1/b", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url
    finally:
        proc.kill()
        proc.wait()


def upload_the_bundled_model(emulator: str, bucket: str, prefix: str) -> list[str]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from sglang_hathora.engine.bundled_model import prepare
    from sglang_hathora.settings import Settings

    checkpoint = prepare(Settings().model_cache_dir)
    client = storage.Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": emulator}
    )
    target = client.create_bucket(bucket)
    for path in sorted(checkpoint.iterdir()):
        if path.is_file():
            target.blob(f"{prefix}/{path.name}").upload_from_filename(str(path))
    return [blob.name for blob in client.list_blobs(bucket)]


@pytest.mark.engine
def test_a_model_in_a_bucket_is_streamed_into_the_engine_and_answers(emulator: str, tmp_path: Path) -> None:
    uploaded = upload_the_bundled_model(emulator, "models", "smol")
    assert "smol/model.safetensors" in uploaded
    server = ServerProcess(
        tmp_path / "server.log",
        extra_env={
            "MODEL_PATH": "gs://models/smol",
            "STORAGE_EMULATOR_HOST": emulator,
            "CLOUD_STORAGE_EMULATOR_ENDPOINT": emulator,
            "RUNAI_STREAMER_GCS_USE_ANONYMOUS_CREDENTIALS": "1",
            "SGLANG_CACHE_DIR": str(tmp_path / "sglang-cache"),  # where SGLang pulls the small files
        },
    )
    server.start()
    try:
        server.wait_ready()
        client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused")
        answer = client.chat.completions.create(
            model="sglang",
            messages=[{"role": "user", "content": "What is the capital of France?"}],
            temperature=0,
            max_tokens=16,
        )
        assert "Paris" in answer.choices[0].message.content
        assert client.models.list().data[0].id == "gs://models/smol"
    finally:
        server.stop()
    # The weights came through the streamer, from the bucket (its own lines, on the server's output).
    assert "[RunAI Streamer]" in server.output()
    # Only the config and tokenizer were pulled to a local folder, never the weights.
    folder = tmp_path / "sglang-cache" / "model_streamer" / hashlib.sha256(b"gs://models/smol").hexdigest()[:16]
    pulled = {path.name for path in folder.iterdir()}
    assert {"config.json", "tokenizer.json", "tokenizer_config.json"} <= pulled, pulled
    assert not [name for name in pulled if name.endswith(".safetensors")], pulled
