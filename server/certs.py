"""Test certificates for a TLS SuperLink and key pairs for SuperNode authentication.

``python -m server.certs OUT_DIR --host localhost --host 127.0.0.1 [--supernodes N]`` writes

* ``ca.pem`` / ``ca.key``: a private certificate authority (clients trust ``ca.pem``);
* ``server.pem`` / ``server.key``: the SuperLink's certificate for every ``--host`` (DNS names and IP
  addresses), signed by the CA: ``flower-superlink --ssl-ca-certfile ca.pem --ssl-certfile
  server.pem --ssl-keyfile server.key``;
* ``supernode-K.key`` / ``supernode-K.pub`` for K < N: a P-384 key pair per SuperNode, the private
  key in OpenSSH format (``flower-supernode --auth-supernode-private-key``), the public key as an
  OpenSSH line (``flwr supernode register supernode-K.pub``, or ``server.launch --register-supernode``).

For trying a deployment, not for production: the CA's key sits next to its certificate and
everything is valid for ``--days`` days. Existing files are never overwritten.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NO_PASSWORD = serialization.NoEncryption()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, public_key, issuer: x509.Name, signer, days: int, extensions) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signer, hashes.SHA256())


def subject_alternative_names(hosts: list[str]) -> x509.SubjectAlternativeName:
    names = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def tls_files(hosts: list[str], days: int = 30) -> dict[str, bytes]:
    """``ca.pem``, ``ca.key``, ``server.pem``, ``server.key`` (PEM; keys PKCS#8, unencrypted)."""
    if not hosts:
        raise ValueError("the SuperLink certificate needs at least one --host (a DNS name or an IP address)")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("FedMef test CA")
    ca = _certificate("FedMef test CA", ca_key.public_key(), ca_name, ca_key, days, [
        (x509.BasicConstraints(ca=True, path_length=0), True),
        (x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                       data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                       encipher_only=False, decipher_only=False), True),
    ])  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate(hosts[0], key.public_key(), ca_name, ca_key, days, [
        (subject_alternative_names(hosts), False),
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
    ])  # fmt: skip
    return {
        "ca.pem": ca.public_bytes(serialization.Encoding.PEM),
        "ca.key": ca_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, NO_PASSWORD),
        "server.pem": server.public_bytes(serialization.Encoding.PEM),
        "server.key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, NO_PASSWORD),
    }


def supernode_key_pair() -> tuple[bytes, bytes]:
    """(OpenSSH private key, OpenSSH public key line) on P-384, the curve Flower's own nodes use."""
    key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, NO_PASSWORD)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, public + b"\n"


def write(out: Path, files: dict[str, bytes]) -> list[Path]:
    """Write ``files`` into ``out``, refusing before writing anything if one exists; keys are 0600."""
    out.mkdir(parents=True, exist_ok=True)
    existing = [name for name in files if (out / name).exists()]
    if existing:
        raise FileExistsError(f"refusing to overwrite {', '.join(existing)} in {out}")
    paths = []
    for name, content in files.items():
        path = out / name
        mode = 0o600 if name.endswith(".key") else 0o644
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as handle:
            handle.write(content)
        paths.append(path)
    return paths


def generate(out: Path, hosts: list[str], supernodes: int = 0, days: int = 30) -> list[Path]:
    """Write the CA, the SuperLink certificate (when ``hosts`` are given) and ``supernodes`` key pairs."""
    if supernodes < 0 or days < 1:
        raise ValueError("--supernodes must be >= 0 and --days >= 1")
    files = tls_files(hosts, days) if hosts else {}
    for index in range(supernodes):
        private, public = supernode_key_pair()
        files |= {f"supernode-{index}.key": private, f"supernode-{index}.pub": public}
    if not files:
        raise ValueError("nothing to write: give --host for a SuperLink certificate or --supernodes N")
    return write(Path(out), files)


def write_certificates(out: Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> tuple[Path, Path, Path]:
    """A CA and a SuperLink certificate for ``hosts`` in ``out``: (ca.pem, server.pem, server.key),
    the SuperLink's ``--ssl-ca-certfile``, ``--ssl-certfile``, ``--ssl-keyfile``."""
    generate(out, list(hosts))
    return out / "ca.pem", out / "server.pem", out / "server.key"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="directory to write into (created; existing files are kept)")
    parser.add_argument("--host", action="append", default=[],
                        help="a DNS name or IP address the SuperLink is reached by (repeat)")  # fmt: skip
    parser.add_argument("--supernodes", type=int, default=0, help="SuperNode key pairs to write")
    parser.add_argument("--days", type=int, default=30, help="validity of the certificates")
    args = parser.parse_args(argv)
    try:
        paths = generate(args.out, args.host, args.supernodes, args.days)
    except (ValueError, FileExistsError) as error:
        parser.error(str(error))
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
