#!/usr/bin/env bash
# The README's test command: install mltrail with its test and TensorFlow extras, then lint,
# type-check and run the whole test suite (PostgreSQL and Chromium tests run when installed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python3 -m pip install -q --disable-pip-version-check -e ".[dev,tensorflow]"
echo "=== ruff"; python3 -m ruff check src tests bench
echo "=== mypy"; python3 -m mypy
echo "=== pytest"
# two workers for two cores; each test file stays on one worker so module fixtures are shared
python3 -m pytest -n 2 --dist loadfile "$@"
