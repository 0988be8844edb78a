#!/usr/bin/env bash
# Checks the deployment files without a cluster or a Docker engine: hadolint on the Dockerfile,
# helm lint and helm template of the chart, kubectl kustomize of the base and overlays, every
# rendered manifest against the Kubernetes schemas, the Slack app manifest. It runs the tests in
# tests/deploy, which say which tool each check needs and skip (with the reason) when it is
# missing; -rs prints those reasons.
#
#   deploy/check.sh            # with the project's virtualenv (.venv)
#   PYTHON=python3 deploy/check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
exec "$PYTHON" -m pytest tests/deploy -rs "$@"
