from django.urls import path

from . import api, views

page_patterns = [
    path("documents/verify/", views.document_verify, name="verify"),
]

api_patterns = [
    path("documents/verify/", api.DocumentVerifyView.as_view(), name="verify"),
]
