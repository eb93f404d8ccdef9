"""``{% physician_seo doctor as seo %}`` (doctors' profile pages) and the ``jsonld`` filter."""

from __future__ import annotations

import json

from django import template
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.safestring import SafeString, mark_safe

from cms.seo import Seo, seo_for_doctor

register = template.Library()

# Inside <script>, "</script>" or "<!--" in a value would end or confuse the element: escape
# the characters that could start them (as Django's json_script does).
JSON_SCRIPT_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


@register.filter
def jsonld(data: dict) -> SafeString:
    return mark_safe(json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False).translate(JSON_SCRIPT_ESCAPES))


@register.simple_tag
def physician_seo(doctor) -> Seo:
    return seo_for_doctor(doctor)
