from django.dispatch import Signal

# Sent inside the transaction that makes a job completed, failed or cancelled, right after its
# outcome is written: what receivers write commits with the outcome, or not at all.
# kwargs: job (the Job row as it is now). Receivers run in the worker: only write rows, and
# hand anything slow or external (notifications) to django-q2 with transaction.on_commit.
# A receiver's error is logged and its writes undone (a savepoint); the outcome stands.
job_finished = Signal()
