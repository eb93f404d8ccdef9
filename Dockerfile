# Production image: one image for every process (gunicorn, daphne, celery worker and beat); the
# command chooses (Procfile, docker-compose.yml). docs/deployment.md.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=medimeet.settings.production \
    MEDIMEET_VAR_DIR=/app/var \
    PORT=8000

# WeasyPrint (receipts, prescriptions): Pango, HarfBuzz and fonts, with Devanagari for Hindi.
# Tesseract (OCR of scanned record documents) with the English and Hindi models.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 libfontconfig1 \
        fonts-dejavu-core fonts-noto-core \
        tesseract-ocr tesseract-ocr-eng tesseract-ocr-hin \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 medimeet \
    && useradd --system --uid 10001 --gid medimeet --home-dir /app --shell /usr/sbin/nologin medimeet

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY --chown=medimeet:medimeet . .

# Hindi catalogues and hashed, compressed static files are built into the image. Production
# settings refuse to load without secrets: throw-away ones exist only for this RUN step.
RUN export SECRET_KEY="build-only-$(python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
        FIELD_ENCRYPTION_KEYS="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
        ENVELOPE_MASTER_KEYS="build:$(python -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')" \
        DATABASE_URL=postgres://build@127.0.0.1:5432/build REDIS_URL=redis://127.0.0.1:6379/0 ALLOWED_HOSTS=build.invalid \
    && python manage.py compile_catalogues \
    && python manage.py collectstatic --noinput \
    && mkdir -p /app/var/media \
    && chown -R medimeet:medimeet /app/var

USER medimeet
EXPOSE 8000 8001

HEALTHCHECK --interval=30s --timeout=6s --start-period=20s --retries=3 CMD ["python", "deploy/healthcheck.py"]

CMD ["sh", "-c", "exec gunicorn medimeet.wsgi:application --workers ${WEB_CONCURRENCY:-2} --worker-class gthread --threads 8 --bind 0.0.0.0:${PORT} --access-logfile - --forwarded-allow-ips '*'"]
