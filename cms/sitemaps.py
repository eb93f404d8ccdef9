"""sitemap.xml: the blog, live posts and pages, and every listed doctor's public profile.
Addresses use SITE_URL's scheme and host (not the request's), like the canonical links."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.sitemaps import Sitemap
from django.urls import reverse

from doctors.models import DoctorProfile

from .models import Page, Post


class SiteSitemap(Sitemap):
    def get_protocol(self, protocol=None) -> str:
        return urlsplit(settings.SITE_URL).scheme

    def get_domain(self, site=None) -> str:
        return urlsplit(settings.SITE_URL).netloc


class StaticPagesSitemap(SiteSitemap):
    changefreq = "daily"
    names = ("home", "doctors:search", "cms:index")

    def items(self):
        return self.names

    def location(self, item: str) -> str:
        return reverse(item)


class PostSitemap(SiteSitemap):
    changefreq = "weekly"

    def items(self):
        return Post.objects.live().only("slug", "updated_at", "publish_at").order_by("-publish_at", "pk")

    def lastmod(self, item: Post):
        return max(item.updated_at, item.publish_at)


class PageSitemap(PostSitemap):
    changefreq = "monthly"

    def items(self):
        return Page.objects.live().only("slug", "updated_at", "publish_at").order_by("slug")


class DoctorSitemap(SiteSitemap):
    changefreq = "weekly"

    def items(self):
        return DoctorProfile.objects.listed().only("slug", "updated_at").order_by("slug")

    def location(self, item: DoctorProfile) -> str:
        return reverse("doctors:detail", args=[item.slug])

    def lastmod(self, item: DoctorProfile):
        return item.updated_at


SITEMAPS = {"site": StaticPagesSitemap, "posts": PostSitemap, "pages": PageSitemap, "doctors": DoctorSitemap}
