"""After a deploy: build the snapshot, prove the endpoint, and report what happened.

A deploy is not done when the app exists. These steps speak only HTTP to the model's
endpoint (the same edge and headers on Modal and locally), so they work unchanged on
every target; the CLI supplies the URL, the credentials and the target's way to force
a cold start.

- ``smoke``: ``run_smoke`` checks one endpoint (models, chat, streaming, auth, blocked routes).
- ``snapshot``: ``build_snapshot`` causes cold starts until a boot reports ``restore``.
- ``probe``: ``probe_boot`` times one real request and reads the boot kind from ``/health``.
- ``report``: each step adds its part to ``.fleet/reports/<model>.json``; rendered as Markdown/JSON.
- ``parts``: those parts and the report as typed records (``record.Record``); the JSON is their dump.

Nothing here imports a target: credentials come from the tokens contract
(``runtime.tokens.Credentials``), outcomes are read through ``parts.Outcome``'s shape.
"""
