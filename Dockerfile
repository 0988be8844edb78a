# syntax=docker/dockerfile:1
#
# driftbot's container image. The builder stage builds a wheel of the project and installs it,
# with its dependencies, into a virtualenv; the final stage copies only that virtualenv.
# The image runs as an unprivileged numeric user and needs no writable root filesystem: state
# lives under /var/lib/driftbot and scratch files under /tmp, both meant to be volumes.
#
#   docker build -t driftbot:0.1.0 .
#   docker run --read-only --tmpfs /tmp -v driftbot-state:/var/lib/driftbot driftbot:0.1.0 demo

# The base image by digest (the multi-platform index of the tag named before the @): a rebuild
# of the tag cannot change what this file builds. `python3 deploy/pin-digests.py base` looks
# the tag's current digest up in the registry and writes it here (docs/operations.md).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:0bee7276f83efd4a1ee05bbbf4281d95ed28e079220a9457f25a93e3f1e3c31b

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
RUN python -m venv /opt/driftbot

# The dependencies first, from the lock: exact versions, each file checked against its hash
# (`python3 tasks.py lock` writes requirements/). Its own layer: a code change reuses it.
COPY requirements/runtime.txt requirements/build.txt requirements/
RUN /opt/driftbot/bin/pip install --require-hashes --no-deps -r requirements/runtime.txt \
    && python -m pip install --require-hashes --no-deps -r requirements/build.txt

# Only what the wheel is built from (pyproject.toml lists the packages).
COPY pyproject.toml README.md ./
COPY core/ core/
COPY config/ config/
COPY watchers/ watchers/
COPY formatters/ formatters/
COPY bot/ bot/

# The wheel is built with the locked build backend and installed without resolving anything
# again; pip check fails the build when pyproject.toml asks for what the lock lacks.
RUN python -m pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
    && /opt/driftbot/bin/pip install --no-deps /wheels/driftbot-*.whl \
    && /opt/driftbot/bin/pip check \
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
