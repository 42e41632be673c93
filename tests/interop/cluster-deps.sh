#!/bin/sh
# Installs the third-party auto-discovery clients used by tests/cluster_interop.rs:
#   npm  memcache-plus@0.3.1                  (into target/interop/node)
#   pip  django-elastipymemcache==3.0.0 elasticache-auto-discovery==1.0.0
# Run from the repository root. Safe to run again.
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi
}

# Runtimes first, from Debian when missing.
missing=""
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
python3 -m pip --version >/dev/null 2>&1 || missing="$missing python3-pip"
if [ -n "$missing" ]; then
    echo "cluster-deps: installing$missing" >&2
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y $missing
fi

node_dir="$root/target/interop/node"
mkdir -p "$node_dir"
if [ ! -f "$node_dir/node_modules/memcache-plus/package.json" ]; then
    npm install --no-audit --no-fund --silent --prefix "$node_dir" memcache-plus@0.3.1
fi

py_pkgs="django-elastipymemcache==3.0.0 elasticache-auto-discovery==1.0.0"
if ! python3 -c "import django_elastipymemcache, elasticache_auto_discovery" 2>/dev/null; then
    # Debian's Python refuses system-wide installs (PEP 668); fall back to
    # --break-system-packages, which is what a CI image wants.
    if ! python3 -m pip install --quiet $py_pkgs 2>/tmp/cluster-deps-pip.err; then
        if grep -q externally-managed /tmp/cluster-deps-pip.err; then
            python3 -m pip install --quiet --break-system-packages $py_pkgs
        else
            cat /tmp/cluster-deps-pip.err >&2
            exit 1
        fi
    fi
fi
echo "cluster interop clients installed"
