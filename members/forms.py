from django import forms
from django.contrib.auth.password_validation import validate_password

from members.models import User, normalize_email


class SignInForm(forms.Form):
    email = forms.EmailField(
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )

    def clean_email(self):
        return normalize_email(self.cleaned_data["email"])


class SignUpForm(forms.Form):
    full_name = forms.CharField(max_length=150, label="Full name")
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    workspace_name = forms.CharField(
        max_length=100, label="Name of your first workspace", required=False
    )

    def __init__(self, *args, fixed_email: str | None = None, with_workspace=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fixed_email = fixed_email
        if fixed_email:
            self.fields["email"].initial = fixed_email
            self.fields["email"].disabled = True
        if not with_workspace:
            del self.fields["workspace_name"]

    def clean_email(self):
        email = normalize_email(self.fixed_email or self.cleaned_data["email"])
        if User.objects.filter(email=email).exists():
            raise forms.ValidationError("An account with this email exists already: sign in.")
        return email

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password") and cleaned.get("email"):
            user = User(email=cleaned["email"], full_name=cleaned.get("full_name", ""))
            try:
                validate_password(cleaned["password"], user)
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return cleaned
