"""Recovery codes stored in clear by django-otp's own `addstatictoken` or its admin inline become digests, the
only form the admin login and the API now look up (coliseum/mfa.py). The API's device (`api-recovery`) held
digests already. The digest is written out here, not imported, so this migration never changes meaning."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from django.db import migrations

API_RECOVERY_DEVICE_NAME = "api-recovery"


def _digest(token: str) -> str:
    code = "".join(token.split()).replace("-", "").lower()
    digest = hashlib.sha256(("coliseum-recovery:" + code).encode()).digest()
    return base64.b32encode(digest).decode()[:16].lower()


def digest_clear_codes(apps: Any, schema_editor: Any) -> None:
    StaticToken = apps.get_model("otp_static", "StaticToken")
    for token in StaticToken.objects.exclude(device__name=API_RECOVERY_DEVICE_NAME).iterator():
        token.token = _digest(token.token)
        token.save(update_fields=["token"])


class Migration(migrations.Migration):
    dependencies = [
        ("privacy", "0001_initial"),
        ("otp_static", "0003_add_timestamps"),
    ]

    operations = [migrations.RunPython(digest_clear_codes, migrations.RunPython.noop)]
