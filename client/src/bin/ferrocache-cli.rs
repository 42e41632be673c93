//! Command-line access to a ferrocache or memcached cluster through the bundled client.
//!
//! ```text
//! ferrocache-cli --seed cfg.example:11211 discover
//! ferrocache-cli --servers 10.0.0.1:11211,10.0.0.2:11211 ring user:42
//! ferrocache-cli --seed cfg.example:11211 set greeting hello --exptime 60
//! ferrocache-cli --seed cfg.example:11211 get greeting
//! ferrocache-cli --seed cfg.example:11211 stats
//! ferrocache-cli --seed cfg.example:11211 --tls --ca ca.pem --user app --password-file pw get k
//! ```

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use ferrocache_client::discovery::{fetch_from, ReplyForm};
use ferrocache_client::{
    parse_host_port, Client, Connector, Credentials, Endpoint, Error, Identity, Mechanism, Naming,
    Protocol, Session, TcpConnector, Timeouts, TlsConfig,
};

#[derive(Parser, Debug)]
#[command(
    name = "ferrocache-cli",
    version,
    about = "Query a ferrocache or memcached cluster: discovery, keys, stats and placement"
)]
struct Cli {
    /// Configuration endpoint(s) to discover the cluster from (host:port); repeatable.
    #[arg(long = "seed", value_name = "HOST:PORT", global = true)]
    seeds: Vec<String>,
    /// Static server list instead of discovery (comma-separated host:port).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "HOST:PORT,...",
        global = true
    )]
    servers: Vec<String>,
    /// Which clients to agree with on key placement.
    #[arg(long, value_enum, default_value_t = NamingArg::Libmemcached, global = true)]
    naming: NamingArg,
    /// Name discovered nodes on the ring by hostname or by IP.
    #[arg(long, value_enum, default_value_t = IdentityArg::Hostname, global = true)]
    identity: IdentityArg,
    /// Connect, read and write timeout in milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS", global = true)]
    timeout_ms: u64,
    /// Speak the binary protocol (implied by --user).
    #[arg(long, global = true)]
    binary: bool,
    /// SASL user name; authenticates every connection over the binary protocol.
    #[arg(long, value_name = "NAME", global = true)]
    user: Option<String>,
    /// SASL password (visible to other local users in the process list: prefer
    /// --password-file or the FERROCACHE_PASSWORD environment variable).
    #[arg(
        long,
        value_name = "PASSWORD",
        global = true,
        conflicts_with = "password_file"
    )]
    password: Option<String>,
    /// File whose first line is the SASL password.
    #[arg(long, value_name = "FILE", global = true)]
    password_file: Option<std::path::PathBuf>,
    /// SASL mechanism (default: the best one the server offers).
    #[arg(long, value_enum, global = true)]
    mechanism: Option<MechanismArg>,
    /// Connect over TLS.
    #[arg(long, global = true)]
    tls: bool,
    /// PEM file of the CA certificates to trust (implies --tls).
    #[arg(long, value_name = "FILE", global = true)]
    ca: Option<std::path::PathBuf>,
    /// PEM file of a client certificate chain, for servers that require one (with --key).
    #[arg(
        long = "cert",
        id = "tls_cert",
        value_name = "FILE",
        global = true,
        requires = "tls_key"
    )]
    cert: Option<std::path::PathBuf>,
    /// PEM file of the client certificate's private key.
    #[arg(
        long = "key",
        id = "tls_key",
        value_name = "FILE",
        global = true,
        requires = "tls_cert"
    )]
    tls_key: Option<std::path::PathBuf>,
    /// Name to check the servers' certificates against (default: each node's host).
    #[arg(long, value_name = "NAME", global = true)]
    server_name: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the cluster configuration version and node list, as each seed serves it.
    Discover,
    /// Print the values of keys (raw bytes for one key; `key flags bytes` headers for more).
    Get {
        /// Keys to read.
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Store a value.
    Set {
        /// The key.
        key: String,
        /// The value (use `-` to read it from standard input).
        value: String,
        /// Client flags stored with the value.
        #[arg(long, default_value_t = 0)]
        flags: u32,
        /// Expiration time in seconds (0: never).
        #[arg(long, default_value_t = 0)]
        exptime: u32,
    },
    /// Delete a key.
    Delete {
        /// The key.
        key: String,
    },
    /// Statistics of every node (`stats [GROUP]`).
    Stats {
        /// A stats group such as `settings`, `slabs` or `items`.
        group: Option<String>,
    },
    /// Which node holds a key, and why: its hash, the ring point and the server.
    Ring {
        /// Keys to place.
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// The nodes the client knows and their health.
    Nodes,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum NamingArg {
    /// libmemcached (weighted ketama) and twemproxy.
    Libmemcached,
    /// spymemcached.
    Spymemcached,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum MechanismArg {
    #[value(name = "PLAIN", alias = "plain")]
    Plain,
    #[value(name = "SCRAM-SHA-1", alias = "scram-sha-1")]
    ScramSha1,
    #[value(name = "SCRAM-SHA-256", alias = "scram-sha-256")]
    ScramSha256,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum IdentityArg {
    Hostname,
    Ip,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ferrocache-cli: {e}");
            ExitCode::FAILURE
        }
    }
}

fn timeouts(cli: &Cli) -> Timeouts {
    let t = Duration::from_millis(cli.timeout_ms.max(1));
    Timeouts {
        connect: t,
        read: t,
        write: t,
    }
}

/// The connector the flags ask for: TLS with --tls or --ca, else plain TCP.
fn connector(cli: &Cli) -> Result<Arc<dyn Connector>, Error> {
    if !cli.tls && cli.ca.is_none() {
        if cli.cert.is_some() || cli.server_name.is_some() {
            return Err(Error::Config(
                "--cert, --key and --server-name need --tls".into(),
            ));
        }
        return Ok(Arc::new(TcpConnector));
    }
    let Some(ca) = &cli.ca else {
        return Err(Error::Config(
            "--tls needs --ca FILE (the CA certificates to trust)".into(),
        ));
    };
    let mut tls = TlsConfig::new().ca_file(ca);
    if let (Some(cert), Some(key)) = (&cli.cert, &cli.tls_key) {
        tls = tls.client_cert_files(cert, key);
    }
    if let Some(name) = &cli.server_name {
        tls = tls.server_name(name);
    }
    Ok(Arc::new(tls.build()?))
}

/// What each connection does after opening: the protocol and the SASL login.
fn session(cli: &Cli) -> Result<Session, Error> {
    let password = match (&cli.password, &cli.password_file) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file).map_err(|e| {
                Error::Config(format!("reading the password file {}: {e}", file.display()))
            })?;
            Some(text.lines().next().unwrap_or("").to_owned())
        }
        (None, None) => std::env::var("FERROCACHE_PASSWORD").ok(),
    };
    let credentials = match (&cli.user, password) {
        (Some(user), Some(password)) => {
            let mut credentials = Credentials::new(user, password);
            if let Some(m) = cli.mechanism {
                credentials = credentials.with_mechanism(match m {
                    MechanismArg::Plain => Mechanism::Plain,
                    MechanismArg::ScramSha1 => Mechanism::ScramSha1,
                    MechanismArg::ScramSha256 => Mechanism::ScramSha256,
                });
            }
            Some(credentials)
        }
        (Some(_), None) => {
            return Err(Error::Config(
                "--user needs --password, --password-file or FERROCACHE_PASSWORD".into(),
            ))
        }
        (None, Some(_)) if cli.password.is_some() || cli.password_file.is_some() => {
            return Err(Error::Config("a password needs --user".into()))
        }
        (None, _) => None,
    };
    let protocol = if cli.binary || credentials.is_some() {
        Protocol::Binary
    } else {
        Protocol::Text
    };
    Ok(Session {
        protocol,
        credentials,
    })
}

fn client(cli: &Cli) -> Result<Client, Error> {
    let session = session(cli)?;
    let mut builder = Client::builder()
        .connector(connector(cli)?)
        .protocol(session.protocol);
    if let Some(credentials) = session.credentials {
        builder = builder.credentials(credentials);
    }
    let mut builder = builder
        .servers(&cli.servers)
        .naming(match cli.naming {
            NamingArg::Libmemcached => Naming::Libmemcached,
            NamingArg::Spymemcached => Naming::Spymemcached,
        })
        .identity(match cli.identity {
            IdentityArg::Hostname => Identity::Hostname,
            IdentityArg::Ip => Identity::Ip,
        })
        .timeouts(timeouts(cli))
        // One-shot use: no need for more than one connection per node.
        .pool_size(1);
    for seed in &cli.seeds {
        builder = builder.seed(seed);
    }
    let client = builder.build()?;
    if !cli.seeds.is_empty() && client.config_version().is_none() {
        // Construction tolerates an unreachable cluster; a one-shot command does not.
        client.refresh()?;
    }
    Ok(client)
}

fn run(cli: &Cli) -> Result<ExitCode, Error> {
    let mut out = std::io::stdout().lock();
    let io = |e: std::io::Error| Error::Config(format!("writing output: {e}"));
    match &cli.command {
        Command::Discover => {
            if cli.seeds.is_empty() {
                return Err(Error::Config("discover needs --seed".into()));
            }
            let connector = connector(cli)?;
            let session = session(cli)?;
            let mut failed = false;
            for seed in &cli.seeds {
                let (host, port) = parse_host_port(seed)?;
                let endpoint = Endpoint {
                    host,
                    ip: None,
                    port,
                };
                match fetch_from(
                    &endpoint,
                    &timeouts(cli),
                    Some(connector.as_ref()),
                    &session,
                ) {
                    Ok((config, form)) => {
                        let how = match (form, session.protocol) {
                            (ReplyForm::Config, Protocol::Text) => "config get cluster",
                            (ReplyForm::Legacy, Protocol::Text) => "get AmazonElastiCache:cluster",
                            (ReplyForm::Config, Protocol::Binary) => "binary config get cluster",
                            (ReplyForm::Legacy, Protocol::Binary) => {
                                "binary get AmazonElastiCache:cluster"
                            }
                        };
                        writeln!(out, "endpoint {endpoint} ({how})").map_err(io)?;
                        writeln!(out, "version {}", config.version).map_err(io)?;
                        for node in &config.nodes {
                            let ip = node.ip.map(|ip| ip.to_string()).unwrap_or_default();
                            writeln!(out, "node {}|{}|{}", node.host, ip, node.port).map_err(io)?;
                        }
                    }
                    Err(e) => {
                        eprintln!("ferrocache-cli: {endpoint}: {e}");
                        failed = true;
                    }
                }
            }
            return Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            });
        }
        Command::Get { keys } => {
            let client = client(cli)?;
            if let [key] = keys.as_slice() {
                return match client.get(key)? {
                    Some(item) => {
                        out.write_all(&item.value).map_err(io)?;
                        Ok(ExitCode::SUCCESS)
                    }
                    None => {
                        eprintln!("ferrocache-cli: {key}: not found");
                        Ok(ExitCode::FAILURE)
                    }
                };
            }
            let result = client.get_multi(keys)?;
            for key in keys {
                if let Some(item) = result.items.get(key.as_bytes()) {
                    writeln!(out, "{key} {} {}", item.flags, item.value.len()).map_err(io)?;
                    out.write_all(&item.value).map_err(io)?;
                    writeln!(out).map_err(io)?;
                }
            }
            for failure in &result.failed {
                eprintln!(
                    "ferrocache-cli: {} keys on {}: {}",
                    failure.keys.len(),
                    failure.node,
                    failure.error
                );
            }
            let complete = result.failed.is_empty() && result.items.len() == keys.len();
            return Ok(if complete {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        Command::Set {
            key,
            value,
            flags,
            exptime,
        } => {
            let value = if value == "-" {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(io)?;
                buf
            } else {
                value.clone().into_bytes()
            };
            client(cli)?.set(key, value, *flags, *exptime)?;
        }
        Command::Delete { key } => client(cli)?.delete(key)?,
        Command::Stats { group } => {
            let mut failed = false;
            for (node, stats) in client(cli)?.stats_group(group.as_deref())? {
                match stats {
                    Ok(stats) => {
                        for (name, value) in stats {
                            writeln!(out, "{node} {name} {value}").map_err(io)?;
                        }
                    }
                    Err(e) => {
                        eprintln!("ferrocache-cli: {node}: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Ring { keys } => {
            let client = client(cli)?;
            for key in keys {
                let p = client.locate(key)?;
                writeln!(out, "key {key}").map_err(io)?;
                writeln!(
                    out,
                    "  hash   {} (first 4 bytes of md5(key), little-endian)",
                    p.key_hash
                )
                .map_err(io)?;
                writeln!(
                    out,
                    "  point  {} (first of {} points >= hash, wrapping; {} servers)",
                    p.point, p.ring_points, p.ring_servers
                )
                .map_err(io)?;
                writeln!(
                    out,
                    "  server {} (its points hash \"{}-<i>\")",
                    p.owner, p.point_name
                )
                .map_err(io)?;
                match &p.route {
                    Ok(node) => writeln!(out, "  route  {node}").map_err(io)?,
                    Err(why) => writeln!(out, "  route  none: {why}").map_err(io)?,
                }
            }
        }
        Command::Nodes => {
            let client = client(cli)?;
            if let Some(version) = client.config_version() {
                writeln!(out, "config version {version}").map_err(io)?;
            }
            for node in client.nodes() {
                let ip = node.ip.map(|ip| ip.to_string()).unwrap_or_default();
                writeln!(out, "{} {} {:?}", node.name, ip, node.state).map_err(io)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
