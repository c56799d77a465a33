from django.urls import path

from reviews import views

app_name = "reviews"

urlpatterns = [
    path("", views.review_list, name="list"),
    path("new/", views.review_new, name="new"),
    path("<str:review_id>/", views.review_detail, name="detail"),
    path("<str:review_id>/decide/", views.review_decide_view, name="decide"),
    path("<str:review_id>/complete/", views.review_complete_view, name="complete"),
    path("<str:review_id>/report.<str:fmt>", views.review_report, name="report"),
]
