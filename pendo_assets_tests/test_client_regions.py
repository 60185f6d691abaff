"""Which host each call goes to: the region's, or the override's."""

from __future__ import annotations

import httpx
import pytest

from pendo_assets.client import (
    REGION_HOSTS,
    MetadataRecord,
    PendoClient,
    PendoConfigError,
    TrackEvent,
)

EXPECTED_HOSTS = {
    "us": "app.pendo.io",
    "us1": "us1.app.pendo.io",
    "eu": "app.eu.pendo.io",
    "jp": "app.jpn.pendo.io",
    "au": "app.au.pendo.io",
}


def _recording_client(seen: list[httpx.Request], **kwargs: object) -> PendoClient:
    """Real Pendo cannot be reached from here: record where requests would have gone."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/data/track":
            return httpx.Response(200, text="OK")
        return httpx.Response(200, json={"total": 1, "updated": 1, "failed": 0, "missing": []})

    return PendoClient(
        integration_key="made-up-key",
        track_event_secret="made-up-secret",
        http_transport=httpx.MockTransport(handler),
        **kwargs,  # type: ignore[arg-type]
    )


def test_region_table_matches_pendo_hosts() -> None:
    assert {r: h.removeprefix("https://") for r, h in REGION_HOSTS.items()} == EXPECTED_HOSTS


@pytest.mark.parametrize("region", sorted(EXPECTED_HOSTS))
def test_each_region_sends_metadata_and_events_to_its_own_host(region: str) -> None:
    seen: list[httpx.Request] = []
    with _recording_client(seen, region=region) as client:
        client.write_metadata_batch("visitor", [MetadataRecord("v-1", {"plan": "pro"})])
        client.send_track_event(
            TrackEvent(event="e", visitor_id="v-1", timestamp=1_700_000_000_000)
        )
    assert [str(r.url) for r in seen] == [
        f"https://{EXPECTED_HOSTS[region]}/api/v1/metadata/visitor/custom/value",
        f"https://{EXPECTED_HOSTS[region]}/data/track",
    ]


def test_region_default_is_us() -> None:
    with PendoClient(integration_key="k") as client:
        assert client.base_url == "https://app.pendo.io"


def test_region_name_is_case_and_space_insensitive() -> None:
    with PendoClient(region=" EU ", integration_key="k") as client:
        assert client.region == "eu"
        assert client.base_url == "https://app.eu.pendo.io"


def test_base_url_override_replaces_the_host_of_every_call() -> None:
    seen: list[httpx.Request] = []
    with _recording_client(seen, region="eu", base_url="http://proxy.internal:8080/") as client:
        client.write_metadata_batch(
            "account", [MetadataRecord("a-1", {"tier": "gold"})], group="agent"
        )
        client.send_track_event(
            TrackEvent(event="e", visitor_id="v-1", timestamp=1_700_000_000_000)
        )
    assert [str(r.url) for r in seen] == [
        "http://proxy.internal:8080/api/v1/metadata/account/agent/value",
        "http://proxy.internal:8080/data/track",
    ]


def test_track_base_url_can_point_events_at_the_data_host() -> None:
    seen: list[httpx.Request] = []
    with _recording_client(seen, region="jp", track_base_url="https://data.jpn.pendo.io") as client:
        client.write_metadata_batch("visitor", [MetadataRecord("v-1", {})])
        client.send_track_event(
            TrackEvent(event="e", visitor_id="v-1", timestamp=1_700_000_000_000)
        )
    assert [r.url.host for r in seen] == ["app.jpn.pendo.io", "data.jpn.pendo.io"]


def test_unknown_region_is_a_clear_error_listing_the_valid_ones() -> None:
    with pytest.raises(PendoConfigError) as info:
        PendoClient(region="mars", integration_key="k")
    assert str(info.value) == (
        "Unknown Pendo region 'mars'; valid regions are: us, us1, eu, jp, au."
    )


def test_base_url_without_scheme_is_refused() -> None:
    with pytest.raises(PendoConfigError, match="must start with http"):
        PendoClient(base_url="localhost:8787", integration_key="k")
