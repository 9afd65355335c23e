from django.apps import AppConfig


class FunnelsConfig(AppConfig):
    name = "ingestion.funnels"
    label = "funnels"
    verbose_name = "Funnels and conversion attribution"
    default_auto_field = "django.db.models.BigAutoField"
