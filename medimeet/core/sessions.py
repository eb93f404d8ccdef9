"""The session engine: Django's ``cached_db`` (the cache in front, the database behind), except that
a session that cannot be saved because the database is unreachable is an outage, not a session
someone else deleted: Django turns the latter (``UpdateError``) into a bare 400 "Bad Request"
(``SessionInterrupted``); the database's own error goes on to ``views.server_error``, which answers
503 with the error page (docs/testing.md, Fault injection)."""

from __future__ import annotations

from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.cached_db import SessionStore as CachedDbSessionStore
from django.db import InterfaceError, OperationalError


class SessionStore(CachedDbSessionStore):
    def save(self, must_create: bool = False) -> None:
        try:
            super().save(must_create)
        except UpdateError as exc:
            if isinstance(exc.__context__, OperationalError | InterfaceError):
                raise exc.__context__ from None
            raise

    async def asave(self, must_create: bool = False) -> None:
        try:
            await super().asave(must_create)
        except UpdateError as exc:
            if isinstance(exc.__context__, OperationalError | InterfaceError):
                raise exc.__context__ from None
            raise
