"""API test helpers: a client that sends a real personal token, and clean rate-limit counters."""

import json

import pytest
from django.core.cache import cache

from members.tokens import token_create


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


class ApiClient:
    """Thin wrapper over the Django test client: JSON bodies, the Bearer header, /api/v1 paths."""

    def __init__(self, client, raw_token: str | None):
        self.client = client
        self.headers = {"Authorization": f"Bearer {raw_token}"} if raw_token else {}

    def _url(self, path: str) -> str:
        return path if path.startswith("http") or path.startswith("/api/") else f"/api/v1{path}"

    def get(self, path, params=None):
        return self.client.get(self._url(path), params or {}, headers=self.headers)

    def post(self, path, body=None, *, raw: str | bytes | None = None):
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post(
            self._url(path), data, content_type="application/json", headers=self.headers
        )

    def put(self, path, body=None, *, raw: str | bytes | None = None):
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.put(
            self._url(path), data, content_type="application/json", headers=self.headers
        )

    def patch(self, path, body=None, *, raw: str | bytes | None = None):
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.patch(
            self._url(path), data, content_type="application/json", headers=self.headers
        )

    def delete(self, path):
        return self.client.delete(self._url(path), headers=self.headers)


@pytest.fixture
def api(client):
    """api(user) → an ApiClient acting with a fresh token of that user; api(None) → no token."""

    def _api(user, raw: str | None = None):
        if user is not None and raw is None:
            _token, raw = token_create(actor=user, name="tests")
        return ApiClient(client, raw)

    return _api


def error_of(response) -> dict:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    return response.json()["error"]
