"""The media library: images checked by content, re-encoded without metadata, with resized copies."""

from __future__ import annotations

import io

import pytest
from allauth.mfa.models import Authenticator
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from cms import services
from cms.models import MediaImage
from medimeet.core.errors import ApplicationError

from .factories import author

pytestmark = pytest.mark.django_db


def jpeg(width: int, height: int, *, exif: bool = False) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    image = Image.new("RGB", (width, height), (10, 108, 116))
    extra = {}
    if exif:
        data = Image.Exif()
        data[0x010F] = "SecretCam"  # Make
        extra["exif"] = data.tobytes()
    image.save(buffer, format="JPEG", **extra)
    return SimpleUploadedFile("photo.jpg", buffer.getvalue(), content_type="image/jpeg")


def test_upload_makes_resized_copies_and_strips_metadata():
    media = services.media_image_create(upload=jpeg(2000, 1000, exif=True), title="Blood pressure cuff", alt_text="A cuff on an upper arm", by=author())

    with media.image.open("rb") as stored:
        original = Image.open(stored)
        original.load()
    assert (media.width, media.height) == (2000, 1000)
    assert [(v["width"], v["height"]) for v in media.variants] == [(480, 240), (960, 480), (1600, 800)]
    assert all(media.image.storage.exists(v["name"]) for v in media.variants)
    assert original.format == "JPEG" and not original.getexif()
    assert media.srcset.endswith(f"{media.image.url} 2000w")
    assert media.card_url.endswith("-480.jpg")


def test_a_small_image_gets_no_larger_copies():
    media = services.media_image_create(upload=jpeg(400, 300), title="Small", alt_text="A small square", by=author())

    assert media.variants == []
    assert media.card_url == media.image.url


@pytest.mark.parametrize(
    ("upload", "alt_text", "field"),
    [
        (SimpleUploadedFile("x.jpg", b"<svg onload=alert(1)></svg>", content_type="image/jpeg"), "An image", "image"),
        (SimpleUploadedFile("x.png", b"\x89PNG\r\n\x1a\nnot really", content_type="image/png"), "An image", "image"),
        (jpeg(10, 10), "   ", "alt_text"),
    ],
)
def test_unacceptable_uploads_are_refused_and_nothing_is_stored(upload, alt_text, field, settings):
    with pytest.raises(ApplicationError) as error:
        services.media_image_create(upload=upload, title="x", alt_text=alt_text, by=author())

    assert (error.value.code, list(error.value.fields)) == ("CMS_006", [field])
    assert MediaImage.objects.count() == 0
    assert not (settings.MEDIA_ROOT / "cms").exists()


def test_an_author_uploads_through_the_admin(client):
    writer = author()
    Authenticator.objects.create(user=writer, type=Authenticator.Type.TOTP, data={"secret": "unused"})
    client.force_login(writer)

    response = client.post("/admin/cms/mediaimage/add/", {"title": "Cuff", "alt_text": "A blood pressure cuff", "image": jpeg(1200, 800)})
    refused = client.post("/admin/cms/mediaimage/add/", {"title": "Fake", "alt_text": "x", "image": SimpleUploadedFile("a.jpg", b"GIF89a", content_type="image/jpeg")})

    media = MediaImage.objects.get()
    assert response.status_code == 302
    assert (media.alt_text, media.uploaded_by, [v["width"] for v in media.variants]) == ("A blood pressure cuff", writer, [480, 960])
    assert refused.status_code == 200 and "Upload a valid image." in refused.content.decode()
