"""Exactly one batch after an ambiguous create: adopt, resend, or stop — never duplicate."""

import pytest

from dagster_cargo.client import Batch, CargoAmbiguousCreateError, CargoNetworkError, CargoServerError
from dagster_cargo.client.reconcile import create_batch_once, data_matches

ME = "user-me"


def batch(uuid, kind="records", user=ME, **data):
    return Batch.model_validate({"uuid": uuid, "workflowUuid": "wf", "status": "pending", "userUuid": user,
                                 "data": {"kind": kind, **data}})


class FakeCargo:
    """A server whose create may commit without the client hearing back."""

    def __init__(self, existing=(), outcomes=("lost",)):
        self.batches = list(existing)
        self.outcomes = list(outcomes)
        self.sends = 0

    def send(self, new_batch):
        def _send():
            self.sends += 1
            outcome = self.outcomes.pop(0) if self.outcomes else "ok"
            if outcome in ("lost", "ok"):
                self.batches.insert(0, new_batch(self.sends))
            if outcome == "lost":
                raise CargoNetworkError("read timeout", method="POST", endpoint="/orchestration/batches")
            if outcome == "5xx-not-committed":
                raise CargoServerError(status=502, method="POST", endpoint="/orchestration/batches", body="")
            return self.batches[0]
        return _send


def run(fake, data, new_batch, **kw):
    return create_batch_once(send=fake.send(new_batch), list_recent=lambda: list(fake.batches),
                             current_user_uuid=lambda: ME, data=data, workflow_uuid="wf",
                             sleep=lambda s: None, **kw)


def test_lost_response_adopts_the_committed_batch_without_resending():
    fake = FakeCargo(existing=[batch("old")], outcomes=["lost"])
    got = run(fake, {"kind": "records", "records": [{"a": 1}]}, lambda n: batch(f"new{n}"))
    assert got.uuid == "new1" and fake.sends == 1 and len(fake.batches) == 2


def test_not_committed_is_sent_again_once():
    fake = FakeCargo(outcomes=["5xx-not-committed", "ok"])
    got = run(fake, {"kind": "records", "records": [{"a": 1}]}, lambda n: batch(f"new{n}"))
    assert got.uuid == "new2" and fake.sends == 2 and [b.uuid for b in fake.batches] == ["new2"]


def test_two_matching_candidates_stop_without_creating():
    other_run = batch("parallel", kind="records")
    fake = FakeCargo(outcomes=["lost"])
    fake.outcomes = ["lost"]
    send = fake.send(lambda n: batch("mine"))

    def send_with_parallel():
        fake.batches.insert(0, other_run)  # another Dagster run of the same tool, same user
        return send()

    with pytest.raises(CargoAmbiguousCreateError) as info:
        create_batch_once(send=send_with_parallel, list_recent=lambda: list(fake.batches),
                          current_user_uuid=lambda: ME, data={"kind": "records", "records": []},
                          workflow_uuid="wf", sleep=lambda s: None)
    assert sorted(info.value.candidates) == ["mine", "parallel"] and fake.sends == 1
    assert "none created" in str(info.value)


def test_other_users_and_other_inputs_are_not_adopted():
    fake = FakeCargo(outcomes=["lost"])
    send = fake.send(lambda n: batch("mine", kind="filter", modelUuid="m1"))

    def send_with_noise():
        fake.batches.insert(0, batch("ui-run", kind="filter", user="someone-else", modelUuid="m1"))
        fake.batches.insert(0, batch("other-model", kind="filter", modelUuid="m2"))
        return send()

    got = create_batch_once(send=send_with_noise, list_recent=lambda: list(fake.batches),
                            current_user_uuid=lambda: ME, data={"kind": "filter", "modelUuid": "m1"},
                            workflow_uuid="wf", sleep=lambda s: None)
    assert got.uuid == "mine"


def test_unambiguous_errors_are_not_reconciled():
    def refused():
        raise CargoNetworkError("refused", method="POST", endpoint="/x", never_sent=True)

    with pytest.raises(CargoNetworkError):
        create_batch_once(send=refused, list_recent=lambda: [], current_user_uuid=lambda: ME,
                          data={"kind": "records"}, workflow_uuid="wf", sleep=lambda s: None)


def test_data_matching_rules():
    assert data_matches({"kind": "recordIds", "modelUuid": "m", "ids": ["1", "2"]},
                        {"kind": "recordIds", "modelUuid": "m", "ids": ["1", "2"]})
    assert not data_matches({"kind": "recordIds", "modelUuid": "m", "ids": ["1"]},
                            {"kind": "recordIds", "modelUuid": "m", "ids": ["1", "2"]})
    assert data_matches({"kind": "change", "changeUuid": "c", "segmentUuid": "s", "changeKinds": ["added"]},
                        {"kind": "change", "changeUuid": "c", "changeKinds": ["added"]})
    assert data_matches({"kind": "records", "s3Filename": "f"}, {"kind": "records", "records": [{}]})
    assert not data_matches({"kind": "segment", "segmentUuid": "s"}, {"kind": "records", "records": []})
