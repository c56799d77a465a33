"""A real SAML 2.0 identity provider for tests: pysaml2's IdP server class, its own generated
key pair, signing through xmlsec1. In-process (`respond`) for service tests, or over HTTP on
loopback (`serve`) for the browser journey.

Negative cases are made the way an attacker or a broken IdP would make them: unsigned, signed
with another key, addressed to another audience or destination, times moved and re-signed.
"""

from __future__ import annotations

import base64
import html
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse
from wsgiref.simple_server import WSGIRequestHandler, make_server

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.authn_context import PASSWORD
from saml2.config import IdPConfig
from saml2.metadata import create_metadata_string
from saml2.s_utils import UnknownPrincipal, UnsupportedBinding  # noqa: F401
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, Assertion, NameID
from saml2.server import Server
from saml2.sigver import class_name

from orgs.sso.keys import generate_key_pair

XMLSEC = "/usr/bin/xmlsec1"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TestIdp:
    __test__ = False  # not a test class for pytest

    def __init__(self, directory: Path, *, entity_id="https://idp.acme.test/saml", key_name="idp"):
        self.directory = directory
        self.entity_id = entity_id
        self.sso_url = "https://idp.acme.test/sso"
        self.key_file, self.cert_file = generate_key_pair(directory, key_name, "Test IdP")
        self.sp_metadata: str | None = None
        self.user = {"email": "new.person@acme.test", "name": "New Person"}
        self.metadata_delay = 0.0  # seconds /metadata takes over HTTP: a slow IdP

    def _config(self) -> IdPConfig:
        cnf = {
            "entityid": self.entity_id,
            "xmlsec_binary": XMLSEC,
            "key_file": self.key_file,
            "cert_file": self.cert_file,
            "accepted_time_diff": 60,
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [
                            (self.sso_url, BINDING_HTTP_REDIRECT),
                            (self.sso_url, BINDING_HTTP_POST),
                        ]
                    },
                    "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                    "policy": {"default": {"lifetime": {"minutes": 5}}},
                }
            },
        }
        if self.sp_metadata:
            cnf["metadata"] = {"inline": [self.sp_metadata]}
        config = IdPConfig()
        config.load(cnf)
        return config

    def metadata(self) -> str:
        xml = create_metadata_string(None, config=self._config(), valid=None)
        return xml.decode() if isinstance(xml, bytes) else xml

    def server(self) -> Server:
        return Server(config=self._config())

    # --- answering an AuthnRequest ----------------------------------------------------------

    def read_request(self, login_redirect: str):
        query = parse_qs(urlparse(login_redirect).query)
        request = self.server().parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
        return request.message, query.get("RelayState", [""])[0]

    def response_xml(
        self,
        *,
        in_response_to: str | None,
        destination: str,
        audience: str,
        email: str,
        name: str = "",
        sign_assertion=True,
        sign_response=True,
    ) -> str:
        server = self.server()
        identity = {"email": [email]}
        if name:
            identity["name"] = [name]
        response = server.create_authn_response(
            identity=identity,
            in_response_to=in_response_to,
            destination=destination,
            sp_entity_id=audience,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email),
            authn={"class_ref": PASSWORD, "authn_auth": self.entity_id},
            sign_assertion=sign_assertion,
            sign_response=sign_response,
        )
        return str(response)

    def respond(self, login_redirect: str, *, email=None, name=None, **overrides) -> str:
        """The base64 SAMLResponse a browser would post to the ACS after this IdP signed in."""
        request, _ = self.read_request(login_redirect)
        xml = self.response_xml(
            in_response_to=overrides.pop("in_response_to", request.id),
            destination=overrides.pop("destination", request.assertion_consumer_service_url),
            audience=overrides.pop("audience", request.issuer.text),
            email=email or self.user["email"],
            name=name if name is not None else self.user["name"],
            **overrides,
        )
        return base64.b64encode(xml.encode()).decode()

    def resign(self, login_redirect: str, edit, *, email=None) -> str:
        """A response changed by `edit(xml) -> xml` and then re-signed with this IdP's own key,
        so that only what was edited is wrong, never the signature."""
        request, _ = self.read_request(login_redirect)
        xml = self.response_xml(
            in_response_to=request.id,
            destination=request.assertion_consumer_service_url,
            audience=request.issuer.text,
            email=email or self.user["email"],
            sign_response=False,
        )
        xml = edit(xml)
        assertion_id = re.search(r"<(?:\w+:)?Assertion [^>]*ID=\"([^\"]+)\"", xml).group(1)
        signed = self.server().sec.sign_statement(
            xml, class_name(Assertion()), node_id=assertion_id
        )
        return base64.b64encode(signed.encode()).decode()

    def resign_with_times(self, login_redirect: str, *, not_before, not_on_or_after) -> str:
        def edit(xml):
            xml = re.sub(r'NotBefore="[^"]+"', f'NotBefore="{_stamp(not_before)}"', xml)
            return re.sub(r'NotOnOrAfter="[^"]+"', f'NotOnOrAfter="{_stamp(not_on_or_after)}"', xml)

        return self.resign(login_redirect, edit)

    def resign_with_audience(self, login_redirect: str, audience: str) -> str:
        def edit(xml):
            return re.sub(r"(<(?:\w+:)?Audience>)[^<]+(</)", rf"\g<1>{audience}\g<2>", xml)

        return self.resign(login_redirect, edit)

    # --- over HTTP, for the browser ---------------------------------------------------------

    def serve(self) -> tuple[str, callable]:
        """Serve the IdP's sign-on URL on 127.0.0.1 (a free port): it signs in `self.user` and
        posts the response to the ACS with an auto-submitting form. Returns (url, stop)."""

        def app(environ, start_response):
            if environ.get("PATH_INFO") == "/metadata":
                time.sleep(self.metadata_delay)
                start_response("200 OK", [("Content-Type", "application/samlmetadata+xml")])
                return [self.metadata().encode()]
            query = environ.get("QUERY_STRING", "")
            try:
                saml_response = self.respond("/?" + query)
                request, relay = self.read_request("/?" + query)
            except Exception as exc:  # a bad request is the IdP's 400, like a real one
                start_response("400 Bad Request", [("Content-Type", "text/plain")])
                return [f"bad SAML request: {exc}".encode()]
            page = f"""<!doctype html><html><body><h1>Test IdP</h1>
<p>Signed in as {html.escape(self.user["email"])}</p>
<form id="f" method="post" action="{html.escape(request.assertion_consumer_service_url)}">
<input type="hidden" name="SAMLResponse" value="{saml_response}">
<input type="hidden" name="RelayState" value="{html.escape(relay)}">
<button type="submit">Continue</button></form>
<script>document.getElementById("f").submit()</script></body></html>"""
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [page.encode()]

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args):
                pass

        httpd = make_server("127.0.0.1", 0, app, handler_class=Quiet)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        self.sso_url = f"http://127.0.0.1:{httpd.server_port}/sso"
        self.metadata_url = f"http://127.0.0.1:{httpd.server_port}/metadata"

        def stop():
            httpd.shutdown()
            httpd.server_close()

        return self.sso_url, stop


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)
