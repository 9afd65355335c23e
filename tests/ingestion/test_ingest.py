"""event_batch_ingest and processing at the service level."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from coliseum.models import Artist, Tenant
from ingestion.selectors import rollup_totals, show_round_votes
from ingestion.services import event_batch_ingest, processing_run_pending
from tests.ingestion.conftest import HOUR0, make_event

pytestmark = pytest.mark.clock


def _log_count(tenant: Tenant) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ingestion_event WHERE tenant_id = %s", [tenant.pk])
        return int(cursor.fetchone()[0])


def test_plays_are_logged_processed_and_totalled(tenant: Tenant) -> None:
    # given three plays by two fans
    events = [make_event(user="u1"), make_event(user="u1"), make_event(user="u2")]
    # when ingested and processed
    result = event_batch_ingest(tenant=tenant, events=events, source="passport")
    processed = processing_run_pending()
    # then
    artist = Artist.objects.get(tenant=tenant, external_id="a1")
    assert (result.accepted, result.duplicates, result.rejected) == (3, 0, [])
    assert processed == 3
    assert _log_count(tenant) == 3
    end = HOUR0 + timedelta(hours=1)
    assert rollup_totals(tenant_id=tenant.pk, metric="plays", start=HOUR0, end=end) == {artist.pk: 3}
    assert rollup_totals(tenant_id=tenant.pk, metric="listen_seconds", start=HOUR0, end=end) == {
        artist.pk: 300
    }
    assert rollup_totals(tenant_id=tenant.pk, metric="unique_listeners", start=HOUR0, end=end) == {
        artist.pk: 2
    }
    assert (
        rollup_totals(tenant_id=tenant.pk, metric="plays", start=HOUR0 + timedelta(hours=1), end=None) == {}
    )


def test_replayed_event_id_is_counted_once_even_with_another_timestamp(tenant: Tenant) -> None:
    # given an event already ingested
    first = make_event(user="u1")
    event_batch_ingest(tenant=tenant, events=[first], source="passport")
    # when the same id comes back with a different timestamp, and twice inside one batch
    replay = {**first, "occurred_at": (HOUR0 + timedelta(hours=3)).isoformat()}
    result = event_batch_ingest(tenant=tenant, events=[replay, replay], source="passport")
    processing_run_pending()
    # then nothing new is logged or counted
    assert (result.accepted, result.duplicates) == (0, 2)
    assert _log_count(tenant) == 1
    assert sum(rollup_totals(tenant_id=tenant.pk, metric="plays", start=None, end=None).values()) == 1


def test_a_bad_event_does_not_sink_its_batch(tenant: Tenant) -> None:
    good = make_event()
    bad = make_event("player.track_played", track_id="t1", artist_id="a1", duration_seconds=-5)
    unknown = make_event("player.unknown_thing", foo=1)
    custom = make_event("custom.lights_on", anything={"goes": True})
    result = event_batch_ingest(tenant=tenant, events=[good, bad, unknown, custom, "nope"], source="passport")  # type: ignore[list-item]
    assert result.accepted == 2
    assert [r["index"] for r in result.rejected] == [1, 2, 4]
    assert result.rejected[0]["event_id"] == bad["event_id"]
    assert "duration_seconds" in result.rejected[0]["errors"][0]


def test_the_earliest_vote_per_show_round_counts_even_when_it_arrives_late(tenant: Tenant) -> None:
    # given a fan's vote for a1 at 10:30, then (arriving later) an earlier vote for a2 at 10:10
    vote = "coliseum.vote_cast"
    later = make_event(
        vote, user="u1", at=HOUR0 + timedelta(minutes=30), artist_id="a1", show_id="s1", round=1
    )
    event_batch_ingest(tenant=tenant, events=[later], source="passport")
    processing_run_pending()
    earlier = make_event(
        vote, user="u1", at=HOUR0 + timedelta(minutes=10), artist_id="a2", show_id="s1", round=1, weight=3
    )
    other_round = make_event(vote, user="u1", at=HOUR0, artist_id="a1", show_id="s1", round=2)
    event_batch_ingest(tenant=tenant, events=[earlier, other_round], source="passport")
    processing_run_pending()
    # then a2 holds the round-1 vote (weight 3), a1 only its round-2 vote
    a1 = Artist.objects.get(tenant=tenant, external_id="a1").pk
    a2 = Artist.objects.get(tenant=tenant, external_id="a2").pk
    show = tenant.shows.get(external_id="s1").pk
    assert show_round_votes(tenant_id=tenant.pk, show_id=show) == {1: {a2: 3}, 2: {a1: 1}}
    assert rollup_totals(tenant_id=tenant.pk, metric="votes", start=None, end=None) == {a2: 3, a1: 1}
    assert _log_count(tenant) == 3


def test_attendance_without_artist_credits_the_lineup(tenant: Tenant) -> None:
    from tests.factories import ArtistFactory, ShowFactory

    show = ShowFactory.create(tenant=tenant, external_id="s9")
    lineup = [ArtistFactory.create(tenant=tenant), ArtistFactory.create(tenant=tenant)]
    show.lineup.set(lineup)
    event_batch_ingest(
        tenant=tenant,
        events=[make_event("concierto.event_attended", show_id="s9", city="Porto")],
        source="passport",
    )
    processing_run_pending()
    totals = rollup_totals(tenant_id=tenant.pk, metric="attendance", start=None, end=None, city="Porto")
    assert totals == {lineup[0].pk: 1, lineup[1].pk: 1}


def test_money_is_per_currency(tenant: Tenant) -> None:
    spend = "treasury.money_spent"
    events = [
        make_event(spend, amount_minor=500, currency="EUR", reason="tip", artist_id="a1"),
        make_event(spend, amount_minor=700, currency="USD", reason="tip", artist_id="a1"),
    ]
    event_batch_ingest(tenant=tenant, events=events, source="passport")
    processing_run_pending()
    a1 = Artist.objects.get(tenant=tenant, external_id="a1").pk
    assert rollup_totals(tenant_id=tenant.pk, metric="money_spent", start=None, end=None, currency="EUR") == {
        a1: 500
    }
    assert rollup_totals(tenant_id=tenant.pk, metric="money_spent", start=None, end=None) == {a1: 700}


def test_the_log_refuses_updates(tenant: Tenant) -> None:
    import pytest
    from django.db import transaction

    event_batch_ingest(tenant=tenant, events=[make_event()], source="passport")
    with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE ingestion_event SET user_id = 'x' WHERE tenant_id = %s", [tenant.pk])
    assert _log_count(tenant) == 1
