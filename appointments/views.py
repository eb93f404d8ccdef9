"""Appointment pages of the patient and doctor portals."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from . import selectors
from .models import Appointment


def _visible_appointment(request: HttpRequest, appointment_id) -> Appointment:
    qs = Appointment.objects.select_related("doctor__user", "doctor__primary_specialization", "patient", "service")
    if not request.user.is_staff:
        qs = qs.filter(Q(patient=request.user) | Q(doctor__user=request.user))
    appointment = qs.filter(public_id=appointment_id).first()
    if appointment is None:
        raise Http404
    return appointment


@login_required
def my_appointments(request: HttpRequest) -> HttpResponse:
    role = "doctor" if request.user.role == "doctor" else "patient"
    appointments = selectors.appointments_for(user=request.user, role=role)
    return render(request, "appointments/list.html", {"appointments": appointments, "role": role})


@login_required
def detail(request: HttpRequest, appointment_id) -> HttpResponse:
    appointment = _visible_appointment(request, appointment_id)
    return render(request, "appointments/detail.html", {"appointment": appointment, "events": appointment.events.all()})
