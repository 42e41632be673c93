//! Line framing: bare `\n`, pipelining, split writes, the 2048-byte line rule and its
//! exception for get/gets, quit.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn bare_newline_terminates_command_lines() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(
        b"set k 0 0 1\nx\r\nget k\n",
        b"STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n",
    );
    c.roundtrip(b"version\n", b"VERSION ");
    c.read_line();
    c.roundtrip(b"delete k\n", b"DELETED\r\n");
}

#[test]
fn command_names_are_case_sensitive() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("k", b"v");
    c.roundtrip(b"GET k\r\n", b"ERROR\r\n");
    c.roundtrip(b"Set k 0 0 1\r\n", b"ERROR\r\n");
    c.roundtrip(b"QUIT\r\n", b"ERROR\r\n");
    c.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n");
}

#[test]
fn empty_and_blank_lines_are_errors() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"\r\n", b"ERROR\r\n");
    c.roundtrip(b"\n", b"ERROR\r\n");
    c.roundtrip(b"   \r\n", b"ERROR\r\n");
}

#[test]
fn trailing_spaces_are_ignored() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"set k 0 0 1   \r\nx\r\n", b"STORED\r\n");
    c.roundtrip(b"get k \r\n", b"VALUE k 0 1\r\nx\r\nEND\r\n");
}

#[test]
fn many_commands_in_one_write() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let mut req = Vec::new();
    let mut want = Vec::new();
    for i in 0..200 {
        req.extend(store_cmd(
            "set",
            &format!("k{i}"),
            i,
            0,
            format!("value-{i}").as_bytes(),
            "",
        ));
        want.extend_from_slice(b"STORED\r\n");
        req.extend_from_slice(format!("get k{i}\r\n").as_bytes());
        want.extend_from_slice(
            format!(
                "VALUE k{i} {i} {}\r\nvalue-{i}\r\nEND\r\n",
                format!("value-{i}").len()
            )
            .as_bytes(),
        );
        req.extend_from_slice(format!("incr k{i} 1\r\ndelete k{i}\r\n").as_bytes());
        want.extend_from_slice(
            b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\nDELETED\r\n",
        );
    }
    c.roundtrip(&req, &want);
}

#[test]
fn one_command_byte_at_a_time() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let req = b"set k 5 0 7\r\nab\r\ncd\0\r\nget k\r\nincr nope 1\r\n";
    for b in req.iter() {
        c.send(&[*b]);
        std::thread::sleep(Duration::from_millis(1));
    }
    c.expect(b"STORED\r\nVALUE k 5 7\r\nab\r\ncd\0\r\nEND\r\nNOT_FOUND\r\n");
}

#[test]
fn command_split_across_writes_at_every_point() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let req: &[u8] = b"set k 1 0 3\r\nabc\r\n";
    for cut in 1..req.len() {
        c.send(&req[..cut]);
        std::thread::sleep(Duration::from_millis(2));
        c.send(&req[cut..]);
        c.expect(b"STORED\r\n");
    }
    c.roundtrip(b"get k\r\n", b"VALUE k 1 3\r\nabc\r\nEND\r\n");
}

#[test]
fn line_of_2000_bytes_without_newline_waits() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.send(&vec![b'x'; 2000]);
    c.expect_silence(Duration::from_millis(300));
    c.roundtrip(b"\r\n", b"ERROR\r\n");
    c.roundtrip(b"version\r\n", b"VERSION ");
}

#[test]
fn line_over_2048_bytes_without_newline_closes() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.send(&vec![b'x'; 4000]);
    c.expect_closed();
    let mut c2 = s.conn();
    c2.roundtrip(b"version\r\n", b"VERSION ");
}

#[test]
fn long_storage_line_without_newline_closes() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let mut line = b"set k 0 0 1".to_vec();
    line.extend(vec![b' '; 3000]);
    c.send(&line);
    c.expect_closed();
}

#[test]
fn long_get_line_is_allowed() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("k9999", b"v");
    let mut line = b"get".to_vec();
    for i in 0..10_000 {
        line.extend_from_slice(format!(" k{i}").as_bytes());
    }
    // Sent in two parts: the server must keep buffering the incomplete get line.
    let (a, b) = line.split_at(30_000);
    c.send(a);
    c.expect_silence(Duration::from_millis(200));
    c.send(b);
    c.roundtrip(b"\r\n", b"VALUE k9999 0 1\r\nv\r\nEND\r\n");
}

#[test]
fn long_gets_line_is_allowed() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let mut line = b"gets".to_vec();
    for i in 0..2000 {
        line.extend_from_slice(format!(" k{i}").as_bytes());
    }
    c.send(&line);
    c.expect_silence(Duration::from_millis(200));
    c.roundtrip(b"\r\n", b"END\r\n");
}

#[test]
fn quit_closes_and_ignores_the_rest() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"get a\r\nquit\r\nget a\r\n", b"END\r\n");
    c.expect_closed();
    let mut c2 = s.conn();
    c2.send(b"quit\r\n");
    c2.expect_closed();
}

#[test]
fn client_eof_closes_connection() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"set k 0 0 1\r\nv\r\n", b"STORED\r\n");
    c.shutdown_write();
    c.expect_closed();
    assert_server_healthy(&s, "k", b"v");
}

#[test]
fn large_multiget_read_slowly() {
    // A multiget far larger than socket buffers, read in small pieces with pauses: the server
    // has to stop and resume the reply many times, with output partly written each time.
    let s = Server::start(&[]);
    let mut c = s.conn();
    let keys: Vec<String> = (0..60).map(|i| format!("v{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        c.set(k, &vec![b'a' + (i % 26) as u8; 100_000]);
    }
    // A small receive buffer keeps the server's writes to this client small and partial.
    let mut c = Conn::connect_small_rcvbuf(s.addr(), 16 * 1024);
    for round in 0..12 {
        c.send(format!("get {}\r\nversion\r\n", keys.join(" ")).as_bytes());
        // Alternate between reading at once and letting the server fill the socket first.
        if round % 2 == 1 {
            std::thread::sleep(Duration::from_millis(30));
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let want_len: usize = keys
            .iter()
            .map(|k| format!("VALUE {k} 0 100000\r\n").len() + 100_002)
            .sum::<usize>()
            + b"END\r\n".len();
        while got.len() < want_len + b"VERSION ".len() || !got.ends_with(b"\r\n") {
            use std::io::Read;
            let n = match c.stream.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => r.expect("read"),
            };
            assert!(
                n > 0,
                "round {round}: connection closed after {} of {want_len} bytes",
                got.len()
            );
            got.extend_from_slice(&buf[..n]);
            std::thread::sleep(Duration::from_micros(300));
        }
        let mut want = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            want.extend(format!("VALUE {k} 0 100000\r\n").bytes());
            want.extend(vec![b'a' + (i % 26) as u8; 100_000]);
            want.extend(b"\r\n");
        }
        want.extend(b"END\r\n");
        let (head, tail) = got.split_at(want_len);
        assert!(
            head == want.as_slice(),
            "round {round}: multiget reply corrupted"
        );
        assert!(tail.starts_with(b"VERSION "), "{}", esc(tail));
    }
}
