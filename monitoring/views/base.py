"""What every dashboard page shares: login and permission checks, and full page or partial."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django_htmx.http import HttpResponseClientRedirect

# What a live partial is replaced by when the request's filters are invalid (hand-made URLs).
FILTER_ERRORS = "dashboard/partials/filter_errors.html"


def dashboard_view(permission: str):
    """Login required, then `permission` (from monitoring.permissions), else a 403 page.

    An htmx request whose session has expired sends the whole page to the login form
    (HX-Redirect) instead of swapping the login page into a table body.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                if request.htmx:
                    next_url = request.htmx.current_url_abs_path or request.get_full_path()
                    return HttpResponseClientRedirect(redirect_to_login(next_url).url)
                return redirect_to_login(request.get_full_path())
            if not request.user.has_perm(permission):
                return render(request, "dashboard/forbidden.html", {"permission": permission}, status=403)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def render_page(request, template: str, context: dict, *, partials: dict[str, str] | None = None, status: int = 200):
    """The same URL serves the full page, or to htmx the partial its target element asks for
    (by id), so every URL works on reload and as a link while polls stay small."""
    if request.htmx and not request.htmx.history_restore_request:
        template = (partials or {}).get(request.htmx.target, template)
    response = render(request, template, context, status=status)
    # Caches and the back button must not serve a partial for the page, or stale data.
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    add_never_cache_headers(response)
    return response
