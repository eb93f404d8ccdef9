"""Read-only API for the mobile apps: live posts (filterable by category and tag), a post, an
information page, categories and tags. Drafts, submitted and not-yet-due scheduled content
answer 404 exactly like a slug that does not exist."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from medimeet.core.api import ModelOutputSerializer, StandardPagination, error_responses, valid_input
from medimeet.core.errors import ApplicationError

from . import selectors
from .models import Category, MediaImage, Page, Post, Tag
from .seo import absolute, seo_for_page, seo_for_post


class CategoryOutput(ModelOutputSerializer):
    class Meta:
        model = Category
        fields = ["slug", "name", "description"]


class TagOutput(ModelOutputSerializer):
    class Meta:
        model = Tag
        fields = ["slug", "name"]


class ImageOutput(serializers.Serializer):
    url = serializers.SerializerMethodField()
    alt_text = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    srcset = serializers.SerializerMethodField(help_text="Absolute URLs of the resized copies with their widths, for srcset.")

    def get_url(self, image: MediaImage) -> str:
        return absolute(image.url)

    def get_srcset(self, image: MediaImage) -> str:
        return ", ".join(f"{absolute(part.rsplit(' ', 1)[0])} {part.rsplit(' ', 1)[1]}" for part in image.srcset.split(", "))


class SeoOutput(serializers.Serializer):
    title = serializers.CharField()
    description = serializers.CharField()
    canonical = serializers.URLField()
    image = serializers.CharField(help_text="Absolute URL of the sharing image, or empty.")


class PostCardOutput(serializers.Serializer):
    slug = serializers.SlugField()
    title = serializers.CharField()
    summary = serializers.CharField(source="excerpt")
    url = serializers.SerializerMethodField()
    category = CategoryOutput()
    tags = TagOutput(many=True)
    author_name = serializers.SerializerMethodField()
    published_at = serializers.DateTimeField(source="publish_at")
    updated_at = serializers.DateTimeField()
    reading_minutes = serializers.IntegerField()
    cover_image = ImageOutput(allow_null=True)

    def get_url(self, post: Post) -> str:
        return absolute(post.get_absolute_url())

    def get_author_name(self, post: Post) -> str:
        return post.author.get_full_name()


class PostDetailOutput(PostCardOutput):
    body = serializers.CharField(help_text="Sanitised HTML (headings, paragraphs, lists, links, images, quotes, tables).")
    seo = serializers.SerializerMethodField()

    @extend_schema_field(SeoOutput)
    def get_seo(self, post: Post) -> dict:
        return seo_output(seo_for_post(post))


def seo_output(seo) -> dict:
    return {"title": seo.title, "description": seo.description, "canonical": seo.canonical, "image": seo.image}


class PageOutput(serializers.Serializer):
    slug = serializers.SlugField()
    title = serializers.CharField()
    summary = serializers.CharField(source="excerpt")
    url = serializers.SerializerMethodField()
    body = serializers.CharField(help_text="Sanitised HTML.")
    updated_at = serializers.DateTimeField()
    seo = serializers.SerializerMethodField()

    def get_url(self, page: Page) -> str:
        return absolute(page.get_absolute_url())

    @extend_schema_field(SeoOutput)
    def get_seo(self, page: Page) -> dict:
        return seo_output(seo_for_page(page))


class PostListInput(serializers.Serializer):
    category = serializers.SlugField(required=False, help_text="Only posts in this category (its slug).")
    tag = serializers.SlugField(required=False, help_text="Only posts with this tag (its slug).")


class PostListView(APIView):
    permission_classes = [AllowAny]
    pagination_class = StandardPagination  # what drf-spectacular documents the 200 as: one page

    @extend_schema(tags=["content"], parameters=[PostListInput], responses={200: PostCardOutput(many=True), **error_responses(400)}, auth=[])
    def get(self, request):
        params = valid_input(PostListInput, request.query_params)
        # An unknown category or tag filters everything out (an empty page), as a search would.
        category = Category.objects.filter(slug=params["category"]).first() if "category" in params else None
        tag = Tag.objects.filter(slug=params["tag"]).first() if "tag" in params else None
        if ("category" in params and category is None) or ("tag" in params and tag is None):
            queryset = Post.objects.none()
        else:
            queryset = selectors.post_list(category=category, tag=tag)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(PostCardOutput(page, many=True).data)


class PostDetailView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(tags=["content"], responses={200: PostDetailOutput, **error_responses(404)}, auth=[])
    def get(self, request, slug: str):
        try:
            post = selectors.post_live_detail(slug=slug)
        except Post.DoesNotExist as exc:
            raise ApplicationError("CMS_001") from exc
        return Response(PostDetailOutput(post).data)


class PageDetailView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(tags=["content"], responses={200: PageOutput, **error_responses(404)}, auth=[])
    def get(self, request, slug: str):
        try:
            page = selectors.page_live_detail(slug=slug)
        except Page.DoesNotExist as exc:
            raise ApplicationError("CMS_002") from exc
        return Response(PageOutput(page).data)


class CategoryListView(APIView):
    """Categories with at least one live post."""

    permission_classes = [AllowAny]

    @extend_schema(tags=["content"], responses={200: CategoryOutput(many=True)}, auth=[])
    def get(self, request):
        return Response(CategoryOutput(selectors.categories_in_use(), many=True).data)


class TagListView(APIView):
    """Tags on at least one live post."""

    permission_classes = [AllowAny]

    @extend_schema(tags=["content"], responses={200: TagOutput(many=True)}, auth=[])
    def get(self, request):
        return Response(TagOutput(selectors.tags_in_use(), many=True).data)
