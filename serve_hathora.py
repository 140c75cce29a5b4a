"""Entry point: ``python serve_hathora.py`` starts the sglang-hathora server.

The code lives in the sglang_hathora package. SGLang starts its workers with the "spawn" start
method, which re-imports this file in each child as ``__mp_main__``: so nothing is imported at the
top level. Importing the server here cost each child (scheduler, detokenizer) our FastAPI app and
its dependencies, about 1 s of CPU on the start-up's critical path.
"""

if __name__ == "__main__":
    from sglang_hathora.http.server import exit_now, main

    exit_now(main())
