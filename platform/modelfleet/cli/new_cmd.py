"""``fleet new``: a model folder from a hub repo (or a local checkout) in one command.

Reads the checkpoint (config + safetensors headers), weighs every priced GPU option, prints what
it weighed and why the winner won, then writes a folder that validates, or nothing.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.table import Table

from modelfleet.checkpoint.facts import Checkpoint
from modelfleet.checkpoint.hub import DEFAULT_TOKEN_SECRET, SECRET_HELP, Step, read_from_hub
from modelfleet.checkpoint.local import read_from_dir
from modelfleet.cli.common import UserError, console, err_console, load_settings, user_errors
from modelfleet.scaffold import (
    DEFAULT_CONCURRENCY,
    NewModel,
    context_length,
    demand_for,
    folder_is_free,
    scaffold_model,
)
from modelfleet.sizing import GpuChoice, choose, override
from modelfleet.terminal import is_interactive

_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def new(
    name: str = typer.Argument(help="Folder name (lowercase, digits, hyphens)."),
    hf: str | None = typer.Option(None, "--hf", help="Hugging Face repo, org/name."),
    revision: str | None = typer.Option(
        None, "--revision", help="Branch, tag or commit to read (default: main); the commit is what gets written."
    ),
    max_model_len: int | None = typer.Option(
        None, "--max-model-len", help="Context to serve (default: the model's limit, at most 8192)."
    ),
    concurrency: int = typer.Option(
        DEFAULT_CONCURRENCY, "--concurrency", min=1, help="Full-length sequences one GPU option must hold at once."
    ),
    gpu: str | None = typer.Option(None, "--gpu", help="Override the pick: TYPE or TYPE:COUNT (the fit is shown)."),
    token_secret: str | None = typer.Option(
        None, "--token-secret", help="Modal secret holding HF_TOKEN, for a gated or private repo."
    ),
    from_dir: Path | None = typer.Option(
        None, "--from-dir", help="Read a local checkout (config.json + *.safetensors) instead of the hub."
    ),
) -> None:
    """Scaffold models/NAME/ from a checkpoint, on the cheapest GPU that fits; it validates or nothing is written."""
    with user_errors():
        settings = load_settings()
        folder_is_free(settings, name)
        checkpoint = _read(hf, revision, from_dir)
        secret = _token_secret(checkpoint, token_secret)
        length = context_length(checkpoint, max_model_len)
        demand = demand_for(checkpoint, max_model_len=length, concurrency=concurrency, settings=settings)
        choice = override(demand, settings.prices.per_hour, gpu) if gpu else choose(demand, settings.prices.per_hour)
        _print_found(checkpoint)
        _print_choice(choice, settings.prices.date)
        folder = scaffold_model(
            settings, NewModel(name=name, checkpoint=checkpoint, demand=demand, choice=choice, token_secret=secret)
        )
        console.print(f"created {folder.relative_to(settings.root)}/ (model.toml, README.md); it validates")


def _read(hf: str | None, revision: str | None, from_dir: Path | None) -> Checkpoint:
    if from_dir is not None:
        if revision is not None and not _COMMIT.match(revision):
            raise UserError(
                f"--revision: {revision!r}: with --from-dir give the 40-hex commit the checkout is at "
                f"(`git -C {from_dir} rev-parse HEAD`); a branch cannot be resolved without the hub"
            )
        checkpoint = read_from_dir(from_dir, repo=hf, revision=revision)
        if hf is not None and checkpoint.revision is None:
            raise UserError(
                f"--revision: {from_dir} is not a hub-cache snapshot folder, so its commit is unknown; pass "
                f"--revision with the 40-hex commit of {hf} it holds, or leave --hf out to serve the folder itself"
            )
        return checkpoint
    if hf is None:
        raise UserError("--hf: give the Hugging Face repo (org/name), or --from-dir PATH for a local checkout")
    with _progress() as step:
        return read_from_hub(hf, revision or "main", step=step)


@contextmanager
def _progress() -> Iterator[Step]:
    """A spinner naming the hub call under way, for a person at a terminal; silent in pipes and CI."""
    if not is_interactive(sys.stderr):
        yield lambda _message: None
        return
    with err_console.status("reading the hub") as status:
        yield lambda message: status.update(message)


def can_prompt() -> bool:
    """Whether a person can answer a question: stdin and stderr are a terminal, and this is no CI job."""
    return sys.stdin.isatty() and is_interactive(sys.stderr)


def _token_secret(checkpoint: Checkpoint, given: str | None) -> str | None:
    """The Modal secret for a gated or private repo: given, asked for at a terminal, else a user error."""
    if not checkpoint.needs_token:
        return given
    if given:
        return given
    kind = "gated" if checkpoint.gated else "private"
    if can_prompt():
        err_console.print(f"{checkpoint.repo} is {kind}: {SECRET_HELP}.")
        return str(typer.prompt("Modal secret holding HF_TOKEN", default=DEFAULT_TOKEN_SECRET))
    raise UserError(f"--token-secret: {checkpoint.repo} is {kind}; {SECRET_HELP}")


def _print_found(checkpoint: Checkpoint) -> None:
    config, weights = checkpoint.config, checkpoint.weights
    where = (
        f"{checkpoint.repo}@{checkpoint.requested} = commit {checkpoint.revision}"
        if checkpoint.local_path is None
        else f"{checkpoint.local_path}"
    )
    quant = f", {config.quantization.label}" if config.quantization else ""
    console.print(f"read {where}")
    console.print(
        f"  weights {weights.size_text()} in {weights.files} safetensors file(s) ({weights.dtype_summary()}), "
        f"{weights.params_billion:.3g} B parameters{quant}"
    )
    console.print(
        f"  {config.num_hidden_layers} layers, {config.num_key_value_heads} KV heads, head_dim {config.head_dim}, "
        f"max_position_embeddings {config.max_position_embeddings or 'not given'}"
        + (f"; inputs: text + {', '.join(config.modalities)}" if config.multimodal else "")
        + ("; gated" if checkpoint.gated else "")
        + ("; private" if checkpoint.private else "")
    )


def _print_choice(choice: GpuChoice, prices_date: str) -> None:
    table = Table(title=f"GPU options weighed (prices of {prices_date})")
    for column in ("gpu", "$/h", "needs GB", "usable GB", "fit"):
        table.add_column(column, justify="right" if column in ("$/h", "needs GB", "usable GB") else "left")
    for option in choice.weighed:
        mark = "[bold]" if option is choice.winner else ""
        table.add_row(
            f"{mark}{option.ref}",
            f"{option.hourly:.2f}" if option.price_per_gpu is not None else "no price",
            f"{option.fit.need_gb:.1f}",
            f"{option.fit.have_gb:.1f}",
            option.verdict(),
        )
    console.print(table)
    console.print(choice.reason)
    if choice.fallbacks:
        console.print(
            "fallbacks: " + ", ".join(f"{o.ref} (${o.hourly:.2f}/h, {o.verdict()})" for o in choice.fallbacks)
        )
