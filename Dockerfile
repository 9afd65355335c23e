# syntax=docker/dockerfile:1.7
# One image for every role (web, ws, worker, beat); docker-compose.yml picks the command.
# Build: docker build -t coliseum .     Run: docker compose up   (see .env.example)

# --- build: compile wheels into a virtualenv -----------------------------------------------------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential libpq-dev \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
WORKDIR /src
# Only the dependency list first, so code changes do not reinstall dependencies (pyproject has packages = []:
# installing it installs exactly the pinned dependencies).
COPY pyproject.toml ./
RUN /opt/venv/bin/pip install --upgrade pip && /opt/venv/bin/pip install .

# --- runtime: slim, non-root --------------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS runtime
# pango/harfbuzz/fonts: WeasyPrint (reports); postgresql-client: pg_dump for backups.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fonts-dejavu-core postgresql-client \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 coliseum \
 && useradd --system --uid 10001 --gid coliseum --home-dir /app --shell /usr/sbin/nologin coliseum
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=coliseum.settings.production \
    STATIC_ROOT=/app/.data/staticfiles \
    MEDIA_ROOT=/app/.data/media \
    PRIVATE_STORAGE_ROOT=/app/.data/private \
    PORT=8000
WORKDIR /app
COPY --chown=coliseum:coliseum . .
# collectstatic needs no database; production settings demand these two, so give build-only values.
RUN SECRET_KEY=build-only-not-a-secret ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput -v 0 \
 && mkdir -p /app/.data/media /app/.data/private \
 && chown -R coliseum:coliseum /app/.data
USER coliseum
EXPOSE 8000 8100
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["python", "docker/healthcheck.py"]
# Web (HTTP API, admin, pages): granian, RSGI, on the front that reads each request whole, with deadlines,
# before a thread runs Django (coliseum/front.py; README, "Processes"). The ws, worker and beat services
# override this command.
CMD ["sh", "-c", "exec granian --interface rsgi --host 0.0.0.0 --port ${PORT} --workers ${WEB_WORKERS:-2} --http1-header-read-timeout $((${WEB_HEADER_TIMEOUT_SECONDS:-10} * 1000)) --no-ws coliseum.front:app"]
