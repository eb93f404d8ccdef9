"""Search and sharing metadata for public pages: the canonical address, Open Graph and Twitter
cards, and schema.org JSON-LD (``Article`` for posts, ``Physician`` for doctors' profiles).

Every address here is absolute and built from ``SITE_URL``, never from the request's Host
header, so a canonical URL cannot be steered by whoever sends the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.templatetags.static import static
from django.urls import reverse

from .models import Page, Post


def absolute(url: str) -> str:
    return url if url.startswith(("http://", "https://")) else f"{settings.SITE_URL}{url}"


@dataclass(frozen=True)
class Seo:
    title: str
    description: str
    canonical: str
    og_type: str = "website"
    image: str = ""
    image_alt: str = ""
    published: datetime | None = None
    modified: datetime | None = None
    section: str = ""
    tags: list[str] = field(default_factory=list)
    json_ld: dict[str, Any] | None = None


def _publisher() -> dict[str, Any]:
    return {
        "@type": "Organization",
        "name": settings.SITE_NAME,
        "url": f"{settings.SITE_URL}/",
        "logo": {"@type": "ImageObject", "url": absolute(static("img/logo.svg"))},
    }


def _person(user) -> dict[str, str]:
    return {"@type": "Person", "name": user.get_full_name() or settings.SITE_NAME}


def seo_for_listing(*, title: str, description: str, path: str) -> Seo:
    return Seo(title=title, description=description, canonical=absolute(path))


def seo_for_post(post: Post) -> Seo:
    image = post.social_image or post.cover_image
    canonical = post.canonical_url or absolute(post.get_absolute_url())
    title = post.seo_title or post.title
    json_ld: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "Article",
        "headline": post.title[:110],
        "description": post.description,
        "datePublished": post.publish_at.isoformat(),
        "dateModified": max(post.updated_at, post.publish_at).isoformat(),
        "author": _person(post.author),
        "publisher": _publisher(),
        "mainEntityOfPage": {"@type": "WebPage", "@id": canonical},
        "articleSection": post.category.name,
        "keywords": [tag.name for tag in post.tags.all()],
        "inLanguage": settings.LANGUAGE_CODE,
    }
    if image:
        json_ld["image"] = [absolute(image.url)]
    return Seo(
        title=title,
        description=post.description,
        canonical=canonical,
        og_type="article",
        image=absolute(image.url) if image else "",
        image_alt=image.alt_text if image else "",
        published=post.publish_at,
        modified=max(post.updated_at, post.publish_at),
        section=post.category.name,
        tags=json_ld["keywords"],
        json_ld=json_ld,
    )


def seo_for_page(page: Page) -> Seo:
    canonical = page.canonical_url or absolute(page.get_absolute_url())
    image = page.social_image
    return Seo(
        title=page.seo_title or page.title,
        description=page.description,
        canonical=canonical,
        image=absolute(image.url) if image else "",
        image_alt=image.alt_text if image else "",
        json_ld={
            "@context": "https://schema.org",
            "@type": "WebPage",
            "name": page.title,
            "description": page.description,
            "url": canonical,
            "dateModified": page.updated_at.isoformat(),
            "publisher": _publisher(),
        },
    )


def seo_for_doctor(doctor) -> Seo:
    """A listed doctor's public profile as a schema.org ``Physician``."""
    canonical = absolute(reverse("doctors:detail", args=[doctor.slug]))
    specializations = [doctor.primary_specialization.name, *(s.name for s in doctor.secondary_specializations.all())]
    description = f"{doctor.display_name}, {doctor.primary_specialization.name}" + (f" in {doctor.city}" if doctor.city else "") + f". Licence verified by {settings.SITE_NAME}."
    picture = absolute(doctor.user.picture.url) if doctor.user.picture else ""
    json_ld: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "Physician",
        "name": doctor.display_name,
        "url": canonical,
        "description": description,
        "knowsAbout": specializations,
        "knowsLanguage": [language.name for language in doctor.languages.all()],
    }
    if picture:
        json_ld["image"] = picture
    if doctor.city or doctor.country or doctor.clinic_address:
        address = {"@type": "PostalAddress", "streetAddress": doctor.clinic_address, "addressLocality": doctor.city, "addressCountry": doctor.country}
        json_ld["address"] = {key: value for key, value in address.items() if value}
    if doctor.rating_count:
        json_ld["aggregateRating"] = {"@type": "AggregateRating", "ratingValue": f"{doctor.rating_average:.1f}", "reviewCount": doctor.rating_count, "bestRating": "5", "worstRating": "1"}
    return Seo(title=f"{doctor.display_name}, {doctor.primary_specialization.name}", description=description, canonical=canonical, og_type="profile", image=picture, image_alt="" if not picture else doctor.display_name, json_ld=json_ld)
