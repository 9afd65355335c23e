"""`python manage.py addstatictoken USERNAME [--count N]`: recovery codes for an operator's first admin login.

Replaces django-otp's command of the same name (this app comes first in INSTALLED_APPS), which stored the
code in clear and took one on the command line: the codes are generated here, printed once, and stored only
as digests (coliseum/mfa.py), on the user's static device ADMIN_RECOVERY_DEVICE_NAME (created if needed)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice

from audit.services import audit_record
from coliseum.mfa import recovery_codes_add

ADMIN_RECOVERY_DEVICE_NAME = "admin-recovery"


class Command(BaseCommand):
    help = "Print new one-time recovery codes for a user's admin sign-in (stored as digests only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--count", type=int, default=1, help="how many codes (1-20, default 1)")
        parser.add_argument("-t", "--token", help="refused: codes are generated, never chosen")

    def handle(self, *args: Any, **options: Any) -> None:
        if options.get("token"):
            raise CommandError(
                "Choosing a code is not supported: it would sit in the shell's history. Codes are generated."
            )
        count = int(options["count"])
        if not 1 <= count <= 20:
            raise CommandError("--count must be between 1 and 20.")
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f'User "{options["username"]}" does not exist.')
        with transaction.atomic():
            device, _ = StaticDevice.objects.get_or_create(
                user=user, name=ADMIN_RECOVERY_DEVICE_NAME, defaults={"confirmed": True}
            )
            codes = recovery_codes_add(device, count)
            audit_record(
                action="auth.recovery_codes_issued", actor="system", target=user, details={"count": count}
            )
        for code in codes:
            self.stdout.write(code)
