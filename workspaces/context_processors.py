"""The header's workspace switcher and Settings › Organization entry, on every page."""

from django.utils.functional import SimpleLazyObject

from workspaces.selectors import workspaces_of


def workspace_switcher(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def memberships():
        return list(workspaces_of(user))

    def current():
        slug = request.session.get("current_workspace")
        items = memberships_lazy
        return next((m.workspace for m in items if m.workspace.slug == slug), None) or (
            items[0].workspace if items else None
        )

    memberships_lazy = SimpleLazyObject(memberships)
    return {
        "switcher_memberships": memberships_lazy,
        "current_workspace": SimpleLazyObject(current),
    }
