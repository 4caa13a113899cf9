"""A model bundle -> the arguments of its Modal app's decorators.

``entry`` declares the app's class and function at module level (Modal requires
global definitions) and takes every argument from here, so what each model.toml
field becomes on Modal is decided in this one file:

- the primitive: a Modal Server or the classic web endpoint (``primitive.py`` says
  which and why); the edge's port, proxy auth and concurrency go where each takes them
  (``@app.server(port, unauthenticated, target_concurrency, max_concurrency,
  exit_grace_period)``; ``@modal.web_server(port, requires_proxy_auth)`` +
  ``@modal.concurrent(max_inputs, target_inputs)``);
- GPUs: the primary type then the declared fallbacks, in Modal's ranked-list form;
- scaling: min/max/buffer containers, scaledown window, a start-up timeout long
  enough for vLLM to load (``scaling.startup_timeout``), the request timeout (classic);
- resources: ``cpu=`` / ``memory=`` from the model (``ModelSpec.serving_cpu`` /
  ``serving_memory_mib``), never Modal's 0.125-core / 128 MiB default;
- snapshots: memory snapshot, plus the GPU snapshot when declared;
- egress: ``block_network=True`` when ``privacy.egress = "blocked"`` (the default; classic
  only, since ``@app.server`` takes no such parameter: ``primitive.py``). Modal enforces
  it: no outbound connection leaves the container. Not closed by it: the container still
  speaks to Modal's own API (inputs, volume commits, snapshots), so code in it could
  write to a volume it mounts -- ``restrict_modal_access`` would close that and stays off
  (``cls_options`` says why). The seed function keeps its network (it downloads the
  weights) and sees no prompt;
- volumes: weights read-only for serving and never created by it (only the seed
  app, a separate app with no GPU, creates and writes them), the compile cache
  read-write in a folder of its own per model (the first boot fills it with the
  serving flags);
- secrets by name: the model's own on the serving class; the hub token only on the
  seed function, the one place that downloads.
"""

from __future__ import annotations

from typing import Any

import modal

from modelfleet.targets.modal.bundle import ModelBundle
from modelfleet.targets.modal.ports import EDGE_PORT, EDGE_STARTUP_TIMEOUT

SERVER_CLASS = "Server"
WEB_METHOD = "serve"
# Seeding is an app of its own: `modal run -m SEED_MODULE::seed` can never start the GPU class.
SEED_MODULE = "modelfleet.targets.modal.seed_entry"
SEED_FUNCTION = "seed"
SEED_APP_SUFFIX = "-seed"
# `modal run` shows what the function prints, not what it returns: the result goes out as one marked line.
SEED_MARKER = "MODELFLEET_SEED_RESULT "
# Seeding a 70B model moves ~140 GB: allow hours, not the default five minutes.
# The environment variable the seeder reads the hub token from (volumes/hf_source.py).
HUB_TOKEN_KEY = "HF_TOKEN"
SEED_TIMEOUT = 4 * 3600
SEED_CPU = 4.0
SEED_MEMORY_MIB = 16 * 1024


def seed_app_name(bundle: ModelBundle) -> str:
    """The seed app's name: the model's app name plus ``-seed`` (an ephemeral ``modal run`` app)."""
    return bundle.app_name + SEED_APP_SUFFIX


def weights_volume(bundle: ModelBundle, *, create: bool) -> modal.Volume:
    """The fleet's weights volume (v2); only the seed app creates it.

    Serving looks it up without ``create_if_missing``: Modal then answers a deploy
    before the first seed with "not found" (``VolumeGetOrCreate`` with
    ``OBJECT_CREATION_TYPE_UNSPECIFIED``, modal/volume.py ``from_name``) instead of
    mounting an empty volume vLLM would fail on minutes later.
    """
    # environment_name: the volume may live in another Modal environment than the app (one
    # volume every fleet environment mounts); `from_name` resolves the name there ("Environment
    # to resolve the name in; defaults to the active environment", modal 1.6.4 volume.py).
    return modal.Volume.from_name(
        bundle.weights.name, environment_name=bundle.weights.environment, create_if_missing=create, version=2
    )


def cache_volume(bundle: ModelBundle) -> modal.Volume:
    """vLLM's compile-cache volume (v2), created on first use, mounted at the model's own folder.

    Every app writes its compile cache, and a Modal volume is last-write-wins per file
    (docs: reference/modal.Volume): a ``sub_path`` per model keeps each app to its own
    files. ``with_mount_options(sub_path=...)`` creates the folder at container start
    (modal 1.6.4 volume.py ``with_mount_options``); ``commit()`` works on the same
    volume id (volume.py ``commit`` sends ``VolumeCommitRequest(volume_id)``).
    """
    volume = modal.Volume.from_name(bundle.compile_cache.name, create_if_missing=True, version=2)
    return volume.with_mount_options(sub_path=cache_sub_path(bundle))


def cache_sub_path(bundle: ModelBundle) -> str:
    """The model's folder in the compile-cache volume."""
    return f"/{bundle.model}"


def gpu_request(bundle: ModelBundle) -> str | list[str]:
    """``"H100"`` alone, or the ordered list Modal tries when the first type is scarce."""
    refs = bundle.spec.gpu.modal_refs()
    return refs[0] if len(refs) == 1 else refs


def _shared_options(bundle: ModelBundle, image: modal.Image, cache: modal.Volume) -> dict[str, Any]:
    """What ``@app.cls`` and ``@app.server`` take alike: image, GPUs, volumes, secrets, scaling, snapshots."""
    spec = bundle.spec
    scaling = spec.scaling
    options: dict[str, Any] = {
        "image": image,
        "gpu": gpu_request(bundle),
        "volumes": {
            bundle.weights.mount_path: weights_volume(bundle, create=False).with_mount_options(read_only=True),
            bundle.compile_cache.mount_path: cache,
        },
        "secrets": [modal.Secret.from_name(name) for name in spec.secrets],
        "min_containers": scaling.min_containers,
        "max_containers": scaling.max_containers,
        "buffer_containers": scaling.buffer_containers,
        "scaledown_window": scaling.scaledown_window,
        "startup_timeout": scaling.startup_timeout,
        # Without these Modal reserves 0.125 cores and 128 MiB; sleep level 1 moves every
        # weight into host memory before a GPU snapshot (spec/resources.py derives both).
        "cpu": spec.serving_cpu(),
        "memory": spec.serving_memory_mib(),
        "enable_memory_snapshot": spec.snapshot.enabled,
        # The image already carries the package (``add_local_python_source``); the
        # automatic copy of the entry module's package would upload it twice.
        "include_source": False,
    }
    if spec.snapshot.enabled and spec.snapshot.gpu_snapshot:
        options["experimental_options"] = {"enable_gpu_snapshot": True}
    return options


def cls_options(bundle: ModelBundle, image: modal.Image, cache: modal.Volume) -> dict[str, Any]:
    """Keyword arguments of ``@app.cls`` for the classic web endpoint; ``cache`` is ``cache_volume(bundle)``.

    The caller keeps ``cache`` so the snapshot hook can commit that very object.
    """
    spec = bundle.spec
    options = _shared_options(bundle, image, cache)
    options["timeout"] = spec.scaling.timeout
    if spec.region:
        options["region"] = spec.region
    if spec.privacy.egress == "blocked":
        # Enforced by Modal outside the container ("Consider using block_network=True to prevent
        # the container from making outbound network requests": modal.com/docs/guide/restricted-access).
        options["block_network"] = True
    # restrict_modal_access stays off, on purpose: a restricted function may do nothing but
    # take inputs and answer them -- no Volumes, Queues, Dicts or other Functions
    # (modal-labs/modal-client#3070, "Allow users to restrict Function's modal resource
    # access"; guide "Run untrusted code with Restricted Functions") -- and this class
    # commits its compile-cache volume in the snapshot hook (``serving.ServingRuntime``),
    # Modal's runtime commits mounted volumes on exit (_runtime/task_lifecycle_manager.py,
    # ``volume_commit``), and a memory snapshot is requested from the container
    # (``ContainerCheckpoint``), none of which the docs promise a restricted function.
    return options


def server_options(bundle: ModelBundle, image: modal.Image, cache: modal.Volume) -> dict[str, Any]:
    """Keyword arguments of ``@app.server`` (modal 1.6.4 ``App.server``): the edge's port, proxy auth,
    concurrency and the exit grace period are Server parameters; there is no ``@modal.concurrent`` and
    no per-request ``timeout`` (the edge bounds each request: ``scaling.timeout``).
    """
    spec = bundle.spec
    scaling = spec.scaling
    options = _shared_options(bundle, image, cache)
    options.update(
        {
            "port": EDGE_PORT,
            "unauthenticated": spec.auth.public,
            "target_concurrency": scaling.target_concurrent_inputs,
            "max_concurrency": scaling.max_concurrent_inputs,
            "exit_grace_period": scaling.grace_seconds(),
        }
    )
    if spec.region:
        options["compute_region"] = spec.region
    return options


def concurrency_options(bundle: ModelBundle) -> dict[str, int]:
    """Keyword arguments of ``@modal.concurrent`` (classic endpoint only): the autoscaler's target and the cap."""
    scaling = bundle.spec.scaling
    return {"max_inputs": scaling.max_concurrent_inputs, "target_inputs": scaling.target_concurrent_inputs}


def web_options(bundle: ModelBundle) -> dict[str, Any]:
    """Keyword arguments of ``@modal.web_server``: the edge's port, proxy auth unless the model is public.

    The edge is already listening when Modal calls the method (``ServingRuntime.start``
    starts it in the enter hook), so the port wait is short.
    """
    return {
        "port": EDGE_PORT,
        "startup_timeout": EDGE_STARTUP_TIMEOUT,
        "requires_proxy_auth": not bundle.spec.auth.public,
    }


def seed_options(bundle: ModelBundle, image: modal.Image, weights: modal.Volume) -> dict[str, Any]:
    """Keyword arguments of ``@app.function`` for the seed function: no GPU, ``weights`` writable."""
    token_secret = getattr(bundle.spec.weights, "token_secret", None)
    return {
        "image": image,
        "volumes": {bundle.weights.mount_path: weights},
        # The seeder reads the hub token as HF_TOKEN (volumes/hf_source.py): a secret without
        # that key fails the seed at once on Modal, not as a 401 from the hub minutes later.
        "secrets": [modal.Secret.from_name(token_secret, required_keys=[HUB_TOKEN_KEY])] if token_secret else [],
        "timeout": SEED_TIMEOUT,
        "cpu": SEED_CPU,
        "memory": SEED_MEMORY_MIB,
        "include_source": False,
    }
