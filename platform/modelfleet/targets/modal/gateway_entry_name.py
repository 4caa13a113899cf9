"""Names of the gateway's app module and function, importable without building the app
(importing ``gateway_entry`` itself builds it from the bundle in the environment)."""

GATEWAY_ENTRY_MODULE = "modelfleet.targets.modal.gateway_entry"
GATEWAY_FUNCTION = "gateway"
