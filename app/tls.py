"""A self-signed certificate for the HTTPS listener, made once and kept in the state dir."""

from __future__ import annotations

import datetime
import ipaddress
import socket
from pathlib import Path
from typing import TYPE_CHECKING

# cryptography is imported where a certificate is made (~25 ms of CPU): a server without TLS,
# or whose certificate exists, never needs it.
if TYPE_CHECKING:
    from cryptography import x509


def self_signed(
    common_name: str,
    *,
    valid_from: datetime.timedelta = datetime.timedelta(minutes=5),
    valid_for: datetime.timedelta = datetime.timedelta(days=3650),
    alt_names: list[x509.GeneralName] | None = None,
) -> tuple[bytes, bytes]:
    """A new P-256 key and a self-signed certificate for it: (certificate PEM, key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - valid_from)
        .not_valid_after(now + valid_for)
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def ensure_self_signed(directory: Path) -> tuple[Path, Path]:
    cert_path = directory / "kernlb-cert.pem"
    key_path = directory / "kernlb-key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    from cryptography import x509

    directory.mkdir(parents=True, exist_ok=True)
    hostname = socket.gethostname()
    cert_pem, key_pem = self_signed(
        hostname,
        alt_names=[
            x509.DNSName(hostname),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ],
    )
    key_path.write_bytes(key_pem)
    key_path.chmod(0o600)
    cert_path.write_bytes(cert_pem)
    return cert_path, key_path
