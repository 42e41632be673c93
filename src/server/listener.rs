//! Listening sockets, built with socket2 so that backlog and socket options
//! match memcached's (SO_REUSEADDR, SO_REUSEPORT, IPv6-only for v6).

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Binds a non-blocking listener. SO_REUSEPORT lets a replacement process
/// bind the same port before the old one exits (restarts without a gap).
pub fn bind(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Binds every address on `port`. With port 0 the first listener picks an
/// ephemeral port and the others reuse it, so one port serves all addresses.
pub fn bind_all(
    addrs: &[std::net::IpAddr],
    port: u16,
    backlog: i32,
) -> io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::with_capacity(addrs.len());
    let mut port = port;
    for ip in addrs {
        let l = bind(SocketAddr::new(*ip, port), backlog).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("failed to listen on {}: {e}", SocketAddr::new(*ip, port)),
            )
        })?;
        if port == 0 {
            port = l.local_addr()?.port();
        }
        listeners.push(l);
    }
    Ok(listeners)
}
