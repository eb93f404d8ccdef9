"""Demo and benchmark data for doctors, used by `manage.py seed_demo` (and `--doctors N`)."""

from __future__ import annotations

import random
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.contrib.auth.hashers import make_password
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from accounts.models import User

from . import services
from .models import DoctorDocument, DoctorProfile, DoctorService, Education, Language, Position, Specialization

LANGUAGES = [
    ("en", "English"), ("hi", "Hindi"), ("es", "Spanish"), ("fr", "French"), ("ar", "Arabic"), ("ta", "Tamil"),
    ("bn", "Bengali"), ("de", "German"), ("pt", "Portuguese"), ("ur", "Urdu"), ("mr", "Marathi"), ("te", "Telugu"),
]

# (name, parent name, required qualifications)
SPECIALIZATIONS = [
    ("Medicine", None, []),
    ("General Practice", "Medicine", ["MBBS"]),
    ("Cardiology", "Medicine", ["MBBS", "MD"]),
    ("Interventional Cardiology", "Cardiology", ["MBBS", "MD", "DM Cardiology"]),
    ("Dermatology", "Medicine", ["MBBS"]),
    ("Endocrinology", "Medicine", ["MBBS", "MD"]),
    ("Diabetology", "Endocrinology", ["MBBS"]),
    ("Neurology", "Medicine", ["MBBS", "MD"]),
    ("Psychiatry", "Medicine", ["MBBS"]),
    ("Paediatrics", None, ["MBBS"]),
    ("Neonatology", "Paediatrics", ["MBBS"]),
    ("Obstetrics & Gynaecology", None, ["MBBS"]),
    ("Surgery", None, []),
    ("Orthopaedics", "Surgery", ["MBBS", "MS Orthopaedics"]),
    ("ENT", "Surgery", ["MBBS"]),
    ("Ophthalmology", "Surgery", ["MBBS"]),
]

CITIES = [("Mumbai", "IN"), ("Bengaluru", "IN"), ("Delhi", "IN"), ("Chennai", "IN"), ("London", "GB"), ("Manchester", "GB"), ("New York", "US"), ("Austin", "US"), ("Dublin", "IE"), ("Sydney", "AU")]
CURRENCY_BY_COUNTRY = {"IN": "INR", "GB": "GBP", "US": "USD", "IE": "EUR", "AU": "AUD"}
FIRST = ["Aarav", "Priya", "Rohan", "Ananya", "James", "Olivia", "Liam", "Sofia", "Mateo", "Amara", "Chen", "Fatima", "Noah", "Isha", "Kiran", "Lucia", "Omar", "Hana", "Arjun", "Meera"]
LAST = ["Sharma", "Iyer", "Khan", "Patel", "Smith", "Jones", "Garcia", "Okafor", "Nguyen", "Murphy", "Rossi", "Kapoor", "Das", "Brown", "Silva", "Ali", "Chatterjee", "Reddy", "Walker", "Fernandes"]
SKILLS = ["echocardiography", "angioplasty", "diabetes management", "thyroid disorders", "acne", "eczema", "migraine", "epilepsy", "anxiety", "depression", "sports injuries", "joint replacement", "sinusitis", "cataract", "child nutrition", "prenatal care", "hypertension", "asthma"]

# A minimal valid one-page PDF (no scripts) used as the demo licence document.
DEMO_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)

DEMO_DOCTORS = [
    # email, specialization, city, languages, years, bio
    ("dr.mehta@medimeet.local", "Cardiology", ("Mumbai", "IN"), ["en", "hi", "mr"], 14,
     "Consultant cardiologist focused on preventive cardiology, hypertension and heart failure. Trained at AIIMS and practising in Mumbai, she explains test results in plain language and plans care together with her patients."),
    ("dr.okafor@medimeet.local", "General Practice", ("London", "GB"), ["en", "fr"], 9,
     "NHS-trained general practitioner with a special interest in asthma, diabetes and men's health. Chidi offers same-week video consultations and clear follow-up plans for long-term conditions."),
    ("dr.garcia@medimeet.local", "Dermatology", ("New York", "US"), ["en", "es"], 11,
     "Board-certified dermatologist treating acne, eczema, psoriasis and skin cancer screening. Lucia consults in English and Spanish and reviews photos before the call so the visit is focused."),
]


def reference_data() -> None:
    """Languages and the specialization taxonomy (idempotent)."""
    for code, name in LANGUAGES:
        Language.objects.update_or_create(code=code, defaults={"name": name})
    by_name: dict[str, Specialization] = {}
    for name, parent, required in SPECIALIZATIONS:
        spec = Specialization.objects.filter(name=name).first() or Specialization(name=name)
        spec.parent = by_name.get(parent) if parent else None
        spec.required_qualifications = required
        spec.save()
        by_name[name] = spec


def _degrees_for(spec: Specialization) -> list[str]:
    return list(spec.required_qualifications) or ["MBBS"]


@transaction.atomic
def demo_doctors(password: str) -> list[DoctorProfile]:
    """The three named demo doctors: approved, complete profiles with services."""
    created = []
    for index, (email, spec_name, (city, country), languages, years, bio) in enumerate(DEMO_DOCTORS):
        user = User.objects.get(email=email)
        spec = Specialization.objects.get(name=spec_name)
        doctor = DoctorProfile.objects.filter(user=user).first()
        if doctor is None:
            doctor = DoctorProfile.objects.create(
                user=user,
                slug=services._unique_slug(user),
                verification_status=DoctorProfile.Status.APPROVED,
                licence_number={"IN": "MMC-2010/4512", "GB": "7123456", "US": "A123456"}[country],
                licence_authority={"IN": "Maharashtra Medical Council", "GB": "General Medical Council", "US": "New York State Education Department"}[country],
                licence_country=country,
                licence_expiry=timezone.localdate() + timedelta(days=3 * 365),
                primary_specialization=spec,
                years_experience=years,
                bio=bio,
                special_skills=", ".join(SKILLS[index * 3 : index * 3 + 3]),
                clinic_name=f"{city} Heart & Family Clinic" if index == 0 else f"{city} Medical Centre",
                clinic_address=f"{10 + index} High Street, {city}",
                city=city,
                country=country,
                offers_video=True,
                offers_in_person=index == 0,
                rating_average=[4.9, 4.7, 4.8][index],
                rating_count=[212, 87, 143][index],
            )
            doctor.languages.set(Language.objects.filter(code__in=languages))
            for degree in _degrees_for(spec):
                Education.objects.create(doctor=doctor, degree=degree, institution="All India Institute of Medical Sciences" if country == "IN" else "University of London", year=2000 + index * 2)
            Position.objects.create(doctor=doctor, title="Consultant", organisation=doctor.clinic_name, start_year=2015)
            document = DoctorDocument(doctor=doctor, kind=DoctorDocument.Kind.LICENCE, original_name="licence.pdf", content_type="application/pdf", size=len(DEMO_PDF))
            document.file.save("licence.pdf", ContentFile(DEMO_PDF), save=True)
            currency = CURRENCY_BY_COUNTRY[country]
            price = {"INR": 80000, "GBP": 4500, "USD": 6000}[currency]
            DoctorService.objects.create(doctor=doctor, name="Video consultation", price_minor=price, currency=currency, duration_minutes=20, mode="video", description="A 20-minute video visit.")
            DoctorService.objects.create(doctor=doctor, name="Follow-up", price_minor=price // 2, currency=currency, duration_minutes=10, mode="video", description="A short follow-up within 30 days.")
            services.doctor_fee_refresh(doctor=doctor)
            services.doctor_search_refresh(doctor=doctor)
        created.append(doctor)
    return created


def bulk_doctors(count: int, *, seed: int = 7, batch: int = 2000) -> int:
    """Benchmark data: ``count`` approved doctors with services, languages and education.
    Existing bench doctors are kept; only the missing ones are added (idempotent)."""
    rng = random.Random(seed)
    existing = User.objects.filter(email__endswith="@bench.medimeet.local", role=User.Role.DOCTOR).count()
    if existing >= count:
        return 0
    password_hash = make_password("medimeet-bench-2026")
    specs = list(Specialization.objects.all())
    languages = list(Language.objects.all())
    through = DoctorProfile.languages.through
    expiry = timezone.localdate() + timedelta(days=730)
    added = 0
    for start in range(existing, count, batch):
        stop = min(start + batch, count)
        with transaction.atomic():
            users = User.objects.bulk_create([
                User(email=f"dr{i}@bench.medimeet.local", first_name=rng.choice(FIRST), last_name=rng.choice(LAST), role=User.Role.DOCTOR, password=password_hash, timezone="UTC")
                for i in range(start, stop)
            ])
            if users[0].pk is None:  # backends that do not return ids from bulk inserts
                users = list(User.objects.filter(email__in=[u.email for u in users]).order_by("pk"))
            EmailAddress.objects.bulk_create([EmailAddress(user=u, email=u.email, verified=True, primary=True) for u in users])
            doctors = []
            for offset, user in enumerate(users):
                i = start + offset
                city, country = rng.choice(CITIES)
                spec = rng.choice(specs)
                doctors.append(DoctorProfile(
                    user=user,
                    slug=f"dr-{user.first_name}-{user.last_name}-{i}".lower(),
                    verification_status=DoctorProfile.Status.APPROVED,
                    licence_number=f"B{i:08d}",
                    licence_authority="Bench Medical Council",
                    licence_country="ZZ",
                    licence_expiry=expiry,
                    primary_specialization=spec,
                    years_experience=rng.randint(1, 40),
                    bio=f"{spec.name} specialist in {city} with an interest in {rng.choice(SKILLS)} and {rng.choice(SKILLS)}.",
                    special_skills=", ".join(rng.sample(SKILLS, 2)),
                    clinic_name=f"{city} Clinic {i % 97}",
                    city=city,
                    country=country,
                    offers_video=True,
                    offers_in_person=rng.random() < 0.4,
                    rating_average=round(rng.uniform(3.2, 5.0), 2),
                    rating_count=rng.randint(0, 400),
                ))
            doctors = DoctorProfile.objects.bulk_create(doctors)
            if doctors[0].pk is None:
                doctors = list(DoctorProfile.objects.filter(user__in=users).order_by("pk"))
            services_ = []
            links = []
            for doctor in doctors:
                currency = CURRENCY_BY_COUNTRY[doctor.country]
                base = {"INR": 50000, "GBP": 3000, "USD": 4000, "EUR": 3500, "AUD": 6000}[currency]
                prices = sorted(base + rng.randint(-20, 60) * (base // 50) for _ in range(rng.randint(1, 3)))
                for n, price in enumerate(prices):
                    services_.append(DoctorService(doctor=doctor, name=["Video consultation", "Follow-up", "Extended consultation"][n], price_minor=price, currency=currency, duration_minutes=[20, 10, 40][n], mode="video"))
                doctor.min_fee_minor, doctor.fee_currency = prices[0], currency
                links += [through(doctorprofile_id=doctor.pk, language_id=lang.code) for lang in rng.sample(languages, rng.randint(1, 3))]
            DoctorService.objects.bulk_create(services_)
            through.objects.bulk_create(links)
            DoctorProfile.objects.bulk_update(doctors, ["min_fee_minor", "fee_currency"])
            Education.objects.bulk_create([Education(doctor=d, degree="MBBS", institution="Bench University", year=2000) for d in doctors])
        added += len(doctors)
    services.doctors_search_rebuild()
    return added
