"""Step 6: nothing user-facing stays English by accident. The Python code hands no bare string to
a flash message, nor to a label/help text in a page form (forms.py; the API's serializer help
texts document the API and stay English), and every msgid of the Hindi catalogues
(django.po for Python and templates, djangojs.po for static/js) has a Hindi msgstr with the same
placeholders, so interpolation cannot fail or drop a value in Hindi."""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
SKIPPED_PARTS = {".venv", "migrations", "tests", "bench", "node_modules", "var"}
CATALOGUES = [ROOT / "locale" / "hi" / "LC_MESSAGES" / name for name in ("django.po", "djangojs.po")]
MESSAGE_FUNCTIONS = {"debug", "info", "success", "warning", "error"}
# %(name)s / %(count)d, a bare %s or %d, and {name} as str.format and JS interpolate() use them.
PLACEHOLDER = re.compile(r"%\(\w+\)[sdif]|%[sdif]|\{\w*\}")


def project_python_files() -> list[Path]:
    return sorted(path for path in ROOT.rglob("*.py") if not SKIPPED_PARTS & set(path.relative_to(ROOT).parts))


def is_literal_text(node: ast.AST) -> bool:
    """A string the translation machinery never saw: "…", f"…", or "…" + … / "…" % …."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and bool(node.value.strip())
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp):
        return is_literal_text(node.left)
    return False


def untranslated_calls(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        where = f"{path.relative_to(root)}:{node.lineno}"
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "messages":
            if func.attr in MESSAGE_FUNCTIONS and len(node.args) >= 2 and is_literal_text(node.args[1]):
                found.append(f"{where} messages.{func.attr}")
            if func.attr == "add_message" and len(node.args) >= 3 and is_literal_text(node.args[2]):
                found.append(f"{where} messages.add_message")
        for keyword in node.keywords if path.name == "forms.py" else ():
            if keyword.arg in ("label", "help_text") and is_literal_text(keyword.value):
                found.append(f"{where} {keyword.arg}=")
    return found


def test_flash_messages_and_form_labels_never_take_a_bare_string():
    offenders = [hit for path in project_python_files() for hit in untranslated_calls(path)]

    assert offenders == []


def test_the_source_check_catches_bare_strings(tmp_path):
    """The check above would see an f-string message, a bare label and a concatenation."""
    sample = tmp_path / "forms.py"
    sample.write_text(
        'messages.success(request, f"Moved to {when}.")\n'
        'messages.error(request, "Nope." + extra)\n'
        'messages.info(request, _("Fine."))\n'
        'name = forms.CharField(label="Name", help_text=_("Fine."))\n'
    )
    found = untranslated_calls(sample, root=tmp_path)

    assert found == ["forms.py:1 messages.success", "forms.py:2 messages.error", "forms.py:4 label="]


def placeholders(text: str) -> Counter:
    return Counter(PLACEHOLDER.findall(text.replace("%%", "")))


@pytest.mark.parametrize("catalogue", CATALOGUES, ids=lambda path: path.name)
def test_every_msgid_has_hindi_with_the_same_placeholders(catalogue):
    with catalogue.open("rb") as source:
        messages = [message for message in read_po(source, locale="hi") if message.id]
    assert messages, f"{catalogue.name} is empty"

    problems = []
    for message in messages:
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(string.strip() for string in strings):
            problems.append(f"no Hindi: {ids[0]!r}")
            continue
        expected = placeholders(ids[-1])
        for string in strings:
            if placeholders(string) != expected and not (len(ids) > 1 and placeholders(string) == placeholders(ids[0])):
                problems.append(f"placeholders differ: {ids[0]!r} → {string!r}")

    assert problems == []
