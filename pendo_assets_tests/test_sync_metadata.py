"""Metadata syncs end to end against the sandbox: payloads, modes, last row wins, bad rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from pendo_assets.client import MetadataRecord, PendoClient
from pendo_assets.sync.deliver.outcome import NOT_IN_PENDO
from pendo_assets.sync.engine import SyncOptions, run_sync
from pendo_assets.sync.prepare.metadata_rows import SUPERSEDED
from pendo_assets.sync.prepare.scalar_values import not_scalar
from pendo_assets.sync.results import RowFailure, SyncReport
from pendo_assets.sync.spec import SourceSpec, SyncSpec

PARTITION = "2026-11-02"
NOV_2_10H = 1_793_613_600_000  # 2026-11-02T10:00:00Z in epoch milliseconds
CUSTOM = "/api/v1/metadata/visitor/custom/value"
AGENT = "/api/v1/metadata/visitor/agent/value"
ID_REASON = "visitorId identifier is missing or empty"

VISITOR_MAPPING = {
    "id": "visitorId",
    "plan": "plan",
    "seats": "seats",
    "is_trial": "is_trial",
    "signup_date": "signup_date",
    "email": "agent.email",
}


def visitor_spec(mapping: dict[str, str] | None = None, mode: str = "upsert") -> SyncSpec:
    return SyncSpec(
        name="visitors",
        object_type="visitor_metadata",
        mode=mode,
        source=SourceSpec(partition_column="updated_at", table="visitors"),
        mapping=mapping or VISITOR_MAPPING,
    )


def warehouse_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Object columns of driver values, as the warehouse reader returns a partition."""
    return pd.DataFrame(rows, dtype=object)


def sync(
    spec: SyncSpec, frame: pd.DataFrame, client: PendoClient, max_in_flight: int = 4
) -> SyncReport:
    report = run_sync(
        spec,
        frame,
        client,
        partition_key=PARTITION,
        options=SyncOptions(max_in_flight=max_in_flight),
    )
    assert report.rows == report.sent + report.failed + report.skipped
    return report


def writes(sandbox: Any) -> list[tuple[str, dict[str, str], Any]]:
    """(path, query, body) of every Pendo request, in arrival order."""
    return [(r["path"], r["query"], r["body"]) for r in sandbox.state()["requests"]]


def counts(report: SyncReport) -> tuple[int, int, int, int]:
    return report.rows, report.sent, report.failed, report.skipped


# -- payloads ----------------------------------------------------------------------------------


def test_custom_and_agent_fields_go_in_two_requests_per_batch(
    sandbox: Any, client: PendoClient
) -> None:
    frame = warehouse_frame(
        [
            {
                "id": "v-1",
                "plan": "pro",
                "seats": 12,
                "is_trial": False,
                "signup_date": datetime(2026, 11, 2, 10),
                "email": "ada@example.com",
            },
            {
                "id": 2,
                "plan": None,
                "seats": None,
                "is_trial": True,
                "signup_date": "2026-11-02T12:00:00+02:00",
                "email": None,
            },
        ]
    )
    report = sync(visitor_spec(), frame, client)
    assert sorted(writes(sandbox)) == [
        (
            AGENT,
            {"create": "true"},
            [
                {"visitorId": "v-1", "values": {"email": "ada@example.com"}},
                {"visitorId": "2", "values": {"email": None}},
            ],
        ),
        (
            CUSTOM,
            {"create": "true"},
            [
                {
                    "visitorId": "v-1",
                    "values": {
                        "plan": "pro",
                        "seats": 12,
                        "is_trial": False,
                        "signup_date": NOV_2_10H,
                    },
                },
                {
                    "visitorId": "2",
                    "values": {
                        "plan": None,
                        "seats": None,
                        "is_trial": True,
                        "signup_date": "2026-11-02T12:00:00+02:00",  # text stays text
                    },
                },
            ],
        ),
    ]
    assert counts(report) == (2, 2, 0, 0)
    assert report.requests == 2
    assert sandbox.state()["metadata"]["visitor"] == {
        "v-1": {
            "custom": {"plan": "pro", "seats": 12, "is_trial": False, "signup_date": NOV_2_10H},
            "agent": {"email": "ada@example.com"},
        },
        "2": {
            "custom": {
                "plan": None,
                "seats": None,
                "is_trial": True,
                "signup_date": "2026-11-02T12:00:00+02:00",
            },
            "agent": {"email": None},
        },
    }


def test_warehouse_integers_and_datetimes_beside_nulls_arrive_as_integers(
    sandbox: Any, client: PendoClient
) -> None:
    frame = warehouse_frame(
        [
            {"id": "v-1", "seats": 12, "signup_date": datetime(2026, 11, 2, 10)},
            {"id": "v-2", "seats": None, "signup_date": None},
        ]
    )
    mapping = {"id": "visitorId", "seats": "seats", "signup_date": "signup_date"}
    report = sync(visitor_spec(mapping), frame, client)
    [(_, _, body)] = writes(sandbox)
    assert body == [
        {"visitorId": "v-1", "values": {"seats": 12, "signup_date": NOV_2_10H}},
        {"visitorId": "v-2", "values": {"seats": None, "signup_date": None}},
    ]
    # 12.0 would equal 12; Pendo's time fields refuse 1793613600000.0
    assert [type(v) for v in body[0]["values"].values()] == [int, int]
    assert (report.sent, report.failed) == (2, 0)


def test_typed_numpy_columns_arrive_as_plain_json(sandbox: Any, client: PendoClient) -> None:
    frame = pd.DataFrame(
        {
            "id": pd.Series([1.0, 2.0]),  # integer ids widened to float by a NULL elsewhere
            "seats": pd.Series([np.nan, 7.0]),
            "is_trial": pd.Series([True, False]),
            "signup_date": pd.to_datetime(["2026-11-02 10:00:00", None]),
        }
    )
    mapping = {"id": "visitorId", "seats": "seats", "is_trial": "is_trial"}
    sync(visitor_spec({**mapping, "signup_date": "signup_date"}), frame, client)
    [(_, _, body)] = writes(sandbox)
    assert body == [
        {
            "visitorId": "1",
            "values": {"seats": None, "is_trial": True, "signup_date": NOV_2_10H},
        },
        {"visitorId": "2", "values": {"seats": 7, "is_trial": False, "signup_date": None}},
    ]
    assert [type(r["values"]["is_trial"]) for r in body] == [bool, bool]


def test_account_metadata_goes_to_the_account_path_with_account_ids(
    sandbox: Any, client: PendoClient
) -> None:
    spec = SyncSpec(
        name="accounts",
        object_type="account_metadata",
        source=SourceSpec(partition_column="updated_at", query="SELECT * FROM accounts"),
        mapping={"account_id": "accountId", "name": "name", "arr": "arr"},
    )
    frame = warehouse_frame([{"account_id": 501, "name": "Acme", "arr": Decimal("1200.50")}])
    report = sync(spec, frame, client)
    assert writes(sandbox) == [
        (
            "/api/v1/metadata/account/custom/value",
            {"create": "true"},
            [{"accountId": "501", "values": {"name": "Acme", "arr": 1200.5}}],
        )
    ]
    assert counts(report) == (1, 1, 0, 0)
    assert sandbox.state()["metadata"]["account"]["501"]["custom"] == {
        "name": "Acme",
        "arr": 1200.5,
    }


# -- modes -------------------------------------------------------------------------------------


def test_upsert_sends_create_true_and_creates_unknown_ids(
    sandbox: Any, client: PendoClient
) -> None:
    frame = warehouse_frame([{"id": "new-1", "plan": "pro"}, {"id": "new-2", "plan": "free"}])
    report = sync(visitor_spec({"id": "visitorId", "plan": "plan"}), frame, client)
    assert [query for _, query, _ in writes(sandbox)] == [{"create": "true"}]
    assert counts(report) == (2, 2, 0, 0)
    assert sorted(sandbox.state()["metadata"]["visitor"]) == ["new-1", "new-2"]


def test_update_never_creates_and_skips_unknown_ids_as_not_in_pendo(
    sandbox: Any, client: PendoClient
) -> None:
    client.write_metadata_batch("visitor", [MetadataRecord("known", {"plan": "free"})], create=True)
    frame = warehouse_frame([{"id": "stranger", "plan": "pro"}, {"id": "known", "plan": "pro"}])
    report = sync(visitor_spec({"id": "visitorId", "plan": "plan"}, mode="update"), frame, client)
    assert writes(sandbox)[1:] == [
        (
            CUSTOM,
            {},
            [
                {"visitorId": "stranger", "values": {"plan": "pro"}},
                {"visitorId": "known", "values": {"plan": "pro"}},
            ],
        )
    ]
    assert counts(report) == (2, 1, 0, 1)
    assert (report.failures, report.not_in_pendo) == ([], 1)
    assert report.skipped_reasons == {NOT_IN_PENDO: 1}
    assert sandbox.state()["metadata"]["visitor"] == {
        "known": {"custom": {"plan": "pro"}, "agent": {}}
    }


def test_update_sends_no_create_and_no_agent_request_for_a_row_pendo_lacks(
    sandbox: Any, client: PendoClient
) -> None:
    frame = warehouse_frame([{"id": "stranger", "plan": "pro", "email": "s@example.com"}])
    report = sync(
        visitor_spec({"id": "visitorId", "plan": "plan", "email": "agent.email"}, mode="update"),
        frame,
        client,
    )
    # The agent request carries only rows whose custom values Pendo accepted: none here.
    assert [(path, query) for path, query, _ in writes(sandbox)] == [(CUSTOM, {})]
    assert (report.failures, report.not_in_pendo) == ([], 1)
    assert sandbox.state()["metadata"]["visitor"] == {}


# -- last row wins -----------------------------------------------------------------------------


def test_the_last_row_for_an_id_wins_and_earlier_rows_are_skipped(
    sandbox: Any, client: PendoClient
) -> None:
    frame = warehouse_frame(
        [
            {"id": "v-1", "plan": "free", "seats": 1},
            {"id": "v-2", "plan": "team", "seats": 5},
            {"id": "v-1", "plan": "pro", "seats": 2},
            {"id": "v-1", "plan": "enterprise", "seats": 3},
        ]
    )
    report = sync(
        visitor_spec({"id": "visitorId", "plan": "plan", "seats": "seats"}), frame, client
    )
    assert writes(sandbox) == [
        (
            CUSTOM,
            {"create": "true"},
            [
                {"visitorId": "v-2", "values": {"plan": "team", "seats": 5}},
                {"visitorId": "v-1", "values": {"plan": "enterprise", "seats": 3}},
            ],
        )
    ]
    assert counts(report) == (4, 2, 0, 2)
    assert report.skipped_reasons == Counter({SUPERSEDED: 2})
    assert sandbox.state()["metadata"]["visitor"]["v-1"]["custom"] == {
        "plan": "enterprise",
        "seats": 3,
    }


def test_ids_that_differ_only_in_type_are_the_same_id(sandbox: Any, client: PendoClient) -> None:
    frame = warehouse_frame([{"id": 7, "plan": "free"}, {"id": "7", "plan": "pro"}])
    report = sync(visitor_spec({"id": "visitorId", "plan": "plan"}), frame, client)
    assert counts(report) == (2, 1, 0, 1)
    assert sandbox.state()["metadata"]["visitor"]["7"]["custom"] == {"plan": "pro"}


def test_a_superseded_row_is_skipped_even_when_its_values_are_bad(
    sandbox: Any, client: PendoClient
) -> None:
    frame = warehouse_frame(
        [{"id": "v-1", "plan": {"not": "scalar"}}, {"id": "v-1", "plan": "pro"}]
    )
    report = sync(visitor_spec({"id": "visitorId", "plan": "plan"}), frame, client)
    assert counts(report) == (2, 1, 0, 1)
    assert report.failures == []


def test_a_bad_last_row_fails_and_the_rows_it_superseded_stay_skipped(
    sandbox: Any, client: PendoClient
) -> None:
    frame = warehouse_frame([{"id": "v-1", "plan": "pro"}, {"id": "v-1", "plan": ["pro"]}])
    report = sync(visitor_spec({"id": "visitorId", "plan": "plan"}), frame, client)
    assert counts(report) == (2, 0, 1, 1)
    assert report.failures == [
        RowFailure(1, "v-1", f"column 'plan': {not_scalar('list')}", field="plan")
    ]
    assert writes(sandbox) == []


# -- bad rows ----------------------------------------------------------------------------------


def test_each_bad_row_fails_alone_with_its_id_field_and_reason(
    sandbox: Any, client: PendoClient
) -> None:
    frame = warehouse_frame(
        [
            {"id": "v-ok", "plan": "pro", "seats": 1, "email": "ok@example.com"},
            {"id": None, "plan": "pro", "seats": 1, "email": "a@example.com"},
            {"id": "", "plan": "pro", "seats": 1, "email": "b@example.com"},
            {"id": "   ", "plan": "pro", "seats": 1, "email": "c@example.com"},
            {"id": "v-dict", "plan": {"tier": "pro"}, "seats": 1, "email": "d@example.com"},
            {"id": "v-list", "plan": "pro", "seats": [1, 2], "email": "e@example.com"},
            {"id": "v-inf", "plan": "pro", "seats": float("inf"), "email": "f@example.com"},
            {"id": "v-agent", "plan": "pro", "seats": 1, "email": {"a": 1}},
        ]
    )
    mapping = {"id": "visitorId", "plan": "plan", "seats": "seats", "email": "agent.email"}
    report = sync(visitor_spec(mapping), frame, client)
    assert report.failures == [
        RowFailure(1, None, ID_REASON, field="visitorId"),
        RowFailure(2, None, ID_REASON, field="visitorId"),
        RowFailure(3, None, ID_REASON, field="visitorId"),
        RowFailure(4, "v-dict", f"column 'plan': {not_scalar('dict')}", field="plan"),
        RowFailure(5, "v-list", f"column 'seats': {not_scalar('list')}", field="seats"),
        RowFailure(6, "v-inf", "column 'seats': value is not a finite number", field="seats"),
        RowFailure(7, "v-agent", f"column 'email': {not_scalar('dict')}", field="agent.email"),
    ]
    assert counts(report) == (8, 1, 7, 0)
    assert sorted(writes(sandbox)) == [
        (AGENT, {"create": "true"}, [{"visitorId": "v-ok", "values": {"email": "ok@example.com"}}]),
        (
            CUSTOM,
            {"create": "true"},
            [{"visitorId": "v-ok", "values": {"plan": "pro", "seats": 1}}],
        ),
    ]


def test_a_value_pendo_refuses_fails_only_its_row_with_pendos_reason(
    sandbox: Any, client: PendoClient
) -> None:
    frame = warehouse_frame(
        [
            {"id": "v-1", "seats": 1},
            {"id": "v-2", "seats": "many"},
            {"id": "v-3", "seats": 3},
        ]
    )
    report = sync(visitor_spec({"id": "visitorId", "seats": "seats"}), frame, client)
    assert counts(report) == (3, 2, 1, 0)
    assert report.failures == [
        RowFailure(
            1,
            "v-2",
            "rejected by Pendo: field 'seats' expects number, got string",
            http_status=200,
        )
    ]
    assert sorted(sandbox.state()["metadata"]["visitor"]) == ["v-1", "v-3"]


def test_a_field_pendo_does_not_know_fails_every_row_with_pendos_reason(
    sandbox: Any, client: PendoClient
) -> None:
    frame = warehouse_frame([{"id": "v-1", "color": "red"}, {"id": "v-2", "color": "blue"}])
    report = sync(visitor_spec({"id": "visitorId", "color": "color"}), frame, client)
    reason = (
        "rejected by Pendo: field 'color' is not a custom field of visitor; "
        "add it under Settings > Data Mappings"
    )
    assert report.failures == [
        RowFailure(0, "v-1", reason, http_status=200),
        RowFailure(1, "v-2", reason, http_status=200),
    ]
    assert counts(report) == (2, 0, 2, 0)


def test_rows_sent_failed_and_skipped_always_add_up(sandbox: Any, client: PendoClient) -> None:
    client.write_metadata_batch("visitor", [MetadataRecord("known", {"plan": "free"})], create=True)
    frame = warehouse_frame(
        [
            {"id": "known", "plan": "free"},  # superseded
            {"id": None, "plan": "pro"},  # no id
            {"id": "stranger", "plan": "pro"},  # not in Pendo (update): skipped
            {"id": "bad", "plan": {"x": 1}},  # not a scalar
            {"id": "known", "plan": "pro"},  # sent
        ]
    )
    report = sync(visitor_spec({"id": "visitorId", "plan": "plan"}, mode="update"), frame, client)
    assert counts(report) == (5, 1, 2, 2)
    assert report.failed == len(report.failures)
    assert [(f.row, f.record_id) for f in report.failures] == [(1, None), (3, "bad")]


# -- retries and batches -----------------------------------------------------------------------


def test_retried_counts_the_rows_whose_request_was_retried(
    sandbox: Any, client_factory: Callable[..., PendoClient]
) -> None:
    client = client_factory(batch_size=2)
    sandbox.script_faults([{"status": 503}])
    frame = warehouse_frame([{"id": f"v-{i}", "plan": "pro"} for i in range(4)])
    report = sync(visitor_spec({"id": "visitorId", "plan": "plan"}), frame, client, max_in_flight=1)
    assert (report.sent, report.retried, report.requests) == (4, 2, 3)
    assert [r["status"] for r in sandbox.state()["requests"]] == [503, 200, 200]
    assert sorted(sandbox.state()["metadata"]["visitor"]) == ["v-0", "v-1", "v-2", "v-3"]


def test_a_partition_larger_than_the_batch_size_is_split_into_batches(
    sandbox: Any, client_factory: Callable[..., PendoClient]
) -> None:
    client = client_factory(batch_size=2)
    frame = warehouse_frame(
        [{"id": f"v-{i}", "plan": "pro", "email": f"{i}@example.com"} for i in range(5)]
    )
    mapping = {"id": "visitorId", "plan": "plan", "email": "agent.email"}
    report = sync(visitor_spec(mapping), frame, client, max_in_flight=1)
    assert [(path, [r["visitorId"] for r in body]) for path, _, body in writes(sandbox)] == [
        (CUSTOM, ["v-0", "v-1"]),
        (AGENT, ["v-0", "v-1"]),
        (CUSTOM, ["v-2", "v-3"]),
        (AGENT, ["v-2", "v-3"]),
        (CUSTOM, ["v-4"]),
        (AGENT, ["v-4"]),
    ]
    assert (report.sent, report.requests) == (5, 6)


def test_batches_are_sent_concurrently_without_losing_a_row(
    sandbox: Any, client_factory: Callable[..., PendoClient]
) -> None:
    client = client_factory(batch_size=10)
    frame = warehouse_frame([{"id": f"v-{i}", "seats": i} for i in range(200)])
    report = sync(visitor_spec({"id": "visitorId", "seats": "seats"}), frame, client, 8)
    assert (report.sent, report.requests) == (200, 20)
    stored = sandbox.state(requests=False)["metadata"]["visitor"]
    assert {vid: entry["custom"]["seats"] for vid, entry in stored.items()} == {
        f"v-{i}": i for i in range(200)
    }
