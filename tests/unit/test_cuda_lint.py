"""The base image's CUDA against the CUDA the pinned vLLM is built for (spec/cuda.py + its lint)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

from modelfleet.catalog import Catalog, load_catalog
from modelfleet.settings import FleetSettings
from modelfleet.spec.cuda import VLLM_CUDA, base_cuda_version, vllm_cuda_row, vllm_openai_tag_version
from tests.unit.conftest import MINIMAL_MODEL

WriteModel = Callable[[str, str], Path]


def _image(base: str | None = None, vllm: str | None = None) -> str:
    lines = ([f'base = "{base}"'] if base else []) + ([f'vllm_version = "{vllm}"'] if vllm else [])
    return MINIMAL_MODEL + "\n[image]\n" + "\n".join(lines) + "\n"


def _findings(level: str) -> list[str]:
    catalog: Catalog = load_catalog(FleetSettings())
    return [f"{p.field}: {p.message}" for p in catalog.problems if p.level == level]


def test_a_cuda_12_base_under_vllm_0_25_is_an_error_with_both_versions_and_the_fix(write_model: WriteModel) -> None:
    write_model("tiny", _image(base="nvidia/cuda:12.8.1-devel-ubuntu22.04"))
    (message,) = _findings("error")
    assert message == (
        "image.base: 'nvidia/cuda:12.8.1-devel-ubuntu22.04' carries CUDA 12.8, but vLLM 0.25.0 is built for "
        "CUDA 13 (its wheel links libcudart.so.13; vllm-project/router#154, vllm-project/vllm#47628, PyPI wheel "
        "of vllm 0.25.0); use a CUDA 13 devel image such as 'nvidia/cuda:13.0.1-devel-ubuntu22.04', or "
        "'vllm/vllm-openai:v0.25.0'"
    )


def test_the_fleet_default_base_carries_the_cuda_the_default_vllm_is_built_for(write_model: WriteModel) -> None:
    write_model("tiny", MINIMAL_MODEL)
    catalog = load_catalog(FleetSettings())
    image = catalog.require("tiny").spec.image
    row = vllm_cuda_row(image.vllm_version)
    cuda = base_cuda_version(image.base)
    assert row is not None and cuda is not None
    assert cuda[0] == row.cuda_major == 13
    assert catalog.problems == []


def test_an_older_vllm_needs_a_cuda_12_base(write_model: WriteModel) -> None:
    write_model("old-on-12", _image(base="nvidia/cuda:12.8.1-devel-ubuntu22.04", vllm="0.19.1"))
    write_model("old-on-13", _image(vllm="0.19.1"))
    (message,) = _findings("error")
    assert message.startswith(
        "image.base: 'nvidia/cuda:13.0.1-devel-ubuntu22.04' carries CUDA 13.0, but vLLM 0.19.1 is built for CUDA 12"
    )
    assert "such as 'nvidia/cuda:12.8.1-devel-ubuntu22.04', or 'vllm/vllm-openai:v0.19.1'" in message


def test_a_vllm_openai_base_must_carry_the_pinned_vllm_version(write_model: WriteModel) -> None:
    write_model("same", _image(base="vllm/vllm-openai:v0.25.0"))
    write_model("other", _image(base="vllm/vllm-openai:v0.24.0"))
    (message,) = _findings("error")
    assert message == (
        "image.base: 'vllm/vllm-openai:v0.24.0' carries vLLM 0.24.0, but image.vllm_version is 0.25.0: "
        "use 'vllm/vllm-openai:v0.25.0' so the image's CUDA, torch and vLLM match"
    )


def test_an_unknown_vllm_version_is_a_warning_not_a_silent_pass(write_model: WriteModel) -> None:
    write_model("tiny", _image(vllm="0.99.0"))
    assert _findings("error") == []
    (message,) = _findings("warning")
    assert message.startswith(
        "image.vllm_version: vLLM 0.99.0 is not in the CUDA table (platform/modelfleet/spec/cuda.py knows 0.2.2 "
        "up to 0.26.0, exclusive), so the base image's CUDA is unchecked"
    )


def test_a_base_whose_cuda_cannot_be_read_is_a_warning(write_model: WriteModel) -> None:
    write_model("tiny", _image(base="ghcr.io/acme/gpu-base:2026.11"))
    (message,) = _findings("warning")
    assert message.startswith(
        "image.base: cannot read a CUDA version from 'ghcr.io/acme/gpu-base:2026.11', and vLLM 0.25.0 is built "
        "for CUDA 13"
    )


def test_the_table_rows_are_contiguous_ordered_and_sourced() -> None:
    for earlier, later in itertools.pairwise(VLLM_CUDA):
        assert earlier.before == later.first
    assert all(row.first < row.before and row.source for row in VLLM_CUDA)
    assert vllm_cuda_row("0.25.0") is not None and vllm_cuda_row("0.2.1") is None


def test_image_tags_are_read_as_docker_writes_them() -> None:
    assert base_cuda_version("nvidia/cuda:13.0.1-devel-ubuntu24.04") == (13, 0)
    assert base_cuda_version("nvcr.io/nvidia/cuda:12.4-runtime-ubuntu22.04") == (12, 4)
    assert base_cuda_version("nvidia/cuda:latest-devel") is None
    assert base_cuda_version("python:3.12") is None
    assert vllm_openai_tag_version("vllm/vllm-openai:v0.25.0") == "0.25.0"
    assert vllm_openai_tag_version("vllm/vllm-openai:nightly") == ""
    assert vllm_openai_tag_version("nvidia/cuda:13.0.1-devel-ubuntu22.04") is None
