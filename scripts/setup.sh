#!/usr/bin/env bash
# Set up the course in a local virtual environment (.venv): the CPU build of torch, the package
# in editable mode with its test extras, and (as root, for the browser tests) Debian's Chromium.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
# torch first and pinned: 2.13.0 is the CPU build (an unpinned torch pulls a multi-GB CUDA build).
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" -e ".[test,docs]"
if [ "${1:-}" = "--with-browser" ] && [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
    else
        echo "note: /usr/bin/chromium is missing; install Debian's chromium for the browser tests" >&2
    fi
fi
