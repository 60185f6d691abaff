"""The Dagster layer so far: the Pendo resource and a code location that loads cleanly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from pendo_assets.client import MetadataRecord, PendoConfigError
from pendo_assets.defs.resources import PendoResource, pendo_resource_from_env

REPO = Path(__file__).resolve().parents[1]


def test_resource_repr_hides_both_credentials(
    integration_key: str, track_event_secret: str
) -> None:
    resource = PendoResource(integration_key=integration_key, track_event_secret=track_event_secret)
    for text in (repr(resource), str(resource)):
        assert integration_key not in text
        assert track_event_secret not in text


def test_resource_client_writes_to_the_sandbox_inside_an_asset(
    sandbox: Any, integration_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PENDO_KEY", integration_key)

    @dg.asset
    def pushed(pendo: PendoResource) -> None:
        with pendo.get_client() as client:
            [result] = client.write_metadata_batch(
                "visitor", [MetadataRecord("v-dagster", {"plan": "pro"})], create=True
            )
        assert result.ok

    resource = PendoResource(base_url=sandbox.url, integration_key=dg.EnvVar("TEST_PENDO_KEY"))
    assert dg.materialize([pushed], resources={"pendo": resource}).success
    assert sandbox.state()["metadata"]["visitor"]["v-dagster"]["custom"] == {"plan": "pro"}


def test_resource_rejects_an_unknown_region_with_the_valid_ones() -> None:
    with pytest.raises(PendoConfigError, match="valid regions are: us, us1, eu, jp, au"):
        PendoResource(region="moon", integration_key="k").get_client()


def test_resource_from_env_reads_the_documented_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PENDO_REGION", "eu")
    monkeypatch.setenv("PENDO_INTEGRATION_KEY", "made-up")
    monkeypatch.delenv("PENDO_TRACK_EVENT_SECRET", raising=False)
    monkeypatch.setenv("PENDO_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("PENDO_MAX_REQUESTS_PER_SECOND", "25")
    resource = pendo_resource_from_env()
    assert resource.region == "eu"
    assert resource.integration_key == dg.EnvVar("PENDO_INTEGRATION_KEY")
    assert resource.track_event_secret is None
    assert resource.base_url == "http://127.0.0.1:9"
    assert resource.max_requests_per_second == 25.0


def test_a_cap_of_zero_means_no_cap_and_a_negative_one_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PENDO_MAX_REQUESTS_PER_SECOND", "0")
    assert pendo_resource_from_env().max_requests_per_second == 0.0
    resource = PendoResource(integration_key="made-up", max_requests_per_second=0)
    with resource.get_client() as client:
        assert client.max_requests_per_second is None
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        PendoResource(integration_key="made-up", max_requests_per_second=-1)


def test_code_location_loads_and_validates_without_warnings() -> None:
    code = (
        "import dagster as dg\n"
        "from pendo_assets.definitions import defs\n"
        "dg.Definitions.validate_loadable(defs)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, cwd=REPO
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
