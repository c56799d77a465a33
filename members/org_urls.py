from django.urls import path

from members import org_views

app_name = "org_members"

urlpatterns = [
    path("", org_views.directory, name="directory"),
]
