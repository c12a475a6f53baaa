//! The farm of the embedded server: a single node, in memory, whose events stay in the process.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Backend, Event, ExtensionState, NodeIdentity, NodeInfo, Readiness};
use crate::store::StoreError;

/// One node, this one.
pub struct LocalBackend {
    node: Mutex<Option<(NodeIdentity, String)>>,
    extensions: Mutex<HashMap<String, ExtensionState>>,
    events: tokio::sync::broadcast::Sender<Event>,
}

impl Default for LocalBackend {
    fn default() -> Self {
        Self {
            node: Mutex::new(None),
            extensions: Mutex::new(HashMap::new()),
            events: tokio::sync::broadcast::channel(1024).0,
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[async_trait]
impl Backend for LocalBackend {
    async fn register(&self, node: &NodeIdentity) -> Result<(), StoreError> {
        let mut held = self.node.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let started = held.as_ref().map_or_else(now, |(_, started)| started.clone());
        *held = Some((node.clone(), started));
        Ok(())
    }

    async fn heartbeat(&self, _node_id: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn report(&self, _node_id: &str, state: &ExtensionState) -> Result<(), StoreError> {
        self.extensions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(state.name.to_ascii_lowercase(), state.clone());
        Ok(())
    }

    async fn nodes(&self, extension: Option<&str>) -> Result<Vec<NodeInfo>, StoreError> {
        let Some((identity, started)) = self.node.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
        else {
            return Ok(Vec::new());
        };
        let mut extensions: Vec<ExtensionState> =
            self.extensions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).values().cloned().collect();
        extensions.retain(|state| extension.is_none_or(|wanted| state.name.eq_ignore_ascii_case(wanted)));
        extensions.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(vec![NodeInfo { identity, started, heartbeat: now(), live: true, extensions }])
    }

    async fn notify(&self, event: &Event) -> Result<(), StoreError> {
        // No receiver until the node listens; nothing to tell then.
        self.events.send(event.clone()).ok();
        Ok(())
    }

    async fn count_logins(&self, _keys: &[String]) -> Result<Option<Vec<i64>>, StoreError> {
        Ok(None)
    }

    async fn leave(&self, _node_id: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn claim_store(&self, store: &str) -> Result<String, StoreError> {
        Ok(store.to_owned())
    }

    async fn listen(self: Arc<Self>, events: tokio::sync::broadcast::Sender<Event>, readiness: Arc<Readiness>) {
        let mut own = self.events.subscribe();
        readiness.set_listening(true);
        events.send(Event::Resync).ok();
        loop {
            match own.recv().await {
                Ok(event) => {
                    if events.send(event).is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    events.send(Event::Resync).ok();
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
