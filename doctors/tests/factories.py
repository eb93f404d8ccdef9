from __future__ import annotations

from datetime import timedelta

import factory
from django.core.files.base import ContentFile
from django.utils import timezone

from accounts.tests.factories import DoctorFactory as DoctorUserFactory
from doctors.demo import DEMO_PDF
from doctors.models import DoctorDocument, DoctorProfile, DoctorService, Education, Language, Specialization


class SpecializationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Specialization

    name = factory.Sequence(lambda n: f"Specialization {n}")


class LanguageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Language
        django_get_or_create = ("code",)

    code = "en"
    name = "English"


class DoctorProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DoctorProfile
        skip_postgeneration_save = True

    user = factory.SubFactory(DoctorUserFactory)
    slug = factory.Sequence(lambda n: f"dr-test-{n}")
    verification_status = DoctorProfile.Status.APPROVED
    licence_number = factory.Sequence(lambda n: f"L{n:07d}")
    licence_authority = "Test Medical Council"
    licence_country = "ZZ"
    licence_expiry = factory.LazyFunction(lambda: timezone.localdate() + timedelta(days=365))
    primary_specialization = factory.SubFactory(SpecializationFactory)
    years_experience = 10
    city = "Mumbai"
    country = "IN"

    @factory.post_generation
    def licence_document(self, create, extracted, **kwargs):
        if create and extracted is not False:
            document = DoctorDocument(doctor=self, kind="licence", original_name="licence.pdf", content_type="application/pdf", size=len(DEMO_PDF))
            document.file.save("licence.pdf", ContentFile(DEMO_PDF), save=True)


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DoctorService

    doctor = factory.SubFactory(DoctorProfileFactory)
    name = "Video consultation"
    price_minor = 50000
    currency = "INR"
    duration_minutes = 20
    mode = "video"


class EducationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Education

    doctor = factory.SubFactory(DoctorProfileFactory)
    degree = "MBBS"
    institution = "AIIMS"
    year = 2005


def pdf_upload(name: str = "licence.pdf", content: bytes = DEMO_PDF):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content, content_type="application/pdf")
