#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests. Never downloads a browser build of its own:
# Playwright drives /usr/bin/chromium. Without root or apt the browser tests skip, saying why.
set -u
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: not root or no apt-get; browser tests will be skipped (apt-get install chromium)." >&2
  exit 0
fi
echo "install-chromium: apt-get install chromium (once)..."
apt-get update -qq >/dev/null 2>&1 || true
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
  || echo "install-chromium: apt-get install chromium failed; browser tests will be skipped." >&2
exit 0
