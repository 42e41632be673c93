//! The server's SASL handling: arbitrary mechanism names and AUTH/STEP
//! payload sequences, sent as binary-protocol frames, parsed, and handed to
//! one connection's SASL session against a fixed user database (one entry
//! in clear, one salted), as the connection does; plus text-protocol
//! authentication tokens and `UserDb::parse` on arbitrary text.
//!
//! Input: lines. `AUTH <mech> <data>`, `STEP <mech> <data>`, `LIST`,
//! `TEXT <user password>`; a line `DB` makes the rest of the input a user
//! database to parse. Other lines are ignored.
//!
//! Checks, besides "no panic": a SCRAM exchange never succeeds (no input
//! can compute a proof for the random server nonce); PLAIN succeeds only
//! with a password the database accepts, for the user it names; a session
//! that ended (success or failure) refuses further steps; every reply is a
//! well-formed response frame with the status the outcome calls for; a
//! parsed database has no more users than lines.
//!
//! Shared by the fuzz target `sasl` and by `tests/fuzz_regressions.rs`,
//! which replays the inputs under `fuzz/regressions/sasl/`.

use std::sync::{Arc, OnceLock};

use ferrocache::auth::{Auth, Sasl, SaslConn, Step, UserDb};
use ferrocache::protocol::binary::{self, opcode, Frame, Reply, Status};
use ferrocache::protocol::{Limits, Request};

/// `alice` in clear; `bob` salted (password `hunter2`, 16 iterations, salt
/// 1..=16), so SCRAM for him is served from stored keys.
const DB: &str = "# fixed users\n\
alice:s3cret\n\
bob:$scram$16$AQIDBAUGBwgJCgsMDQ4PEA==$OkN0cqsmY+P8vAXLACmuJWcvamoBbleYmKaxc+ATNRo=$XXKSiXxMazy3iiNzlQUw0mz1yj2wC/83LwR0Q3UCDUo=$SO8OiOaIZ57Yjw4BFGHefM9jIaw=$LP0Uq92gZcCnn7oHcDcAJsjVoRo=\n";

fn auth() -> &'static Auth {
    static AUTH: OnceLock<Auth> = OnceLock::new();
    AUTH.get_or_init(|| {
        let db = UserDb::parse(DB).expect("fixed database");
        assert!(db.verify("alice", b"s3cret") && db.verify("bob", b"hunter2"));
        Auth {
            sasl: Some(Sasl::new(Arc::new(db)).expect("SASL setup")),
            ascii: None,
            guard: None,
            files: Default::default(),
        }
    })
}

/// A SASL request as a binary frame: the mechanism is the key, the data
/// the value.
fn frame(op: u8, mech: &[u8], data: &[u8]) -> Vec<u8> {
    let mech = &mech[..mech.len().min(usize::from(u16::MAX))];
    let mut f = vec![binary::MAGIC_REQUEST, op];
    f.extend_from_slice(&(mech.len() as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0]); // extras, data type, vbucket
    f.extend_from_slice(&((mech.len() + data.len()) as u32).to_be_bytes());
    f.extend_from_slice(&[0; 12]); // opaque, cas
    f.extend_from_slice(mech);
    f.extend_from_slice(data);
    f
}

/// PLAIN's `authzid \0 authcid \0 password`.
fn plain_parts(data: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut parts = data.splitn(3, |&b| b == 0);
    Some((parts.next()?, parts.next()?, parts.next()?))
}

fn check_reply(out: &[u8], status: Status) {
    assert!(out.len() >= binary::HEADER_LEN);
    assert_eq!(out[0], binary::MAGIC_RESPONSE);
    assert_eq!(u16::from_be_bytes([out[6], out[7]]), status as u16);
    let body = u32::from_be_bytes([out[8], out[9], out[10], out[11]]) as usize;
    assert_eq!(out.len(), binary::HEADER_LEN + body);
}

fn session(script: &[u8]) {
    let auth = auth();
    let sasl = auth.sasl.as_ref().unwrap();
    let limits = Limits::default();
    let mut conn = SaslConn::default();
    // The mechanism of the exchange in progress, if any.
    let mut open: Option<Vec<u8>> = None;
    let mut out = Vec::new();
    for line in script.split(|&b| b == b'\n') {
        let (verb, rest) = match line.iter().position(|&b| b == b' ') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &[][..]),
        };
        let (op, mech, data) = match verb {
            b"AUTH" | b"STEP" => {
                let (mech, data) = match rest.iter().position(|&b| b == b' ') {
                    Some(i) => (&rest[..i], &rest[i + 1..]),
                    None => (rest, &[][..]),
                };
                let op = if verb == b"AUTH" {
                    opcode::SASL_AUTH
                } else {
                    opcode::SASL_STEP
                };
                (op, mech, data)
            }
            b"LIST" => (opcode::SASL_LIST_MECHS, &[][..], &[][..]),
            b"TEXT" => {
                let ok = auth.verify_text(rest);
                if ok {
                    let sp = rest.iter().position(|&b| b == b' ').unwrap();
                    assert!(
                        matches!(&rest[..sp], b"alice" | b"bob"),
                        "text authentication accepted {rest:?}"
                    );
                }
                continue;
            }
            _ => continue,
        };
        let bytes = frame(op, mech, data);
        let (header, request) = match binary::parse(&bytes, &limits) {
            Frame::Request {
                header,
                request,
                consumed,
            } => {
                assert_eq!(consumed, bytes.len());
                (header, request)
            }
            // Refused before it reaches the session (key too long, a
            // LIST with a body, ...): the connection answers an error.
            Frame::Error { header, status, .. } => {
                out.clear();
                Reply::new(header, &Request::Noop).error(status, &mut out);
                check_reply(&out, status);
                continue;
            }
            other => panic!("a whole SASL frame parsed as {other:?}"),
        };
        let reply = Reply::new(header, &request);
        out.clear();
        let step = match request {
            Request::SaslAuth { mech, data } => {
                let step = conn.start(sasl, mech, data);
                open = matches!(step, Step::Continue(_)).then(|| mech.to_vec());
                (mech, data, step)
            }
            Request::SaslStep { mech, data } => {
                let was_open = open.as_deref() == Some(mech);
                let step = conn.step(mech, data);
                if !was_open {
                    assert_eq!(step, Step::Failed, "a step outside an exchange");
                }
                open = matches!(step, Step::Continue(_)).then(|| mech.to_vec());
                (mech, data, step)
            }
            Request::SaslListMechs => {
                reply.value(
                    Status::Success,
                    ferrocache::auth::sasl::MECHANISMS.as_bytes(),
                    &mut out,
                );
                check_reply(&out, Status::Success);
                continue;
            }
            other => panic!("a SASL frame parsed as {other:?}"),
        };
        let (mech, data, step) = step;
        match step {
            Step::Continue(challenge) => {
                reply.value(Status::AuthContinue, &challenge, &mut out);
                check_reply(&out, Status::AuthContinue);
            }
            Step::Done { user, data: fin } => {
                assert!(
                    !mech.starts_with(b"SCRAM"),
                    "SCRAM authenticated {user} without a proof"
                );
                assert_eq!(mech, b"PLAIN", "{user} authenticated by {mech:?}");
                let (authz, authc, password) = plain_parts(data).expect("PLAIN message");
                assert_eq!(authc, user.as_bytes());
                assert!(authz.is_empty() || authz == authc);
                assert!(
                    auth.sasl.as_ref().unwrap().db().verify(&user, password),
                    "{user} authenticated with a wrong password"
                );
                let fin: &[u8] = if fin.is_empty() {
                    b"Authenticated"
                } else {
                    &fin
                };
                reply.value(Status::Success, fin, &mut out);
                check_reply(&out, Status::Success);
                // A finished exchange takes no more steps.
                assert_eq!(conn.step(mech, b""), Step::Failed);
                open = None;
            }
            Step::Failed => {
                reply.error(Status::AuthError, &mut out);
                check_reply(&out, Status::AuthError);
                assert_eq!(conn.step(mech, b""), Step::Failed);
                open = None;
            }
        }
    }
}

/// Whether `UserDb::parse` would derive SCRAM keys for a line: an entry
/// in clear costs two PBKDF2 derivations of 4096 iterations, which under
/// the fuzzer's instrumentation takes seconds. Such inputs are skipped;
/// the fixed database covers that branch.
fn derives(line: &str) -> bool {
    let line = line.strip_suffix('\r').unwrap_or(line);
    match line.split_once(':') {
        Some((user, secret)) => {
            !line.starts_with('#')
                && !user.is_empty()
                && user.len() <= 1024
                && secret.len() <= 1024
                && !secret.starts_with("$scram$")
        }
        None => false,
    }
}

/// `UserDb::parse` on arbitrary text.
fn database(text: &[u8]) {
    let text = String::from_utf8_lossy(text);
    if text.lines().any(derives) {
        return;
    }
    if let Ok(db) = UserDb::parse(&text) {
        assert!(db.len() <= text.lines().count());
        assert!(!db.verify("", b""));
    }
}

/// Runs one input; panics on a violated check.
pub fn run(data: &[u8]) {
    const DB_MARK: &[u8] = b"DB\n";
    match data.windows(DB_MARK.len()).position(|w| w == DB_MARK) {
        Some(i) => {
            session(&data[..i]);
            database(&data[i + DB_MARK.len()..]);
        }
        None => session(data),
    }
}
