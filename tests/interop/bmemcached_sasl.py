"""python-binary-memcached (bmemcached) against a SASL server.

usage: bmemcached_sasl.py PORT USER PASSWORD ok|fail

ok:   set/get/incr/delete work after PLAIN authentication.
fail: authentication is refused and nothing is read or written.
Prints PASS on success; exits non-zero with a reason otherwise.
"""
import sys

import bmemcached
from bmemcached.exceptions import (
    AuthenticationNotSupported,
    InvalidCredentials,
    MemcachedException,
)

port, user, password, expect = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
addr = "127.0.0.1:" + port

if expect == "ok":
    c = bmemcached.Client([addr], user, password)
    assert c.set("bm:key", "value"), "set failed"
    assert c.get("bm:key") == "value", "get mismatch"
    assert c.set("bm:n", 10)
    assert c.incr("bm:n", 5) == 15, "incr mismatch"
    assert c.delete("bm:key"), "delete failed"
    assert c.get("bm:key") is None, "deleted key still there"
    c.disconnect_all()
else:
    try:
        c = bmemcached.Client([addr], user, password)
        c.set("bm:intruder", "x")
        v = c.get("bm:key")
    except (InvalidCredentials, AuthenticationNotSupported) as e:
        print("refused:", type(e).__name__)
    except MemcachedException as e:
        # Status 0x20: authentication error.
        if e.code != 0x20:
            raise
        print("refused: status 0x20")
    else:
        sys.exit("wrong password was accepted (get returned %r)" % (v,))
print("PASS")
