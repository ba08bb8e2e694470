"""``specjax.store``: exact round trips (arrays with their dtypes, JSON values), atomic writes that leave no temporary
file, torn or corrupted files refused with a ``StoreError`` naming the file, strict JSON, ``check_writable``."""

import json
import math
import os
import stat

import numpy as np
import pytest

from specjax import store
from specjax.errors import StoreError

ARRAYS = {
    "f64": np.array([0.1, -0.0, np.nan, np.inf, -np.inf, 5e-324, 1.7976931348623157e308]),
    "f32": np.linspace(-1, 1, 7, dtype=np.float32).reshape(7, 1),
    "i32": np.array([[-(2**31), 2**31 - 1]], dtype=np.int32),
    "i64": np.array([-(2**63), 2**63 - 1], dtype=np.int64),
    "u8": np.arange(256, dtype=np.uint8),
    "bool": np.array([True, False, True]),
    "c128": np.array([1 + 2j, -0.0 - 1j]),
    "scalar": np.array(3.5),
    "int_scalar": np.array(7, dtype=np.int16),
    "empty": np.zeros((0, 4), dtype=np.float32),
    "text": np.array("0123456789abcdef"),  # a sweep identity is stored as a 0-d unicode array
    "nan_payload": np.frombuffer(np.uint64(0x7FF8DEADBEEF0001).tobytes(), dtype=np.float64),
}


def only_files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_npz_round_trip_is_exact_with_dtypes_and_shapes(tmp_path):
    path = tmp_path / "a.npz"
    store.save_npz(path, ARRAYS | {"from_list": [1, 2, 3]})
    back = store.load_npz(path, required=("f64", "text"))
    assert sorted(back) == sorted([*ARRAYS, "from_list"])
    for k, v in ARRAYS.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape, k
        assert back[k].tobytes() == v.tobytes(), k  # bit for bit: -0.0, NaN payloads, subnormals
    assert back["from_list"].dtype == np.asarray([1, 2, 3]).dtype
    assert str(back["text"]) == "0123456789abcdef"
    assert only_files(tmp_path) == ["a.npz"]  # no temporary file left


def test_npz_overwrite_replaces_and_required_keys(tmp_path):
    path = tmp_path / "a.npz"
    store.save_npz(path, {"x": np.zeros(3)})
    store.save_npz(path, {"y": np.ones(2, np.float32)})
    assert sorted(store.load_npz(path)) == ["y"]
    with pytest.raises(StoreError, match=rf"^{path}: missing array\(s\) \['x', 'z'\]$"):
        store.load_npz(path, required=("y", "x", "z"))
    with pytest.raises(StoreError, match=rf"^{path}: array 'o' has dtype object"):
        store.save_npz(path, {"o": np.array([{}], dtype=object)})
    assert sorted(store.load_npz(path)) == ["y"]  # the refused write left the old file
    assert only_files(tmp_path) == ["a.npz"]


def test_json_round_trip_is_exact(tmp_path):
    path = tmp_path / "a.json"
    value = {
        "int": 2**62 + 1,
        "floats": [0.1, 1e-300, 1.7976931348623157e308, -0.0, 5e-324, 1 / 3],
        "text": 'ünïcode ✓ "quoted"\n',
        "flags": [True, False, None],
        "nested": {"list": [[1, 2], [], {}], "empty": ""},
    }
    store.save_json(path, value)
    back = store.load_json(path)
    assert back == value
    assert [math.copysign(1, v) for v in back["floats"]] == [1, 1, 1, -1, 1, 1]  # -0.0 kept
    assert type(back["int"]) is int and all(type(v) is float for v in back["floats"])
    assert only_files(tmp_path) == ["a.json"]


def test_json_converts_numpy_tuples_and_keys_and_writes_nan_as_null(tmp_path):
    path = tmp_path / "a.json"
    store.save_json(
        path,
        {
            "np_scalars": [np.float32(0.5), np.int64(3), np.bool_(True), np.float64(0.1)],
            "array": np.array([[1.0, np.nan], [np.inf, -np.inf]]),
            "tuple": (1, (2, 3)),
            7: "int key",
            0.95: "float key",
            "nan": float("nan"),
            "inf": np.float32("inf"),
        },
    )
    text = path.read_text()
    for token in ("NaN", "Infinity"):
        assert token not in text
    back = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert back == {
        "np_scalars": [0.5, 3, True, 0.1],
        "array": [[1.0, None], [None, None]],
        "tuple": [1, [2, 3]],
        "7": "int key",
        "0.95": "float key",
        "nan": None,
        "inf": None,
    }
    assert type(back["np_scalars"][1]) is int and type(back["np_scalars"][2]) is bool
    assert store.jsonable({1: np.arange(2)}) == {"1": [0, 1]}


def test_json_refuses_what_it_cannot_hold_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.json"
    store.save_json(path, {"v": 1})
    with pytest.raises(StoreError, match=rf"^{path}: cannot store as JSON \(.*object"):
        store.save_json(path, {"v": object()})
    assert store.load_json(path) == {"v": 1}
    assert only_files(tmp_path) == ["a.json"]


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "a.npz"
    store.save_npz(path, {"x": np.arange(3)})
    before = path.read_bytes()

    def savez_that_fails(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", savez_that_fails)
    with pytest.raises(StoreError, match=rf"^{path}: cannot write \(No space left on device\)$"):
        store.save_npz(path, {"x": np.arange(4)})
    assert path.read_bytes() == before
    assert only_files(tmp_path) == ["a.npz"]


def test_new_files_get_the_usual_permissions(tmp_path):
    path = tmp_path / "a.json"
    old = os.umask(0o027)
    try:
        store.save_json(path, {})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # 0o666 & ~umask, not mkstemp's private 0o600


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path):
    stale = [tmp_path / ".a.npz.x1y2.tmp", tmp_path / ".summary.json.abc.tmp"]
    keep = [tmp_path / "a.npz", tmp_path / ".hidden", tmp_path / "b.tmp", tmp_path / "sub" / ".c.npz.q.tmp"]
    for p in stale + keep:
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"x")
    assert sorted(store.remove_stale_temporaries(tmp_path)) == sorted(stale)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)
    assert store.remove_stale_temporaries(tmp_path / "nowhere") == []


def good_npz(path):
    store.save_npz(path, {"x": np.arange(1000, dtype=np.float64), "y": np.ones((3, 3))})
    return path.read_bytes()


@pytest.mark.parametrize("cut", [0, 1, 30, 0.25, 0.5, 0.9, -1, -22])
def test_torn_npz_is_refused_naming_the_file(tmp_path, cut):
    path = tmp_path / "torn.npz"
    good = good_npz(path)
    n = int(len(good) * cut) if isinstance(cut, float) else cut % len(good) if cut < 0 else cut
    path.write_bytes(good[:n])
    with pytest.raises(StoreError, match=rf"^{path}: not a readable \.npz file \("):
        store.load_npz(path)


def test_corrupted_npz_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "bad.npz"
    good = good_npz(path)
    flipped = bytearray(good)
    flipped[len(flipped) // 3] ^= 0x01  # inside x's data: only the zip CRC notices
    path.write_bytes(bytes(flipped))
    with pytest.raises(StoreError, match=rf"^{path}: not a readable \.npz file \(BadZipFile"):
        store.load_npz(path)
    path.write_bytes(b"\x93NUMPY garbage" * 10)
    with pytest.raises(StoreError, match=rf"^{path}: not a readable \.npz file"):
        store.load_npz(path)
    with pytest.raises(StoreError, match=rf"^{tmp_path / 'missing.npz'}: file not found$"):
        store.load_npz(tmp_path / "missing.npz")
    with pytest.raises(StoreError, match=rf"^{tmp_path}: file not found$"):  # a folder is not a file
        store.load_npz(tmp_path)


def central_directory_entries(raw: bytes) -> list[int]:
    """Offsets of every central directory entry (signature ``PK\\x01\\x02``) of a zip archive."""
    out, i = [], raw.find(b"PK\x01\x02")
    while i >= 0:
        out.append(i)
        i = raw.find(b"PK\x01\x02", i + 4)
    return out


# (offset in a central directory entry, new 2-byte value, what zipfile raises without the fix)
ZIP_ENTRY_DAMAGE = {
    "compression_method": (10, 99, "NotImplementedError"),
    "encrypted_flag": (8, 0x0001, "RuntimeError"),
    "version_needed": (6, 99, "NotImplementedError"),
    "patched_data_flag": (8, 0x0020, "NotImplementedError"),
    "strong_encryption_flag": (8, 0x0040, "NotImplementedError"),
}


@pytest.mark.parametrize("member", [0, -1])
@pytest.mark.parametrize("damage", sorted(ZIP_ENTRY_DAMAGE))
def test_damaged_zip_directory_entry_is_refused_naming_the_file(tmp_path, damage, member):
    path = tmp_path / "wave0.npz"
    good = good_npz(path)
    offset, value, raised = ZIP_ENTRY_DAMAGE[damage]
    entry = central_directory_entries(good)[member]
    bad = bytearray(good)
    bad[entry + offset : entry + offset + 2] = value.to_bytes(2, "little")
    path.write_bytes(bytes(bad))
    with pytest.raises(StoreError, match=rf"^{path}: not a readable \.npz file \({raised}: [^\n]*\)$"):
        store.load_npz(path)


def test_npy_header_claiming_a_huge_shape_is_refused_naming_the_file(tmp_path):
    import io
    import zipfile

    buf = io.BytesIO()
    np.save(buf, np.arange(5.0))
    member = bytearray(buf.getvalue())
    i = member.find(b"'shape': (5,), }")
    huge = b"'shape': (99999999999999,), }"  # fits in the header's padding; the zip CRC is computed afresh
    member[i : i + len(huge)] = huge
    path = tmp_path / "results.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.npy", bytes(member))
    with pytest.raises(StoreError, match=rf"^{path}: not a readable \.npz file \(an array too large for memory"):
        store.load_npz(path)


def test_unreadable_npz_message_is_one_short_line(tmp_path):
    path = tmp_path / "results.npz"
    good = good_npz(path)
    bad = bytearray(good)
    name_length = good.find(b"PK\x03\x04") + 26  # local header's file name length: zipfile quotes the whole rest
    bad[name_length : name_length + 2] = (999).to_bytes(2, "little")
    path.write_bytes(bytes(bad))
    with pytest.raises(StoreError) as info:
        store.load_npz(path)
    assert "\n" not in str(info.value) and len(str(info.value)) < len(str(path)) + 300


@pytest.mark.parametrize(
    "content, pattern",
    [
        (b'{"config": {"lr": [0.1', r"not valid JSON"),
        (b"", r"not valid JSON"),
        (b'{"a": NaN}x', r"not valid JSON"),
        (b"\xff\xfe{}", r"not valid JSON"),
        (b"[1, 2]", r"expected a JSON object"),
        (b'"text"', r"expected a JSON object"),
    ],
    ids=["truncated", "empty", "trailing", "not_utf8", "list", "string"],
)
def test_torn_or_wrong_json_is_refused_naming_the_file(tmp_path, content, pattern):
    path = tmp_path / "summary.json"
    path.write_bytes(content)
    with pytest.raises(StoreError, match=rf"^{path}: {pattern}"):
        store.load_json(path)


def test_missing_json_names_the_file(tmp_path):
    with pytest.raises(StoreError, match=rf"^{tmp_path / 'config.json'}: file not found$"):
        store.load_json(tmp_path / "config.json")


def test_check_writable(tmp_path):
    deep = tmp_path / "a" / "b" / "c"
    assert store.check_writable(deep) == deep and deep.is_dir()
    assert list(deep.iterdir()) == []  # the probe file is gone
    assert store.check_writable(deep) == deep  # existing folder: fine
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(StoreError, match=rf"^{blocker}: workdir cannot be written \((File exists|Not a directory)\)$"):
        store.check_writable(blocker)
    with pytest.raises(StoreError, match=rf"^{blocker / 'sub'}: workdir cannot be written \(Not a directory\)$"):
        store.check_writable(blocker / "sub")
    with pytest.raises(StoreError, match=r": workdir cannot be written \(File name too long\)$"):
        store.check_writable(tmp_path / ("x" * 300))
    assert blocker.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_check_writable_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(StoreError, match=rf"^{ro}: workdir cannot be written \(Permission denied\)$"):
            store.check_writable(ro)
        with pytest.raises(StoreError, match=rf"^{ro / 'a.json'}: cannot write \(Permission denied\)$"):
            store.save_json(ro / "a.json", {})
    finally:
        ro.chmod(0o700)


def test_npz_array_names_must_be_strings(tmp_path):
    path = tmp_path / "results.npz"
    for arrays in ({1: np.ones(2)}, {"": np.ones(2)}):
        with pytest.raises(StoreError, match=rf"^{path}: array names must be non-empty strings, got "):
            store.save_npz(path, arrays)
    assert not path.exists() and list(tmp_path.iterdir()) == []
