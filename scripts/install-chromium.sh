#!/usr/bin/env bash
# Debian's chromium and chromium-driver for the inspector's browser test (tests/e2e/test_inspector_page_e2e.py).
# Run by `make test` before pytest: does nothing when both are on PATH; installs them with
# apt-get when this user may (root, as on CI); otherwise prints one line, and the test skips
# (fails under CI=true). Nothing else is downloaded: the Python driver (selenium) is in the lock.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "install-chromium: installing Debian's chromium and chromium-driver (once)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium chromium-driver >/dev/null
  exit 0
fi
echo "install-chromium: chromium/chromedriver missing; run as root: apt-get install -y chromium chromium-driver" >&2
