//! The farm on PostgreSQL: the tables `nodes` and `node_extensions` (what each node runs),
//! `login_attempts` (a count per key and minute that every node adds to), `farm_settings` (the
//! archive store every node must use), and the channel
//! `xif_events` for `LISTEN/NOTIFY`. Times are the database's own (`now()`), so that the nodes'
//! clocks need not agree for liveness.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::postgres::{PgListener, PgPool};

use super::{Backend, Event, ExtensionState, LIVE_FOR, NodeIdentity, NodeInfo, Readiness};
use crate::store::StoreError;

/// The channel of events.
const CHANNEL: &str = "xif_events";

/// How a heartbeat fails when this node's row is gone (pruned while the node was cut off).
pub const NOT_REGISTERED: &str = "this node is not registered";

/// How long a node that stopped beating stays listed (as not live) before it is forgotten.
const FORGET_AFTER_SECS: i64 = 600;

/// The farm's tables in the PostgreSQL database of the metadata.
pub struct PgBackend {
    pool: PgPool,
    /// The heartbeat's own connection: however busy the other queries keep `pool`, a node that
    /// works keeps beating, and is not taken for gone by the others.
    beats: PgPool,
}

impl PgBackend {
    /// The back end over `pool`, with `beats` (a pool of one connection) for the heartbeat alone
    /// (the tables come with the store's migrations).
    pub fn new(pool: PgPool, beats: PgPool) -> Self {
        Self { pool, beats }
    }
}

fn failed(error: sqlx::Error) -> StoreError {
    StoreError::from(error)
}

#[async_trait]
impl Backend for PgBackend {
    async fn register(&self, node: &NodeIdentity) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO nodes (id, name, address, version, started_at, heartbeat_at) \
             VALUES ($1, $2, $3, $4, now(), now()) \
             ON CONFLICT (id) DO UPDATE SET name = $2, address = $3, version = $4, heartbeat_at = now()",
        )
        .bind(&node.id)
        .bind(&node.name)
        .bind(&node.address)
        .bind(&node.version)
        .execute(&self.beats)
        .await
        .map_err(failed)?;
        Ok(())
    }

    async fn heartbeat(&self, node_id: &str) -> Result<(), StoreError> {
        let beat =
            sqlx::query("UPDATE nodes SET heartbeat_at = now() WHERE id = $1").bind(node_id).execute(&self.beats).await;
        if beat.map_err(failed)?.rows_affected() == 0 {
            return Err(StoreError(NOT_REGISTERED.into()));
        }
        // Tidying, by whichever node beats: nodes long gone, and login counts of past minutes.
        // Its failure is not the heartbeat's: the next beat tidies again.
        let tidied = async {
            sqlx::query("DELETE FROM nodes WHERE heartbeat_at < now() - make_interval(secs => $1)")
                .bind(FORGET_AFTER_SECS as f64)
                .execute(&self.pool)
                .await?;
            sqlx::query("DELETE FROM login_attempts WHERE minute < $1")
                .bind(current_minute() - 1)
                .execute(&self.pool)
                .await
        };
        if let Err(error) = tidied.await {
            tracing::debug!(%error, "cannot tidy the farm's tables now");
        }
        Ok(())
    }

    async fn report(&self, node_id: &str, state: &ExtensionState) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO node_extensions (node_id, extension, running, failed_version, failure) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (node_id, extension) DO UPDATE SET running = $3, failed_version = $4, failure = $5",
        )
        .bind(node_id)
        .bind(&state.name)
        .bind(state.running)
        .bind(state.failed.as_ref().map(|(version, _)| *version))
        .bind(state.failed.as_ref().map(|(_, message)| message.as_str()))
        .execute(&self.pool)
        .await
        .map_err(failed)?;
        Ok(())
    }

    async fn nodes(&self, extension: Option<&str>) -> Result<Vec<NodeInfo>, StoreError> {
        // RFC 3339 in UTC, made by the database from its own times.
        let rows = sqlx::query(
            "SELECT id, name, address, version, \
             to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS started, \
             to_char(heartbeat_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS heartbeat, \
             heartbeat_at > now() - make_interval(secs => $1) AS live \
             FROM nodes ORDER BY started_at, name",
        )
        .bind(LIVE_FOR.as_secs_f64())
        .fetch_all(&self.pool)
        .await
        .map_err(failed)?;
        let extensions = sqlx::query(
            "SELECT node_id, extension, running, failed_version, failure FROM node_extensions \
             WHERE $1::text IS NULL OR lower(extension) = lower($1) ORDER BY extension",
        )
        .bind(extension)
        .fetch_all(&self.pool)
        .await
        .map_err(failed)?;
        let mut nodes = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("id").map_err(failed)?;
            let mut states = Vec::new();
            for extension in &extensions {
                if extension.try_get::<String, _>("node_id").map_err(failed)? != id {
                    continue;
                }
                let failed_version: Option<i64> = extension.try_get("failed_version").map_err(failed)?;
                let failure: Option<String> = extension.try_get("failure").map_err(failed)?;
                states.push(ExtensionState {
                    name: extension.try_get("extension").map_err(failed)?,
                    running: extension.try_get("running").map_err(failed)?,
                    failed: failed_version.zip(failure),
                });
            }
            nodes.push(NodeInfo {
                identity: NodeIdentity {
                    id,
                    name: row.try_get("name").map_err(failed)?,
                    address: row.try_get("address").map_err(failed)?,
                    version: row.try_get("version").map_err(failed)?,
                },
                started: row.try_get("started").map_err(failed)?,
                heartbeat: row.try_get("heartbeat").map_err(failed)?,
                live: row.try_get("live").map_err(failed)?,
                extensions: states,
            });
        }
        Ok(nodes)
    }

    async fn notify(&self, event: &Event) -> Result<(), StoreError> {
        let payload = serde_json::to_string(event).map_err(|error| StoreError(error.to_string()))?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&self.pool)
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn count_logins(&self, keys: &[String]) -> Result<Option<Vec<i64>>, StoreError> {
        // Every key in one statement: one round trip a login, whatever the keys.
        let rows = sqlx::query(
            "INSERT INTO login_attempts (key, minute, attempts) SELECT key, $2, 1 FROM unnest($1::text[]) AS key \
             ON CONFLICT (key, minute) DO UPDATE SET attempts = login_attempts.attempts + 1 \
             RETURNING key, attempts",
        )
        .bind(keys)
        .bind(current_minute())
        .fetch_all(&self.pool)
        .await
        .map_err(failed)?;
        let mut counts = vec![0; keys.len()];
        for row in rows {
            let key: String = row.try_get("key").map_err(failed)?;
            let attempts: i64 = row.try_get("attempts").map_err(failed)?;
            if let Some(index) = keys.iter().position(|wanted| *wanted == key) {
                counts[index] = attempts;
            }
        }
        Ok(Some(counts))
    }

    async fn leave(&self, node_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM nodes WHERE id = $1").bind(node_id).execute(&self.pool).await.map_err(failed)?;
        Ok(())
    }

    async fn claim_store(&self, store: &str) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO farm_settings (key, value) VALUES ('archive_store', $1) ON CONFLICT (key) DO NOTHING")
            .bind(store)
            .execute(&self.pool)
            .await
            .map_err(failed)?;
        let row = sqlx::query("SELECT value FROM farm_settings WHERE key = 'archive_store'")
            .fetch_one(&self.pool)
            .await
            .map_err(failed)?;
        row.try_get("value").map_err(failed)
    }

    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM farm_settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(failed)?;
        row.map(|row| row.try_get("value").map_err(failed)).transpose()
    }

    async fn claim_setting(&self, key: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO farm_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(failed)?;
        let row = sqlx::query("SELECT value FROM farm_settings WHERE key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await
            .map_err(failed)?;
        row.try_get("value").map_err(failed)
    }

    async fn listen(self: Arc<Self>, events: tokio::sync::broadcast::Sender<Event>, readiness: Arc<Readiness>) {
        loop {
            let mut listener = match PgListener::connect_with(&self.pool).await {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(error = %StoreError::from(error), "cannot listen for the other nodes' events; retrying");
                    readiness.set_listening(false);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(error) = listener.listen(CHANNEL).await {
                tracing::warn!(error = %StoreError::from(error), "cannot listen for the other nodes' events; retrying");
                readiness.set_listening(false);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            // Listening: whatever was missed before is caught up by comparing everything.
            readiness.set_listening(true);
            if events.send(Event::Resync).is_err() {
                return;
            }
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification)) => match serde_json::from_str::<Event>(notification.payload()) {
                        Ok(event) => {
                            if events.send(event).is_err() {
                                return;
                            }
                        }
                        Err(error) => tracing::warn!(%error, "an event from another node cannot be read"),
                    },
                    // `None`: the connection was lost, and what was sent meanwhile with it. A
                    // new listener is made rather than letting this one reconnect inside
                    // `try_recv`, so that the node knows when it listens again.
                    Ok(None) => {
                        tracing::warn!("lost the connection that listens for events; reconnecting");
                        readiness.set_listening(false);
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(error = %StoreError::from(error), "listening for events failed; reconnecting");
                        readiness.set_listening(false);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                }
            }
        }
    }
}

/// Minutes since the epoch, by this node's clock: a window of the shared login count.
fn current_minute() -> i64 {
    chrono::Utc::now().timestamp() / 60
}
