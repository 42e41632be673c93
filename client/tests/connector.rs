//! The connection hook carries authentication: a connector that runs memcached's ASCII
//! authentication exchange (`-Y`) before handing the stream over. TLS plugs in the same way.

mod support;

use std::io::{self, Read, Write};
use std::sync::Arc;

use ferrocache_client::conn::Stream;
use ferrocache_client::{Client, Connector, Endpoint, Error, TcpConnector, Timeouts};
use support::{accepts, free_port, memcached_path, wait_until};

#[derive(Debug)]
struct AsciiAuth {
    user: String,
    password: String,
}

impl Connector for AsciiAuth {
    fn connect(&self, endpoint: &Endpoint, timeouts: &Timeouts) -> io::Result<Box<dyn Stream>> {
        let mut stream = TcpConnector.connect(endpoint, timeouts)?;
        let secret = format!("{} {}", self.user, self.password);
        write!(stream, "set auth 0 0 {}\r\n{secret}\r\n", secret.len())?;
        let mut reply = Vec::new();
        let mut byte = [0u8];
        while !reply.ends_with(b"\n") && reply.len() < 128 {
            stream.read_exact(&mut byte)?;
            reply.push(byte[0]);
        }
        if reply != b"STORED\r\n" {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                String::from_utf8_lossy(&reply).trim().to_owned(),
            ));
        }
        Ok(stream)
    }
}

struct Memcached(std::process::Child);

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn authenticating_connector() {
    let Some(path) = memcached_path() else {
        return require!(false, "memcached");
    };
    let dir = std::env::temp_dir().join(format!("ferrocache-client-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let auth_file = dir.join("auth");
    std::fs::write(&auth_file, "alice:s3cret\n").unwrap();
    let port = free_port();
    let _server = Memcached(
        std::process::Command::new(path)
            .args(["-u", "root", "-U", "0", "-l", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .arg("-Y")
            .arg(&auth_file)
            .spawn()
            .unwrap(),
    );
    assert!(wait_until(std::time::Duration::from_secs(5), || accepts(
        port
    )));
    let address = format!("127.0.0.1:{port}");

    // Without authentication the server refuses every command.
    let plain = Client::new([&address]).unwrap();
    match plain.get("k") {
        Err(Error::ClientError(why)) => assert_eq!(why, "unauthenticated"),
        other => panic!("{other:?}"),
    }

    let authed = Client::builder()
        .server(&address)
        .connector(Arc::new(AsciiAuth {
            user: "alice".into(),
            password: "s3cret".into(),
        }))
        .build()
        .unwrap();
    authed.set("k", "v", 0, 0).unwrap();
    assert_eq!(authed.get("k").unwrap().unwrap().value, b"v");

    // A wrong password fails at connect time, as a typed connect error.
    let wrong = Client::builder()
        .server(&address)
        .connector(Arc::new(AsciiAuth {
            user: "alice".into(),
            password: "nope".into(),
        }))
        .build()
        .unwrap();
    match wrong.get("k") {
        Err(Error::Connect { source, .. }) => {
            assert_eq!(source.kind(), io::ErrorKind::PermissionDenied);
            assert!(
                source.to_string().contains("authentication failure"),
                "{source}"
            );
        }
        other => panic!("{other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
