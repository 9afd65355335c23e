"""The private storage for reports and uploads: a local directory (settings.PRIVATE_STORAGE_ROOT) by
default, S3 through django-storages when REPORTS_S3_BUCKET is set. Never served directly: downloads go
through authenticated views or signed share links.

Resolved on every call (not at import) so settings overrides and per-environment switches take effect."""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage


def private_storage() -> Storage:
    bucket = getattr(settings, "REPORTS_S3_BUCKET", "")
    if bucket:
        # Imported lazily: boto3 is only needed where S3 is configured (`pip install django-storages[s3]`).
        from storages.backends.s3 import S3Storage

        return S3Storage(
            bucket_name=bucket,
            region_name=getattr(settings, "REPORTS_S3_REGION", "") or None,
            endpoint_url=getattr(settings, "REPORTS_S3_ENDPOINT_URL", "") or None,
            location=getattr(settings, "REPORTS_S3_PREFIX", ""),
            default_acl="private",
            querystring_auth=True,
            file_overwrite=False,
        )
    return FileSystemStorage(location=str(settings.PRIVATE_STORAGE_ROOT), base_url=None)
