"""Privacy jobs with the settings as they ship, each one unit: it completes and says what it removed, or it
changes nothing and says why; a failed request is retried from the admin (issue 15)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import User
from django.db import OperationalError, connection
from django.test import Client
from rest_framework.test import APIClient

from audit.models import AuditEntry
from coliseum.models import Artist, Tenant
from coliseum.privacy import tasks
from coliseum.privacy.models import PrivacyRequest
from coliseum.privacy.services import privacy_request_retry
from ingestion.models import Person
from ingestion.services import processing_run_pending
from leaderboards.selectors import board_page
from leaderboards.services import redis
from tests.factories import UserFactory
from tests.ingestion.recount import recount

from .conftest import attend, db_rows_mentioning, hour_ago, ingest, play, vote

SUBJECT = "fan-unit-7q2w"
KPI_METRICS = ("plays", "listen_seconds", "unique_listeners", "votes", "attendance")
BOARDS = [(m, w) for m in ("plays", "listen_seconds", "votes", "attendance") for w in ("24h", "all")]


@pytest.fixture(autouse=True)
def _boards_read_fresh(settings: Any) -> None:
    settings.LEADERBOARD_CACHE_SECONDS = 0  # board reads are cached briefly; these tests compare them at once


def _seed(tenant: Tenant) -> None:
    """The subject and two other fans, over the last hours: plays, votes (the subject's first vote counts),
    attendance, and a conversion attributed to a play (touches)."""
    h1, h2 = hour_ago(3), hour_ago(2)
    ingest(
        tenant,
        [
            play(SUBJECT, "a1", h1 + timedelta(minutes=1)),
            play(SUBJECT, "a2", h1 + timedelta(minutes=2), seconds=40),
            play("fan-2", "a2", h1 + timedelta(minutes=3)),
            play("fan-3", "a1", h2 + timedelta(minutes=1), seconds=30),
            vote(SUBJECT, "a1", h2 + timedelta(minutes=2), weight=3),
            vote("fan-2", "a2", h2 + timedelta(minutes=3)),
            vote("fan-3", "a1", h2 + timedelta(minutes=4), weight=2),
            attend(SUBJECT, "a1", h2 + timedelta(minutes=5)),
            attend("fan-2", "a1", h2 + timedelta(minutes=6)),
        ],
    )
    Person.objects.create(tenant=tenant, user_id=SUBJECT, traits={"email": f"{SUBJECT}@example.test"})
    processing_run_pending()


def _window() -> tuple[datetime, datetime]:
    return hour_ago(6), hour_ago(-1)


def _kpis(client: APIClient, tenant: Tenant, artist: str) -> dict[str, int]:
    start, end = _window()
    response = client.get(
        "/api/v1/kpis",
        {
            "artist_id": artist,
            "period": "hourly",
            "from": start.isoformat(),
            "to": end.isoformat(),
            "metrics": ",".join(KPI_METRICS),
        },
        HTTP_X_TENANT=tenant.slug,
    )
    assert response.status_code == 200, response.content
    return response.json()["totals"]  # type: ignore[no-any-return]


def _board(tenant: Tenant, metric: str, window: str) -> dict[int, int]:
    return {
        e["artist_id"]: e["score"] for e in board_page(tenant=tenant, metric=metric, window=window)["entries"]
    }


def _numbers(tenant: Tenant, client: APIClient) -> dict[str, Any]:
    """What users see and what the job may change: the log, rollups behind KPIs, boards, derived rows."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT user_id, count(*) FROM ingestion_event WHERE tenant_id = %s GROUP BY 1", [tenant.pk]
        )
        events = dict(cursor.fetchall())
        cursor.execute(
            "SELECT metric, bucket, artist_id, value FROM ingestion_rollup_hourly WHERE tenant_id = %s "
            "ORDER BY 1, 2, 3",
            [tenant.pk],
        )
        rollups = cursor.fetchall()
        cursor.execute(
            "SELECT user_id, count(*) FROM funnels_touch WHERE tenant_id = %s GROUP BY 1", [tenant.pk]
        )
        touches = dict(cursor.fetchall())
        cursor.execute(
            "SELECT user_id, count(*) FROM ingestion_listener_hourly WHERE tenant_id = %s GROUP BY 1",
            [tenant.pk],
        )
        listeners = dict(cursor.fetchall())
    return {
        "events": events,
        "rollups": rollups,
        "touches": touches,
        "listeners": listeners,
        "people": sorted(Person.objects.filter(tenant=tenant).values_list("user_id", flat=True)),
        "kpis": {a: _kpis(client, tenant, a) for a in ("a1", "a2")},
        "boards": {f"{m}/{w}": _board(tenant, m, w) for m, w in BOARDS},
    }


def _export_done(client: APIClient, run_job: Callable[[str], None]) -> dict[str, Any]:
    receipt = client.post("/api/v1/privacy/exports", {"user_id": SUBJECT}, format="json").json()["id"]
    run_job(receipt)
    return client.get(f"/api/v1/privacy/exports/{receipt}").json()  # type: ignore[no-any-return]


def _download(url: str) -> bytes:
    response: Any = APIClient().get(url.removeprefix("https://coliseum.test"))
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def _fail_attribution_erasure_after_deleting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The failure seam: the attribution step, deep inside the erasure (after the fan's events, keys,
    traits, listener rows and votes are deleted), deletes its rows and then the database gives up."""
    from ingestion.funnels import services as funnels

    real = funnels.attributions_erase_user

    def erase_then_fail(*, tenant_id: int, user_id: str) -> int:
        real(tenant_id=tenant_id, user_id=user_id)
        raise OperationalError('could not extend file "base/16384/2619": No space left on device')

    monkeypatch.setattr(funnels, "attributions_erase_user", erase_then_fail)


def _fail_completion_after_erasing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The failure seam after the whole ingestion erasure returned: recording the completion fails."""
    from coliseum.privacy import services

    real = services.audit_record

    def record(**kwargs: Any) -> Any:
        if kwargs["action"] == "privacy.erasure_completed":
            raise OperationalError('could not extend file "base/16384/2619": No space left on device')
        return real(**kwargs)

    monkeypatch.setattr(services, "audit_record", record)


def _operator() -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def unwritable_exports(tenant: Tenant, private_root: Path) -> Iterator[Path]:
    """A file where the tenant's export folder should be: the storage cannot take the tenant's exports
    (a full or read-only volume looks the same to the job). Removed afterwards."""
    folder = private_root / "privacy" / "exports" / str(tenant.pk)
    if folder.is_dir():  # left by an earlier run whose database numbered its tenants the same way
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("not a folder")
    yield folder
    if folder.is_file():
        folder.unlink()


def test_shipped_path_settings_are_pathlib_paths_and_jobs_complete_with_them(
    tenant: Tenant,
    owner: User,
    client_for: Callable[[User], APIClient],
    settings: Any,
    run_job: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import coliseum.settings.base as base
    import coliseum.settings.test as test_settings

    # given the settings as the modules build them (nothing in this test replaces them)
    for value in (
        base.STATIC_ROOT,
        base.MEDIA_ROOT,
        base.PRIVATE_STORAGE_ROOT,
        test_settings.PRIVATE_STORAGE_ROOT,
    ):
        assert isinstance(value, Path) and value.is_absolute(), repr(value)
    assert settings.PRIVATE_STORAGE_ROOT is test_settings.PRIVATE_STORAGE_ROOT
    monkeypatch.setenv("PRIVATE_STORAGE_ROOT", "relative/private")
    assert base.env_path("PRIVATE_STORAGE_ROOT", default="/unused") == Path.cwd() / "relative" / "private"

    # when a fan is exported, then erased
    client = client_for(owner)
    ingest(tenant, [play(SUBJECT, "a1", hour_ago(1)), play("fan-2", "a1", hour_ago(1))])
    processing_run_pending()
    export = _export_done(client, run_job)
    file = settings.PRIVATE_STORAGE_ROOT / "privacy" / "exports" / str(tenant.pk) / f"{export['id']}.json"
    assert export["status"] == "completed" and file.is_file()
    assert orjson.loads(_download(export["download_url"]))["user_id"] == SUBJECT
    receipt = client.post("/api/v1/privacy/erasures", {"user_id": SUBJECT}, format="json").json()["id"]
    run_job(receipt)

    # then both completed, the erasure says what it removed, and the export's file is gone
    erasure = client.get(f"/api/v1/privacy/erasures/{receipt}").json()
    assert erasure["status"] == "completed" and erasure["reason"] is None
    assert erasure["result"]["events"] == 1 and erasure["result"]["rollup_plays"] == 1
    assert erasure["result"]["export_files"] == 1 and not file.exists()


def test_export_that_cannot_write_its_file_fails_saying_why_and_a_retry_completes(
    tenant: Tenant,
    owner: User,
    client_for: Callable[[User], APIClient],
    unwritable_exports: Path,
    run_job: Callable[[str], None],
) -> None:
    # given a fan's events and a storage that cannot take the tenant's exports
    client = client_for(owner)
    ingest(tenant, [play(SUBJECT, "a1", hour_ago(1))])
    processing_run_pending()

    # when the export runs
    body = _export_done(client, run_job)

    # then it failed, saying why, with no link and no file
    assert body["status"] == "failed" and body["download_url"] is None and body["result"] == {}
    assert body["reason"].startswith("No export file was written: the private storage could not be written")
    assert SUBJECT not in body["reason"]
    failed = AuditEntry.objects.get(action="privacy.export_failed")
    assert failed.details["reason"] == body["reason"] and failed.tenant_id == tenant.pk

    # when the cause is removed and the request retried
    unwritable_exports.unlink()
    privacy_request_retry(privacy_request=PrivacyRequest.objects.get(pk=body["id"]), actor=owner)
    run_job(body["id"])

    # then the export completes and its link serves the whole file
    done = client.get(f"/api/v1/privacy/exports/{body['id']}").json()
    assert done["status"] == "completed" and done["reason"] is None
    document = orjson.loads(_download(done["download_url"]))
    assert [e["user_id"] for e in document["events"]] == [SUBJECT]
    assert [p.name for p in unwritable_exports.iterdir()] == [f"{body['id']}.json"]  # no partial file


@pytest.mark.parametrize(
    "fail",
    [_fail_attribution_erasure_after_deleting, _fail_completion_after_erasing],
    ids=["inside-the-ingestion-erasure", "after-the-ingestion-erasure"],
)
def test_erasure_failing_midway_changes_nothing_and_says_why(
    tenant: Tenant,
    owner: User,
    client_for: Callable[[User], APIClient],
    run_job: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
    fail: Callable[[pytest.MonkeyPatch], None],
) -> None:
    # given the fan's events, rollups, KPIs, boards that were read, and an earlier export of the fan
    client = client_for(owner)
    _seed(tenant)
    export = _export_done(client, run_job)
    exported = _download(export["download_url"])
    before = _numbers(tenant, client)
    assert before["events"][SUBJECT] == 4 and before["touches"][SUBJECT] > 0

    # when the erasure fails after its deletions began
    fail(monkeypatch)
    receipt = client.post("/api/v1/privacy/erasures", {"user_id": SUBJECT}, format="json").json()["id"]
    run_job(receipt)

    # then the request failed, saying why (never naming the fan), with nothing reported removed
    body = client.get(f"/api/v1/privacy/erasures/{receipt}").json()
    assert body["status"] == "failed" and body["result"] == {}
    assert body["reason"] == (
        "Nothing was erased: the database refused the change (OperationalError: could not extend file "
        '"base/16384/2619": No space left on device). Retry once the database is healthy.'
    )
    assert PrivacyRequest.objects.get(pk=receipt).error == body["reason"]
    entry = AuditEntry.objects.get(action="privacy.erasure_failed")
    assert SUBJECT not in str(entry.details) and entry.details["reason"] == body["reason"]
    assert not AuditEntry.objects.filter(action="privacy.erasure_completed").exists()
    # and events, rollups, KPIs, boards, touches, traits are exactly as before
    assert _numbers(tenant, client) == before
    # and the earlier export is still there, whole, behind the same link
    assert _download(export["download_url"]) == exported


def test_retry_after_the_cause_is_removed_completes_and_numbers_equal_a_recount_without_the_fan(
    tenant: Tenant,
    owner: User,
    client_for: Callable[[User], APIClient],
    run_job: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given an erasure that failed midway, after boards and KPIs were read
    client = client_for(owner)
    _seed(tenant)
    export = _export_done(client, run_job)
    _numbers(tenant, client)
    _fail_attribution_erasure_after_deleting(monkeypatch)
    receipt = client.post("/api/v1/privacy/erasures", {"user_id": SUBJECT}, format="json").json()["id"]
    run_job(receipt)
    assert PrivacyRequest.objects.get(pk=receipt).status == "failed"

    # when the cause is removed and the request retried
    monkeypatch.undo()
    privacy_request_retry(privacy_request=PrivacyRequest.objects.get(pk=receipt), actor=owner)
    run_job(receipt)

    # then it completed and says what it removed
    body = client.get(f"/api/v1/privacy/erasures/{receipt}").json()
    assert body["status"] == "completed" and body["reason"] is None
    result = body["result"]
    assert (result["events"], result["traits"], result["counted_votes"]) == (4, 1, 1)
    assert result["export_files"] == 1
    assert result["touches"] >= 1 and result["attributions"] >= 1
    assert (result["rollup_plays"], result["rollup_listen_seconds"]) == (2, 140)
    assert (result["rollup_votes"], result["rollup_attendance"]) == (3, 1)
    assert PrivacyRequest.objects.get(pk=receipt).boards_corrected_at is not None
    # and KPIs and boards equal a recount of the remaining events
    start, end = _window()
    expected = recount(tenant_id=tenant.pk, start=start, end=end)
    numbers = _numbers(tenant, client)
    for external in ("a1", "a2"):
        artist = Artist.objects.get(tenant=tenant, external_id=external).pk
        assert numbers["kpis"][external] == {m: expected.get(m, {}).get(artist, 0) for m in KPI_METRICS}
    everything = recount(tenant_id=tenant.pk)
    for metric, window in BOARDS:
        assert numbers["boards"][f"{metric}/{window}"] == everything.get(metric, {}), (metric, window)
    assert SUBJECT not in numbers["events"] and SUBJECT not in numbers["touches"]
    assert db_rows_mentioning(SUBJECT) == {}
    assert client.get(f"/api/v1/privacy/exports/{export['id']}").json()["download_url"] is None
    # and the retry is on the audit trail with the reason it had
    retried = AuditEntry.objects.get(action="privacy.request_retried")
    assert retried.details["previous_reason"].startswith("Nothing was erased: the database refused")


def test_boards_not_corrected_after_the_commit_are_corrected_by_the_sweep(
    tenant: Tenant,
    owner: User,
    client_for: Callable[[User], APIClient],
    run_job: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given boards that were read, and Redis failing right after an erasure commits
    from redis.exceptions import ConnectionError as RedisConnectionError

    import leaderboards.services

    client = client_for(owner)
    _seed(tenant)
    _numbers(tenant, client)

    def unreachable(*, tenant_id: int) -> int:
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(leaderboards.services, "boards_reset_tenant", unreachable)
    receipt = client.post("/api/v1/privacy/erasures", {"user_id": SUBJECT}, format="json").json()["id"]
    run_job(receipt)
    # (the erasure committed: it is complete; its boards are not corrected yet)
    assert client.get(f"/api/v1/privacy/erasures/{receipt}").json()["status"] == "completed"
    assert PrivacyRequest.objects.get(pk=receipt).boards_corrected_at is None

    # when Redis is back and the sweep runs
    monkeypatch.undo()
    tasks.privacy_requests_sweep()

    # then the boards equal a recount without the fan
    assert PrivacyRequest.objects.get(pk=receipt).boards_corrected_at is not None
    everything = recount(tenant_id=tenant.pk)
    for metric, window in BOARDS:
        assert _board(tenant, metric, window) == everything.get(metric, {}), (metric, window)


def test_admin_shows_the_reason_and_its_retry_action_queues_the_request_again(
    tenant: Tenant,
    owner: User,
    client_for: Callable[[User], APIClient],
    unwritable_exports: Path,
    run_job: Callable[[str], None],
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given an export that failed because the storage could not take it
    failed = _export_done(client_for(owner), run_job)
    assert failed["status"] == "failed"
    operator = _operator()

    # when an operator looks at the privacy requests
    listing = operator.get("/admin/privacy/privacyrequest/").content.decode()
    detail = operator.get(f"/admin/privacy/privacyrequest/{failed['id']}/change/").content.decode()

    # then the list and the page show the status and the reason, and the list offers Retry
    for page in (listing, detail):
        assert "failed" in page.lower()
        assert "No export file was written: the private storage could not be written" in page
    assert "Retry the selected failed requests" in listing
    assert f'action="/admin/privacy/privacyrequest/{failed["id"]}/retry/"' in detail

    # when the cause is removed and the operator runs Retry on it
    unwritable_exports.unlink()
    with django_capture_on_commit_callbacks(execute=True):
        response = operator.post(
            "/admin/privacy/privacyrequest/",
            {"action": "retry", "_selected_action": [failed["id"]]},
            follow=True,
        )

    # then it is pending again with the reason cleared, its job is on the broker, and the retry is audited
    assert response.status_code == 200 and "1 request(s) queued to run again." in response.content.decode()
    request = PrivacyRequest.objects.get(pk=failed["id"])
    assert (request.status, request.error) == ("pending", "")
    assert redis().llen("celery") == 1
    entry = AuditEntry.objects.get(action="privacy.request_retried")
    assert entry.actor_type == "user" and entry.tenant_id == tenant.pk
    assert entry.details["previous_reason"] == failed["reason"]
    # and a worker running the job completes it
    run_job(failed["id"])
    assert PrivacyRequest.objects.get(pk=failed["id"]).status == "completed"

    # and Retry on a request that did not fail is refused, saying so, and not audited again
    refused = operator.post(
        "/admin/privacy/privacyrequest/",
        {"action": "retry", "_selected_action": [failed["id"]]},
        follow=True,
    )
    assert "only a failed request can be retried" in refused.content.decode()
    assert AuditEntry.objects.filter(action="privacy.request_retried").count() == 1


def test_the_retry_button_on_a_failed_request_page_queues_it_again(
    tenant: Tenant,
    owner: User,
    client_for: Callable[[User], APIClient],
    unwritable_exports: Path,
    run_job: Callable[[str], None],
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given a failed export, and its cause removed
    failed = _export_done(client_for(owner), run_job)
    unwritable_exports.unlink()
    page = f"/admin/privacy/privacyrequest/{failed['id']}/change/"

    # when the operator presses Retry on its page
    with django_capture_on_commit_callbacks(execute=True):
        response = _operator().post(f"/admin/privacy/privacyrequest/{failed['id']}/retry/", follow=True)

    # then they are back on the page, which says it was queued and no longer offers Retry
    assert response.redirect_chain[-1][0] == page
    body = response.content.decode()
    assert "1 request(s) queued to run again." in body and "/retry/" not in body
    assert PrivacyRequest.objects.get(pk=failed["id"]).status == "pending"
    assert AuditEntry.objects.filter(action="privacy.request_retried").count() == 1
    assert redis().llen("celery") == 1


def test_a_request_still_running_or_done_cannot_be_retried(tenant: Tenant, owner: User) -> None:
    from coliseum.errors import ApplicationError
    from coliseum.privacy.services import privacy_export_request

    request = privacy_export_request(tenant=tenant, user_id=SUBJECT, actor=owner)
    for status in ("pending", "running", "completed"):
        PrivacyRequest.objects.filter(pk=request.pk).update(status=status)
        with pytest.raises(ApplicationError) as refused:
            privacy_request_retry(privacy_request=request, actor=owner)
        assert refused.value.status_code == 409
    assert not AuditEntry.objects.filter(action="privacy.request_retried").exists()
