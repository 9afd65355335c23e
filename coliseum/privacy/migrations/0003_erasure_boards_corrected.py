"""An erasure records when the tenant's boards were corrected after its commit (the sweep redoes a correction
that failed). Erasures completed before this migration corrected their boards in the job itself: they are
marked corrected at their finish, so the sweep leaves them alone. The failure reason is labelled "reason"."""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("privacy", "0002_recovery_codes_digested"),
    ]

    operations = [
        migrations.AddField(
            model_name="privacyrequest",
            name="boards_corrected_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunSQL(
            "UPDATE privacy_privacyrequest SET boards_corrected_at = finished_at "
            "WHERE kind = 'erasure' AND status = 'completed'",
            migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="privacyrequest",
            name="error",
            field=models.CharField(blank=True, default="", max_length=300, verbose_name="reason"),
        ),
    ]
