"""Forms of the workspace pages: one ModelForm per resource kind, members, deletion."""

from __future__ import annotations

from django import forms

from config.roles import Role
from workspaces.services import RESOURCE_MODELS

# The fields a person edits on each kind of resource (connection secrets are never stored here).
RESOURCE_FIELDS = {
    "warehouse": ["name", "kind", "host", "database", "username"],
    "model": ["name", "warehouse", "sql"],
    "destination": ["name", "kind"],
    "sync": ["name", "model", "destination", "schedule", "enabled"],
}


class ResourceForm(forms.ModelForm):
    """Related choices (warehouse, model, destination) are limited to the workspace's own."""

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        for name, field in self.fields.items():
            if isinstance(field, forms.ModelChoiceField):
                field.queryset = field.queryset.filter(workspace=workspace).order_by("name")
            if name == "sql":
                field.widget.attrs.update({"rows": 8, "spellcheck": "false", "class": "mono"})

    def service_data(self) -> dict:
        """The cleaned values, as the resource services take them."""
        return {name: self.cleaned_data[name] for name in self.fields}


def resource_form_class(kind: str) -> type[ResourceForm]:
    return forms.modelform_factory(  # type: ignore[return-value]  # a subclass of form=
        RESOURCE_MODELS[kind], form=ResourceForm, fields=RESOURCE_FIELDS[kind]
    )


ROLE_CHOICES = [(r.value, r.label.title()) for r in Role]


class MemberAddForm(forms.Form):
    email = forms.EmailField(
        label="Email address",
        widget=forms.EmailInput(attrs={"autocomplete": "off", "placeholder": "name@company.com"}),
    )
    role = forms.TypedChoiceField(choices=ROLE_CHOICES, coerce=int, initial=Role.MEMBER)


class MemberRoleForm(forms.Form):
    role = forms.TypedChoiceField(choices=ROLE_CHOICES, coerce=int)


class WorkspaceDeleteForm(forms.Form):
    confirm_name = forms.CharField(
        label="Type the workspace's name to confirm",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
