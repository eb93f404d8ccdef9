"""Encryption of PHI at rest with Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`.

Keys come from ``FIELD_ENCRYPTION_KEYS`` (newest first). MultiFernet decrypts with any listed
key and encrypts with the first, so keys rotate by prepending a new one and re-saving rows.
The embedded default, which has no key configured, derives a development key from SECRET_KEY;
production settings refuse to start without an explicit key.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

__all__ = ["encrypt_bytes", "decrypt_bytes", "encrypt_text", "decrypt_text", "token_rotate", "InvalidToken"]


@lru_cache(maxsize=4)
def _fernets(keys: tuple[str, ...], secret_key: str) -> tuple[tuple[Fernet, ...], MultiFernet]:
    if not keys:
        derived = hashlib.sha256(b"medimeet-field-encryption:" + secret_key.encode()).digest()
        keys = (base64.urlsafe_b64encode(derived).decode(),)
    fernets = tuple(Fernet(key.encode()) for key in keys)
    return fernets, MultiFernet(list(fernets))


def current_fernet() -> MultiFernet:
    return _fernets(tuple(settings.FIELD_ENCRYPTION_KEYS), settings.SECRET_KEY)[1]


def token_rotate(token: bytes) -> bytes | None:
    """``token`` re-encrypted under the newest key, or None when it already is (so rotating twice
    changes nothing). Raises InvalidToken when no configured key opens it. The new token is checked
    to decrypt to the same plaintext before it is returned: a rotation never loses a value."""
    fernets, multi = _fernets(tuple(settings.FIELD_ENCRYPTION_KEYS), settings.SECRET_KEY)
    try:
        fernets[0].decrypt(token)
        return None
    except InvalidToken:
        pass
    plaintext = multi.decrypt(token)
    rotated = multi.rotate(token)
    if fernets[0].decrypt(rotated) != plaintext:  # pragma: no cover - a broken cryptography install
        raise InvalidToken
    return rotated


def encrypt_bytes(data: bytes) -> bytes:
    return current_fernet().encrypt(data)


def decrypt_bytes(token: bytes) -> bytes:
    return current_fernet().decrypt(token)


def encrypt_text(value: str) -> str:
    return encrypt_bytes(value.encode("utf-8")).decode("ascii")


def decrypt_text(token: str) -> str:
    return decrypt_bytes(token.encode("ascii")).decode("utf-8")
