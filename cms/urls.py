from django.contrib.sitemaps.views import sitemap
from django.urls import path

from . import api, views
from .feeds import LatestPostsAtomFeed, LatestPostsFeed
from .sitemaps import SITEMAPS

page_patterns = [
    path("blog/", views.blog_index, name="index"),
    path("blog/feed/", LatestPostsFeed(), name="feed-rss"),
    path("blog/feed/atom/", LatestPostsAtomFeed(), name="feed-atom"),
    path("blog/category/<slug:slug>/", views.blog_category, name="category"),
    path("blog/tag/<slug:slug>/", views.blog_tag, name="tag"),
    path("blog/<slug:slug>/", views.post_detail, name="post"),
    path("pages/<slug:slug>/", views.page_detail, name="page"),
]

# At the site's root, outside the "cms" namespace (crawlers look for them there).
root_patterns = [
    path("robots.txt", views.robots_txt, name="robots-txt"),
    path("sitemap.xml", sitemap, {"sitemaps": SITEMAPS}, name="sitemap"),
]

api_patterns = [
    path("cms/posts/", api.PostListView.as_view(), name="cms-posts"),
    path("cms/posts/<slug:slug>/", api.PostDetailView.as_view(), name="cms-post"),
    path("cms/pages/<slug:slug>/", api.PageDetailView.as_view(), name="cms-page"),
    path("cms/categories/", api.CategoryListView.as_view(), name="cms-categories"),
    path("cms/tags/", api.TagListView.as_view(), name="cms-tags"),
]
