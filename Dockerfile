# Order Hub API / worker image.
#   docker build -t order-hub .
#   docker run --rm -p 8000:8000 -e OMS_DATABASE_URL=... -e OMS_REDIS_URL=... -e OMS_SECRET_KEY=... order-hub
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Unprivileged runtime user; it owns nothing but its own data dir.
RUN groupadd --system --gid 10001 oms \
 && useradd --system --uid 10001 --gid oms --create-home --home-dir /home/oms oms

WORKDIR /app
COPY . .

# Editable install on purpose: app.config.PROJECT_ROOT is derived from the package location, and
# `oms migrate` reads alembic.ini and migrations/ from there, so the package must stay in /app.
RUN pip install -e ".[dev]" \
 && mkdir -p /app/.oms \
 && chown oms:oms /app/.oms

USER oms
EXPOSE 8000
CMD ["oms", "serve", "--host", "0.0.0.0", "--port", "8000"]
