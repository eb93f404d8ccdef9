from __future__ import annotations

from datetime import timedelta

import factory
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.tests.factories import StaffFactory
from cms.models import Category, Content, Page, Post, Tag


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Tag {n}")
    slug = factory.Sequence(lambda n: f"tag-{n}")


class PostFactory(factory.django.DjangoModelFactory):
    """A published post (an hour ago) unless told otherwise."""

    class Meta:
        model = Post

    title = factory.Sequence(lambda n: f"Post number {n}")
    slug = factory.Sequence(lambda n: f"post-{n}")
    summary = "A short summary for lists."
    body = "<p>Drink water and rest.</p>"
    author = factory.SubFactory(StaffFactory)
    category = factory.SubFactory(CategoryFactory)
    status = Content.Status.PUBLISHED
    publish_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))


class PageFactory(PostFactory):
    class Meta:
        model = Page

    category = None

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        kwargs.pop("category", None)
        return super()._create(model_class, *args, **kwargs)


def role(name: str) -> Group:
    """The role group (``medimeet.core.roles``, kept in step after every migrate and flush)."""
    return Group.objects.get(name=name)


def author(**kwargs):
    user = StaffFactory(**kwargs)
    user.groups.add(role("author"))
    return user


def editor(**kwargs):
    user = StaffFactory(**kwargs)
    user.groups.add(role("content editor"))
    return user
