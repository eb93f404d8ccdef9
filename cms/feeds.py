"""RSS 2.0 and Atom 1.0 feeds of the latest live posts. Links are absolute from SITE_URL."""

from __future__ import annotations

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed
from django.utils.translation import gettext

from . import selectors
from .models import Post
from .seo import absolute

FEED_LENGTH = 20


class LatestPostsFeed(Feed):
    """In the reader's language (Accept-Language): the feed's own words, not the posts."""

    def title(self) -> str:
        return gettext("%(site)s health articles") % {"site": settings.SITE_NAME}

    def description(self) -> str:
        return gettext("Health advice written by our clinical team, and news about consulting doctors online.")

    def link(self) -> str:
        return absolute(reverse("cms:index"))

    def feed_url(self) -> str:
        return absolute(reverse("cms:feed-rss"))

    def items(self):
        return selectors.post_list()[:FEED_LENGTH]

    def item_title(self, item: Post) -> str:
        return item.title

    def item_description(self, item: Post) -> str:
        return item.excerpt

    def item_link(self, item: Post) -> str:
        return absolute(item.get_absolute_url())

    def item_guid(self, item: Post) -> str:
        return absolute(item.get_absolute_url())

    def item_pubdate(self, item: Post):
        return item.publish_at

    def item_updateddate(self, item: Post):
        return max(item.updated_at, item.publish_at)

    def item_author_name(self, item: Post) -> str:
        return item.author.get_full_name() or settings.SITE_NAME

    def item_categories(self, item: Post) -> list[str]:
        return [item.category.name, *(tag.name for tag in item.tags.all())]


class LatestPostsAtomFeed(LatestPostsFeed):
    feed_type = Atom1Feed

    def subtitle(self) -> str:
        return self.description()

    def feed_url(self) -> str:
        return absolute(reverse("cms:feed-atom"))
