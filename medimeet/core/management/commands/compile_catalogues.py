"""Compile locale/*/LC_MESSAGES/django.po and djangojs.po (static/js) to .mo with Babel (pure Python), so a fresh machine
needs no GNU gettext: `make messages`, `make test`, `make run` and CI run it; the test suite
runs it too when a catalogue is newer than its .mo. Only stale catalogues are rebuilt."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


def catalogues_compile(*, force: bool = False) -> list[Path]:
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    compiled = []
    for directory in settings.LOCALE_PATHS:
        for po in sorted(Path(directory).glob("*/LC_MESSAGES/django*.po")):
            mo = po.with_suffix(".mo")
            if not force and mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
                continue
            with po.open("rb") as source:
                catalog = read_po(source, locale=po.parent.parent.name)
            with mo.open("wb") as target:
                write_mo(target, catalog)
            compiled.append(mo)
    return compiled


class Command(BaseCommand):
    help = "Compile the translation catalogues (.po → .mo) with Babel."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Rebuild every .mo, stale or not.")

    def handle(self, *args, force: bool = False, **options):
        for mo in catalogues_compile(force=force):
            self.stdout.write(f"compiled {mo}")
