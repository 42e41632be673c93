//! Settings: memcached's command-line flags (same letters, meanings and
//! defaults), `-o key=value` options, and an optional TOML file.
//!
//! Precedence: command line over `--config FILE` over built-in defaults.
//! Every invalid value is reported as one line naming the flag; `main` prints
//! it and exits non-zero.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::{ArgAction, Parser};
use serde::Deserialize;

use crate::cluster::{AdminRule, DEFAULT_FAILURE_TIMEOUT};
use crate::storage::CacheConfig;

/// The version reported by `version` and `stats`. Numeric and at least
/// 1.4.14 because auto-discovery clients choose their commands from it.
pub const VERSION: &str = "1.6.21";

/// The largest `-I` memcached accepts (1 GiB).
const ITEM_SIZE_MAX_UPPER: usize = 1024 * 1024 * 1024;
/// The smallest `-I` memcached accepts (1 KiB).
const ITEM_SIZE_MAX_LOWER: usize = 1024;

/// Command line, memcached-compatible. Values stay optional so that a config
/// file can fill what the command line leaves out.
#[derive(Parser, Debug, Default)]
#[command(
    name = "ferrocache",
    version = VERSION,
    about = "A memcached-compatible, multithreaded cache server",
    disable_version_flag = true
)]
pub struct Args {
    /// TCP port to listen on (0 = an ephemeral port, printed on stderr)
    #[arg(short = 'p', long = "port")]
    pub port: Option<u16>,
    /// Interfaces to listen on, comma separated (default: all)
    #[arg(short = 'l', long = "listen")]
    pub listen: Option<String>,
    /// Worker threads (default: one per core)
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// Item memory in megabytes
    #[arg(short = 'm', long = "memory-limit")]
    pub memory_limit: Option<u64>,
    /// Maximum simultaneous connections
    #[arg(short = 'c', long = "conn-limit")]
    pub conn_limit: Option<usize>,
    /// Largest item and slab page size, e.g. 1m, 512k (1k..1024m)
    #[arg(short = 'I', long = "max-item-size")]
    pub max_item_size: Option<String>,
    /// Chunk size growth factor between slab classes
    #[arg(short = 'f', long = "slab-growth-factor")]
    pub growth_factor: Option<f64>,
    /// Minimum space for key, value and flags in the smallest chunk
    #[arg(short = 'n', long = "slab-min-size")]
    pub slab_min_size: Option<usize>,
    /// Return an error instead of evicting when memory is full
    #[arg(short = 'M', long = "disable-evictions")]
    pub disable_evictions: bool,
    /// Disable CAS uniques
    #[arg(short = 'C', long = "disable-cas")]
    pub disable_cas: bool,
    /// Listen backlog
    #[arg(short = 'b', long = "listen-backlog")]
    pub backlog: Option<i32>,
    /// Requests served per connection before yielding to others
    #[arg(short = 'R', long = "max-reqs-per-event")]
    pub reqs_per_event: Option<usize>,
    /// Allow the `shutdown` command
    #[arg(short = 'A', long = "enable-shutdown")]
    pub enable_shutdown: bool,
    /// Disable `flush_all`
    #[arg(short = 'F', long = "disable-flush-all")]
    pub disable_flush_all: bool,
    /// UDP port (only 0: UDP is off)
    #[arg(short = 'U', long = "udp-port")]
    pub udp_port: Option<u16>,
    /// Verbose logging to stderr (-v, -vv, -vvv)
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,
    /// Print the version and exit
    #[arg(short = 'V', long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,
    /// Extended options: key=value[,key=value…] (hashpower, slab_reassign,
    /// slab_automove, lru_crawler, idle_timeout, modern, …)
    #[arg(short = 'o', long = "extended", action = ArgAction::Append)]
    pub extended: Vec<String>,
    /// Read settings from a TOML file (see conf/ferrocache.toml)
    #[arg(long = "config")]
    pub config: Option<PathBuf>,
    /// Protocols accepted: ascii, binary or auto (chosen per connection
    /// from its first byte)
    #[arg(short = 'B', long = "protocol")]
    pub protocol: Option<String>,
    /// Require SASL authentication (binary protocol; text connections may
    /// authenticate with the -Y style `set`, see docs/security.md)
    #[arg(short = 'S', long = "enable-sasl")]
    pub enable_sasl: bool,
    /// SASL user database (`user:password` or salted lines); default:
    /// $MEMCACHED_SASL_PWDB
    #[arg(long = "sasl-db")]
    pub sasl_db: Option<PathBuf>,
    /// Text-protocol authentication file (`user:password` lines, at most 8)
    #[arg(short = 'Y', long = "auth-file")]
    pub auth_file: Option<PathBuf>,
    /// Enable TLS on every listener not prefixed `notls:` in -l (certificates:
    /// -o ssl_chain_cert=FILE,ssl_key=FILE[,ssl_ca_cert=FILE,ssl_verify_mode=N])
    #[arg(short = 'Z', long = "enable-ssl")]
    pub enable_ssl: bool,
    /// Cluster node file, one host|ip|port per line, re-read when it changes
    #[arg(long = "cluster-file")]
    pub cluster_file: Option<PathBuf>,
    /// Join the cluster of the member at HOST:PORT (and leave on shutdown)
    #[arg(long = "join")]
    pub join: Option<String>,
    /// Hostname of this node in the cluster list (default: the system hostname)
    #[arg(long = "cluster-host")]
    pub cluster_host: Option<String>,
    /// IP of this node in the cluster list (default: the -l address when
    /// there is exactly one specific address, else none)
    #[arg(long = "cluster-ip")]
    pub cluster_ip: Option<String>,
    /// Networks allowed to run `config set|delete cluster`: comma-separated
    /// addresses or CIDRs, `loopback` (the default) or `none`
    #[arg(long = "cluster-admin")]
    pub cluster_admin: Option<String>,
    /// Seconds a silent node stays listed before it is dropped (0 = never;
    /// default 30)
    #[arg(long = "cluster-failure-timeout")]
    pub cluster_failure_timeout: Option<f64>,
    /// File where the cluster state is saved, so a restart never publishes
    /// an older version
    #[arg(long = "cluster-state")]
    pub cluster_state: Option<PathBuf>,
    /// File with one `user:password` line this node logs in with at peers
    /// that require authentication (-S/-Y)
    #[arg(long = "cluster-credentials")]
    pub cluster_credentials: Option<PathBuf>,
}

/// The TOML file. Every key is optional and mirrors a flag; see
/// `conf/ferrocache.toml`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub port: Option<u16>,
    pub listen: Option<String>,
    pub threads: Option<usize>,
    pub memory_limit: Option<u64>,
    pub conn_limit: Option<usize>,
    pub max_item_size: Option<String>,
    pub growth_factor: Option<f64>,
    pub slab_min_size: Option<usize>,
    pub disable_evictions: Option<bool>,
    pub disable_cas: Option<bool>,
    pub listen_backlog: Option<i32>,
    pub max_reqs_per_event: Option<usize>,
    pub enable_shutdown: Option<bool>,
    pub disable_flush_all: Option<bool>,
    pub verbose: Option<u8>,
    pub hashpower: Option<u8>,
    pub slab_reassign: Option<bool>,
    pub slab_automove: Option<u8>,
    pub lru_crawler: Option<bool>,
    pub idle_timeout: Option<u32>,
    pub auth_timeout: Option<u32>,
    pub auth_fail_burst: Option<u32>,
    pub auth_fail_rate: Option<u32>,
    pub protocol: Option<String>,
    pub enable_sasl: Option<bool>,
    pub sasl_db: Option<PathBuf>,
    pub auth_file: Option<PathBuf>,
    pub enable_ssl: Option<bool>,
    pub ssl_chain_cert: Option<PathBuf>,
    pub ssl_key: Option<PathBuf>,
    pub ssl_ca_cert: Option<PathBuf>,
    pub ssl_verify_mode: Option<u8>,
    pub ssl_min_version: Option<u8>,
    pub cluster_file: Option<PathBuf>,
    pub join: Option<String>,
    pub cluster_host: Option<String>,
    pub cluster_ip: Option<String>,
    pub cluster_admin: Option<String>,
    pub cluster_failure_timeout: Option<f64>,
    pub cluster_state: Option<PathBuf>,
    pub cluster_credentials: Option<PathBuf>,
    pub cluster_tls: Option<bool>,
    pub cluster_ca_cert: Option<PathBuf>,
}

/// Cluster auto discovery settings (see `docs/cluster.md`).
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    pub file: Option<PathBuf>,
    pub join: Option<String>,
    /// `None`: the system hostname.
    pub host: Option<String>,
    /// `None`: derived from `-l`.
    pub ip: Option<IpAddr>,
    pub admin: AdminRule,
    /// `None`: never drop a silent node.
    pub failure_timeout: Option<std::time::Duration>,
    pub state_file: Option<PathBuf>,
    /// Read from `--cluster-credentials` at start-up.
    pub credentials: Option<crate::cluster::PeerCredentials>,
    /// `-o cluster_tls`: exchange with peers over TLS; `None`: as `-Z`.
    pub tls: Option<bool>,
    /// `-o cluster_ca_cert`: CAs that sign the peers' certificates
    /// (default: `ssl_ca_cert`).
    pub ca_cert: Option<PathBuf>,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            file: None,
            join: None,
            host: None,
            ip: None,
            admin: AdminRule::default(),
            failure_timeout: Some(DEFAULT_FAILURE_TIMEOUT),
            state_file: None,
            credentials: None,
            tls: None,
            ca_cert: None,
        }
    }
}

/// Fully resolved settings the server runs with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub port: u16,
    pub listen: Vec<IpAddr>,
    pub threads: usize,
    pub max_connections: usize,
    pub backlog: i32,
    pub reqs_per_event: usize,
    pub enable_shutdown: bool,
    pub flush_enabled: bool,
    pub verbosity: u8,
    /// Seconds of inactivity before a connection is closed; 0 = never.
    pub idle_timeout: u32,
    pub cache: CacheConfig,
    /// Which protocols connections may speak (`-B`).
    pub protocol: Binding,
    /// SASL authentication required (`-S`).
    pub sasl: bool,
    /// SASL user database (`--sasl-db`; else `MEMCACHED_SASL_PWDB`).
    pub sasl_db: Option<PathBuf>,
    /// Text-protocol authentication file (`-Y`).
    pub auth_file: Option<PathBuf>,
    /// Failed-authentication throttle (`-o auth_fail_burst`, `auth_fail_rate`).
    pub auth_limits: crate::auth::guard::Limits,
    /// Seconds a connection may stay unauthenticated when authentication is
    /// on (`-o auth_timeout`); 0 = forever.
    pub auth_timeout: u32,
    /// TLS (`-Z` and the `ssl_*` options).
    pub tls: TlsSettings,
    pub cluster: ClusterSettings,
}

/// TLS settings, named after memcached's `-o ssl_*` options.
#[derive(Clone, Debug, Default)]
pub struct TlsSettings {
    /// `-Z`: listeners speak TLS unless listed in `notls`.
    pub enabled: bool,
    /// Listen addresses given as `notls:<ip>` in `-l`: plain TCP.
    pub notls: Vec<IpAddr>,
    /// `ssl_chain_cert`: the server certificate chain (PEM).
    pub chain_cert: Option<PathBuf>,
    /// `ssl_key`: the private key (PEM); default: inside `chain_cert`.
    pub key: Option<PathBuf>,
    /// `ssl_ca_cert`: CAs that sign acceptable client certificates (PEM).
    pub ca_cert: Option<PathBuf>,
    /// `ssl_verify_mode`: 0 none, 1 request, 2 require, 3 once (= require:
    /// a connection is verified once, at its handshake).
    pub verify_mode: u8,
    /// `ssl_min_version`: 0 TLSv1.0 … 3 TLSv1.3. rustls speaks TLS 1.2 and
    /// 1.3 only, so 0 and 1 mean 1.2.
    pub min_version: u8,
}

impl TlsSettings {
    /// The name `stats settings` shows for `ssl_min_version`.
    pub fn min_version_name(&self) -> &'static str {
        match self.min_version {
            0 => "tlsv1.0",
            1 => "tlsv1.1",
            2 => "tlsv1.2",
            _ => "tlsv1.3",
        }
    }
}

/// memcached's `-B`: the protocols a connection may speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Binding {
    /// Text (classic and meta) only.
    Ascii,
    /// Binary only.
    Binary,
    /// Chosen per connection from its first byte (`0x80` = binary).
    #[default]
    Auto,
}

impl Binding {
    fn parse(v: &str) -> Result<Binding, String> {
        match v {
            "ascii" => Ok(Binding::Ascii),
            "binary" => Ok(Binding::Binary),
            "auto" => Ok(Binding::Auto),
            other => Err(format!(
                "-B: invalid protocol '{other}' (expected ascii, binary or auto)"
            )),
        }
    }

    /// The name `stats settings` shows as `binding_protocol`.
    pub fn name(self) -> &'static str {
        match self {
            Binding::Ascii => "ascii",
            Binding::Binary => "binary",
            Binding::Auto => "auto-negotiate",
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            port: 11211,
            listen: vec![IpAddr::from([0, 0, 0, 0])],
            threads: default_threads(),
            max_connections: 1024,
            backlog: 1024,
            reqs_per_event: 20,
            enable_shutdown: false,
            flush_enabled: true,
            verbosity: 0,
            idle_timeout: 0,
            cache: CacheConfig::default(),
            protocol: Binding::Auto,
            sasl: false,
            sasl_db: None,
            auth_file: None,
            auth_limits: crate::auth::guard::Limits::default(),
            auth_timeout: DEFAULT_AUTH_TIMEOUT,
            tls: TlsSettings {
                min_version: 2,
                ..TlsSettings::default()
            },
            cluster: ClusterSettings::default(),
        }
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(4)
}

/// Parses a size with an optional `k`/`m`/`g` suffix (memcached's `-I`).
pub fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let (digits, unit) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1024),
        b'm' | b'M' => (&s[..s.len() - 1], 1024 * 1024),
        b'g' | b'G' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    digits.parse::<usize>().ok()?.checked_mul(unit)
}

fn parse_bool(key: &str, v: Option<&str>) -> Result<bool, String> {
    match v {
        None | Some("1") | Some("yes") | Some("true") => Ok(true),
        Some("0") | Some("no") | Some("false") => Ok(false),
        Some(other) => Err(format!("-o {key}: expected a boolean, got '{other}'")),
    }
}

/// Seconds an unauthenticated connection is kept when authentication is on.
/// memcached keeps it forever; clients authenticate right after connecting.
pub const DEFAULT_AUTH_TIMEOUT: u32 = 30;

fn parse_num<T: std::str::FromStr>(key: &str, v: Option<&str>) -> Result<T, String> {
    let v = v.ok_or_else(|| format!("-o {key}: needs a value ({key}=N)"))?;
    v.parse()
        .map_err(|_| format!("-o {key}: '{v}' is not a valid number"))
}

/// Options accepted for compatibility with memcached's `-o` that change
/// nothing here.
const ACCEPTED_NOOPS: &[&str] = &[
    "modern",
    "no_modern",
    "maxconns_fast",
    "no_maxconns_fast",
    "lru_maintainer",
    "no_lru_maintainer",
    "lru_segmented",
    "temporary_ttl",
    "track_sizes",
    "no_inline_ascii_resp",
    "no_hashexpand",
    "hash_algorithm",
    "tail_repair_time",
    "watcher_logbuf_size",
    "worker_logbuf_size",
    "slab_chunk_max",
    "slab_automove_ratio",
    "slab_automove_window",
    "lru_crawler_sleep",
    "lru_crawler_tocrawl",
    "hot_lru_pct",
    "warm_lru_pct",
    "hot_max_factor",
    "warm_max_factor",
    "read_buf_mem_limit",
];

impl Args {
    /// The command line as file keys: what it sets, and nothing else. Switch
    /// flags (`-M`, `-A`, …) can only turn their behaviour on.
    fn overrides(&self) -> FileConfig {
        let on = |flag: bool| flag.then_some(true);
        FileConfig {
            port: self.port,
            listen: self.listen.clone(),
            threads: self.threads,
            memory_limit: self.memory_limit,
            conn_limit: self.conn_limit,
            max_item_size: self.max_item_size.clone(),
            growth_factor: self.growth_factor,
            slab_min_size: self.slab_min_size,
            disable_evictions: on(self.disable_evictions),
            disable_cas: on(self.disable_cas),
            listen_backlog: self.backlog,
            max_reqs_per_event: self.reqs_per_event,
            enable_shutdown: on(self.enable_shutdown),
            disable_flush_all: on(self.disable_flush_all),
            verbose: (self.verbose > 0).then_some(self.verbose),
            // -o options are applied after, from their own syntax.
            hashpower: None,
            slab_reassign: None,
            slab_automove: None,
            lru_crawler: None,
            idle_timeout: None,
            auth_timeout: None,
            auth_fail_burst: None,
            auth_fail_rate: None,
            cluster_file: self.cluster_file.clone(),
            join: self.join.clone(),
            cluster_host: self.cluster_host.clone(),
            cluster_ip: self.cluster_ip.clone(),
            cluster_admin: self.cluster_admin.clone(),
            cluster_failure_timeout: self.cluster_failure_timeout,
            cluster_state: self.cluster_state.clone(),
            cluster_credentials: self.cluster_credentials.clone(),
            protocol: self.protocol.clone(),
            enable_sasl: on(self.enable_sasl),
            sasl_db: self.sasl_db.clone(),
            auth_file: self.auth_file.clone(),
            enable_ssl: on(self.enable_ssl),
            // -o ssl_* options are applied after, from their own syntax.
            ssl_chain_cert: None,
            ssl_key: None,
            ssl_ca_cert: None,
            ssl_verify_mode: None,
            ssl_min_version: None,
            // -o cluster_* options are applied after, like ssl_*.
            cluster_tls: None,
            cluster_ca_cert: None,
        }
    }
}

impl Settings {
    /// Resolves settings from the command line (and the config file it names).
    pub fn from_args(args: &Args) -> Result<Settings, String> {
        let file = match &args.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        Self::resolve(args, &file)
    }

    fn resolve(args: &Args, file: &FileConfig) -> Result<Settings, String> {
        let mut s = Settings::default();
        // The file first, then the command line over it, through one path so
        // a flag and its file key can never mean different things.
        apply(&mut s, file)?;
        apply(&mut s, &args.overrides())?;
        if let Some(u) = args.udp_port {
            if u != 0 {
                return Err("-U: UDP is not supported; only -U 0 is accepted".into());
            }
        }
        if args.verbose > 0 {
            s.verbosity = args.verbose;
        }
        for opts in &args.extended {
            apply_extended(&mut s, opts)?;
        }
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), String> {
        if self.threads == 0 {
            return Err("-t: the number of threads must be greater than 0".into());
        }
        if self.threads > 1024 {
            return Err("-t: at most 1024 threads".into());
        }
        if self.max_connections == 0 {
            return Err("-c: the connection limit must be greater than 0".into());
        }
        if self.reqs_per_event == 0 {
            return Err("-R: the number of requests per event must be greater than 0".into());
        }
        if self.cache.growth_factor.is_nan()
            || self.cache.growth_factor <= 1.0
            || !self.cache.growth_factor.is_finite()
        {
            return Err("-f: the growth factor must be greater than 1".into());
        }
        if self.cache.chunk_size_min == 0 || self.cache.chunk_size_min > self.cache.item_size_max {
            return Err("-n: the minimum chunk size must be between 1 and the item size".into());
        }
        if self.cache.item_size_max > self.cache.mem_limit / 2 {
            return Err("-I: the item size limit cannot exceed half of -m".into());
        }
        if self.listen.is_empty() {
            return Err("-l: no address to listen on".into());
        }
        Ok(())
    }
}

fn load_file(path: &Path) -> Result<FileConfig, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--config {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let msg = e.to_string();
        let first = msg.lines().next().unwrap_or("invalid file").to_string();
        format!("--config {}: {first}", path.display())
    })
}

/// Applies every key that is set.
fn apply(s: &mut Settings, f: &FileConfig) -> Result<(), String> {
    if let Some(p) = f.port {
        s.port = p;
    }
    if let Some(l) = &f.listen {
        s.listen = parse_listen(l)?;
        s.tls.notls = parse_notls(l)?;
    }
    if let Some(t) = f.threads {
        s.threads = t;
    }
    if let Some(m) = f.memory_limit {
        s.cache.mem_limit = megabytes(m)?;
    }
    if let Some(c) = f.conn_limit {
        s.max_connections = c;
    }
    if let Some(i) = &f.max_item_size {
        s.cache.item_size_max = item_size(i)?;
    }
    if let Some(g) = f.growth_factor {
        s.cache.growth_factor = g;
    }
    if let Some(n) = f.slab_min_size {
        s.cache.chunk_size_min = n;
    }
    if let Some(v) = f.disable_evictions {
        s.cache.evict = !v;
    }
    if let Some(v) = f.disable_cas {
        s.cache.use_cas = !v;
    }
    if let Some(b) = f.listen_backlog {
        s.backlog = b;
    }
    if let Some(r) = f.max_reqs_per_event {
        s.reqs_per_event = r;
    }
    if let Some(v) = f.enable_shutdown {
        s.enable_shutdown = v;
    }
    if let Some(v) = f.disable_flush_all {
        s.flush_enabled = !v;
    }
    if let Some(v) = f.verbose {
        s.verbosity = v;
    }
    if let Some(v) = f.hashpower {
        s.cache.hashpower = check_hashpower(v)?;
    }
    if let Some(v) = f.slab_reassign {
        s.cache.slab_reassign = v;
    }
    if let Some(v) = f.slab_automove {
        s.cache.slab_automove = check_automove(v)?;
    }
    if let Some(v) = f.lru_crawler {
        s.cache.lru_crawler = v;
    }
    if let Some(v) = f.idle_timeout {
        s.idle_timeout = v;
    }
    if let Some(v) = f.auth_timeout {
        s.auth_timeout = v;
    }
    if let Some(v) = f.auth_fail_burst {
        s.auth_limits.burst = v;
    }
    if let Some(v) = f.auth_fail_rate {
        s.auth_limits.per_min = v;
    }
    if let Some(b) = &f.protocol {
        s.protocol = Binding::parse(b)?;
    }
    if let Some(v) = f.enable_sasl {
        s.sasl = v;
    }
    if let Some(p) = &f.sasl_db {
        s.sasl_db = Some(p.clone());
    }
    if let Some(p) = &f.auth_file {
        s.auth_file = Some(p.clone());
    }
    if let Some(v) = f.enable_ssl {
        s.tls.enabled = v;
    }
    if let Some(p) = &f.ssl_chain_cert {
        s.tls.chain_cert = Some(p.clone());
    }
    if let Some(p) = &f.ssl_key {
        s.tls.key = Some(p.clone());
    }
    if let Some(p) = &f.ssl_ca_cert {
        s.tls.ca_cert = Some(p.clone());
    }
    if let Some(v) = f.ssl_verify_mode {
        s.tls.verify_mode = check_verify_mode(v)?;
    }
    if let Some(v) = f.ssl_min_version {
        s.tls.min_version = check_min_version(v)?;
    }
    if let Some(v) = f.cluster_tls {
        s.cluster.tls = Some(v);
    }
    if let Some(p) = &f.cluster_ca_cert {
        s.cluster.ca_cert = Some(p.clone());
    }
    apply_cluster(
        &mut s.cluster,
        &ClusterArgs {
            file: &f.cluster_file,
            join: &f.join,
            host: &f.cluster_host,
            ip: &f.cluster_ip,
            admin: &f.cluster_admin,
            failure_timeout: f.cluster_failure_timeout,
            state: &f.cluster_state,
            credentials: &f.cluster_credentials,
        },
    )
}

/// The cluster options as given on the command line or in the file.
struct ClusterArgs<'a> {
    file: &'a Option<PathBuf>,
    join: &'a Option<String>,
    host: &'a Option<String>,
    ip: &'a Option<String>,
    admin: &'a Option<String>,
    failure_timeout: Option<f64>,
    state: &'a Option<PathBuf>,
    credentials: &'a Option<PathBuf>,
}

fn apply_cluster(c: &mut ClusterSettings, a: &ClusterArgs<'_>) -> Result<(), String> {
    if let Some(f) = a.file {
        c.file = Some(f.clone());
    }
    if let Some(j) = a.join {
        let port_ok = j
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !port_ok {
            return Err(format!("--join: '{j}' is not HOST:PORT"));
        }
        c.join = Some(j.clone());
    }
    if let Some(h) = a.host {
        crate::cluster::NodeEntry::parse(&format!("{h}||1"))
            .map_err(|_| format!("--cluster-host: '{h}' is not a valid hostname"))?;
        c.host = Some(h.clone());
    }
    if let Some(ip) = a.ip {
        let parsed = ip
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("--cluster-ip: '{ip}' is not an IP address"))?;
        c.ip = Some(parsed);
    }
    if let Some(rule) = a.admin {
        c.admin = AdminRule::parse(rule).map_err(|e| format!("--cluster-admin: {e}"))?;
    }
    if let Some(t) = a.failure_timeout {
        if !(0.0..=86_400.0).contains(&t) {
            return Err("--cluster-failure-timeout: seconds from 0 to 86400".into());
        }
        c.failure_timeout = (t > 0.0).then(|| std::time::Duration::from_secs_f64(t));
    }
    if let Some(p) = a.state {
        c.state_file = Some(p.clone());
    }
    if let Some(p) = a.credentials {
        let creds = crate::cluster::PeerCredentials::load(p)
            .map_err(|e| format!("--cluster-credentials: {e}"))?;
        c.credentials = Some(creds);
    }
    Ok(())
}

fn megabytes(m: u64) -> Result<usize, String> {
    if m == 0 {
        return Err("-m: the memory limit must be greater than 0".into());
    }
    m.checked_mul(1024 * 1024)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(|| format!("-m: {m} megabytes is too large"))
}

fn item_size(v: &str) -> Result<usize, String> {
    let n = parse_size(v).ok_or_else(|| format!("-I: '{v}' is not a size (e.g. 1m, 512k)"))?;
    if n < ITEM_SIZE_MAX_LOWER {
        return Err("-I: the item size must be at least 1k".into());
    }
    if n > ITEM_SIZE_MAX_UPPER {
        return Err("-I: the item size cannot exceed 1024m".into());
    }
    Ok(n)
}

fn check_hashpower(v: u8) -> Result<u8, String> {
    if !(12..=32).contains(&v) {
        return Err("-o hashpower: must be between 12 and 32".into());
    }
    Ok(v)
}

fn check_automove(v: u8) -> Result<u8, String> {
    if v > 2 {
        return Err("-o slab_automove: must be 0, 1 or 2".into());
    }
    Ok(v)
}

/// The addresses of `-l` given with memcached's `notls:` prefix.
fn parse_notls(list: &str) -> Result<Vec<IpAddr>, String> {
    let marked: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter_map(|a| a.strip_prefix("notls:"))
        .collect();
    parse_listen(&marked.join(","))
}

fn parse_listen(list: &str) -> Result<Vec<IpAddr>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| a.strip_prefix("notls:").unwrap_or(a))
        .map(|a| {
            let a = a.trim_start_matches('[').trim_end_matches(']');
            if a == "localhost" {
                return Ok(IpAddr::from([127, 0, 0, 1]));
            }
            a.parse::<IpAddr>()
                .map_err(|_| format!("-l: '{a}' is not an IP address"))
        })
        .collect()
}

fn parse_path(key: &str, v: Option<&str>) -> Result<PathBuf, String> {
    match v {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => Err(format!("-o {key}: needs a file ({key}=FILE)")),
    }
}

fn check_verify_mode(v: u8) -> Result<u8, String> {
    if v > 3 {
        return Err(
            "-o ssl_verify_mode: must be 0 (none), 1 (request), 2 (require) or 3 (once)".into(),
        );
    }
    Ok(v)
}

fn check_min_version(v: u8) -> Result<u8, String> {
    if v > 3 {
        return Err("-o ssl_min_version: must be 0 (tlsv1.0) to 3 (tlsv1.3)".into());
    }
    Ok(v)
}

fn apply_extended(s: &mut Settings, opts: &str) -> Result<(), String> {
    for opt in opts.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        match key {
            "hashpower" => s.cache.hashpower = check_hashpower(parse_num(key, value)?)?,
            "slab_reassign" => s.cache.slab_reassign = parse_bool(key, value)?,
            "no_slab_reassign" => s.cache.slab_reassign = false,
            "slab_automove" => {
                // memcached accepts a bare `slab_automove` as 1.
                let v = if value.is_none() {
                    1
                } else {
                    parse_num(key, value)?
                };
                s.cache.slab_automove = check_automove(v)?;
            }
            "lru_crawler" => s.cache.lru_crawler = parse_bool(key, value)?,
            "no_lru_crawler" => s.cache.lru_crawler = false,
            "idle_timeout" => s.idle_timeout = parse_num(key, value)?,
            "auth_timeout" => s.auth_timeout = parse_num(key, value)?,
            "auth_fail_burst" => s.auth_limits.burst = parse_num(key, value)?,
            "auth_fail_rate" => s.auth_limits.per_min = parse_num(key, value)?,
            "ssl_chain_cert" => s.tls.chain_cert = Some(parse_path(key, value)?),
            "ssl_key" => s.tls.key = Some(parse_path(key, value)?),
            "ssl_ca_cert" => s.tls.ca_cert = Some(parse_path(key, value)?),
            "ssl_verify_mode" => s.tls.verify_mode = check_verify_mode(parse_num(key, value)?)?,
            "ssl_min_version" => s.tls.min_version = check_min_version(parse_num(key, value)?)?,
            "cluster_tls" => s.cluster.tls = Some(parse_bool(key, value)?),
            "cluster_ca_cert" => s.cluster.ca_cert = Some(parse_path(key, value)?),
            "ssl_keyformat"
                if value.map_or(true, |v| v == "0" || v.eq_ignore_ascii_case("pem")) => {}
            "ssl_keyformat" => return Err("-o ssl_keyformat: only PEM keys are supported".into()),
            // Accepted for compatibility; rustls chooses ciphers, buffers and
            // session handling itself.
            "ssl_ciphers" | "ssl_wbuf_size" | "ssl_session_cache" | "ssl_kernel_tls" => {}
            k if ACCEPTED_NOOPS.contains(&k) => {}
            _ => return Err(format!("-o: unknown option '{key}'")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(argv: &[&str]) -> Result<Settings, String> {
        let mut full = vec!["ferrocache"];
        full.extend_from_slice(argv);
        let args = Args::try_parse_from(full).map_err(|e| e.to_string())?;
        Settings::from_args(&args)
    }

    #[test]
    fn authentication_limits() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.auth_timeout, DEFAULT_AUTH_TIMEOUT);
        assert_eq!(s.auth_limits, crate::auth::guard::Limits::default());
        let s = settings(&["-o", "auth_timeout=0,auth_fail_burst=0,auth_fail_rate=5"]).unwrap();
        assert_eq!(s.auth_timeout, 0);
        assert_eq!(s.auth_limits.burst, 0);
        assert_eq!(s.auth_limits.per_min, 5);
        assert!(settings(&["-o", "auth_fail_burst=-1"]).is_err());
        assert!(settings(&["-o", "auth_timeout"]).is_err());
    }

    #[test]
    fn defaults_are_memcached_defaults() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.port, 11211);
        assert_eq!(s.cache.mem_limit, 64 << 20);
        assert_eq!(s.max_connections, 1024);
        assert_eq!(s.cache.item_size_max, 1 << 20);
        assert_eq!(s.cache.growth_factor, 1.25);
        assert_eq!(s.cache.chunk_size_min, 48);
        assert_eq!(s.reqs_per_event, 20);
        assert!(s.cache.evict && s.cache.use_cas && s.flush_enabled && !s.enable_shutdown);
    }

    #[test]
    fn flags_override() {
        let s = settings(&[
            "-p",
            "0",
            "-l",
            "127.0.0.1,::1",
            "-t",
            "3",
            "-m",
            "1024",
            "-c",
            "10",
            "-I",
            "2m",
            "-f",
            "1.5",
            "-n",
            "64",
            "-M",
            "-C",
            "-R",
            "5",
            "-A",
            "-F",
            "-U",
            "0",
            "-vv",
            "-o",
            "hashpower=20,slab_reassign,slab_automove=2,no_lru_crawler,idle_timeout=30,modern",
        ])
        .unwrap();
        assert_eq!(s.port, 0);
        assert_eq!(s.listen.len(), 2);
        assert_eq!(s.threads, 3);
        assert_eq!(s.cache.mem_limit, 1024 << 20);
        assert_eq!(s.max_connections, 10);
        assert_eq!(s.cache.item_size_max, 2 << 20);
        assert_eq!(s.cache.growth_factor, 1.5);
        assert_eq!(s.cache.chunk_size_min, 64);
        assert!(!s.cache.evict && !s.cache.use_cas && s.enable_shutdown && !s.flush_enabled);
        assert_eq!(s.reqs_per_event, 5);
        assert_eq!(s.verbosity, 2);
        assert_eq!(s.cache.hashpower, 20);
        assert_eq!(s.cache.slab_automove, 2);
        assert!(!s.cache.lru_crawler);
        assert_eq!(s.idle_timeout, 30);
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(settings(&["-I", "512"]).is_err());
        assert!(settings(&["-I", "2048m"]).is_err());
        assert!(settings(&["-I", "abc"]).is_err());
        assert!(settings(&["-U", "11211"]).is_err());
        assert!(settings(&["-o", "nonsense=1"]).is_err());
        assert!(settings(&["-t", "0"]).is_err());
        assert!(settings(&["-f", "1.0"]).is_err());
        assert!(settings(&["-m", "0"]).is_err());
        assert!(settings(&["-m", "64", "-I", "64m"]).is_err());
        assert!(settings(&["-l", "not-an-ip"]).is_err());
        assert!(settings(&["--bogus"]).is_err());
    }

    #[test]
    fn cluster_flags() {
        let s = settings(&[
            "--cluster-file",
            "/tmp/nodes",
            "--join",
            "10.0.0.1:11211",
            "--cluster-host",
            "1node.example",
            "--cluster-ip",
            "10.0.0.2",
            "--cluster-admin",
            "10.0.0.0/8",
            "--cluster-failure-timeout",
            "1.5",
        ])
        .unwrap();
        let c = &s.cluster;
        assert_eq!(c.join.as_deref(), Some("10.0.0.1:11211"));
        assert_eq!(c.host.as_deref(), Some("1node.example"));
        assert_eq!(
            c.failure_timeout,
            Some(std::time::Duration::from_millis(1500))
        );
        assert!(c.admin.allows("10.1.2.3".parse().unwrap()));
        assert!(!c.admin.allows("127.0.0.1".parse().unwrap()));
        let d = settings(&[]).unwrap().cluster;
        assert_eq!(d.failure_timeout, Some(DEFAULT_FAILURE_TIMEOUT));
        assert!(d.admin.allows("127.0.0.1".parse().unwrap()));
        let never = settings(&["--cluster-failure-timeout", "0"]).unwrap();
        assert_eq!(never.cluster.failure_timeout, None);
        for bad in [
            &["--join", "nohost"][..],
            &["--join", ":11211"],
            &["--join", "h:0"],
            &["--cluster-host", "a b"],
            &["--cluster-ip", "x"],
            &["--cluster-admin", "10.0.0.0/40"],
            &["--cluster-failure-timeout", "-1"],
        ] {
            assert!(settings(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes_take_suffixes() {
        assert_eq!(parse_size("1k"), Some(1024));
        assert_eq!(parse_size("1m"), Some(1 << 20));
        assert_eq!(parse_size("2048"), Some(2048));
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("k"), None);
    }

    #[test]
    fn file_then_command_line() {
        let dir = std::env::temp_dir().join(format!("ferrocache-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.toml");
        std::fs::write(
            &path,
            "port = 12000\nmemory_limit = 128\nidle_timeout = 5\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let s = settings(&["--config", p, "-m", "256"]).unwrap();
        assert_eq!(s.port, 12000);
        assert_eq!(s.cache.mem_limit, 256 << 20);
        assert_eq!(s.idle_timeout, 5);
        std::fs::write(
            &path,
            "cluster_file = \"/etc/nodes\"\njoin = \"h:1\"\ncluster_admin = \"none\"\n\
             cluster_failure_timeout = 0\ncluster_host = \"n1\"\ncluster_ip = \"10.0.0.1\"\n",
        )
        .unwrap();
        let c = settings(&["--config", p, "--cluster-host", "n2"])
            .unwrap()
            .cluster;
        assert_eq!(c.file, Some(PathBuf::from("/etc/nodes")));
        assert_eq!(c.join.as_deref(), Some("h:1"));
        assert_eq!(c.host.as_deref(), Some("n2"));
        assert_eq!(c.failure_timeout, None);
        assert!(!c.admin.allows("127.0.0.1".parse().unwrap()));
        std::fs::write(&path, "prot = 1\n").unwrap();
        assert!(settings(&["--config", p]).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
