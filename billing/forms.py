"""Billing forms: shapes only; the rules live in billing.services."""

from django import forms


class NoEchoInput(forms.TextInput):
    """A text input that never renders its value back into the page (card number, CVC)."""

    def format_value(self, value):
        return None


class BillingSettingsForm(forms.Form):
    billing_email = forms.EmailField(label="Billing email", max_length=254)
    company_name = forms.CharField(label="Company name", max_length=150, required=False)
    address = forms.CharField(
        label="Address", max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    tax_id = forms.CharField(
        label="Tax ID", max_length=50, required=False, help_text="VAT, GST or EIN number."
    )


class PaymentMethodForm(forms.Form):
    number = forms.CharField(
        label="Card number",
        max_length=23,
        widget=NoEchoInput(
            attrs={
                "autocomplete": "cc-number",
                "inputmode": "numeric",
                "placeholder": "4242 4242 4242 4242",
            }
        ),
    )
    exp_month = forms.IntegerField(
        label="Expiry month",
        min_value=1,
        max_value=12,
        widget=forms.NumberInput(attrs={"autocomplete": "cc-exp-month", "placeholder": "MM"}),
    )
    exp_year = forms.IntegerField(
        label="Expiry year",
        min_value=2000,
        max_value=2100,
        widget=forms.NumberInput(attrs={"autocomplete": "cc-exp-year", "placeholder": "YYYY"}),
    )
    cvc = forms.CharField(
        label="Security code",
        max_length=4,
        widget=NoEchoInput(attrs={"autocomplete": "cc-csc", "inputmode": "numeric"}),
    )
    make_default = forms.BooleanField(label="Make this the default card", required=False)
