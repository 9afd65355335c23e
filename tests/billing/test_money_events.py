"""Ticket and tip payments reach the KPIs as treasury.money_spent, through the real ingestion path."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing.services import MONEY_EVENT_NAMESPACE
from coliseum.models import Artist, Tenant
from ingestion.selectors import rollup_totals
from ingestion.services import processing_run_pending
from tests.factories import MembershipFactory, TenantFactory

from .conftest import Deliver
from .fakestripe import FakeStripe, fixture

pytestmark = pytest.mark.django_db


def _ticket_session(tenant: Tenant, fake: FakeStripe, **overrides: Any) -> dict[str, Any]:
    session = fixture("checkout_session_ticket")
    session["metadata"]["coliseum_tenant_id"] = str(tenant.pk)
    session.update(overrides)
    return fake.put(session)


def _money_spent(tenant: Tenant, currency: str = "EUR") -> dict[str, int]:
    totals = rollup_totals(tenant_id=tenant.pk, metric="money_spent", start=None, end=None, currency=currency)
    names = dict(Artist.objects.filter(tenant=tenant).values_list("pk", "external_id"))
    return {names[pk]: value for pk, value in totals.items()}


def test_a_paid_ticket_checkout_reaches_the_kpis_once_even_when_redelivered(
    deliver: Deliver, fake_stripe: FakeStripe
) -> None:
    # given a fan's paid ticket checkout for a tenant's show
    tenant = TenantFactory.create()
    session = _ticket_session(tenant, fake_stripe)
    now = int(timezone.now().timestamp())
    # when Stripe delivers checkout.session.completed, twice (a retry)
    assert (
        deliver("checkout.session.completed", session, event_id="evt_TTicket001", created=now).status_code
        == 200
    )
    assert (
        deliver("checkout.session.completed", session, event_id="evt_TTicket001", created=now).status_code
        == 200
    )
    processing_run_pending()
    # then the artist's money_spent is the ticket price, counted once, in its currency
    assert _money_spent(tenant) == {"artist-ext-1": 2500}
    assert _money_spent(tenant, "USD") == {}
    # and the KPI API shows it
    client = APIClient()
    client.force_authenticate(MembershipFactory.create(tenant=tenant).user)
    kpis = client.get(
        "/api/v1/kpis", {"metrics": "money_spent", "currency": "EUR", "artist_id": "artist-ext-1"}
    )
    assert kpis.status_code == 200
    assert kpis.json()["totals"]["money_spent"] == 2500


def test_the_same_payment_reported_under_a_new_stripe_event_id_is_deduplicated_by_ingestion(
    deliver: Deliver, fake_stripe: FakeStripe
) -> None:
    # dj-stripe drops a repeated Stripe event id; ingestion drops a repeated Passport event id (uuid5 of it).
    from ingestion.services import event_batch_ingest

    tenant = TenantFactory.create()
    session = _ticket_session(tenant, fake_stripe)
    now = int(timezone.now().timestamp())
    deliver("checkout.session.completed", session, event_id="evt_TTicket002", created=now)
    replay = {
        "event_id": str(uuid.uuid5(MONEY_EVENT_NAMESPACE, "evt_TTicket002")),
        "type": "treasury.money_spent",
        "occurred_at": timezone.now().isoformat(),
        "user_id": "fan-42",
        "properties": {
            "amount_minor": 2500,
            "currency": "EUR",
            "reason": "ticket",
            "artist_id": "artist-ext-1",
        },
    }
    result = event_batch_ingest(tenant=tenant, events=[replay], source="stripe")
    assert result.duplicates == 1 and result.accepted == 0
    processing_run_pending()
    assert _money_spent(tenant) == {"artist-ext-1": 2500}


def test_an_unpaid_or_untagged_checkout_is_not_revenue(deliver: Deliver, fake_stripe: FakeStripe) -> None:
    tenant = TenantFactory.create()
    now = int(timezone.now().timestamp())
    unpaid = _ticket_session(tenant, fake_stripe, id="cs_test_TUnpaid0001", payment_status="unpaid")
    deliver("checkout.session.completed", unpaid, created=now)
    untagged = _ticket_session(tenant, fake_stripe, id="cs_test_TUntagged01", metadata={})
    deliver("checkout.session.completed", untagged, created=now)
    processing_run_pending()
    assert _money_spent(tenant) == {}


def test_a_paid_tip_invoice_reaches_the_kpis(deliver: Deliver, fake_stripe: FakeStripe) -> None:
    # given a paid one-off invoice carrying tip metadata
    tenant = TenantFactory.create()
    fan = fake_stripe.load("customer", id="cus_TFan0000001", metadata={})
    invoice = fixture("invoice")
    invoice.update(
        id="in_TTip000000001",
        customer=fan["id"],
        parent=None,
        amount_paid=700,
        currency="usd",
        metadata={
            "coliseum_tenant_id": str(tenant.pk),
            "user_id": "fan-7",
            "artist_id": "artist-ext-9",
            "reason": "tip",
        },
    )
    fake_stripe.put(invoice)
    # when Stripe reports it paid
    assert deliver("invoice.paid", invoice, created=int(timezone.now().timestamp())).status_code == 200
    processing_run_pending()
    # then the artist's money_spent in USD shows the tip
    assert _money_spent(tenant, "USD") == {"artist-ext-9": 700}


def test_a_money_event_for_an_unknown_tenant_is_ignored(deliver: Deliver, fake_stripe: FakeStripe) -> None:
    tenant = TenantFactory.create()
    session = _ticket_session(tenant, fake_stripe)
    session["metadata"]["coliseum_tenant_id"] = "987654321"
    fake_stripe.put(session)
    assert (
        deliver("checkout.session.completed", session, created=int(timezone.now().timestamp())).status_code
        == 200
    )
    processing_run_pending()
    assert _money_spent(tenant) == {}
