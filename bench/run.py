"""``make bench``: this server against ``python -m sglang.launch_server`` and the HF-transformers
baseline, each measured with ``sglang.bench_serving --backend sglang-oai-chat`` (unmodified) in one run.

Each contender runs on its own 127.0.0.1 port with the same engine settings (both SGLang contenders
get the arguments of ``sglang_hathora.engine.service.engine_args``). The two SGLang servers run side by side
(both with sleep_on_idle) and are measured alternately, A B A B ... A, because back-to-back runs of the
same server differ by up to 30% on 2 cores (shared/reference/bench-serving.md); each run of one is
compared with the mean of the other's runs either side of it (a drift over the minutes cancels), and
the ratio reported is the median of those. The one not measured is stopped (SIGSTOP) meanwhile: idle,
each still took CPU from the other's runs, and not the same amount (``Contender.paused``).
The HF baseline runs alone afterwards. Results: bench/results/results.json, results.md, throughput.png.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

PROJECT = Path(__file__).resolve().parent.parent
POLL_INTERVAL_S = 0.25  # readiness probe period: 0.6% of a 40 s start, the same for every contender
sys.path.insert(0, str(PROJECT))

from bench.report import decode_rates, write_reports  # noqa: E402
from sglang_hathora.engine import bundled_model, cpu_compat  # noqa: E402
from sglang_hathora.engine.service import engine_args, resolve_device  # noqa: E402
from sglang_hathora.settings import Settings  # noqa: E402

OURS, SGLANG, HF = "sglang-hathora", "sglang.launch_server", "HF transformers baseline"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_server_flags(served: dict) -> list[str]:
    """``sglang.launch_server`` flags for our engine arguments."""
    flags: list[str] = []
    for key, value in served.items():
        if key == "skip_server_warmup" or value is False:
            continue  # launch_server runs its own warm-up: it is part of its start-up as shipped
        flags.append("--" + key.replace("_", "-"))
        if value is not True:
            flags.append(str(value))
    return flags


def process_tree(pid: int) -> list[psutil.Process]:
    """A process and all its children, the process first; empty once it has ended."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_pss_mb(pid: int) -> float:
    """Proportional set size of a process and all its children (shared pages counted once)."""
    total = 0
    for process in process_tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += process.memory_full_info().pss
    return total / 2**20


@dataclass
class Contender:
    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    log: Path
    proc: subprocess.Popen | None = None
    bound_after_s: float | None = None
    ready_after_s: float | None = None
    idle_pss_mb: float | None = None
    peak_pss_mb: float = 0.0
    runs: dict[int, list[dict]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 900) -> None:
        started = time.monotonic()
        self.proc = subprocess.Popen(
            self.command, cwd=PROJECT, env=self.env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT
        )
        # Both contenders are probed alike, as a load balancer would (only faster): one kept-alive
        # client, every POLL_INTERVAL_S. A new client per probe every 50 ms cost the probe and the
        # server that binds its port early (ours) about 10% of a core during the whole load, which
        # a server that binds at the end (launch_server) never paid.
        with httpx.Client(timeout=2) as probe:
            while time.monotonic() - started < timeout:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log}")
                if self.bound_after_s is None:
                    with socket.socket() as sock:
                        if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                            self.bound_after_s = time.monotonic() - started
                if self.bound_after_s is not None and self._answers(probe):
                    self.ready_after_s = time.monotonic() - started
                    break
                time.sleep(POLL_INTERVAL_S)
            else:
                raise TimeoutError(f"{self.name} not ready in {timeout} s; see {self.log}")
        time.sleep(2)  # let the warm-up settle before measuring idle memory
        self.idle_pss_mb = tree_pss_mb(self.proc.pid)
        print(
            f"[bench] {self.name}: port bound {self.bound_after_s:.1f} s, ready {self.ready_after_s:.1f} s, "
            f"PSS {self.idle_pss_mb:.0f} MB",
            flush=True,
        )

    def _answers(self, probe: httpx.Client) -> bool:
        """Ready means a user's request is answered, not that a route answers: launch_server's
        /v1/models says 200 as soon as its port is bound, before its warm-up request has run (about
        1-3 s here), while ours says 503 until its warm-up is done. So the probe ends with a real
        one-token chat completion, which a loading server refuses or holds until it can serve it."""
        try:
            models = probe.get(f"{self.url}/v1/models")
            if models.status_code != 200:
                return False
            body = {
                "model": models.json()["data"][0]["id"],
                "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 1,
                "temperature": 0,
            }
            return probe.post(f"{self.url}/v1/chat/completions", json=body, timeout=120).status_code == 200
        except httpx.HTTPError:
            return False

    def tree(self) -> list[psutil.Process]:
        return process_tree(self.proc.pid)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """This server's whole process tree stopped (SIGSTOP) while the other one is measured. Idle
        with sleep_on_idle, a server still wakes: measured here over the other's 55-s runs,
        launch_server's idle scheduler took 1.06-1.41 CPU-seconds and ours' 0.75, on a machine whose
        two cores the measured scheduler's two threads fill (a preempted thread holds up both). Stopped
        right after its own run, nothing of it is in flight, and ours' watchdog counts only the time its
        process ran (engine/watchdog.py): no idle canary goes out into its own next run."""
        processes = self.tree()
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.suspend()
        try:
            yield
        finally:
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.resume()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        processes = self.tree()
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.resume()  # a stopped process would not act on SIGTERM
        children = processes[1:]
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        # A killed process shows as running until it is next scheduled, which on a loaded machine is
        # not at once: wait, so that the next server starts with this one gone.
        psutil.wait_procs(children, timeout=30)


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of a server's process and of each child, by its title: where
    a run's CPU went (2 cores: what the HTTP process spends per token, the scheduler cannot)."""
    seconds: dict[str, float] = {}
    for process in process_tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            title = "server" if process.pid == pid else (process.cmdline() or [process.name()])[0]
            times = process.cpu_times()
            seconds[title] = seconds.get(title, 0.0) + times.user + times.system
    return seconds


def bench_serving(contender: Contender, concurrency: int, prompts: int, args: argparse.Namespace, out: Path) -> dict:
    result_file = out / f"{contender.name.replace(' ', '_')}-c{concurrency}-{time.time_ns()}.jsonl"
    command = [
        sys.executable,
        "-m",
        "sglang.bench_serving",
        "--backend",
        "sglang-oai-chat",
        "--base-url",
        contender.url,
        "--tokenizer",
        args.tokenizer,
        "--dataset-name",
        "random-ids",
        "--random-input-len",
        str(args.input_len),
        "--random-output-len",
        str(args.output_len),
        "--random-range-ratio",
        "1.0",
        "--num-prompts",
        str(prompts),
        "--max-concurrency",
        str(concurrency),
        "--seed",
        "1",
        "--disable-tqdm",
        "--output-file",
        str(result_file),
    ]
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "HF_HUB_OFFLINE": "1"}
    log_offset = contender.log.stat().st_size
    before = cpu_seconds(contender.proc.pid)
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    after = cpu_seconds(contender.proc.pid)
    # Memory is read after the run, not during it: a process's PSS costs 15-28 ms of CPU to read here
    # (the kernel walks its mappings), so sampling every 0.5 s in the run would take about 19% of a core
    # from ours (five processes, the forkserver's 700 MB among them) against 11% from launch_server (four),
    # out of the two cores the measured scheduler fills. SGLang allocates its KV cache at start, so a
    # run adds little to a tree's memory (the last run sampled during its runs: idle 1952, peak 1952 MB).
    contender.peak_pss_mb = max(contender.peak_pss_mb, tree_pss_mb(contender.proc.pid))
    if completed.returncode != 0 or not result_file.exists():
        output = completed.stdout[-3000:] + completed.stderr[-3000:]
        raise RuntimeError(f"bench_serving failed for {contender.name}:\n{output}")
    result = json.loads(result_file.read_text().splitlines()[-1])
    result["errors"] = prompts - result["completed"]
    result["cpu_seconds"] = {title: round(s - before.get(title, 0.0), 2) for title, s in after.items()}
    with contender.log.open("rb") as log:
        log.seek(log_offset)
        result["decode_tok_s"] = decode_rates(log.read().decode(errors="replace"), concurrency)
    cpu = ", ".join(f"{title} {s:.1f}" for title, s in sorted(result["cpu_seconds"].items()) if s >= 0.05)
    print(
        f"[bench] {contender.name} c={concurrency}: {result['output_throughput']:.1f} out tok/s, "
        f"TTFT p50 {result['median_ttft_ms']:.0f} ms, ITL p50 {result['median_itl_ms']:.1f} ms, "
        f"errors {result['errors']}, CPU s: {cpu}",
        flush=True,
    )
    return result


def contenders(args: argparse.Namespace, work: Path) -> tuple[Contender, Contender, Contender]:
    settings = Settings()
    device = resolve_device(settings.device)
    model_path = args.model_path
    served = engine_args(settings, model_path, device)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("HATHORA_", "GCP_"))}
    base_env["NO_PROXY"] = "127.0.0.1,localhost"

    ours_port, sglang_port, hf_port = free_port(), free_port(), free_port()
    ours_env = {
        **base_env,
        "MODEL_PATH": model_path,
        "HOST": "127.0.0.1",
        "PORT": str(ours_port),
        "LOG_FILE": str(work / "sglang-hathora.log"),
        "SERVED_MODEL_NAME": Path(model_path).name,
    }
    ours = Contender(OURS, [sys.executable, "serve_hathora.py"], ours_env, ours_port, work / "sglang-hathora.out")

    flags = launch_server_flags(served)
    sglang_env = dict(base_env)
    if device == "cpu":
        # The same CPU fixes our server applies to itself (cpu_compat.py), given through the environment.
        cpu_compat.apply()
        sglang_env.update({k: os.environ[k] for k in ("SGLANG_USE_CPU_ENGINE", "PYTHONPATH")})
    sglang = Contender(
        SGLANG,
        [sys.executable, "-m", "sglang.launch_server", *flags, "--host", "127.0.0.1", "--port", str(sglang_port)],
        sglang_env,
        sglang_port,
        work / "sglang-launch-server.out",
    )
    hf_env = {**base_env, "OMP_NUM_THREADS": str(os.cpu_count())}
    if device == "cpu":
        hf_env["PYTHONPATH"] = sglang_env["PYTHONPATH"]  # transformers imports torchvision too
    hf = Contender(
        HF,
        [sys.executable, "bench/hf_baseline_server.py", "--model-path", model_path, "--port", str(hf_port)],
        hf_env,
        hf_port,
        work / "hf-baseline.out",
    )
    return ours, sglang, hf


def main() -> int:
    parser = argparse.ArgumentParser(description="sglang-hathora benchmark (make bench)")
    parser.add_argument("--model-path", default=None, help="checkpoint; default MODEL_PATH or the bundled model")
    parser.add_argument("--input-len", type=int, default=128)
    parser.add_argument("--output-len", type=int, default=32)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument(
        "--pairs", type=int, default=3, help="alternated A/B pairs per concurrency (and one more run of A)"
    )
    parser.add_argument("--prompts-per-concurrency", type=float, default=2.0, help="prompts = max(6, this x C)")
    parser.add_argument("--hf-prompts", default="3,8,32", help="prompts per concurrency for the HF baseline")
    parser.add_argument("--skip-hf", action="store_true")
    parser.add_argument("--out", type=Path, default=PROJECT / "bench" / "results")
    args = parser.parse_args()

    settings = Settings()
    args.model_path = args.model_path or settings.model_path or str(bundled_model.prepare(settings.model_cache_dir))
    args.tokenizer = args.model_path
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    hf_prompts = dict(zip(concurrencies, (int(p) for p in args.hf_prompts.split(",")), strict=False))
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="sglang-hathora-bench-"))
    ours, sglang, hf = contenders(args, work)
    try:
        for contender in (ours, sglang):  # one after the other: start-up is measured without contention
            contender.start()
        for contender, other in ((ours, sglang), (sglang, ours)):
            # One unrecorded pass each: the first benchmark after start-up ran up to 20% slower for
            # whichever server went first (cold caches), which is not what a long-running server sees.
            with other.paused():
                bench_serving(contender, 8, 16, args, work)
        for index, concurrency in enumerate(concurrencies):
            prompts = max(6, int(args.prompts_per_concurrency * concurrency))
            # Strictly alternating, so that every run follows one run of the other server. Interleaved
            # pairs A B, B A, A B put each server's runs back to back at the pairs' edges, and at
            # concurrency 1 the second of two back-to-back runs was the slower in 15 of 21 cases (its
            # throughput 0.93x the first's on average; at 8: 3 of 10, 1.03x): such pairs favour one
            # server and the next pair the other, widening their spread. The first server alternates
            # with the concurrency, so that the last run of one concurrency and the first of the next differ.
            first, second = (ours, sglang) if index % 2 == 0 else (sglang, ours)
            for contender in [first, second] * args.pairs + [first]:
                with (second if contender is first else first).paused():
                    result = bench_serving(contender, concurrency, prompts, args, work)
                contender.runs.setdefault(concurrency, []).append(result)
        ours.stop()
        sglang.stop()
        if not args.skip_hf:
            try:
                hf.start()
                for concurrency in concurrencies:
                    hf.runs[concurrency] = [bench_serving(hf, concurrency, hf_prompts[concurrency], args, work)]
            except (RuntimeError, TimeoutError) as exc:  # report what was measured all the same
                print(f"[bench] HF baseline failed, reported without it: {exc}", flush=True)
                hf.runs.clear()
            hf.stop()
    finally:
        for contender in (ours, sglang, hf):
            contender.stop()
    contenders_run = [c for c in (ours, sglang, hf) if c.runs]
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "device": resolve_device(settings.device),
        "model": args.model_path,
        "command": "make bench  (python bench/run.py " + " ".join(sys.argv[1:]) + ")",
        "workload": f"random-ids, input {args.input_len}, output {args.output_len}, range ratio 1.0, seed 1",
        "wall_seconds": round(time.monotonic() - started),
    }
    write_reports(contenders_run, machine, args.out)
    print(f"[bench] done in {machine['wall_seconds']} s; results in {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
