"""Ingestion's writes. The contract names: event_batch_ingest, IngestResult, processing_run_pending."""

from ingestion.services.ingest import IngestResult, event_batch_ingest
from ingestion.services.processing import processing_batch_run, processing_run_pending

__all__ = ["IngestResult", "event_batch_ingest", "processing_batch_run", "processing_run_pending"]
