"""Periodic work of the orgs app, found by Celery's autodiscovery.

The tasks are defined beside the services they call (orgs/sso/metadata.py) and keep their
`orgs.tasks.*` names; this module imports them so that imports point one way (tasks → services).
"""

from __future__ import annotations

from orgs.sso.metadata import refresh_org_saml_metadata, refresh_saml_metadata

__all__ = ["refresh_org_saml_metadata", "refresh_saml_metadata"]
