#!/bin/bash
# System calls per request of a server under a load, counted by strace -c.
#
#   benches/scripts/syscalls.sh ferrocache|memcached <loadgen arguments...>
#   benches/scripts/syscalls.sh ferrocache --requests 100000
#
# strace slows the server down a lot, so only the counts mean something.
set -euo pipefail
which=$1; shift
cd "$(dirname "$0")/../.."
cargo build --release --bin ferrocache --bench loadgen >/dev/null 2>&1
lg=$(ls -t target/release/deps/loadgen-* | grep -v '\.d$' | head -1)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if [ "$which" = memcached ]; then
  memcached -u root -U 0 -l 127.0.0.1 -p "$port" -t 2 -m 1024 & srv=$!
else
  target/release/ferrocache -l 127.0.0.1 -p "$port" -t 2 -m 1024 2>/dev/null & srv=$!
fi
sleep 0.5
$lg --addr 127.0.0.1:$port --requests 1000 --preload >/dev/null
out=$(mktemp)
strace -f -c -p $srv -o "$out" 2>/dev/null & st=$!
sleep 1
load=$($lg --addr 127.0.0.1:$port "$@"); echo "$load"
kill -INT $st; wait $st 2>/dev/null || true
kill $srv; wait $srv 2>/dev/null || true
req=$(echo "$load" | grep -o "[0-9]* req in" | awk '{print $1}')
grep -E "read|write|recv|send|epoll|total" "$out" | awk -v r="$req" '{printf "%-14s %6.3f per request\n", $NF, $4/r}'
rm -f "$out"
