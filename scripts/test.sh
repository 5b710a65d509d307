#!/usr/bin/env bash
# The test suite on a fresh machine: installs what the tests use besides the
# Rust toolchain (xmllint for the XSD checks, Python's aiosmtpd as the real
# SMTP receiver, Debian's Chromium and playwright-core for the browser
# tests, Debian's PostgreSQL server for the store suite, the crash and the
# several-nodes tests, which start their own throwaway cluster; npm and pip
# themselves when the machine lacks them), then runs `cargo test --locked`.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

# Debian packages, in one apt-get run, only for what is missing.
apt_packages=()
command -v xmllint >/dev/null 2>&1 || apt_packages+=(libxml2-utils)
[ -x /usr/bin/chromium ] || apt_packages+=(chromium)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || apt_packages+=(postgresql)
command -v npm >/dev/null 2>&1 || apt_packages+=(npm)
python3 -m pip --version >/dev/null 2>&1 || apt_packages+=(python3-pip)
if [ ${#apt_packages[@]} -gt 0 ]; then
  echo "== apt-get install ${apt_packages[*]}"
  apt_log=$(mktemp)
  if ! { apt-get update -qq &&
    apt-get install -y -qq --no-install-recommends "${apt_packages[@]}"; } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    exit 1
  fi
  rm -f "$apt_log"
fi
if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  echo "== pip install aiosmtpd"
  pip_quiet=(--quiet --disable-pip-version-check --root-user-action=ignore)
  # A distribution's own Python refuses plain installs (PEP 668).
  python3 -m pip install "${pip_quiet[@]}" aiosmtpd ||
    python3 -m pip install "${pip_quiet[@]}" --break-system-packages aiosmtpd
fi
# playwright-core, pinned by tests/browser/package-lock.json. It drives the
# Chromium above and never downloads a browser of its own. Reinstalled
# when the lock file changed since.
if [ ! -d tests/browser/node_modules/playwright-core ] ||
  [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
  echo "== npm ci (tests/browser)"
  (cd tests/browser &&
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --silent --no-audit --no-fund)
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --locked 2>&1 | tee "$log"
# One closing line with the totals of every test binary (cargo prints one
# "test result" line per binary, the last often the empty doc-test run).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
