//! The binary protocol, basics (a connection whose first byte is 0x80): headers, status codes and
//! bodies as memcached 1.6 sends them.

mod common;
use common::*;

const GET: u8 = 0x00;
const SET: u8 = 0x01;
const ADD: u8 = 0x02;
const REPLACE: u8 = 0x03;
const DELETE: u8 = 0x04;
const INCR: u8 = 0x05;
const DECR: u8 = 0x06;
const QUIT: u8 = 0x07;
const FLUSH: u8 = 0x08;
const GETQ: u8 = 0x09;
const NOOP: u8 = 0x0a;
const VERSION: u8 = 0x0b;
const GETK: u8 = 0x0c;
const APPEND: u8 = 0x0e;
const PREPEND: u8 = 0x0f;
const STAT: u8 = 0x10;
const SETQ: u8 = 0x11;
const TOUCH: u8 = 0x1c;
const GAT: u8 = 0x1d;

#[derive(Default)]
struct Req<'a> {
    op: u8,
    key: &'a [u8],
    extras: Vec<u8>,
    value: &'a [u8],
    cas: u64,
    opaque: u32,
}

impl Req<'_> {
    fn bytes(&self) -> Vec<u8> {
        let body = self.key.len() + self.extras.len() + self.value.len();
        let mut b = vec![0x80, self.op];
        b.extend((self.key.len() as u16).to_be_bytes());
        b.push(self.extras.len() as u8);
        b.push(0); // data type
        b.extend(0u16.to_be_bytes()); // vbucket
        b.extend((body as u32).to_be_bytes());
        b.extend(self.opaque.to_be_bytes());
        b.extend(self.cas.to_be_bytes());
        b.extend(&self.extras);
        b.extend(self.key);
        b.extend(self.value);
        b
    }
}

fn storage_extras(flags: u32, exptime: u32) -> Vec<u8> {
    [flags.to_be_bytes(), exptime.to_be_bytes()].concat()
}

fn arith_extras(delta: u64, initial: u64, exptime: u32) -> Vec<u8> {
    [
        &delta.to_be_bytes()[..],
        &initial.to_be_bytes(),
        &exptime.to_be_bytes(),
    ]
    .concat()
}

#[derive(Debug, PartialEq)]
struct Resp {
    op: u8,
    status: u16,
    opaque: u32,
    cas: u64,
    extras: Vec<u8>,
    key: Vec<u8>,
    value: Vec<u8>,
}

#[track_caller]
fn read_resp(c: &mut Conn) -> Resp {
    let h = c.read_exact_n(24);
    assert_eq!(h[0], 0x81, "response magic in header {}", esc(&h));
    let klen = u16::from_be_bytes([h[2], h[3]]) as usize;
    let elen = h[4] as usize;
    assert_eq!(h[5], 0, "data type");
    let status = u16::from_be_bytes([h[6], h[7]]);
    let total = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
    let opaque = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
    let cas = u64::from_be_bytes(h[16..24].try_into().unwrap());
    let body = c.read_exact_n(total);
    Resp {
        op: h[1],
        status,
        opaque,
        cas,
        extras: body[..elen].to_vec(),
        key: body[elen..elen + klen].to_vec(),
        value: body[elen + klen..].to_vec(),
    }
}

#[track_caller]
fn call(c: &mut Conn, r: Req) -> Resp {
    c.send(&r.bytes());
    let resp = read_resp(c);
    assert_eq!(resp.op, r.op, "response opcode");
    assert_eq!(resp.opaque, r.opaque, "opaque must be echoed");
    resp
}

fn set(c: &mut Conn, key: &[u8], value: &[u8], flags: u32) -> Resp {
    call(
        c,
        Req {
            op: SET,
            key,
            value,
            extras: storage_extras(flags, 0),
            ..Default::default()
        },
    )
}

#[track_caller]
fn assert_status(r: &Resp, status: u16, body: &[u8]) {
    assert_eq!(r.status, status, "status of {r:?}");
    assert_eq!(esc(&r.value), esc(body), "body of {r:?}");
    if status != 0 {
        assert_eq!(r.cas, 0);
        assert!(r.extras.is_empty() && r.key.is_empty());
    }
}

#[test]
fn noop_and_version() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let r = call(
        &mut c,
        Req {
            op: NOOP,
            opaque: 77,
            ..Default::default()
        },
    );
    assert_eq!(
        r,
        Resp {
            op: NOOP,
            status: 0,
            opaque: 77,
            cas: 0,
            extras: vec![],
            key: vec![],
            value: vec![]
        }
    );
    let r = call(
        &mut c,
        Req {
            op: VERSION,
            ..Default::default()
        },
    );
    assert_eq!(r.status, 0);
    let v = String::from_utf8(r.value).unwrap();
    assert!(
        v.split('.').take(3).all(|p| p.parse::<u32>().is_ok()),
        "version {v:?}"
    );
}

#[test]
fn set_get_getk() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let r = call(
        &mut c,
        Req {
            op: SET,
            key: b"k",
            value: b"v",
            extras: storage_extras(7, 0),
            opaque: 5,
            ..Default::default()
        },
    );
    assert_status(&r, 0, b"");
    assert_ne!(r.cas, 0, "set returns the new CAS");
    let cas = r.cas;
    let r = call(
        &mut c,
        Req {
            op: GET,
            key: b"k",
            ..Default::default()
        },
    );
    assert_eq!(
        r,
        Resp {
            op: GET,
            status: 0,
            opaque: 0,
            cas,
            extras: 7u32.to_be_bytes().to_vec(),
            key: vec![],
            value: b"v".to_vec()
        }
    );
    let r = call(
        &mut c,
        Req {
            op: GETK,
            key: b"k",
            ..Default::default()
        },
    );
    assert_eq!(
        r,
        Resp {
            op: GETK,
            status: 0,
            opaque: 0,
            cas,
            extras: 7u32.to_be_bytes().to_vec(),
            key: b"k".to_vec(),
            value: b"v".to_vec()
        }
    );
    // The text protocol sees the same item.
    let mut t = s.conn();
    t.roundtrip(
        b"gets k\r\n",
        format!("VALUE k 7 1 {cas}\r\nv\r\nEND\r\n").as_bytes(),
    );
}

#[test]
fn misses_and_conflicts() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    assert_status(
        &call(
            &mut c,
            Req {
                op: GET,
                key: b"nope",
                ..Default::default()
            },
        ),
        1,
        b"Not found",
    );
    set(&mut c, b"k", b"v", 0);
    let r = call(
        &mut c,
        Req {
            op: ADD,
            key: b"k",
            value: b"x",
            extras: storage_extras(0, 0),
            ..Default::default()
        },
    );
    assert_status(&r, 2, b"Data exists for key.");
    let r = call(
        &mut c,
        Req {
            op: REPLACE,
            key: b"nope",
            value: b"x",
            extras: storage_extras(0, 0),
            ..Default::default()
        },
    );
    assert_status(&r, 1, b"Not found");
    let r = call(
        &mut c,
        Req {
            op: SET,
            key: b"k",
            value: b"z",
            extras: storage_extras(0, 0),
            cas: 12345,
            ..Default::default()
        },
    );
    assert_status(&r, 2, b"Data exists for key.");
    assert_status(
        &call(
            &mut c,
            Req {
                op: DELETE,
                key: b"k",
                ..Default::default()
            },
        ),
        0,
        b"",
    );
    assert_status(
        &call(
            &mut c,
            Req {
                op: DELETE,
                key: b"k",
                ..Default::default()
            },
        ),
        1,
        b"Not found",
    );
}

#[test]
fn incr_decr() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    // Missing key with exptime != 0xffffffff: created with the initial value.
    let r = call(
        &mut c,
        Req {
            op: INCR,
            key: b"n",
            extras: arith_extras(3, 10, 0),
            ..Default::default()
        },
    );
    assert_status(&r, 0, &10u64.to_be_bytes());
    let r = call(
        &mut c,
        Req {
            op: INCR,
            key: b"n",
            extras: arith_extras(3, 10, 0),
            ..Default::default()
        },
    );
    assert_status(&r, 0, &13u64.to_be_bytes());
    let r = call(
        &mut c,
        Req {
            op: DECR,
            key: b"n",
            extras: arith_extras(100, 10, 0),
            ..Default::default()
        },
    );
    assert_status(&r, 0, &0u64.to_be_bytes());
    let r = call(
        &mut c,
        Req {
            op: INCR,
            key: b"n2",
            extras: arith_extras(3, 10, 0xffff_ffff),
            ..Default::default()
        },
    );
    assert_status(&r, 1, b"Not found");
    set(&mut c, b"t", b"abc", 0);
    let r = call(
        &mut c,
        Req {
            op: INCR,
            key: b"t",
            extras: arith_extras(1, 0, 0),
            ..Default::default()
        },
    );
    assert_status(&r, 6, b"Non-numeric server-side value for incr or decr");
}

#[test]
fn quiet_commands_answer_only_what_matters() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let mut batch = Req {
        op: SETQ,
        key: b"q",
        value: b"Q",
        extras: storage_extras(0, 0),
        ..Default::default()
    }
    .bytes();
    batch.extend(
        Req {
            op: GETQ,
            key: b"nope",
            opaque: 8,
            ..Default::default()
        }
        .bytes(),
    );
    batch.extend(
        Req {
            op: GETQ,
            key: b"q",
            opaque: 9,
            ..Default::default()
        }
        .bytes(),
    );
    batch.extend(
        Req {
            op: NOOP,
            opaque: 10,
            ..Default::default()
        }
        .bytes(),
    );
    c.send(&batch);
    let r = read_resp(&mut c);
    assert_eq!((r.op, r.status, r.opaque), (GETQ, 0, 9), "{r:?}");
    assert_eq!(r.value, b"Q");
    let r = read_resp(&mut c);
    assert_eq!((r.op, r.status, r.opaque), (NOOP, 0, 10), "{r:?}");
}

#[test]
fn unknown_opcode() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let r = call(
        &mut c,
        Req {
            op: 0x50,
            ..Default::default()
        },
    );
    assert_status(&r, 0x81, b"Unknown command");
    call(
        &mut c,
        Req {
            op: NOOP,
            ..Default::default()
        },
    );
}

#[test]
fn too_large_value() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let big = vec![b'x'; 1024 * 1024 + 10];
    let r = call(
        &mut c,
        Req {
            op: SET,
            key: b"big",
            value: &big,
            extras: storage_extras(0, 0),
            ..Default::default()
        },
    );
    assert_status(&r, 3, b"Too large.");
    assert_status(
        &call(
            &mut c,
            Req {
                op: NOOP,
                ..Default::default()
            },
        ),
        0,
        b"",
    );
}

#[test]
fn append_prepend_touch_gat() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    set(&mut c, b"t", b"abc", 0);
    assert_status(
        &call(
            &mut c,
            Req {
                op: APPEND,
                key: b"t",
                value: b"!!",
                ..Default::default()
            },
        ),
        0,
        b"",
    );
    assert_status(
        &call(
            &mut c,
            Req {
                op: PREPEND,
                key: b"t",
                value: b"<<",
                ..Default::default()
            },
        ),
        0,
        b"",
    );
    let r = call(
        &mut c,
        Req {
            op: GET,
            key: b"t",
            ..Default::default()
        },
    );
    assert_status(&r, 0, b"<<abc!!");
    let r = call(
        &mut c,
        Req {
            op: TOUCH,
            key: b"t",
            extras: 100u32.to_be_bytes().to_vec(),
            ..Default::default()
        },
    );
    assert_eq!(
        (r.status, r.extras.as_slice(), r.value.as_slice()),
        (0, &[0u8, 0, 0, 0][..], &b""[..])
    );
    let r = call(
        &mut c,
        Req {
            op: GAT,
            key: b"t",
            extras: 100u32.to_be_bytes().to_vec(),
            ..Default::default()
        },
    );
    assert_eq!((r.status, r.value.as_slice()), (0, &b"<<abc!!"[..]));
    let r = call(
        &mut c,
        Req {
            op: APPEND,
            key: b"nope",
            value: b"x",
            ..Default::default()
        },
    );
    assert_eq!(r.status, 5, "append to a missing key is NOT_STORED");
}

#[test]
fn flush_and_stat() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    set(&mut c, b"t", b"abc", 0);
    assert_status(
        &call(
            &mut c,
            Req {
                op: FLUSH,
                ..Default::default()
            },
        ),
        0,
        b"",
    );
    assert_status(
        &call(
            &mut c,
            Req {
                op: GET,
                key: b"t",
                ..Default::default()
            },
        ),
        1,
        b"Not found",
    );
    c.send(
        &Req {
            op: STAT,
            ..Default::default()
        }
        .bytes(),
    );
    let mut names = Vec::new();
    loop {
        let r = read_resp(&mut c);
        assert_eq!((r.op, r.status), (STAT, 0));
        if r.key.is_empty() {
            assert!(r.value.is_empty(), "the closing STAT response is empty");
            break;
        }
        names.push(String::from_utf8(r.key).unwrap());
    }
    for n in ["pid", "uptime", "version", "curr_items", "cmd_get"] {
        assert!(names.iter().any(|x| x == n), "binary stats lacks {n}");
    }
}

#[test]
fn quit_answers_then_closes() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    assert_status(
        &call(
            &mut c,
            Req {
                op: QUIT,
                ..Default::default()
            },
        ),
        0,
        b"",
    );
    c.expect_closed();
}
