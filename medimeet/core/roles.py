"""Staff roles: each one a Django group whose permissions are declared here, and nowhere else.

A staff member gets a role by being put in the group (admin → Users, superusers only). The admin
shows each person only the models their permissions reach, so a role sees its own area:

- support: people and their bookings — users (block, unblock, sign out, resend verification),
  appointments (metadata), consultations (who joined when), notifications (resend),
  announcements, review moderation;
- verification: doctors' applications, documents and the specialization taxonomy;
- finance: payments, refunds (approval), invoices, webhooks, payouts, the dashboard and reports;
- content editor: the CMS (publish, schedule, categories, tags, media) and announcements;
- author: writes CMS drafts and submits them for review;
- compliance: the audit log, emergency-access reviews, erasure decisions, record access grants
  and the shape of records (never their content);
- clinical reviewer: the only role that sees clinical content in the back office (record
  entries, notes, prescriptions, chat), each view audited.

``staff_roles_sync`` makes the groups match this table after every ``migrate`` and ``flush``
(``post_migrate``), so a change here is a code change, reviewed like any other.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

SUPPORT = "support"
VERIFICATION = "verification"
FINANCE = "finance"
CONTENT_EDITOR = "content editor"
AUTHOR = "author"
COMPLIANCE = "compliance"
CLINICAL_REVIEWER = "clinical reviewer"

CLINICAL_CONTENT = "core.view_clinical_content"

_CMS_AUTHOR = [
    "cms.add_post", "cms.change_post", "cms.view_post",
    "cms.add_page", "cms.change_page", "cms.view_page",
    "cms.add_mediaimage", "cms.change_mediaimage", "cms.view_mediaimage",
    "cms.view_category", "cms.view_tag",
]  # fmt: skip

ROLES: dict[str, list[str]] = {
    SUPPORT: [
        "accounts.view_user", "accounts.change_user", "accounts.view_apisession", "accounts.view_patientprofile",
        "core.view_notification", "core.change_notification", "core.view_notificationpreference",
        "core.view_announcement", "core.add_announcement", "core.change_announcement", "core.view_announcementdismissal",
        "core.view_dashboard", "core.view_system_health", "core.view_failedtask", "payments.add_refund",
        "appointments.view_appointment", "appointments.change_appointment", "appointments.view_appointmentevent", "appointments.view_doctorschedule",
        "appointments.view_weeklyhours", "appointments.view_dateoverride", "appointments.view_platformholiday",
        "appointments.view_waitlistentry", "appointments.view_rebookingoffer", "appointments.view_calendarfeed",
        "consultations.view_consultation", "consultations.view_participation", "consultations.view_presenceevent",
        "consultations.view_guestinvite", "consultations.view_qualitysample", "consultations.view_recordingconsent",
        "doctors.view_doctorprofile", "doctors.view_doctorservice",
        "reviews.view_review", "reviews.change_review", "reviews.view_moderationqueue", "reviews.change_moderationqueue",
        "reviews.view_reviewappeal", "reviews.change_reviewappeal", "reviews.view_moderationdecision",
        "reviews.view_reviewflag", "reviews.view_reviewscore", "reviews.view_reviewversion", "reviews.view_reviewphoto",
        "reviews.view_helpfulvote", "reviews.view_ratingcategory", "reviews.view_doctorrating", "reviews.view_platformrating",
    ],
    VERIFICATION: [
        "accounts.view_user",
        "doctors.view_doctorprofile", "doctors.change_doctorprofile", "doctors.view_doctordocument",
        "doctors.view_verificationevent", "doctors.view_education", "doctors.view_certification", "doctors.view_position",
        "doctors.view_doctorservice", "doctors.view_language", "doctors.add_language", "doctors.change_language",
        "doctors.view_specialization", "doctors.add_specialization", "doctors.change_specialization",
    ],
    FINANCE: [
        "accounts.view_user", "core.view_dashboard",
        "appointments.view_appointment",
        "payments.view_payment", "payments.view_refund", "payments.add_refund", "payments.approve_refund",
        "payments.view_webhookevent", "payments.change_webhookevent", "payments.view_invoice", "payments.view_invoicecounter",
        "payments.view_gatewaycustomer", "payments.view_savedcard", "payments.view_payoutaccount",
        "payments.change_payoutaccount", "payments.view_sandboxtransaction",
        "payments.view_plan", "payments.add_plan", "payments.change_plan", "payments.view_subscription",
        "payments.view_subscriptioncharge", "payments.view_creditbalance", "payments.view_subscriptionevent",
        "payments.view_credituse",
    ],
    AUTHOR: _CMS_AUTHOR,
    CONTENT_EDITOR: [
        *_CMS_AUTHOR,
        "cms.delete_post", "cms.delete_page", "cms.delete_mediaimage",
        "cms.add_category", "cms.change_category", "cms.delete_category",
        "cms.add_tag", "cms.change_tag", "cms.delete_tag",
        "cms.publish_post", "cms.publish_page",
        "core.view_announcement", "core.add_announcement", "core.change_announcement",
    ],
    COMPLIANCE: [
        "accounts.view_user", "core.view_auditevent",
        "records.view_emergencyaccess", "records.review_emergency_access", "records.export_record_audit",
        "records.view_erasurerequest", "records.decide_erasure", "records.view_accessgrant",
        "records.view_recordentry", "records.view_document", "records.view_prescription",
        "consultations.view_consultation", "consultations.view_participation", "consultations.view_presenceevent",
        "consultations.view_recordingconsent",
    ],
    CLINICAL_REVIEWER: [
        CLINICAL_CONTENT,
        "records.view_recordentry", "records.view_recordentryversion", "records.view_document", "records.view_prescription",
        "appointments.view_appointment", "appointments.view_clinicalnote",
        "consultations.view_consultation", "consultations.view_chatmessage",
        "consultations.view_recording", "consultations.view_recordingchunk",
    ],
}  # fmt: skip


def _permissions(names: list[str]) -> list[Permission]:
    wanted = set(names)
    query = Q()
    for name in wanted:
        app_label, codename = name.split(".", 1)
        query |= Q(content_type__app_label=app_label, codename=codename)
    found = list(Permission.objects.filter(query).select_related("content_type"))
    missing = wanted - {f"{p.content_type.app_label}.{p.codename}" for p in found}
    if missing:
        raise LookupError(f"Staff roles name permissions that do not exist: {sorted(missing)}")
    return found


def staff_roles_sync() -> None:
    """Create the role groups and give each exactly the permissions ``ROLES`` lists (idempotent)."""
    for name, permissions in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(_permissions(permissions))


def sync_after_migrate(sender, app_config=None, using="default", apps=None, **kwargs) -> None:
    """``post_migrate`` fires once per app: act on the last one, when every app's permissions
    exist (Django creates them in the same signal, app by app)."""
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    with_models = [config for config in global_apps.get_app_configs() if config.models_module is not None]
    if sender is not with_models[-1]:
        return
    for config in with_models:
        create_permissions(config, verbosity=0, using=using)
    staff_roles_sync()


def staff_can(user, *permissions: str) -> bool:
    """Staff holding every named permission: the one test services, selectors and API views use
    wherever "staff may" (a role's area), so the API and the pages follow the admin's roles."""
    return bool(user and user.is_authenticated and user.is_active and user.is_staff and user.has_perms(permissions))


def can_see_clinical_content(user) -> bool:
    """Clinical content in the back office needs the permission *given* (by the clinical
    reviewer role or directly): being a superuser is not enough (Django's backend grants a
    superuser every permission), so platform administrators do not read patients' notes by
    accident. Remembered on the user object for the request."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    if not hasattr(user, "_can_see_clinical_content"):
        app_label, codename = CLINICAL_CONTENT.split(".")
        user._can_see_clinical_content = Permission.objects.filter(
            Q(user=user) | Q(group__user=user), content_type__app_label=app_label, codename=codename
        ).exists()
    return user._can_see_clinical_content
