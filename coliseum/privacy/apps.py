from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "coliseum.privacy"
    label = "privacy"
    verbose_name = "Data lifecycle and privacy"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib import admin

        from .mfa import admin_site_require_mfa

        # TOTP for staff in the admin (enforced when ADMIN_MFA_REQUIRED) and the login throttle.
        admin_site_require_mfa(admin.site)
