"""Keys and sealed snapshots: the pure side of "Security and privacy" (README).

- ``SnapshotKey``: AES-256-GCM over a snapshot's stored (compressed) bytes, bound to its
  version number, so a chunk cannot be moved to another version unnoticed. Its ``key_id``
  (a hash of the key, not the key) goes into the manifest, so a reader with another key says
  so instead of reading nothing.

Keys come from files (32 random bytes, or 64 hex digits): never from the command line and
never into a log, a repr or a manifest.

>>> key = SnapshotKey(bytes(range(32)))
>>> sealed = key.seal(b"model bytes", version=7)
>>> key.open(sealed, version=7, key_id=key.key_id)
b'model bytes'
>>> key.open(sealed, version=8, key_id=key.key_id)
Traceback (most recent call last):
...
operators.security.SealBroken: snapshot v8 fails authentication (tampered, or moved from another version)
>>> SnapshotKey(bytes(32)).open(sealed, version=7, key_id=key.key_id)
Traceback (most recent call last):
...
operators.security.WrongKey: snapshot v7 was encrypted with key f676ae2be0f09299, this reader has 41a66aefa8e95c82
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

NONCE_BYTES = 12


class KeyFileError(ValueError):
    """A key file that is missing, unreadable or not 32 bytes."""


class WrongKey(ValueError):
    """A sealed snapshot whose key this reader does not have: never read as an empty model."""


class SealBroken(ValueError):
    """A sealed snapshot that fails authentication under the right key: tampered or misplaced."""


def read_key(path: str | os.PathLike[str]) -> bytes:
    """A 256-bit key from a file: 32 raw bytes, or 64 hex digits (surrounding whitespace ignored).
    The error names the file, never its content."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"key file {path}: {exc.strerror or exc}") from None
    if len(raw) == 32:
        return raw
    text = raw.strip()
    if len(text) == 64:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    raise KeyFileError(f"key file {path}: expected 32 bytes or 64 hex digits, found {len(raw)} bytes "
                       f"(make one with: head -c 32 /dev/urandom > {path})")


def key_id(key: bytes) -> str:
    """A name for a key that does not reveal it: the first 16 hex digits of a domain-separated hash."""
    return hashlib.sha256(b"streamrec key id\0" + key).hexdigest()[:16]


def snapshot_keys(paths: str) -> list[SnapshotKey]:
    """The keys named by a comma-separated list of key files: the first encrypts, every one
    decrypts (a key rotation lists the new key first). "" -> no keys: snapshots stay plaintext."""
    return [SnapshotKey.from_file(p.strip()) for p in paths.split(",") if p.strip()]


class SnapshotKey:
    """AES-256-GCM for snapshot bytes at rest: ``nonce (12 bytes) || ciphertext || tag``, the
    version number as associated data. A fresh random nonce per snapshot (one key seals far
    fewer than the 2^32 messages random 96-bit nonces are safe for)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise KeyFileError("a snapshot key is 32 bytes (AES-256)")
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        self._aead = AESGCM(key)
        self.key_id = key_id(key)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> SnapshotKey:
        return cls(read_key(path))

    @staticmethod
    def _associated(version: int) -> bytes:
        return f"streamrec snapshot v{version}".encode()

    def seal(self, data: bytes, version: int) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data, self._associated(version))

    def open(self, sealed: bytes, version: int, key_id: str) -> bytes:
        """The bytes sealed for ``version`` under the key named ``key_id``. Raises WrongKey when
        this is another key, SealBroken when the bytes fail authentication."""
        if key_id != self.key_id:
            raise WrongKey(f"snapshot v{version} was encrypted with key {key_id}, this reader has {self.key_id}")
        from cryptography.exceptions import InvalidTag
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], self._associated(version))
        except (InvalidTag, ValueError):
            raise SealBroken(f"snapshot v{version} fails authentication (tampered, or moved from another version)") \
                from None

    def __repr__(self) -> str:
        return f"SnapshotKey(key_id={self.key_id})"
