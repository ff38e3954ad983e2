#!/usr/bin/env bash
# Installs the Debian packages the test suites need, when they are missing:
#   ejabberd  test/ejabberd.test.ts, test/registration.test.ts (ejabberd 23.01 calling our extauth program)
#   chromium  the API documentation page in a real browser (services/http-utility/src/openapi/routes.test.ts)
#   ffmpeg    video posters (services/http-utility/src/attachments/video-poster.test.ts, videos.test.ts)
#   prosody, prosody-modules  test/xep0357-push.test.ts (Prosody 0.12 with mod_cloud_notify and mod_smacks)
#   slapd, ldap-utils  the ldap authenticator's tests (OpenLDAP started by test/support/slapd.ts)
# With `bench` (npm run bench), also what the benchmarks need:
#   wrk       the HTTP load generator (C) of test/bench/wrk.ts
#   nginx     the download baselines (attachments-thumbnail, xep0363-get)
# As root: apt-get install (apt-get update first only when needed). Otherwise: one line saying what to
# install, exit 1. The tests start their own ejabberd and Prosody as unprivileged users: the packages must not
# leave a system ejabberd or Prosody running, so services are kept from starting while it installs.
set -euo pipefail

PACKAGES=(ejabberd chromium ffmpeg prosody prosody-modules slapd ldap-utils)
if [ "${1:-}" = "bench" ]; then PACKAGES+=(wrk nginx); fi

installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = "installed" ]
}

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "system-deps: not a Debian system: install ${PACKAGES[*]} yourself (ejabberd 23.01 is what the tests know)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing Debian packages for the tests: run: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

# invoke-rc.d and deb-systemd-invoke ask policy-rc.d; 101 = "do not start services". Ours only when the
# machine has none (Docker images ship one), removed afterwards.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# temporary, from xmpp-sidecars scripts/system-deps.sh\nexit 101\n' >"$POLICY"
  chmod 755 "$POLICY"
  trap 'rm -f "$POLICY"' EXIT
fi

export DEBIAN_FRONTEND=noninteractive
install() {
  apt-get install -y -q --no-install-recommends "${missing[@]}"
}

echo "system-deps: installing ${missing[*]}" >&2
if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null || ! install; then
  apt-get update -q
  install
fi

# systemd would start it at the next boot: the tests never want the system one
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now ejabberd >/dev/null 2>&1 || true
  systemctl disable --now prosody >/dev/null 2>&1 || true
  systemctl disable --now nginx >/dev/null 2>&1 || true
  systemctl disable --now slapd >/dev/null 2>&1 || true
fi
