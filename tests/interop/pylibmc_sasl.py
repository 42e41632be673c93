"""pylibmc (libmemcached) in binary mode against a SASL server.

usage: /usr/bin/python3 pylibmc_sasl.py PORT USER PASSWORD ok|fail
Prints PASS on success; exits non-zero with a reason otherwise.
"""
import sys

import pylibmc

port, user, password, expect = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
mc = pylibmc.Client(
    ["127.0.0.1:" + port], binary=True, username=user, password=password,
    behaviors={"connect_timeout": 2000, "retry_timeout": 0},
)
if expect == "ok":
    mc.set("pl:key", "value")
    assert mc.get("pl:key") == "value", mc.get("pl:key")
    mc.set("pl:n", 5)
    assert mc.incr("pl:n", 2) == 7
    assert mc.add("pl:key", "x") is False
    mc.delete("pl:key")
    assert mc.get("pl:key") is None
    mc.set_multi({"a": 1, "b": 2})
    assert mc.get_multi(["a", "b", "c"]) == {"a": 1, "b": 2}
else:
    try:
        mc.set("pl:intruder", "x")
    except pylibmc.Error as e:
        print("refused:", type(e).__name__)
    else:
        sys.exit("wrong password accepted")
print("PASS")
