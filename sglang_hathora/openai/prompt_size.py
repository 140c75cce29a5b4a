"""Where a prompt's size is checked against the context before SGLang tokenizes it on the event loop.

SGLang tokenizes on the serving loop: measured here, a 6 MB prompt stalled /health and every
stream for 2.5-3.7 s, and the bundled tokenizer takes about 1.1 s per million characters. So:
1. a prompt with more characters than the context could hold even if every token were the
   vocabulary's longest (81 characters for SmolLM2) is refused at once, without tokenizing;
2. a prompt above ``_COUNT_ABOVE_BYTES`` is counted in a worker thread, on a private copy of the
   tokenizer, in slices, stopping as soon as the count passes the context (the Rust tokenizer
   releases the GIL: the loop's longest gap was 44 ms while a thread encoded 5 MB);
3. what is left for SGLang to tokenize on the loop fits the context (4096 tokens: about 25 ms).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from sglang_hathora.openai.request_bounds import Problem

_COUNT_ABOVE_BYTES = 16 * 1024  # about 18 ms of tokenizing on the loop, below that SGLang's own pass is cheap
_SLICE_CHARS = 32 * 1024


class PromptSizer:
    def __init__(self, tokenizer: Any, context_length: int) -> None:
        self.context_length = context_length
        vocab = tokenizer.get_vocab()
        # Byte-level vocabularies spell each byte as one character, so a token's spelling is at
        # least as long as the text it stands for: an upper bound on characters per token.
        self.max_token_chars = max((len(token) for token in vocab), default=1)
        backend = getattr(tokenizer, "backend_tokenizer", None)
        self._counter = None
        if backend is not None:
            from tokenizers import Tokenizer

            # A private copy: SGLang's tokenizer is used on the loop at the same time.
            self._counter = Tokenizer.from_str(backend.to_str())

    async def check(self, texts: list[str], param: str) -> Problem | None:
        """A context_length_exceeded problem if ``texts`` (one sequence) cannot fit, else None."""
        chars = sum(len(text) for text in texts)
        if chars > self.context_length * self.max_token_chars:
            return self._too_long(param, f"{chars} characters")
        if self._counter is None or sum(len(text.encode()) for text in texts) <= _COUNT_ABOVE_BYTES:
            return None
        tokens = await asyncio.to_thread(self._count_until_over, texts)
        return self._too_long(param, f"at least {tokens} tokens") if tokens > self.context_length else None

    def _count_until_over(self, texts: list[str]) -> int:
        total = 0
        for text in texts:
            for start in range(0, len(text), _SLICE_CHARS):
                # Slicing can split a word: each cut adds at most one token, so it is subtracted.
                total += len(self._counter.encode(text[start : start + _SLICE_CHARS], add_special_tokens=False)) - 1
                if total > self.context_length:
                    return total
        return total

    def _too_long(self, param: str, size: str) -> Problem:
        return Problem(
            param,
            f"This model's maximum context length is {self.context_length} tokens; the input is {size}.",
            "context_length_exceeded",
        )


def chat_texts(request: Any) -> list[str]:
    """Every string of a chat request that its template renders into the prompt."""
    texts: list[str] = []
    for message in request.messages:
        content = message.content
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(getattr(part, "text", None) or getattr(part, "thinking", None) or "" for part in content)
        for name in ("name", "reasoning_content", "tool_call_id"):
            if isinstance(value := getattr(message, name, None), str):
                texts.append(value)
        for extra in (getattr(message, "tool_calls", None), getattr(message, "tools", None)):
            if extra:
                texts.append(orjson.dumps([item.model_dump(mode="json") for item in extra]).decode())
    if request.tools:
        texts.append(orjson.dumps([tool.model_dump(mode="json") for tool in request.tools]).decode())
    return texts


def completion_prompts(request: Any) -> list[str]:
    """The text prompts of a completion request (token-id prompts are counted by their length)."""
    prompt = request.prompt
    if isinstance(prompt, str):
        return [prompt]
    return [item for item in prompt if isinstance(item, str)]
