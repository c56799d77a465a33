"""A real OpenID Connect provider for tests, run as its own process on loopback.

Built with authlib's server side (Flask integration, authorization code grant with the OpenID
Connect extension and PKCE, which this provider requires with S256) and signing ID tokens with
its own RS256 key. It auto-consents for the configured test user.

    python tests/idp/oidc_provider.py [--port 0]

prints `READY http://127.0.0.1:<port>` once it listens; the issuer is that URL.

Tests steer it through control endpoints (JSON POST, loopback only, no auth: a test tool):
  /control/client  {"client_id", "client_secret", "redirect_uri"}  register the client
  /control/user    {"email", "email_verified", "name", "sub", …}  who signs in next
  /control/knobs   {...}                                           what goes wrong next
Knobs make the provider misbehave the way a broken or hostile provider would, so the client
(our code) is never told about them: `deny` (error=access_denied), `other_key` (sign with a
key the JWKS does not hold, same kid), `hs256` (an HMAC keyed by the client secret instead of
the provider's key), `aud`, `iss`, `nonce` (claim values), `expired`
(exp and iat an hour ago), `token_error` (the token endpoint answers invalid_grant),
`discovery_delay` (seconds the discovery document takes: a slow provider).
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sys
import time
from dataclasses import dataclass, field

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, jsonify, request
from joserfc.jwk import OctKey, RSAKey
from werkzeug.serving import make_server


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uri: str

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uri

    def get_allowed_scope(self, scope):
        allowed = {"openid", "email", "profile"}
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret):
        return secrets.compare_digest(client_secret or "", self.client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


@dataclass
class Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    user: dict
    knobs: dict
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.knobs.get("nonce", self.nonce)

    def get_auth_time(self):
        return self.auth_time

    def get_acr(self):
        return None

    def get_amr(self):
        return None


class Provider:
    def __init__(self):
        self.issuer = ""
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1", "use": "sig"})
        self.other_key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1", "use": "sig"})
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, Code] = {}
        self.user = {"sub": "u-1", "email": "new.person@acme.test", "email_verified": True}
        self.knobs: dict = {}


provider = Provider()


class RequirePkce(CodeChallenge):
    """PKCE is mandatory here, and only S256: a client that sends none is refused."""

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE with S256 is required")
        super().validate_code_challenge(grant, redirect_uri)


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def save_authorization_code(self, code, req):
        data = req.payload.data
        provider.codes[code] = Code(
            code=code,
            client_id=req.client.client_id,
            redirect_uri=req.payload.redirect_uri,
            scope=req.payload.scope,
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            user=dict(req.user),
            knobs=dict(provider.knobs),
        )

    def query_authorization_code(self, code, client):
        item = provider.codes.get(code)
        if item and item.client_id == client.client_id:
            if item.knobs.get("token_error"):
                raise InvalidGrantError("the test provider was told to refuse this code")
            return item
        return None

    def delete_authorization_code(self, authorization_code):
        provider.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code):
        return authorization_code.user


class Oidc(OpenIDCode):
    def exists_nonce(self, nonce, req):
        return False

    def _knobs(self, client_or_request=None):
        code = getattr(self, "_current_code", None)
        return code.knobs if code else {}

    def resolve_client_private_key(self, client):
        if self._knobs().get("hs256"):  # "signed" with the client secret everyone shares
            return OctKey.import_key(client.client_secret)
        return provider.other_key if self._knobs().get("other_key") else provider.key

    def get_client_algorithm(self, client):
        return "HS256" if self._knobs().get("hs256") else "RS256"

    def get_encode_header(self, client):
        return {"alg": self.get_client_algorithm(client), "kid": provider.key.kid}

    def get_client_claims(self, client):
        knobs = self._knobs()
        now = int(time.time())
        claims = {
            "iss": knobs.get("iss", provider.issuer),
            "aud": knobs.get("aud", client.client_id),
            "iat": now,
            "exp": now + 300,
        }
        if knobs.get("expired"):
            claims["iat"], claims["exp"] = now - 3600, now - 1800
        return claims

    def generate_user_info(self, user, scope):
        info = UserInfo(sub=user.get("sub", "u-1"))
        if "email" in scope:
            info["email"] = user.get("email")
            if "email_verified" in user:
                info["email_verified"] = user["email_verified"]
        if "profile" in scope and user.get("name"):
            info["name"] = user["name"]
        for extra in ("xms_edov",):
            if extra in user:
                info[extra] = user[extra]
        return info

    def encode_id_token(self, token, req):
        self._current_code = req.authorization_code
        try:
            return super().encode_id_token(token, req)
        finally:
            self._current_code = None


def create_app() -> Flask:
    app = Flask(__name__)
    server = AuthorizationServer(
        app,
        query_client=lambda client_id: provider.clients.get(client_id),
        save_token=lambda token, req: None,
    )
    server.register_grant(CodeGrant, [Oidc(require_nonce=True), RequirePkce(required=True)])

    @app.get("/.well-known/openid-configuration")
    def discovery():
        time.sleep(float(provider.knobs.get("discovery_delay", 0)))
        base = provider.issuer
        return jsonify(
            {
                "issuer": base,
                "authorization_endpoint": base + "/authorize",
                "token_endpoint": base + "/token",
                "jwks_uri": base + "/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "code_challenge_methods_supported": ["S256"],
                "claims_supported": ["sub", "email", "email_verified", "name"],
            }
        )

    @app.get("/jwks")
    def jwks():
        return jsonify({"keys": [provider.key.as_dict(private=False)]})

    @app.get("/authorize")
    def authorize():
        try:
            grant = server.get_consent_grant(end_user=provider.user)
        except Exception as exc:  # the provider's own error page, as a real one would show
            return f"bad authorization request: {exc}", 400
        # No user is "the user said no": authlib answers error=access_denied with our state.
        user = None if provider.knobs.get("deny") else provider.user
        return server.create_authorization_response(grant=grant, grant_user=user)

    @app.post("/token")
    def token():
        return server.create_token_response()

    @app.post("/control/client")
    def control_client():
        data = request.get_json(force=True)
        provider.clients[data["client_id"]] = Client(
            data["client_id"], data["client_secret"], data["redirect_uri"]
        )
        return jsonify({"ok": True})

    @app.post("/control/user")
    def control_user():
        provider.user = {"sub": "u-1", **request.get_json(force=True)}
        return jsonify({"ok": True})

    @app.post("/control/knobs")
    def control_knobs():
        provider.knobs = dict(request.get_json(force=True))
        return jsonify({"ok": True})

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    app = create_app()
    httpd = make_server("127.0.0.1", args.port, app, threaded=True)
    provider.issuer = f"http://127.0.0.1:{httpd.server_port}"
    print(f"READY {provider.issuer}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        httpd.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
