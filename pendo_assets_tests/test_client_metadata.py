"""Metadata writes against the sandbox: payloads, create, and exact per-record results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pendo_assets.client import (
    NOT_FOUND_REASON,
    AcceptedRecords,
    EncodedRecords,
    FailureKind,
    MetadataRecord,
    PendoClient,
    RecordResult,
)


def _pendo_requests(sandbox: Any) -> list[dict[str, Any]]:
    return sandbox.state()["requests"]


def test_metadata_write_sends_exact_headers_and_body(sandbox: Any, client: PendoClient) -> None:
    client.write_metadata_batch(
        "visitor",
        [
            MetadataRecord("v-1", {"plan": "pro", "seats": 42}),
            MetadataRecord("v-2", {"plan": None}),
        ],
        create=True,
    )
    [request] = _pendo_requests(sandbox)
    assert request["method"] == "POST"
    assert request["path"] == "/api/v1/metadata/visitor/custom/value"
    assert request["query"] == {"create": "true"}
    assert request["headers"]["content-type"] == "application/json"
    assert request["headers"]["x-pendo-integration-key"] == "<integration_key>"
    assert request["headers"]["user-agent"].startswith("pendo-assets/")
    assert request["body"] == [
        {"visitorId": "v-1", "values": {"plan": "pro", "seats": 42}},
        {"visitorId": "v-2", "values": {"plan": None}},
    ]


def test_records_that_carry_their_values_as_json_are_sent_as_that_text(
    sandbox: Any, client: PendoClient
) -> None:
    results = client.write_metadata_batch(
        "visitor",
        [
            MetadataRecord("v-1", {}, '{"plan":"pro","seats":42}'),
            MetadataRecord('v-"2"', {}, '{"plan":null}'),
        ],
        create=True,
    )

    assert [r.ok for r in results] == [True, True]
    [request] = _pendo_requests(sandbox)
    assert request["headers"]["content-type"] == "application/json"
    assert request["body"] == [
        {"visitorId": "v-1", "values": {"plan": "pro", "seats": 42}},
        {"visitorId": 'v-"2"', "values": {"plan": None}},
    ]


def test_encoded_records_are_sent_as_their_ids_and_json_texts(
    sandbox: Any, client: PendoClient
) -> None:
    records = EncodedRecords(["v-1", 'v-"2"'], ['{"plan":"pro","seats":42}', '{"plan":null}'])

    client.write_metadata_batch("visitor", records, create=True)

    [request] = _pendo_requests(sandbox)
    assert request["body"] == [
        {"visitorId": "v-1", "values": {"plan": "pro", "seats": 42}},
        {"visitorId": 'v-"2"', "values": {"plan": None}},
    ]


def test_a_batch_accepted_whole_reads_as_one_accepted_result_per_record(
    sandbox: Any, client: PendoClient
) -> None:
    records = EncodedRecords(["v-1", "v-2", "v-3"], ['{"seats":1}', '{"seats":2}', "{}"])

    results = client.write_metadata_batch("visitor", records, create=True)

    assert isinstance(results, AcceptedRecords)
    expected = [RecordResult.accepted(f"v-{i}", retried=False) for i in (1, 2, 3)]
    assert list(results) == expected
    assert results == expected
    assert results[1] == expected[1]
    assert results[1:] == expected[1:]
    assert len(results) == 3


def test_encoded_records_with_a_bad_value_are_bisected_to_exactly_that_record(
    sandbox: Any, client: PendoClient
) -> None:
    texts = [f'{{"seats":{i}}}' for i in range(16)]
    texts[9] = '{"seats":"nine"}'
    records = EncodedRecords([f"v-{i}" for i in range(16)], texts)

    results = client.write_metadata_batch("visitor", records, create=True)

    assert [r.record_id for r in results] == [f"v-{i}" for i in range(16)]
    assert [r.record_id for r in results if not r.ok] == ["v-9"]
    assert "seats" in (results[9].reason or "")
    assert len(sandbox.state()["metadata"]["visitor"]) == 15


def test_encoded_records_need_one_text_per_id() -> None:
    with pytest.raises(ValueError, match="one JSON text per id"):
        EncodedRecords(["v-1", "v-2"], ["{}"])


def test_account_metadata_uses_account_id_key(sandbox: Any, client: PendoClient) -> None:
    results = client.write_metadata_batch(
        "account", [MetadataRecord("a-1", {"tier": "gold"})], create=True
    )
    assert [r.ok for r in results] == [True]
    [request] = _pendo_requests(sandbox)
    assert request["path"] == "/api/v1/metadata/account/custom/value"
    assert request["body"] == [{"accountId": "a-1", "values": {"tier": "gold"}}]
    assert sandbox.state()["metadata"]["account"]["a-1"]["custom"] == {"tier": "gold"}


def test_agent_group_goes_to_the_agent_path(sandbox: Any, client: PendoClient) -> None:
    results = client.write_metadata_batch(
        "visitor", [MetadataRecord("v-1", {"email": "a@example.com"})], group="agent", create=True
    )
    assert [r.ok for r in results] == [True]
    assert _pendo_requests(sandbox)[0]["path"] == "/api/v1/metadata/visitor/agent/value"
    assert sandbox.state()["metadata"]["visitor"]["v-1"]["agent"] == {"email": "a@example.com"}


def test_without_create_unknown_ids_fail_as_not_found(sandbox: Any, client: PendoClient) -> None:
    client.write_metadata_batch("visitor", [MetadataRecord("known", {"plan": "a"})], create=True)
    results = client.write_metadata_batch(
        "visitor",
        [MetadataRecord("known", {"plan": "b"}), MetadataRecord("stranger", {"plan": "c"})],
    )
    assert [(r.record_id, r.ok, r.reason, r.kind) for r in results] == [
        ("known", True, None, None),
        ("stranger", False, NOT_FOUND_REASON, FailureKind.NOT_FOUND),
    ]
    assert _pendo_requests(sandbox)[-1]["query"] == {}
    metadata = sandbox.state()["metadata"]["visitor"]
    assert metadata["known"]["custom"] == {"plan": "b"}
    assert "stranger" not in metadata


def test_create_true_creates_unknown_ids(sandbox: Any, client: PendoClient) -> None:
    results = client.write_metadata_batch(
        "visitor", [MetadataRecord("new-1", {"seats": 3})], create=True
    )
    assert results[0].ok
    assert sandbox.state()["metadata"]["visitor"]["new-1"]["custom"] == {"seats": 3}


def test_partial_failure_is_attributed_to_exactly_the_bad_records(
    sandbox: Any, client: PendoClient
) -> None:
    records = [MetadataRecord(f"v-{i}", {"seats": i}) for i in range(16)]
    records[5] = MetadataRecord("v-5", {"seats": "five"})  # wrong type
    records[12] = MetadataRecord("v-12", {"unknown_field": 1})  # not a declared field
    results = client.write_metadata_batch("visitor", records, create=True)

    failed = {r.record_id: r for r in results if not r.ok}
    assert sorted(failed) == ["v-12", "v-5"]
    assert failed["v-5"].kind == FailureKind.REJECTED
    assert "seats" in failed["v-5"].reason
    assert "unknown_field" in failed["v-12"].reason
    assert failed["v-5"].errors and failed["v-12"].errors
    assert [r.record_id for r in results] == [r.id for r in records]
    stored = sandbox.state()["metadata"]["visitor"]
    assert sorted(stored, key=lambda k: int(k[2:])) == [
        f"v-{i}" for i in range(16) if i not in (5, 12)
    ]
    assert client.stats_snapshot().bisections >= 1


def test_bisection_costs_logarithmic_requests(sandbox: Any, client: PendoClient) -> None:
    records = [MetadataRecord(f"v-{i}", {"seats": i}) for i in range(512)]
    records[300] = MetadataRecord("v-300", {"seats": "x"})
    results = client.write_metadata_batch("visitor", records, create=True)
    assert [r.record_id for r in results if not r.ok] == ["v-300"]
    # One batch, then one split per level down to the single bad record: 1 + 2 * log2(512).
    assert client.stats_snapshot().requests == 1 + 2 * 9


def test_batch_where_every_record_fails_keeps_pendos_errors(
    sandbox: Any, client: PendoClient
) -> None:
    records = [MetadataRecord("v-1", {"seats": "a"}), MetadataRecord("v-2", {"seats": "b"})]
    results = client.write_metadata_batch("visitor", records, create=True)
    assert [r.ok for r in results] == [False, False]
    assert all(r.reason.startswith("rejected by Pendo: ") and "seats" in r.reason for r in results)
    assert client.stats_snapshot().requests == 1


def test_missing_and_bad_records_in_one_batch_are_each_attributed(
    sandbox: Any, client: PendoClient
) -> None:
    client.write_metadata_batch(
        "visitor", [MetadataRecord(f"v-{i}", {}) for i in range(4)], create=True
    )
    records = [
        MetadataRecord("v-0", {"plan": "a"}),
        MetadataRecord("ghost", {"plan": "b"}),
        MetadataRecord("v-2", {"seats": "not a number"}),
        MetadataRecord("v-3", {"plan": "d"}),
    ]
    results = client.write_metadata_batch("visitor", records)
    assert [(r.record_id, r.ok, r.kind) for r in results] == [
        ("v-0", True, None),
        ("ghost", False, FailureKind.NOT_FOUND),
        ("v-2", False, FailureKind.REJECTED),
        ("v-3", True, None),
    ]


def test_413_splits_the_batch_and_sends_each_half(
    sandbox: Any, client_factory: Callable[..., PendoClient]
) -> None:
    client = client_factory()  # the sandbox answers 413 above 1,000 records
    records = [MetadataRecord(f"v-{i}", {"seats": i}) for i in range(1500)]
    results = client.write_metadata_batch("visitor", records, create=True)
    assert all(r.ok for r in results)
    assert [(req["status"], len(req["body"])) for req in _pendo_requests(sandbox)] == [
        (413, 1500),
        (200, 750),
        (200, 750),
    ]
    assert client.stats_snapshot().batch_splits == 1
    assert len(sandbox.state(requests=False)["metadata"]["visitor"]) == 1500


def test_413_for_a_single_record_fails_that_record(sandbox: Any, client: PendoClient) -> None:
    sandbox.script_faults([{"status": 413, "body": {"message": "too large"}}])
    [result] = client.write_metadata_batch(
        "visitor", [MetadataRecord("v-1", {"plan": "x"})], create=True
    )
    assert (result.ok, result.kind, result.status) == (False, FailureKind.TOO_LARGE, 413)


@pytest.mark.parametrize("status", [400, 404, 422])
def test_other_4xx_fail_the_records_with_status_and_message(
    sandbox: Any, client: PendoClient, status: int
) -> None:
    sandbox.script_faults([{"status": status, "body": {"message": "Pendo says no"}}])
    results = client.write_metadata_batch(
        "visitor", [MetadataRecord("v-1", {}), MetadataRecord("v-2", {})], create=True
    )
    assert [(r.ok, r.status, r.reason, r.kind) for r in results] == [
        (False, status, f"HTTP {status}: Pendo says no", FailureKind.HTTP)
    ] * 2
    assert client.stats_snapshot().requests == 1


def test_a_200_without_counts_is_never_counted_as_sent(sandbox: Any, client: PendoClient) -> None:
    sandbox.script_faults([{"status": 200, "body": {"status": "ok"}}])
    [result] = client.write_metadata_batch("visitor", [MetadataRecord("v-1", {})], create=True)
    assert not result.ok
    assert result.kind == FailureKind.BAD_RESPONSE


def test_failed_count_without_updated_still_bisects(sandbox: Any, client: PendoClient) -> None:
    # A response that only reports `failed`: the client must find the failing record itself.
    sandbox.script_faults([{"status": 200, "body": {"total": 4, "failed": 1}}])
    records = [MetadataRecord(f"v-{i}", {"seats": i}) for i in range(4)]
    records[1] = MetadataRecord("v-1", {"seats": "bad"})
    results = client.write_metadata_batch("visitor", records, create=True)
    assert [r.record_id for r in results if not r.ok] == ["v-1"]


def test_unknown_kind_or_group_is_refused_before_sending(client: PendoClient) -> None:
    with pytest.raises(ValueError, match="kind"):
        client.write_metadata_batch("user", [MetadataRecord("x", {})])
    with pytest.raises(ValueError, match="group"):
        client.write_metadata_batch("visitor", [MetadataRecord("x", {})], group="auto")
