from django.apps import AppConfig


class CmsConfig(AppConfig):
    """Blog, pages and SEO (Step 9)."""

    name = "cms"
    verbose_name = "Content"
