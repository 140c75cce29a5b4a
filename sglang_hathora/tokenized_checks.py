"""Where a request is checked on what SGLang tokenized, before the scheduler sees it:
``refuse_empty_token_lists``.

Some text has no tokens at all: SmolLM2's byte-level BPE has no token for 32 of the 256 bytes (0x06,
for one) and drops them, so the completions prompt "\\x06" becomes zero input ids. SGLang sends such a
request on, and a zero-token extend kills the scheduler (rotary embedding: "cannot reshape tensor of 0
elements"): found by the schema-driven fuzz run. Checking the text cannot tell (it depends on the
vocabulary); the ids can, and SGLang validates them in ``_validate_one_request`` on every path
(single, batch, n > 1), raising ValueError, which its serving layer answers with a 400.
"""

from __future__ import annotations

from typing import Any

EMPTY_PROMPT = (
    "The prompt is empty once tokenized: none of its characters maps to a token of this model. "
    "Send text the model can read."
)


def refuse_empty_token_lists(tokenizer_manager: Any) -> None:
    validate = tokenizer_manager._validate_one_request

    def validating(obj: Any, input_ids: Any, *args: Any, **kwargs: Any) -> Any:
        if input_ids is not None and len(input_ids) == 0 and getattr(obj, "input_embeds", None) is None:
            raise ValueError(EMPTY_PROMPT)
        return validate(obj, input_ids, *args, **kwargs)

    tokenizer_manager._validate_one_request = validating
