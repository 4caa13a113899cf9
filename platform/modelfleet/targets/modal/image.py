"""The container image of a model's app: every layer pinned, so a rebuild serves the same stack.

Layers, in order: the declared base image by tag; one ``uv pip install`` of
``vllm==X``, the model's own pinned packages and the platform's runtime packages
(uv itself pinned by ``uv_version``), resolved together so that a conflict fails the
build with uv's explanation instead of leaving a half-upgraded vLLM; the
environment (caches on the volumes, offline hub, vLLM dev mode only when snapshots
need sleep/wake); last the ``modelfleet`` package itself, mounted at container start
so a platform change does not rebuild the heavy layers.
"""

from __future__ import annotations

import modal

from modelfleet.runtime.command import sleep_mode, vllm_env
from modelfleet.targets.modal.bundle import BUNDLE_ENV, ModelBundle

# What ``modelfleet`` itself imports inside a container (the edge, the engine, the
# seeder), pinned to the versions the platform is developed and tested with; a test
# keeps them equal to the development environment's. vLLM's own dependencies
# (torch, transformers, gguf) come with vLLM.
RUNTIME_PACKAGES: tuple[str, ...] = (
    "httpx==0.28.1",
    "huggingface_hub[hf_xet]==2.4.0",
    "pydantic==2.14.4",
    "pydantic-settings==2.16.3",
    "starlette==1.10.0",
    "uvicorn==0.54.0",
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
    """Environment of every container of the app (the seed function overrides the offline flag)."""
    env = vllm_env(bundle.spec, platform="gpu")
    env.update(
        {
            # Weights are read from the volume in the hub's cache layout, never downloaded while serving.
            "HF_HUB_CACHE": bundle.weights.mount_path,
            "HF_HUB_OFFLINE": "1",
            # torch.compile / AOT artifacts survive the container on their own volume.
            "VLLM_CACHE_ROOT": bundle.compile_cache.mount_path,
            BUNDLE_ENV: bundle.to_env(),
        }
    )
    if not sleep_mode(bundle.spec, "gpu"):
        # Dev mode exists only to let the snapshot hooks call /sleep and /wake_up.
        env.pop("VLLM_SERVER_DEV_MODE", None)
    return env


def serving_image(base: modal.Image) -> modal.Image:
    """The image serving containers run: ``base_image`` plus the platform package."""
    return base.add_local_python_source("modelfleet")


def seed_image(base: modal.Image) -> modal.Image:
    """The same stack with hub access: seeding is the one job that downloads weights."""
    return base.env({"HF_HUB_OFFLINE": "0", "HF_XET_HIGH_PERFORMANCE": "1"}).add_local_python_source("modelfleet")
