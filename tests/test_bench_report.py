"""bench/report.py: the pairwise ratios, their interval, and the CPU per token that the tables report."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bench import report


def run(throughput: float, itl: float, tokens: int = 384, server_cpu: float = 0.5) -> dict:
    return {
        "request_throughput": throughput / 64,
        "output_throughput": throughput,
        "median_ttft_ms": 150.0,
        "p99_ttft_ms": 220.0,
        "median_itl_ms": itl,
        "p99_itl_ms": 2 * itl,
        "median_e2e_latency_ms": 6000.0,
        "errors": 0,
        "total_output_tokens": tokens,
        "cpu_seconds": {"server": server_cpu, "sglang::detokenizer": 0.2, "sglang::scheduler": 70.0},
    }


@dataclass
class Contender:
    name: str
    runs: dict[int, list[dict]] = field(default_factory=dict)
    bound_after_s: float = 1.0
    ready_after_s: float = 12.0
    idle_pss_mb: float = 1950.0
    peak_pss_mb: float = 1960.0


def test_pairwise_ratio_is_the_median_of_pairs_with_a_t_interval_of_their_mean():
    ours = [run(t, 80) for t in (10.0, 9.0, 12.0, 10.0)]
    other = [run(t, 80) for t in (10.0, 10.0, 10.0, 8.0)]
    ratio = report.pairwise(ours, other)
    assert ratio["each"] == [1.0, 0.9, 1.2, 1.25]
    assert ratio["median"] == pytest.approx(1.1)
    assert (ratio["min"], ratio["max"], ratio["pairs"]) == (0.9, 1.25, 4)
    assert ratio["mean"] == pytest.approx(1.0875)
    # t(0.975, 3) = 3.182; sample standard deviation of the four ratios 0.1652
    half = 3.1824 * 0.16520 / 2
    assert ratio["ci95"] == pytest.approx([1.0875 - half, 1.0875 + half], abs=1e-3)


def test_alternated_runs_compare_each_run_with_the_mean_of_its_neighbours():
    # A B A B A with the machine slowing down steadily: a tie, whichever server went first.
    ours = [run(t, 80) for t in (12.0, 10.0, 8.0)]
    other = [run(t, 80) for t in (11.0, 9.0)]
    assert report.pairwise(ours, other)["each"] == [1.0, 1.0]
    assert report.pairwise(other, ours)["each"] == [1.0, 1.0]
    # B A B A B: ours' runs against the mean of the other's either side
    ours = [run(t, 80) for t in (11.0, 10.0)]
    other = [run(t, 80) for t in (10.0, 10.0, 10.0)]
    assert report.pairwise(ours, other)["each"] == [1.1, 1.0]


def test_two_pairs_have_no_interval_and_one_run_of_the_other_compares_our_median():
    two = report.pairwise([run(10, 80), run(11, 80)], [run(10, 80), run(10, 80)])
    assert "ci95" not in two and two["pairs"] == 2
    one = report.pairwise([run(9, 80), run(12, 80), run(10, 80)], [run(5, 80)])
    assert one["median"] == pytest.approx(2.0) and one["pairs"] == 1


def test_itl_ratio_uses_the_runs_median_itl():
    ratio = report.pairwise(
        [run(10, 88), run(10, 90), run(10, 81)], [run(10, 80), run(10, 90), run(10, 90)], "median_itl_ms"
    )
    assert ratio["each"] == [1.1, 1.0, 0.9]


def test_cpu_per_token_is_each_process_median_in_milliseconds():
    runs = [
        run(10, 80, tokens=400, server_cpu=0.4),
        run(10, 80, tokens=200, server_cpu=0.5),
        run(10, 80, server_cpu=0.3),
    ]
    cpu = report.cpu_ms_per_token(runs)
    assert cpu["server"] == pytest.approx(1.0)  # 1.0, 2.5, 0.78 ms per token
    assert cpu["sglang::detokenizer"] == pytest.approx(0.521, abs=1e-3)


def test_reports_carry_both_ratio_tables_and_the_cpu_table(tmp_path, monkeypatch):
    # matplotlib is one of bench/requirements.txt, installed by `make bench` only: the plot is left out here.
    monkeypatch.setattr(report, "plot", lambda results, path: path.write_bytes(b"png"))
    ours, other = Contender("sglang-hathora"), Contender("sglang.launch_server")
    ours.runs = {1: [run(10, 80), run(9, 84), run(11, 79)], 8: [run(40, 190), run(38, 200), run(41, 185)]}
    other.runs = {1: [run(10, 82), run(10, 82), run(10, 82)], 8: [run(39, 190), run(39, 190), run(39, 190)]}
    machine = {
        "cpu": "x86_64",
        "cores": 2,
        "memory_gb": 23.5,
        "python": "3.11",
        "device": "cpu",
        "model": "/m/SmolLM2-135M-Instruct",
        "command": "make bench",
        "workload": "random-ids",
        "wall_seconds": 1,
    }
    results = report.write_reports([ours, other], machine, tmp_path)
    assert results["ratios"]["sglang.launch_server"]["1"]["median"] == pytest.approx(1.0)
    assert results["itl_ratios"]["sglang.launch_server"]["8"]["each"] == [1.0, 1.0526, 0.9737]
    text = (tmp_path / "results.md").read_text()
    assert "Output throughput of sglang-hathora divided by" in text
    assert "Median inter-token latency of sglang-hathora divided by" in text
    assert "| sglang.launch_server | 1.00 (range 0.90-1.10; mean 1.00, 95% " in text
    assert "| sglang-hathora | 1 | 1.30 | 0.52 | 182.29 |" in text
    assert (tmp_path / "throughput.png").stat().st_size > 0


# One line of each server's log as it is written (ours through the server's own log format).
OURS_LINE = (
    "2026-12-04 01:53:59,049 - sglang - INFO - Decode batch, #running-req: 1, #token: 216, token usage: 0.05, "
    "cpu graph: False, gen throughput (token/s): 12.71, #queue-req: 0"
)
LAUNCH_SERVER_LINE = (
    "[2026-12-04 01:54:02] Decode batch, #running-req: 8, #token: 1500, token usage: 0.37, cpu graph: False, "
    "gen throughput (token/s): 27.40, #queue-req: 0, "
)


def test_decode_rates_are_the_schedulers_lines_at_the_runs_concurrency():
    text = "\n".join([OURS_LINE, LAUNCH_SERVER_LINE, OURS_LINE.replace("12.71", "13.5"), "Prefill batch, ..."])
    assert report.decode_rates(text, 1) == [12.71, 13.5]
    assert report.decode_rates(text, 8) == [27.4]
    assert report.decode_rates("no such line", 1) == []


def test_reports_compare_the_schedulers_decode_rates_when_both_logged_them(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "plot", lambda results, path: path.write_bytes(b"png"))
    ours, other = Contender("sglang-hathora"), Contender("sglang.launch_server")
    ours.runs = {1: [{**run(10, 80), "decode_tok_s": rates} for rates in ([10, 11, 12], [9.0], [13.0, 13.0])]}
    other.runs = {1: [{**run(10, 80), "decode_tok_s": rates} for rates in ([10.0], [10.0, 10.0])]}
    machine = {"cpu": "x86_64", "cores": 2, "memory_gb": 23.5, "python": "3.11", "device": "cpu"}
    machine |= {"model": "/m/SmolLM2", "command": "make bench", "workload": "random-ids", "wall_seconds": 1}
    results = report.write_reports([ours, other], machine, tmp_path)
    # each of the other's runs (10) against the mean of ours' run medians either side: (11 + 9) / 2, (9 + 13) / 2
    assert results["decode_ratios"]["sglang.launch_server"]["1"]["each"] == [1.0, 1.1]
    assert results["contenders"]["sglang-hathora"]["by_concurrency"]["1"]["scheduler_decode_tok_s"] == {
        "median": 11.5,
        "lines": 6,
    }
    assert "The scheduler's own decode rate" in (tmp_path / "results.md").read_text()
