"""The CMS list actions on posts and pages, each run by the role that owns it: an author submits
their drafts for review, a content editor unpublishes. Authors are not offered unpublishing; roles outside the
CMS get 403."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from cms.models import Content, Post
from medimeet.core import roles
from medimeet.core.models import AuditEvent
from medimeet.core.tests.admin_actions import audited_actions, changelist, ids, offered_actions, run_action, signed_in

from .factories import PageFactory, PostFactory, author

pytestmark = pytest.mark.django_db
POSTS = changelist(Post)
EACH_KIND = pytest.mark.parametrize("factory", [PostFactory, PageFactory], ids=["posts", "pages"])


def draft_by(user, title: str, factory=PostFactory) -> Content:
    return factory(author=user, title=title, status=Content.Status.DRAFT, publish_at=None)


def statuses(*items: Content) -> list[str]:
    return [type(item).objects.get(pk=item.pk).status for item in items]


@EACH_KIND
def test_an_author_submits_their_own_drafts_for_review_but_not_someone_elses(client, factory):
    model = factory._meta.model
    writer = signed_in(client, roles.AUTHOR)
    mine = [draft_by(writer, "Sleep and blood pressure", factory), draft_by(writer, "Walking after meals", factory)]
    theirs = draft_by(author(), "Someone else's draft", factory)

    response = run_action(client, changelist(model), "submit_selected", [*mine, theirs])

    assert response.status_code == 302
    assert statuses(*mine, theirs) == ["review", "review", "draft"]
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "2 item(s) submitted for review.",
        "“Someone else's draft”: Only the author or a content editor can submit this draft for review.",
    ]
    submitted = AuditEvent.objects.filter(action=f"cms.{model._meta.model_name}_submitted", actor=writer)
    assert sorted(submitted.values_list("target_id", flat=True)) == ids(*mine)
    assert audited_actions() == [(writer.pk, model._meta.label_lower, "submit_selected", ids(*mine, theirs), 3)]


@EACH_KIND
def test_a_content_editor_unpublishes_selected_items_and_they_leave_the_site(client, factory):
    model = factory._meta.model
    editor = signed_in(client, roles.CONTENT_EDITOR)
    items = factory.create_batch(2)
    assert model.objects.live().count() == 2

    response = run_action(client, changelist(model), "unpublish_selected", items)

    assert response.status_code == 302
    assert list(model.objects.filter(pk__in=[i.pk for i in items]).values_list("status", "publish_at")) == [("draft", None)] * 2
    assert not model.objects.live().exists()
    assert AuditEvent.objects.filter(action=f"cms.{model._meta.model_name}_unpublished", actor=editor).count() == 2
    assert audited_actions() == [(editor.pk, model._meta.label_lower, "unpublish_selected", ids(*items), 2)]


def test_an_author_is_not_offered_unpublishing_and_cannot_post_it(client):
    writer = signed_in(client, roles.AUTHOR)
    post = PostFactory(author=writer)

    offered = offered_actions(client, POSTS)
    run_action(client, POSTS, "unpublish_selected", [post])

    assert "submit_selected" in offered and offered.isdisjoint({"publish_selected", "unpublish_selected"})
    assert statuses(post) == ["published"] and Post.objects.live().exists()
    assert audited_actions() == []


@pytest.mark.parametrize("role", [roles.SUPPORT, roles.FINANCE, roles.COMPLIANCE])
def test_roles_outside_the_cms_get_403_and_move_nothing(client, role):
    writer = author()
    draft, published = draft_by(writer, "A draft"), PostFactory(author=writer)
    signed_in(client, role)

    responses = [run_action(client, POSTS, "submit_selected", [draft]), run_action(client, POSTS, "unpublish_selected", [published])]

    assert [r.status_code for r in responses] == [403, 403]
    assert statuses(draft, published) == ["draft", "published"]
    assert audited_actions() == []
