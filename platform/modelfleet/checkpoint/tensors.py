"""Weight bytes and parameter count from safetensors headers, without reading a weight.

A safetensors file starts with an 8-byte little-endian header length, then that many bytes of
JSON: per tensor its ``dtype``, ``shape`` and ``data_offsets`` (begin, end) into the data that
follows (huggingface.co/docs/safetensors, "Format"). ``data_offsets`` give each tensor's exact
bytes, which is what GPU memory holds; the shapes give the parameter count.

Quantized checkpoints need two corrections to count parameters: AWQ/GPTQ and compressed-tensors
pack several int4/int8 values into one int32 (``*.qweight``, ``*.weight_packed``), and they carry
scales and zero points that are bookkeeping, not parameters. Their bytes still count.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelfleet.checkpoint.facts import CheckpointError

# Bytes per element of each safetensors dtype (safetensors' Dtype enum).
DTYPE_BYTES: dict[str, int] = {
    "F64": 8,
    "I64": 8,
    "U64": 8,
    "F32": 4,
    "I32": 4,
    "U32": 4,
    "F16": 2,
    "BF16": 2,
    "I16": 2,
    "U16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "F8_E8M0": 1,
}
# safetensors dtype -> the spec's weights.dtype, for a checkpoint whose config.json says nothing.
SPEC_DTYPE: dict[str, str] = {
    "BF16": "bfloat16",
    "F16": "float16",
    "F32": "float32",
    "F8_E4M3": "fp8",
    "F8_E5M2": "fp8",
    "I8": "int8",
}
_PACKED_SUFFIXES = (".qweight", ".weight_packed")
_BOOKKEEPING_SUFFIXES = (".qzeros", ".scales", ".g_idx", "_scale", "_scale_inv", "_zero_point", ".weight_shape")
# huggingface_hub's own cap on a header (constants.SAFETENSORS_MAX_HEADER_LENGTH): 25 MB.
MAX_HEADER_BYTES = 25_000_000


@dataclass(frozen=True)
class TensorEntry:
    """One tensor as a safetensors header declares it."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int

    @property
    def elements(self) -> int:
        """Values stored (the product of the shape; 1 for a scalar)."""
        return math.prod(self.shape)


@dataclass(frozen=True)
class WeightsFacts:
    """The weights of a checkpoint as its headers declare them."""

    total_bytes: int
    parameters: int
    bytes_by_dtype: Mapping[str, int]
    files: int

    @property
    def gb(self) -> float:
        """Weight bytes in GB (10^9), the unit of the fit check."""
        return self.total_bytes / 1e9

    def size_text(self) -> str:
        """The total as ``16.1 GB`` (``213.6 kB`` for a tiny test model)."""
        return human_size(self.total_bytes)

    @property
    def params_billion(self) -> float:
        """Parameters in billions."""
        return self.parameters / 1e9

    def dominant_dtype(self) -> str:
        """The safetensors dtype that holds most of the bytes."""
        return max(self.bytes_by_dtype.items(), key=lambda item: item[1])[0]

    def dtype_summary(self) -> str:
        """``BF16 14.9 GB, F8_E4M3 7.0 GB``: bytes per stored type, largest first."""
        ordered = sorted(self.bytes_by_dtype.items(), key=lambda item: -item[1])
        return ", ".join(f"{dtype} {human_size(size)}" for dtype, size in ordered)


def human_size(size: int) -> str:
    """GB with one decimal; MB or kB below 0.1 GB (scales and norms would read ``0.0 GB``)."""
    if size >= 1e8:
        return f"{size / 1e9:.1f} GB"
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"


def weights_facts(tensors: Iterable[TensorEntry], *, files: int, bits: int | None) -> WeightsFacts:
    """Sum the bytes and count the parameters; ``bits`` unpacks int-packed quantized weights."""
    total = 0
    parameters = 0
    by_dtype: dict[str, int] = {}
    for tensor in tensors:
        total += tensor.nbytes
        by_dtype[tensor.dtype] = by_dtype.get(tensor.dtype, 0) + tensor.nbytes
        parameters += _parameters(tensor, bits)
    if total == 0:
        raise CheckpointError("the safetensors headers declare no tensors; is this a model checkpoint?")
    return WeightsFacts(total, parameters, by_dtype, files)


def _parameters(tensor: TensorEntry, bits: int | None) -> int:
    if tensor.name.endswith(_BOOKKEEPING_SUFFIXES):
        return 0
    if tensor.name.endswith(_PACKED_SUFFIXES) and bits and tensor.dtype in DTYPE_BYTES:
        return tensor.elements * (DTYPE_BYTES[tensor.dtype] * 8 // bits)
    return tensor.elements


def entries_from_header(header: Mapping[str, Any], *, where: str) -> list[TensorEntry]:
    """The tensors of one decoded header; offsets that disagree with shape x dtype are refused."""
    entries = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = str(info["dtype"])
            shape = tuple(int(n) for n in info["shape"])
            begin, end = (int(n) for n in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{where}: tensor {name!r}: not a safetensors header entry") from None
        entry = TensorEntry(name, dtype, shape, end - begin)
        if dtype in DTYPE_BYTES and entry.nbytes != entry.elements * DTYPE_BYTES[dtype]:
            raise CheckpointError(
                f"{where}: tensor {name!r}: data_offsets span {entry.nbytes} bytes but {dtype} x {list(shape)} "
                f"is {entry.elements * DTYPE_BYTES[dtype]}; the file is damaged"
            )
        entries.append(entry)
    return entries


def read_local_header(path: Path) -> list[TensorEntry]:
    """The tensors of a safetensors file on disk, reading only its header (checked against the file's size)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise CheckpointError(f"{path}: {size} bytes, too small to be a safetensors file")
        (length,) = struct.unpack("<Q", prefix)
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise CheckpointError(f"{path}: header length {length} does not fit the {size}-byte file")
        raw = handle.read(length)
    try:
        header = json.loads(raw)
    except ValueError:
        raise CheckpointError(f"{path}: the header is not JSON; not a safetensors file") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: the header is not a JSON object; not a safetensors file")
    entries = entries_from_header(header, where=str(path))
    data_bytes = size - 8 - length
    declared = max((int(info["data_offsets"][1]) for k, info in header.items() if k != "__metadata__"), default=0)
    if declared > data_bytes:
        raise CheckpointError(
            f"{path}: the header declares {declared} bytes of tensors, the file holds {data_bytes}; "
            "the file is truncated (an interrupted download or a git-lfs pointer?)"
        )
    return entries
