"""What every dashboard page shares: login and permission checks, and full page or partial."""

import math
from dataclasses import dataclass
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseForbidden
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.views.csrf import csrf_failure as django_csrf_failure
from django_htmx.http import HttpResponseClientRedirect

from monitoring.permissions import missing_permission

# What a live partial is replaced by when the request's filters are invalid (hand-made URLs).
FILTER_ERRORS = "dashboard/partials/filter_errors.html"
PAGE_SIZE = 50
# What a refused htmx action with a stale CSRF token is told: logging in again (in another tab)
# rotates the token, so every form of a page rendered before is refused until it is reloaded.
PAGE_OUT_OF_DATE = "The page is out of date (you logged in again elsewhere?): reload it and try again."


def dashboard_view(permission: str):
    """Login required, then `permission` (from monitoring.permissions, with what it presupposes),
    else a 403 page naming the one missing.

    An htmx request whose session has expired sends the whole page to the login form
    (HX-Redirect) instead of swapping the login page into a table body.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                if request.htmx:
                    next_url = _htmx_page(request) or request.get_full_path()
                    return HttpResponseClientRedirect(redirect_to_login(next_url).url)
                return redirect_to_login(request.get_full_path())
            missing = missing_permission(request.user, permission)
            if missing:
                return _forbidden(request, missing)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def _forbidden(request, permission: str):
    """The 403 page naming the missing permission; to htmx, the same in a short text to show."""
    if _wants_text(request):
        return refusal(
            f"You are logged in as {request.user.get_username()}, without the permission this action needs "
            f"({permission}). Ask an administrator to grant it."
        )
    return render(request, "dashboard/forbidden.html", {"permission": permission}, status=403)


def csrf_failure(request, reason: str = ""):
    """settings.CSRF_FAILURE_VIEW: Django's page, but to htmx a reason dashboard.js can show."""
    if not _wants_text(request):
        return django_csrf_failure(request, reason)
    if "CSRF" in reason:  # a token missing or not this session's (Origin and Referer failures name no token)
        return refusal(PAGE_OUT_OF_DATE)
    return refusal(f"Refused as a possible cross-site request: {reason}")


def refusal(text: str) -> HttpResponseForbidden:
    """A 403 in plain text: dashboard.js shows it as it is, as text (never as HTML)."""
    return HttpResponseForbidden(text, content_type="text/plain; charset=utf-8")


def _wants_text(request) -> bool:
    """An htmx action or poll, which swaps nothing on a 403; a boosted link or form wants a page."""
    htmx = getattr(request, "htmx", None)  # unset if HtmxMiddleware did not run
    return bool(htmx) and not htmx.boosted


def _htmx_page(request) -> str | None:
    """The page an htmx request came from (HX-Current-URL), if it is on this site."""
    try:
        return request.htmx.current_url_abs_path
    except ValueError:  # a hand-made header that is no URL at all ("http://[")
        return None


def render_page(request, template: str, context: dict, *, partials: dict[str, str] | None = None, status: int = 200):
    """The same URL serves the full page, or to htmx the partial its target element asks for
    (by id), so every URL works on reload and as a link while polls stay small."""
    if request.htmx and not request.htmx.history_restore_request:
        template = (partials or {}).get(request.htmx.target, template)
    response = render(request, template, context, status=status)
    if request.method == "POST" and status >= 400:
        # A refused action shown where it was sent from: the action's URL must not enter the
        # history (hx-boost would push it), where a reload would GET it and find a 405.
        response["HX-Push-Url"] = "false"
    # Caches and the back button must not serve a partial for the page, or stale data.
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    add_never_cache_headers(response)
    return response


@dataclass
class ListPage:
    """One page of a list. `total` is known for active jobs (a small set) and not counted for
    finished ones (the window may hold millions). `truncated`: rows follow, but past the last
    page the list serves (its filter form's page limit), so there is no next page to link to."""

    object_list: list
    number: int
    has_next: bool
    total: int | None = None
    per_page: int = PAGE_SIZE
    truncated: bool = False

    @classmethod
    def within(
        cls, rows: list, number: int, *, more: bool, max_pages: int, total: int | None = None, per_page: int = PAGE_SIZE
    ) -> "ListPage":
        """A page that links to the next one only where the list serves it."""
        has_next = more and number < max_pages
        return cls(rows, number, has_next=has_next, total=total, per_page=per_page, truncated=more and not has_next)

    @property
    def start_index(self) -> int:
        return (self.number - 1) * self.per_page + 1 if self.object_list else 0

    @property
    def end_index(self) -> int:
        return (self.number - 1) * self.per_page + len(self.object_list)

    @property
    def past_end(self) -> bool:
        """An empty page after the first: the list has rows, just fewer than this page needs (a
        list read without counting cannot clamp the number to its last page)."""
        return not self.object_list and self.number > 1

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_other_pages(self) -> bool:
        return self.has_previous or self.has_next

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def num_pages(self) -> int | None:
        return None if self.total is None else max(1, math.ceil(self.total / self.per_page))

    @classmethod
    def counted(cls, rows, number: int | None, *, max_pages: int) -> "ListPage":
        """A page of a small set, counted; past the end is the last page (rows leave as the
        operator pages)."""
        total = rows.count()
        number = min(number or 1, max(1, math.ceil(total / PAGE_SIZE)), max_pages)
        found = list(rows[(number - 1) * PAGE_SIZE : number * PAGE_SIZE])
        return cls.within(found, number, more=number * PAGE_SIZE < total, max_pages=max_pages, total=total)

    @classmethod
    def peeked(cls, rows, number: int | None, *, max_pages: int) -> "ListPage":
        """A page of a set too big to count: one row past the page says whether there is another."""
        number = number or 1
        found = list(rows[(number - 1) * PAGE_SIZE : number * PAGE_SIZE + 1])
        return cls.within(found[:PAGE_SIZE], number, more=len(found) > PAGE_SIZE, max_pages=max_pages)
