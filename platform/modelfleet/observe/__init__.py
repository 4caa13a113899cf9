"""The fleet view: engine metrics, replicas, latency, tokens and cost per model.

Reads only sources that cannot wake a scaled-to-zero container: each local engine's
``/metrics`` on this machine, and Modal's own statistics API for Modal deploys.
"""
