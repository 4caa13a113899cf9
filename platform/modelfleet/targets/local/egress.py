"""``[privacy] egress`` on the local target: what a model may reach, decided, enforced and checked here.

- ``blocked`` (the default): vLLM runs in a network namespace of its own with loopback
  only (``runtime/netns.py``) and serves on a Unix socket the edge relays to. Once it
  serves, ``verify_isolation`` opens listeners on this machine's own addresses and
  probes them from inside the namespace; the run records ``blocked (verified)`` only
  when none was reached and every process of the engine is in that namespace. Where
  the machine refuses namespaces (no CAP_SYS_ADMIN), the model does not start.
- ``allowed``: vLLM shares this machine's network (still on the Unix socket); where
  namespaces are refused a warning says so, since nothing could have been blocked.
"""

from __future__ import annotations

import os
import subprocess

from modelfleet.catalog import CatalogModel
from modelfleet.runtime.engine import Engine, group_members
from modelfleet.runtime.netns import EgressListeners, namespace_id, probe_egress

VERIFIED = "blocked (verified)"
ALLOWED = "allowed"


def refusal(model: CatalogModel, reason: str) -> str:
    """The one-line error of a blocked model on a machine that refuses network namespaces."""
    return (
        f"{model.file}: privacy.egress: 'blocked' runs vLLM in a network namespace of its own, and this machine "
        f"refuses one ({reason}); run the local fleet as root or with CAP_SYS_ADMIN, or set [privacy] egress = "
        '"allowed" in this model.toml to serve with this machine\'s network'
    )


def allowed_warning(reason: str) -> str:
    """What an allowed model's run says where namespaces are refused."""
    return f"{ALLOWED} (warning: vLLM shares this machine's network; network namespaces are refused here: {reason})"


def verify_isolation(engine: Engine) -> tuple[bool, str]:
    """Probe the running engine's namespace: (isolated, one line saying what the probe met).

    Isolated means: the engine's processes all sit in one namespace that is not this
    process's, and from inside it none of the fleet's listeners (127.0.0.1 and this
    machine's interface addresses, in this namespace) answered.
    """
    if engine.pid is None:
        return False, "the engine is not running"
    own = namespace_id(os.getpid())
    try:
        spaces = {namespace_id(pid) for pid in group_members(engine.pid)}
        with EgressListeners() as listeners:
            result = probe_egress(engine.pid, listeners)
    except (OSError, subprocess.SubprocessError, ValueError) as error:  # setns refused, probe failed or garbled
        return False, f"the probe could not run: {error.__class__.__name__}: {error}"
    if own in spaces or len(spaces) != 1:
        return False, f"the engine's processes are in {sorted(spaces)}, this machine's network is {own}"
    if not result.isolated:
        return False, f"a probe inside {result.namespace} reached the fleet's listener: {result.summary()}"
    return True, f"probe inside {result.namespace}: {result.summary()}"
