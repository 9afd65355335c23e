"""Export end to end: the API, the job, the JSON file behind a signed, expiring link."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEntry
from coliseum.models import Tenant
from coliseum.privacy import tasks
from coliseum.privacy.models import PrivacyRequest
from coliseum.privacy.services import export_link_token
from ingestion.models import Person
from ingestion.services import processing_run_pending

from .conftest import hour_ago, ingest, play, vote

SUBJECT = "fan-export-4k2"


def _export(client: APIClient, user_id: str) -> dict[str, Any]:
    response = client.post("/api/v1/privacy/exports", {"user_id": user_id}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending" and response.json()["download_url"] is None
    tasks.privacy_request_run(response.json()["id"])  # an export does nothing after its commit
    status = client.get(f"/api/v1/privacy/exports/{response.json()['id']}")
    assert status.status_code == 200
    return status.json()  # type: ignore[no-any-return]


def _download(url: str) -> Any:
    return APIClient().get(url.removeprefix("https://coliseum.test"))


def test_export_gathers_events_traits_and_derived_rows_of_one_fan_of_one_tenant(
    tenant: Tenant, other_tenant: Tenant, owner: User, client_for: Callable[[User], APIClient]
) -> None:
    # given the fan's plays, a vote and traits, another fan, and the same fan id in another tenant
    at = hour_ago(2)
    ingest(tenant, [play(SUBJECT, "a1", at), play("fan-2", "a1", at), vote(SUBJECT, "a1", at)])
    ingest(other_tenant, [play(SUBJECT, "a9", at)])
    Person.objects.create(tenant=tenant, user_id=SUBJECT, traits={"plan": "gold"})
    processing_run_pending()  # also attributes the vote to the play (ingestion.funnels)

    # when an owner exports the fan and downloads the file without logging in (the link is signed)
    body = _export(client_for(owner), SUBJECT)
    response = _download(body["download_url"])

    # then the file holds exactly that fan's data in this tenant
    assert body["status"] == "completed"
    assert body["result"] == {
        "events": 2,
        "traits": 1,
        "dedupe_keys": 2,
        "listener_hours": 1,
        "counted_votes": 1,
        "attributions": 1,
    }
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    document = orjson.loads(b"".join(response.streaming_content))
    assert document["user_id"] == SUBJECT
    assert sorted(e["type"] for e in document["events"]) == ["coliseum.vote_cast", "player.track_played"]
    assert {e["user_id"] for e in document["events"]} == {SUBJECT}
    assert all(e["storage"] == "hot" for e in document["events"])
    assert document["traits"]["traits"] == {"plan": "gold"}
    assert document["counted_votes"][0]["round"] == 1
    assert [a["conversion_type"] for a in document["attributions"]] == ["coliseum.vote_cast"]
    assert len(document["listener_hours"]) == 1 and len(document["dedupe_keys"]) == 2
    # and the request row no longer holds the fan id, the audit trail never did
    assert PrivacyRequest.objects.get(pk=body["id"]).subject_encrypted == ""
    actions = AuditEntry.objects.filter(tenant=tenant, action__startswith="privacy.export")
    assert sorted(a.action for a in actions) == ["privacy.export_completed", "privacy.export_requested"]
    assert all(SUBJECT not in str(a.details) for a in actions)


def test_export_link_tampered_is_404_and_expired_is_410(
    tenant: Tenant, owner: User, client_for: Callable[[User], APIClient]
) -> None:
    # given a finished export
    body = _export(client_for(owner), "fan-nobody")
    url: str = body["download_url"]

    # when the link is tampered with
    tampered = _download(url[:-2] + ("AA" if not url.endswith("AA") else "BB"))
    # then 404
    assert tampered.status_code == 404 and tampered.json()["error"]["code"] == "not_found"

    # when the link's expiry passes
    request = PrivacyRequest.objects.get(pk=body["id"])
    request.link_expires_at = timezone.now() - timedelta(seconds=1)
    request.save(update_fields=["link_expires_at"])
    expired_token = export_link_token(privacy_request=request)
    expired = APIClient().get(f"/privacy/exports/{expired_token}")
    # then 410, and the original (now superseded) link answers 404
    assert expired.status_code == 410 and expired.json()["error"]["code"] == "link_expired"
    assert _download(url).status_code == 404


def test_erasure_deletes_earlier_exports_of_the_same_fan(
    tenant: Tenant,
    owner: User,
    client_for: Callable[[User], APIClient],
    private_root: Path,
    run_job: Callable[[str], None],
) -> None:
    # given an export of a fan
    client = client_for(owner)
    ingest(tenant, [play(SUBJECT, "a1", hour_ago(1))])
    processing_run_pending()
    export = _export(client, SUBJECT)
    assert _download(export["download_url"]).status_code == 200
    folder = private_root / "privacy" / "exports" / str(tenant.pk)
    assert [p.name for p in folder.iterdir()] == [f"{export['id']}.json"]

    # when the fan is erased
    receipt = client.post("/api/v1/privacy/erasures", {"user_id": SUBJECT}, format="json").json()["id"]
    run_job(receipt)

    # then the export's file is gone (nothing left in the tenant's export folder) and its link answers 404
    assert client.get(f"/api/v1/privacy/erasures/{receipt}").json()["result"]["export_files"] == 1
    assert list(folder.iterdir()) == []
    assert _download(export["download_url"]).status_code == 404
    assert client.get(f"/api/v1/privacy/exports/{export['id']}").json()["download_url"] is None


def test_privacy_endpoints_are_in_the_openapi_schema(db: Any) -> None:
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    for path in (
        "/api/v1/privacy/exports",
        "/api/v1/privacy/exports/{request_id}",
        "/api/v1/privacy/erasures",
        "/api/v1/privacy/erasures/{request_id}",
        "/privacy/exports/{token}",
    ):
        assert path in schema["paths"], path
