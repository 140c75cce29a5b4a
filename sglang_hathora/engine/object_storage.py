"""Where a model in Cloud Storage is served: ``MODEL_PATH=gs://bucket/folder``.

The weights stream from the bucket into the engine (SGLang's ``runai_streamer`` load format, the Run:ai
Model Streamer and its GCS backend), with no copy on the process's disk; the config and tokenizer files
are pulled first into a local folder by SGLang's own ``ObjectStorageModel`` (the same folder SGLang's
engine then reads). s3:// and az:// are SGLang's other schemes and take the same path (their backends
are not installed here).

Credentials: the service-account key the server already has (``GCP_SERVICE_ACCOUNT_KEY_BASE64``, for
NEG registration) is handed to the streamer's two clients (google-cloud-storage in Python, which lists
and pulls the small files, and google-cloud-cpp inside the streamer, which reads the weights) as the
file they expect, but one that lives in memory only: a memfd of this process, named by its /proc path
(readable by the engine's children, gone with the process, never on a disk). Without a key they use
the machine's default credentials (a GCE metadata server, or ``GOOGLE_APPLICATION_CREDENTIALS``).
"""

from __future__ import annotations

import base64
import os

from pydantic import SecretStr

SCHEMES = ("gs://", "s3://", "az://")  # sglang.srt.utils.runai_utils.SUPPORTED_SCHEMES
LOAD_FORMAT = "runai_streamer"
# Where google-cloud-cpp (the streamer's reads) and the streamer's Python side look for a key file.
_KEY_FILE_VARIABLES = ("GOOGLE_APPLICATION_CREDENTIALS", "RUNAI_STREAMER_GCS_CREDENTIAL_FILE")
_key_fd: int | None = None  # held open for the life of the process


def is_object_storage(model_path: str) -> bool:
    return model_path.lower().startswith(SCHEMES)


def engine_args(model_path: str) -> dict[str, str]:
    return {"load_format": LOAD_FORMAT} if is_object_storage(model_path) else {}


def metadata_dir(model_path: str) -> str:
    """The local folder with the model's config and tokenizer (pulled now; the weights stay remote)."""
    from sglang.srt.utils.runai_utils import ObjectStorageModel

    return ObjectStorageModel.download_and_get_path(model_path)


def provide_credentials(key_base64: SecretStr | None) -> str | None:
    """Point the streamer's clients at the service-account key, in memory; the path, or None when there
    is no key or the operator set a key file of their own."""
    global _key_fd
    if key_base64 is None or any(os.environ.get(name) for name in _KEY_FILE_VARIABLES):
        return None
    if _key_fd is None:
        _key_fd = os.memfd_create("gcp-service-account-key", 0)
        os.write(_key_fd, base64.b64decode(key_base64.get_secret_value()))
    path = f"/proc/{os.getpid()}/fd/{_key_fd}"
    for name in _KEY_FILE_VARIABLES:
        os.environ[name] = path
    return path
