#!/usr/bin/env python3
"""Drives ferrocache (or memcached) with pymemcache, the most used Python client.

Usage: pymemcache_check.py HOST:PORT HOST:PORT

The first server is used by a plain Client; both together by a HashClient. Every step is
checked; the script exits non-zero on the first failure and prints which check failed.
"""

import sys
import time

from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient


def addr(s):
    host, port = s.rsplit(":", 1)
    return (host, int(port))


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def single(server):
    c = Client(server, connect_timeout=5, timeout=5)

    check(c.flush_all() is True, "flush_all")
    check(c.set("k", b"v1") is True, "set")
    check(c.get("k") == b"v1", "get after set")
    check(c.get("missing") is None, "get miss")

    # Binary-safe values and flags.
    blob = bytes(range(256)) + b"\r\nEND\r\n"
    check(c.set("blob", blob) is True, "set blob")
    check(c.get("blob") == blob, "blob round trip")
    check(c.set("flagged", b"x", noreply=False, flags=4242) is True, "set with flags")
    head = c.raw_command(b"get flagged", b"END\r\n").split(b"\r\n")[0]
    check(head == b"VALUE flagged 4242 1", "VALUE line with flags: %r" % head)

    many = c.get_many(["k", "blob", "missing"])
    check(many == {"k": b"v1", "blob": blob}, "get_many: %r" % (many,))

    value, cas = c.gets("k")
    check(value == b"v1" and cas is not None, "gets")
    check(c.cas("k", b"v2", cas) is True, "cas with fresh token")
    check(c.cas("k", b"v3", cas) is False, "cas with stale token")
    check(c.cas("nope", b"v3", cas) is None, "cas on missing key")
    check(c.get("k") == b"v2", "value after cas")

    check(c.add("k", b"x", noreply=False) is False, "add existing")
    check(c.add("new", b"a", noreply=False) is True, "add new")
    check(c.replace("new", b"b", noreply=False) is True, "replace existing")
    check(c.replace("ghost", b"b", noreply=False) is False, "replace missing")
    check(c.append("new", b">", noreply=False) is True, "append")
    check(c.prepend("new", b"<", noreply=False) is True, "prepend")
    check(c.append("ghost", b">", noreply=False) is False, "append missing")
    check(c.get("new") == b"<b>", "append/prepend result")

    c.set("n", b"10")
    check(c.incr("n", 5, noreply=False) == 15, "incr")
    check(c.decr("n", 100, noreply=False) == 0, "decr floor")
    check(c.incr("n", 2**64 - 1, noreply=False) == 2**64 - 1, "incr to max")
    check(c.incr("n", 2, noreply=False) == 1, "incr wrap")
    check(c.incr("ghost", 1, noreply=False) is None, "incr missing")
    try:
        c.set("text", b"abc")
        c.incr("text", 1, noreply=False)
        check(False, "incr on non-numeric should raise")
    except Exception as e:  # MemcacheClientError
        check("non-numeric" in str(e), "incr non-numeric message: %s" % e)

    check(c.delete("new", noreply=False) is True, "delete hit")
    check(c.delete("new", noreply=False) is False, "delete miss")
    check(c.get("new") is None, "deleted key gone")

    check(c.touch("k", 1, noreply=False) is True, "touch hit")
    check(c.touch("ghost", 1, noreply=False) is False, "touch miss")
    deadline = time.time() + 4
    while c.get("k") is not None and time.time() < deadline:
        time.sleep(0.1)
    check(c.get("k") is None, "touched key expired")

    # noreply (pymemcache's default for storage commands)
    c.set("quiet", b"q")
    check(c.get("quiet") == b"q", "noreply set")

    stats = c.stats()
    for name in (b"pid", b"curr_items", b"cmd_get", b"get_hits", b"get_misses", b"version"):
        check(name in stats, "stats has %r" % name)
    check(stats[b"cmd_get"] > 0, "cmd_get counted")

    v = c.version()
    check(v[:1].isdigit(), "version %r" % v)

    check(c.flush_all(noreply=False) is True, "flush_all")
    check(c.get("quiet") is None, "flushed")
    c.close()


def hashed(servers):
    hc = HashClient(servers, connect_timeout=5, timeout=5, use_pooling=False)
    keys = ["hash-key-%d" % i for i in range(200)]
    for k in keys:
        check(hc.set(k, k.encode(), noreply=False) is True, "HashClient set %s" % k)
    got = hc.get_many(keys)
    check(len(got) == len(keys), "HashClient get_many: %d of %d" % (len(got), len(keys)))
    check(all(got[k] == k.encode() for k in keys), "HashClient values")
    # Both servers got a share of the keys.
    per_server = []
    for s in servers:
        c = Client(s, connect_timeout=5, timeout=5)
        per_server.append(len(c.get_many(keys)))
        c.close()
    check(sum(per_server) == len(keys), "keys spread: %r" % per_server)
    check(all(n > 0 for n in per_server), "every server holds keys: %r" % per_server)
    check(hc.incr(keys[0] + "-n", 1) is None, "HashClient incr miss")
    hc.set("ctr", b"1")
    check(hc.incr("ctr", 41) == 42, "HashClient incr")
    check(hc.delete_many(keys) is True, "HashClient delete_many")
    check(hc.get_many(keys) == {}, "HashClient deleted")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    a, b = addr(sys.argv[1]), addr(sys.argv[2])
    # Wait for the OK: a flush sent with noreply on another connection could otherwise land
    # in the middle of the checks below.
    for server in (a, b):
        c = Client(server, connect_timeout=5, timeout=5)
        check(c.flush_all(noreply=False) is True, "initial flush_all")
        c.close()
    single(a)
    hashed([a, b])
    print("pymemcache checks passed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print("FAILED: %s" % e, file=sys.stderr)
        sys.exit(1)
