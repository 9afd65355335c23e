from typing import Any

from django.apps import AppConfig
from django.core import checks


class AuditConfig(AppConfig):
    name = "audit"

    def ready(self) -> None:
        from django.contrib import admin

        from .admin import admin_site_audit_all

        # Runs after django.contrib.admin's autodiscover (audit comes later in INSTALLED_APPS).
        admin_site_audit_all(admin.site)
        checks.register(_check_admins_audited, checks.Tags.admin)


def _check_admins_audited(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from django.contrib import admin

    from .admin import AuditedAdminMixin

    return [
        checks.Warning(
            f"{model._meta.label}'s ModelAdmin does not derive from audit.admin.AuditedModelAdmin.",
            hint="Admin changes to it are not audited; derive it from AuditedModelAdmin.",
            id="audit.W001",
        )
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, AuditedAdminMixin)
    ]
