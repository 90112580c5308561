from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from config.api import api
from config.api import not_found as api_not_found
from monitoring.login import AdminLoginForm, LoginForm
from monitoring.prometheus import metrics_view

admin.site.login_form = AdminLoginForm  # failed passwords counted, as on the dashboard's login page
# Admin's sidebar repeats the index (a handful of models, a click away in the breadcrumbs) and took
# 260 px from the alert list: at 1280 px its titles had 67 px and broke mid-word ("ai_mat|ching").
admin.site.enable_nav_sidebar = False

urlpatterns = [
    path("admin/", admin.site.urls),
    # Before ninja's own root, which answered Django's HTML 404 page.
    path("api/", api_not_found),
    path("api/", api.urls),
    re_path(r"^api/(?P<path>.*)$", api_not_found),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(
            template_name="dashboard/login.html", authentication_form=LoginForm, redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("metrics", metrics_view, name="metrics"),
    path("", include("jobs.urls")),
    path("", include("monitoring.urls")),
]

handler400 = "monitoring.middleware.api_bad_request"
