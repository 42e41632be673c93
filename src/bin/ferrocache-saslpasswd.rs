//! Writes a salted SASL user entry, so that no password has to sit on disk.
//!
//! ```text
//! ferrocache-saslpasswd [-i ITERATIONS] [-f FILE] USER    (password on stdin)
//! ```
//! Reads the password from the first line of standard input and prints the
//! entry (`USER:$scram$…`), or with `-f FILE` replaces USER's line in FILE
//! (appending it when absent). The entry serves PLAIN, SCRAM-SHA-256 and
//! SCRAM-SHA-1.

use std::io::BufRead;
use std::process::ExitCode;

use ferrocache::auth::db::{hash_entry, DEFAULT_ITERATIONS, MAX_ITERATIONS};

fn usage() -> ExitCode {
    eprintln!(
        "usage: ferrocache-saslpasswd [-i ITERATIONS (1..={MAX_ITERATIONS})] [-f FILE] USER  \
         (password on stdin)"
    );
    ExitCode::from(64)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut iterations = DEFAULT_ITERATIONS;
    let mut file = None;
    let mut user = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "-i" => match args.next().and_then(|v| v.parse().ok()) {
                Some(n) if n > 0 && n <= MAX_ITERATIONS => iterations = n,
                _ => return usage(),
            },
            "-f" => match args.next() {
                Some(f) => file = Some(f),
                None => return usage(),
            },
            "-h" | "--help" => return usage(),
            _ if user.is_none() && !a.starts_with('-') => user = Some(a),
            _ => return usage(),
        }
    }
    let Some(user) = user else {
        return usage();
    };
    if user.contains(':') || user.contains('\n') {
        eprintln!("ferrocache-saslpasswd: a user name cannot contain ':' or a newline");
        return ExitCode::from(64);
    }
    let mut password = String::new();
    if std::io::stdin().lock().read_line(&mut password).is_err() {
        eprintln!("ferrocache-saslpasswd: cannot read the password from stdin");
        return ExitCode::from(66);
    }
    let password = password.trim_end_matches(['\n', '\r']);
    let entry = hash_entry(&user, password.as_bytes(), iterations);
    let Some(file) = file else {
        println!("{entry}");
        return ExitCode::SUCCESS;
    };
    let old = std::fs::read_to_string(&file).unwrap_or_default();
    let prefix = format!("{user}:");
    let mut lines: Vec<&str> = old.lines().filter(|l| !l.starts_with(&prefix)).collect();
    lines.push(&entry);
    let mut text = lines.join("\n");
    text.push('\n');
    if let Err(e) = std::fs::write(&file, text) {
        eprintln!("ferrocache-saslpasswd: {file}: {e}");
        return ExitCode::from(73);
    }
    ExitCode::SUCCESS
}
