"""The OpenAPI schema at /api/schema/ is complete and clean: every endpoint, no naming collisions."""

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_the_openapi_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    text = target.read_text()
    for path in ("/webhooks/passport/events:", "/v1/import:", "/api/v1/leaderboards:", "/api/v1/reports:"):
        assert path in text
