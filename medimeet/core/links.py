"""Short-lived signed links: a token that carries a small payload and its own lifetime, so a
download can be handed to a browser (or a pharmacist) without a session. Used by consultation
recordings and medical-record documents."""

from __future__ import annotations

from datetime import timedelta

from django.core import signing

__all__ = ["signed_link_token", "signed_link_open", "LinkExpired", "LinkInvalid"]

LinkExpired = signing.SignatureExpired


class LinkInvalid(Exception):
    """The token was never valid (bad signature, another salt, malformed payload)."""


def signed_link_token(*, salt: str, payload: dict, minutes: int) -> str:
    """A token for ``payload`` that :func:`signed_link_open` accepts for ``minutes``."""
    return signing.TimestampSigner(salt=salt).sign_object({**payload, "m": minutes}, compress=True)


def signed_link_open(*, salt: str, token: str) -> dict:
    """The payload of a valid token; ``LinkExpired`` past its lifetime, ``LinkInvalid`` otherwise."""
    signer = signing.TimestampSigner(salt=salt)
    try:
        payload = signer.unsign_object(token)  # the signature first, then its own lifetime
        signer.unsign_object(token, max_age=timedelta(minutes=int(payload["m"])))
    except signing.SignatureExpired:
        raise
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise LinkInvalid from exc
    return payload
