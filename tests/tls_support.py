"""A throw-away certificate authority for tests that run a SuperLink over TLS (Python ``cryptography``)."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _certificate(subject: str, public_key, issuer: x509.Name, signer, extensions):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signer, hashes.SHA256())


def write_certificates(out: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate it signed for ``localhost`` and ``127.0.0.1``.

    Writes ``ca.pem``, ``server.pem`` and ``server.key`` (PKCS#8, unencrypted) into ``out`` and
    returns their paths in that order: the SuperLink's ``--ssl-ca-certfile``, ``--ssl-certfile``,
    ``--ssl-keyfile``; clients trust ``ca.pem``.
    """
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "FedMef test CA")])
    ca = _certificate("FedMef test CA", ca_key.public_key(), ca_name, ca_key,
                      [(x509.BasicConstraints(ca=True, path_length=None), True)])  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    names = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    server = _certificate("localhost", key.public_key(), ca_name, ca_key,
                          [(names, False), (x509.BasicConstraints(ca=False, path_length=None), True)])  # fmt: skip
    paths = out / "ca.pem", out / "server.pem", out / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths
