"""``server.certs``: a TLS handshake against the certificate succeeds for every --host, and Flower
loads the SuperNode key pairs the way ``flower-supernode`` and ``flwr supernode register`` do."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flwr.cli.supernode.register import try_load_public_key

from server import certs


def handshake(out: Path, server_name: str) -> str:
    """Connect to a TLS server on loopback presenting server.pem; verify it with ca.pem as ``server_name``."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(out / "server.pem", out / "server.key")
    client = ssl.create_default_context(cafile=str(out / "ca.pem"))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def accept():
            connection, _ = listener.accept()
            try:
                with server.wrap_socket(connection, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with client.wrap_socket(raw, server_hostname=server_name) as tls:
                version = tls.version()
        thread.join(timeout=10)
    return version


def test_the_superlink_certificate_verifies_for_each_host_and_no_other(tmp_path):
    certs.main([str(tmp_path), "--host", "localhost", "--host", "127.0.0.1", "--host", "fedmef-superlink"])
    assert handshake(tmp_path, "localhost").startswith("TLS")
    assert handshake(tmp_path, "127.0.0.1").startswith("TLS")
    assert handshake(tmp_path, "fedmef-superlink").startswith("TLS")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(tmp_path, "other-host")
    assert (tmp_path / "server.key").stat().st_mode & 0o777 == 0o600


def test_supernode_keys_load_as_flower_loads_them(tmp_path):
    certs.main([str(tmp_path), "--supernodes", "2"])
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "supernode-0.key", "supernode-0.pub", "supernode-1.key", "supernode-1.pub"]
    for index in range(2):
        # flower-supernode --auth-supernode-private-key: an OpenSSH private key on a NIST curve
        private = serialization.load_ssh_private_key((tmp_path / f"supernode-{index}.key").read_bytes(), None)
        assert isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp384r1"
        # flwr supernode register: the OpenSSH public line, sent as PEM
        registered = try_load_public_key(tmp_path / f"supernode-{index}.pub")
        assert registered == private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert try_load_public_key(tmp_path / "supernode-0.pub") != try_load_public_key(tmp_path / "supernode-1.pub")


def test_existing_files_are_never_overwritten(tmp_path, capsys):
    certs.main([str(tmp_path), "--supernodes", "1"])
    before = (tmp_path / "supernode-0.key").read_bytes()
    with pytest.raises(SystemExit):
        certs.main([str(tmp_path), "--host", "localhost", "--supernodes", "1"])
    assert "refusing to overwrite supernode-0.key, supernode-0.pub" in capsys.readouterr().err
    assert (tmp_path / "supernode-0.key").read_bytes() == before
    assert not (tmp_path / "ca.pem").exists()  # nothing of the refused call was written


def test_nothing_to_write_is_an_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        certs.main([str(tmp_path)])
    assert "--host" in capsys.readouterr().err
