"""``make bench-simultaneous``: this server and ``sglang.launch_server`` measured at the same time, each
engine on its own core, so that the machine's drift is the same for both in every pair.

``make bench`` runs the two one after the other, each with both cores (as deployed), and on this 2-core
VM one pair's throughput ratio then has a standard deviation of about 0.08: the machine's speed moves
by a quarter within minutes, so a 1-2% difference needs hundreds of pairs there. Here four servers are
started (ours and launch_server, each with its scheduler bound to core 0 and to core 1, one OpenMP
thread) and each round runs ``sglang.bench_serving`` against one of each at once, on different cores:
ours on 0 and launch_server on 1, then the other way round, alternately, so that a difference between
the cores cancels. Their HTTP processes, detokenizers and the clients share both cores alike. Each
round's ratio is ours over launch_server's in that round.

It measures the engine as each server drives it, not the deployed configuration: one OpenMP thread
per engine instead of two. Results: bench/results/simultaneous.json and the table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from bench import run  # noqa: E402
from bench.report import decode_medians, pairwise, ratio_cell  # noqa: E402
from sglang_hathora.engine import bundled_model  # noqa: E402
from sglang_hathora.settings import Settings  # noqa: E402

SCHEDULER_TITLE = "sglang::schedul"  # SGLang's "sglang::scheduler": the kernel keeps 15 characters, psutil may give all


def pin_threads(pid: int, core: int) -> int:
    """Bind every thread of process ``pid`` to ``core`` (threads it starts later inherit it); returns
    how many were bound."""
    tids = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    for tid in tids:
        os.sched_setaffinity(tid, {core})
    return len(tids)


def scheduler_pid(server_pid: int) -> int:
    found = [p.pid for p in psutil.Process(server_pid).children(recursive=True) if p.name().startswith(SCHEDULER_TITLE)]
    if len(found) != 1:
        raise RuntimeError(f"expected one SGLang scheduler under {server_pid}, found {len(found)}")
    return found[0]


def main() -> int:
    parser = argparse.ArgumentParser(description="both SGLang servers at once, one core each")
    parser.add_argument("--model-path", default=None)
    parser.add_argument("--input-len", type=int, default=128)
    parser.add_argument("--output-len", type=int, default=64)
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--rounds", type=int, default=10, help="rounds per concurrency (even: as many on each core)")
    parser.add_argument("--prompts-per-concurrency", type=float, default=2.0, help="prompts = max(16, this x C)")
    parser.add_argument("--out", type=Path, default=PROJECT / "bench" / "results")
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        parser.error("needs two cores")

    settings = Settings()
    args.model_path = args.model_path or settings.model_path or str(bundled_model.prepare(settings.model_cache_dir))
    args.tokenizer = args.model_path
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="sglang-hathora-simul-"))  # logs, bench_serving's files
    servers: dict[tuple[str, int], run.Contender] = {}
    for core in (0, 1):
        (scratch / str(core)).mkdir()
        ours, sglang, _ = run.contenders(args, scratch / str(core))
        for contender in (ours, sglang):
            contender.env["OMP_NUM_THREADS"] = "1"
            servers[contender.name, core] = contender
    rounds = [((run.OURS, 0), (run.SGLANG, 1)), ((run.OURS, 1), (run.SGLANG, 0))]
    results: dict[str, dict] = {}
    try:
        for (name, core), contender in servers.items():
            contender.start()
            bound = pin_threads(scheduler_pid(contender.proc.pid), core)
            print(f"[bench] {name} on core {core}: {bound} scheduler threads bound", flush=True)
        with ThreadPoolExecutor(2) as pool:

            def together(pair: tuple, concurrency: int, prompts: int) -> list[dict]:
                futures = [
                    pool.submit(run.bench_serving, servers[key], concurrency, prompts, args, scratch) for key in pair
                ]
                return [future.result() for future in futures]

            for pair in rounds:  # one unrecorded pass each: the first benchmark after start-up runs slower
                together(pair, 8, 16)
            for concurrency in (int(c) for c in args.concurrency.split(",")):
                prompts = max(16, int(args.prompts_per_concurrency * concurrency))
                ours_runs, sglang_runs = [], []
                for index in range(args.rounds):
                    ours_run, sglang_run = together(rounds[index % 2], concurrency, prompts)
                    ours_runs.append(ours_run)
                    sglang_runs.append(sglang_run)
                results[str(concurrency)] = {
                    "prompts": prompts,
                    "throughput": pairwise(ours_runs, sglang_runs, "output_throughput"),
                    "median_itl": pairwise(ours_runs, sglang_runs, "median_itl_ms"),
                    "ours_tok_s": [round(r["output_throughput"], 2) for r in ours_runs],
                    "sglang_tok_s": [round(r["output_throughput"], 2) for r in sglang_runs],
                }
                if all(run["decode_tok_s"] for run in ours_runs + sglang_runs):  # none if a run logged no full batch
                    results[str(concurrency)]["scheduler_decode"] = pairwise(
                        decode_medians(ours_runs), decode_medians(sglang_runs), "decode_median"
                    )
    finally:
        for contender in servers.values():
            contender.stop()
    command = "make bench-simultaneous  (python bench/simultaneous.py " + " ".join(sys.argv[1:]) + ")"
    report = {"command": command, "wall_seconds": round(time.monotonic() - started), "by_concurrency": results}
    (args.out / "simultaneous.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{command}, {report['wall_seconds']} s: {run.OURS} / {run.SGLANG}, round by round\n")
    print("| conc. | output throughput | median ITL | scheduler decode rate |\n|---|---|---|---|")
    for concurrency, r in results.items():
        cells = (ratio_cell(r[key]) if key in r else "-" for key in ("throughput", "median_itl", "scheduler_decode"))
        print(f"| {concurrency} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
