import logging

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"

    def ready(self) -> None:
        # WeasyPrint logs every layout step at INFO ("Creating layout - Page 7"): noise in worker logs.
        logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)
