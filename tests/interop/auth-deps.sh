#!/bin/sh
# Installs the third-party clients used by the SASL, session and TLS tests
# (tests/sasl_interop.rs, tests/tls.rs):
#   apt  php-cli php-memcached libsasl2-modules openssl nodejs npm python3-pylibmc
#   pip  python-binary-memcached pymemcache
#   npm  memjs@1                               (into target/interop/node)
# Run from the repository root. Safe to run again.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi
}

missing=""
command -v php >/dev/null 2>&1 || missing="$missing php-cli"
php -m 2>/dev/null | grep -qx memcached || missing="$missing php-memcached"
ls /usr/lib/*/sasl2/libplain.so >/dev/null 2>&1 || missing="$missing libsasl2-modules"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
/usr/bin/python3 -c 'import pylibmc' 2>/dev/null || missing="$missing python3-pylibmc"
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
python3 -m pip --version >/dev/null 2>&1 || missing="$missing python3-pip"
if [ -n "$missing" ]; then
    echo "auth-deps: installing$missing" >&2
    as_root apt-get update
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y $missing
fi

node_dir="$root/target/interop/node"
mkdir -p "$node_dir"
if [ ! -f "$node_dir/node_modules/memjs/package.json" ]; then
    npm install --no-audit --no-fund --silent --prefix "$node_dir" memjs@1
fi

py_pkgs="python-binary-memcached pymemcache"
if ! python3 -c "import bmemcached, pymemcache" 2>/dev/null; then
    # Debian's Python refuses system-wide installs (PEP 668); fall back to
    # --break-system-packages, which is what a CI image wants.
    if ! python3 -m pip install --quiet $py_pkgs 2>/tmp/auth-deps-pip.err; then
        if grep -q externally-managed /tmp/auth-deps-pip.err; then
            python3 -m pip install --quiet --break-system-packages $py_pkgs
        else
            cat /tmp/auth-deps-pip.err >&2
            exit 1
        fi
    fi
fi
echo "auth interop clients installed"
