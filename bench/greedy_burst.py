"""Does a greedy answer depend on the traffic before it? One server at a time (this one or
``python -m sglang.launch_server`` on the same engine arguments): start it, send a burst of short chat
requests all at once, then ask one question at temperature 0, twice, and print the answers.

    .venv/bin/python bench/greedy_burst.py --server ours --burst 400
    .venv/bin/python bench/greedy_burst.py --server sglang --burst 400 --flag disable-radix-cache
    .venv/bin/python bench/greedy_burst.py --server ours --burst 0      # the answer on a fresh server

``--env K=V`` sets a variable for the server (ours reads its settings so: DETERMINISTIC_INFERENCE=true),
``--flag`` adds a launch_server flag. Each run prints one JSON line (bench/README.md, "Greedy answers").
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import PROJECT, Contender, free_port, launch_server_flags
from sglang_hathora.engine import bundled_model, cpu_compat
from sglang_hathora.engine.service import engine_args
from sglang_hathora.settings import Settings

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
MODEL = "x"  # what /v1/models says, once the server is up


def wait_ready(server: Contender, timeout: float = 600) -> None:
    """Up without asking anything: a probe request would put its prompt in the prefix cache. Ours
    says /health 200 once warmed up; launch_server logs this line after its own warm-up."""
    global MODEL
    server.proc = subprocess.Popen(
        server.command, cwd=PROJECT, env=server.env, stdout=server.log.open("wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited: {server.log.read_text()[-3000:]}")
        try:
            if server.name == "ours":
                up = httpx.get(f"{server.url}/health", timeout=2).status_code == 200
            else:
                up = "The server is fired up" in server.log.read_text(errors="replace")
            if up:
                MODEL = httpx.get(f"{server.url}/v1/models", timeout=5).json()["data"][0]["id"]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(server.name)


def burst(url: str, count: int) -> dict[int, int]:
    """``count`` chat requests at once (max_tokens 4); how many got each status."""

    def one(index: int) -> int:
        body = {"model": MODEL, "messages": [{"role": "user", "content": f"Say a number: {index}"}], "max_tokens": 4}
        try:
            return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=600).status_code
        except httpx.HTTPError:
            return -1

    statuses: dict[int, int] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(count, 1)) as pool:
        for status in pool.map(one, range(count)):
            statuses[status] = statuses.get(status, 0) + 1
    return statuses


def ask(url: str) -> dict:
    """The answer, and the first token's five most likely tokens with their logprobs: how close the
    greedy choice was (a near tie flips on tiny numeric differences; a corrupted cache moves far)."""
    body = {
        "model": MODEL,
        "messages": QUESTION,
        "temperature": 0,
        "max_tokens": 12,
        "logprobs": True,
        "top_logprobs": 5,
    }
    response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120)
    response.raise_for_status()
    choice = response.json()["choices"][0]
    first = choice["logprobs"]["content"][0]["top_logprobs"]
    cached = response.json()["usage"].get("prompt_tokens_details") or {}
    return {
        "text": choice["message"]["content"],
        "first": {item["token"]: round(item["logprob"], 3) for item in first},
        "cached_tokens": cached.get("cached_tokens"),
    }


def contender(kind: str, env: dict[str, str], flags: list[str], work: Path) -> Contender:
    model = str(bundled_model.prepare(Settings().model_cache_dir))
    base = {**{k: v for k, v in os.environ.items() if not k.startswith(("HATHORA_", "GCP_"))}, **env}
    port = free_port()
    if kind == "ours":
        base.update({"MODEL_PATH": model, "HOST": "127.0.0.1", "PORT": str(port), "LOG_FILE": str(work / "ours.log")})
        return Contender(kind, [sys.executable, "serve_hathora.py"], base, port, work / "ours.out")
    argv = launch_server_flags(engine_args(Settings(), model, "cpu"))
    cpu_compat.apply()
    base.update({k: os.environ[k] for k in ("SGLANG_USE_CPU_ENGINE", "PYTHONPATH")})
    argv += [f"--{flag}" for flag in flags]
    command = [sys.executable, "-m", "sglang.launch_server", *argv, "--host", "127.0.0.1", "--port", str(port)]
    return Contender(kind, command, base, port, work / "sglang.out")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", choices=("ours", "sglang"), default="ours")
    parser.add_argument("--burst", type=int, action="append", help="burst sizes, in turn (default 400)")
    parser.add_argument("--env", action="append", default=[], help="K=V for the server's environment")
    parser.add_argument("--flag", action="append", default=[], help="an extra launch_server flag, without --")
    parser.add_argument("--ask-first", action="store_true", help="ask once before the first burst")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory(prefix="greedy-burst-") as folder:
        server = contender(args.server, env, args.flag, Path(folder))
        try:
            wait_ready(server)
            result: dict = {"server": args.server, "env": env, "flags": args.flag, "rounds": []}
            if args.ask_first:
                result["before"] = ask(server.url)
            for size in args.burst or [400]:
                started = time.monotonic()
                statuses = burst(server.url, size)
                took = time.monotonic() - started
                answers = [ask(server.url), ask(server.url)]
                result["rounds"].append(
                    {"burst": size, "statuses": statuses, "seconds": round(took, 1), "answers": answers}
                )
            print(json.dumps(result), flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
