from django.urls import path

from members import account_views

app_name = "account"

urlpatterns = [
    path("", account_views.account_home, name="home"),
    path("profile/", account_views.profile, name="profile"),
    path("close/", account_views.close, name="close"),
    path("email/", account_views.email_change, name="email_change"),
    path("email/confirm/<str:token>/", account_views.email_confirm, name="email_confirm"),
    path(
        "sessions/sign-out-others/",
        account_views.sessions_signout_others,
        name="sessions_signout_others",
    ),
    path(
        "sessions/<str:session_id>/sign-out/",
        account_views.session_signout,
        name="session_signout",
    ),
]
