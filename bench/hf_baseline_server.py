"""BASELINE, NOT THE PRODUCT: a faithful minimal rebuild of the HF-transformers server the seed
replaced, kept only so that benchmarks can compare against it.

Its design, as the seed describes the original: FastAPI, one `transformers` model, one
`model.generate` per request, no batching. Requests therefore run one at a time (the original ran
`generate` synchronously in the event loop; here it runs in a worker thread so that tokens can be
streamed, with a lock keeping requests serialized as they were). It speaks just enough of the OpenAI
chat API for `sglang.bench_serving --backend sglang-oai-chat`.

    python bench/hf_baseline_server.py --model-path <checkpoint> --port 8300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
import uuid

import torch
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from transformers import AutoModelForCausalLM, AutoTokenizer, TextIteratorStreamer

MODEL_ID = "hf-transformers-baseline"


def create_app(model_path: str) -> FastAPI:
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.bfloat16)
    model.eval()
    one_at_a_time = threading.Lock()
    app = FastAPI(title="HF-transformers baseline (benchmarks only)")

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "owned_by": "baseline"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> StreamingResponse:
        body = await request.json()
        prompt_ids = tokenizer.apply_chat_template(
            body["messages"], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"]
        max_new = int(body.get("max_completion_tokens") or body.get("max_tokens") or 128)
        temperature = float(body.get("temperature", 1.0))
        options = {
            "max_new_tokens": max_new,
            "min_new_tokens": max_new if body.get("ignore_eos") else 0,
            "do_sample": temperature > 0,
            **({"temperature": temperature} if temperature > 0 else {}),
        }
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        request_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        generated: list[int] = []

        def generate() -> None:
            with one_at_a_time, torch.inference_mode():
                output = model.generate(prompt_ids, streamer=streamer, pad_token_id=tokenizer.eos_token_id, **options)
            generated.extend(output[0, prompt_ids.shape[1] :].tolist())

        thread = threading.Thread(target=generate, daemon=True)
        thread.start()

        def chunk(delta: dict, finish: str | None = None) -> str:
            data = {
                "id": request_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": MODEL_ID,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(data)}\n\n"

        async def events():
            yield chunk({"role": "assistant", "content": ""})
            iterator = iter(streamer)
            while True:
                piece = await asyncio.to_thread(next, iterator, None)
                if piece is None:
                    break
                if piece:
                    yield chunk({"content": piece})
            await asyncio.to_thread(thread.join)
            finish = "length" if len(generated) >= max_new else "stop"
            yield chunk({}, finish)
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {
                    "prompt_tokens": prompt_ids.shape[1],
                    "completion_tokens": len(generated),
                    "total_tokens": prompt_ids.shape[1] + len(generated),
                }
                data = {
                    "id": request_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": MODEL_ID,
                    "choices": [],
                    "usage": usage,
                }
                yield f"data: {json.dumps(data)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8300)
    args = parser.parse_args()
    uvicorn.run(create_app(args.model_path), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
