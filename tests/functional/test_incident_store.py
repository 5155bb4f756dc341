"""The incident stores on moto (DynamoDB) and in memory: listing past a page, conditional step writes,
deliveries of findings that have an incident."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from chalicelib.findings import normalize
from chalicelib.incidents import DynamoIncidentStore, IncidentStore, MemoryIncidentStore, StepRecord
from tests.conftest import corpus_event
from tests.functional import responder_env as env

TOR_USER = "guardduty/gd_c7n_UnauthorizedAccess-IAMUser-TorIPCaller.json"


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest) -> IncidentStore:
    if request.param == "memory":
        return MemoryIncidentStore()
    session = request.getfixturevalue("boto_session")
    env.create_tables(session.client("dynamodb"))
    return DynamoIncidentStore(session.client("dynamodb"), env.INCIDENTS_TABLE)


def finding(number: int) -> Any:
    event = corpus_event(TOR_USER)
    event["detail"]["id"] = f"{number:032x}"
    return normalize(event)[0]


def test_listing_reads_past_a_page(store: IncidentStore) -> None:
    """A DynamoDB query page holds at most 1 MB: three incidents with ~390 KB of notes each need two."""
    for number in range(3):
        incident, _ = store.upsert_incident(finding(number), f"2026-11-23T12:00:0{number}.000Z")
        incident.notes = ["x" * 390_000]
        store.save_incident(incident)
    listed = store.list_incidents(limit=3)
    assert [i.last_seen for i in listed] == [f"2026-11-23T12:00:0{n}.000Z" for n in (2, 1, 0)]
    assert len(store.list_incidents(limit=2)) == 2
    assert len(store.list_incidents()) == 3


def test_only_one_writer_moves_a_step_on(store: IncidentStore) -> None:
    record = StepRecord("inc-1", "key", "p", 0, "iam.deactivate-access-key", "pending-approval", "approval")
    store.put_step(record)
    running = StepRecord.from_dict({**record.to_dict(), "status": "running"})
    assert store.put_step_if(running, "pending-approval") is True
    assert (
        store.put_step_if(StepRecord.from_dict({**record.to_dict(), "status": "denied"}), "pending-approval") is False
    )
    stored = store.get_step("inc-1", "key")
    assert stored is not None and stored.status == "running"
    assert store.put_step_if(StepRecord.from_dict({**record.to_dict(), "key": "absent"}), "pending-approval") is False
    assert store.get_step("inc-1", "absent") is None


def test_the_memory_store_lets_one_of_many_concurrent_writers_win() -> None:
    store = MemoryIncidentStore()
    record = StepRecord("inc-1", "key", "p", 0, "iam.deactivate-access-key", "pending-approval", "approval")
    store.put_step(record)
    wins: list[bool] = []
    start = threading.Barrier(8)

    def claim(number: int) -> None:
        start.wait()
        claimed = StepRecord.from_dict({**record.to_dict(), "status": "running", "attempts": number})
        wins.append(store.put_step_if(claimed, "pending-approval"))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_a_delivery_is_recorded_only_on_an_incident_that_exists(store: IncidentStore) -> None:
    assert store.record_delivery(finding(1), "2026-11-23T12:00:00.000Z") is None
    assert store.list_incidents() == []
    store.upsert_incident(finding(1), "2026-11-23T12:00:00.000Z")
    again = store.record_delivery(finding(1), "2026-11-23T12:05:00.000Z")
    assert again is not None and (again.deliveries, again.last_seen) == (2, "2026-11-23T12:05:00.000Z")
