"""The staff dashboard and custom reports (docs/architecture.md → Staff dashboard).

``periods`` turns the request's period into instants in the staff member's time zone,
``selectors`` defines every metric once (one aggregate query each) for the admin page and the
API, ``charts`` draws them as inline SVG, ``views`` is the admin page, ``api`` the endpoints.
"""
