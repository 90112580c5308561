"""The dashboard's active jobs in its own order, so a page is read from an index instead of sorted."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0003_metrics_covering_indexes'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='job',
            index=models.Index(models.Case(models.When(status='running', then=models.Value(0)), models.When(status='retrying', then=models.Value(1)), default=models.Value(2), output_field=models.IntegerField()), models.OrderBy(models.F('created_at'), descending=True), models.F('id'), condition=models.Q(('status__in', ('queued', 'running', 'retrying'))), name='jobs_active_list_idx'),
        ),
    ]
