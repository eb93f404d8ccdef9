import pytest
from playwright.sync_api import Page

from accounts.tests.factories import UserFactory
from appointments.tests.test_e2e import PASSWORD, cardiologist, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

def test_look(live_server, page: Page):
    doctor = cardiologist(weekdays=range(6))
    UserFactory(email="p@example.com", password=PASSWORD)
    sign_in(page, live_server.url, "p@example.com")
    page.set_viewport_size({"width": 390, "height": 800})
    for url in [f"/doctors/{doctor.slug}/book/", "/appointments/"]:
        page.goto(live_server.url + url)
        print(url, page.evaluate("""() => { const out=[]; document.querySelectorAll('body *').forEach(e => { const r=e.getBoundingClientRect(); if (r.right > 392) out.push(e.tagName+'.'+e.className+' '+Math.round(r.right)); }); return out.slice(0,15); }"""))
