"""Whether a model may be promoted from one environment to another, and what exactly would go.

``fleet promote MODEL --from staging --to prod`` deploys to prod exactly what passed in
staging: the same commit (the image is built from the checkout, so the checkout must be
that commit), the same effective spec (hash) and so the same image definition. Everything
else is refused here, before anything is deployed, with the reason and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelfleet.catalog import CatalogModel
from modelfleet.errors import FleetError
from modelfleet.passes import PassBook, PassRecord
from modelfleet.settings import FleetSettings
from modelfleet.state import DeployRecord, FleetState


class PromotionRefused(FleetError):
    """The source environment never passed what would be promoted; the message says why and what to do."""


@dataclass(frozen=True)
class Promotion:
    """What a promotion deploys (the source's live, passed version) and what it replaces."""

    model: str
    source_env: str
    target_env: str
    source: DeployRecord
    passed: PassRecord
    live: DeployRecord | None

    @property
    def already_live(self) -> bool:
        """Whether the target already serves this very deploy (same commit, spec and image)."""
        return self.live is not None and (self.live.tag, self.live.spec_hash, self.live.image) == (
            self.source.tag,
            self.source.spec_hash,
            self.source.image,
        )


def check_promotion(
    model: CatalogModel,
    *,
    source: FleetSettings,
    target: FleetSettings,
    source_state: FleetState,
    source_passes: PassBook,
    target_state: FleetState,
    checkout: str,
) -> Promotion:
    """The promotion of ``model`` from ``source``'s environment to ``target``'s, or ``PromotionRefused``.

    ``checkout`` is the commit this process would deploy (``deploy_tag``): the code in the
    image comes from it, so it must be the commit that passed.
    """
    source_env, target_env = source.env or "", target.env or ""
    if source_env == target_env:
        raise PromotionRefused(f"--from and --to are both {source_env!r}: promote from one environment to another")
    allowed = target.environments[target_env].promote_from if target_env in target.environments else None
    if allowed != source_env:
        why = f"it takes promotions from {allowed} only" if allowed else "it takes no promotions (no promote_from)"
        raise PromotionRefused(
            f"fleet.toml: environments.{target_env}.promote_from: {target_env} cannot be promoted to from "
            f"{source_env}: {why}; set promote_from = {source_env!r} to allow it"
        )
    name = model.name
    record = source_state.models.get(name)
    if record is None:
        raise PromotionRefused(
            f"{name} was never deployed to {source_env}: deploy and check it there first "
            f"(`fleet deploy {name} --env {source_env}`, then `fleet smoke {name} --env {source_env}`)"
        )
    version = record.version or record.tag
    passed = source_passes.of(name, version)
    if passed is None or not passed.matches(record):
        what = "has no recorded pass" if passed is None else "has a pass recorded for another deploy of that version"
        raise PromotionRefused(
            f"{name} {version} in {source_env} {what}: only what passed its checks there is promoted "
            f"(run `fleet smoke {name} --env {source_env}`; it records a pass when every check succeeds)"
        )
    if checkout != record.tag:
        raise PromotionRefused(
            f"{name} passed in {source_env} at commit {record.tag[:12]}, this checkout is {checkout[:12]}: the image "
            f"is built from the checkout, so check out {record.tag[:12]} to promote exactly what passed"
        )
    if model.spec_hash() != record.spec_hash:
        raise PromotionRefused(
            f"models/{name}: the effective spec here (hash {model.spec_hash()[:12]}) is not the one that passed in "
            f"{source_env} (hash {record.spec_hash[:12]}): fleet.toml [defaults] or FLEET_* settings differ; "
            "promote from a checkout with the same settings"
        )
    return Promotion(name, source_env, target_env, record, passed, target_state.models.get(name))
