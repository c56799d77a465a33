"""factory-boy factories. Objects with invariants (orgs, memberships) go through the services."""

import factory
from django.utils import timezone

from config.roles import Role
from members.models import OrgMembership, User
from workspaces.models import (
    DataModel,
    Destination,
    Sync,
    SyncRun,
    Warehouse,
    Workspace,
    WorkspaceMembership,
)

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.test")
    full_name = factory.Sequence(lambda n: f"Person {n}")
    # Tests' people have confirmed their address; pass email_verified_at=None for one who has not.
    email_verified_at = factory.LazyFunction(timezone.now)
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Workspace {n}")
    slug = factory.Sequence(lambda n: f"workspace-{n}")


class WorkspaceMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkspaceMembership

    user = factory.SubFactory(UserFactory)
    workspace = factory.SubFactory(WorkspaceFactory)
    role = Role.MEMBER


class WarehouseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Warehouse

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Warehouse {n}")
    kind = "snowflake"


class DataModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DataModel

    workspace = factory.SubFactory(WorkspaceFactory)
    warehouse = factory.SubFactory(WarehouseFactory, workspace=factory.SelfAttribute("..workspace"))
    name = factory.Sequence(lambda n: f"Model {n}")
    sql = "select 1"


class DestinationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Destination

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Destination {n}")
    kind = "hubspot"


class SyncFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sync

    workspace = factory.SubFactory(WorkspaceFactory)
    model = factory.SubFactory(DataModelFactory, workspace=factory.SelfAttribute("..workspace"))
    destination = factory.SubFactory(
        DestinationFactory, workspace=factory.SelfAttribute("..workspace")
    )
    name = factory.Sequence(lambda n: f"Sync {n}")


class SyncRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SyncRun

    sync = factory.SubFactory(SyncFactory)
    workspace = factory.SelfAttribute("sync.workspace")
    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyAttribute(lambda o: o.started_at)
    status = "succeeded"
    rows_processed = 100
    bytes_processed = 1000


def add_to_workspace(user, workspace, role=Role.MEMBER, source="direct"):
    return WorkspaceMembership.objects.create(
        user=user, workspace=workspace, role=role, source=source
    )


def add_to_org(user, org, role=Role.MEMBER):
    return OrgMembership.objects.create(user=user, organization=org, role=role)
