"""Every message MediMeet sends, in one table: what kind it is, which channels it may use and
which templates render it. ``notify(event=...)`` refuses names that are not listed here.

Essential messages (security, account, bookings, money) are always emailed: nobody can switch
off a password reset or a receipt. Non-essential ones follow the person's preferences per
category and carry a one-click unsubscribe link.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

EMAIL = "email"
SMS = "sms"  # only to a verified number, only for kinds the person chose it for


@dataclass(frozen=True)
class Category:
    name: str
    label: str
    essential: bool
    channels: tuple[str, ...]  # channels a person may choose for it
    default_channels: tuple[str, ...]


CATEGORIES: dict[str, Category] = {
    c.name: c
    for c in (
        Category("account", _("Security and account"), True, (EMAIL,), (EMAIL,)),
        Category("appointments", _("Bookings, changes and cancellations"), True, (EMAIL,), (EMAIL,)),
        Category("payments", _("Payments, receipts and refunds"), True, (EMAIL,), (EMAIL,)),
        Category("reminders", _("Appointment reminders"), False, (EMAIL, SMS), (EMAIL,)),
        Category("announcements", _("Service and maintenance notices"), True, (EMAIL,), (EMAIL,)),
        Category("updates", _("Review requests and new features"), False, (EMAIL,), (EMAIL,)),
    )
}


@dataclass(frozen=True)
class Event:
    name: str
    category: str
    template: str  # templates/<template>_subject.txt, _message.txt, _message.html
    channels: tuple[str, ...] = (EMAIL,)

    @property
    def essential(self) -> bool:
        return CATEGORIES[self.category].essential


EVENTS: dict[str, Event] = {
    e.name: e
    for e in (
        # Account and security (allauth's own templates for verification and password reset).
        Event("account.email_verification", "account", "account/email/email_confirmation_signup"),
        Event("account.password_reset", "account", "account/email/password_reset_key"),
        Event("account.notice", "account", ""),  # other allauth mails; allauth picks the template
        Event("account.new_device_sign_in", "account", "email/account/new_device_sign_in"),
        Event("account.phone_code", "account", "sms/phone_code", channels=(SMS,)),  # to the number being verified
        # Doctor onboarding.
        Event("doctor.application_received", "account", "doctors/email/application_received"),
        Event("doctor.application_approved", "account", "doctors/email/application_approved"),
        Event("doctor.application_rejected", "account", "doctors/email/application_rejected"),
        Event("doctor.application_changes_requested", "account", "doctors/email/application_changes_requested"),
        Event("doctor.invitation", "account", "doctors/email/invitation"),
        Event("doctor.licence_expired", "account", "doctors/email/licence_expired"),
        # Appointments.
        Event("appointment.update", "appointments", "appointments/email/update"),
        Event("appointment.cancelled_by_doctor", "appointments", "appointments/email/cancelled_by_doctor"),
        Event("appointment.doctor_on_vacation", "appointments", "appointments/email/doctor_on_vacation"),
        Event("appointment.rebooking_offer", "appointments", "appointments/email/rebooking_offer"),
        Event("appointment.waitlist_offer", "appointments", "appointments/email/waitlist_offer"),
        Event("appointment.follow_up_recommended", "appointments", "appointments/email/follow_up_recommended"),
        Event("appointment.reminder", "reminders", "appointments/email/reminder", channels=(EMAIL, SMS)),
        # System announcements (staff): notices and alerts are essential, new features are not.
        Event("announcement.notice", "announcements", "email/announcement"),
        Event("announcement.feature", "updates", "email/announcement"),
        # Reviews: the request after a consultation is optional mail; moderation outcomes are not.
        Event("review.request", "updates", "reviews/email/review_request"),
        Event("review.review_rejected", "account", "reviews/email/review_rejected"),
        Event("review.appeal_decided", "account", "reviews/email/appeal_decided"),
        # Medical records: who may read a record is account security; never clinical content.
        Event("record.access_granted", "account", "records/email/access_granted"),
        Event("record.emergency_access_patient", "account", "records/email/emergency_access_patient"),
        Event("record.emergency_access_review", "account", "records/email/emergency_access_review"),
        Event("record.erasure_decided", "account", "records/email/erasure_decided"),
        # Consultations.
        Event("consultation.guest_invitation", "appointments", "consultations/email/guest_invitation"),
        Event("consultation.starting", "reminders", "consultations/email/starting", channels=(EMAIL, SMS)),
        # Payments.
        Event("payment.receipt", "payments", "payments/email/receipt"),
        Event("payment.refund", "payments", "payments/email/refund"),
        Event("subscription.payment_failed", "payments", "payments/email/subscription_payment_failed"),
        Event("subscription.ended", "payments", "payments/email/subscription_ended"),
    )
}
