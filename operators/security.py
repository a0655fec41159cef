"""Keys, pseudonyms and sealed snapshots: the pure side of "Security and privacy" (README).

- ``Pseudonymizer``: with ``--pseudonym-key-file``, user ids become keyed pseudonyms right
  after cleaning, so keyed state, snapshots, the update log, metrics and dead letters hold
  pseudonyms only; the output record gets the original id back from a sealed copy.

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

import base64
import hashlib
import hmac
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

NONCE_BYTES = 12
PSEUDONYM_PREFIX = "u:"
# "user_id" (an event's) or "forget_user" (a control record's): "<a JSON string>" anywhere in
# a payload, parsed or not
_USER_ID_FIELD = re.compile(r'("(?:user_id|forget_user)"\s*:\s*)("(?:[^"\\]|\\.)*")', re.DOTALL)


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


class Pseudonymizer:
    """Keyed pseudonyms for user ids: ``u:`` + the first 128 bits of HMAC-SHA256(key, id), in
    hex. Stable under one key (a user keeps their state across restarts) and unrelated under
    another (a new key starts every user afresh: README "Security and privacy").

    ``seal`` / ``reveal`` carry the original id through the job to its output record without
    any operator's state holding it readable: AES-256-GCM under a key derived from this one,
    a fresh nonce each time. ``scrub`` pseudonymises the ``user_id`` inside a raw payload
    (dead letters), whether or not the rest of it parses.

    >>> p = Pseudonymizer(bytes(32))
    >>> p("alice"), p("alice") == Pseudonymizer(bytes(range(32)))("alice")
    ('u:ce3837f76a54a635191b1704ac767226', False)
    >>> p.reveal(p.seal("alice"))
    'alice'
    >>> p.scrub(b'{"user_id": "alice", "item_id": "i1"}')
    b'{"user_id": "u:ce3837f76a54a635191b1704ac767226", "item_id": "i1"}'
    >>> p.scrub(b'{"user_id":"alice","ts":oops')          # not JSON: the id is still found
    b'{"user_id":"u:ce3837f76a54a635191b1704ac767226","ts":oops'
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise KeyFileError("a pseudonymisation key is 32 bytes")
        # HMAC (RFC 2104) with its two padded-key states hashed once: a copy per id, not a
        # new HMAC object (2.3 against 4.5 us an id here; the same digest as hmac.digest)
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key.ljust(64, b"\0")))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key.ljust(64, b"\0")))
        self.key_id = key_id(key)
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        self._aead = AESGCM(hmac.new(key, b"streamrec sealed user id", hashlib.sha256).digest())

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Pseudonymizer:
        return cls(read_key(path))

    def __call__(self, user_id: str) -> str:
        inner, outer = self._inner.copy(), self._outer.copy()
        inner.update(user_id.encode("utf-8"))
        outer.update(inner.digest())
        return PSEUDONYM_PREFIX + outer.digest()[:16].hex()

    def seal(self, user_id: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        return base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, user_id.encode("utf-8"), None)).decode()

    def reveal(self, sealed: str) -> str:
        """The id ``seal`` sealed. Raises SealBroken for anything else (another key, tampering)."""
        from cryptography.exceptions import InvalidTag
        try:
            raw = base64.urlsafe_b64decode(sealed)
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], None).decode("utf-8")
        except (InvalidTag, ValueError):
            raise SealBroken("a sealed user id fails authentication (another pseudonymisation key?)") from None

    def scrub(self, payload: bytes) -> bytes:
        """``payload`` with the value of every ``"user_id": "<string>"`` replaced by its pseudonym."""
        text = payload.decode("utf-8", "surrogateescape")
        scrubbed = _USER_ID_FIELD.sub(lambda m: f'{m.group(1)}"{self(_json_string(m.group(2)))}"', text)
        return scrubbed.encode("utf-8", "surrogateescape")

    def __repr__(self) -> str:
        return f"Pseudonymizer(key_id={self.key_id})"


def _json_string(quoted: str) -> str:
    if "\\" not in quoted:     # no escapes: the characters between the quotes
        return quoted[1:-1]
    try:
        value = json.loads(quoted)
    except ValueError:          # a broken escape: pseudonymise the characters as they stand
        return quoted[1:-1]
    return value if isinstance(value, str) else quoted


def pseudonymizer(path: str) -> Pseudonymizer | None:
    """The pseudonyms of the key file at ``path``; "" -> None: user ids stay as they come."""
    return Pseudonymizer.from_file(path) if path else None


def snapshot_keys(paths: str) -> list[SnapshotKey]:
    """The keys named by a comma-separated list of key files: the first encrypts, every one
    decrypts (a key rotation lists the new key first). "" -> no keys: snapshots stay plaintext."""
    return [SnapshotKey.from_file(p.strip()) for p in paths.split(",") if p.strip()]


class Keyring:
    """The snapshot keys a store holds (``snapshot_keys``): the first seals what is written,
    any of them opens what was (a rotation lists the new key first)."""

    def __init__(self, keys: Sequence[SnapshotKey] = ()) -> None:
        self.by_id = {k.key_id: k for k in keys}
        self.sealing = keys[0] if keys else None

    @property
    def sealing_id(self) -> str:
        """The id stored beside sealed bytes ("" when nothing is sealed)."""
        return self.sealing.key_id if self.sealing is not None else ""

    def key_for(self, key_id: str, what: str) -> SnapshotKey:
        """The key named ``key_id``; WrongKey (never an empty result) when this reader lacks it."""
        key = self.by_id.get(key_id)
        if key is None:
            raise WrongKey(f"{what} is encrypted with key {key_id}; this reader's keys: "
                           f"{', '.join(self.by_id) or 'none'} (--snapshot-key-file)")
        return key


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
        return self.seal_for(data, self._associated(version))

    def open(self, sealed: bytes, version: int, key_id: str) -> bytes:
        """The bytes sealed for ``version`` under the key named ``key_id``. Raises WrongKey when
        this is another key, SealBroken when the bytes fail authentication."""
        return self.open_for(sealed, self._associated(version), key_id, f"snapshot v{version}",
                             "tampered, or moved from another version")

    def seal_for(self, data: bytes, associated: bytes) -> bytes:
        """Sealed bound to ``associated`` (what the bytes belong to: opening them under
        anything else fails)."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data, associated)

    def open_for(self, sealed: bytes, associated: bytes, key_id: str, what: str, moved: str = "tampered") -> bytes:
        if key_id != self.key_id:
            raise WrongKey(f"{what} was encrypted with key {key_id}, this reader has {self.key_id}")
        from cryptography.exceptions import InvalidTag
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated)
        except (InvalidTag, ValueError):
            raise SealBroken(f"{what} fails authentication ({moved})") from None

    def __repr__(self) -> str:
        return f"SnapshotKey(key_id={self.key_id})"
