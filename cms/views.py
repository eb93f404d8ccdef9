"""Public pages: the blog (all posts, by category, by tag), a post, an information page, robots.txt."""

from __future__ import annotations

from django.conf import settings
from django.core.paginator import InvalidPage, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from . import selectors
from .models import Category, Page, Post, Tag
from .seo import seo_for_listing, seo_for_page, seo_for_post

PAGE_SIZE = 9
BLOG_DESCRIPTION = gettext_lazy("Clear, practical health advice from doctors: symptoms, prevention, living with long-term conditions and getting the most from a video consultation.")


def _not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "404.html", status=404)


def _listing(request: HttpRequest, posts: QuerySet[Post], *, heading: str, description: str, path: str, eyebrow: str = "", current: Category | None = None) -> HttpResponse:
    paginator = Paginator(posts, PAGE_SIZE)
    try:
        page = paginator.page(request.GET.get("page") or 1)
    except InvalidPage:
        return _not_found(request)
    canonical_path = path if page.number == 1 else f"{path}?page={page.number}"
    return render(
        request,
        "cms/blog_list.html",
        {
            "page": page,
            "posts": page.object_list,
            "heading": heading,
            "eyebrow": eyebrow,
            "intro": description,
            "categories": selectors.categories_in_use(),
            "current_category": current,
            "seo": seo_for_listing(title=heading if page.number == 1 else gettext("%(heading)s (page %(number)d)") % {"heading": heading, "number": page.number}, description=description, path=canonical_path),
        },
    )


@require_GET
def blog_index(request: HttpRequest) -> HttpResponse:
    return _listing(request, selectors.post_list(), heading=gettext("Health articles"), description=BLOG_DESCRIPTION, path=reverse("cms:index"))


@require_GET
def blog_category(request: HttpRequest, slug: str) -> HttpResponse:
    category = Category.objects.filter(slug=slug).first()
    if category is None:
        return _not_found(request)
    description = category.description or gettext("Articles about %(category)s from %(site)s's doctors.") % {"category": category.name.lower(), "site": settings.SITE_NAME}
    return _listing(request, selectors.post_list(category=category), heading=category.name, eyebrow=gettext("Category"), description=description, path=category.get_absolute_url(), current=category)


@require_GET
def blog_tag(request: HttpRequest, slug: str) -> HttpResponse:
    tag = Tag.objects.filter(slug=slug).first()
    if tag is None:
        return _not_found(request)
    description = gettext("Articles tagged “%(tag)s” from %(site)s's doctors.") % {"tag": tag.name, "site": settings.SITE_NAME}
    return _listing(request, selectors.post_list(tag=tag), heading=tag.name, eyebrow=gettext("Topic"), description=description, path=tag.get_absolute_url())


@require_GET
def post_detail(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        post = selectors.post_live_detail(slug=slug)
    except Post.DoesNotExist:
        return _not_found(request)
    return render(request, "cms/post_detail.html", {"post": post, "related": selectors.post_related(post=post), "seo": seo_for_post(post)})


@require_GET
def page_detail(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        page = selectors.page_live_detail(slug=slug)
    except Page.DoesNotExist:
        return _not_found(request)
    return render(request, "cms/page_detail.html", {"content": page, "seo": seo_for_page(page)})


# Private areas stay out of search results; the sitemap lists what should be in them.
ROBOTS_DISALLOW = ("/admin/", "/account/", "/accounts/", "/api/", "/portal/", "/appointments/", "/consultations/", "/recordings/", "/payments/", "/calendar/", "/doctors/invitation/")


@require_GET
@cache_control(max_age=3600, public=True)
def robots_txt(request: HttpRequest) -> HttpResponse:
    lines = ["User-agent: *", *(f"Disallow: {path}" for path in ROBOTS_DISALLOW), "", f"Sitemap: {settings.SITE_URL}{reverse('sitemap')}", ""]
    return HttpResponse("\n".join(lines), content_type="text/plain; charset=utf-8")
