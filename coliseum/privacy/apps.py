from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "coliseum.privacy"
    label = "privacy"
    verbose_name = "Data lifecycle and privacy"
    default_auto_field = "django.db.models.BigAutoField"
