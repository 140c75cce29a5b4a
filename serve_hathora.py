"""Entry point: ``python serve_hathora.py`` starts the sglang-hathora server.

The code lives in the sglang_hathora package. SGLang's children re-import this file as
``__mp_main__`` (spawned or forked from the forkserver alike), so nothing is imported at the top level:
importing the server here cost each child our FastAPI app and its dependencies, about 1 s of CPU.

The order below is for the cold start: the settings and logging (0.2 s of imports), then the engine's
forkserver, which imports SGLang on the other core from then on, and only then the web stack (0.6 s).
"""

if __name__ == "__main__":
    from sglang_hathora.configuration import load_settings_or_exit
    from sglang_hathora.engine.environment import start_forkserver_early
    from sglang_hathora.observability import configure_logging

    settings = load_settings_or_exit()
    configure_logging(settings)
    start_forkserver_early(settings)

    from sglang_hathora.http.server import exit_now, main

    exit_now(main(settings))
