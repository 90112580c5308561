"""Reconciling everything the runner wrote about the jobs in the database, after a fault or a load.

A handful of aggregate queries, however many jobs; `problems()` lists each mismatch with a
few examples, so a failing test says what went wrong and where.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.db.models import Count

from jobs.models import FINISHED_STATUSES, Job, JobRetryHistory, JobStatus, RetryStatus
from monitoring.models import EventType, JobExecutionLog

# Which job_retry_history status goes with each attempt's terminal event.
OUTCOME_OF_HISTORY = {
    RetryStatus.SUCCESS: EventType.COMPLETED,
    RetryStatus.FAILED: EventType.ERROR,
    RetryStatus.CANCELLED: EventType.CANCELLED,
}
TERMINAL = {EventType.COMPLETED, EventType.ERROR, EventType.CANCELLED}


@dataclass
class Ledger:
    jobs: dict = field(default_factory=dict)  # job id -> (status, attempts)
    events: dict = field(default_factory=lambda: defaultdict(Counter))  # (job id, attempt) -> event type -> n
    history: dict = field(default_factory=dict)  # (job id, attempt) -> retry history status
    history_rows: int = 0
    event_rows: int = 0
    runs: Counter = field(default_factory=Counter)  # (job id, attempt) -> times its executor started

    @classmethod
    def read(cls, runs: Counter | None = None) -> "Ledger":
        ledger = cls(runs=Counter({(str(job), attempt): n for (job, attempt), n in (runs or {}).items()}))
        for job_id, status, attempts in Job.objects.values_list("id", "status", "attempts"):
            ledger.jobs[str(job_id)] = (status, attempts)
        # Every event of an attempt carries its number in details (queued and retry events:
        # the number of the attempt they queue).
        for job_id, attempt, event_type, n in (
            JobExecutionLog.objects.values_list("job_id", "details__attempt", "event_type")
            .annotate(n=Count("id"))
            .order_by()
        ):
            ledger.events[(str(job_id), attempt)][event_type] += n
            ledger.event_rows += n
        for job_id, attempt, status in JobRetryHistory.objects.values_list("job_id", "attempt_number", "status"):
            ledger.history[(str(job_id), attempt)] = status
        ledger.history_rows = len(ledger.history)
        return ledger

    @property
    def attempts(self) -> int:
        return sum(attempts for _, attempts in self.jobs.values())

    def statuses(self) -> Counter:
        return Counter(status for status, _ in self.jobs.values())

    def problems(self, *, check_runs: bool = True) -> list[str]:
        found = defaultdict(list)
        for job_id, (status, attempts) in self.jobs.items():
            if status not in FINISHED_STATUSES:
                found["job not finished"].append(f"{job_id} {status}")
            numbers = sorted(attempt for job, attempt in self.history if job == job_id)
            if numbers != list(range(1, attempts + 1)):
                found["retry history rows do not match attempts"].append(f"{job_id} attempts={attempts} rows={numbers}")
            completed = sum(self.events[(job_id, n)][EventType.COMPLETED] for n in range(1, attempts + 1))
            if completed != (status == JobStatus.COMPLETED):
                found["completed events do not match the status"].append(f"{job_id} {status} completed={completed}")
            for attempt in range(1, attempts + 1):
                key = (job_id, attempt)
                events = self.events[key]
                terminal = {t: n for t, n in events.items() if t in TERMINAL}
                if events[EventType.STARTED] != 1:
                    found["not exactly one started event"].append(f"{key} {dict(events)}")
                if sum(terminal.values()) != 1:
                    found["not exactly one terminal event"].append(f"{key} {dict(events)}")
                elif OUTCOME_OF_HISTORY.get(self.history.get(key)) not in terminal:
                    found["retry history disagrees with the events"].append(f"{key} {self.history.get(key)} {terminal}")
                if check_runs and self.runs[key] != 1:
                    found["executor did not run exactly once"].append(f"{key} ran {self.runs[key]} times")
        for key, n in self.runs.items():
            if n > 1 and key[0] not in self.jobs:
                found["executor ran for an unknown job"].append(f"{key}")
        return [f"{what} ({len(items)}): {items[:5]}" for what, items in found.items()]
