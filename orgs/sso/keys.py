"""Key pairs for SAML: the SP's own (signing metadata, decrypting encrypted assertions)."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.conf import settings


def generate_key_pair(directory: Path, name: str, common_name: str) -> tuple[str, str]:
    """Write `<name>.key` and `<name>.crt` (RSA 2048, self-signed, 10 years) into directory."""
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(key_path), str(cert_path)


def sp_key_pair() -> tuple[str, str]:
    """SAML_SP_KEY_FILE/SAML_SP_CERT_FILE, or a pair generated once into SAML_SP_KEY_DIR."""
    if settings.SAML_SP_KEY_FILE and settings.SAML_SP_CERT_FILE:
        return settings.SAML_SP_KEY_FILE, settings.SAML_SP_CERT_FILE
    directory = Path(settings.SAML_SP_KEY_DIR)
    key_path, cert_path = directory / "sp.key", directory / "sp.crt"
    if key_path.exists() and cert_path.exists():
        return str(key_path), str(cert_path)
    return generate_key_pair(directory, "sp", "SignalSmith SAML SP")
