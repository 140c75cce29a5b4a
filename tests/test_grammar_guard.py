"""engine/grammar_guard.py: a grammar mask that leaves a row no token still samples, and only a batch
with a grammar pays for it. The real engine's proof is tests/test_hostile_requests.py ("no token
satisfies" with top_p/min_p, at the start and mid-way: the scheduler died without the guard)."""

from __future__ import annotations

import os

import pytest
import torch

from sglang_hathora.engine import environment, grammar_guard


def _mask_row_zero(_self, logits: torch.Tensor) -> None:
    """What a grammar that allows no token does to its row (xgrammar's masked_fill with -inf)."""
    logits[0].fill_(float("-inf"))


def test_a_row_masked_whole_is_made_finite_and_samples() -> None:
    logits = torch.randn(2, 16)
    untouched = logits[1].clone()
    grammar_guard.guarded(_mask_row_zero)(None, logits)
    assert torch.isfinite(logits).all()
    assert torch.equal(logits[1], untouched)  # a row the grammar allows is left as it was
    probabilities = torch.softmax(logits, dim=-1)
    assert not probabilities.isnan().any()
    torch.multinomial(probabilities, 1)  # raised "probability tensor contains ... inf, nan" unguarded


def test_unguarded_the_same_row_makes_the_sampler_raise() -> None:
    """The failure the guard is for, shown on torch itself (not a hypothesis)."""
    logits = torch.randn(2, 16)
    _mask_row_zero(None, logits)
    with pytest.raises(RuntimeError, match="probability tensor"):
        torch.multinomial(torch.softmax(logits, dim=-1), 1)


def test_sglang_is_not_asked_to_sanitise_every_batch(monkeypatch) -> None:
    monkeypatch.delenv("SGLANG_SANITIZE_NAN_LOGITS", raising=False)
    monkeypatch.setattr(environment.cpu_compat, "apply", lambda: None)
    environment.prepare_for("cpu")
    assert "SGLANG_SANITIZE_NAN_LOGITS" not in os.environ


@pytest.mark.engine
def test_install_wraps_sglangs_grammar_mask_once(monkeypatch) -> None:
    for name in ("PYTHONPATH", "SGLANG_USE_CPU_ENGINE"):  # put back after the test, as they were
        monkeypatch.setenv(name, os.environ.get(name, ""))
    environment.prepare_for(environment.resolve_device("auto"))  # as in a scheduler, before sglang
    from sglang.srt.constrained.base_grammar_backend import GrammarMask

    original = GrammarMask.apply
    try:
        grammar_guard.install()
        guarded = GrammarMask.apply
        grammar_guard.install()
        assert GrammarMask.apply is guarded is not original

        class DeadEnd:
            def apply_vocab_mask(self, logits, vocab_mask) -> None:
                logits.masked_fill_(vocab_mask, float("-inf"))

        logits = torch.randn(1, 8)
        GrammarMask(DeadEnd(), torch.ones(1, 8, dtype=torch.bool)).apply(logits)
        assert torch.isfinite(logits).all()
    finally:
        GrammarMask.apply = original


def test_the_guard_goes_into_sglangs_sampling_children_only(monkeypatch) -> None:
    from sglang_hathora.engine import forkserver

    installed = []
    monkeypatch.setattr(grammar_guard, "install", lambda: installed.append(True))

    def child(name: str, module: str):
        def target() -> None: ...

        target.__name__, target.__module__ = name, module
        return target

    forkserver.guard_if_scheduler(child("run_scheduler_process", "sglang.srt.managers.scheduler"))
    forkserver.guard_if_scheduler(child("run_scheduler_process_with_init_pipe", "sglang.srt.entrypoints.engine"))
    assert len(installed) == 2
    forkserver.guard_if_scheduler(child("run_detokenizer_process", "sglang.srt.managers.detokenizer_manager"))
    forkserver.guard_if_scheduler(child("probe", "tests.test_forkserver"))
    assert len(installed) == 2
