"""Keys, pseudonyms and encrypted snapshots (operators/security.py, the store's key_id): a
pseudonym is stable and keyed, and the cleaning stage leaves no original user id in an event or
a dead letter but the sealed copy the output opens; a sealed snapshot round-trips, and a tampered chunk, another
version's chunk or another key is refused, never read as an empty or older model by mistake."""

from __future__ import annotations

import dataclasses
import hmac
import io
import json
import logging
import zlib
from pathlib import Path

import pytest
import torch

from operators.cleaning import EventCleaner, dead_letter_json
from operators.model.delta import encode
from operators.model.snapshot_store import MemoryTables, SnapshotStore, compress
from operators.records import Event, Rejection
from operators.security import (
    KeyFileError,
    Pseudonymizer,
    SealBroken,
    SnapshotKey,
    WrongKey,
    read_key,
    snapshot_keys,
)

KEY_A, KEY_B = bytes(range(32)), bytes(range(1, 33))
BLOB = b"model state " * 5_000           # compresses to several 4 KiB chunks


def test_a_pseudonym_is_stable_keyed_and_not_the_id() -> None:
    p, q = Pseudonymizer(KEY_A), Pseudonymizer(KEY_B)
    assert p("alice") == Pseudonymizer(KEY_A)("alice")            # stable across instances (restarts)
    assert p("alice") != p("alice2") and p("alice") != q("alice")  # per id, per key
    assert "alice" not in p("alice") and p("alice").startswith("u:") and len(p("alice")) == 34
    for user in ("alice", "", "é" * 100, "x" * 1_000):                    # HMAC-SHA256 as the standard library has it
        assert p(user) == "u:" + hmac.digest(KEY_A, user.encode(), "sha256")[:16].hex()
    assert KEY_A.hex()[:8] not in repr(p) and p.key_id in repr(p)  # a repr names the key, never shows it


def test_a_sealed_id_opens_only_under_its_key_and_differs_every_time() -> None:
    p = Pseudonymizer(KEY_A)
    first, second = p.seal("alice"), p.seal("alice")
    assert first != second and "alice" not in first                # a fresh nonce: not a second pseudonym
    assert p.reveal(first) == p.reveal(second) == "alice"
    with pytest.raises(SealBroken):
        Pseudonymizer(KEY_B).reveal(first)
    with pytest.raises(SealBroken):
        p.reveal(first[:-4] + ("AAAA" if not first.endswith("AAAA") else "BBBB"))


T = 1_700_000_000_000


def _payload(**changes: object) -> bytes:
    return json.dumps({"event_id": "e1", "user_id": "alice", "item_id": "i1", "event_type": "click",
                       "value": None, "ts": T, **changes}).encode()


def test_the_cleaner_pseudonymises_events_and_dead_letters_and_keeps_nothing_else_of_the_id() -> None:
    p = Pseudonymizer(KEY_A)
    cleaner = EventCleaner(pseudonyms=p)
    event = cleaner.clean(_payload(), now_ms=T)
    plain = EventCleaner().clean(_payload(), now_ms=T)
    assert isinstance(event, Event) and isinstance(plain, Event)
    assert event.user_id == p("alice") and p.reveal(event.reply_to) == "alice" and plain.reply_to == ""
    assert dataclasses.replace(event, user_id="alice", reply_to="") == plain     # nothing else changes
    for bad in (_payload(event_type="teleport"), _payload(ts="yesterday"), b'{"user_id": "alice", "ts": oops'):
        rejected = cleaner.clean(bad, now_ms=T)
        assert isinstance(rejected, Rejection)
        letter = dead_letter_json(rejected, "topic")
        assert "alice" not in letter and p("alice") in letter, letter
    assert "alice" in dead_letter_json(EventCleaner().clean(_payload(event_type="teleport"), now_ms=T), "topic")
    # the same user however the JSON spells the id; non-UTF-8 bytes around it survive as they were
    assert p.scrub(rb'{"user_id" : "al\u0069ce"}') == b'{"user_id" : "' + p("alice").encode() + b'"}'
    assert p.scrub(b'\xff{"user_id":"alice"}') == b'\xff{"user_id":"%s"}' % p("alice").encode()


def test_key_files_raw_or_hex_and_errors_that_do_not_show_the_content(tmp_path: Path) -> None:
    raw, hexed, bad = tmp_path / "raw.key", tmp_path / "hex.key", tmp_path / "bad.key"
    raw.write_bytes(KEY_A)
    hexed.write_text(KEY_A.hex() + "\n")
    bad.write_text("s3cret-passphrase")
    assert read_key(raw) == read_key(hexed) == KEY_A
    with pytest.raises(KeyFileError) as short:
        read_key(bad)
    assert "s3cret" not in str(short.value) and "expected 32 bytes" in str(short.value)
    with pytest.raises(KeyFileError, match="missing.key"):
        read_key(tmp_path / "missing.key")
    assert [k.key_id for k in snapshot_keys(f"{hexed}, {raw}")] == [SnapshotKey(KEY_A).key_id] * 2
    assert snapshot_keys("") == []


def test_an_encrypted_snapshot_round_trips_and_its_chunks_are_not_the_plain_ones() -> None:
    tables = MemoryTables()
    store = SnapshotStore(tables, chunk_bytes=4_096, keys=[SnapshotKey(KEY_A)])
    info = store.save(BLOB, {0: 9}, 10, "clicks", "L")
    assert info.key_id == SnapshotKey(KEY_A).key_id and info.sha256      # the manifest names the key
    stored = b"".join(tables.chunks(info.version)[i] for i in range(info.chunks))
    assert compress(BLOB) not in stored and b"model state" not in stored
    with pytest.raises(zlib.error):
        zlib.decompress(stored)                                          # not readable without the key
    assert store.read(info) == BLOB
    assert store.load_for(0, 1) == (info, BLOB, True)


def test_a_tampered_chunk_is_refused_and_the_start_falls_back_to_the_older_snapshot(
        caplog: pytest.LogCaptureFixture) -> None:
    tables = MemoryTables()
    store = SnapshotStore(tables, chunk_bytes=4_096, keys=[SnapshotKey(KEY_A)])
    older = store.save(b"older " * 1_000, {0: 4}, 5, "clicks", "L")
    newer = store.save(BLOB, {0: 9}, 10, "clicks", "L")
    chunk = bytearray(tables.chunk_rows[newer.version][0])
    chunk[20] ^= 1
    tables.chunk_rows[newer.version][0] = bytes(chunk)
    with caplog.at_level(logging.WARNING):
        assert store.read(newer) is None
    assert f"snapshot v{newer.version} fails authentication" in caplog.text
    assert store.load_for(0, 1) == (older, b"older " * 1_000, True)


def test_a_chunk_moved_from_another_version_is_refused() -> None:
    tables = MemoryTables()
    store = SnapshotStore(tables, chunk_bytes=1 << 20, keys=[SnapshotKey(KEY_A)])
    first, second = store.save(b"first " * 100, {0: 1}, 2), store.save(b"second " * 100, {0: 3}, 4)
    tables.chunk_rows[second.version] = dict(tables.chunk_rows[first.version])   # valid ciphertext, wrong place
    tables.manifest_rows[second.version] = dataclasses.replace(second, sha256=first.sha256, size=first.size)
    assert store.read(tables.manifest_rows[second.version]) is None


def test_another_key_or_no_key_is_a_clear_error_never_an_empty_or_older_model() -> None:
    tables = MemoryTables()
    SnapshotStore(tables, keys=[SnapshotKey(KEY_A)]).save(BLOB, {0: 9}, 10, "clicks", "L")
    for keys in ([SnapshotKey(KEY_B)], []):
        with pytest.raises(WrongKey, match=f"encrypted with key {SnapshotKey(KEY_A).key_id}"):
            SnapshotStore(tables, keys=keys).load_for(0, 1)


def test_a_rotation_reads_the_old_key_and_writes_the_new_one_and_plaintext_stays_readable() -> None:
    tables = MemoryTables()
    plain = SnapshotStore(tables).save(b"plain " * 100, {0: 1}, 2, "clicks", "L")
    old = SnapshotStore(tables, keys=[SnapshotKey(KEY_A)]).save(BLOB, {0: 9}, 10, "clicks", "L")
    rotated = SnapshotStore(tables, keys=[SnapshotKey(KEY_B), SnapshotKey(KEY_A)])
    assert rotated.read(old) == BLOB and rotated.read(plain) == b"plain " * 100 and plain.key_id == ""
    new = rotated.save(BLOB, {0: 9}, 11, "clicks", "L")
    assert new.key_id == SnapshotKey(KEY_B).key_id
    assert SnapshotStore(tables, keys=[SnapshotKey(KEY_B)]).read(new) == BLOB


def test_an_encrypted_delta_composes_with_its_encrypted_base() -> None:
    base_state = {"w": torch.arange(4_000, dtype=torch.float32).reshape(400, 10), "n": 1}
    new_state = {"w": base_state["w"].clone(), "n": 2}
    new_state["w"][7] += 1
    buf = io.BytesIO()
    torch.save(base_state, buf)                     # a full snapshot's blob: the state, torch.save'd
    store = SnapshotStore(MemoryTables(), chunk_bytes=4_096, keys=[SnapshotKey(KEY_A)])
    base = store.save(buf.getvalue(), {0: 1}, 2, "clicks", "L")
    delta = store.save(encode(base_state, new_state), {0: 3}, 4, "clicks", "L", base=base.version)
    composed = store.read(delta)
    assert composed is not None and delta.key_id == base.key_id != ""
    restored = torch.load(io.BytesIO(composed), weights_only=True)
    assert torch.equal(restored["w"], new_state["w"]) and restored["n"] == 2
