"""Test certificates come from the product's ``server.certs`` (``python -m server.certs``)."""

from server.certs import write_certificates

__all__ = ["write_certificates"]
