"""OpenAPI description of MediMeet's session-bound JWT authentication (drf-spectacular)."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class SessionBoundJWTScheme(SimpleJWTScheme):
    target_class = "accounts.tokens.SessionBoundJWTAuthentication"
    name = "jwtAuth"
