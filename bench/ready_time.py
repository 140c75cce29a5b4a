"""Time to ready, this server against ``python -m sglang.launch_server`` with the same engine
arguments (``make bench-ready``): started one at a time, in interleaved pairs (A B, B A, ...), each
measured from spawn to the first answered one-token chat completion; reports each run, the median of each, and the
median of the pairwise ratios (ours / launch_server, below 1.0 = ours is ready sooner)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import PROJECT, contenders
from sglang_hathora.engine import bundled_model
from sglang_hathora.settings import Settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--model-path", default=None)
    parser.add_argument("--out", type=Path, default=PROJECT / "bench" / "results")
    args = parser.parse_args()
    settings = Settings()
    args.model_path = args.model_path or settings.model_path or str(bundled_model.prepare(settings.model_cache_dir))
    args.tokenizer = args.model_path
    work = Path(tempfile.mkdtemp(prefix="sglang-hathora-ready-"))
    ours, sglang, _hf = contenders(args, work)
    times: dict[str, list[float]] = {ours.name: [], sglang.name: []}
    for pair in range(args.pairs):
        for template in (ours, sglang) if pair % 2 == 0 else (sglang, ours):
            run = dataclasses.replace(template, proc=None, bound_after_s=None, ready_after_s=None, runs={})
            try:
                run.start()
                times[run.name].append(run.ready_after_s)
            finally:
                run.stop()
            time.sleep(2)  # let the previous tree's memory go before the next start
    ratios = [a / b for a, b in zip(times[ours.name], times[sglang.name], strict=True)]
    result = {
        "ready_after_s": times,
        "median_s": {name: round(statistics.median(values), 2) for name, values in times.items()},
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ready.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"[bench-ready] {json.dumps(result)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
