#!/bin/sh
# Starts a 3-node ferrocache cluster on this machine (127.0.0.1-3), all read
# from conf/cluster-nodes.txt, and shows what auto-discovery clients see.
# Stop it with: kill $(cat /tmp/ferrocache-cluster.pids)
set -eu
cd "$(dirname "$0")/.."
bin=${FERROCACHE:-target/release/ferrocache}
[ -x "$bin" ] || cargo build --release
: > /tmp/ferrocache-cluster.pids
for i in 1 2 3; do
    "$bin" -l 127.0.0.$i -p 2121$i -m 64 -v \
        --cluster-host localhost --cluster-file conf/cluster-nodes.txt \
        2> /tmp/ferrocache-node$i.log &
    echo $! >> /tmp/ferrocache-cluster.pids
done
sleep 1
printf 'config get cluster\r\n' | python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.2", 21212))
s.sendall(sys.stdin.buffer.read())
print(s.recv(4096).decode(), end="")'
