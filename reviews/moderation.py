"""Automated screening of review (and reply) text, in English and Hindi (Devanagari and
romanised), before anything is published.

Each rule gives a verdict: ``reject`` (abusive language; spam that advertises a contact),
``hold`` (profanity, personal data such as phone numbers and email addresses, links, spam
patterns — a person looks at it) or nothing. The strictest verdict wins; no match approves.
Lists are deliberately short and conservative: the filter decides what a moderator sees
first, it does not replace one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

APPROVE, HOLD, REJECT = "approve", "hold", "reject"

# Slurs and abuse aimed at a person: published never, whatever else the review says.
ABUSIVE_LATIN = ["fuck", "fucking", "fucker", "motherfucker", "cunt", "bitch", "bastard", "asshole", "slut", "whore", "retard",
                 "madarchod", "maderchod", "behenchod", "bhenchod", "benchod", "chutiya", "chutia", "randi", "bhosdike", "gaandu", "harami"]
ABUSIVE_DEVANAGARI = ["मादरचोद", "बहनचोद", "भेनचोद", "चूतिया", "चुतिया", "रंडी", "भोसडीके", "गांडू", "हरामी", "हरामज़ादा", "हरामजादा"]
# Rude but not necessarily abusive: a moderator decides.
PROFANE_LATIN = ["shit", "crap", "damn", "idiot", "stupid", "moron", "quack", "kamina", "kameena", "kutta", "kutte", "gadha", "ullu", "bakwas", "nalayak"]
PROFANE_DEVANAGARI = ["कमीना", "कमीने", "कुत्ता", "कुत्ते", "गधा", "उल्लू", "बकवास", "नालायक", "बेवकूफ़", "बेवकूफ"]
PROMOTIONAL = ["whatsapp", "call now", "call me", "contact me", "discount", "promo code", "coupon", "click here", "earn money", "best price", "dm me",
               "संपर्क करें", "कॉल करें", "व्हाट्सएप", "छूट"]

LEET = str.maketrans({"@": "a", "4": "a", "0": "o", "1": "i", "!": "i", "3": "e", "$": "s", "5": "s", "7": "t", "*": "u"})
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
EMAIL_SPELLED = re.compile(r"\b\w+\s*(?:\(at\)|\[at\]|\sat\s)\s*\w+\s*(?:\(dot\)|\[dot\]|\sdot\s)\s*(?:com|in|org|net|co)\b", re.IGNORECASE)
PHONE_CANDIDATE = re.compile(r"\+?\d[\d\s\-().]{7,}\d")
DATE = re.compile(r"\b\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}\b")
# Bare domains only in lower case, so "came in.In the end" is not a link.
LINK = re.compile(r"(?i:https?://|www\.)|\b[a-z0-9-]{2,}\.(?:com|in|net|org|io|co|info|xyz|biz|ly|me|app)\b")
REPEATED_CHARACTER = re.compile(r"(.)\1{5,}")
REPEATED_WORD = re.compile(r"\b(\w+)(?:\W+\1\b){4,}", re.IGNORECASE)

REASONS = {
    "abusive_language": "The review contains abusive language.",
    "profanity": "The review contains language a moderator needs to check.",
    "personal_data": "The review contains personal information such as a phone number or an email address.",
    "link": "The review contains a link.",
    "spam": "The review looks like advertising or spam.",
}


@dataclass(frozen=True)
class Screening:
    outcome: str  # approve, hold, reject
    rules: tuple[str, ...]

    @property
    def reason(self) -> str:
        return " ".join(REASONS[rule] for rule in self.rules)


def _digits(text: str) -> str:
    """Devanagari (and any other Unicode) digits as ASCII, so ९८७६५४३२१० is a phone number."""
    return "".join(str(unicodedata.digit(ch)) if ch.isdigit() else ch for ch in text)


def _words(text: str) -> set[str]:
    """Latin words, lower-cased, with leetspeak undone and long letter runs squeezed (fuuuck)."""
    normalised = re.sub(r"(\w)\1{2,}", r"\1", text.lower().translate(LEET))
    return set(re.findall(r"[a-z]+", normalised)) | set(re.findall(r"[a-z]+", re.sub(r"(\w)\1+", r"\1", normalised)))


def _has_phone(text: str) -> bool:
    without_dates = DATE.sub(" ", _digits(text))
    return any(len(re.sub(r"\D", "", match)) >= 10 for match in PHONE_CANDIDATE.findall(without_dates))


def _shouting(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha() and ch.isascii()]
    return len(letters) >= 20 and sum(ch.isupper() for ch in letters) / len(letters) >= 0.7


def review_screen(text: str) -> Screening:
    """The automated verdict on ``text`` and the rules it matched (codes of ``REASONS``)."""
    words = _words(text)
    lowered = text.lower()
    rules: list[str] = []
    verdicts: list[str] = []

    def match(rule: str, verdict: str) -> None:
        rules.append(rule)
        verdicts.append(verdict)

    if words & set(ABUSIVE_LATIN) or any(word in text for word in ABUSIVE_DEVANAGARI):
        match("abusive_language", REJECT)
    elif words & set(PROFANE_LATIN) or any(word in text for word in PROFANE_DEVANAGARI):
        match("profanity", HOLD)
    contact = EMAIL.search(text) is not None or EMAIL_SPELLED.search(text) is not None or _has_phone(text)
    if contact:
        match("personal_data", HOLD)
    link = LINK.search(EMAIL.sub(" ", text)) is not None  # an email address is not also a link
    if link:
        match("link", HOLD)
    promotional = any(phrase in lowered for phrase in PROMOTIONAL)
    if promotional and (contact or link):
        match("spam", REJECT)
    elif promotional or REPEATED_CHARACTER.search(text) or REPEATED_WORD.search(text) or _shouting(text):
        match("spam", HOLD)
    outcome = REJECT if REJECT in verdicts else HOLD if verdicts else APPROVE
    return Screening(outcome=outcome, rules=tuple(rules))
