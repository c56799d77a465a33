"""Organization forms: they shape input for the services, which hold every rule."""

from django import forms

SLUG_HELP = "Lowercase letters, digits and hyphens (3–50). Used in the organization's URLs."


class OrgCreateForm(forms.Form):
    name = forms.CharField(max_length=100, label="Name")
    slug = forms.CharField(
        max_length=50,
        required=False,
        label="Slug",
        help_text="Generated from the name; you can change it. " + SLUG_HELP,
    )


class OrgSettingsForm(forms.Form):
    name = forms.CharField(max_length=100, label="Name")
    slug = forms.CharField(max_length=50, label="Slug", help_text=SLUG_HELP)


class LinkWorkspaceForm(forms.Form):
    """The workspace's public id; the service decides whether it may be linked."""

    workspace = forms.CharField(max_length=40, label="Workspace")


class CreateLinkedWorkspaceForm(forms.Form):
    name = forms.CharField(max_length=100, label="Name of the new workspace")


class ConfirmWorkspaceDeleteForm(forms.Form):
    confirm_name = forms.CharField(
        max_length=100, required=False, label="Type the workspace's name to confirm"
    )


class OwnershipTransferForm(forms.Form):
    STAY = "stay"
    STEP_DOWN = "step_down"

    member = forms.ChoiceField(label="New owner")
    afterwards = forms.ChoiceField(
        label="And you",
        choices=[(STEP_DOWN, "Step down to admin"), (STAY, "Stay an owner")],
        initial=STEP_DOWN,
        widget=forms.RadioSelect,
    )

    def __init__(self, *args, memberships=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].choices = [("", "Choose a member…")] + [
            (m.public_id, f"{m.user.display_name} <{m.user.email}> · {m.role_name}")
            for m in memberships
        ]


class ConfirmOrgDeleteForm(forms.Form):
    confirm_slug = forms.CharField(
        max_length=50, required=False, label="Type the organization's slug to confirm"
    )
