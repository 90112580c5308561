from django.dispatch import Signal

# Sent after the transaction that made a job completed, failed or cancelled has committed.
# kwargs: job (the Job row as it is now). Receivers run in the worker: keep them quick,
# hand slow work (notifications) to django-q2. Sent robustly: a failing receiver is logged
# and never affects the job.
job_finished = Signal()
