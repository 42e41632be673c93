#!/bin/sh
# Installs the third-party clients the SASL, session and TLS interop tests
# drive (tests/sasl_interop.rs, tests/tls.rs). Idempotent; run from the
# repository root. Needs root for apt-get.
set -eu
here=$(cd "$(dirname "$0")" && pwd)

need_apt=""
command -v php >/dev/null 2>&1 || need_apt="$need_apt php-cli"
php -m 2>/dev/null | grep -qi '^memcached$' || need_apt="$need_apt php-memcached"
[ -e /usr/lib/x86_64-linux-gnu/sasl2/libplain.so ] || ls /usr/lib/*/sasl2/libplain.so >/dev/null 2>&1 || need_apt="$need_apt libsasl2-modules"
command -v openssl >/dev/null 2>&1 || need_apt="$need_apt openssl"
command -v node >/dev/null 2>&1 || need_apt="$need_apt nodejs"
command -v npm >/dev/null 2>&1 || need_apt="$need_apt npm"
if [ -n "$need_apt" ]; then
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need_apt
fi

python3 -c 'import bmemcached' 2>/dev/null || python3 -m pip install -q python-binary-memcached
python3 -c 'import pymemcache' 2>/dev/null || python3 -m pip install -q pymemcache

# memjs lives next to the script that uses it.
if [ ! -d "$here/node_modules/memjs" ]; then
    (cd "$here" && npm install --silent --no-audit --no-fund memjs@1)
fi
