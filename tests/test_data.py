"""Digits and CIFAR-10 loading, normalisation, and federated partitions."""

import pickle

import numpy as np
import pytest

from fedmef.data import Split, _cifar10, client_data, load_dataset, partition_indices


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", test_fraction=0.2, seed=0)


def test_digits_split_sizes_and_dtypes(digits):
    train, test = digits
    assert len(train) == 1438 and len(test) == 359  # round(1797 * 0.8) and the rest
    assert train.x.shape == (1438, 1, 8, 8) and test.x.shape == (359, 1, 8, 8)
    assert train.x.dtype == np.float32 and train.y.dtype == np.int64
    assert set(np.unique(train.y)) == set(range(10))


def test_digits_normalised_with_training_statistics(digits):
    train, test = digits
    assert abs(float(train.x.mean())) < 1e-5
    assert float(train.x.std()) == pytest.approx(1.0, abs=1e-4)
    assert abs(float(test.x.mean())) < 0.1  # same statistics applied, not re-fitted


def test_digits_split_is_seeded():
    a_train, _ = load_dataset("digits", seed=1)
    b_train, _ = load_dataset("digits", seed=1)
    c_train, _ = load_dataset("digits", seed=2)
    assert np.array_equal(a_train.y, b_train.y)
    assert not np.array_equal(a_train.y, c_train.y)


def test_unknown_dataset_raises():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")


# -- CIFAR-10 from a tiny fake in the standard python-pickle format ---------------------------------------------------


def write_batch(path, data, labels):
    with open(path, "wb") as handle:
        pickle.dump({b"batch_label": b"fake", b"data": data, b"labels": labels}, handle)


@pytest.fixture
def fake_cifar(tmp_path):
    rng = np.random.default_rng(0)
    batches = {
        "data_batch_1": (rng.integers(0, 256, (4, 3072), dtype=np.uint8), [0, 9, 3, 3]),
        "data_batch_2": (rng.integers(0, 256, (3, 3072), dtype=np.uint8), [7, 1, 2]),
        "test_batch": (rng.integers(0, 256, (2, 3072), dtype=np.uint8), [5, 6]),
    }
    for name, (data, labels) in batches.items():
        write_batch(tmp_path / name, data, labels)
    return tmp_path, batches


def test_cifar10_raw_batches_in_order(fake_cifar):
    root, batches = fake_cifar
    train, test = _cifar10(root)
    assert train.x.shape == (7, 3, 32, 32) and test.x.shape == (2, 3, 32, 32)
    assert train.x.dtype == np.float32 and train.y.dtype == np.int64
    assert train.y.tolist() == [0, 9, 3, 3, 7, 1, 2] and test.y.tolist() == [5, 6]
    # row-major CHW: the first 1024 bytes are the red plane of image 0
    first = batches["data_batch_1"][0][0]
    assert np.array_equal(train.x[0, 0], first[:1024].reshape(32, 32) / np.float32(255))
    assert np.array_equal(train.x[4, 2, 31], batches["data_batch_2"][0][0][3072 - 32 :] / np.float32(255))


def test_cifar10_load_dataset_normalises_per_channel(fake_cifar):
    root, _ = fake_cifar
    train, test = load_dataset("cifar10", str(root))
    assert train.x.shape == (7, 3, 32, 32) and test.y.tolist() == [5, 6]
    np.testing.assert_allclose(train.x.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(train.x.std(axis=(0, 2, 3)), 1.0, atol=1e-4)


def test_cifar10_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="CIFAR-10 directory not found"):
        load_dataset("cifar10", str(tmp_path / "nowhere"))


def test_cifar10_missing_batches(tmp_path):
    with pytest.raises(FileNotFoundError, match="no CIFAR-10 python batches"):
        load_dataset("cifar10", str(tmp_path))
    write_batch(tmp_path / "data_batch_1", np.zeros((1, 3072), np.uint8), [0])
    with pytest.raises(FileNotFoundError, match="test_batch"):  # training batches without a test batch
        load_dataset("cifar10", str(tmp_path))


@pytest.mark.parametrize(
    "content",
    [
        pickle.dumps([1, 2, 3]),  # not a dict
        pickle.dumps({b"data": np.zeros((1, 3072), np.uint8)}),  # no labels
        pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [0]}),  # str keys, not bytes
        b"this is not a pickle",
        b"",
        pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}),  # wrong row size
        pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}),  # label count mismatch
    ],
    ids=["list", "no-labels", "str-keys", "garbage", "empty", "row-size", "label-count"],
)
def test_cifar10_malformed_batch_raises_naming_the_file(tmp_path, content):
    write_batch(tmp_path / "data_batch_1", np.zeros((1, 3072), np.uint8), [0])
    (tmp_path / "test_batch").write_bytes(content)
    with pytest.raises(ValueError, match="test_batch"):
        load_dataset("cifar10", str(tmp_path))


# -- partitions ------------------------------------------------------------------------------------------------------

LABELS = np.repeat(np.arange(10), 20)  # 200 rows, 20 per class


@pytest.mark.parametrize("scheme", ["dirichlet", "iid"])
def test_partitions_are_disjoint_and_cover_all_rows(scheme):
    shares = [partition_indices(LABELS, 4, pid, scheme, 0.5, seed=0) for pid in range(4)]
    assert all(s.dtype == np.int64 and len(s) > 0 for s in shares)
    joined = np.concatenate(shares)
    assert len(joined) == len(LABELS)
    assert np.array_equal(np.sort(joined), np.arange(len(LABELS)))
    if scheme == "iid":
        assert [len(s) for s in shares] == [50, 50, 50, 50]


def test_dirichlet_partition_is_deterministic_with_seed_and_skewed():
    first = partition_indices(LABELS, 4, 1, "dirichlet", 0.5, seed=3)
    assert np.array_equal(first, partition_indices(LABELS, 4, 1, "dirichlet", 0.5, seed=3))
    assert not np.array_equal(first, partition_indices(LABELS, 4, 1, "dirichlet", 0.5, seed=4))
    counts = np.bincount(LABELS[first], minlength=10)
    assert counts.max() > 2 * 5  # an IID share would hold ~5 of each class


@pytest.mark.parametrize("pid", [-1, 4, 10])
def test_bad_partition_id_raises(pid):
    with pytest.raises(ValueError, match="partition id"):
        partition_indices(LABELS, 4, pid, "iid", 0.5, seed=0)


def test_unknown_partition_scheme_raises():
    with pytest.raises(ValueError, match="unknown partition scheme 'pathological'"):
        partition_indices(LABELS, 4, 0, "pathological", 0.5, seed=0)


def test_client_data_validation_fraction():
    train = Split(np.arange(200, dtype=np.float32).reshape(200, 1, 1, 1), LABELS.astype(np.int64))
    rows = partition_indices(LABELS, 4, 2, "iid", 0.5, seed=0)  # 50 rows
    data = client_data(train, 4, 2, "iid", 0.5, validation_fraction=0.1, seed=0)
    assert len(data.train) == 45 and len(data.validation) == 5  # int(50 * 0.1) held out
    used = np.concatenate([data.train.x.ravel(), data.validation.x.ravel()]).astype(np.int64)
    assert np.array_equal(np.sort(used), np.sort(rows))  # the share, split without overlap
    assert np.array_equal(data.train.y, LABELS[data.train.x.ravel().astype(np.int64)])  # x and y stay paired
    none_held = client_data(train, 4, 2, "iid", 0.5, validation_fraction=0.0, seed=0)
    assert len(none_held.train) == 50 and len(none_held.validation) == 0
