//! `xif quickstart`: everything once, on this machine. An embedded Platform Server in a
//! temporary directory, a user, a sample extension, a 1-Click Publish with full output, a call of
//! the sample action through the server, and a clean shutdown.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use xif_studio::Goal;

use crate::commands::BuildArgs;
use crate::{Exit, output};

#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// Keep the sample project and the server's data here instead of in a temporary directory
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    #[command(flatten)]
    build: BuildArgs,
}

const USER: &str = "developer";
const SAMPLE: &str = "Greeter";

pub fn run(args: &QuickstartArgs) -> anyhow::Result<Exit> {
    let temporary = tempfile::Builder::new().prefix("xif-quickstart-").tempdir()?;
    let root = match &args.keep {
        Some(directory) => {
            std::fs::create_dir_all(directory).with_context(|| format!("cannot create `{}`", directory.display()))?;
            directory.clone()
        }
        None => temporary.path().to_owned(),
    };
    let project = root.join(SAMPLE);
    if project.exists() {
        anyhow::bail!("`{}` exists already: give --keep an empty directory", project.display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;

    // The server, in this process, on a free port.
    let admin_password = secret()?;
    let (state, _) = runtime.block_on(xif_server::AppState::open(
        &xif_server::Storage::embedded(&root.join("server-data")),
        xif_server::Limits::default(),
        Some(&admin_password),
    ))?;
    let config = xif_server::ServerConfig {
        listen: "127.0.0.1:0".parse()?,
        data_dir: root.join("server-data"),
        tls: None,
        max_upload: 1 << 30,
        metrics_listen: None,
        advertise: None,
        node_name: None,
    };
    let (bound_sender, bound) = std::sync::mpsc::channel();
    let (stop_sender, stop) = tokio::sync::oneshot::channel::<()>();
    let serving = {
        let state = state.clone();
        runtime.spawn(async move {
            xif_server::serve(
                &config,
                state,
                move |bound| {
                    bound_sender.send(bound.api).ok();
                },
                async {
                    stop.await.ok();
                },
            )
            .await
        })
    };
    let address =
        bound.recv_timeout(std::time::Duration::from_secs(10)).context("the embedded server did not start")?;
    let url = format!("http://{address}");
    output::eprint(&format!("[ok]   embedded Platform Server listening on {url} (data in {})\n", root.display()));

    let outcome = runtime.block_on(async {
        let admin = xif_client::Client::new(&url, None, None)?;
        let admin_token = admin.login("admin", &admin_password, Some("quickstart")).await?.token;
        let admin = xif_client::Client::new(&url, Some(admin_token), None)?;
        let password = secret()?;
        admin
            .add_user(&xif_api::NewUser {
                name: USER.into(),
                password: password.clone(),
                administrator: false,
                grant: vec!["allow-extensions".into()],
            })
            .await?;
        let login = xif_client::Client::new(&url, None, None)?.login(USER, &password, Some("quickstart")).await?;
        output::eprint(&format!("[ok]   user `{USER}` created, with permission allow-extensions\n"));
        anyhow::Ok(login.token)
    });
    let token = match outcome {
        Ok(token) => token,
        Err(error) => {
            stop_sender.send(()).ok();
            return Err(error);
        }
    };

    xif_project::create_project(SAMPLE, &project)?;
    output::eprint(&format!("[ok]   sample extension `{SAMPLE}` created in {}\n", project.display()));
    let options = xif_studio::Options {
        project: project.clone(),
        goal: Goal::Publish,
        build: {
            let mut build = args.build.options();
            // Build output outlives the temporary project: a second quickstart is quick.
            if build.target_dir.is_none() && std::env::var_os("CARGO_TARGET_DIR").is_none() {
                build.target_dir = dirs::cache_dir().map(|cache| cache.join("xif").join("quickstart-target"));
            }
            build
        },
        archive: None,
        sign: None,
        connection: Some(xif_studio::Connection { server: url.clone(), token: token.clone(), ca_certificate: None }),
    };
    let exit = crate::commands::publish::publish_with(&runtime, &options, false);
    if exit == Exit::Success {
        let inputs = serde_json::json!({ "Person": { "Name": "Ada" } });
        output::eprint(&format!("calling {SAMPLE}.Greet through the server with {inputs}\n"));
        let called = runtime.block_on(async {
            let client = xif_client::Client::new(&url, Some(token), None)?;
            anyhow::Ok(client.invoke(SAMPLE, "Greet", &inputs).await?)
        });
        match called {
            Ok(outputs) => output::print(&format!("{}\n", serde_json::to_string_pretty(&outputs)?)),
            Err(error) => {
                output::eprint(&format!("error: the call failed: {error}\n"));
                stop_sender.send(()).ok();
                return Ok(Exit::CallFailed);
            }
        }
    }
    stop_sender.send(()).ok();
    runtime.block_on(async {
        serving.await.ok();
        state.shutdown().await;
    });
    output::eprint(if exit == Exit::Success {
        "[ok]   the server stopped; that was a 1-Click Publish. Next: `xif new NAME`, `xif login URL`, `xif publish`\n"
    } else {
        "the server stopped\n"
    });
    Ok(exit)
}

/// A random password for the embedded server's accounts, which live only as long as it does.
fn secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
    Ok(hex::encode(bytes))
}
