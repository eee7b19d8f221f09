"""One of each (issue 11 item 3): the paginator, the output-fetch loop, the play-input builder and the
Play/Tool → props converter that every caller shares."""

from __future__ import annotations

import pytest
from cargo_gtm.download.fetch import fetch_with_retries
from cargo_gtm.errors import CargoDownloadError, CargoError, CargoInputError
from cargo_gtm.inputs.records import play_input
from cargo_gtm.models import Play, Tool
from cargo_gtm.paging import read_all

from dagster_cargo.definitions.workspace_data import props_from


# -- paginator -------------------------------------------------------------------------------
def test_the_paginator_reads_to_a_short_page_and_keeps_one_copy_per_key() -> None:
    items = [("a", 1), ("b", 1), ("c", 1), ("b", 2), ("d", 1)]  # "b" shows up again when the list moves
    asked: list[int] = []

    def page(offset: int) -> list[tuple[str, int]]:
        asked.append(offset)
        return items[offset:offset + 2]

    assert read_all(page, page_size=2, key=lambda i: i[0]) == [("a", 1), ("b", 2), ("c", 1), ("d", 1)]
    assert asked == [0, 2, 4]


def test_the_paginator_refuses_to_return_part_of_a_list_past_max_pages() -> None:
    with pytest.raises(CargoError) as caught:
        read_all(lambda offset: ["x"] * 2, page_size=2, key=lambda i: str(i), max_pages=3)
    assert "more than 6 items" in caught.value.message and caught.value.hint
    with pytest.raises(ValueError, match="mine"):
        read_all(lambda offset: [1], page_size=1, key=str, max_pages=1, too_many=lambda: ValueError("mine"))  # type: ignore[arg-type,return-value]


# -- output-fetch loop -----------------------------------------------------------------------
def test_the_fetch_loop_makes_a_fresh_attempt_after_each_failure_pausing_on_the_given_clock() -> None:
    urls = iter(["u1", "u2", "u3"])
    slept: list[float] = []
    seen: list[str] = []

    def attempt() -> str:
        url = next(urls)  # a fresh URL each time
        seen.append(url)
        if url != "u3":
            raise CargoDownloadError(f"{url} was cut short.", hint="download again.")
        return "rows"

    assert fetch_with_retries(attempt, attempts=3, sleep=slept.append, what="Download") == "rows"
    assert seen == ["u1", "u2", "u3"] and slept == [0.5, 1.0]


def test_the_fetch_loop_gives_up_with_the_callers_error_built_from_the_last_one() -> None:
    def attempt() -> None:
        raise CargoDownloadError("Body truncated.", batch_uuid="b-1", hint="download again.")

    def give_up(last: CargoDownloadError) -> CargoDownloadError:
        return CargoDownloadError(f"Failed twice; last: {last.message}", batch_uuid="b-1", hint="re-run later.")

    with pytest.raises(CargoDownloadError) as caught:
        fetch_with_retries(attempt, attempts=2, sleep=lambda s: None, what="Download", give_up=give_up)
    assert str(caught.value) == "Failed twice; last: Body truncated. Next step: re-run later."
    assert isinstance(caught.value.__cause__, CargoDownloadError)
    with pytest.raises(CargoDownloadError, match="Body truncated"):  # default: the last error itself
        fetch_with_retries(attempt, attempts=1, sleep=lambda s: None, what="Download")


def test_the_fetch_loop_does_not_retry_other_errors() -> None:
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise CargoInputError("bad slug")

    with pytest.raises(CargoInputError):
        fetch_with_retries(attempt, attempts=5, sleep=lambda s: None, what="Download")
    assert calls == [1]


# -- play input ------------------------------------------------------------------------------
@pytest.mark.parametrize(("selection", "expected"), [
    ({"change_uuid": "c1", "change_kinds": ["added"]}, {"kind": "change", "changeUuid": "c1", "changeKinds": ["added"]}),
    ({"segment_uuid": "s1"}, {"kind": "segment", "segmentUuid": "s1"}),
    ({"record_ids": ["r1", "r2"]}, {"kind": "recordIds", "modelUuid": "m1", "ids": ["r1", "r2"]}),
    ({"filter": {"conjonction": "and", "groups": []}, "limit": 3},
     {"kind": "filter", "modelUuid": "m1", "filter": {"conjonction": "and", "groups": []}, "limit": 3}),
    ({}, {"kind": "filter", "modelUuid": "m1"}),
])
def test_play_input_builds_each_kind(selection: dict, expected: dict) -> None:
    assert play_input("m1", **selection) == expected


def test_play_input_without_a_model_needs_explicit_data() -> None:
    with pytest.raises(CargoInputError, match="Play 'Score' has no model"):
        play_input(None, play_name="Score")
    assert play_input(None, segment_uuid="s1") == {"kind": "segment", "segmentUuid": "s1"}


# -- props -----------------------------------------------------------------------------------
def test_one_converter_turns_plays_and_tools_into_props() -> None:
    play = Play.model_validate({"uuid": "p1", "name": "Score", "workflowUuid": "w1", "modelUuid": "m1",
                                "segmentUuid": "s1", "description": "Scores", "isEnabled": True})
    tool = Tool.model_validate({"uuid": "t1", "name": "Enrich", "workflowUuid": "w2"})
    p, t = props_from(play), props_from(tool)
    assert (p.type, p.uuid, p.name, p.workflow_uuid, p.model_uuid, p.segment_uuid, p.description, p.is_enabled) == (
        "play", "p1", "Score", "w1", "m1", "s1", "Scores", True)
    assert (t.type, t.uuid, t.workflow_uuid, t.model_uuid, t.required_form_field_slugs, t.release_uuid) == (
        "tool", "t1", "w2", None, None, None)
