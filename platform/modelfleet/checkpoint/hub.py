"""A checkpoint's config and safetensors headers from the Hugging Face hub, through the real client.

Three calls of ``huggingface_hub`` (2.4.0, read in ``hf_api.py``):

* ``HfApi.model_info(repo, revision=ref)`` (``GET /api/models/{repo}/revision/{ref}``) resolves a
  branch or tag to its commit (``ModelInfo.sha``) and says whether the repo is ``gated`` or
  ``private``; the commit is what the folder pins and what every later call reads;
* ``hf_hub_download(repo, "config.json", revision=sha)``;
* ``HfApi.get_safetensors_metadata(repo, revision=sha)``: ``file_exists`` (a ``HEAD``) on
  ``model.safetensors``, else ``model.safetensors.index.json`` (downloaded) and then, per shard,
  ``parse_safetensors_file_metadata``: a ``GET`` with ``Range: bytes=0-100000`` and a second
  ranged ``GET`` when the header is longer. Only headers travel, never the weights.

The token is ``HF_TOKEN`` from the environment only (``False`` stops the client from using a
stored login), as the seed does (``volumes/hf_source.py``): what can be read is decided by the
environment. Every failure becomes one line that names the fix.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from modelfleet.checkpoint.config import parse_config
from modelfleet.checkpoint.facts import Checkpoint, CheckpointError
from modelfleet.checkpoint.tensors import TensorEntry, entries_from_header, weights_facts

Step = Callable[[str], None]
"""Told what is about to happen before each hub call (the CLI shows it as progress)."""

TOKEN_HELP = "HF_TOKEN=hf_... (a token from https://huggingface.co/settings/tokens)"
DEFAULT_TOKEN_SECRET = "huggingface-secret"
# `modal secret create NAME KEY=VALUE ...` stores a secret in the workspace (modal 1.6.4,
# modal/cli/secret.py: "modal secret create my-credentials username=john password=-"); the seeding
# and serving containers get HF_TOKEN from it through weights.token_secret.
SECRET_HELP = (
    f"serving it needs the Modal secret holding HF_TOKEN: create it with `modal secret create "
    f"{DEFAULT_TOKEN_SECRET} HF_TOKEN=hf_...` and pass --token-secret {DEFAULT_TOKEN_SECRET}"
)


def hub_token() -> str | bool:
    """``HF_TOKEN`` from the environment, else False (never a stored login)."""
    return os.environ.get("HF_TOKEN") or False


def hub_endpoint() -> str | None:
    """``HF_ENDPOINT`` read now, not at import (huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_ENDPOINT") or None


def read_from_hub(repo: str, ref: str, *, step: Step) -> Checkpoint:
    """Resolve ``ref`` to a commit and read ``config.json`` and the safetensors headers at that commit."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.utils.tqdm import disable_progress_bars

    api = HfApi(endpoint=hub_endpoint(), token=hub_token())
    with _hub_errors(repo, ref), disable_progress_bars():
        step(f"resolving {repo}@{ref}")
        info = api.model_info(repo, revision=ref)
    sha = info.sha
    if not sha:
        raise CheckpointError(f"--revision: the hub gave no commit for {repo}@{ref}; pass a 40-hex commit")
    gated, private = bool(info.gated), bool(info.private)
    if gated and not hub_token():
        raise CheckpointError(
            f"--hf: {repo} is gated ({info.gated} approval): accept its license at https://huggingface.co/{repo}, "
            f"then set {TOKEN_HELP} to read its config.json here; {SECRET_HELP}"
        )
    # The client's own tqdm bars would write to stderr even in a CI log; ``step`` is the progress.
    with _hub_errors(repo, ref), disable_progress_bars(), tempfile.TemporaryDirectory(prefix="fleet-new-") as cache:
        step(f"downloading config.json of {repo}@{sha[:12]}")
        config_file = hf_hub_download(
            repo, "config.json", revision=sha, cache_dir=cache, endpoint=hub_endpoint(), token=hub_token()
        )
        config = parse_config(_json(Path(config_file), where=f"{repo}@{sha[:12]}:config.json"), where="config.json")
        step(f"reading the safetensors headers of {repo}@{sha[:12]} (headers only, not the weights)")
        metadata = api.get_safetensors_metadata(repo, revision=sha)
    entries: list[TensorEntry] = []
    for filename, file_metadata in sorted(metadata.files_metadata.items()):
        header = {
            name: {"dtype": t.dtype, "shape": t.shape, "data_offsets": list(t.data_offsets)}
            for name, t in file_metadata.tensors.items()
        }
        entries += entries_from_header(header, where=f"{repo}@{sha[:12]}:{filename}")
    bits = config.quantization.bits if config.quantization else None
    return Checkpoint(
        config=config,
        weights=weights_facts(entries, files=len(metadata.files_metadata), bits=bits),
        repo=repo,
        revision=sha,
        requested=ref,
        local_path=None,
        gated=gated,
        private=private,
    )


def _json(path: Path, *, where: str) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{where}: not readable JSON ({error})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{where}: not a JSON object")
    return data


@contextmanager
def _hub_errors(repo: str, ref: str) -> Iterator[None]:
    """huggingface_hub's typed errors -> one line naming the option and the fix."""
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        NotASafetensorsRepoError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
        SafetensorsParsingError,
    )

    where = hub_endpoint() or "https://huggingface.co"
    try:
        yield
    except GatedRepoError:  # before RepositoryNotFoundError: it is a subclass
        if hub_token():
            fix = f"the HF_TOKEN in the environment has no access: accept the license at https://huggingface.co/{repo}"
        else:
            fix = f"accept its license at https://huggingface.co/{repo}, then set {TOKEN_HELP}"
        raise CheckpointError(f"--hf: {repo} is gated; {fix}") from None
    except RevisionNotFoundError:
        raise CheckpointError(
            f"--revision: {ref!r} is not a branch, tag or commit of {repo}; "
            f"see https://huggingface.co/{repo}/tree/main for its branches and commits"
        ) from None
    except RepositoryNotFoundError:
        token_hint = "HF_TOKEN cannot see it" if hub_token() else f"it is private: set {TOKEN_HELP}"
        raise CheckpointError(
            f"--hf: {repo} not found on {where}: check the org/name spelling, or {token_hint}"
        ) from None
    except HFValidationError:
        raise CheckpointError(f"--hf: {repo!r} is not a repo id; write it as org/name") from None
    except NotASafetensorsRepoError:
        raise CheckpointError(
            f"--hf: {repo}@{ref} has no model.safetensors or model.safetensors.index.json; fleet new sizes a model "
            "from safetensors headers (vLLM loads safetensors): pick a safetensors checkpoint of this model"
        ) from None
    except SafetensorsParsingError as error:
        raise CheckpointError(f"--hf: {repo}@{ref}: a safetensors header is unreadable: {error}") from None
    except RemoteEntryNotFoundError as error:
        raise CheckpointError(
            f"--hf: {repo}@{ref}: a file is missing on the hub ({error}); is it a model repo?"
        ) from None
    except (LocalEntryNotFoundError, httpx2.ConnectError, httpx2.ConnectTimeout):
        raise CheckpointError(
            f"--hf: cannot reach the hub ({where}) to read {repo}; check the network or HF_ENDPOINT, "
            "or read a local checkout with --from-dir PATH"
        ) from None
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else "?"
        raise CheckpointError(f"--hf: the hub ({where}) answered HTTP {status} for {repo}@{ref}; try again") from None
    except httpx2.HTTPError as error:
        raise CheckpointError(
            f"--hf: the connection to the hub ({where}) failed while reading {repo} ({type(error).__name__}); "
            "try again, or read a local checkout with --from-dir PATH"
        ) from None
