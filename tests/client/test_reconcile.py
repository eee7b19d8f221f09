"""Exactly one batch after an ambiguous create: adopt by content, resend, or stop: never duplicate, never adopt
a batch because of where it sits in a list or who created it."""

from datetime import datetime, timedelta, timezone

import pytest
from cargo_gtm import Batch, CargoAmbiguousCreateError, CargoNetworkError, CargoServerError
from cargo_gtm.running.reconcile import (
    CreateIntent,
    Match,
    create_batch_once,
    data_matches,
    newer_than,
    records_match,
    watermark_of,
)

T0 = datetime(2025, 1, 15, 10, 0, tzinfo=timezone.utc)


def batch(uuid, at, kind="records", **data):
    return Batch.model_validate({"uuid": uuid, "workflowUuid": "wf", "status": "running", "runsCount": 1,
                                 "createdAt": (T0 + timedelta(seconds=at)).isoformat(),
                                 "data": {"kind": kind, **data}})


class FakeCargo:
    """A server whose create may commit without the client hearing back; content is what ``owner`` says."""

    def __init__(self, existing=(), outcomes=("lost",)):
        self.batches = list(existing)
        self.outcomes = list(outcomes)
        self.sends = 0
        self.owner: dict[str, str] = {}  # batch uuid -> whose content it holds

    def send(self, new_batch, me="me"):
        def _send():
            self.sends += 1
            outcome = self.outcomes.pop(0) if self.outcomes else "ok"
            if outcome in ("lost", "ok", "5xx-committed"):
                made = new_batch(self.sends)
                self.owner[made.uuid] = me
                self.batches.insert(len(self.batches) // 2, made)  # anywhere in the list: order means nothing
            if outcome == "lost":
                raise CargoNetworkError("read timeout", method="POST", endpoint="/orchestration/batches")
            if outcome in ("5xx-not-committed", "5xx-committed"):
                raise CargoServerError(status=502, method="POST", endpoint="/orchestration/batches", body="")
            return made
        return _send

    def check(self, me="me", unreadable=()):
        def _check(candidates):
            match = Match()
            for b in candidates:
                if b.uuid in unreadable:
                    match.undecided.append(b)
                elif self.owner.get(b.uuid) == me:
                    match.proven.append(b)
            return match
        return _check


def intent(existing):
    watermark, at = watermark_of(existing)
    return CreateIntent(workflow_uuid="wf", sent_at=T0.isoformat(), watermark=watermark, at_watermark=at)


def run(fake, new_batch, **kw):
    return create_batch_once(send=fake.send(new_batch), list_all=lambda: list(fake.batches),
                             check=kw.pop("check", fake.check()), intent=intent(fake.batches),
                             sleep=lambda s: None, **kw)


def test_lost_response_adopts_the_committed_batch_without_resending():
    fake = FakeCargo(existing=[batch("old", 0)], outcomes=["lost"])
    got = run(fake, lambda n: batch(f"new{n}", 10))
    assert got.uuid == "new1" and fake.sends == 1 and len(fake.batches) == 2


def test_not_committed_is_sent_again_once():
    fake = FakeCargo(outcomes=["5xx-not-committed", "ok"])
    got = run(fake, lambda n: batch(f"new{n}", 10 * n))
    assert got.uuid == "new2" and fake.sends == 2 and [b.uuid for b in fake.batches] == ["new2"]


def test_committed_5xx_is_adopted():
    fake = FakeCargo(existing=[batch(f"old{i}", i) for i in range(150)], outcomes=["5xx-committed"])
    got = run(fake, lambda n: batch("mine", 500))
    assert got.uuid == "mine" and fake.sends == 1


def test_a_foreign_batch_of_the_same_kind_created_meanwhile_is_never_adopted():
    # the old rule (same user, same kind, new since a snapshot) adopted this one: another materialization's batch
    fake = FakeCargo(outcomes=["5xx-not-committed", "ok"])
    send = fake.send(lambda n: batch(f"mine{n}", 20 * n))

    def send_with_neighbour():
        fake.batches.insert(0, batch("neighbour", 5))
        fake.owner["neighbour"] = "someone else"
        return send()

    got = create_batch_once(send=send_with_neighbour, list_all=lambda: list(fake.batches), check=fake.check(),
                            intent=intent([]), sleep=lambda s: None)
    assert got.uuid == "mine2" and fake.sends == 2


def test_two_batches_with_our_content_stop_without_creating_and_are_named():
    fake = FakeCargo(outcomes=["lost"])
    send = fake.send(lambda n: batch("mine", 10))

    def send_with_twin():
        fake.batches.insert(0, batch("twin", 11))  # an identical materialization running at the same time
        fake.owner["twin"] = "me"
        return send()

    with pytest.raises(CargoAmbiguousCreateError) as info:
        create_batch_once(send=send_with_twin, list_all=lambda: list(fake.batches), check=fake.check(),
                          intent=intent([]), sleep=lambda s: None)
    assert sorted(info.value.candidates) == ["mine", "twin"] and fake.sends == 1
    assert "none created" in str(info.value) and "Next step" in str(info.value)


def test_a_candidate_whose_content_cannot_be_read_stops_rather_than_resends():
    fake = FakeCargo(outcomes=["lost"])
    with pytest.raises(CargoAmbiguousCreateError) as info:
        run(fake, lambda n: batch("pending-one", 10), check=fake.check(unreadable={"pending-one"}))
    assert info.value.candidates == ["pending-one"] and fake.sends == 1


def test_batches_older_than_the_watermark_are_never_candidates():
    old = [batch("yesterday-same-input", 0)]
    fake = FakeCargo(existing=old, outcomes=["5xx-not-committed", "ok"])
    fake.owner["yesterday-same-input"] = "me"  # same content, but it existed before this create was sent
    got = run(fake, lambda n: batch(f"new{n}", 100 * n))
    assert got.uuid == "new2" and fake.sends == 2


def test_unambiguous_errors_are_not_reconciled():
    fake = FakeCargo(outcomes=[])

    def refused():
        raise CargoNetworkError("connect refused", method="POST", endpoint="/orchestration/batches", never_sent=True)

    with pytest.raises(CargoNetworkError):
        create_batch_once(send=refused, list_all=lambda: pytest.fail("must not list"), check=fake.check(),
                          intent=intent([]), sleep=lambda s: None)


def test_watermark_and_ties():
    batches = [batch("a", 0), batch("b", 5), batch("c", 5)]
    watermark, at = watermark_of(batches)
    assert at == ("b", "c")
    later = [*batches, batch("d", 5), batch("e", 6)]
    assert [b.uuid for b in newer_than(later, watermark, at)] == ["d", "e"]
    assert watermark_of([]) == (None, ())


def test_intent_round_trips_through_a_run_tag():
    i = CreateIntent(workflow_uuid="wf", sent_at=T0.isoformat(), watermark=T0.isoformat(), at_watermark=("x",),
                     attempt_key="k")
    assert CreateIntent.from_json(i.to_json()) == i


def test_data_matching_compares_the_full_data():
    sent = {"kind": "filter", "modelUuid": "m", "filter": {"conjonction": "and", "groups": []}, "limit": 5}
    assert data_matches({**sent, "extra": 1}, sent)
    assert not data_matches({**sent, "limit": 6}, sent)
    assert not data_matches({"kind": "filter", "modelUuid": "m"}, sent)  # a partial echo proves nothing
    assert not data_matches({"kind": "segment", "segmentUuid": "s"}, {"kind": "segment", "segmentUuid": "t"})


def test_records_match_one_to_one_on_the_fields_both_carry():
    sent = [{"domain": "a.com", "n": 1}, {"domain": "b.com", "n": 2}]
    assert records_match(sent, [{"domain": "b.com", "n": 2.0}, '{"domain": "a.com", "n": 1}'])
    assert records_match(sent, [{"config": {"domain": "a.com"}}, {"config": {"domain": "b.com"}}])
    assert not records_match(sent, [{"domain": "a.com"}, {"domain": "a.com"}])
    assert not records_match(sent, [{"domain": "a.com"}])
    assert not records_match(sent, [{"domain": "a.com"}, {"other": 1}])
    # duplicates need a perfect matching, not a greedy one
    assert records_match([{"a": 1, "b": 1}, {"a": 1}], [{"a": 1}, {"a": 1, "b": 1}])
