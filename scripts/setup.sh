#!/usr/bin/env bash
# Set up a Debian machine for rootcanary, as root: the Debian packages of the
# testbed and benchmarks, a virtual environment in .venv, the project in it.
# Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  unbound bind9 bind9-dnsutils knot-resolver pdns-recursor  # resolvers under test
  nsd pdns-server pdns-backend-bind dnsperf                 # speed references, load
  knot                                                      # loads exported zones
  ldnsutils knot-dnsutils                                   # zone checks, kdig
  squid                                                     # proxy-network stand-in
  chromium                                                  # HTML report check
  iproute2 python3-venv python3-dev
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$pkg")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages: ${missing[*]}; run as root to install" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  # Keep the packaged daemons from starting (port 53 and 3128 on every
  # address): rootcanary starts its own instances with their own configs.
  made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  trap '[[ $made_policy == 1 ]] && rm -f /usr/sbin/policy-rc.d' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [[ -d /run/systemd/system ]]; then
    for unit in unbound named pdns-recursor nsd pdns squid knot; do
      systemctl disable --now "$unit" >/dev/null 2>&1 || true
    done
  fi
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: $PYTHON is older than 3.11; set PYTHON=python3.11" >&2
  exit 1
fi
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev]'
echo "setup: ready (.venv/bin/rootcanary)" >&2
