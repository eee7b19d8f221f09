"""OpenLineage facets of a ``CargoRunOperator`` (with the ``openlineage`` extra installed).

Inputs: the Cargo workflow's input (``cargo://<host>`` namespace, the workflow's name); outputs: the
Parquet file the operator wrote. Without ``apache-airflow-providers-openlineage`` this returns ``None``
and Airflow's lineage machinery ignores the operator.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

__all__ = ["facets_on_complete"]


def _xcom(task_instance: Any) -> dict[str, Any]:
    try:
        value = task_instance.xcom_pull(task_ids=task_instance.task_id, key="return_value")
    except Exception:
        return {}
    return value if isinstance(value, dict) else {}


def facets_on_complete(operator: Any, task_instance: Any) -> Any:
    try:
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    summary = getattr(operator, "_last_summary", None) or _xcom(task_instance)
    host = urlparse(getattr(operator, "_cargo_base_url", "") or "https://api.getcargo.io").netloc
    name = summary.get("workflow") or operator.play or operator.tool or operator.workflow or "unknown"
    inputs = [Dataset(namespace=f"cargo://{host}", name=f"{summary.get('type', 'workflow')}/{name}")]
    outputs = []
    uri = summary.get("uri")
    if uri:
        parsed = urlparse(str(uri))
        outputs.append(Dataset(namespace=f"{parsed.scheme or 'file'}://{parsed.netloc}", name=parsed.path))
    return OperatorLineage(inputs=inputs, outputs=outputs)
