"""Validated query-string filters of the dashboard's lists (bad input: 400 naming the field)."""

import uuid
from datetime import UTC, datetime, timedelta

from django import forms
from django.core.validators import RegexValidator
from django.utils.datastructures import MultiValueDict
from pydantic import TypeAdapter
from pydantic import ValidationError as SchemaValidationError

from alerts.models import Severity
from jobs import clock
from jobs.idempotency import request_hash
from jobs.manager import MAX_ATTEMPTS_LIMIT
from jobs.models import ACTIVE_STATUSES, FINISHED_STATUSES, MAX_PAUSE_REASON_CHARS
from jobs.payloads import RepeatedJsonKey, loads_refusing_repeated_keys
from jobs.registry import JobTypeName, registered_job_types
from monitoring.metrics import TIMEFRAMES
from monitoring.selectors import MAX_EVENT_OFFSET, MAX_TIMELINE_EVENTS

FINISHED_WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
# Each page of finished jobs reads every page before it from the index: past this, narrow the filters.
MAX_FINISHED_PAGES = 20
MAX_ACTIVE_PAGES = 10_000
# How far back a finished list may be pinned (`until`): a tab left open for days still pages; the
# bound keeps the window before it a real date (year 1 minus a day overflowed: a 500).
MAX_PIN_AGE = timedelta(days=365)
# A job's whole timeline, in pages as long as its page's, as deep as the API's reaches.
MAX_EVENT_PAGES = MAX_EVENT_OFFSET // MAX_TIMELINE_EVENTS


LONGEST_WINDOW = max(FINISHED_WINDOWS, key=FINISHED_WINDOWS.get)


def finished_window(timeframe: str) -> str:
    """The finished-jobs list's window for a metrics timeframe, so a link shows the same period:
    the shortest that covers it (15m → 1h), else the longest (30d → 7d). Links say so when it differs."""
    return window_since(TIMEFRAMES[timeframe]) or LONGEST_WINDOW


def window_since(age: timedelta, windows: dict[str, timedelta] = FINISHED_WINDOWS) -> str | None:
    """The shortest finished-jobs window (or of `windows`) that still lists a job that finished
    `age` ago; None past the longest (the list cannot reach it)."""
    covering = [w for w, span in windows.items() if span >= age]
    return min(covering, key=windows.get) if covering else None


def until_param(moment: datetime) -> str:
    """A moment as the finished list's `until` takes it: UTC, to the microsecond (a finished_at a
    fraction of a second after a pin cut to the second was on page 1 and on the pinned page 2)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


_JOB_TYPE_NAME = TypeAdapter(JobTypeName)


def _job_type_name(value: str) -> None:
    """The API's rule (jobs.registry.JobTypeName), with its message."""
    try:
        _JOB_TYPE_NAME.validate_python(value)
    except SchemaValidationError as e:
        raise forms.ValidationError([rule_message(error["msg"]) for error in e.errors()]) from None


def rule_message(message: str) -> str:
    """A validation rule's own words, without the "Value error, " pydantic puts before them
    (dashboard and API)."""
    return message.removeprefix("Value error, ")


def job_type_field() -> forms.CharField:
    """Any job type, registered in this process or not: old rows and jobs queued before a deploy
    that renamed or removed their type keep their names, and must still be listed. Not stripped:
    a name is taken as the API takes it."""
    return forms.CharField(required=False, strip=False, label="Type", validators=[_job_type_name])


def repeated_parameters(data: MultiValueDict, names) -> dict[str, str]:
    """{name: message} for each of `names` given more than once: a parameter that takes one
    value given two is a mistake to point out, not a choice to make for the user (API and dashboard)."""
    counts = {name: len(data.getlist(name)) for name in names}
    return {name: f"given {count} times; give it once" for name, count in counts.items() if count > 1}


ERROR_FINGERPRINT_MESSAGE = (
    "an error fingerprint is 16 hex digits, as the Errors page's groups (and the API's top_errors) give it"
)


def error_fingerprint_field() -> forms.CharField:
    """?error=<fingerprint>, as the API's ErrorFingerprint takes it (cleaned to lowercase by
    ErrorFilter.clean_error)."""
    return forms.CharField(
        required=False,
        strip=True,
        max_length=16,
        validators=[RegexValidator(r"^[0-9a-fA-F]{16}$", ERROR_FINGERPRINT_MESSAGE)],
    )


class ErrorFilter:
    """The clean_error of a form with an error_fingerprint_field."""

    def clean_error(self):
        return self.cleaned_data["error"].lower()


class FilterForm(forms.Form):
    """A dashboard list's filters, from the query string: each given once."""

    def clean(self):
        data = super().clean()
        if isinstance(self.data, MultiValueDict):  # a query string; a plain dict cannot repeat
            for name, message in repeated_parameters(self.data, self.fields).items():
                self.add_error(name, message)
        return data


def flag_field() -> forms.TypedChoiceField:
    """?name=1 on, absent, empty or 0 off (a checkbox sends 1 or nothing); true and false too, as
    the API spells its flags, so a query copied from one works on the other. Anything else is an error."""
    return forms.TypedChoiceField(
        choices=[("", "no"), ("0", "no"), ("false", "no"), ("1", "yes"), ("true", "yes")],
        coerce=lambda value: value in ("1", "true"),
        empty_value=False,
        required=False,
        error_messages={"invalid_choice": "%(value)s is neither on (1 or true) nor off (0, false or nothing)"},
    )


def list_view_of(params) -> str:
    """The job list a query asks for: its `view`, else the finished list for a finished status
    (`/jobs/?status=failed` lists failed jobs) and the active list otherwise."""
    if params.get("view") in ("active", "finished"):
        return params["view"]
    return "finished" if params.get("status") in FINISHED_STATUSES else "active"


class JobFilterForm(ErrorFilter, FilterForm):
    view = forms.ChoiceField(choices=[("active", "Active"), ("finished", "Recently finished")], required=False)
    job_type = job_type_field()
    status = forms.ChoiceField(
        choices=[("", "any")] + [(s, s) for s in (*ACTIVE_STATUSES, *FINISHED_STATUSES)], required=False
    )
    q = forms.CharField(
        required=False,
        max_length=36,
        strip=True,
        label="Job id",
        validators=[RegexValidator(r"^[0-9a-fA-F-]+$", "a job id is hex digits and dashes, e.g. 3f2a9c1e")],
    )
    window = forms.ChoiceField(choices=[(w, w) for w in FINISHED_WINDOWS], required=False, label="Finished in")
    # ?error=<fingerprint>: jobs whose last error is that one (the Errors page links its groups here).
    error = error_fingerprint_field()
    # ?attention=1: only the running jobs the list flags (too quiet, near their timeout, heartbeat late).
    attention = flag_field()
    page = forms.IntegerField(required=False, min_value=1, max_value=MAX_ACTIVE_PAGES)
    # ?until=<moment>: the finished list as it was then, so that paging through it while jobs
    # finish neither skips nor repeats rows. The pager sets it from page 1's time (until_param).
    until = forms.DateTimeField(
        required=False,
        error_messages={
            "invalid": "the moment the list is pinned at, as its pager gives it: e.g. 2026-11-29T03:12:05Z"
        },
    )

    def __init__(self, *args, now: datetime | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.now = now or clock.now()  # the page's own moment: a pin is never after it

    def clean_q(self):
        """The id's hex digits, lowercase: the dashes of a whole id are left out."""
        digits = self.cleaned_data["q"].replace("-", "").lower()
        if self.cleaned_data["q"] and not digits:
            raise forms.ValidationError("a job id is hex digits and dashes, e.g. 3f2a9c1e")
        if len(digits) > 32:
            raise forms.ValidationError("a job id has 32 hex digits at most")
        return digits

    def clean(self):
        data = super().clean()
        data["view"] = list_view_of(self.data)
        data["window"] = data.get("window") or "24h"
        allowed = ACTIVE_STATUSES if data["view"] == "active" else FINISHED_STATUSES
        if data.get("status") and data["status"] not in allowed:
            self.add_error("status", f"{data['status']!r} is not one of the {data['view']} statuses")
        if data["view"] == "active" and data.get("error"):
            message = "only finished jobs are filtered by their last error: it applies to the finished list"
            self.add_error("error", message)
        if data["view"] == "finished" and data.get("attention"):
            self.add_error("attention", "only running jobs need attention: it applies to the active list")
        if data.get("until"):
            self._check_pin(data)
        if data["view"] == "finished" and (data.get("page") or 1) > MAX_FINISHED_PAGES:
            self.add_error("page", f"at most {MAX_FINISHED_PAGES} pages of finished jobs: narrow the window or filters")
        return data

    def clean_until(self):
        # In UTC: Postgres refuses offsets past ±15:59 that Python takes ("-23:12" was a 500).
        until = self.cleaned_data["until"]
        return until.astimezone(UTC) if until else until

    def _check_pin(self, data):
        now = self.now
        if data["view"] == "active":
            self.add_error("until", "only the finished list is pinned for paging: it applies to the finished list")
        elif data["until"] > now:
            self.add_error("until", "is in the future: a list is pinned at a moment it has shown")
        elif data["until"] < now - MAX_PIN_AGE:
            self.add_error("until", "more than a year ago: go back to the latest list")

    @property
    def finished(self) -> bool:
        return self.cleaned_data["view"] == "finished"


# Finished jobs the list's "Retry these" may queue again (retrying jobs have their own Retry now).
RETRYABLE_FINISHED_STATUSES = ("failed", "cancelled")


class BulkRetryForm(JobFilterForm):
    """The finished list's filters, sent back by its "Retry these" button: failed or cancelled
    jobs of the window, of a type and id prefix if given."""

    def clean(self):
        data = super().clean()
        if data.get("status") not in RETRYABLE_FINISHED_STATUSES:
            self.add_error("status", "only failed or cancelled jobs can be retried: filter on one of them")
        return data


class PauseForm(FilterForm):
    """Pause (or resume) a job type: its name, as the API takes it, and why (optional)."""

    job_type = forms.CharField(strip=False, validators=[_job_type_name])
    reason = forms.CharField(required=False, max_length=MAX_PAUSE_REASON_CHARS)


class SubmitJobForm(FilterForm):
    """Run a job by hand: a job type registered here, its parameters as a JSON object (the job
    type checks them at submit, as for the API), attempts (the job type's default when empty)."""

    job_type = forms.ChoiceField(label="Type")
    parameters = forms.CharField(required=False, label="Parameters (JSON)", widget=forms.Textarea)
    max_attempts = forms.IntegerField(required=False, min_value=1, max_value=MAX_ATTEMPTS_LIMIT, label="Attempts")
    # Sent from a job's page ("Run a copy"): a refusal is shown there.
    copy_of = forms.UUIDField(required=False, widget=forms.HiddenInput)
    # One per rendered form (key_to_send): the same form sent twice (a double click, a resend after
    # a lost answer) makes one job. Absent from a tab opened before forms had it: no dedupe then.
    submit_key = forms.UUIDField(
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid": "not the key this form carries (a UUID); send the form below, it has a new one"},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["job_type"].choices = [(name, name) for name in registered_job_types()]

    def key_to_send(self) -> str:
        """The key the rendered form carries: a new one, or the one a refused form was sent with
        (no job was made; sending it corrected is the same intent)."""
        sent = None
        if self.is_bound and not self.has_error("submit_key"):  # has_error cleans the form if need be
            sent = self.cleaned_data.get("submit_key")
        return str(sent or uuid.uuid4())

    def idempotency_key(self) -> str | None:
        """The Idempotency-Key to submit the valid form's job under (jobs.idempotency), or None.

        The form's key with the hash of its fields: the same form sent again as it was answers the
        job it made, but sent again changed (Back, a parameter corrected) is a new intent and makes
        a new job, where the key alone would be refused as used for another request."""
        chosen = self.cleaned_data
        if chosen["submit_key"] is None:
            return None
        fields = request_hash(chosen["job_type"], chosen["parameters"], chosen["max_attempts"])
        return f"dashboard-form:{chosen['submit_key']}:{fields}"

    def clean_parameters(self) -> dict:
        text = self.cleaned_data["parameters"].removeprefix("\ufeff")  # pasted from a file; the API's bytes skip it too
        if not text:
            return {}
        try:
            parameters = loads_refusing_repeated_keys(text)
        except RepeatedJsonKey as e:
            raise forms.ValidationError(str(e)) from None
        except RecursionError:
            raise forms.ValidationError("nested too deeply") from None
        except ValueError as e:
            raise forms.ValidationError(f"not valid JSON: {e}") from None
        if not isinstance(parameters, dict):
            raise forms.ValidationError('must be a JSON object, e.g. {"seconds": 5}')
        return parameters


class TimeframeForm(FilterForm):
    """?timeframe=24h: one of monitoring.metrics.TIMEFRAMES, `default_timeframe` when absent."""

    timeframe = forms.ChoiceField(required=False)

    def __init__(self, *args, default_timeframe: str = "1h", **kwargs):
        super().__init__(*args, **kwargs)
        self.default_timeframe = default_timeframe
        self.fields["timeframe"].choices = [(t, t) for t in TIMEFRAMES]

    def clean_timeframe(self):
        return self.cleaned_data["timeframe"] or self.default_timeframe


class MetricsFilterForm(TimeframeForm):
    """The performance and error pages' filters: ?timeframe=24h&job_type=ai_matching."""

    job_type = job_type_field()


class ErrorsFilterForm(ErrorFilter, MetricsFilterForm):
    """The Errors page's filters: a metrics page's, and ?error=<fingerprint> for one error group."""

    error = error_fingerprint_field()


LONGEST_TIMEFRAME = max(TIMEFRAMES, key=TIMEFRAMES.get)


def metrics_window(age: timedelta) -> str | None:
    """The shortest metrics timeframe that still covers something that happened `age` ago; None
    past the longest (window_since's choice, for the Errors page)."""
    return window_since(age, TIMEFRAMES)


class JobEventsForm(FilterForm):
    """A page of a job's whole timeline: ?page=2 (as deep as the API's events reach)."""

    page = forms.IntegerField(required=False, min_value=1, max_value=MAX_EVENT_PAGES)


# Each page of the alert history reads the pages before it from the index: past this, filter.
MAX_ALERT_PAGES = 100


class AlertFilterForm(FilterForm):
    """The alerts list's filters: ?severity=critical&alert_type=job_failure&include_resolved=1&page=2,
    or ?unacknowledged=1 for the open alerts nobody is on."""

    severity = forms.ChoiceField(choices=[("", "any")] + Severity.choices, required=False)
    # The design's four types, or any other a piece of code raised (old rows keep old names).
    alert_type = forms.CharField(
        required=False,
        max_length=50,
        strip=True,
        label="Type",
        validators=[RegexValidator(r"^[\w.:-]+$", "an alert type is letters, digits and . _ : -, e.g. job_failure")],
    )
    include_resolved = flag_field()
    unacknowledged = flag_field()
    page = forms.IntegerField(required=False, min_value=1, max_value=MAX_ALERT_PAGES)

    def clean(self):
        data = super().clean()
        # The filters narrow each other: alerts nobody is on are open ones (alert_list), so the
        # page is the Open tab's, as the API answers the same query.
        if data.get("unacknowledged"):
            data["include_resolved"] = False
        return data
