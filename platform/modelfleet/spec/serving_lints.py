"""Lints of how a model is served: the grace period for streams and the egress setting.

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
    """Say plainly what ``egress = "blocked"`` enforces and what nobody has checked."""
    if spec.privacy.egress != "blocked":
        return []
    return [
        Finding(
            "warning",
            "privacy.egress",
            "egress = 'blocked' serves through Modal's classic web endpoint with block_network=True (Modal "
            "Servers take no block_network); Modal does not document whether inbound web requests still reach "
            "a web server with block_network=True, so run `fleet smoke` after the deploy; the local target "
            "blocks nothing",
        )
    ]
