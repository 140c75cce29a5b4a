"""Entry point: ``python serve_hathora.py`` starts the sglang-hathora server.

The code lives in the sglang_hathora package; this file stays import-safe because SGLang spawns
its workers with the "spawn" start method, which re-imports the main module in each child.
"""

from sglang_hathora.server import exit_now, main

if __name__ == "__main__":
    exit_now(main())
