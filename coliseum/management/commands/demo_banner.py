"""What `make run` prints before the servers start: where everything is and how to sign in."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from coliseum.demo import demo_credentials


class Command(BaseCommand):
    help = "Print the local URLs and the demo credentials (demo only)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=8000, help="HTTP port (WebSockets on port + 100).")
        parser.add_argument("--host", default="localhost")

    def handle(self, *args: Any, **options: Any) -> None:
        port, host = options["port"], options["host"]
        base, ws = f"http://{host}:{port}", f"ws://{host}:{port + 100}"
        creds = demo_credentials()
        rows = [
            ("Landing page", f"{base}/"),
            ("Admin", f"{base}/admin/"),
            ("API docs", f"{base}/api/docs/"),
            ("OpenAPI schema", f"{base}/api/schema/"),
            ("Readiness", f"{base}/readyz"),
            ("WebSockets", f"{ws}/ws/leaderboards/"),
            ("Jumbotron", f"{base}/jumbotron/?tenant={creds.tenant_slug}  (sign in: /jumbotron/sign-in)"),
        ]
        bar = "=" * 78
        out = [bar, "  Coliseum is starting (Ctrl-C stops everything)", bar]
        out += [f"  {label:<16}{url}" for label, url in rows]
        out.append("")
        if creds.password:
            out += [
                "  Demo credentials (DEMO_PASSWORD; for local demos only):",
                f"  {'Operator':<16}{creds.operator_username} / {creds.password}  (superuser, /admin/)",
                f"  {'Tenant owner':<16}{creds.owner_username} / {creds.password}  "
                f"(tenant '{creds.tenant_slug}', Enterprise)",
                f"  {'Write key':<16}{creds.write_key}",
                f"  {'Webhook key id':<16}{creds.webhook_key_id}",
                f"  {'Webhook secret':<16}{creds.webhook_secret}",
            ]
        else:
            out.append(
                "  DEMO_PASSWORD is empty: no demo accounts. Create a tenant: manage.py create_tenant SLUG"
            )
        out.append(bar)
        self.stdout.write("\n".join(out))
