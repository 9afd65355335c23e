"""Create a tenant with an owner, a write key and a webhook key: everything a new customer needs."""

from __future__ import annotations

import json
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_slug
from django.db import transaction

from billing.services import tenant_plan_assign
from coliseum.errors import ApplicationError
from coliseum.models import ApiKeyKind, Plan, Tenant
from coliseum.services import api_key_create, tenant_create


class Command(BaseCommand):
    help = (
        "Create a tenant, an owner user with a generated password, a write key and a webhook key. "
        "--json prints one JSON object: tenant, username, password, write_key, webhook_key_id, "
        "webhook_secret."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument(
            "--plan",
            choices=Plan.values,
            default=None,
            help="Operator-assigned plan (wins over Stripe while set). Omit to start on Basic and let Stripe "
            "subscriptions decide.",
        )
        parser.add_argument("--name", default="", help="Display name (default: from the slug).")
        parser.add_argument("--username", default="", help="Owner username (default: <slug>-owner).")
        parser.add_argument("--currency", default="USD", help="Reporting currency (ISO 4217).")
        parser.add_argument("--timezone", default="UTC", help="IANA time zone.")
        parser.add_argument("--json", action="store_true", help="Print only one JSON object on stdout.")

    def handle(self, *args: Any, **options: Any) -> None:
        slug: str = options["slug"]
        try:
            validate_slug(slug)
        except ValidationError as exc:
            raise CommandError(
                f"{slug!r} is not a valid slug (letters, digits, hyphens, underscores)."
            ) from exc
        if Tenant.objects.filter(slug=slug).exists():
            raise CommandError(f"Tenant {slug!r} already exists.")
        username = options["username"] or f"{slug}-owner"
        user_model = get_user_model()
        if user_model.objects.filter(username=username).exists():
            raise CommandError(f"User {username!r} already exists; pass --username.")
        password = secrets.token_urlsafe(18)
        name = options["name"] or slug.replace("-", " ").replace("_", " ").title()
        try:
            with transaction.atomic():
                owner = user_model.objects.create_user(username=username, password=password)
                tenant = tenant_create(
                    slug=slug,
                    name=name,
                    owner=owner,
                    reporting_currency=options["currency"].upper(),
                    timezone=options["timezone"],
                    actor="system",
                )
                if options["plan"]:
                    tenant_plan_assign(tenant=tenant, plan=options["plan"], actor="system")
                write = api_key_create(tenant=tenant, kind=ApiKeyKind.WRITE, name="default", actor="system")
                webhook = api_key_create(
                    tenant=tenant, kind=ApiKeyKind.WEBHOOK, name="default", actor="system"
                )
        except (ApplicationError, ValidationError) as exc:
            raise CommandError(str(getattr(exc, "message", exc))) from exc
        result = {
            "tenant": tenant.slug,
            "username": username,
            "password": password,
            "write_key": write.secret,
            "webhook_key_id": webhook.key.key_id,
            "webhook_secret": webhook.secret,
        }
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        tenant.refresh_from_db(fields=["plan"])
        self.stdout.write(self.style.SUCCESS(f"Created tenant {tenant.slug!r} on the {tenant.plan} plan."))
        self.stdout.write("These secrets are shown once; store them now:")
        for key, value in result.items():
            self.stdout.write(f"  {key:<15} {value}")
