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

__all__ = ["encrypt_bytes", "decrypt_bytes", "encrypt_text", "decrypt_text", "InvalidToken"]


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        derived = hashlib.sha256(b"medimeet-field-encryption:" + secret_key.encode()).digest()
        keys = (base64.urlsafe_b64encode(derived).decode(),)
    return MultiFernet([Fernet(key.encode()) for key in keys])


def current_fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt_bytes(data: bytes) -> bytes:
    return current_fernet().encrypt(data)


def decrypt_bytes(token: bytes) -> bytes:
    return current_fernet().decrypt(token)


def encrypt_text(value: str) -> str:
    return encrypt_bytes(value.encode("utf-8")).decode("ascii")


def decrypt_text(token: str) -> str:
    return decrypt_bytes(token.encode("ascii")).decode("utf-8")
