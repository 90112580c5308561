from django.contrib import admin
from django.urls import include, path, re_path

from config.api import api, not_found as api_not_found

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    re_path(r"^api/(?P<path>.*)$", api_not_found),
    path("", include("jobs.urls")),
]
