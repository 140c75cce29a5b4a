"""Placeholder for sgl_kernel on machines without a GPU (see sglang_hathora/cpu_compat.py).

sglang's CPU engine imports eight ``*_cpu`` symbols from sgl_kernel at module load, but the
CPU build of sgl-kernel is not published on PyPI. Measured: plain decoding never calls them
(their callers are speculative-decoding paths), so importing succeeds and any call fails loudly.
"""

from typing import Any, NoReturn

PLACEHOLDER = True


class _Unavailable:
    def __init__(self, name: str) -> None:
        self.__name__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(
            f"sgl_kernel.{self.__name__} is not available: sglang-hathora runs sglang on the CPU "
            "without sgl-kernel (only plain decoding is supported; speculative decoding is not)."
        )

    def __repr__(self) -> str:
        return f"<sgl_kernel placeholder {self.__name__}>"


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return _Unavailable(name)
