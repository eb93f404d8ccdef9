"""Reads for the public blog, information pages, feeds, sitemap and API: live content only."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from .models import Category, Page, Post, Tag

# Authors are shown by name only; nothing else about the account is loaded.
AUTHOR_FIELDS = ("author__first_name", "author__last_name", "author__email")


def post_list(*, category: Category | None = None, tag: Tag | None = None) -> QuerySet[Post]:
    """Live posts, newest first, with what a list shows loaded in a constant number of queries
    (one for the posts with author, category and cover; one for their tags)."""
    posts = (
        Post.objects.live()
        .select_related("author", "category", "cover_image")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")))
    )
    if category is not None:
        posts = posts.filter(category=category)
    if tag is not None:
        posts = posts.filter(tags=tag)
    return posts.order_by("-publish_at", "-pk")


def post_live_detail(*, slug: str) -> Post:
    """A live post with everything its page shows, or ``Post.DoesNotExist``."""
    return (
        Post.objects.live()
        .select_related("author", "category", "cover_image", "social_image")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")))
        .get(slug=slug)
    )


def post_related(*, post: Post, limit: int = 3) -> list[Post]:
    """Other live posts of the same category, newest first."""
    return list(post_list(category=post.category).exclude(pk=post.pk)[:limit])


def page_live_detail(*, slug: str) -> Page:
    return Page.objects.live().select_related("author", "social_image").get(slug=slug)


def categories_in_use() -> QuerySet[Category]:
    """Categories with at least one live post (for navigation)."""
    return Category.objects.filter(posts__in=Post.objects.live()).distinct().order_by("name")


def tags_in_use() -> QuerySet[Tag]:
    return Tag.objects.filter(posts__in=Post.objects.live()).distinct().order_by("name")
