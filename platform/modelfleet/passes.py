"""What passed where: the record that a model's deployed version passed its post-deploy checks.

``fleet smoke`` records a pass when every check succeeds; ``fleet promote`` deploys to the
next environment only a version the source environment recorded as passed, and says why
it refuses anything else. A pass names the version, the spec hash, the commit and the image
digest it was measured on, so "passed" can never be claimed for a later deploy of the same
model. Stored beside the deploy records of the same environment: on Modal in the state
``modal.Dict`` (``passed/<model>/<version>``), locally in ``<state folder>/passed.json``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from modelfleet.state import DeployRecord

PASSES_FILE = "passed.json"
_PASSED = "passed/"


class PassRecord(BaseModel):
    """One deployed version of one model that passed its checks in one environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="Model folder name.")
    environment: str = Field(description="The fleet environment it passed in.")
    version: str = Field(description="The app version that passed (the commit on the local target).")
    spec_hash: str = Field(description="Hash of the effective spec of that version.")
    tag: str = Field(description="The git commit that version was deployed from.")
    image: str = Field(default="", description="Digest of the image definition of that version.")
    checks: tuple[str, ...] = Field(description="The checks that passed, e.g. ('smoke',).")
    passed_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @classmethod
    def of(cls, record: DeployRecord, *, model: str, environment: str, checks: tuple[str, ...]) -> PassRecord:
        """The pass of the version ``record`` describes."""
        return cls(
            model=model,
            environment=environment,
            version=record.version or record.tag,
            spec_hash=record.spec_hash,
            tag=record.tag,
            image=record.image,
            checks=checks,
        )

    def matches(self, record: DeployRecord) -> bool:
        """Whether this pass was measured on exactly the deploy ``record`` describes."""
        return (self.version, self.spec_hash, self.tag) == (record.version or record.tag, record.spec_hash, record.tag)


class KeyValues(Protocol):
    """What the pass book needs of a store: ``modal.Dict`` has it, and so does ``state.JsonFileStore``."""

    def get(self, key: str, default: Any = None) -> Any: ...
    def put(self, key: str, value: Any) -> Any: ...


class PassBook:
    """Read and write pass records in one environment's store."""

    def __init__(self, store: KeyValues) -> None:
        self.store = store

    def record(self, passed: PassRecord) -> None:
        """Remember that ``passed.version`` passed (a second pass of the same version replaces the first)."""
        self.store.put(_key(passed.model, passed.version), passed.model_dump_json())

    def of(self, model: str, version: str) -> PassRecord | None:
        """The pass of ``version`` of ``model``, if it ever passed here."""
        raw = self.store.get(_key(model, version))
        return PassRecord.model_validate_json(raw) if raw else None


def _key(model: str, version: str) -> str:
    return f"{_PASSED}{model}/{version}"


class PromotionRecord(BaseModel):
    """A version deployed to an environment by promotion: what it was promoted from, and what it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="Model folder name.")
    environment: str = Field(description="The environment promoted to.")
    version: str = Field(description="The version the promotion deployed there.")
    from_environment: str = Field(description="The environment it passed in.")
    from_version: str = Field(description="The version that passed there.")
    spec_hash: str = Field(description="Hash of the effective spec (equal in both environments).")
    tag: str = Field(description="The git commit (equal in both environments).")
    image: str = Field(default="", description="Digest of the image definition (equal in both environments).")
    result: str = Field(description="'passed' when the post-deploy checks passed here too, else 'failed'.")
    promoted_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


_PROMOTED = "promoted/"


def record_promotion(book: PassBook, promotion: PromotionRecord) -> None:
    """Remember a promotion in the pass book of the environment promoted to."""
    book.store.put(f"{_PROMOTED}{promotion.model}/{promotion.version}", promotion.model_dump_json())


def promotion_of(book: PassBook, model: str, version: str) -> PromotionRecord | None:
    """How ``version`` of ``model`` came to this environment, when it was promoted."""
    raw = book.store.get(f"{_PROMOTED}{model}/{version}")
    return PromotionRecord.model_validate_json(raw) if raw else None
