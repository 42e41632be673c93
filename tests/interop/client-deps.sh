#!/bin/sh
# Third-party programs the client cross-checks need (tests/client_interop.rs):
#   memcached      reference server instances the keys are stored into
#   python3-pylibmc libmemcached's weighted ketama, driven from Debian's python3
#   nutcracker     twemproxy with hash: md5, distribution: ketama
# The tests fail with an install hint when a program is missing; this script is what
# provides them. Idempotent; safe to run more than once.
set -eu

need=""
[ -x /usr/bin/memcached ] || need="$need memcached"
/usr/bin/python3 -c 'import pylibmc' 2>/dev/null || need="$need python3-pylibmc"
command -v nutcracker >/dev/null 2>&1 || need="$need nutcracker"

if [ -n "$need" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $need
fi
