from django import forms


class OrgCreateForm(forms.Form):
    name = forms.CharField(max_length=100, label="Name")
    slug = forms.CharField(
        max_length=50,
        required=False,
        label="Slug",
        help_text="URL-friendly identifier, generated from the name.",
    )
