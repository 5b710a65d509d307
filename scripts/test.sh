#!/usr/bin/env bash
# The test suite on a fresh machine: installs what the tests use besides the
# Rust toolchain (xmllint for the XSD checks, Python's aiosmtpd as the real
# SMTP receiver), then runs `cargo test --locked`.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

if ! command -v xmllint >/dev/null 2>&1; then
  echo "== apt-get install libxml2-utils"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends libxml2-utils
fi
if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  echo "== pip install aiosmtpd"
  pip_quiet=(--quiet --disable-pip-version-check --root-user-action=ignore)
  # A distribution's own Python refuses plain installs (PEP 668).
  python3 -m pip install "${pip_quiet[@]}" aiosmtpd ||
    python3 -m pip install "${pip_quiet[@]}" --break-system-packages aiosmtpd
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --locked 2>&1 | tee "$log"
# One closing line with the totals of every test binary (cargo prints one
# "test result" line per binary, the last often the empty doc-test run).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
