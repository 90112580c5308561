"""Open job-failure alerts raised before fingerprints named the error class
(`job_failure:ai_matching` → `job_failure:ai_matching/transient`) take the new form, so the next
failure of the same class counts into them instead of opening a second alert."""

from django.db import migrations


def name_the_error_class(apps, schema_editor):
    AlertState = apps.get_model("alerts", "AlertState")
    for state in AlertState.objects.filter(is_open=True, fingerprint__startswith="job_failure:"):
        error_class = (state.details or {}).get("error_class") if isinstance(state.details, dict) else None
        if error_class and not state.fingerprint.endswith(f"/{error_class}"):
            state.fingerprint = f"{state.fingerprint}/{error_class}"[:200]
            state.save(update_fields=["fingerprint"])


class Migration(migrations.Migration):
    dependencies = [("alerts", "0003_state_and_deliveries")]

    operations = [migrations.RunPython(name_the_error_class, migrations.RunPython.noop, elidable=True)]
