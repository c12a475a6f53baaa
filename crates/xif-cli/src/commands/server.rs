//! `xif server [--listen ADDR] [--data-dir DIR] [--tls-cert F --tls-key F] [--trusted-key F]...`

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use xif_server::{AppState, Limits, ServerConfig};

use crate::{Exit, output};

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The address to listen on; port 0 picks a free port
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8180", env = "XIF_LISTEN")]
    listen: SocketAddr,
    /// Where the database (SQLite) and the uploaded archives are kept
    #[arg(long, value_name = "DIR", default_value = "xif-data", env = "XIF_DATA_DIR")]
    data_dir: PathBuf,
    /// A PEM certificate chain to serve HTTPS with (with --tls-key)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The largest upload accepted, in MiB
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    max_upload_mib: u64,
    /// Threads serving requests [default: one less than the cores, at least one: published
    /// extensions run in processes of their own and need a core too]
    #[arg(long, value_name = "N", env = "XIF_WORKERS")]
    workers: Option<usize>,
    /// Accept only uploads signed by this minisign public key (made by `xif keygen`); repeat it
    /// to trust several keys. Without it, signatures are not required
    #[arg(long = "trusted-key", value_name = "FILE")]
    trusted_keys: Vec<PathBuf>,
}

pub fn run(args: &ServerArgs) -> anyhow::Result<Exit> {
    // A key that cannot be read stops the server before it starts: it would refuse every
    // upload signed with it, or, worse, trust fewer keys than its administrator meant.
    let trusted_keys =
        args.trusted_keys.iter().map(|path| xif_archive::PublicKey::from_file(path)).collect::<Result<Vec<_>, _>>()?;
    // Structured logs on stderr; `XIF_LOG` sets the level (`info` by default).
    let filter = tracing_subscriber::EnvFilter::try_from_env("XIF_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).init();
    let config = ServerConfig {
        listen: args.listen,
        data_dir: args.data_dir.clone(),
        tls: args.tls_cert.clone().zip(args.tls_key.clone()),
        max_upload: args.max_upload_mib << 20,
    };
    // Leaving a core to the extensions' processes pays: on 2 cores, calls through the API are a
    // third faster with one worker than with two (`cargo bench -p xif-cli --bench calls`).
    let workers = args.workers.filter(|workers| *workers > 0).unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, |cores| cores.get().saturating_sub(1).max(1))
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()?;
    runtime.block_on(async {
        let admin_password = std::env::var("XIF_ADMIN_PASSWORD").ok();
        if !trusted_keys.is_empty() {
            let ids: Vec<String> = trusted_keys.iter().map(|key| format!("`{}`", key.key_id())).collect();
            output::eprint(&format!("accepting only uploads signed by the key(s) {}\n", ids.join(", ")));
        }
        let limits = Limits { max_upload: config.max_upload, trusted_keys, ..Limits::default() };
        let (state, bootstrap) = AppState::open(&config.data_dir, limits, admin_password.as_deref()).await?;
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
        let scheme = if config.tls.is_some() { "https" } else { "http" };
        let running = state.clone();
        xif_server::serve(
            &config,
            state,
            |address| output::eprint(&format!("listening on {scheme}://{address}\n")),
            shutdown_signal(),
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
