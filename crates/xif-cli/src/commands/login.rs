//! `xif login [URL]`, `xif logout`, `xif whoami`, and where every server command finds its
//! server: `--server`/`XIF_SERVER` and `--token`/`XIF_TOKEN` first, then the last login.
//!
//! Logins are kept in `credentials.json` in the user's config directory (`XIF_CONFIG_DIR`
//! overrides it), readable by its owner only: the servers used before, the user name for each,
//! and the token of the current login.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use serde::{Deserialize, Serialize};
use xif_api::ErrorCode;
use xif_client::{Client, ClientError};

use crate::{Exit, output};

/// Which server to talk to, and as whom.
///
/// The options are global: a command with subcommands (`xif admin`, `xif token`) takes them
/// anywhere after its name (`xif admin connection list --server URL`), and each subcommand's
/// `--help` shows them.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// The server's URL [default: the last `xif login`]
    #[arg(long, value_name = "URL", env = "XIF_SERVER", global = true)]
    pub server: Option<String>,
    /// An API token [default: the token of the last `xif login`]
    #[arg(long, value_name = "TOKEN", env = "XIF_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// A PEM CA certificate to trust for the server's TLS certificate
    #[arg(long, value_name = "FILE", env = "XIF_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
}

/// A server and a token to use it with.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The server's URL.
    pub server: String,
    /// The token.
    pub token: String,
    /// A CA certificate to trust, in PEM.
    pub ca_certificate: Option<Vec<u8>>,
}

impl Resolved {
    /// A client of the server.
    pub fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::new(&self.server, Some(self.token.clone()), self.ca_certificate.as_deref())?)
    }
}

/// The message for a command that needs a server and has none.
pub const NOT_CONNECTED: &str = "not connected to a server: run `xif login URL`, or set XIF_SERVER and XIF_TOKEN (with XIF_CA_CERT for a private CA)";

impl Connection {
    /// The server and token: from the options and variables, else from the last login; `None`
    /// when there is neither.
    pub fn resolve(&self) -> anyhow::Result<Option<Resolved>> {
        let stored = Credentials::load()?;
        let server = self.server.clone().or_else(|| stored.current.clone());
        let Some(server) = server else { return Ok(None) };
        let saved = stored.find(&server);
        let token = self.token.clone().or_else(|| saved.and_then(|saved| saved.token.clone()));
        let Some(token) = token else { return Ok(None) };
        let ca_cert = self.ca_cert.clone().or_else(|| saved.and_then(|saved| saved.ca_cert.clone()));
        let ca_certificate = match ca_cert {
            Some(path) => Some(std::fs::read(&path).with_context(|| format!("cannot read `{}`", path.display()))?),
            None => None,
        };
        Ok(Some(Resolved { server, token, ca_certificate }))
    }

    /// The server and token, or the error that names `xif login` and the variables.
    pub fn required(&self) -> anyhow::Result<Resolved> {
        match (self.resolve()?, &self.server) {
            (Some(resolved), _) => Ok(resolved),
            // A server named on this command, without a token for it: say so, not that there is
            // no server at all.
            (None, Some(server)) => Err(anyhow::anyhow!(
                "no token for `{server}`: run `xif login {server}`, or pass --token (or XIF_TOKEN)"
            )),
            (None, None) => Err(anyhow::anyhow!(NOT_CONNECTED)),
        }
    }

    /// A client of the server.
    pub fn client(&self) -> anyhow::Result<Client> {
        self.required()?.client()
    }
}

/// Turns an answer of the server into output and an exit code: a refusal is reported with exit
/// code 4, a server that cannot be reached with 5; other errors go up.
pub fn refused(outcome: anyhow::Result<()>) -> anyhow::Result<Exit> {
    match outcome {
        Ok(()) => Ok(Exit::Success),
        Err(error) => match error.downcast_ref::<ClientError>() {
            Some(ClientError::Server { code, .. }) => {
                let hint = match code {
                    ErrorCode::Unauthenticated | ErrorCode::InvalidToken | ErrorCode::TokenExpired => {
                        "help: log in again with `xif login`\n"
                    }
                    _ => "",
                };
                output::eprint(&format!("error: {error}\n{hint}"));
                Ok(Exit::of(*code))
            }
            Some(ClientError::Network { .. }) => {
                output::eprint(&format!("error: {error}\n"));
                Ok(Exit::Network)
            }
            None => Err(error),
        },
    }
}

/// What `credentials.json` holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Credentials {
    /// The server of the last login.
    current: Option<String>,
    /// Every server logged in to, the most recent first.
    servers: Vec<SavedServer>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedServer {
    url: String,
    user: String,
    /// Present while logged in.
    token: Option<String>,
    token_id: Option<i64>,
    ca_cert: Option<PathBuf>,
}

fn config_directory() -> anyhow::Result<PathBuf> {
    if let Some(directory) = std::env::var_os("XIF_CONFIG_DIR") {
        return Ok(PathBuf::from(directory));
    }
    dirs::config_dir()
        .map(|directory| directory.join("xif"))
        .ok_or_else(|| anyhow::anyhow!("no config directory: set HOME, or XIF_CONFIG_DIR"))
}

fn normalize(url: &str) -> String {
    url.trim().trim_end_matches('/').to_owned()
}

impl Credentials {
    fn path() -> anyhow::Result<PathBuf> {
        Ok(config_directory()?.join("credentials.json"))
    }

    fn load() -> anyhow::Result<Self> {
        let path = Self::path()?;
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!("`{}` is not a credentials file of xif; remove it and log in again", path.display())
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(error) => Err(error).with_context(|| format!("cannot read `{}`", path.display())),
        }
    }

    fn find(&self, url: &str) -> Option<&SavedServer> {
        let url = normalize(url);
        self.servers.iter().find(|saved| saved.url == url)
    }

    /// Writes the file readable and writable by its owner only, through a temporary file, so a
    /// crash never leaves half a file and the token is never readable by others, not even for
    /// a moment.
    fn store(&self) -> anyhow::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        let path = Self::path()?;
        let directory = path.parent().map(PathBuf::from).unwrap_or_default();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&directory)
            .with_context(|| format!("cannot create `{}`", directory.display()))?;
        let temporary = directory.join(format!(".credentials.{}.tmp", std::process::id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(|| format!("cannot write `{}`", temporary.display()))?;
        // An existing file keeps its mode on open: set it either way.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(&serde_json::to_vec_pretty(self)?)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path).with_context(|| format!("cannot write `{}`", path.display()))?;
        Ok(())
    }

    fn remember(&mut self, saved: SavedServer) {
        self.servers.retain(|other| other.url != saved.url);
        self.current = Some(saved.url.clone());
        self.servers.insert(0, saved);
    }
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The server's URL, `https://host:port` [asked for on a terminal, offering the ones used before]
    url: Option<String>,
    /// The user name [asked for on a terminal]
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// Read the password from the first line of stdin instead of asking for it
    #[arg(long)]
    password_stdin: bool,
    /// A PEM CA certificate to trust for the server's TLS certificate
    #[arg(long, value_name = "FILE", env = "XIF_CA_CERT")]
    ca_cert: Option<PathBuf>,
}

pub fn login(args: &LoginArgs) -> anyhow::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match runtime.block_on(log_in(args.url.clone(), args.user.clone(), args.password_stdin, args.ca_cert.clone())) {
        Ok(_) => Ok(Exit::Success),
        Err(error) => refused(Err(error)),
    }
}

fn terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

fn ask(question: &str, default: Option<&str>) -> anyhow::Result<String> {
    let shown = match default {
        Some(default) => format!("{question} [{default}]: "),
        None => format!("{question}: "),
    };
    output::eprint(&shown);
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    let answer = answer.trim();
    match (answer.is_empty(), default) {
        (true, Some(default)) => Ok(default.to_owned()),
        (true, None) => anyhow::bail!("no answer to `{question}`"),
        (false, _) => Ok(answer.to_owned()),
    }
}

/// Logs in, asking on a terminal for what was not given, and stores the token; returns the
/// server and token to go on with.
pub async fn log_in(
    url: Option<String>,
    user: Option<String>,
    password_stdin: bool,
    ca_cert: Option<PathBuf>,
) -> anyhow::Result<Resolved> {
    let credentials = Credentials::load()?;
    let url = match url {
        Some(url) => normalize(&url),
        None if terminal() => {
            if !credentials.servers.is_empty() {
                output::eprint("servers used before:\n");
                for (index, saved) in credentials.servers.iter().enumerate() {
                    output::eprint(&format!("  {}) {} (as {})\n", index + 1, saved.url, saved.user));
                }
            }
            let answer = ask("server (a URL, or a number above)", credentials.current.as_deref())?;
            match answer.parse::<usize>() {
                Ok(number) if (1..=credentials.servers.len()).contains(&number) => {
                    credentials.servers[number - 1].url.clone()
                }
                _ => normalize(&answer),
            }
        }
        None => anyhow::bail!("which server? Give its URL: `xif login https://host:port`"),
    };
    let previous = credentials.find(&url).cloned();
    let user = match user {
        Some(user) => user,
        None if terminal() => ask("user name", previous.as_ref().map(|saved| saved.user.as_str()))?,
        None => anyhow::bail!("which user? Give it with `--user NAME`"),
    };
    let password = if password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else if terminal() {
        rpassword::prompt_password(format!("password for {user} on {url}: "))?
    } else {
        anyhow::bail!("no terminal to ask for the password on: pass it on stdin with `--password-stdin`");
    };
    perform_login(&url, &user, &password, ca_cert).await
}

/// The servers logged in to before, the most recent first, each with its user name.
pub fn history() -> Vec<(String, String)> {
    Credentials::load()
        .map(|credentials| credentials.servers.into_iter().map(|saved| (saved.url, saved.user)).collect())
        .unwrap_or_default()
}

/// Logs in to `url` as `user` and stores the token; the previous token of that server is
/// revoked.
pub async fn perform_login(
    url: &str,
    user: &str,
    password: &str,
    ca_cert: Option<PathBuf>,
) -> anyhow::Result<Resolved> {
    let url = normalize(url);
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        anyhow::bail!("`{url}` is not a server URL: write it as `https://host:port` (or `http://` for a local server)");
    }
    let mut credentials = Credentials::load()?;
    let previous = credentials.find(&url).cloned();
    let ca_cert = ca_cert.or_else(|| previous.as_ref().and_then(|saved| saved.ca_cert.clone()));
    let ca_certificate = match &ca_cert {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?),
        None => None,
    };
    let client = Client::new(&url, None, ca_certificate.as_deref())?;
    let label = format!("xif login on {}", hostname());
    let login = client.login(user, password, Some(&label)).await?;
    // The previous token of this server is no longer needed: revoke it, quietly.
    if let Some(SavedServer { token: Some(token), token_id: Some(id), .. }) = &previous
        && let Ok(old) = Client::new(&url, Some(token.clone()), ca_certificate.as_deref())
    {
        old.revoke_token(*id).await.ok();
    }
    credentials.remember(SavedServer {
        url: url.clone(),
        user: login.user.name.clone(),
        token: Some(login.token.clone()),
        token_id: Some(login.token_id),
        ca_cert: ca_cert.clone(),
    });
    credentials.store()?;
    let permissions: Vec<&str> = login.user.permissions.iter().map(|permission| permission.name()).collect();
    let expiry = login.expires_at.as_deref().map(|at| format!(" until {at}")).unwrap_or_default();
    output::eprint(&format!(
        "logged in to {url} as {} ({}); the token is kept in `{}`{expiry}\n",
        login.user.name,
        if permissions.is_empty() { "no permissions".to_owned() } else { permissions.join(", ") },
        Credentials::path()?.display()
    ));
    Ok(Resolved { server: url, token: login.token, ca_certificate })
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "this machine".into())
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The server to log out of [default: the current one]
    url: Option<String>,
}

pub fn logout(args: &LogoutArgs) -> anyhow::Result<Exit> {
    let mut credentials = Credentials::load()?;
    let Some(url) = args.url.as_deref().map(normalize).or_else(|| credentials.current.clone()) else {
        output::eprint("not logged in to any server\n");
        return Ok(Exit::Success);
    };
    let Some(saved) = credentials.servers.iter_mut().find(|saved| saved.url == url) else {
        anyhow::bail!("not logged in to {url}");
    };
    let (token, id) = (saved.token.take(), saved.token_id.take());
    let ca_cert = saved.ca_cert.clone();
    if credentials.current.as_deref() == Some(url.as_str()) {
        credentials.current = None;
    }
    // Forget the token here first: logging out works even when the server is gone.
    credentials.store()?;
    let revoked = match (token, id) {
        (Some(token), Some(id)) => {
            let ca = ca_cert.and_then(|path| std::fs::read(path).ok());
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let client = Client::new(&url, Some(token), ca.as_deref())?;
                client.revoke_token(id).await
            })
        }
        _ => Ok(()),
    };
    match revoked {
        Ok(()) => output::eprint(&format!("logged out of {url}; the token was revoked\n")),
        Err(error) => output::eprint(&format!(
            "logged out of {url}; the token is forgotten here, but the server could not revoke it ({error})\n"
        )),
    }
    Ok(Exit::Success)
}

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    connection: Connection,
}

pub fn whoami(args: &WhoamiArgs) -> anyhow::Result<Exit> {
    let resolved = args.connection.required()?;
    let client = resolved.client()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    refused(runtime.block_on(async {
        let me = client.me().await?;
        let permissions: Vec<&str> = me.permissions.iter().map(|permission| permission.name()).collect();
        output::print(&format!(
            "{} on {}{}\npermissions: {}\n",
            me.name,
            resolved.server,
            if me.administrator { " (administrator)" } else { "" },
            if permissions.is_empty() { "none".to_owned() } else { permissions.join(", ") }
        ));
        anyhow::Ok(())
    }))
}
