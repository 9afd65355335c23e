from django.apps import AppConfig


class IngestionConfig(AppConfig):
    name = "ingestion"

    def ready(self) -> None:
        from corsheaders.signals import check_request_enabled

        from ingestion.http import segment_cors_enabled

        # The tracking API (/v1/*) answers CORS for any origin; see segment_cors_enabled.
        check_request_enabled.connect(segment_cors_enabled, dispatch_uid="ingestion-segment-cors")
