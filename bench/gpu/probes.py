"""Small measurements the GPU lifecycle run takes: GPU memory, page cache, vLLM's log, one timed request.

Kept apart from the run's phases so each phase reads as the steps it times.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

# vLLM's own log lines for the steps of a boot and of sleep/wake (vllm 0.25.0 wording).
LOG_PATTERNS: dict[str, str] = {
    "weights_load_s": r"Loading weights took ([\d.]+) seconds",
    "model_loading_gib": r"Model loading took ([\d.]+) GiB",
    "model_loading_s": r"Model loading took [\d.]+ GiB (?:memory )?and ([\d.]+) seconds",
    "dynamo_transform_s": r"Dynamo bytecode transform time: ([\d.]+) s",
    "compile_cache_load_s": r"from the cache, took ([\d.]+) s",
    "torch_compile_total_s": r"torch.compile took ([\d.]+) s in total",
    "cuda_graph_capture_s": r"Graph capturing finished in ([\d.]+) secs",
    "init_engine_s": r"init engine \(profile, create kv cache, warmup model\) took ([\d.]+)",
    "kv_cache_gib": r"Available KV cache memory: ([\d.]+) GiB",
    "kv_cache_tokens": r"GPU KV cache size: ([\d,]+) tokens",
    "fell_asleep_s": r"It took ([\d.]+) seconds to fall asleep",
    "woke_up_s": r"It took ([\d.]+) seconds to wake up",
    "sleep_freed_gib": r"CuMemAllocator: sleep freed ([\d.]+) GiB",
    "attention_backend": r"Using (\S+) (?:attention )?backend",
}
# These repeat (one per sleep or wake); the others are read once per boot.
REPEATED = {"fell_asleep_s", "woke_up_s", "sleep_freed_gib"}
ERROR_LINE = re.compile(r"Error|Traceback|CUDA out of memory")


def gpu_memory() -> dict[str, Any]:
    """Used and total memory of GPU 0 as nvidia-smi reports it (MiB), or the error."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.used,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
        used, total = (int(x) for x in out.strip().splitlines()[0].split(","))
        return {"used_mib": used, "total_mib": total, "used_gb": round(used * 2**20 / 1e9, 2)}
    except (OSError, subprocess.SubprocessError, ValueError) as error:
        return {"error": repr(error)}


def gpu_info() -> dict[str, str]:
    """The GPU's name and driver, for the results file."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.strip()
        name, driver, total = (x.strip() for x in out.splitlines()[0].split(","))
        return {"name": name, "driver": driver, "memory_total": total}
    except (OSError, subprocess.SubprocessError, ValueError) as error:
        return {"error": repr(error)}


def wait_gpu_free(limit_mib: int = 3000, timeout: float = 60.0) -> dict[str, Any]:
    """Wait until a stopped server's memory is back, so the next boot starts from an idle GPU."""
    deadline = time.monotonic() + timeout
    memory = gpu_memory()
    while memory.get("used_mib", 0) > limit_mib and time.monotonic() < deadline:
        time.sleep(0.5)
        memory = gpu_memory()
    return memory


def drop_page_cache() -> bool | str:
    """Drop the page cache, so each boot reads the weights from disk as a fresh container does."""
    try:
        subprocess.run(["sync"], timeout=120, check=False)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except (OSError, subprocess.SubprocessError) as error:
        return repr(error)


def parse_log(text: str) -> dict[str, Any]:
    """The figures vLLM logs about itself (weights, compile, graphs, KV cache, sleep/wake)."""
    found: dict[str, Any] = {}
    for line in text.splitlines():
        for key, pattern in LOG_PATTERNS.items():
            match = re.search(pattern, line)
            if not match:
                continue
            raw = match.group(1).replace(",", "")
            value: Any
            try:
                value = float(raw)
            except ValueError:
                value = raw
            if key in REPEATED:
                found.setdefault(key, []).append(value)
            else:
                found.setdefault(key, value)
    return found


def error_lines(text: str, limit: int = 20) -> list[str]:
    """The last lines that look like errors, for a failure report."""
    return [line[-300:] for line in text.splitlines() if ERROR_LINE.search(line)][-limit:]


def timed_chat(
    base_url: str, model: str, prompt: str, *, max_tokens: int = 16, timeout: float = 300.0
) -> dict[str, Any]:
    """One streamed chat request: time to first token and total, as a client sees them."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    first: float | None = None
    tokens = None
    # The client is made before the clock starts: building one loads a CA bundle (tens of ms).
    with httpx.Client(timeout=timeout) as client:
        started = time.perf_counter()
        with client.stream("POST", f"{base_url}/v1/chat/completions", json=body) as response:
            if response.status_code != 200:
                response.read()
                return {"status": response.status_code, "body": response.text[:300]}
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if chunk.get("usage"):
                    tokens = chunk["usage"].get("completion_tokens")
                for choice in chunk.get("choices", []):
                    if first is None and (choice.get("delta") or {}).get("content"):
                        first = time.perf_counter() - started
    total = time.perf_counter() - started
    return {
        "status": 200,
        "ttft_ms": round(first * 1000, 2) if first is not None else None,
        "total_ms": round(total * 1000, 2),
        "completion_tokens": tokens,
    }


def status_of(url: str, method: str = "GET") -> int:
    """The HTTP status a path answers with (a probe of the edge's allowlist)."""
    with httpx.Client(timeout=30.0) as client:
        return client.request(method, url).status_code
