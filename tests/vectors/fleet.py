"""Shared test vectors for non-Python Flower clients, produced by flwr 1.41's own code.

    python tests/vectors/fleet.py            # writes tests/vectors/fleet/

Writes into the output folder:
- ``npy/<name>.npy``: ``np.save`` of small arrays (edge cases of numpy's header padding);
- ``fleet.json``:
  - ``npy``: for each file its dtype, shape and element bytes (hex, little-endian);
  - ``record_dict`` / ``message`` / ``error_message``: Flower objects deflated by flwr itself
    (``id``, ``type``, ``content`` base64) in post order, the root id and the input values, so a
    client can rebuild the same content and must get the same ids;
  - ``big_arrays``: ids only, for arrays > 5 MiB that a test regenerates (chunking, and repeated
    chunks stored once);
  - ``signature``: a fixed P-256 key, its PEM and OpenSSH public key, and an ECDSA-SHA256 signature
    of a fixed timestamp as flwr's Fleet auth checks it (RFC 6979 deterministic, so the file is
    reproducible).

Imports only flwr, numpy, cryptography (a flwr dependency) and the standard library.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flwr.app import Array, ArrayRecord, ConfigRecord, Error, Message, Metadata, MetricRecord, RecordDict
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects, get_object_tree

OUT = Path(__file__).parent / "fleet"

NPY_CASES: dict[str, np.ndarray] = {
    "f32_vector": np.array([0.5, -1.25, 3.0], dtype=np.float32),
    "f32_scalar": np.array(2.5, dtype=np.float32),
    "f32_matrix": np.arange(6, dtype=np.float32).reshape(2, 3) / 4,
    "f32_empty": np.zeros((0,), dtype=np.float32),
    "f64_vector": np.array([1e-300, -2.0], dtype=np.float64),
    "i32_vector": np.array([0, -1, 2**31 - 1, -(2**31), 7], dtype=np.int32),
    "i64_matrix": np.array([[1, -2], [2**62, -(2**63)]], dtype=np.int64),
    "u8_bytes": np.arange(10, dtype=np.uint8) * 25,
    "i8_vector": np.array([-128, 0, 127], dtype=np.int8),
    "bool_vector": np.array([True, False, False, True]),
    "wide_first_axis": np.zeros((12345, 0), dtype=np.float32),
    "many_axes": np.zeros((1, 2, 1, 2, 1, 2, 1, 1), dtype=np.int32),
    "header_over_128": np.zeros((0, 1000000000, 100000000, 7) + (1,) * 9, dtype=np.uint8),
    "padding_exactly_64": np.zeros((0, 100000000) + (1,) * 10, dtype=np.uint8),
}

# A training reply's content in FedMef's shape, plus awkward keys (JSON escaping) and every
# ConfigRecord value type.
ARRAYS = {
    "v/conv1": np.array([0.5, -1.25, 3.0], dtype=np.float32),
    "m/conv1": np.array([0b10110000, 1], dtype=np.uint8),
    "x/conv1": np.array([2, 7], dtype=np.int32),
    "d/fc.bias": np.zeros((2, 2), dtype=np.float32),
    "d/same.bias": np.zeros((2, 2), dtype=np.float32),  # same Array object id as d/fc.bias
    'key "quoted" \\ é ✓ \u007f\n': np.array(1.0, dtype=np.float32),
}
CONFIG = {
    "round": 3,
    "neg": -7,
    "big": 2**62,
    "lr": 0.05,
    "zero": 0.0,
    "penalty": "squared",
    "unicode": "héllo ✓",
    "flag": True,
    "off": False,
    "blob": b"\x00\x01\xff",
    "ints": [1, -2, 3],
    "floats": [0.5, -1.0],
    "strs": ["a", "b"],
    "bools": [True, False],
    "blobs": [b"x", b""],
}
METRICS = {"num-examples": 10, "train-loss": 0.25, "neg": -3, "losses": [1.5, 2.0], "counts": [1, 2]}
# Reply metadata (message_id is computed; src/dst task ids are proto3 optional)
REPLY = {
    "run_id": 15393801916001594898,
    "src_node_id": 10742870908544811916,
    "dst_node_id": 1,
    "reply_to_message_id": "55276ab37c5c1fe2034467ce0529e8ac0b58446ac3b5bf18302715c4bc1eae5d",
    "group_id": "7",
    "created_at": 1796566400.125,
    "ttl": 43000.5,
    "message_type": "train",
    "dst_task_id": 16012682253230892722,
}
BIG_FLOATS = 1_500_000  # np.arange(BIG_FLOATS, dtype=float32): 6 MB, two chunks
BIG_ZEROS = 3 * 5 * 1024 * 1024  # np.zeros(BIG_ZEROS, uint8): chunks 1 and 2 are identical
SIGNED_TIMESTAMP = "2026-01-02T03:04:05.123456+00:00"
PRIVATE_VALUE = 0x1F2E3D4C5B6A79880123456789ABCDEFFEDCBA98765432100F1E2D3C4B5A6978


def objects(obj) -> list[dict]:
    """All objects under ``obj`` (itself included), children first, as flwr deflates them."""
    return [
        {"id": oid, "type": type(o).__qualname__, "content": base64.b64encode(o.deflate()).decode()}
        for oid, o in get_all_nested_objects(obj).items()
    ]


def tree(t) -> dict:
    return {"id": t.object_id, "children": [tree(c) for c in t.children]}


def array_record() -> ArrayRecord:
    return ArrayRecord({k: Array(v) for k, v in ARRAYS.items()})


def content() -> RecordDict:
    return RecordDict(
        {"update": array_record(), "plan": ConfigRecord(dict(CONFIG)), "metrics": MetricRecord(dict(METRICS))}
    )


def metadata() -> Metadata:
    return Metadata(message_id="", **REPLY)


def message_vector(message: Message) -> dict:
    return {
        "id": message.object_id,
        "tree": tree(get_object_tree(message)),
        "objects": objects(message),
    }


def signature_vector() -> dict:
    key = ec.derive_private_key(PRIVATE_VALUE, ec.SECP256R1())
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "private_key_pem": key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        "public_key_pem": public_pem.decode(),
        "public_key_header": base64.b64encode(public_pem).decode(),
        "openssh": key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode(),
        "timestamp": SIGNED_TIMESTAMP,
        "signature": base64.b64encode(
            key.sign(SIGNED_TIMESTAMP.encode(), ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        ).decode(),
    }


def npy_vectors(out_dir: Path) -> list[dict]:
    (out_dir / "npy").mkdir(parents=True, exist_ok=True)
    entries = []
    for name, arr in NPY_CASES.items():
        np.save(out_dir / "npy" / f"{name}.npy", arr)
        entries.append(
            {"name": name, "dtype": str(arr.dtype), "shape": list(arr.shape), "data": arr.tobytes().hex()}
        )
    return entries


def write(out_dir: Path) -> None:
    """Write every vector into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rd = content()
    reply = Message(metadata=metadata(), content=rd)
    error_reply = Message(metadata=metadata(), error=Error(code=1, reason="step.onnx: sha256 mismatch"))
    big = {
        "floats": Array(np.arange(BIG_FLOATS, dtype=np.float32)),
        "zeros": Array(np.zeros(BIG_ZEROS, dtype=np.uint8)),
    }
    vectors = {
        "flwr_version": __import__("flwr").__version__,
        "numpy_version": np.__version__,
        "npy": npy_vectors(out_dir),
        "record_dict": {
            "arrays": {k: {"dtype": str(v.dtype), "shape": list(v.shape), "data": v.tobytes().hex()}
                       for k, v in ARRAYS.items()},
            "config": {k: {"type": type(v).__name__, "value": v.hex() if isinstance(v, bytes) else v}
                       for k, v in CONFIG.items() if not isinstance(v, list) or not isinstance(v[0], bytes)},
            "config_bytes_lists": {k: [b.hex() for b in v] for k, v in CONFIG.items()
                                   if isinstance(v, list) and isinstance(v[0], bytes)},
            "config_order": list(CONFIG),
            "metrics": METRICS,
            "order": list(rd.keys()),
            "id": rd.object_id,
            "objects": objects(rd),
        },
        "metadata": REPLY,
        "message": message_vector(reply),
        "error_message": {"code": 1, "reason": "step.onnx: sha256 mismatch", **message_vector(error_reply)},
        "big_arrays": {
            "floats": {"n": BIG_FLOATS, "id": big["floats"].object_id, "chunk_ids": list(big["floats"].children)},
            "zeros": {"n": BIG_ZEROS, "id": big["zeros"].object_id, "chunk_ids": list(big["zeros"].children),
                      "arraychunk_ids": json.loads(big["zeros"].deflate().split(b"\x00", 1)[1])["arraychunk_ids"]},
        },
        "signature": signature_vector(),
    }
    (out_dir / "fleet.json").write_text(json.dumps(vectors, indent=1, ensure_ascii=True) + "\n")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
