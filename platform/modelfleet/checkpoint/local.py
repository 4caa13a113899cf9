"""A checkpoint's config and safetensors headers from a local directory: no hub, no network.

For a machine that already holds the files (a ``git clone`` of the repo, a hub-cache snapshot,
weights copied from elsewhere). A hub-cache snapshot folder is named after its commit
(``models--org--name/snapshots/<sha>/``), so that commit is offered as the revision.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from modelfleet.checkpoint.config import parse_config
from modelfleet.checkpoint.facts import Checkpoint, CheckpointError
from modelfleet.checkpoint.tensors import TensorEntry, read_local_header, weights_facts

_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def read_from_dir(path: Path, *, repo: str | None, revision: str | None) -> Checkpoint:
    """Read ``config.json`` and every ``*.safetensors`` header under ``path``."""
    if not path.is_dir():
        raise CheckpointError(f"--from-dir: {path} is not a directory")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"--from-dir: {path} has no config.json; point it at the checkpoint's top folder")
    try:
        data = json.loads(config_file.read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(f"--from-dir: {config_file}: not readable JSON ({error})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"--from-dir: {config_file}: not a JSON object")
    config = parse_config(data, where=str(config_file))
    shards = sorted(path.glob("*.safetensors"))
    if not shards:
        raise CheckpointError(
            f"--from-dir: {path} has no *.safetensors file; fleet new sizes a model from safetensors headers"
        )
    entries: list[TensorEntry] = []
    for shard in shards:
        entries += read_local_header(shard)
    bits = config.quantization.bits if config.quantization else None
    if revision is None and _COMMIT.match(path.resolve().name) and path.resolve().parent.name == "snapshots":
        revision = path.resolve().name
    return Checkpoint(
        config=config,
        weights=weights_facts(entries, files=len(shards), bits=bits),
        repo=repo,
        revision=revision,
        requested=revision,
        local_path=str(path),
    )
