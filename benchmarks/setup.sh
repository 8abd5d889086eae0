#!/bin/sh
# Benchmark setup, not part of the product: the HTTP anchor (nginx answering 204, wrk loading it)
# and the Python extras the benchmarks use. Debian/Ubuntu; run as root or through sudo.
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends nginx wrk
PYTHON="${PYTHON:-.venv/bin/python}"
"$PYTHON" -m pip install --quiet 'matplotlib>=3.8,<4' 'py-spy>=0.3,<1' 'locust>=2.20,<3'
nginx -v
wrk --version 2>&1 | head -1 || true
