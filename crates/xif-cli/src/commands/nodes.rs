//! `xif nodes [--json]`: the nodes of the server's farm, whether each is live, and the version of
//! each extension it runs.

use clap::Args;

use crate::commands::login::{Connection, refused};
use crate::{Exit, output};

#[derive(Debug, Args)]
pub struct NodesArgs {
    #[command(flatten)]
    connection: Connection,
    /// Print the nodes as a JSON array instead of a table
    #[arg(long)]
    json: bool,
}

pub fn run(args: &NodesArgs) -> anyhow::Result<Exit> {
    let client = args.connection.client()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    refused(runtime.block_on(async {
        let nodes = client.nodes().await?;
        if args.json {
            output::print(&format!("{}\n", serde_json::to_string_pretty(&nodes)?));
            return anyhow::Ok(());
        }
        output::print(&table(&nodes));
        anyhow::Ok(())
    }))
}

/// One line a node: name, state, address, xif version, started, last heartbeat, and its
/// extensions as `NAME@VERSION` (`NAME failed: WHY` for a deploy that failed there).
fn table(nodes: &[xif_api::Node]) -> String {
    let rows: Vec<[String; 7]> = nodes
        .iter()
        .map(|node| {
            let extensions: Vec<String> = node
                .extensions
                .iter()
                .map(|extension| match (&extension.running, &extension.failure) {
                    (Some(running), None) => format!("{}@{running}", extension.name),
                    (running, Some(failure)) => format!(
                        "{}{} (failed: {failure})",
                        extension.name,
                        running.map(|running| format!("@{running}")).unwrap_or_default()
                    ),
                    (None, None) => format!("{} (not running)", extension.name),
                })
                .collect();
            [
                node.name.clone(),
                if node.live { "live" } else { "down" }.to_owned(),
                node.address.clone(),
                node.version.clone(),
                node.started.clone(),
                node.heartbeat.clone(),
                if extensions.is_empty() { "-".to_owned() } else { extensions.join(", ") },
            ]
        })
        .collect();
    let headers = ["NODE", "STATE", "ADDRESS", "XIF", "STARTED", "HEARTBEAT", "EXTENSIONS"];
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| {
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if index + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        text.push('\n');
        text
    };
    let mut text = line(&headers);
    for row in &rows {
        text.push_str(&line(&row.each_ref().map(String::as_str)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_names_each_node_and_what_it_runs() {
        let node = |name: &str, live, extensions| xif_api::Node {
            id: format!("{name}-id"),
            name: name.into(),
            address: format!("http://{name}:8180"),
            version: "0.1.0".into(),
            started: "2026-11-30T12:00:00Z".into(),
            heartbeat: "2026-11-30T12:05:00Z".into(),
            live,
            extensions,
        };
        let table = table(&[
            node("a", true, vec![xif_api::NodeExtension { name: "greeter".into(), running: Some(2), failure: None }]),
            node(
                "b",
                false,
                vec![xif_api::NodeExtension {
                    name: "greeter".into(),
                    running: Some(1),
                    failure: Some("it did not start".into()),
                }],
            ),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("NODE  STATE  ADDRESS"), "{table}");
        assert!(lines[1].starts_with("a     live   http://a:8180") && lines[1].ends_with("greeter@2"), "{table}");
        assert!(lines[2].contains("down") && lines[2].ends_with("greeter@1 (failed: it did not start)"), "{table}");
    }
}
