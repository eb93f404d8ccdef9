"""The deployment files (Procfile, Dockerfile, docker-compose.yml, .env.example, deploy/) name
things that exist: the WSGI/ASGI applications, the Celery app, the settings module, management
commands, the health URL and the settings' environment variables. `scripts/check-deploy-files`
validates the nginx and compose syntax with the real tools."""

from __future__ import annotations

import importlib
import importlib.util
import re
import shlex
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands
from django.urls import resolve

ROOT = Path(__file__).resolve().parents[3]
APP_REF = re.compile(r"\b([a-z_][\w.]*):([a-z_]\w*)\b")


def procfile() -> dict[str, str]:
    lines = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split(":", 1) for line in lines)


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def compose_commands() -> dict[str, str]:
    return {name: " ".join(s["command"]) if isinstance(s.get("command"), list) else s.get("command", "") for name, s in compose()["services"].items()}


def all_commands() -> list[str]:
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [*procfile().values(), *compose_commands().values(), *re.findall(r"^(?:RUN|CMD)\s+(.*)$", dockerfile, re.M)]


def test_the_procfile_has_every_process_of_the_recipe():
    assert set(procfile()) == {"release", "web", "ws", "worker", "beat"}
    assert set(compose()["services"]) >= {"postgres", "redis", "web", "ws", "worker", "beat"}


def test_every_wsgi_and_asgi_application_named_imports():
    refs = {m for command in all_commands() if "gunicorn" in command or "daphne" in command for m in APP_REF.findall(command)}
    assert ("medimeet.wsgi", "application") in refs and ("medimeet.asgi", "application") in refs
    for module, attribute in refs:
        assert callable(getattr(importlib.import_module(module), attribute)), f"{module}:{attribute}"


def test_the_celery_app_named_is_the_projects():
    apps = {m for command in all_commands() for m in re.findall(r"celery -A (\S+)", command)}
    assert apps == {"medimeet"}
    from medimeet.celery import app

    assert importlib.import_module("medimeet").celery_app is app


def test_every_management_command_used_exists():
    used = {m for command in all_commands() for m in re.findall(r"manage\.py (\w+)", command)}
    assert used >= {"migrate", "collectstatic", "compile_catalogues", "check"}
    assert used <= set(get_commands())


def test_the_settings_module_named_exists():
    named = set(re.findall(r"DJANGO_SETTINGS_MODULE[=:]\s*(\S+)", (ROOT / "Dockerfile").read_text() + (ROOT / "docker-compose.yml").read_text()))
    assert named == {"medimeet.settings.production"}
    assert importlib.util.find_spec("medimeet.settings.production") is not None


def test_the_health_checks_probe_the_liveness_url():
    assert "deploy/healthcheck.py" in (ROOT / "Dockerfile").read_text()
    assert "/health/" in (ROOT / "deploy/healthcheck.py").read_text()
    assert resolve("/health/").url_name == "health"
    for name in ("postgres", "redis"):
        assert "healthcheck" in compose()["services"][name]
    for name in ("web", "ws", "worker", "beat"):
        conditions = {service: c["condition"] for service, c in compose()["services"][name]["depends_on"].items()}
        assert conditions == {"postgres": "service_healthy", "redis": "service_healthy", "release": "service_completed_successfully"}


def test_every_variable_of_the_example_env_is_read_by_the_settings():
    settings_source = "".join(p.read_text() for p in (ROOT / "medimeet/settings").glob("*.py"))
    example = [line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines() if re.match(r"^[A-Z_]+=", line)]
    compose_only = {"POSTGRES_PASSWORD", "WEB_CONCURRENCY"}  # read by docker-compose.yml / gunicorn's command
    unknown = [name for name in example if name not in compose_only and f'"{name}"' not in settings_source]
    assert unknown == []
    assert {"SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "ENVELOPE_MASTER_KEYS", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS"} <= set(example)


def test_the_proxy_sends_the_websocket_routes_to_daphne():
    from medimeet.routing import websocket_urlpatterns

    nginx = (ROOT / "deploy/nginx.conf").read_text()
    assert re.search(r"location /ws/ \{[^}]*proxy_pass http://daphne;[^}]*Upgrade", nginx)
    assert all(str(p.pattern).lstrip("^").startswith("ws/") for p in websocket_urlpatterns)
    turn = (ROOT / "deploy/coturn.conf").read_text()
    assert "use-auth-secret" in turn and "static-auth-secret=" in turn


@pytest.mark.parametrize("process", ["web", "ws"])
def test_procfile_and_compose_run_the_same_server(process):
    assert shlex.split(procfile()[process])[0] in compose_commands()[process]
