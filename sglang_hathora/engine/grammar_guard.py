"""Where a grammar that allows no token is kept from killing SGLang's scheduler, at a cost paid by
constrained batches only.

The failure (found by the schema-driven fuzz run): a grammar (``regex``, ``ebnf``, ``json_schema``)
that no token of the vocabulary can continue, at the start ("\\x04" with SmolLM2) or mid-way
("P\\x04"), masks a whole row of logits to -inf; with top_p/top_k/min_p, torch.multinomial then raised
"probability tensor contains either inf, nan or element < 0" and the scheduler died. With the row made
finite (-inf -> -1e30) it samples some token, the grammar refuses it and only that request fails (400).

SGLang's own switch for that, SGLANG_SANITIZE_NAN_LOGITS=1, sanitises the logits of every batch at
every step, constrained or not: measured with py-spy (100 Hz, 40 s of one-request decoding of the
bundled model), 0.8% of the scheduler's main thread (26 and 32 of ~3500 samples in two profiles,
about 0.5 ms of a 60-ms step; the operation alone takes 7 us, the rest is waking the second OpenMP
thread while the HTTP and detokenizer processes hold the other core) and none in launch_server's.
Here the same sanitising runs right after a grammar's vocabulary mask is applied (SGLang's
``GrammarMask.apply``, the one place every sampling path applies a mask), so a batch without a
grammar pays nothing. An operator's own SGLANG_SANITIZE_NAN_LOGITS=1 still applies on top.

``install`` runs in the scheduler process, before SGLang's code (engine/forkserver.py), and is idempotent.
"""

from __future__ import annotations

from typing import Any

# SGLang's own sanitising values (sglang.srt.utils.async_probe): finite, so that dividing by a
# temperature cannot overflow them back to inf.
_FLOOR, _CEILING = -1e30, 1e30


def install() -> None:
    from sglang.srt.constrained.base_grammar_backend import GrammarMask

    if getattr(GrammarMask.apply, "_sglang_hathora_guard", False):
        return
    GrammarMask.apply = guarded(GrammarMask.apply)  # type: ignore[method-assign]


def guarded(apply: Any) -> Any:
    import torch

    def apply_then_sanitize(self: Any, logits: torch.Tensor) -> None:
        apply(self, logits)
        torch.nan_to_num_(logits, nan=_FLOOR, posinf=_CEILING, neginf=_FLOOR)

    apply_then_sanitize._sglang_hathora_guard = True  # type: ignore[attr-defined]
    return apply_then_sanitize
