"""Platform settings that staff change in the admin without a deploy (django-constance, database
backend; ``CONSTANCE_CONFIG`` in settings lists them with their defaults and help texts).

Everything that reads one goes through a function here, which parses the stored value and, if
it is unusable (written from a shell, or an older format), logs it and falls back to the
built-in default: a bad value never breaks booking or checkout. The admin form refuses bad
values in the first place through the form fields below (``CONSTANCE_ADDITIONAL_FIELDS``), and
they parse with the same functions as the readers, so what the form accepts is what runs.

Environment-specific values (keys, secrets, addresses of services) are not here: they stay in
environment variables (docs/architecture.md).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from constance import config
from constance.utils import get_values_for_keys
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger("medimeet.platform")

GATEWAYS = ("stripe", "razorpay", "sandbox")
COUNTRY = re.compile(r"^[A-Z]{2}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
PHONE = re.compile(r"^\+[1-9][\d ]{7,20}$")


def _default(name: str):
    return settings.CONSTANCE_CONFIG[name][0]


def _items(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,;\n]", text or "") if part.strip()]


# --- Parsers: text as staff write it → the value the code uses (ValidationError when unusable) ---


def cancellation_policy_parse(text: str) -> list[dict]:
    """ "24:100, 2:50, 0:0" → [{"min_hours": 24, "refund_percent": 100}, …], most notice first."""
    tiers = []
    for item in _items(text):
        match = re.fullmatch(r"(\d{1,3})\s*:\s*(\d{1,3})", item)
        if not match or not 0 <= int(match.group(1)) <= 24 * 30 or not 0 <= int(match.group(2)) <= 100:
            raise ValidationError(_("Write each tier as hours:percent, hours 0–720 and percent 0–100, e.g. 24:100, 2:50, 0:0."))
        tiers.append({"min_hours": int(match.group(1)), "refund_percent": int(match.group(2))})
    if not tiers or len({t["min_hours"] for t in tiers}) != len(tiers):
        raise ValidationError(_("Give at least one tier, each with different hours."))
    return sorted(tiers, key=lambda t: t["min_hours"], reverse=True)


def reminder_offsets_parse(text: str) -> list[int]:
    from .notifications.forms import offsets_parse

    return sorted(set(offsets_parse(text)), reverse=True)


def currencies_parse(text: str) -> list[str]:
    from doctors.models import CURRENCY_EXPONENTS

    codes = [item.upper() for item in _items(text)]
    unknown = [code for code in codes if code not in CURRENCY_EXPONENTS]
    if unknown or not codes:
        raise ValidationError(_("Use currencies the platform knows: %(known)s."), params={"known": ", ".join(CURRENCY_EXPONENTS)})
    return list(dict.fromkeys(codes))


def gateway_routes_parse(text: str) -> dict[str, str]:
    """ "IN=razorpay, INR=razorpay, *=stripe" → {"IN": "razorpay", "INR": "razorpay", "*": "stripe"}."""
    from doctors.models import CURRENCY_EXPONENTS

    routes: dict[str, str] = {}
    for item in _items(text):
        key, _sep, gateway = (part.strip() for part in item.partition("="))
        key, gateway = key.upper(), gateway.lower()
        if not (key == "*" or COUNTRY.match(key) or key in CURRENCY_EXPONENTS) or gateway not in GATEWAYS or key in routes:
            raise ValidationError(
                _("Write each route as COUNTRY=gateway, CURRENCY=gateway or *=gateway, once each; gateways: %(gateways)s."), params={"gateways": ", ".join(GATEWAYS)}
            )
        routes[key] = gateway
    if "*" not in routes:
        raise ValidationError(_("Say which gateway takes everything else, e.g. *=stripe."))
    return routes


@dataclass(frozen=True)
class TaxRule:
    name: str
    rate: Decimal  # percent, included in the price


def tax_rules_parse(text: str) -> dict[str, TaxRule]:
    """ "IN=GST:18, GB=VAT:20" → {"IN": TaxRule("GST", Decimal("18")), …}."""
    rules: dict[str, TaxRule] = {}
    for item in _items(text):
        match = re.fullmatch(r"([A-Za-z]{2})\s*=\s*([^:=]{1,20}?)\s*:\s*(\d{1,2}(?:\.\d{1,2})?)\s*%?", item)
        try:
            rate = Decimal(match.group(3)) if match else None
        except InvalidOperation:
            rate = None
        if rate is None or not 0 <= rate < 100 or match.group(1).upper() in rules:
            raise ValidationError(_("Write each rule as COUNTRY=NAME:RATE, once per country, the rate a percent below 100 with up to two decimals, e.g. IN=GST:18."))
        rules[match.group(1).upper()] = TaxRule(name=match.group(2).strip(), rate=rate)
    return rules


# --- Admin form fields (CONSTANCE_ADDITIONAL_FIELDS): refuse what the parsers refuse ----------


class _ParsedTextField(forms.CharField):
    parse = staticmethod(lambda text: text)

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.TextInput(attrs={"size": 60}))
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        self.parse(value)  # raises ValidationError: the admin shows it next to the field, nothing is saved
        return value.strip()


class CancellationPolicyField(_ParsedTextField):
    parse = staticmethod(cancellation_policy_parse)


class ReminderOffsetsField(_ParsedTextField):
    parse = staticmethod(reminder_offsets_parse)

    def __init__(self, **kwargs):
        super().__init__(required=False, **kwargs)


class CurrenciesField(_ParsedTextField):
    parse = staticmethod(currencies_parse)


class GatewayRoutesField(_ParsedTextField):
    parse = staticmethod(gateway_routes_parse)


class TaxRulesField(_ParsedTextField):
    parse = staticmethod(tax_rules_parse)

    def __init__(self, **kwargs):
        super().__init__(required=False, **kwargs)


class PhoneField(forms.CharField):
    def __init__(self, **kwargs):
        super().__init__(required=False, max_length=30, **kwargs)

    def clean(self, value):
        value = super().clean(value).strip()
        if value and not PHONE.match(value):
            raise ValidationError(_("Write the number in international form, e.g. +91 80 1234 5678."))
        return value


# --- Readers --------------------------------------------------------------------------------


def _raw(name: str):
    """The stored value (cache, then database), or the default. Through the backend rather than
    ``config.NAME``, which hands out an awaitable proxy in a thread with a running event loop."""
    value = config._backend.get(name)
    return _default(name) if value is None else value


def _parsed(name: str, parse):
    raw = _raw(name)
    try:
        return parse(raw)
    except (ValidationError, TypeError, ValueError):
        logger.warning("platform setting %s is not usable; the built-in default applies", name)
        return parse(_default(name))


def hold_minutes() -> int:
    """How long a booking hold lasts (BOOKING_HOLD_MINUTES)."""
    value = _raw("BOOKING_HOLD_MINUTES")
    if not isinstance(value, int) or not 1 <= value <= 120:
        logger.warning("platform setting BOOKING_HOLD_MINUTES is not usable; the built-in default applies")
        return _default("BOOKING_HOLD_MINUTES")
    return value


def cancellation_policy_default() -> list[dict]:
    """The refund tiers for doctors who have not set their own."""
    return _parsed("CANCELLATION_POLICY", cancellation_policy_parse)


def reminder_offsets_default() -> list[int]:
    """Minutes before an appointment at which people who never chose are reminded."""
    return _parsed("REMINDER_OFFSETS", reminder_offsets_parse)


def payment_currencies() -> list[str]:
    return _parsed("PAYMENT_CURRENCIES", currencies_parse)


def gateway_route(*, currency: str, billing_country: str = "") -> str:
    """The gateway the routes name for this billing country, else this currency, else "*"."""
    routes = _parsed("PAYMENT_GATEWAY_ROUTES", gateway_routes_parse)
    return routes.get((billing_country or "").upper()) or routes.get((currency or "").upper()) or routes["*"]


def tax_rule(country: str) -> TaxRule | None:
    return _parsed("TAX_RULES", tax_rules_parse).get((country or "").upper())


SITE_KEYS = ["MAINTENANCE_BANNER_ENABLED", "MAINTENANCE_BANNER_TEXT", "SUPPORT_EMAIL", "SUPPORT_PHONE"]


@dataclass(frozen=True)
class SiteNotice:
    maintenance: str  # the banner's text while it is switched on, else ""
    support_email: str
    support_phone: str


def site_notice() -> SiteNotice:
    """What every page, email and app shows: the maintenance banner and the support contact
    (from Redis when constance caches there, else one query)."""
    cached = getattr(config._backend, "_cache", None) is not None
    values = {name: _raw(name) for name in SITE_KEYS} if cached else get_values_for_keys(SITE_KEYS)
    text = str(values["MAINTENANCE_BANNER_TEXT"] or "").strip()
    return SiteNotice(
        maintenance=text if values["MAINTENANCE_BANNER_ENABLED"] is True and text else "",
        support_email=str(values["SUPPORT_EMAIL"] or ""),
        support_phone=str(values["SUPPORT_PHONE"] or ""),
    )


def site_notice_or_default() -> SiteNotice:
    """``site_notice()`` for pages that must render whatever happens (the base layout, error
    pages): the defaults when the database cannot answer."""
    try:
        return site_notice()
    except Exception:  # an error page must not fail on its footer
        logger.warning("platform settings unreadable; the defaults are shown")
        return SiteNotice(maintenance="", support_email=str(_default("SUPPORT_EMAIL")), support_phone=str(_default("SUPPORT_PHONE")))


def platform_defaults_ensure(**kwargs) -> None:
    """post_migrate: store every setting that has no row yet with its default, so reading one
    never writes (constance stores a missing default on first read) and the admin lists them."""
    from constance.codecs import dumps
    from constance.models import Constance
    from django.db import DatabaseError

    try:
        stored = set(Constance.objects.values_list("key", flat=True))
        missing = [Constance(key=name, value=dumps(options[0])) for name, options in settings.CONSTANCE_CONFIG.items() if name not in stored]
        Constance.objects.bulk_create(missing, ignore_conflicts=True)
    except DatabaseError:  # constance's table not migrated in this database (a partial migrate)
        return
