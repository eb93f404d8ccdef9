import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medimeet.settings.local")
application = get_wsgi_application()

from medimeet.core.process import freeze_loaded_objects  # noqa: E402

freeze_loaded_objects()
