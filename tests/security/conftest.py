"""Security tests use the API tests' token client too."""

import pytest

from members.tokens import token_create
from tests.api.conftest import ApiClient


@pytest.fixture
def api(client):
    """api(user) → an ApiClient acting with a fresh token of that user; api(None) → no token."""

    def _api(user, raw: str | None = None):
        if user is not None and raw is None:
            _token, raw = token_create(actor=user, name="tests")
        return ApiClient(client, raw)

    return _api
