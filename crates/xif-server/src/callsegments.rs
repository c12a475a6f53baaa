//! How the integration log is stored, on both back ends: in *segments*, a row for each batch
//! of one extension's entries (at most [`MAX_ENTRIES`]), with the entries packed in a blob
//! (postcard, after a format byte) and, as columns, what a query or the sweep picks segments by:
//! the extension, the first and last times, how many entries and how many failed.
//!
//! Why not a row per entry: the log is written at the rate of calls, and a row per entry (ten
//! bound values, a table b-tree and an index b-tree, at about 1.5 µs an entry on SQLite) took
//! about a tenth of a loaded server's CPU on a two-core machine, against the calls (issue 15's bar:
//! calls with the log on at least 0.9× those with it off). A segment costs its entries their
//! encoding (about 0.1 µs each) and a row a batch.
//!
//! An entry's id is its segment's id times 2^16 ([`SHIFT`]) plus its position in the segment as
//! written: later entries have greater ids (a segment's id is greater than those inserted
//! before it), and an entry keeps its id when the sweep rewrites its segment without the entries
//! older than the retention. Queries read an extension's segments newest first, skip by their
//! columns those that cannot hold a match (`since`, `failed`, the page's cursor), and filter the
//! entries of the others here, until the page is full.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::calllog::{CallEntry, CallKind};
use crate::store::{CallQuery, StoreError};

/// The most entries in a segment: a position fits in the 16 bits below the segment's id.
pub(crate) const MAX_ENTRIES: usize = 4_096;

/// How far an entry's id shifts its segment's id.
pub(crate) const SHIFT: u32 = 16;

/// The first byte of a segment's blob: how its entries are encoded.
const FORMAT: u8 = 1;

/// An entry as a segment keeps it (its extension and node are the segment's).
#[derive(Serialize, Deserialize)]
struct Stored<'a> {
    /// Its position in the segment as written: the low bits of its id.
    position: u16,
    /// When the call arrived, in microseconds since the epoch.
    at: i64,
    #[serde(borrow)]
    module: Option<&'a str>,
    user: &'a str,
    token_id: Option<i64>,
    /// A record operation (else an action).
    record: bool,
    operation: &'a str,
    duration_us: i64,
    #[serde(borrow)]
    error: Option<&'a str>,
}

/// A segment to insert.
pub(crate) struct Segment<'a> {
    /// The extension of its entries.
    pub extension: &'a str,
    /// The earliest and latest times of its entries (microseconds since the epoch).
    pub first_at: i64,
    pub last_at: i64,
    /// How many entries it holds, and how many of them failed.
    pub count: i64,
    pub failed: i64,
    /// The entries, encoded.
    pub entries: Vec<u8>,
}

fn encoding(error: &postcard::Error) -> StoreError {
    StoreError(format!("an entry of the integration log cannot be encoded: {error}"))
}

fn decoding(error: &postcard::Error) -> StoreError {
    StoreError(format!("a segment of the integration log cannot be read: {error}"))
}

/// `calls` as segments: grouped by extension (in the order each first appears), in their order
/// within each, at most [`MAX_ENTRIES`] a segment.
pub(crate) fn segments(calls: &[CallEntry]) -> Result<Vec<Segment<'_>>, StoreError> {
    // By the name regardless of ASCII case, as the log is read: calls that spell an extension
    // differently share its segments (under the first spelling of the batch) rather than
    // splitting them.
    let mut groups: Vec<(&str, Vec<&CallEntry>)> = Vec::new();
    let mut group_of: HashMap<compact_str::CompactString, usize> = HashMap::new();
    for call in calls {
        let group = *group_of.entry(call.extension.to_ascii_lowercase()).or_insert_with(|| {
            groups.push((call.extension.as_str(), Vec::new()));
            groups.len() - 1
        });
        groups[group].1.push(call);
    }
    let mut segments = Vec::new();
    for (extension, calls) in &groups {
        for chunk in calls.chunks(MAX_ENTRIES) {
            let mut entries = Vec::with_capacity(1 + chunk.len() * 48);
            entries.push(FORMAT);
            let (mut first_at, mut last_at, mut failed) = (i64::MAX, i64::MIN, 0);
            for (position, call) in chunk.iter().enumerate() {
                let at = crate::store::micros(call.at);
                first_at = first_at.min(at);
                last_at = last_at.max(at);
                failed += i64::from(call.error.is_some());
                let stored = Stored {
                    position: u16::try_from(position).unwrap_or(u16::MAX),
                    at,
                    module: call.module.as_deref(),
                    user: &call.user,
                    token_id: call.token_id,
                    record: call.kind == CallKind::Record,
                    operation: &call.operation,
                    duration_us: i64::try_from(call.duration.as_micros()).unwrap_or(i64::MAX),
                    error: call.error.as_deref(),
                };
                entries = postcard::to_extend(&stored, entries).map_err(|error| encoding(&error))?;
            }
            segments.push(Segment { extension, first_at, last_at, count: chunk.len() as i64, failed, entries });
        }
    }
    Ok(segments)
}

/// The entries of a segment's blob, in their order.
fn decode(blob: &[u8]) -> Result<Vec<Stored<'_>>, StoreError> {
    let Some((&FORMAT, mut rest)) = blob.split_first() else {
        return Err(StoreError("a segment of the integration log is of an unknown format".into()));
    };
    let mut entries = Vec::new();
    while !rest.is_empty() {
        let (entry, after) = postcard::take_from_bytes::<Stored<'_>>(rest).map_err(|error| decoding(&error))?;
        entries.push(entry);
        rest = after;
    }
    Ok(entries)
}

/// The segment id from which a query's segments are read down (`id <= this`): that of the
/// entries older than the cursor, when the query has one.
pub(crate) fn segment_of(before_id: Option<i64>) -> Option<i64> {
    before_id.map(|id| id.saturating_sub(1) >> SHIFT)
}

/// A segment as read back.
pub(crate) struct Row {
    pub id: i64,
    pub extension: String,
    pub node: Option<String>,
    pub entries: Vec<u8>,
}

/// What a query selects among a segment's entries: [`CallQuery`] without its extension and
/// limit, owned, to be sent to a blocking thread.
pub(crate) struct Filter {
    module: Option<String>,
    owner: Option<String>,
    token_id: Option<i64>,
    since_micros: Option<i64>,
    failed: bool,
    before_id: Option<i64>,
}

impl From<&CallQuery<'_>> for Filter {
    fn from(query: &CallQuery<'_>) -> Self {
        Filter {
            module: query.module.map(str::to_owned),
            owner: query.owner.map(str::to_owned),
            token_id: query.token_id,
            since_micros: query.since_micros,
            failed: query.failed,
            before_id: query.before_id,
        }
    }
}

/// Adds to `found` the entries of `row` that `filter` selects, newest first, until `found` holds
/// `limit` entries.
pub(crate) fn select(
    row: &Row,
    filter: &Filter,
    limit: usize,
    found: &mut Vec<xif_api::CallRecord>,
) -> Result<(), StoreError> {
    for entry in decode(&row.entries)?.iter().rev() {
        if found.len() >= limit {
            break;
        }
        let id = (row.id << SHIFT) | i64::from(entry.position);
        let module = filter.module.as_deref().is_none_or(|module| {
            (entry.module.is_some_and(|own| own.eq_ignore_ascii_case(module))
                && Some(entry.user) == filter.owner.as_deref())
                || (filter.token_id.is_some() && entry.token_id == filter.token_id)
        });
        if module
            && filter.since_micros.is_none_or(|since| entry.at >= since)
            && (!filter.failed || entry.error.is_some())
            && filter.before_id.is_none_or(|before| id < before)
        {
            found.push(crate::store::call_record(
                id,
                entry.at,
                row.extension.clone(),
                entry.module.map(str::to_owned),
                entry.user.to_owned(),
                entry.token_id,
                if entry.record { CallKind::Record } else { CallKind::Action }.name().to_owned(),
                entry.operation.to_owned(),
                entry.duration_us,
                entry.error.map(str::to_owned),
                row.node.clone(),
            ));
        }
    }
    Ok(())
}

/// The most entries one query decodes, about 15 ms of a core (and at most [`SEGMENTS_MOST`]
/// segments): past them, the page is answered
/// with what was found and a cursor to go on from ([`crate::store::CallsFound::resume_before`]),
/// so that no request (a module's, whose entries are few among many) costs the server more.
pub(crate) const SCAN_MOST: i64 = 262_144;

/// The most segments one query reads: the budget of [`SCAN_MOST`] in rows, for a log of small
/// segments (a quiet server writes a few entries a batch), whose rows cost more than their entries.
pub(crate) const SEGMENTS_MOST: usize = 4_096;

/// How many segments are decoded together, on a blocking thread rather than on the runtime's
/// worker (which the calls need).
const DECODED_TOGETHER: usize = 16;

/// Reads a query's page from `rows`, an extension's segments newest first (`id`, `extension`,
/// `node`, `count`, `entries`), as either back end answers them; stops reading once the page is
/// full or [`SCAN_MOST`] entries were decoded. A segment that cannot be decoded is left out, with
/// an error in the server's log, rather than making the rest of the log unreadable.
pub(crate) async fn read<R, S>(mut rows: S, query: &CallQuery<'_>) -> Result<crate::store::CallsFound, StoreError>
where
    S: futures_util::Stream<Item = Result<R, sqlx::Error>> + Unpin,
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    use futures_util::TryStreamExt as _;
    let limit = query.limit as usize;
    let filter = std::sync::Arc::new(Filter::from(query));
    let mut found = Vec::new();
    let (mut decoded, mut segments) = (0_i64, 0_usize);
    let spent = |decoded: i64, segments: usize| decoded >= SCAN_MOST || segments >= SEGMENTS_MOST;
    while found.len() < limit {
        let mut chunk = Vec::with_capacity(DECODED_TOGETHER);
        while chunk.len() < DECODED_TOGETHER
            && !spent(decoded, segments)
            && let Some(row) = rows.try_next().await?
        {
            decoded += i64::from(row.try_get::<i32, _>("count")?);
            segments += 1;
            chunk.push(Row {
                id: row.try_get("id")?,
                extension: row.try_get("extension")?,
                node: row.try_get("node")?,
                entries: row.try_get("entries")?,
            });
        }
        let Some(last) = chunk.last().map(|row| row.id) else { break };
        let filter = std::sync::Arc::clone(&filter);
        let mut page = std::mem::take(&mut found);
        found = tokio::task::spawn_blocking(move || {
            for row in &chunk {
                if let Err(error) = select(row, &filter, limit, &mut page) {
                    damaged(row.id, &error);
                }
            }
            page
        })
        .await
        .map_err(|error| StoreError(format!("the integration log's reading ended: {error}")))?;
        if spent(decoded, segments) && found.len() < limit {
            return Ok(crate::store::CallsFound { entries: found, resume_before: Some(last << SHIFT) });
        }
    }
    Ok(crate::store::CallsFound { entries: found, resume_before: None })
}

/// The report of damaged segments.
static DAMAGED: crate::calllog::Throttle = crate::calllog::Throttle::new();

/// Reports a segment left out of a page because it cannot be decoded: at most every 10 seconds,
/// as every query that reaches it would (a module token polling could fill the server's log).
fn damaged(segment: i64, error: &StoreError) {
    if DAMAGED.due() {
        tracing::error!(
            segment,
            %error,
            "a segment of the integration log cannot be read and is left out of pages (said at most every 10 s); \
             the sweep removes it once it is older than the retention"
        );
    }
}

/// A segment without its entries made before the sweep's time.
pub(crate) struct Pruned {
    /// The entries kept, encoded; their count, failures and times (`count` 0: none kept).
    pub entries: Vec<u8>,
    pub count: i64,
    pub failed: i64,
    pub first_at: i64,
    pub last_at: i64,
    /// How many were removed.
    pub removed: u64,
}

/// `blob` without the entries made before `before_micros`; they keep their positions, so their
/// ids.
/// A segment that cannot be decoded comes back empty (so removed), with an error in the server's
/// log: it began before the sweep's time, and would keep every later sweep from ending.
pub(crate) fn prune(id: i64, blob: &[u8], before_micros: i64) -> Result<Pruned, StoreError> {
    let mut pruned =
        Pruned { entries: vec![FORMAT], count: 0, failed: 0, first_at: i64::MAX, last_at: i64::MIN, removed: 0 };
    let entries = match decode(blob) {
        Ok(entries) => entries,
        Err(error) => {
            tracing::error!(segment = id, %error, "a segment of the integration log that cannot be read is removed");
            return Ok(pruned);
        }
    };
    for entry in &entries {
        if entry.at < before_micros {
            pruned.removed += 1;
            continue;
        }
        pruned.count += 1;
        pruned.failed += i64::from(entry.error.is_some());
        pruned.first_at = pruned.first_at.min(entry.at);
        pruned.last_at = pruned.last_at.max(entry.at);
        pruned.entries =
            postcard::to_extend(entry, std::mem::take(&mut pruned.entries)).map_err(|error| encoding(&error))?;
    }
    Ok(pruned)
}

/// An entry of the log as a row of the table of earlier versions (a row per entry) held it, and
/// the node that served it, to be written again as segments when the store opens.
pub(crate) fn old_entry<'r, R>(row: &'r R) -> Result<(Option<String>, CallEntry), sqlx::Error>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let at: i64 = row.try_get("at")?;
    let since_epoch = Duration::from_micros(at.unsigned_abs());
    let at = if at >= 0 { SystemTime::UNIX_EPOCH + since_epoch } else { SystemTime::UNIX_EPOCH - since_epoch };
    let kind: &str = row.try_get("kind")?;
    let duration_us: i64 = row.try_get("duration_us")?;
    let entry = CallEntry {
        at,
        extension: row.try_get::<&str, _>("extension")?.into(),
        module: row.try_get::<Option<&str>, _>("module")?.map(Into::into),
        user: row.try_get::<&str, _>("user_name")?.into(),
        token_id: row.try_get("token_id")?,
        kind: if kind == "record" { CallKind::Record } else { CallKind::Action },
        operation: row.try_get::<&str, _>("operation")?.into(),
        duration: Duration::from_micros(u64::try_from(duration_us).unwrap_or(0)),
        error: row.try_get::<Option<&str>, _>("error")?.map(Into::into),
    };
    Ok((row.try_get::<Option<&str>, _>("node")?.map(str::to_owned), entry))
}

/// Entries served by one node (`None`: not said), in their order.
pub(crate) type Run = (Option<String>, Vec<CallEntry>);

/// The entries of `rows` of the old table in runs of the same node (which served them), in
/// their order: the old table held each batch's entries together, so runs are batches, and an
/// extension's entries keep their order across segments. And how many rows could not be read (a
/// value of the wrong type: SQLite keeps what it was given), which are left out with a warning
/// rather than keeping the store from opening.
pub(crate) fn old_runs<R>(rows: &[R]) -> (Vec<Run>, u64)
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let mut runs: Vec<Run> = Vec::new();
    let mut unreadable = 0;
    for row in rows {
        match old_entry(row) {
            Ok((node, entry)) => match runs.last_mut() {
                Some((own, run)) if *own == node => run.push(entry),
                _ => runs.push((node, vec![entry])),
            },
            Err(error) => {
                unreadable += 1;
                tracing::warn!(%error, "an entry of the old integration log cannot be read; it is left out");
            }
        }
    }
    (runs, unreadable)
}

/// The old table's rows moved in one transaction (fewer in unit tests, so that theirs take
/// several).
pub(crate) const OLD_ROWS_AT_ONCE: i64 = if cfg!(test) { 1_000 } else { 10_000 };

/// Tells the server's log how the move of the old table's entries goes: at its start (`total`
/// entries), every 100,000 and at its end.
pub(crate) struct OldLogMove {
    total: i64,
    moved: u64,
    unreadable: u64,
    started: std::time::Instant,
}

impl OldLogMove {
    pub(crate) fn start(total: i64) -> Self {
        if total > 0 {
            tracing::info!(
                entries = total,
                "moving the entries of the integration log of an earlier version to its new layout (those left to \
                 move; once; the server starts after)"
            );
        }
        OldLogMove { total, moved: 0, unreadable: 0, started: std::time::Instant::now() }
    }

    pub(crate) fn moved(&mut self, rows: usize, unreadable: u64) {
        let before = self.moved / 100_000;
        self.moved += rows as u64;
        self.unreadable += unreadable;
        if self.moved / 100_000 > before {
            tracing::info!(moved = self.moved, of = self.total, "moving the integration log of an earlier version");
        }
    }

    pub(crate) fn end(&self) {
        if self.moved > 0 {
            tracing::info!(
                moved = self.moved,
                unreadable = self.unreadable,
                seconds = self.started.elapsed().as_secs_f64(),
                "the integration log of an earlier version is moved to its new layout"
            );
        }
    }
}

/// What a test of either back end checks after the table of earlier versions was written again
/// as segments: the 2,500 entries of `OLD_LOG` (made `now`) read back as they were, newest
/// first; Echo's, which it returns.
#[cfg(test)]
pub(crate) async fn check_old_log(store: &dyn crate::store::MetadataStore, now: i64) -> Vec<xif_api::CallRecord> {
    let query = |extension| CallQuery::every(extension, 5000);
    let echo = store.calls(&query("echo")).await.expect("read").entries;
    assert_eq!(echo.len(), 2000, "Echo's entries, once each");
    assert!(echo.windows(2).all(|pair| pair[0].id > pair[1].id && pair[0].at > pair[1].at), "newest first");
    let newest = &echo[0];
    assert_eq!(
        (newest.operation.as_str(), newest.token_id, newest.duration_us, newest.module.as_deref()),
        ("Op2499", Some(2499), 2499, None)
    );
    assert_eq!(
        (newest.kind.as_str(), newest.error.as_deref(), newest.node.as_deref()),
        ("record", Some("invalid_input"), Some("node-0"))
    );
    assert_eq!(newest.at, crate::store::rfc3339_micros(now - 1_000_000));
    let shop = echo.iter().find(|call| call.token_id == Some(2398)).expect("there");
    assert_eq!(
        (shop.module.as_deref(), shop.node.as_deref(), shop.kind.as_str()),
        (Some("Shop"), Some("node-1"), "action")
    );
    let failed = store.calls(&CallQuery { failed: true, ..query("Echo") }).await.expect("read").entries;
    assert_eq!(failed.len(), 2500 / 3 - 2500 / 15, "Echo's failed entries");
    assert_eq!(store.calls(&query("OTHER")).await.expect("read").entries.len(), 500);
    echo
}

/// The rows of the old table `calls` that tests of either back end write (`{now}` replaced by
/// the time, `{n}` by a table of the integers 1 to 2,500 as `i`): 2,500 entries a second apart,
/// every third of Echo's failed, one in five for Other, in batches of 100 from two nodes.
#[cfg(test)]
pub(crate) const OLD_LOG: &str = "INSERT INTO calls (at, extension, module, user_name, token_id, kind, operation, duration_us, error, node) \
     SELECT {now} - (2500 - i) * CAST(1000000 AS BIGINT), CASE WHEN i % 5 = 0 THEN 'Other' ELSE 'Echo' END, \
     CASE WHEN i % 2 = 0 THEN 'Shop' END, 'ada', i, CASE WHEN i % 7 = 0 THEN 'record' ELSE 'action' END, \
     'Op' || i, i, CASE WHEN i % 3 = 0 THEN 'invalid_input' END, 'node-' || (i / 100 % 2) FROM {n} ORDER BY i";

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(extension: &str, age_secs: u64, error: Option<&str>) -> CallEntry {
        CallEntry {
            at: SystemTime::now() - Duration::from_secs(age_secs),
            extension: extension.into(),
            module: Some("Shop".into()),
            user: "ada".into(),
            token_id: Some(3),
            kind: CallKind::Record,
            operation: "Customer.read".into(),
            duration: Duration::from_micros(42),
            error: error.map(Into::into),
        }
    }

    fn every() -> Filter {
        Filter { module: None, owner: None, token_id: None, since_micros: None, failed: false, before_id: None }
    }

    fn row(id: i64, entries: &[u8]) -> Row {
        Row { id, extension: "Echo".into(), node: Some("n1".into()), entries: entries.to_vec() }
    }

    /// Entries come back as written, newest first, with ids from their segment's; grouped by
    /// extension; the count and failures of a segment are its entries'.
    #[test]
    fn entries_round_trip_newest_first_by_extension() {
        let calls = vec![entry("Echo", 3, None), entry("Other", 2, None), entry("ECHO", 1, Some("invalid_input"))];
        let segments = segments(&calls).expect("encoded");
        assert_eq!(segments.len(), 2, "a segment per extension, whatever the case of its name");
        let echo = &segments[0];
        assert_eq!((echo.extension, echo.count, echo.failed), ("Echo", 2, 1));
        assert!(echo.first_at < echo.last_at);
        let mut found = Vec::new();
        let row = row(5, &echo.entries);
        select(&row, &every(), 10, &mut found).expect("read");
        assert_eq!(found.iter().map(|call| call.id).collect::<Vec<_>>(), [(5 << 16) + 1, 5 << 16]);
        let newest = &found[0];
        assert_eq!(
            (newest.kind.as_str(), newest.operation.as_str(), newest.error.as_deref(), newest.duration_us),
            ("record", "Customer.read", Some("invalid_input"), 42)
        );
        assert_eq!(
            (newest.module.as_deref(), newest.user.as_str(), newest.node.as_deref()),
            (Some("Shop"), "ada", Some("n1"))
        );
        let mut one = Vec::new();
        select(&row, &every(), 1, &mut one).expect("read");
        assert_eq!(one.len(), 1, "no more than the limit");
    }

    /// Pruning removes the old entries only, and the kept ones keep their ids.
    #[test]
    fn pruning_keeps_the_ids_of_what_it_keeps() {
        let calls = vec![entry("Echo", 100, None), entry("Echo", 1, None), entry("Echo", 200, Some("x"))];
        let segment = &segments(&calls).expect("encoded")[0];
        let before = crate::store::micros(SystemTime::now() - Duration::from_secs(50));
        let pruned = prune(1, &segment.entries, before).expect("pruned");
        assert_eq!((pruned.count, pruned.failed, pruned.removed), (1, 0, 2));
        let mut found = Vec::new();
        select(&row(1, &pruned.entries), &every(), 10, &mut found).expect("read");
        assert_eq!(found.iter().map(|call| call.id).collect::<Vec<_>>(), [(1 << 16) + 1]);
    }

    /// A blob that is not a segment is an error, not a panic nor an empty page.
    #[test]
    fn a_damaged_segment_is_an_error() {
        let mut found = Vec::new();
        for blob in [&b""[..], b"\x09", b"\x01\x00\xff\xff\xff"] {
            assert!(select(&row(1, blob), &every(), 10, &mut found).is_err(), "{blob:?}");
            let pruned = prune(1, blob, i64::MAX).expect("pruned");
            assert_eq!((pruned.count, pruned.removed), (0, 0), "swept away whole: {blob:?}");
        }
    }
}
