"""Cargo's segmentation area (``api.segmentation.*``): segments and their changes (REFERENCE.md section 4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..models import Change, Segment, SegmentFetchResult
from ._base import ApiArea, parse_list, wire

__all__ = ["SegmentationAPI"]


class SegmentationAPI(ApiArea):
    """Endpoints under ``/segmentation``."""

    def list_segments(self) -> list[Segment]:
        """``GET /segmentation/segments/list``."""
        return parse_list(self._get("/segmentation/segments/list"), "segments", Segment)

    def get_segment(self, uuid: str) -> Segment:
        """``GET /segmentation/segments/{uuid}``."""
        return Segment.model_validate(self._get(f"/segmentation/segments/{uuid}")["segment"])

    def fetch_segment(
        self, model_uuid: str, filter: Mapping[str, Any], *, sort: Sequence[Mapping[str, str]] | None = None,
        limit: int | None = None, fetching_limit: int | None = None, fetching_offset: int | None = None,
    ) -> SegmentFetchResult:
        """``POST /segmentation/segments/fetch``: evaluate a filter against a model (checked locally first)."""
        from ..inputs.records import validate_filter

        validate_filter(filter)
        payload = {"modelUuid": model_uuid, "filter": dict(filter),
                   **({"sort": [dict(s) for s in sort]} if sort else {}),
                   **wire(limit=limit, fetching_limit=fetching_limit, fetching_offset=fetching_offset)}
        return SegmentFetchResult.model_validate(self._post("/segmentation/segments/fetch", payload, idempotent=True))

    def fetch_records(self, model_uuid: str, ids: Sequence[str], *, chunk: int = 1000) -> list[dict[str, Any]]:
        """``POST /segmentation/records/fetch``: the model's records with these ids (an id the model does not
        have is simply absent), asked for ``chunk`` ids at a time."""
        records: list[dict[str, Any]] = []
        for start in range(0, len(ids), chunk):
            body = self._post("/segmentation/records/fetch", {"modelUuid": model_uuid,
                                                              "ids": [str(i) for i in ids[start:start + chunk]]},
                              idempotent=True)
            records.extend(r for r in (body or {}).get("records") or [] if isinstance(r, dict))
        return records

    def list_changes(
        self, *, segment_uuid: str | None = None, not_empty: bool | None = None, has_records: str | None = None,
        limit: int | None = None, offset: int | None = None,
    ) -> list[Change]:
        """``GET /segmentation/changes/list``."""
        params = wire(segment_uuid=segment_uuid, not_empty=not_empty, has_records=has_records, limit=limit,
                      offset=offset)
        return parse_list(self._get("/segmentation/changes/list", params), "changes", Change)

    def get_change(self, uuid: str) -> Change:
        """``GET /segmentation/changes/{uuid}``: one change (its added/updated/removed/unchanged counts)."""
        return Change.model_validate(self._get(f"/segmentation/changes/{uuid}")["change"])

    def fetch_change(self, uuid: str, kinds: Sequence[str], *, limit: int | None = None,
                     offset: int | None = None) -> SegmentFetchResult:
        """``POST /segmentation/changes/{uuid}/fetch``: the records of a change, of the given kinds."""
        payload = wire(kinds=list(kinds), limit=limit, offset=offset or None)
        return SegmentFetchResult.model_validate(
            self._post(f"/segmentation/changes/{uuid}/fetch", payload, idempotent=True))
