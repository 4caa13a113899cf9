"""The quality gate against real vLLM on CPU: an unchanged deploy passes, every injected fault is caught.

The baseline is the session's demo server (``demo_engine``, unchanged weights). Each fault
needs a server of its own -- other weights or another chat template -- started once for
this module (about a minute each on two cores): one perturbed tensor, a float8 round trip
of the checkpoint, a broken chat template. A different revision reuses the perturbed
server under another baseline key. Each failure must say what changed.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.checkpoint_faults import broken_chat_template, float8_copy, perturbed_copy
from tests.support.demo_servers import DEMO, demo_server

from modelfleet.catalog import CatalogModel, load_catalog
from modelfleet.postdeploy.baseline_key import baseline_key
from modelfleet.postdeploy.evaluation import PYTHON_ENV, run_eval
from modelfleet.postdeploy.gate import (
    FINGERPRINT_CHECK,
    Endpoint,
    GateResult,
    record_baseline,
    run_quality_gate,
    take_endpoint_fingerprint,
)
from modelfleet.runtime.engine import Engine
from modelfleet.runtime.tokens import Credentials
from modelfleet.settings import FleetSettings
from modelfleet.spec.golden import EvalSpec, WilsonRule
from modelfleet.state import BaselineKey, BaselineStore, JsonFileStore

pytestmark = pytest.mark.e2e

# vLLM is reached directly (no edge): the gate sends this token, nothing checks it.
CREDENTIALS = Credentials("wk-gate", "ws-gate")
UNCHANGED_RUNS = 5
EVAL_DATA = Path(__file__).parent / "data" / "capitals.jsonl"
# lm-eval is the optional extra `modelfleet[eval]`, or an environment of its own named by FLEET_LM_EVAL_PYTHON.
HAS_LM_EVAL = bool(os.environ.get(PYTHON_ENV)) or importlib.util.find_spec("lm_eval") is not None


@pytest.fixture(scope="module")
def demo_model(fleet_root: Path) -> CatalogModel:
    """The demo model with its golden.toml, as the catalog loads it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLEET_ROOT", str(fleet_root))
        patch.delenv("FLEET_TARGET", raising=False)
        model = load_catalog(FleetSettings()).require(DEMO)
    assert model.golden is not None
    return model


@pytest.fixture(scope="module")
def key(demo_model: CatalogModel) -> BaselineKey:
    """The demo model's baseline key on the local target."""
    return baseline_key(demo_model, target="local")


@pytest.fixture(scope="module")
def store(
    demo_engine: Engine, demo_model: CatalogModel, key: BaselineKey, tmp_path_factory: pytest.TempPathFactory
) -> BaselineStore:
    """A baseline store holding the unchanged server's fingerprint, recorded as `fleet baseline` does."""
    assert demo_model.golden is not None
    baselines = BaselineStore(JsonFileStore(tmp_path_factory.mktemp("baselines") / "baselines.json"))
    fingerprint = take_endpoint_fingerprint(_endpoint(demo_engine.url), CREDENTIALS, demo_model.golden)
    record_baseline(baselines, DEMO, key, fingerprint, version="v1", reason="test")
    return baselines


@pytest.fixture(scope="module")
def faults_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the fault checkpoints and server logs go."""
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def perturbed_url(demo_model: CatalogModel, demo_checkpoint: Path, faults_dir: Path) -> Iterator[str]:
    """A server of the checkpoint with one tensor perturbed (1 % noise on one MLP weight)."""
    weights = perturbed_copy(demo_checkpoint, faults_dir / "perturbed")
    with demo_server(demo_model.spec, weights, faults_dir / "perturbed-log") as url:
        yield url


@pytest.fixture(scope="module")
def float8_url(demo_model: CatalogModel, demo_checkpoint: Path, faults_dir: Path) -> Iterator[str]:
    """A server of the checkpoint rounded through float8."""
    weights = float8_copy(demo_checkpoint, faults_dir / "float8")
    with demo_server(demo_model.spec, weights, faults_dir / "float8-log") as url:
        yield url


@pytest.fixture(scope="module")
def broken_template_url(demo_model: CatalogModel, demo_checkpoint: Path, faults_dir: Path) -> Iterator[str]:
    """A server of the unchanged checkpoint with a chat template that mislabels every turn."""
    template = broken_chat_template(faults_dir)
    with demo_server(
        demo_model.spec, demo_checkpoint, faults_dir / "template-log", extra_args=("--chat-template", str(template))
    ) as url:
        yield url


def _endpoint(url: str) -> Endpoint:
    return Endpoint(url=url, served_name=DEMO, timeout=300)


def _gate(url: str, model: CatalogModel, key: BaselineKey, store: BaselineStore) -> GateResult:
    assert model.golden is not None
    return run_quality_gate(
        _endpoint(url), CREDENTIALS, model.golden, model=DEMO, key=key, baselines=store, record_missing=False
    )


def _fingerprint_detail(result: GateResult) -> str:
    check = next(c for c in result.checks if c.name == FINGERPRINT_CHECK)
    assert not check.ok, check.detail
    return check.detail


def test_an_unchanged_deploy_passes_every_run(
    demo_engine: Engine, demo_model: CatalogModel, key: BaselineKey, store: BaselineStore
) -> None:
    for _ in range(UNCHANGED_RUNS):
        result = _gate(demo_engine.url, demo_model, key, store)
        assert result.ok, [c for c in result.checks if not c.ok]
        fingerprint = next(c for c in result.checks if c.name == FINGERPRINT_CHECK)
        assert fingerprint.detail.startswith("matches the baseline of ")


def test_a_perturbed_tensor_is_caught_by_the_fingerprint(
    perturbed_url: str, demo_model: CatalogModel, key: BaselineKey, store: BaselineStore
) -> None:
    detail = _fingerprint_detail(_gate(perturbed_url, demo_model, key, store))
    assert "the model answers differently from its baseline" in detail
    assert "logprobs moved by" in detail or "the greedy token changed" in detail


def test_a_float8_round_trip_of_the_checkpoint_is_caught(
    float8_url: str, demo_model: CatalogModel, key: BaselineKey, store: BaselineStore
) -> None:
    detail = _fingerprint_detail(_gate(float8_url, demo_model, key, store))
    assert "the model answers differently from its baseline" in detail


def test_a_broken_chat_template_fails_the_golden_prompts_and_the_fingerprint(
    broken_template_url: str, demo_model: CatalogModel, key: BaselineKey, store: BaselineStore
) -> None:
    result = _gate(broken_template_url, demo_model, key, store)
    failed = {c.name: c.detail for c in result.checks if not c.ok}
    assert "golden system-prompt" in failed, failed
    assert "expected exactly 'The capital of Italy is Rome.'" in failed["golden system-prompt"]
    assert "the greedy token changed" in failed[FINGERPRINT_CHECK]
    # Reports never carry the answer itself.
    assert all("Rome." not in d.replace("'The capital of Italy is Rome.'", "") for d in failed.values())


def test_a_different_revision_names_the_revision_that_changed(
    perturbed_url: str, demo_model: CatalogModel, key: BaselineKey, store: BaselineStore
) -> None:
    other = key.model_copy(update={"revision": key.revision + "-rev2"})
    detail = _fingerprint_detail(_gate(perturbed_url, demo_model, other, store))
    assert f"no baseline for this deploy's key (revision {key.revision} -> {other.revision}" in detail
    assert "run `fleet baseline smollm2-135m`" in detail


@pytest.mark.skipif(
    not HAS_LM_EVAL, reason=f"lm-eval is not installed: pip install 'modelfleet[eval]' or set {PYTHON_ENV}"
)
def test_the_eval_gate_runs_lm_eval_against_the_endpoint_and_applies_the_wilson_rule(
    demo_engine: Engine, demo_model: CatalogModel, tmp_path: Path
) -> None:
    assert demo_model.golden is not None
    shutil.copy(EVAL_DATA, tmp_path / EVAL_DATA.name)
    declared = EvalSpec(task_file=EVAL_DATA.name, max_tokens=24, rule=WilsonRule(min_accuracy=0.3, confidence=0.9))
    golden = demo_model.golden.model_copy(update={"eval": declared})
    detail = run_eval(demo_engine.url, DEMO, CREDENTIALS, golden, str(tmp_path))
    assert " over 10 questions; Wilson 0.9 lower bound " in detail and detail.endswith("at least 0.3")
