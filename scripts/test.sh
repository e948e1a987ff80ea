#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, end-to-end tests included (what CI runs).
# Extra arguments go to pytest, e.g. `-k attention`. Two tiers, by marker:
#   unit tier: `bash scripts/test.sh -m "not e2e"` (about a minute on 2 CPU cores; the one
#              for everyday work);
#   e2e:       tests that train beyond a step or two, run a command line through main() or a
#              subprocess, start worker processes, run a notebook or drive a browser; `slow`
#              marks the longest of them (every slow test is also e2e).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
# The HTML-view tests drive a real headless browser: Debian's chromium (test-only).
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "[test] installing chromium for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests" >&2
fi
exit "$status"
