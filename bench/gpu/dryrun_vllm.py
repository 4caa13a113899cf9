"""A stand-in for vLLM's HTTP surface, to check the GPU runner's plumbing on a machine with no GPU.

Device time is scarce, so ``lifecycle.py --dry-run`` runs every phase here first against
this server (started through the same Engine, with the same argv shape). It answers the
routes the runner and the edge touch -- health, sleep/wake, chat and completions with
streaming and usage -- with canned tokens. It produces no figure worth reporting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

STATE = {"sleeping": False}


async def health(request: Request) -> Response:
    return Response(status_code=200)


async def sleep(request: Request) -> Response:
    await asyncio.sleep(0.2)
    STATE["sleeping"] = True
    print("It took 0.2 seconds to fall asleep.", flush=True)
    return Response(status_code=200)


async def wake_up(request: Request) -> Response:
    await asyncio.sleep(0.1)
    STATE["sleeping"] = False
    print("It took 0.1 seconds to wake up.", flush=True)
    return Response(status_code=200)


async def is_sleeping(request: Request) -> Response:
    return JSONResponse({"is_sleeping": STATE["sleeping"]})


async def models(request: Request) -> Response:
    return JSONResponse({"object": "list", "data": [{"id": "bench-llama-7b", "object": "model"}]})


async def generate(request: Request) -> Response:
    body = json.loads(await request.body())
    count = int(body.get("max_tokens") or 16)
    chat = request.url.path.endswith("chat/completions")

    def choice(text: str) -> dict[str, object]:
        return {"index": 0, "delta": {"content": text}} if chat else {"index": 0, "text": text}

    if not body.get("stream"):
        message = {"message": {"role": "assistant", "content": "x" * count}} if chat else {"text": "x" * count}
        if body.get("logprobs") and not chat:  # greedy.py's probe: deterministic ids, as the real one is
            seed = len(str(body.get("prompt")))
            ids = [(seed * 31 + i * 7) % 32000 for i in range(count)]
            tokens = [f"token_id:{i}" for i in ids]
            message["logprobs"] = {"tokens": tokens, "token_logprobs": [-1.0] * count}
        return JSONResponse({"choices": [{"index": 0, **message}], "usage": {"completion_tokens": count}})

    async def events() -> AsyncIterator[bytes]:
        for _ in range(count):
            await asyncio.sleep(0.002)
            yield f"data: {json.dumps({'id': 'x', 'created': int(time.time()), 'choices': [choice('x')]})}\n\n".encode()
        usage = {"prompt_tokens": 8, "completion_tokens": count, "total_tokens": count + 8}
        yield f"data: {json.dumps({'id': 'x', 'choices': [], 'usage': usage})}\n\n".encode()
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


async def dev_route(request: Request) -> Response:
    return JSONResponse({"dev": True})


def main() -> None:
    """Serve on --port; every other vLLM flag is accepted and ignored."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args, _ = parser.parse_known_args()
    app = Starlette(
        routes=[
            Route("/health", health),
            Route("/sleep", sleep, methods=["POST"]),
            Route("/wake_up", wake_up, methods=["POST"]),
            Route("/is_sleeping", is_sleeping),
            Route("/v1/models", models),
            Route("/v1/chat/completions", generate, methods=["POST"]),
            Route("/v1/completions", generate, methods=["POST"]),
            Route("/collective_rpc", dev_route, methods=["POST"]),
            Route("/server_info", dev_route),
            Route("/reset_prefix_cache", dev_route, methods=["POST"]),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
