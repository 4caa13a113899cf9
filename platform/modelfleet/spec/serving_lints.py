"""Lints of how a model is served: the grace period for streams and what blocked egress costs a warm model.

Why a module of its own: these rules follow from how Modal serves (Servers vs the classic
web endpoint, ``targets/modal/primitive.py``), not from GPU or weight arithmetic.
"""

from __future__ import annotations

from modelfleet.spec.findings import Finding
from modelfleet.spec.model import MAX_EXIT_GRACE_SECONDS, ModelSpec


def serving_findings(spec: ModelSpec) -> list[Finding]:
    """Every serving finding for one model."""
    return [*_grace_covers_a_request(spec), *_egress_blocked(spec)]


def _grace_covers_a_request(spec: ModelSpec) -> list[Finding]:
    """A stream may run ``scaling.timeout`` seconds; a shorter grace cuts the longest ones at scale-down.

    The grace is what in-flight requests get when a container is stopped (Modal's
    ``exit_grace_period`` on a Server; the edge's own drain on SIGTERM either way).
    """
    scaling = spec.scaling
    grace, timeout = scaling.grace_seconds(), scaling.timeout
    if grace >= timeout:
        return []
    if scaling.exit_grace_period is None:  # timeout above Modal's cap: the default cannot cover it
        message = (
            f"timeout ({timeout} s) is above the longest exit grace Modal allows ({MAX_EXIT_GRACE_SECONDS} s): a "
            f"stream still running {MAX_EXIT_GRACE_SECONDS} s after its container is told to stop is cut; "
            f"lower timeout to <= {MAX_EXIT_GRACE_SECONDS} if callers stream that long"
        )
    else:
        message = (
            f"exit_grace_period ({grace} s) is shorter than timeout ({timeout} s): when a container is stopped "
            f"(scale-down, redeploy) a stream still running after {grace} s is cut; raise it to "
            f"{min(timeout, MAX_EXIT_GRACE_SECONDS)} or remove it (the default is timeout, at most "
            f"{MAX_EXIT_GRACE_SECONDS})"
        )
    return [Finding("warning", "scaling.exit_grace_period", message)]


def _egress_blocked(spec: ModelSpec) -> list[Finding]:
    """A warm model that blocks egress is not served by a Modal Server: say so, and how to get one.

    ``min_containers >= 1`` alone would choose a Server, which takes no ``block_network``
    (modal 1.6.4 ``App.server``); blocked egress (the default) wins and keeps the classic
    endpoint, whose outbound block Modal enforces. Without a warm container the classic
    endpoint serves anyway, so there is nothing to say.
    """
    if spec.privacy.egress != "blocked" or spec.scaling.min_containers < 1:
        return []
    return [
        Finding(
            "warning",
            "privacy.egress",
            f"min_containers = {spec.scaling.min_containers} would serve through a Modal Server, which cannot block "
            "outbound network; egress = 'blocked' (the default) serves through the classic web endpoint with "
            'block_network=True instead. Set [privacy] egress = "allowed" to serve through a Server, with its '
            "outbound network open",
        )
    ]
