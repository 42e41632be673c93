//! The client's side of the SASL exchange against a scripted binary server: a server that
//! cannot prove it knows the password (a wrong SCRAM signature, or success without the
//! final message) is refused, mechanisms are negotiated from the offered list, and garbage
//! in place of a reply is a protocol error, not a hang or a panic.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

use ferrocache_client::{Client, Credentials, Error, Mechanism};

/// (opcode, key, value) of one request frame.
fn read_request(s: &mut TcpStream) -> Option<(u8, Vec<u8>, Vec<u8>)> {
    let mut header = [0u8; 24];
    s.read_exact(&mut header).ok()?;
    let key_len = u16::from_be_bytes([header[2], header[3]]) as usize;
    let extras = header[4] as usize;
    let body = u32::from_be_bytes(header[8..12].try_into().unwrap()) as usize;
    let mut rest = vec![0; body];
    s.read_exact(&mut rest).ok()?;
    Some((
        header[1],
        rest[extras..extras + key_len].to_vec(),
        rest[extras + key_len..].to_vec(),
    ))
}

fn reply(s: &mut TcpStream, opcode: u8, status: u16, value: &[u8]) {
    let mut frame = vec![0x81, opcode, 0, 0, 0, 0];
    frame.extend_from_slice(&status.to_be_bytes());
    frame.extend_from_slice(&(value.len() as u32).to_be_bytes());
    frame.extend_from_slice(&[0; 12]);
    frame.extend_from_slice(value);
    let _ = s.write_all(&frame);
}

/// A one-connection-at-a-time server answering with `script`; returns its address.
fn serve(script: fn(&mut TcpStream, u8, &[u8], &[u8]) -> bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            while let Some((op, key, value)) = read_request(&mut s) {
                if !script(&mut s, op, &key, &value) {
                    break;
                }
            }
        }
    });
    address
}

/// SCRAM server-first for the client's nonce, with a fixed salt.
fn server_first(client_first: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(client_first);
    let nonce = text.split("r=").nth(1).unwrap_or("");
    format!("r={nonce}srv,s=c2FsdHNhbHQ=,i=4096").into_bytes()
}

fn client(address: &str, credentials: Credentials) -> Client {
    Client::builder()
        .server(address)
        .credentials(credentials)
        .build()
        .unwrap()
}

fn auth_message(result: Result<Option<ferrocache_client::Item>, Error>) -> String {
    match result {
        Err(Error::Auth { message, .. }) => message,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_wrong_server_signature_is_refused() {
    let address = serve(|s, op, _, value| {
        match op {
            0x20 => reply(s, op, 0, b"PLAIN SCRAM-SHA-256"),
            0x21 => reply(s, op, 0x21, &server_first(value)),
            0x22 => reply(s, op, 0, b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            // Served only if the client wrongly trusts the server.
            _ => reply(s, op, 0, b""),
        }
        true
    });
    let message = auth_message(client(&address, Credentials::new("u", "p")).get("k"));
    assert!(message.contains("SCRAM-SHA-256"), "{message}");
    assert!(message.contains("did not verify"), "{message}");
}

#[test]
fn success_without_the_final_scram_message_is_refused() {
    let address = serve(|s, op, _, _| {
        reply(
            s,
            op,
            0,
            if op == 0x20 {
                &b"SCRAM-SHA-1"[..]
            } else {
                b"Authenticated"
            },
        );
        true
    });
    let message = auth_message(client(&address, Credentials::new("u", "p")).get("k"));
    assert!(message.contains("SCRAM-SHA-1"), "{message}");
}

#[test]
fn the_best_offered_mechanism_is_used_and_plain_is_sent_as_is() {
    // Offers PLAIN only (in lower case, between unknown names): PLAIN is chosen.
    let address = serve(|s, op, key, value| {
        match op {
            0x20 => reply(s, op, 0, b"CRAM-MD5 plain GSSAPI"),
            0x21 if key == b"PLAIN" && value == b"\0web\0pw" => reply(s, op, 0, b"Authenticated"),
            0x21 => reply(s, op, 0x20, b"Auth failure."),
            // GET: a miss.
            _ => reply(s, op, 1, b"Not found"),
        }
        true
    });
    assert_eq!(
        client(&address, Credentials::new("web", "pw"))
            .get("k")
            .unwrap(),
        None
    );
    let message = auth_message(client(&address, Credentials::new("web", "nope")).get("k"));
    assert!(
        message.contains("refused user \"web\" with PLAIN"),
        "{message}"
    );
    assert!(!message.contains("nope"));

    // Nothing in common.
    let address = serve(|s, op, _, _| {
        reply(s, op, 0, b"CRAM-MD5 GSSAPI");
        true
    });
    let message = auth_message(client(&address, Credentials::new("u", "p")).get("k"));
    assert!(message.contains("no supported mechanism"), "{message}");

    // A fixed mechanism skips the list.
    let address = serve(|s, op, key, _| {
        if op == 0x20 {
            return false;
        }
        let status = if key == b"PLAIN" { 0 } else { 0x20 };
        reply(s, op, if op == 0x21 { status } else { 1 }, b"");
        true
    });
    let creds = Credentials::new("u", "p").with_mechanism(Mechanism::Plain);
    assert_eq!(client(&address, creds).get("k").unwrap(), None);
}

#[test]
fn garbage_during_the_exchange_is_a_protocol_error() {
    let address = serve(|s, _, _, _| {
        let _ = s.write_all(b"ERROR\r\n");
        true
    });
    match client(&address, Credentials::new("u", "p")).get("k") {
        Err(Error::Protocol { message, .. }) => assert!(message.contains("magic"), "{message}"),
        other => panic!("{other:?}"),
    }
    // A reply to another opcode.
    let address = serve(|s, _, _, _| {
        reply(s, 0x0b, 0, b"1.6");
        true
    });
    assert!(matches!(
        client(&address, Credentials::new("u", "p")).get("k"),
        Err(Error::Protocol { .. })
    ));
}
