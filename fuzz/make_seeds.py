#!/usr/bin/env python3
"""Writes the seed corpora of the exec, sasl, cluster and client_payload
fuzz targets (fuzz/seeds/<target>/). The text, meta and binary seeds are
hand-written files. Run from anywhere: python3 fuzz/make_seeds.py"""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def frame(op, key=b"", value=b"", extras=b"", cas=0, opaque=0):
    """A binary-protocol request frame."""
    body = len(extras) + len(key) + len(value)
    head = struct.pack(">BBHBBHIIQ", 0x80, op, len(key), len(extras), 0, 0, body, opaque, cas)
    return head + extras + key + value


# exec: two header bytes (settings, split/clock jump), then the stream.
SETTINGS_DEFAULT = 0x00  # 2 MB, 1 MB pages
SETTINGS_TINY = 0x02  # 16 KB, 1 KB pages: fills and evicts quickly
SETTINGS_NOEVICT = 0x06  # tiny, -M
JUMP = 0xA5  # split at 5 * 37, clock +100 s between the reads

write("exec", "storage_mix", bytes([SETTINGS_DEFAULT, 0]) +
      b"set a 1 0 3\r\nabc\r\nadd a 0 0 1\r\nx\r\nappend a 0 0 2\r\nde\r\n"
      b"prepend a 0 0 1\r\nz\r\nreplace b 0 0 1\r\ny\r\ngets a\r\n"
      b"cas a 0 0 1 1\r\nq\r\nincr n 1\r\nset n 0 0 2\r\n10\r\nincr n 5\r\n"
      b"decr n 100\r\ndelete a\r\ntouch n 10\r\ngat 0 n\r\ngats 10 n a\r\n")
write("exec", "multiget_pause", bytes([SETTINGS_DEFAULT, 0]) +
      b"set big 0 0 1000\r\n" + b"v" * 1000 + b"\r\n" + b"get" + b" big" * 12 + b"\r\n"
      b"gets big missing big big big big big\r\n")
write("exec", "expiry", bytes([SETTINGS_DEFAULT, JUMP]) +
      b"set e 0 1 1\r\n1\r\nset f 0 200 1\r\n2\r\nset g 0 -1 1\r\n3\r\n"
      b"flush_all 50\r\nmg e v t\r\nmg f v t\r\nget e f g\r\n"
      b"get e f g\r\nmg f v t c\r\nstats items\r\n")
write("exec", "evict", bytes([SETTINGS_TINY, 0]) +
      b"".join(b"set k%d 0 0 200\r\n%s\r\n" % (i, bytes([65 + i % 26]) * 200) for i in range(40)) +
      b"get k0 k1 k39\r\nstats slabs\r\nstats\r\nslabs reassign -1 1\r\nslabs automove 2\r\n"
      b"slabs reassign 1 -1\r\nslabs automove ratio 0.5\r\n")
write("exec", "no_evict", bytes([SETTINGS_NOEVICT, 0]) +
      b"".join(b"set k%d 0 0 300\r\n%s\r\n" % (i, b"x" * 300) for i in range(30)) +
      b"incr k1 1\r\nappend k2 0 0 900\r\n" + b"y" * 900 + b"\r\n")
write("exec", "meta", bytes([SETTINGS_DEFAULT, 0]) +
      b"ms m 3 T0 F5 I\r\nabc\r\nmg m v f t c k s O123 q\r\nmg m v N30 R5\r\n"
      b"ma m MI D1\r\nma n N0 J7 MD\r\nms m 2 MA\r\nxy\r\nms m 2 MP\r\nzz\r\n"
      b"md m I T30\r\nmg m v\r\nmd m q\r\nme m\r\nmn\r\nms b 3 b\r\nabc\r\n"
      b"mg YmluYXJ5 b v\r\n")
write("exec", "admin", bytes([SETTINGS_DEFAULT, 0]) +
      b"version\r\nverbosity 1\r\nstats settings\r\nstats sizes\r\nstats conns\r\n"
      b"stats detail on\r\nstats reset\r\ncache_memlimit 8\r\ncache_memlimit 7\r\n"
      b"flush_all 0\r\nflush_all noreply\r\nshutdown\r\nquit\r\n")
write("exec", "metadump_pause", bytes([SETTINGS_DEFAULT, 0]) +
      b"".join(b"set %s%d 0 %d 1\r\nv\r\n" % (b"k" * 90, i, i % 3) for i in range(150)) +
      b"get " + b"k" * 90 + b"7\r\nlru_crawler metadump all\r\nlru_crawler metadump 1,x\r\n"
      b"lru_crawler metadump hash\r\nlru_crawler crawl all\r\nlru_crawler enable\r\n")
CFG = b"5\na|127.0.0.1|11211 b|127.0.0.2|11212\n"
write("exec", "config_cluster", bytes([SETTINGS_DEFAULT, 0]) +
      b"config get cluster\r\nget AmazonElastiCache:cluster\r\n"
      b"config set cluster 0 0 %d\r\n%s\r\n" % (len(CFG), CFG) +
      b"config get cluster\r\nconfig delete cluster\r\nconfig list\r\n")
sync = (b"ferrocache-cluster 1\npublished 3 a|127.0.0.1|11211 b||7\n"
        b"base 2 a|127.0.0.1|11211 b||7\nmax 9\nnode 5 0 3 3 100 b||7\n")
write("exec", "cluster_sync", bytes([SETTINGS_DEFAULT, 0]) +
      b"cluster sync %d\r\n%s\r\nconfig get cluster\r\n" % (len(sync), sync))
write("exec", "binary", bytes([SETTINGS_DEFAULT, 0]) +
      frame(0x01, b"k", b"value", extras=struct.pack(">II", 7, 0)) +
      frame(0x00, b"k") + frame(0x0C, b"k") + frame(0x09, b"nope") +
      frame(0x05, b"n", extras=struct.pack(">QQI", 1, 10, 0)) +
      frame(0x06, b"n", extras=struct.pack(">QQI", 3, 0, 0)) +
      frame(0x0E, b"k", b"++") + frame(0x1D, b"k", extras=struct.pack(">I", 100)) +
      frame(0x04, b"k", cas=12345) + frame(0x10) + frame(0x10, b"settings") +
      frame(0x60, b"cluster") + frame(0x68) + frame(0x21, b"PLAIN", b"\0a\0b") +
      frame(0x08, extras=struct.pack(">I", 0)) + frame(0x0A) + frame(0x07))
write("exec", "binary_too_large", bytes([SETTINGS_TINY, 0]) +
      frame(0x01, b"big", b"x" * 2000, extras=struct.pack(">II", 0, 0)) +
      frame(0x11, b"q", b"v", extras=struct.pack(">II", 0, 0)) + frame(0x0A))

# sasl: lines of AUTH/STEP/LIST/TEXT, optionally DB\n and a user database.
write("sasl", "plain_ok", b"LIST\nAUTH PLAIN \0alice\0s3cret\n")
write("sasl", "plain_salted", b"AUTH PLAIN bob\0bob\0hunter2\nAUTH PLAIN \0bob\0wrong\n")
write("sasl", "scram256", b"AUTH SCRAM-SHA-256 n,,n=bob,r=rOprNGfwEbeRWgbNEkqO\n"
      b"STEP SCRAM-SHA-256 c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
      b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=\n")
write("sasl", "scram1", b"AUTH SCRAM-SHA-1 n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL\n"
      b"STEP SCRAM-SHA-1 c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
      b"p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=\nSTEP SCRAM-SHA-1 \n")
write("sasl", "wrong_mech", b"AUTH CRAM-MD5 x\nAUTH plain \0alice\0s3cret\nSTEP PLAIN x\n"
      b"AUTH SCRAM-SHA-256-PLUS p=tls-unique,,n=bob,r=x\nAUTH  \n")
write("sasl", "text", b"TEXT alice s3cret\nTEXT bob hunter2\nTEXT alice\nTEXT carol x\n")
write("sasl", "db", b"LIST\nDB\n# users\n\r\nv:$scram$16$AQIDBAUGBwgJCgsMDQ4PEA==$"
      b"OkN0cqsmY+P8vAXLACmuJWcvamoBbleYmKaxc+ATNRo=$XXKSiXxMazy3iiNzlQUw0mz1yj2wC/83LwR0Q3UCDUo=$"
      b"SO8OiOaIZ57Yjw4BFGHefM9jIaw=$LP0Uq92gZcCnn7oHcDcAJsjVoRo=\n\nw:$scram$1$$$$$\n")
write("sasl", "db_bad", b"DB\nnocolon\n:pw\nu:$scram$0$$$$$\n")

# cluster: a selector byte (0 node file, 1 list, 2 payload, 3 sync state;
# for sync, higher bits choose how the node booted and the time passed).
write("cluster", "nodefile", b"\x00# c\na|10.0.0.1|11211\n1b||7  # comment\r\nc|::1|65535\n\n")
write("cluster", "list", b"\x01b|1.1.1.1|3 a|2.2.2.2|1  a|1.1.1.1|2 A||9")
write("cluster", "payload", b"\x0242\r\na|10.0.0.1|11211 1b||7 c|::ffff:1.2.3.4|65535\r\n")
write("cluster", "sync", b"\x03" + sync)
write("cluster", "sync_me", b"\x07ferrocache-cluster 1\npublished 1417 a|127.0.0.1|11211\n"
      b"base 0\nmax 2000\nnode 1800000000000 1 1417 417 250 a|127.0.0.1|11211\n"
      b"node 7 0 0 999 18446744073709551615 c|10.0.0.3|1\n")
write("cluster", "sync_joined", b"\x0bferrocache-cluster 1\npublished 5 b|127.0.0.2|11211\n"
      b"base 1 a|127.0.0.1|11211 b|127.0.0.2|11211\nmax 1005\n"
      b"node 1 0 1005 5 0 z||9\n")

# client_payload: payloads and whole replies.
write("client_payload", "payload", b"1\nlocalhost|127.0.0.1|39211 localhost|127.0.0.1|39212\n")
write("client_payload", "aws", b"1\ntest1.rtstcw.0001.apne1.cache.amazonaws.com|172.31.12.60|11211 "
      b"test1.rtstcw.0002.apne1.cache.amazonaws.com|172.31.3.240|11211\n")
for name, head, body in [
    ("config_reply", b"CONFIG cluster 0", b"12\nh|::1|1 h2||65535\n"),
    ("legacy_reply", b"VALUE AmazonElastiCache:cluster 0", b"3\r\na||1  b||2\r\n"),
]:
    write("client_payload", name, b"%s %d\r\n%s\r\nEND\r\n" % (head, len(body), body))
write("client_payload", "errors", b"SERVER_ERROR out of memory\r\n")
write("client_payload", "not_found", b"END\r\n")
