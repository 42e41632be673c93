"""Auto discovery through the PyPI clients elasticache-auto-discovery and
django-elastipymemcache.

Usage: cluster_python.py HOST:PORT EXPECTED_NODES

Both clients discover the cluster from one node; keys are stored and read
through the discovered nodes. The script then prints READY and waits for a
line on stdin (the test starts one more node meanwhile); both clients must
then see EXPECTED_NODES + 1 nodes by polling. Exit 0 on success.
"""

import sys
import time

try:
    import elasticache_auto_discovery
    from django.conf import settings
    from django_elastipymemcache.client import AWSElastiCacheClient
    from pymemcache.client.hash import HashClient
except ImportError as e:
    print(f"missing Python package ({e}): run tests/interop/cluster-deps.sh", file=sys.stderr)
    sys.exit(2)

settings.configure()

endpoint, want = sys.argv[1], int(sys.argv[2])


def discovered():
    triples = elasticache_auto_discovery.discover(endpoint, time_to_timeout=5)
    return sorted((h.decode(), i.decode(), int(p)) for h, i, p in triples)


def check_keys(client, prefix):
    for i in range(60):
        client.set(f"{prefix}-{i}", f"value-{i}".encode())
    for i in range(60):
        got = client.get(f"{prefix}-{i}")
        assert got == f"value-{i}".encode(), (prefix, i, got)


nodes = discovered()
assert len(nodes) == want, nodes
check_keys(HashClient([(ip, p) for _, ip, p in nodes], connect_timeout=2, timeout=2), "ead")

django = AWSElastiCacheClient(endpoint, discovery_interval=0.2, connect_timeout=2, timeout=2)
check_keys(django, "dj")
assert len(django.clients) == want, sorted(django.clients)

print(f"READY {len(nodes)}", flush=True)
sys.stdin.readline()

deadline = time.monotonic() + 10
while True:
    nodes = discovered()
    django.get("poll")  # refreshes the topology every discovery_interval
    if len(nodes) == want + 1 and len(django.clients) == want + 1:
        break
    if time.monotonic() > deadline:
        sys.exit(f"join not seen: auto-discovery {nodes}, django {sorted(django.clients)}")
    time.sleep(0.1)
check_keys(django, "dj2")
print(f"SEEN {len(nodes)} " + " ".join(f"{h}|{i}|{p}" for h, i, p in nodes), flush=True)
