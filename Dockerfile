# syntax=docker/dockerfile:1
#
# driftbot's container image. The builder stage builds a wheel of the project and installs it,
# with its dependencies, into a virtualenv; the final stage copies only that virtualenv.
# The image runs as an unprivileged numeric user and needs no writable root filesystem: state
# lives under /var/lib/driftbot and scratch files under /tmp, both meant to be volumes.
#
#   docker build -t driftbot:0.1.0 .
#   docker run --read-only --tmpfs /tmp -v driftbot-state:/var/lib/driftbot driftbot:0.1.0 demo

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
RUN python -m venv /opt/driftbot

# Only what the wheel is built from (pyproject.toml lists the packages).
COPY pyproject.toml README.md ./
COPY core/ core/
COPY config/ config/
COPY watchers/ watchers/
COPY formatters/ formatters/
COPY bot/ bot/

RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/driftbot/bin/pip install /wheels/driftbot-*.whl \
    && /opt/driftbot/bin/driftbot --help > /dev/null


FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="driftbot" \
      org.opencontainers.image.description="Tells people in Slack and Microsoft Teams what Argo CD and Flux changed, drifted, failed and rolled back." \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 driftbot \
    && useradd --system --uid 10001 --gid 10001 \
       --home-dir /var/lib/driftbot --no-create-home --shell /usr/sbin/nologin driftbot \
    && mkdir -p /var/lib/driftbot \
    && chown 10001:10001 /var/lib/driftbot \
    && chmod 0700 /var/lib/driftbot

COPY --from=builder /opt/driftbot /opt/driftbot

ENV PATH=/opt/driftbot/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/driftbot \
    TMPDIR=/tmp \
    DRIFTBOT_STATE=/var/lib/driftbot/driftbot.db \
    DRIFTBOT_LOG_FORMAT=json

WORKDIR /var/lib/driftbot
USER 10001:10001
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('DRIFTBOT_SERVER__PORT', '8080') + '/healthz', timeout=4)"]

ENTRYPOINT ["driftbot"]
CMD ["run"]
