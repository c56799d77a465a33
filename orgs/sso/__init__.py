"""Enterprise identity for an organization: verified domains, SAML 2.0 single sign-on, the
"Sign in with SSO" entry, enforcement, and just-in-time provisioning (shared with OIDC)."""
