"""Turn benchmark runs into results.json, a Markdown table (results.md) and a plot (throughput.png)."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

METRICS = {
    "request_throughput": "req/s",
    "output_throughput": "out tok/s",
    "median_ttft_ms": "TTFT p50 ms",
    "p99_ttft_ms": "TTFT p99 ms",
    "median_itl_ms": "ITL p50 ms",
    "p99_itl_ms": "ITL p99 ms",
    "median_e2e_latency_ms": "E2E p50 ms",
}


# SGLang's scheduler logs one of these every 40 decode steps (decode_log_interval), in both servers.
_DECODE_LINE = re.compile(r"Decode batch, #running-req: (\d+),.*?gen throughput \(token/s\): ([0-9.]+)")


def summarise(runs: list[dict]) -> dict[str, Any]:
    summary = {key: statistics.median(run[key] for run in runs) for key in METRICS}
    summary["errors"] = sum(run["errors"] for run in runs)
    summary["runs"] = len(runs)
    summary["output_throughput_each"] = [round(run["output_throughput"], 2) for run in runs]
    summary["cpu_ms_per_token"] = cpu_ms_per_token(runs)
    lines = [rate for run in runs for rate in run.get("decode_tok_s", [])]
    if lines:
        summary["scheduler_decode_tok_s"] = {"median": statistics.median(lines), "lines": len(lines)}
    return summary


def decode_rates(log_text: str, running: int) -> list[float]:
    """The scheduler's own decode rate (tokens/s) from its log lines with ``running`` requests in the
    batch: the engine's speed before anything reaches a server's HTTP layer, in both servers alike."""
    return [float(rate) for count, rate in _DECODE_LINE.findall(log_text) if int(count) == running]


def cpu_ms_per_token(runs: list[dict]) -> dict[str, float]:
    """CPU milliseconds per output token of each process (median over the runs). It depends far less on
    how fast the machine is at the moment than throughput does, so it shows what a layer adds per token
    where throughput cannot (here: our HTTP process 1.43 and 1.46 ms per token in two runs whose
    throughput ratios were 0.90 and 1.02). The scheduler's figure is not a cost: its threads spin while
    it runs."""
    titles = sorted({title for run in runs for title in run.get("cpu_seconds", {})})
    return {
        title: round(
            statistics.median(
                run["cpu_seconds"].get(title, 0.0) * 1000 / max(run["total_output_tokens"], 1) for run in runs
            ),
            3,
        )
        for title in titles
    }


def pairwise(ours: list[dict], other: list[dict], key: str = "output_throughput") -> dict[str, Any]:
    """The median of the pairwise ratios of ``key``, their range and the 95% interval of their mean
    (Student's t), which says how finely this run can tell the two apart.

    Alternated runs (A B A B ... A, one more run of whichever went first): each run of the one with
    fewer is compared with the mean of the other's two runs either side of it, so that a drift of the
    machine's speed over the minutes cancels. Runs in pairs (as many of each): run i with run i. One run
    of the other: our median over it."""
    if len(other) == 1:
        ratios = [statistics.median(run[key] for run in ours) / other[0][key]]
    elif len(ours) == len(other) + 1:
        ratios = _bracketed(ours, other, key)
    elif len(other) == len(ours) + 1:
        ratios = [1 / ratio for ratio in _bracketed(other, ours, key)]
    else:
        ratios = [a[key] / b[key] for a, b in zip(ours, other, strict=False)]
    result: dict[str, Any] = {
        "median": statistics.median(ratios),
        "min": min(ratios),
        "max": max(ratios),
        "pairs": len(ratios),
        "each": [round(r, 4) for r in ratios],
    }
    if len(ratios) >= 3:
        from scipy import stats

        mean = statistics.mean(ratios)
        half = stats.t.ppf(0.975, len(ratios) - 1) * statistics.stdev(ratios) / len(ratios) ** 0.5
        result.update(mean=mean, ci95=[mean - half, mean + half])
    return result


def decode_medians(runs: list[dict]) -> list[dict]:
    """Each run as its scheduler's median decode rate, for ``pairwise``."""
    return [{"decode_median": statistics.median(run["decode_tok_s"])} for run in runs]


def _bracketed(more: list[dict], fewer: list[dict], key: str) -> list[float]:
    """Each run of ``fewer`` against the mean of the runs of ``more`` either side of it."""
    return [
        (before[key] + after[key]) / 2 / run[key] for before, after, run in zip(more, more[1:], fewer, strict=False)
    ]


def write_reports(contenders: list[Any], machine: dict, out: Path) -> dict:
    ours = contenders[0]
    results: dict[str, Any] = {"machine": machine, "contenders": {}, "ratios": {}, "itl_ratios": {}}
    for contender in contenders:
        results["contenders"][contender.name] = {
            "port_bound_after_s": round(contender.bound_after_s, 2),
            "ready_after_s": round(contender.ready_after_s, 2),
            "idle_pss_mb": round(contender.idle_pss_mb),
            "peak_pss_mb": round(max(contender.peak_pss_mb, contender.idle_pss_mb)),
            "by_concurrency": {str(c): summarise(runs) for c, runs in sorted(contender.runs.items())},
        }
    for other in contenders[1:]:
        shared = [c for c in sorted(ours.runs) if c in other.runs]
        results["ratios"][other.name] = {str(c): pairwise(ours.runs[c], other.runs[c]) for c in shared}
        results["itl_ratios"][other.name] = {
            str(c): pairwise(ours.runs[c], other.runs[c], "median_itl_ms") for c in shared
        }
        with_lines = [c for c in shared if all(run.get("decode_tok_s") for run in ours.runs[c] + other.runs[c])]
        if with_lines:
            results.setdefault("decode_ratios", {})[other.name] = {
                str(c): pairwise(decode_medians(ours.runs[c]), decode_medians(other.runs[c]), "decode_median")
                for c in with_lines
            }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results, ours.name))
    plot(results, out / "throughput.png")
    return results


def markdown(results: dict, ours_name: str) -> str:
    machine = results["machine"]
    lines = [
        f"Machine: {machine['cores']} cores ({machine['cpu']}), {machine['memory_gb']} GB RAM, "
        f"device {machine['device']}, Python {machine['python']}. Model: `{Path(machine['model']).name}`. "
        f"Workload: {machine['workload']}. Command: `{machine['command']}` ({machine['wall_seconds']} s in all).",
        "",
        "| contender | conc. | runs | req/s | out tok/s | TTFT p50 / p99 ms | ITL p50 / p99 ms | E2E p50 ms | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, data in results["contenders"].items():
        for concurrency, s in data["by_concurrency"].items():
            lines.append(
                f"| {name} | {concurrency} | {s['runs']} | {s['request_throughput']:.2f} "
                f"| {s['output_throughput']:.1f} | {s['median_ttft_ms']:.0f} / {s['p99_ttft_ms']:.0f} "
                f"| {s['median_itl_ms']:.0f} / {s['p99_itl_ms']:.0f} | {s['median_e2e_latency_ms']:.0f} "
                f"| {s['errors']} |"
            )
    for key, what in (
        ("ratios", "Output throughput"),
        ("itl_ratios", "Median inter-token latency"),
        ("decode_ratios", "The scheduler's own decode rate (SGLang's log lines with a full batch, each run's median)"),
    ):
        lines += ratio_table(results.get(key, {}), what, ours_name)
    lines += [
        "",
        "CPU milliseconds per output token, by process (median of the runs; the scheduler's threads spin "
        "while it runs, so its figure follows the run's length):",
        "",
        "| contender | conc. | HTTP process | detokenizer | scheduler |",
        "|---|---|---|---|---|",
    ]
    for name, data in results["contenders"].items():
        for concurrency, s in data["by_concurrency"].items():
            cpu = s.get("cpu_ms_per_token", {})
            cells = [cpu.get(t) for t in ("server", "sglang::detokenizer", "sglang::scheduler")]
            lines.append(
                f"| {name} | {concurrency} | " + " | ".join("-" if c is None else f"{c:.2f}" for c in cells) + " |"
            )
    lines += [
        "",
        "| contender | port bound after | ready after | memory idle (PSS, all processes) | memory after a run (max) |",
        "|---|---|---|---|---|",
    ]
    for name, data in results["contenders"].items():
        lines.append(
            f"| {name} | {data['port_bound_after_s']:.1f} s | {data['ready_after_s']:.1f} s | "
            f"{data['idle_pss_mb']} MB | {data['peak_pss_mb']} MB |"
        )
    return "\n".join(lines) + "\n"


def ratio_table(ratios: dict, what: str, ours_name: str) -> list[str]:
    if not ratios:
        return []
    concurrencies = next(iter(ratios.values()))
    lines = [
        "",
        f"{what} of {ours_name} divided by each contender's, measured in the same run: the median of the "
        "pairwise ratios (alternated runs: each against the other's runs either side of it), their range, "
        "and the 95% interval of their mean:",
        "",
        "| versus | " + " | ".join(f"conc. {c}" for c in concurrencies) + " |",
        "|---|" + "---|" * len(concurrencies),
    ]
    for name, by_c in ratios.items():
        lines.append(f"| {name} | " + " | ".join(ratio_cell(r) for r in by_c.values()) + " |")
    return lines


def ratio_cell(r: dict) -> str:
    if r["pairs"] == 1:
        return f"{r['median']:.2f}"
    cell = f"{r['median']:.2f} (range {r['min']:.2f}-{r['max']:.2f}"
    if "ci95" in r:
        cell += f"; mean {r['mean']:.2f}, 95% {r['ci95'][0]:.2f}-{r['ci95'][1]:.2f}"
    return cell + ")"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (throughput, ttft) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, data in results["contenders"].items():
        xs = [int(c) for c in data["by_concurrency"]]
        throughput.plot(xs, [s["output_throughput"] for s in data["by_concurrency"].values()], marker="o", label=name)
        ttft.plot(xs, [s["median_ttft_ms"] / 1000 for s in data["by_concurrency"].values()], marker="o", label=name)
    for axis, title, unit in ((throughput, "Output throughput", "tokens/s"), (ttft, "Time to first token (p50)", "s")):
        axis.set_xscale("log", base=2)
        axis.set_xticks([int(c) for c in next(iter(results["contenders"].values()))["by_concurrency"]])
        axis.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axis.set_xlabel("concurrent requests")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.grid(alpha=0.3)
    ttft.set_yscale("log")
    throughput.legend()
    machine = results["machine"]
    figure.suptitle(
        f"{Path(machine['model']).name} on {machine['cores']} cores ({machine['device']}), {machine['workload']}",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
