//! `xif server [--listen ADDR] [--data-dir DIR] [--tls-cert F --tls-key F] [--trusted-key F]... [limits]`,
//! and how published extensions are isolated and limited (`--extension-*`).

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use xif_server::{AppState, ConnectionLimits, IsolationOptions, Limits, LoginLimits, ServerConfig, TokenLimits};

use crate::{Exit, output};

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The address to listen on; port 0 picks a free port
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8180", env = "XIF_LISTEN")]
    listen: SocketAddr,
    /// Where the database (SQLite) and the uploaded archives are kept [default: `/var/lib/xif`
    /// for root, else `xif` in the user's data directory, such as `~/.local/share/xif`]
    #[arg(long, value_name = "DIR", env = "XIF_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Keep users, versions and publications in this PostgreSQL database
    /// (`postgres://USER:PASSWORD@HOST:PORT/DATABASE`) instead of SQLite in the data directory;
    /// every node of a farm names the same one. Give it in XIF_DATABASE, or leave the password
    /// out and give it in PGPASSWORD or ~/.pgpass: every user of the machine can read the command line
    #[arg(long, value_name = "URL", env = "XIF_DATABASE", hide_env_values = true)]
    database: Option<String>,
    /// Keep uploaded archives in this S3-compatible bucket (`s3://BUCKET?endpoint=URL&region=R`;
    /// credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) instead of the data directory
    #[arg(long, value_name = "URL", env = "XIF_BLOBS")]
    blobs: Option<String>,
    /// The key database connections' passwords are encrypted under: a file of 64 hexadecimal
    /// digits, the same for every node of a farm (with --database) [default: `secrets.key` in the
    /// data directory, made at first need]
    #[arg(long, value_name = "FILE", env = "XIF_SECRETS_KEY")]
    secrets_key: Option<PathBuf>,
    /// The URL the other nodes of a farm reach this one at (`http://HOST:PORT`) [default: made
    /// from --listen, which must then not be a wildcard address when --database is given]
    #[arg(long, value_name = "URL", env = "XIF_ADVERTISE", value_parser = advertise)]
    advertise: Option<String>,
    /// On SIGTERM or Ctrl-C, answer 503 on /readyz for this many seconds while still serving,
    /// so that a balancer checking /readyz stops sending calls before the node goes; then stop
    /// [default: 2 with --database (a farm behind a balancer), else 0]. Make it longer than the
    /// balancer's check interval times the failed checks it needs
    #[arg(long, value_name = "SECONDS")]
    drain_seconds: Option<f64>,
    /// This node's name in `xif nodes` [default: the host and port it is reached at]
    #[arg(long, value_name = "NAME", env = "XIF_NODE_NAME")]
    node_name: Option<String>,
    /// A PEM certificate chain to serve HTTPS with (with --tls-key)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The largest upload accepted, in MiB
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    max_upload_mib: u64,
    /// How long a publication lock holds unless its server renews it, in seconds: how long a
    /// server that died while publishing keeps others from publishing that extension
    #[arg(long, value_name = "SECONDS", default_value_t = xif_server::publishing::DEFAULT_LEASE.as_secs_f64())]
    lock_lease: f64,
    /// Threads serving requests [default: one less than the cores, at least one: published
    /// extensions run in processes of their own and need a core too]
    #[arg(long, value_name = "N", env = "XIF_WORKERS")]
    workers: Option<usize>,
    /// Where to serve `/metrics` without a token (plain HTTP); on --listen it needs an
    /// administrator's token
    #[arg(long, value_name = "ADDR", env = "XIF_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Login attempts a minute from one client address (an IPv6 /64 is one); 0 for no limit
    #[arg(long, value_name = "N", default_value_t = LoginLimits::default().per_address)]
    login_attempts_per_address: u32,
    /// A load balancer (an address or a range, such as 10.0.0.0/8) whose X-Forwarded-For is
    /// believed, repeatable. A request from one is counted against its client's address, the
    /// last address in X-Forwarded-For that is not a trusted proxy; without this flag, or from
    /// any other peer, the socket's address (behind a balancer every client would then share
    /// its address and its login limit). Trust only balancers that append to the header
    /// (haproxy: option forwardfor)
    #[arg(long = "trusted-proxy", value_name = "CIDR", value_parser = xif_server::trusted_proxy)]
    trusted_proxies: Vec<xif_server::IpNet>,
    /// Uploads checked at once; one more is refused as busy (503 server_busy, with Retry-After)
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_concurrent_uploads)]
    max_concurrent_uploads: usize,
    /// How many days the integration log (`xif calls`) keeps each call and record operation;
    /// 0 turns the log off (nothing is recorded; entries already recorded stay until the log is
    /// on again, when those older than its days are removed)
    #[arg(long, value_name = "DAYS", env = "XIF_CALL_LOG_DAYS", default_value_t = Limits::default().call_log_days)]
    call_log_days: u32,
    /// Login attempts a minute for one user name; 0 for no limit
    #[arg(long, value_name = "N", default_value_t = LoginLimits::default().per_user)]
    login_attempts_per_user: u32,
    /// Passwords checked at once, 19 MiB of memory each [default: half the cores, at least one]
    #[arg(long, value_name = "N")]
    password_checks: Option<usize>,
    /// The lifetime of a login's token, in days, when the login asks for none
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    token_lifetime_days: u64,
    /// The longest token lifetime a login may ask for, in days
    #[arg(long, value_name = "DAYS", default_value_t = 365)]
    max_token_lifetime_days: u64,
    /// Connections open at once; more wait to be accepted (lowered to what the open-file limit
    /// allows)
    #[arg(long, value_name = "N", default_value_t = ConnectionLimits::default().max_connections)]
    max_connections: usize,
    /// Seconds a client has to send a request's headers, from when its connection opened or its
    /// previous response ended: closes idle and trickling connections
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    header_timeout: f64,
    /// Seconds a request's body may take to arrive: a JSON body whole, an upload between two of
    /// its chunks (and at 16 KiB/s at least after that long); closes trickling bodies
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    body_timeout: f64,
    /// Accept only uploads signed by this minisign public key (made by `xif keygen`); repeat it
    /// to trust several keys. Without it, signatures are not required
    #[arg(long = "trusted-key", value_name = "FILE")]
    trusted_keys: Vec<PathBuf>,
    /// Run published extensions confined (Landlock, a user id of their own when the server is
    /// root, resource limits); `off` runs them with the server's rights, for development and
    /// measurements only
    #[arg(long, value_name = "MODE", default_value = "on")]
    extension_isolation: Switch,
    /// Run extensions even when the kernel does not enforce Landlock (they then keep the
    /// server's access to files); without it the server refuses to run them
    #[arg(long)]
    allow_unisolated_extensions: bool,
    /// Whether extensions may open TCP connections and listen (`deny` needs Landlock ABI 4,
    /// Linux 6.7)
    #[arg(long, value_name = "MODE", default_value = "allow")]
    extension_network: Network,
    /// User ids for extension processes when the server runs as root, one per process; they
    /// need no entry in /etc/passwd and must belong to nothing else
    #[arg(long, value_name = "FIRST-LAST", default_value = "1500000000-1500065535", value_parser = user_ids)]
    extension_uids: RangeInclusive<u32>,
    /// Processes and threads each extension may have at once (only under a user of its own,
    /// that is when the server runs as root); 0 for no limit
    #[arg(long, value_name = "N", default_value_t = 64)]
    extension_processes: u64,
    /// The largest file an extension may write, in MiB; 0 for no limit
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    extension_file_size_mib: u64,
    /// The address space of each extension process, in MiB; 0 for no limit
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    extension_memory_mib: u64,
    /// CPU time each extension process may use in its life, in seconds (it is restarted after);
    /// 0 for no limit
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    extension_cpu_seconds: u64,
    /// Files each extension process may have open at once; 0 for no limit
    #[arg(long, value_name = "N", default_value_t = 1024)]
    extension_open_files: u64,
    /// Disk space an extension's working and temporary directories may use, in MiB, checked
    /// every second (the process is stopped past it); 0 for no limit
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    extension_disk_mib: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Switch {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Network {
    Allow,
    Deny,
}

/// The program that launches extensions: `xif-launch` beside this binary (as `cargo install`
/// and the build put it), quicker to start, else this binary itself.
fn launcher() -> anyhow::Result<PathBuf> {
    let this = std::env::current_exe().context("cannot find the xif binary to launch extensions with")?;
    let small = this.with_file_name("xif-launch");
    Ok(if small.is_file() { small } else { this })
}

fn advertise(text: &str) -> Result<String, String> {
    xif_server::check_advertise(text)
}

fn user_ids(text: &str) -> Result<RangeInclusive<u32>, String> {
    let (first, last) = text.split_once('-').ok_or("expected FIRST-LAST, such as 1500000000-1500065535")?;
    let number = |text: &str| text.trim().parse::<u32>().map_err(|error| format!("`{text}`: {error}"));
    let (first, last) = (number(first)?, number(last)?);
    if first == 0 || first > last {
        return Err("expected 0 < FIRST <= LAST: user 0 is root".into());
    }
    Ok(first..=last)
}

impl ServerArgs {
    /// The runtime's limits and isolation from the flags; says at start what isolation the
    /// extensions will have.
    fn runtime(&self) -> anyhow::Result<xif_server::RuntimeOptions> {
        let mut options = xif_server::RuntimeOptions::default();
        let limit = |value: u64| (value > 0).then_some(value);
        options.limits = xif_host::ResourceLimits {
            memory_bytes: limit(self.extension_memory_mib << 20),
            cpu_seconds: limit(self.extension_cpu_seconds),
            open_files: limit(self.extension_open_files),
            file_size_bytes: limit(self.extension_file_size_mib << 20),
            processes: limit(self.extension_processes),
        };
        options.disk_bytes = limit(self.extension_disk_mib << 20);
        if self.extension_isolation == Switch::Off {
            output::eprint("warning: --extension-isolation off: published extensions run with the server's rights\n");
            return Ok(options);
        }
        let landlock = xif_host::landlock_available();
        if !landlock && self.allow_unisolated_extensions {
            output::eprint(
                "warning: this kernel does not enforce Landlock: published extensions run without file isolation (--allow-unisolated-extensions)\n",
            );
        } else if !landlock {
            output::eprint(
                "warning: this kernel does not enforce Landlock: published extensions will not run\nhint: --allow-unisolated-extensions runs them without file isolation\n",
            );
        }
        let root = nix::unistd::geteuid().is_root();
        if !root {
            output::eprint(
                "warning: not running as root: extensions run as the server's user, without a limit on their processes\n",
            );
        }
        options.isolation = Some(IsolationOptions {
            launcher: launcher()?,
            users: root.then(|| self.extension_uids.clone()),
            network: self.extension_network == Network::Allow,
            landlock,
            allow_unisolated: self.allow_unisolated_extensions,
        });
        Ok(options)
    }

    fn limits(&self, max_upload: u64) -> anyhow::Result<Limits> {
        let day = std::time::Duration::from_secs(86_400);
        let seconds = |value: f64, flag: &str| {
            std::time::Duration::try_from_secs_f64(value)
                .ok()
                .filter(|timeout| !timeout.is_zero())
                .ok_or_else(|| anyhow::anyhow!("{flag} is a positive number of seconds"))
        };
        let header_timeout = seconds(self.header_timeout, "--header-timeout")?;
        let body_timeout = seconds(self.body_timeout, "--body-timeout")?;
        let lock_lease = seconds(self.lock_lease, "--lock-lease")?;
        if self.token_lifetime_days == 0 || self.token_lifetime_days > self.max_token_lifetime_days {
            anyhow::bail!("--token-lifetime-days is at least 1 and at most --max-token-lifetime-days");
        }
        let mut login = LoginLimits {
            per_address: self.login_attempts_per_address,
            per_user: self.login_attempts_per_user,
            trusted_proxies: self.trusted_proxies.clone(),
            ..LoginLimits::default()
        };
        if let Some(checks) = self.password_checks.filter(|checks| *checks > 0) {
            login.password_checks = checks;
        }
        Ok(Limits {
            max_upload,
            login,
            tokens: TokenLimits {
                default_lifetime: day * u32::try_from(self.token_lifetime_days)?,
                max_lifetime: day * u32::try_from(self.max_token_lifetime_days)?,
            },
            connections: ConnectionLimits {
                max_connections: self.max_connections,
                header_read_timeout: header_timeout,
                body_timeout,
            },
            lock_lease,
            max_concurrent_uploads: self.max_concurrent_uploads,
            call_log_days: self.call_log_days,
            ..Limits::default()
        })
    }
}

pub fn run(args: &ServerArgs) -> anyhow::Result<Exit> {
    // A key that cannot be read stops the server before it starts: it would refuse every
    // upload signed with it, or, worse, trust fewer keys than its administrator meant.
    let trusted_keys =
        args.trusted_keys.iter().map(|path| xif_archive::PublicKey::from_file(path)).collect::<Result<Vec<_>, _>>()?;
    // Structured logs on stderr; `XIF_LOG` sets the level (`info,sqlx=warn` by default).
    // sqlx's own INFO notices (such as PostgreSQL's "relation … already exists, skipping" at
    // each start) say nothing to an operator.
    let filter = tracing_subscriber::EnvFilter::try_from_env("XIF_LOG").unwrap_or_else(|_| "info,sqlx=warn".into());
    tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).init();
    let data_dir = match &args.data_dir {
        Some(directory) => directory.clone(),
        // A service run by root keeps its state in `/var/lib`, where the extensions' own users
        // can reach their working directories (root's home is closed to them).
        None if nix::unistd::geteuid().is_root() => PathBuf::from("/var/lib/xif"),
        None => dirs::data_dir()
            .context("this system has no data directory for the user (no HOME?); pass `--data-dir DIR`")?
            .join("xif"),
    };
    // Absolute, so that what is derived from it (the extensions' working directories) stays
    // valid whatever directory a process runs in.
    let data_dir = std::path::absolute(&data_dir)
        .with_context(|| format!("cannot resolve the data directory `{}`", data_dir.display()))?;
    let config = ServerConfig {
        listen: args.listen,
        data_dir,
        tls: args.tls_cert.clone().zip(args.tls_key.clone()),
        max_upload: args.max_upload_mib << 20,
        metrics_listen: args.metrics_listen,
        advertise: args.advertise.clone(),
        node_name: args.node_name.clone(),
    };
    if args.database.is_some() && args.advertise.is_none() && args.listen.ip().is_unspecified() {
        anyhow::bail!(
            "--listen {} is a wildcard address, which the other nodes of the farm cannot reach this node at\n\
             hint: say where they reach it with `--advertise http://HOST:PORT`",
            args.listen
        );
    }
    let storage = xif_server::Storage {
        data_dir: config.data_dir.clone(),
        database: args.database.clone(),
        blobs: args.blobs.clone(),
        secrets_key: args.secrets_key.clone(),
    };
    let limits = Limits { trusted_keys, runtime: args.runtime()?, ..args.limits(config.max_upload)? };
    let log_off = limits.call_log_days == 0;
    let drain_seconds = args.drain_seconds.unwrap_or(if args.database.is_some() { 2.0 } else { 0.0 });
    let drain = std::time::Duration::try_from_secs_f64(drain_seconds)
        .map_err(|_| anyhow::anyhow!("--drain-seconds is a number of seconds, 0 or more"))?;
    xif_server::raise_open_file_limit();
    // Leaving a core to the extensions' processes pays: on 2 cores, calls through the API are a
    // third faster with one worker than with two (`cargo bench -p xif-cli --bench calls`).
    let workers = args.workers.filter(|workers| *workers > 0).unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, |cores| cores.get().saturating_sub(1).max(1))
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()?;
    runtime.block_on(async {
        let admin_password = std::env::var("XIF_ADMIN_PASSWORD").ok();
        if !limits.trusted_keys.is_empty() {
            let ids: Vec<String> = limits.trusted_keys.iter().map(|key| format!("`{}`", key.key_id())).collect();
            output::eprint(&format!("accepting only uploads signed by the key(s) {}\n", ids.join(", ")));
        }
        let (state, bootstrap) = AppState::open(&storage, limits, admin_password.as_deref()).await?;
        if let Some(bootstrap) = bootstrap {
            // Shown once, here, and never logged.
            match bootstrap.generated_password {
                Some(password) => output::eprint(&format!(
                    "created the administrator `{}` with the password `{password}`; it is shown only this once\n",
                    bootstrap.user
                )),
                None => output::eprint(&format!(
                    "created the administrator `{}` with the password in XIF_ADMIN_PASSWORD\n",
                    bootstrap.user
                )),
            }
        }
        output::eprint(&format!("data directory: {}\n", config.data_dir.display()));
        let scheme = if config.tls.is_some() { "https" } else { "http" };
        let running = state.clone();
        let draining = state.clone();
        let stop = async move {
            shutdown_signal().await;
            if !drain.is_zero() {
                // Not a wait for an event: the time the balancer needs to see /readyz fail.
                draining.drain();
                output::eprint(&format!(
                    "stopping in {} s: /readyz answers 503 meanwhile, requests are still served\n",
                    drain.as_secs_f64()
                ));
                tokio::time::sleep(drain).await;
            }
        };
        xif_server::serve(
            &config,
            state,
            |bound| {
                output::eprint(&format!("listening on {scheme}://{}\n", bound.api));
                output::eprint(&format!(
                    "Service Center, the web console: {scheme}://{}/console/ (sign in as a user of this server)\n",
                    bound.api
                ));
                if let Some(metrics) = bound.metrics {
                    output::eprint(&format!("metrics on http://{metrics}/metrics\n"));
                }
                if log_off {
                    output::eprint(
                        "the integration log is off (--call-log-days 0): calls are not recorded, and the entries \
                         already recorded are kept as they are until it is on again\n",
                    );
                }
            },
            stop,
        )
        .await?;
        running.shutdown().await;
        output::eprint("stopped\n");
        Ok(Exit::Success)
    })
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
