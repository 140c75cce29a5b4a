"""sglang-hathora: an OpenAI-compatible server on an in-process SGLang engine, for Hathora + GCP."""

__version__ = "0.1.0"
