"""Turn benchmark runs into results.json, a Markdown table (results.md) and a plot (throughput.png)."""

from __future__ import annotations

import json
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


def summarise(runs: list[dict]) -> dict[str, Any]:
    summary = {key: statistics.median(run[key] for run in runs) for key in METRICS}
    summary["errors"] = sum(run["errors"] for run in runs)
    summary["runs"] = len(runs)
    summary["output_throughput_each"] = [round(run["output_throughput"], 2) for run in runs]
    return summary


def throughput_ratio(ours: list[dict], other: list[dict]) -> dict[str, float]:
    """Interleaved pairs: the median of the pairwise ratios. One run of the other: our median over it."""
    if len(other) == 1:
        ratios = [statistics.median(run["output_throughput"] for run in ours) / other[0]["output_throughput"]]
    else:
        ratios = [a["output_throughput"] / b["output_throughput"] for a, b in zip(ours, other, strict=False)]
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios), "pairs": len(ratios)}


def write_reports(contenders: list[Any], machine: dict, out: Path) -> dict:
    ours = contenders[0]
    results: dict[str, Any] = {"machine": machine, "contenders": {}, "ratios": {}}
    for contender in contenders:
        results["contenders"][contender.name] = {
            "port_bound_after_s": round(contender.bound_after_s, 2),
            "ready_after_s": round(contender.ready_after_s, 2),
            "idle_pss_mb": round(contender.idle_pss_mb),
            "peak_pss_mb": round(max(contender.peak_pss_mb, contender.idle_pss_mb)),
            "by_concurrency": {str(c): summarise(runs) for c, runs in sorted(contender.runs.items())},
        }
    for other in contenders[1:]:
        results["ratios"][other.name] = {
            str(c): throughput_ratio(ours.runs[c], other.runs[c]) for c in sorted(ours.runs) if c in other.runs
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
    lines += [
        "",
        f"Output throughput of {ours_name} divided by each contender's, measured in the same run "
        "(median of interleaved pairs, min-max in brackets):",
        "",
        "| versus | " + " | ".join(f"conc. {c}" for c in next(iter(results["ratios"].values()), {})) + " |",
        "|---|" + "---|" * len(next(iter(results["ratios"].values()), {})),
    ]
    for name, by_c in results["ratios"].items():
        cells = [
            f"{r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f})" if r["pairs"] > 1 else f"{r['median']:.2f}"
            for r in by_c.values()
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| contender | port bound after | ready after | memory idle (PSS, all processes) | memory peak |",
        "|---|---|---|---|---|",
    ]
    for name, data in results["contenders"].items():
        lines.append(
            f"| {name} | {data['port_bound_after_s']:.1f} s | {data['ready_after_s']:.1f} s | "
            f"{data['idle_pss_mb']} MB | {data['peak_pss_mb']} MB |"
        )
    return "\n".join(lines) + "\n"


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
