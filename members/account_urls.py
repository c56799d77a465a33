from django.urls import path

from members import account_views

app_name = "account"

urlpatterns = [
    path("", account_views.account_home, name="home"),
    path("profile/", account_views.profile, name="profile"),
]
