"""Author vs editor: authors write drafts and submit them; content editors schedule, publish and
unpublish. Through the services and through the admin (the "author" / "content editor" groups
created by the data migration)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.tests.factories import StaffFactory, UserFactory
from cms import services
from cms.models import Content, Post
from medimeet.core.errors import ApplicationError
from medimeet.core.models import AuditEvent

from .factories import CategoryFactory, PostFactory, author, editor

pytestmark = pytest.mark.django_db


def signed_in(client, user):
    Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "unused"})
    client.force_login(user)
    return client


def draft_by(user, **kwargs) -> Post:
    return PostFactory(author=user, status=Content.Status.DRAFT, publish_at=None, **kwargs)


def test_the_data_migration_creates_both_roles_with_their_permissions():
    author_perms = set(Group.objects.get(name="author").permissions.values_list("codename", flat=True))
    editor_perms = set(Group.objects.get(name="content editor").permissions.values_list("codename", flat=True))

    assert {"add_post", "change_post", "add_mediaimage", "view_category"} <= author_perms
    assert not {"publish_post", "publish_page", "delete_post", "add_category"} & author_perms
    assert author_perms < editor_perms
    assert {"publish_post", "publish_page", "add_category", "add_tag", "delete_post"} <= editor_perms


def test_author_submits_their_draft_for_review():
    writer = author()
    post = draft_by(writer)

    services.content_submit(content=post, by=writer)

    post.refresh_from_db()
    assert (post.status, post.publish_at) == ("review", None)
    assert AuditEvent.objects.filter(action="cms.post_submitted", actor=writer).count() == 1


@pytest.mark.parametrize("who", ["another author", "patient"])
def test_only_the_author_or_an_editor_submits_a_draft(who):
    post = draft_by(author())
    other = author() if who == "another author" else UserFactory()

    with pytest.raises(ApplicationError) as error:
        services.content_submit(content=post, by=other)

    post.refresh_from_db()
    assert error.value.code == "CMS_005"
    assert post.status == "draft"


@pytest.mark.parametrize("move", [services.content_publish, services.content_unpublish])
def test_an_author_cannot_publish_or_unpublish(move):
    writer = author()
    post = PostFactory(author=writer, status=Content.Status.REVIEW, publish_at=None)

    with pytest.raises(ApplicationError) as error:
        move(content=post, by=writer)

    post.refresh_from_db()
    assert error.value.code == "CMS_004"
    assert (post.status, post.publish_at, post.published_by) == ("review", None, None)
    assert not AuditEvent.objects.filter(action__startswith="cms.post_").exists()


def test_editor_publishes_now_when_no_time_is_set():
    boss = editor()
    post = PostFactory(status=Content.Status.REVIEW, publish_at=None)

    services.content_publish(content=post, by=boss)

    post.refresh_from_db()
    assert (post.status, post.published_by) == ("published", boss)
    assert abs(post.publish_at - timezone.now()) < timedelta(seconds=5)
    assert post in Post.objects.live()


def test_editor_schedules_for_a_future_time():
    boss = editor()
    post = PostFactory(status=Content.Status.REVIEW, publish_at=None)
    when = timezone.now() + timedelta(days=2)

    services.content_publish(content=post, by=boss, publish_at=when)

    post.refresh_from_db()
    assert (post.status, post.publish_at) == ("scheduled", when)
    assert post not in Post.objects.live()


def test_editor_unpublishes_back_to_draft():
    boss = editor()
    post = PostFactory()

    services.content_unpublish(content=post, by=boss)

    post.refresh_from_db()
    assert (post.status, post.publish_at) == ("draft", None)
    assert not Post.objects.live().exists()


def test_live_content_without_a_publish_time_is_refused_by_the_database():
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        PostFactory(status=Content.Status.PUBLISHED, publish_at=None)


# --- In the admin ---------------------------------------------------------------------------


def admin_post_data(category, **overrides) -> dict:
    return {
        "title": "Managing high blood pressure",
        "slug": "managing-high-blood-pressure",
        "category": category.pk,
        "summary": "",
        "body": '<p onclick="x()">Measure it at home.</p><script>alert(1)</script>',
        "seo_title": "",
        "meta_description": "",
        "canonical_url": "",
        **overrides,
    }


def test_author_creates_and_submits_a_draft_in_the_admin_and_the_body_is_cleaned(client):
    writer = author()
    category = CategoryFactory()
    signed_in(client, writer)

    response = client.post("/admin/cms/post/add/", admin_post_data(category, _submit_review="1", publish_at_0="2030-01-01", publish_at_1="09:00"))

    post = Post.objects.get()
    assert response.status_code == 302
    assert (post.author, post.status, post.publish_at) == (writer, "review", None)  # an author cannot set the publish time
    assert post.body == "<p>Measure it at home.</p>"


def test_an_author_cannot_publish_from_the_admin(client):
    writer = author()
    post = draft_by(writer, category=CategoryFactory())
    signed_in(client, writer)

    button = client.post(f"/admin/cms/post/{post.pk}/change/", admin_post_data(post.category, slug=post.slug, title=post.title, _publish="1"), follow=True)
    action = client.post("/admin/cms/post/", {"action": "publish_selected", "_selected_action": [post.pk]}, follow=True)

    post.refresh_from_db()
    assert "Only content editors can schedule, publish or unpublish." in button.content.decode()
    assert "No action selected." in action.content.decode()  # the action is not offered to authors
    assert post.status == "draft"
    assert not Post.objects.live().exists()


def test_an_author_cannot_edit_a_submitted_post_but_an_editor_can(client):
    writer = author()
    post = PostFactory(author=writer, status=Content.Status.REVIEW, publish_at=None)
    signed_in(client, writer)

    refused = client.post(f"/admin/cms/post/{post.pk}/change/", admin_post_data(post.category, slug=post.slug, title="Changed by the author"))
    client.logout()
    signed_in(client, editor())
    accepted = client.post(f"/admin/cms/post/{post.pk}/change/", admin_post_data(post.category, slug=post.slug, title="Changed by the editor"))

    post.refresh_from_db()
    assert refused.status_code == 403
    assert accepted.status_code == 302
    assert post.title == "Changed by the editor"


def test_editor_schedules_from_the_admin_with_a_publish_time(client):
    post = PostFactory(status=Content.Status.REVIEW, publish_at=None)
    signed_in(client, editor())

    client.post(f"/admin/cms/post/{post.pk}/change/", admin_post_data(post.category, slug=post.slug, title=post.title, publish_at_0="2099-05-01", publish_at_1="08:30:00", _publish="1"))

    post.refresh_from_db()
    assert (post.status, post.publish_at.isoformat()) == ("scheduled", "2099-05-01T08:30:00+00:00")


def test_editor_publishes_selected_posts_with_the_admin_action(client):
    posts = [PostFactory(status=Content.Status.REVIEW, publish_at=None) for _ in range(2)]
    signed_in(client, editor())

    client.post("/admin/cms/post/", {"action": "publish_selected", "_selected_action": [p.pk for p in posts]})

    assert sorted(Post.objects.values_list("status", flat=True)) == ["published", "published"]


def test_staff_without_a_cms_role_cannot_open_the_cms_admin(client):
    signed_in(client, StaffFactory())

    response = client.get("/admin/cms/post/")

    assert response.status_code == 403
