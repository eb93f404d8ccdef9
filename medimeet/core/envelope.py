"""Envelope encryption of files at rest: a random data key per file, wrapped by a master key.

The file is encrypted with AES-256-GCM in chunks (``CHUNK`` bytes of plaintext each), so a
20 MB document is encrypted and decrypted as a stream without holding it in memory. Each
chunk's nonce is the file's random 8-byte prefix plus the chunk counter, and its associated
data says whether it is the last chunk: chunks cannot be reordered, dropped or the file cut
short without the tag failing.

    file  = MAGIC (4) | nonce prefix (8) | chunk₀ ciphertext+tag | chunk₁ ... (last may be short)

The data key is wrapped with AES key wrap (RFC 3394) under a master key from
``ENVELOPE_MASTER_KEYS`` ("id:base64url-32-bytes", newest first). Rotation re-wraps the data
keys under the newest master key (``manage.py records_rotate_keys``); file contents never
need re-encrypting. The embedded default derives a development master key from SECRET_KEY;
production settings refuse to start without explicit keys.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MAGIC = b"MME1"
CHUNK = 1024 * 1024
TAG = 16
HEADER = len(MAGIC) + 8

__all__ = ["EnvelopeError", "EncryptingReader", "WrappedKey", "data_key_new", "data_key_unwrap", "data_key_rewrap", "encrypt_stream", "decrypt_stream", "master_key_current_id"]


class EnvelopeError(Exception):
    """The key or the ciphertext does not fit: wrong master key, tampered or truncated file."""


@dataclass(frozen=True)
class WrappedKey:
    key_id: str
    wrapped: bytes


def parse_master_keys(values: Iterable[str]) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for value in values:
        key_id, sep, encoded = value.partition(":")
        try:
            raw = base64.urlsafe_b64decode(encoded.encode() + b"=" * (-len(encoded) % 4))
        except ValueError:
            raw = b""
        if not sep or not key_id or len(raw) != 32:
            raise ImproperlyConfigured("ENVELOPE_MASTER_KEYS entries must look like 'id:<32 bytes in base64url>'.")
        keys[key_id] = raw
    return keys


@lru_cache(maxsize=4)
def _master_keys(values: tuple[str, ...], secret_key: str) -> tuple[str, dict[str, bytes]]:
    if not values:
        derived = hashlib.sha256(b"medimeet-envelope-master:" + secret_key.encode()).digest()
        return "dev", {"dev": derived}
    keys = parse_master_keys(values)
    return next(iter(keys)), keys


def _keys() -> tuple[str, dict[str, bytes]]:
    return _master_keys(tuple(settings.ENVELOPE_MASTER_KEYS), settings.SECRET_KEY)


def master_key_current_id() -> str:
    return _keys()[0]


def data_key_new() -> tuple[bytes, WrappedKey]:
    """A fresh 256-bit data key and its wrapping under the current master key."""
    current, keys = _keys()
    key = AESGCM.generate_key(bit_length=256)
    return key, WrappedKey(current, aes_key_wrap(keys[current], key))


def data_key_unwrap(wrapped: WrappedKey) -> bytes:
    _current, keys = _keys()
    master = keys.get(wrapped.key_id)
    if master is None:
        raise EnvelopeError(f"Master key {wrapped.key_id!r} is not configured.")
    try:
        return aes_key_unwrap(master, wrapped.wrapped)
    except InvalidUnwrap as exc:
        raise EnvelopeError("The data key does not unwrap with its master key.") from exc


def data_key_rewrap(wrapped: WrappedKey) -> WrappedKey:
    """The same data key wrapped under the current master key (unchanged if it already is)."""
    current, keys = _keys()
    if wrapped.key_id == current:
        return wrapped
    return WrappedKey(current, aes_key_wrap(keys[current], data_key_unwrap(wrapped)))


def _aad(index: int, last: bool) -> bytes:
    return struct.pack(">I?", index, last)


class EncryptingReader(io.RawIOBase):
    """A read-only, non-seekable file whose bytes are the encryption of ``source`` (same format
    as :func:`encrypt_stream`), produced as they are read: storage backends (local or S3) copy
    the ciphertext from it in one pass, with no second copy of the file anywhere."""

    def __init__(self, key: bytes, source: IO[bytes]) -> None:
        super().__init__()
        self._aead, self._prefix, self._source = AESGCM(key), os.urandom(8), source
        # The ciphertext not read yet: a view and a position, so a read copies each byte once.
        self._pending, self._position = memoryview(MAGIC + self._prefix), 0
        self._index, self._next = 0, source.read(CHUNK)
        self._done = False
        self.plaintext_size = 0

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        chunk = self._next
        self._next = self._source.read(CHUNK) if chunk else b""
        last = not self._next
        self._pending = memoryview(self._aead.encrypt(self._prefix + struct.pack(">I", self._index), chunk, _aad(self._index, last)))
        self._position = 0
        self.plaintext_size += len(chunk)
        self._index += 1
        self._done = last

    def readinto(self, target) -> int:
        if self._position >= len(self._pending):
            if self._done:
                return 0
            self._fill()
        size = min(len(target), len(self._pending) - self._position)
        target[:size] = self._pending[self._position : self._position + size]
        self._position += size
        return size


def encrypt_stream(key: bytes, source: IO[bytes], target: IO[bytes]) -> int:
    """Encrypt ``source`` into ``target`` chunk by chunk; returns the plaintext size."""
    reader = EncryptingReader(key, source)
    while block := reader.read(CHUNK + TAG):
        target.write(block)
    return reader.plaintext_size


def decrypt_stream(key: bytes, source: IO[bytes]) -> Iterator[bytes]:
    """The plaintext of an encrypted file, one chunk at a time; EnvelopeError if it was altered."""
    header = source.read(HEADER)
    if len(header) != HEADER or not header.startswith(MAGIC):
        raise EnvelopeError("Not an encrypted file.")
    aead, prefix = AESGCM(key), header[len(MAGIC):]
    index = 0
    chunk = source.read(CHUNK + TAG)
    while True:
        following = source.read(CHUNK + TAG)
        last = not following
        try:
            yield aead.decrypt(prefix + struct.pack(">I", index), chunk, _aad(index, last))
        except InvalidTag as exc:
            raise EnvelopeError("The file was altered or cut short.") from exc
        if last:
            return
        chunk, index = following, index + 1
