"""Cargo's orchestration area (``api.orchestration.*``): workflows, plays, tools, releases, batches, runs.

Each method is one endpoint (REFERENCE.md section 3). Exactly-once batch creation, fan-out and waiting
are not endpoints: they stay on :class:`~cargo_gtm.CargoClient` (see :mod:`..reconcile`,
:mod:`..waiting`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from ..errors import CargoInputError
from ..models import Batch, BatchStatus, Play, Release, Run, RunList, RunMetric, RunStatus, Tool, Workflow
from ._base import ApiArea, parse_list, wire

__all__ = ["OrchestrationAPI", "DownloadFormat"]

DownloadFormat = Literal["csv", "json"]


def checked_statuses(statuses: Sequence[str] | None, allowed: type[BatchStatus] | type[RunStatus],
                     what: str) -> list[str] | None:
    """``statuses`` as sent, refused before any request when one is not a ``what`` status: Cargo may answer
    such a value with a 400 or by matching nothing (CARGO-DOCS 2.7 names ``finished`` / ``failed`` as wrong),
    and a filter that silently matches nothing is a wrong answer."""
    if statuses is None:
        return None
    if isinstance(statuses, str):
        statuses = [statuses]
    values = [str(getattr(s, "value", s)) for s in statuses]
    known = [m.value for m in allowed]
    bad = [v for v in values if v not in known]
    if bad:
        raise CargoInputError(f"{', '.join(map(repr, bad))} {'is' if len(bad) == 1 else 'are'} not a Cargo {what} "
                              f"status.", hint=f"use {what} statuses: {', '.join(known)} (a finished run is "
                              "success, error, cancelled or skipped; a failed one is error).")
    return values


class OrchestrationAPI(ApiArea):
    """Endpoints under ``/orchestration``."""

    # -- workflows, plays, tools ---------------------------------------------------------
    def list_workflows(self) -> list[Workflow]:
        """``GET /orchestration/workflows/list``."""
        return parse_list(self._get("/orchestration/workflows/list"), "workflows", Workflow)

    def list_plays(self, *, is_enabled: bool | None = None, model_uuid: str | None = None,
                   segment_uuid: str | None = None, schedule_type: str | None = None) -> list[Play]:
        """``GET /orchestration/plays/list``."""
        params = wire(is_enabled=is_enabled, model_uuid=model_uuid, segment_uuid=segment_uuid,
                      schedule_type=schedule_type)
        return parse_list(self._get("/orchestration/plays/list", params), "plays", Play)

    def get_play(self, uuid: str) -> Play:
        """``GET /orchestration/plays/{uuid}``."""
        return Play.model_validate(self._get(f"/orchestration/plays/{uuid}")["play"])

    def list_tools(self) -> list[Tool]:
        """``GET /orchestration/tools/list``."""
        return parse_list(self._get("/orchestration/tools/list"), "tools", Tool)

    def get_tool(self, uuid: str) -> Tool:
        """``GET /orchestration/tools/{uuid}``."""
        return Tool.model_validate(self._get(f"/orchestration/tools/{uuid}")["tool"])

    # -- releases ------------------------------------------------------------------------
    #: Releases read so far, by uuid (at most :data:`RELEASE_CACHE_SIZE`, the oldest dropped first).
    _releases: dict[str, Release]
    RELEASE_CACHE_SIZE = 256

    def get_release(self, uuid: str) -> Release:
        """``GET /orchestration/releases/{uuid}``, once per release and client.

        A release is the workflow as it was deployed: a redeploy makes a new release (new uuid) and leaves the
        old one as it was, so what was read for a uuid stays true. A fan-out of many batches of one release,
        and the outputs and credits of each, read it once (a deployed release read before counts too).
        """
        cached = self._release_cache().get(uuid)
        if cached is not None:
            return cached
        return self._remember(Release.model_validate(self._get(f"/orchestration/releases/{uuid}")["release"]))

    def get_deployed_release(self, workflow_uuid: str) -> Release:
        """``GET /orchestration/releases/deployed?workflowUuid=`` (to find output node slugs). Always asked:
        which release is deployed can change at any time; the release read is kept for :meth:`get_release`."""
        body = self._get("/orchestration/releases/deployed", {"workflowUuid": workflow_uuid})
        return self._remember(Release.model_validate(body["release"]))

    def _release_cache(self) -> dict[str, Release]:
        try:
            return self._releases
        except AttributeError:
            self._releases = {}
            return self._releases

    def _remember(self, release: Release) -> Release:
        cache = self._release_cache()
        if release.uuid:
            cache[release.uuid] = release
            while len(cache) > self.RELEASE_CACHE_SIZE:
                cache.pop(next(iter(cache)))
        return release

    # -- batches (creation: CargoClient.create_batch, exactly once) ----------------------
    def get_batch(self, uuid: str) -> Batch:
        """``GET /orchestration/batches/{uuid}``."""
        return Batch.model_validate(self._get(f"/orchestration/batches/{uuid}", batch_uuid=uuid)["batch"])

    def list_batches(
        self, *, workflow_uuids: Sequence[str] | None = None, statuses: Sequence[str] | None = None,
        release_uuid: str | None = None, has_runs: bool | None = None, is_finished: bool | None = None,
        included_data_kinds: Sequence[str] | None = None, excluded_data_kinds: Sequence[str] | None = None,
        limit: int | None = None, offset: int | None = None,
    ) -> list[Batch]:
        """``GET /orchestration/batches/list`` (no total count is returned)."""
        statuses = checked_statuses(statuses, BatchStatus, "batch")
        params = wire(workflow_uuids=workflow_uuids, release_uuid=release_uuid, statuses=statuses,
                      has_runs=has_runs, is_finished=is_finished, included_data_kinds=included_data_kinds,
                      excluded_data_kinds=excluded_data_kinds, limit=limit, offset=offset)
        return parse_list(self._get("/orchestration/batches/list", params), "batches", Batch)

    def cancel_batch(self, uuid: str) -> None:
        """``POST /orchestration/batches/{uuid}/cancel`` (no body)."""
        self._post(f"/orchestration/batches/{uuid}/cancel", send_body=False, idempotent=True, batch_uuid=uuid)

    def get_batch_download_url(self, uuid: str, output_node_slug: str | None = None) -> str:
        """``POST /orchestration/batches/{uuid}/download`` → a URL that needs no token."""
        body = self._post(f"/orchestration/batches/{uuid}/download", wire(output_node_slug=output_node_slug),
                          idempotent=True, send_body=True, batch_uuid=uuid)
        return str(body["url"])

    # -- runs ----------------------------------------------------------------------------
    def list_runs(
        self, *, workflow_uuid: str | None = None, batch_uuid: str | None = None, user_uuid: str | None = None,
        statuses: Sequence[str] | None = None, is_finished: bool | None = None,
        created_after: str | datetime | None = None, created_before: str | datetime | None = None,
        limit: int | None = None, offset: int | None = None, executions_filter: Mapping[str, Any] | None = None,
    ) -> RunList:
        """``POST /orchestration/runs/list`` → runs and the total count."""
        statuses = checked_statuses(statuses, RunStatus, "run")
        payload = wire(workflow_uuid=workflow_uuid, batch_uuid=batch_uuid, user_uuid=user_uuid, statuses=statuses,
                       is_finished=is_finished, executions_filter=executions_filter, created_after=created_after,
                       created_before=created_before, limit=limit, offset=offset)
        return RunList.model_validate(
            self._post("/orchestration/runs/list", payload, idempotent=True, batch_uuid=batch_uuid))

    def count_runs(
        self, *, workflow_uuid: str | None = None, batch_uuid: str | None = None,
        statuses: Sequence[str] | None = None, is_finished: bool | None = None,
        executions_filter: Mapping[str, Any] | None = None,
    ) -> int:
        """``POST /orchestration/runs/count``."""
        statuses = checked_statuses(statuses, RunStatus, "run")
        payload = wire(workflow_uuid=workflow_uuid, batch_uuid=batch_uuid, statuses=statuses,
                       is_finished=is_finished, executions_filter=executions_filter)
        return int(self._post("/orchestration/runs/count", payload, idempotent=True)["count"])

    def create_run(self, workflow_uuid: str, data: Mapping[str, Any], *, release_uuid: str | None = None) -> Run:
        """``POST /orchestration/runs``: one record through a tool (plays answer ``playNotCompatible``).

        Spends credits, so it is never retried after an ambiguous failure (see :mod:`.single_run` when present).
        """
        payload = {**wire(workflow_uuid=workflow_uuid, release_uuid=release_uuid), "data": dict(data)}
        return Run.model_validate(self._post("/orchestration/runs", payload, idempotent=False)["run"])

    def get_run(self, uuid: str) -> Run:
        """``GET /orchestration/runs/{uuid}`` (the run only)."""
        return self.get_run_detail(uuid)[0]

    def get_run_detail(self, uuid: str) -> tuple[Run, dict[str, Any], dict[str, Any]]:
        """``GET /orchestration/runs/{uuid}``: the run, its ``runContext`` and ``runComputedConfigs`` (each keyed
        by node slug: a node's output, and the config it ran with)."""
        body = self._get(f"/orchestration/runs/{uuid}")
        return (Run.model_validate(body["run"]), dict(body.get("runContext") or {}),
                dict(body.get("runComputedConfigs") or {}))

    def cancel_runs(self, workflow_uuid: str, uuids: Sequence[str]) -> None:
        """``POST /orchestration/runs/cancel`` by id (result: void)."""
        self._post("/orchestration/runs/cancel", {"workflowUuid": workflow_uuid, "uuids": list(uuids)},
                   idempotent=True)

    def get_run_metrics(
        self, workflow_uuid: str, *, batch_uuid: str | None = None, release_uuid: str | None = None,
        created_after: str | datetime | None = None, created_before: str | datetime | None = None,
    ) -> list[RunMetric]:
        """``POST /orchestration/runs/metrics``: per-node executions and credits."""
        payload = wire(workflow_uuid=workflow_uuid, batch_uuid=batch_uuid, release_uuid=release_uuid,
                       created_after=created_after, created_before=created_before)
        body = self._post("/orchestration/runs/metrics", payload, idempotent=True, batch_uuid=batch_uuid)
        return parse_list(body, "runMetrics", RunMetric)

    def get_run_outputs_download_url(
        self, workflow_uuid: str, *, output_node_slug: str | None = None, format: DownloadFormat = "csv",
        batch_uuid: str | None = None, statuses: Sequence[str] | None = None, limit: int | None = None,
        offset: int | None = None, executions_filter: Mapping[str, Any] | None = None,
    ) -> str:
        """``POST /orchestration/runs/download-outputs`` → a URL (CSV or JSON), one row per run."""
        statuses = checked_statuses(statuses, RunStatus, "run")
        payload = wire(workflow_uuid=workflow_uuid, output_node_slug=output_node_slug, format=format,
                       batch_uuid=batch_uuid, statuses=statuses, executions_filter=executions_filter,
                       limit=limit, offset=offset)
        body = self._post("/orchestration/runs/download-outputs", payload, idempotent=True, batch_uuid=batch_uuid)
        return str(body["url"])
