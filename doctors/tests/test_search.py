"""Public doctor search: taxonomy, every filter and sort, listing rules, query budget."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.tests.factories import StaffFactory
from doctors import selectors, services
from doctors.models import DoctorProfile

from .factories import DoctorProfileFactory, LanguageFactory, ServiceFactory, SpecializationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def taxonomy():
    medicine = SpecializationFactory(name="Medicine", slug="medicine")
    cardiology = SpecializationFactory(name="Cardiology", slug="cardiology", parent=medicine)
    interventional = SpecializationFactory(name="Interventional Cardiology", slug="interventional-cardiology", parent=cardiology)
    surgery = SpecializationFactory(name="Surgery", slug="surgery")
    return {"medicine": medicine, "cardiology": cardiology, "interventional": interventional, "surgery": surgery}


def doctor(spec, *, first="Asha", last="Rao", price=50000, currency="INR", languages=("en",), **fields):
    profile = DoctorProfileFactory(primary_specialization=spec, user__first_name=first, user__last_name=last, **fields)
    profile.languages.set([LanguageFactory(code=code, name=code.upper()) for code in languages])
    if price is not None:
        ServiceFactory(doctor=profile, price_minor=price, currency=currency)
        services.doctor_fee_refresh(doctor=profile)
    services.doctor_search_refresh(doctor=profile)
    return profile


def search(**params) -> list[str]:
    response = APIClient().get("/api/v1/doctors/", params)
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


def test_specialization_filter_includes_descendants(taxonomy):
    doctor(taxonomy["medicine"], first="Gen")
    doctor(taxonomy["cardiology"], first="Card")
    doctor(taxonomy["interventional"], first="Inter")
    doctor(taxonomy["surgery"], first="Surg")
    secondary = doctor(taxonomy["surgery"], first="Both")
    secondary.secondary_specializations.set([taxonomy["interventional"]])

    assert sorted(search(specialization="medicine")) == ["Dr. Both Rao", "Dr. Card Rao", "Dr. Gen Rao", "Dr. Inter Rao"]
    assert sorted(search(specialization="cardiology")) == ["Dr. Both Rao", "Dr. Card Rao", "Dr. Inter Rao"]
    assert sorted(search(specialization="interventional-cardiology")) == ["Dr. Both Rao", "Dr. Inter Rao"]


def test_moving_a_specialization_moves_its_subtree(taxonomy):
    taxonomy["cardiology"].parent = taxonomy["surgery"]
    taxonomy["cardiology"].save()
    doctor(taxonomy["interventional"], first="Inter")

    assert search(specialization="surgery") == ["Dr. Inter Rao"]
    assert search(specialization="medicine") == []


def test_text_search_matches_name_specialization_and_skills(taxonomy):
    doctor(taxonomy["cardiology"], first="Meera", last="Iyer", special_skills="echocardiography")
    doctor(taxonomy["surgery"], first="John", last="Smith", bio="Knee and hip replacement surgeon.")

    assert search(q="meera") == ["Dr. Meera Iyer"]
    assert search(q="cardiology") == ["Dr. Meera Iyer"]
    assert search(q="echocardiography") == ["Dr. Meera Iyer"]
    assert search(q="smith surgery") == ["Dr. John Smith"]
    assert search(q="dermatology") == []


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"fee_min": "400", "fee_max": "600", "currency": "INR"}, ["Dr. Mid Rao"]),
        ({"fee_max": "450", "currency": "INR"}, ["Dr. Cheap Rao"]),
        ({"fee_min": "10", "currency": "GBP"}, ["Dr. Pound Rao"]),
        ({"experience_min": "20"}, ["Dr. Senior Rao"]),
        ({"rating_min": "4.5"}, ["Dr. Mid Rao"]),
        ({"language": "hi"}, ["Dr. Cheap Rao"]),
        ({"mode": "in_person"}, ["Dr. Pound Rao"]),
        ({"city": "london"}, ["Dr. Pound Rao"]),
        ({"country": "gb"}, ["Dr. Pound Rao"]),
    ],
)
def test_each_filter(taxonomy, params, expected):
    doctor(taxonomy["medicine"], first="Cheap", price=30000, languages=("en", "hi"), years_experience=5, rating_average=4.0)
    doctor(taxonomy["medicine"], first="Mid", price=50000, years_experience=8, rating_average=4.8)
    doctor(taxonomy["medicine"], first="Senior", price=90000, years_experience=25, rating_average=4.2)
    doctor(taxonomy["medicine"], first="Pound", price=3000, currency="GBP", city="London", country="GB", offers_in_person=True, years_experience=3, rating_average=3.9)

    assert sorted(search(**params)) == expected


def test_each_sort(taxonomy):
    doctor(taxonomy["medicine"], first="A", price=30000, years_experience=5, rating_average=4.0, rating_count=10)
    doctor(taxonomy["medicine"], first="B", price=50000, years_experience=20, rating_average=4.9, rating_count=100)
    doctor(taxonomy["medicine"], first="C", price=None, years_experience=12, rating_average=4.5, rating_count=50)

    assert search(sort="rating") == ["Dr. B Rao", "Dr. C Rao", "Dr. A Rao"]
    assert search(sort="fee") == ["Dr. A Rao", "Dr. B Rao", "Dr. C Rao"]  # no price last
    assert search(sort="-fee") == ["Dr. B Rao", "Dr. A Rao", "Dr. C Rao"]
    assert search(sort="experience") == ["Dr. B Rao", "Dr. C Rao", "Dr. A Rao"]
    assert search(sort="availability") == ["Dr. B Rao", "Dr. C Rao", "Dr. A Rao"]  # none has a free slot: by rating
    assert search() == ["Dr. B Rao", "Dr. C Rao", "Dr. A Rao"]


def test_only_approved_active_unblocked_doctors_with_valid_licences_are_listed(taxonomy):
    doctor(taxonomy["medicine"], first="Listed")
    doctor(taxonomy["medicine"], first="Pending", verification_status="under_review")
    doctor(taxonomy["medicine"], first="Rejected", verification_status="rejected")
    blocked = doctor(taxonomy["medicine"], first="Blocked")
    account_services.user_block(user=blocked.user, by=StaffFactory(), reason="Complaints")
    expired = doctor(taxonomy["medicine"], first="Expired")
    DoctorProfile.objects.filter(pk=expired.pk).update(licence_expiry=timezone.localdate() - timedelta(days=1))

    assert search() == ["Dr. Listed Rao"]
    assert APIClient().get(f"/api/v1/doctors/{blocked.slug}/").json()["error"]["code"] == "DOC_001"
    assert APIClient().get(f"/api/v1/doctors/{expired.slug}/").status_code == 404


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"fee_min": "10"}, "currency"),
        ({"fee_min": "90", "fee_max": "10", "currency": "USD"}, "fee_max"),
        ({"sort": "cheapest"}, "sort"),
        ({"rating_min": "7"}, "rating_min"),
        ({"specialization": "astrology"}, "specialization"),
        ({"available_on": "2001-01-01"}, "available_on"),
        ({"country": "India"}, "country"),
        ({"currency": "XYZ", "fee_min": "1"}, "currency"),
    ],
)
def test_bad_search_parameters_are_rejected(params, field):
    response = APIClient().get("/api/v1/doctors/", params)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "REQ_001"
    assert field in response.json()["error"]["fields"]


def test_search_query_count_does_not_grow_with_results(taxonomy, django_assert_max_num_queries):
    for i in range(3):
        doctor(taxonomy["medicine"], first=f"D{i}", languages=("en", "hi"))
    client = APIClient()
    # five reads and the search counter's one upsert (doctors.services.search_tally_record)
    with django_assert_max_num_queries(6):
        few = client.get("/api/v1/doctors/", {"specialization": "medicine", "page_size": 3})
    for i in range(3, 25):
        doctor(taxonomy["medicine"], first=f"D{i}", languages=("en", "hi"))
    with django_assert_max_num_queries(6):
        many = client.get("/api/v1/doctors/", {"specialization": "medicine", "page_size": 25, "q": "rao", "language": "hi", "sort": "fee"})

    assert len(few.json()["results"]) == 3
    assert len(many.json()["results"]) == 25


def test_detail_shows_services_and_reviews_placeholder(taxonomy):
    profile = doctor(taxonomy["cardiology"], first="Meera", price=80000, bio="Cardiologist.")
    ServiceFactory(doctor=profile, name="Hidden", is_active=False)

    response = APIClient().get(f"/api/v1/doctors/{profile.slug}/")

    assert response.status_code == 200
    body = response.json()
    assert body["primary_specialization"] == {"slug": "cardiology", "name": "Cardiology"}
    assert [s["name"] for s in body["services"]] == ["Video consultation"]
    assert body["services"][0]["price"] == {"amount_minor": 80000, "currency": "INR", "exponent": 2, "display": "₹800.00"}
    assert body["reviews"] == {"count": 0, "average": 0.0, "list_url": f"/api/v1/reviews/?doctor={body['slug']}"}
    assert body["fee_from"]["display"] == "₹800.00"


def test_completeness_score_and_missing_list(taxonomy):
    profile = DoctorProfileFactory(primary_specialization=taxonomy["medicine"], years_experience=0, licence_document=False)

    empty = selectors.doctor_completeness(profile)
    profile.bio = "x" * 120
    profile.years_experience = 7
    profile.clinic_name, profile.city = "Apollo", "Chennai"
    profile.save()
    profile.languages.set([LanguageFactory()])
    ServiceFactory(doctor=profile)
    partial = selectors.doctor_completeness(profile)

    assert empty.score == 0
    assert len(empty.missing) == 11
    assert partial.score == 15 + 5 + 10 + 10 + 15  # bio, experience, languages, clinic, services
    assert "your education" in partial.missing and "a biography of at least 100 characters" not in partial.missing


def test_specialization_tree_endpoint(taxonomy):
    tree = APIClient().get("/api/v1/specializations/").json()

    assert [node["slug"] for node in tree] == ["medicine", "surgery"]
    assert tree[0]["children"][0]["children"][0]["slug"] == "interventional-cardiology"


def test_available_on_date_uses_working_hours_overrides_and_holidays(taxonomy):
    from datetime import date, time

    from appointments.models import DateOverride, DoctorSchedule, PlatformHoliday, WeeklyHours

    monday, tuesday, wednesday = date(2030, 1, 7), date(2030, 1, 8), date(2030, 1, 9)
    works_mondays = doctor(taxonomy["medicine"], first="Mon", country="IN")
    schedule = DoctorSchedule.objects.create(doctor=works_mondays)
    WeeklyHours.objects.create(schedule=schedule, weekday=0, start_time=time(9), end_time=time(12))
    WeeklyHours.objects.create(schedule=schedule, weekday=2, start_time=time(9), end_time=time(12))
    DateOverride.objects.create(schedule=schedule, date=tuesday, start_time=time(15), end_time=time(16))
    closed_monday = doctor(taxonomy["medicine"], first="Closed", country="IN")
    other = DoctorSchedule.objects.create(doctor=closed_monday)
    WeeklyHours.objects.create(schedule=other, weekday=0, start_time=time(9), end_time=time(12))
    DateOverride.objects.create(schedule=other, date=monday, is_closed=True)
    doctor(taxonomy["medicine"], first="Nohours")
    PlatformHoliday.objects.create(date=wednesday, name="Republic Day (moved)", country="IN")

    assert search(available_on=monday.isoformat()) == ["Dr. Mon Rao"]
    assert search(available_on=tuesday.isoformat()) == ["Dr. Mon Rao"]
    assert search(available_on=wednesday.isoformat()) == []


def test_sort_by_soonest_availability(taxonomy):
    from django.utils import timezone as tz

    soon = doctor(taxonomy["medicine"], first="Soon", rating_average=3.0)
    later = doctor(taxonomy["medicine"], first="Later", rating_average=5.0)
    doctor(taxonomy["medicine"], first="Never", rating_average=4.0)
    DoctorProfile.objects.filter(pk=soon.pk).update(next_available_at=tz.now() + timedelta(hours=2))
    DoctorProfile.objects.filter(pk=later.pk).update(next_available_at=tz.now() + timedelta(days=2))

    assert search(sort="availability") == ["Dr. Soon Rao", "Dr. Later Rao", "Dr. Never Rao"]


def test_search_page_paginates_keeping_the_filters(client, taxonomy):
    for i in range(13):
        doctor(taxonomy["medicine"], first=f"P{i}")

    first = client.get("/doctors/", {"specialization": "medicine", "sort": "rating"}).content.decode()
    second = client.get("/doctors/", {"specialization": "medicine", "sort": "rating", "page": 2}).content.decode()

    assert "Page 1 of 2" in first
    assert 'href="?specialization=medicine&amp;sort=rating&amp;page=2" rel="next"' in first
    assert "Page 2 of 2" in second and 'rel="prev"' in second
