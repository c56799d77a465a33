from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("details/", views.settings_update, name="settings"),
    path("invoices.csv", views.invoices_csv_view, name="invoices_csv"),
    path("invoices/<str:number>/", views.invoice_view, name="invoice"),
    path("plan/<slug:plan_code>/", views.plan_change, name="plan_change"),
    path("payment-methods/", views.payment_method_add, name="payment_method_add"),
    path(
        "payment-methods/<int:pm_id>/default/",
        views.payment_method_default,
        name="payment_method_default",
    ),
    path(
        "payment-methods/<int:pm_id>/remove/",
        views.payment_method_remove,
        name="payment_method_remove",
    ),
]
