"""SCIM 2.0 provisioning (RFC 7643/7644) for an organization's identity provider."""
