"""Airflow provider for Cargo (getcargo.ai): run plays and tools as batches, exactly once, from Airflow 3.3+.

Registered through the ``apache_airflow_provider`` entry point (:func:`get_provider_info`). Importing this
package imports nothing from Airflow; the hook, operator, triggers and sensor live in their sub-packages.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "get_provider_info"]


def get_provider_info() -> dict:
    """What Airflow's ProvidersManager reads without importing any hook: the classes and the ``cargo``
    connection type with its form fields declared (``conn-fields``/``ui-field-behaviour``, Airflow 3.2+)."""
    return {
        "package-name": "airflow-provider-cargo",
        "name": "Cargo",
        "description": "Run Cargo (getcargo.ai) plays and tools as batches from Airflow, exactly once.",
        "versions": [__version__],
        "integrations": [{"integration-name": "Cargo", "external-doc-url": "https://docs.getcargo.ai",
                          "tags": ["service"]}],
        "hooks": [{"integration-name": "Cargo", "python-modules": ["cargo_provider.hooks.cargo"]}],
        "operators": [{"integration-name": "Cargo", "python-modules": ["cargo_provider.operators.cargo"]}],
        "sensors": [{"integration-name": "Cargo", "python-modules": ["cargo_provider.sensors.cargo"]}],
        "triggers": [{"integration-name": "Cargo",
                      "python-modules": ["cargo_provider.triggers.cargo", "cargo_provider.triggers.changes"]}],
        "connection-types": [{
            "connection-type": "cargo",
            "hook-class-name": "cargo_provider.hooks.cargo.CargoHook",
            "hook-name": "Cargo",
            "ui-field-behaviour": {
                "hidden-fields": ["schema", "login", "port"],
                "relabeling": {"password": "API token", "host": "API host"},
                "placeholders": {"host": "https://api.getcargo.io (leave empty for Cargo's API)",
                                 "password": "a token from Cargo → Settings → API tokens"},
            },
            "conn-fields": {
                "workspace_uuid": {"label": "Workspace UUID", "description": "Sent as selected-workspace-uuid; "
                                   "empty: the token's own workspace.", "schema": {"type": ["string", "null"]}},
                "poll_interval": {"label": "Poll interval (s)", "description": "First seconds between polls of a "
                                  "batch (Cargo's guidance: 5).", "schema": {"type": ["number", "null"], "minimum": 1}},
                "max_poll_interval": {"label": "Max poll interval (s)", "description": "Longest seconds between "
                                      "polls.", "schema": {"type": ["number", "null"], "minimum": 1}},
                "request_timeout": {"label": "Request timeout (s)", "description": "Per-request read timeout.",
                                    "schema": {"type": ["number", "null"], "minimum": 1}},
                "batch_url_template": {"label": "Batch URL template", "description": "Link to a batch in Cargo's "
                                       "app, e.g. https://app.getcargo.io/{workspace_uuid}/batches/{batch_uuid}.",
                                       "schema": {"type": ["string", "null"]}},
            },
        }],
    }
