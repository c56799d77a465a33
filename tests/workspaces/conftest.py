"""A workspace with an owner, an admin, a member, and a stranger; one resource of each kind."""

import pytest

from config.roles import Role
from tests.factories import (
    DataModelFactory,
    DestinationFactory,
    SyncFactory,
    UserFactory,
    WarehouseFactory,
    add_to_workspace,
)
from workspaces.services import workspace_create


@pytest.fixture
def ws(db, owner):
    """Namespace: workspace, owner, admin, member, stranger, other (another workspace), objs."""
    workspace = workspace_create(actor=owner, name="Production")
    admin = UserFactory(full_name="Bob Admin", email="bob@acme.test")
    member = UserFactory(full_name="Carol Member", email="carol@acme.test")
    stranger = UserFactory(full_name="Sam Stranger", email="sam@elsewhere.test")
    add_to_workspace(admin, workspace, Role.ADMIN)
    add_to_workspace(member, workspace, Role.MEMBER)
    other = workspace_create(actor=stranger, name="Elsewhere")
    warehouse = WarehouseFactory(workspace=workspace, name="Snowflake")
    model = DataModelFactory(workspace=workspace, warehouse=warehouse, name="Customers")
    destination = DestinationFactory(workspace=workspace, name="HubSpot")
    sync = SyncFactory(workspace=workspace, model=model, destination=destination, name="To HubSpot")

    class NS:
        pass

    ns = NS()
    ns.workspace, ns.other = workspace, other
    ns.owner, ns.admin, ns.member, ns.stranger = owner, admin, member, stranger
    ns.objs = {"warehouse": warehouse, "model": model, "destination": destination, "sync": sync}
    return ns
