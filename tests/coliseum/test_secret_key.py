"""Security review (issue 16, finding 1): no installation runs on a published signing key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import ROOT

# The subprocesses need no database; the mark keeps the suite's session fixtures (which empty the raw
# tables of the test database) working when this module runs alone.
pytestmark = pytest.mark.django_db

PUBLISHED_KEYS = {
    "dev-only-insecure-secret-key-change-me-0123456789abcdef",
    "change-me-to-a-long-random-string",
}
PRINT_KEY = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"


def _python(settings_module: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update(DJANGO_SETTINGS_MODULE=settings_module, **extra)
    return subprocess.run(
        [sys.executable, "-c", PRINT_KEY], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_without_secret_key_make_run_uses_a_private_key_of_this_installation() -> None:
    first = _python("coliseum.settings.local")
    second = _python("coliseum.settings.local")
    stored = Path(ROOT, ".data", "secret_key")

    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    assert key not in PUBLISHED_KEYS and len(key) >= 50
    assert second.stdout.strip() == key  # stable: sessions, links and encrypted secrets survive a restart
    assert stored.read_text().strip() == key
    assert stored.stat().st_mode & 0o077 == 0  # readable by its owner only


def test_production_refuses_to_start_without_secret_key() -> None:
    result = _python("coliseum.settings.production", ALLOWED_HOSTS="coliseum.example.com")

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
