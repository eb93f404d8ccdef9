"""The allow-list sanitiser against XSS payloads: what is stored is exactly what is asserted."""

from __future__ import annotations

import pytest

from cms.models import Post
from cms.sanitize import html_sanitize

from .factories import PostFactory

PAYLOADS = [
    # script tags, with their content
    ("<p>Hi<script>alert(1)</script></p>", "<p>Hi</p>"),
    ("<scr<script>ipt>alert(1)</script>", "ipt&gt;alert(1)"),
    # event handlers
    ("<img src=x onerror=alert(1)>", '<img src="x">'),
    ('<p onclick="steal()" onmouseover="x()">t</p>', "<p>t</p>"),
    # javascript: URLs, however spelt
    ('<a href="javascript:alert(1)">x</a>', '<a rel="noopener noreferrer">x</a>'),
    ('<a href="JaVaScRiPt:alert(1)">x</a>', '<a rel="noopener noreferrer">x</a>'),
    ('<a href="java&#x09;script:alert(1)">x</a>', '<a rel="noopener noreferrer">x</a>'),
    ('<a href="vbscript:msgbox(1)">v</a>', '<a rel="noopener noreferrer">v</a>'),
    # data: URLs in links and images
    ('<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>', '<a rel="noopener noreferrer">x</a>'),
    ('<img src="data:image/svg+xml;base64,PHN2Zz4=" alt="a">', '<img alt="a">'),
    # style attributes and elements (CSS expressions, url(javascript:))
    ('<p style="background:url(javascript:alert(1));width:expression(alert(1))">t</p>', "<p>t</p>"),
    ("<style>body{background:url(javascript:alert(1))}</style><p>t</p>", "<p>t</p>"),
    # SVG, MathML and frames
    ("<svg onload=alert(1)><circle r=5/></svg>", ""),
    ('<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>', ""),
    ("<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>", ""),
    ('<iframe src="https://evil.example"></iframe>ok', "ok"),
    ('<iframe srcdoc="<script>alert(1)</script>"></iframe>', ""),
    ("<object data=x></object><embed src=x><form action=x><input></form>", ""),
    # page-level elements that would hijack the document
    ('<base href="https://evil/"><meta http-equiv=refresh content=0;url=x><link rel=stylesheet href=x>', ""),
    # attributes that are not on the list
    ('<p class="a" id="b">t</p>', "<p>t</p>"),
    ('<a href="https://example.com" target=_blank>e</a>', '<a href="https://example.com" rel="noopener noreferrer">e</a>'),
    ('<img src="https://cdn.example/a.png" alt="A" srcset="javascript:x 1w">', '<img src="https://cdn.example/a.png" alt="A">'),
    ("<!-- <script>alert(1)</script> --><p>t</p>", "<p>t</p>"),
]


@pytest.mark.parametrize(("dirty", "clean"), PAYLOADS)
def test_sanitiser_removes_active_content(dirty, clean):
    assert html_sanitize(dirty) == clean


def test_sanitiser_keeps_the_formatting_the_editor_offers():
    html = (
        '<h2>Symptoms</h2><p><strong>Bold</strong> and <em>italic</em>, <a href="/doctors/">a doctor</a>.</p>'
        '<ul><li>one</li></ul><ol start="2"><li>two</li></ol><blockquote><p>quote</p></blockquote>'
        '<img src="/media/cms/images/a.jpg" alt="A chart" width="640" height="480">'
    )

    assert html_sanitize(html) == html.replace('href="/doctors/"', 'href="/doctors/" rel="noopener noreferrer"')


@pytest.mark.django_db
def test_body_is_sanitised_whenever_a_post_is_saved():
    post = PostFactory(body='<p onclick="x()">Rest<script>alert(1)</script></p><a href="javascript:alert(1)">go</a>')

    post.body = '<p>Edited <img src=x onerror="alert(2)"></p>'
    post.save()

    assert Post.objects.get(pk=post.pk).body == '<p>Edited <img src="x"></p>'


def test_empty_paragraphs_left_by_the_editor_are_dropped():
    assert html_sanitize("<p>Text</p><p><br></p><p>&nbsp;</p><p></p>") == "<p>Text</p>"
