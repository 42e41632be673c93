//! The `ferrocache` command: parse memcached-compatible flags, start the
//! server, print where it listens, and stop cleanly on SIGTERM/SIGINT or the
//! `shutdown` command.

use std::process::ExitCode;

use clap::Parser;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use ferrocache::config::{Args, Settings};
use ferrocache::server::Server;
use ferrocache::state::ShutdownCause;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            // Help and version go to stdout with success; real errors are one
            // line on stderr and a non-zero exit.
            if !e.use_stderr() {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or("invalid arguments");
            eprintln!("ferrocache: {}", first.trim_start_matches("error: "));
            return ExitCode::from(64);
        }
    };
    let settings = match Settings::from_args(&args) {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("ferrocache: {msg}");
            return ExitCode::from(64);
        }
    };

    let server = match Server::start(settings) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ferrocache: {e}");
            return ExitCode::from(71);
        }
    };
    let state = server.state().clone();
    let mut signals = match Signals::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ferrocache: cannot install signal handlers: {e}");
            return ExitCode::from(71);
        }
    };
    // The documented start-up line, one per listener: tests and scripts that
    // start the server with -p 0 read the port from it. Printed once the
    // signal handlers are in place, so a signal sent on seeing it is handled.
    for addr in server.local_addrs() {
        eprintln!("ferrocache listening on {addr}");
    }
    let handle = signals.handle();
    let watcher = std::thread::spawn(move || {
        for signal in signals.forever() {
            if signal == SIGHUP {
                state.reload();
            } else {
                state.request_shutdown(ShutdownCause::Signal);
                return;
            }
        }
    });

    let cause = server.wait_for_shutdown_request();
    server
        .state()
        .log(1, format_args!("shutting down ({cause:?})"));
    server.shutdown();
    handle.close();
    let _ = watcher.join();
    ExitCode::SUCCESS
}
