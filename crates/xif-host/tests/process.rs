//! The host against real extension processes: calls, concurrency, and every way an extension
//! can misbehave.

#[path = "support/fixtures.rs"]
mod fixtures;

use std::time::Duration;

use serde_json::json;
use xif_host::{CallError, ExtensionProcess, StartError, StartOptions, Values};

fn options(binary: &str) -> StartOptions {
    let project = fixtures::workspace().join("fixtures/behaviours");
    let text = std::fs::read_to_string(project.join("extension.toml")).expect("definition");
    let definition = xif_definition::parse(&text).expect("the fixture's definition parses");
    let mut options = StartOptions::new(fixtures::binary(binary), project, "Behaviours".into(), "1.0.0".into());
    options.signatures = xif_host::signatures(&definition);
    options.handshake_timeout = Duration::from_secs(10);
    options
}

fn values(value: serde_json::Value) -> Values {
    value.as_object().expect("an object").clone()
}

async fn start(binary: &str) -> ExtensionProcess {
    ExtensionProcess::start(options(binary)).await.expect("the extension starts")
}

#[tokio::test]
async fn calls_return_outputs_and_run_concurrently() {
    let extension = start("behaviours").await;
    assert_eq!(extension.hello().extension, "Behaviours");
    let outputs = extension.call("Echo", values(json!({ "Message": "héllo" }))).await.expect("echo");
    assert_eq!(outputs, values(json!({ "Echoed": "héllo" })));

    // A slow call does not hold up others: the echo returns while the sleep is in flight.
    let slow = extension.call("Sleep", values(json!({ "Milliseconds": 3000 })));
    let quick = async {
        let mut echoes = Vec::new();
        for index in 0..20 {
            echoes.push(extension.call("Echo", values(json!({ "Message": format!("{index}") }))));
        }
        futures_join(echoes).await
    };
    tokio::select! {
        _ = slow => panic!("the slow call finished first"),
        replies = quick => {
            for (index, reply) in replies.into_iter().enumerate() {
                assert_eq!(reply.expect("echo")["Echoed"], json!(format!("{index}")));
            }
        }
    }
    let status = extension.stop(Duration::from_secs(5)).await.expect("stopped");
    assert!(status.success(), "a clean shutdown exits with success: {status}");
}

/// The worker that reads a call keeps the lead while it runs it (so that short calls cost no
/// thread switch); a standby takes the lead after a moment. Slow calls sent together therefore
/// still run side by side: six sleeps of a second end long before the six seconds they would
/// take one after the other.
#[tokio::test]
async fn slow_calls_sent_together_run_side_by_side() {
    let extension = start("behaviours").await;
    let started = std::time::Instant::now();
    let sleep = || extension.call("Sleep", values(json!({ "Milliseconds": 1000 })));
    // Polled together, so that all six are sent before any returns.
    let replies = tokio::join!(sleep(), sleep(), sleep(), sleep(), sleep(), sleep());
    for reply in [replies.0, replies.1, replies.2, replies.3, replies.4, replies.5] {
        reply.expect("slept");
    }
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(4), "six one-second calls took {elapsed:?}: they ran one after the other");
    extension.stop(Duration::from_secs(5)).await.expect("stopped");
}

/// Calls that wait behind a parked lead go to idle workers as soon as the park's deadline
/// passes, not one park after the other: four hundred calls of a millisecond, sent together,
/// end in about thirty milliseconds on sixteen workers (four hundred, one after the other).
#[tokio::test]
async fn many_short_calls_sent_together_spread_over_the_workers() {
    let extension = std::sync::Arc::new(start("behaviours").await);
    let started = std::time::Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..400 {
        let extension = std::sync::Arc::clone(&extension);
        calls.spawn(async move { extension.call("Sleep", values(json!({ "Milliseconds": 1 }))).await });
    }
    while let Some(reply) = calls.join_next().await {
        reply.expect("the task ran").expect("slept");
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(200),
        "four hundred one-millisecond calls took {elapsed:?}: they did not spread over the workers"
    );
    extension.stop(Duration::from_secs(5)).await.expect("stopped");
}

/// Replies to calls sent together go out together: a worker that runs calls from the buffer one
/// after the other holds their replies back until the last. Not behind a slow one, though: a
/// quick call sent together with a slow call is answered long before the slow one ends.
#[tokio::test]
async fn a_quick_reply_is_not_held_behind_a_slow_call_sent_with_it() {
    let extension = start("behaviours").await;
    extension.call("Echo", values(json!({ "Message": "warm" }))).await.expect("echo");
    let started = std::time::Instant::now();
    let quick = extension.call("Echo", values(json!({ "Message": "first" })));
    let slow = extension.call("Sleep", values(json!({ "Milliseconds": 3000 })));
    tokio::pin!(slow);
    // Polled in this order in the same turn: both frames go out in one write, the quick first.
    tokio::select! {
        biased;
        reply = quick => assert_eq!(reply.expect("echo")["Echoed"], json!("first")),
        _ = &mut slow => panic!("the slow call ended before the quick one was answered"),
    }
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(1), "the quick call's reply waited {elapsed:?} behind the slow call");
    slow.await.expect("slept");
    extension.stop(Duration::from_secs(5)).await.expect("stopped");
}

/// Awaits every future, in order (a tiny `join_all`, to keep `futures` out of the dependencies).
async fn futures_join<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut handles = Vec::new();
    for future in futures {
        handles.push(Box::pin(future));
    }
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await);
    }
    outputs
}

#[tokio::test]
async fn an_action_error_and_a_panic_are_errors_of_that_call_only() {
    let extension = start("behaviours").await;
    match extension.call("Fail", Values::new()).await {
        Err(CallError::Action { action, failure }) => {
            assert_eq!(action, "Fail");
            assert_eq!(failure.code, "card_declined");
            assert_eq!(failure.message, "the card was declined");
        }
        other => panic!("expected the action's error, got {other:?}"),
    }
    match extension.call("Panic", Values::new()).await {
        Err(CallError::Action { failure, .. }) => {
            assert_eq!(failure.code, "panic");
            assert!(failure.message.contains("the fixture panics on purpose"), "{}", failure.message);
        }
        other => panic!("expected a panic error, got {other:?}"),
    }
    assert!(extension.call("Echo", values(json!({ "Message": "still here" }))).await.is_ok());
}

#[tokio::test]
async fn a_crash_fails_the_call_with_the_exit_status_and_log() {
    let extension = start("behaviours").await;
    let error = extension.call("Crash", Values::new()).await.expect_err("the process ends");
    let CallError::Crashed { status, log } = &error else { panic!("expected a crash, got {error:?}") };
    assert!(status.contains("exit status: 3"), "{status}");
    assert!(log.contains("about to crash on purpose"), "{log}");
    assert!(error.to_string().starts_with("the extension process ended (exit status: 3)"), "{error}");
    // Later calls fail at once with the same reason rather than hanging.
    let later = extension.call("Echo", values(json!({ "Message": "x" }))).await;
    assert!(matches!(later, Err(CallError::Crashed { .. })), "{later:?}");
}

#[tokio::test]
async fn a_hanging_call_times_out_and_the_extension_keeps_serving() {
    let mut options = options("behaviours");
    options.call_timeout = Duration::from_millis(300);
    let extension = ExtensionProcess::start(options).await.expect("starts");
    let error = extension.call("Sleep", values(json!({ "Milliseconds": 60_000 }))).await.expect_err("times out");
    assert_eq!(error.to_string(), "action `Sleep` did not finish within 300ms");
    assert!(extension.call("Echo", values(json!({ "Message": "x" }))).await.is_ok());
    // Stopping does not wait for the hung call beyond the grace period.
    extension.stop(Duration::from_millis(200)).await.expect("stopped");
}

#[tokio::test]
async fn a_flood_on_stdout_is_kept_bounded_and_never_blocks() {
    let mut options = options("behaviours");
    options.log_capacity = 64 * 1024;
    let extension = ExtensionProcess::start(options).await.expect("starts");
    extension.call("Flood", values(json!({ "Megabytes": 16 }))).await.expect("the flood finishes");
    assert!(extension.call("Echo", values(json!({ "Message": "x" }))).await.is_ok());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let log = extension.log().text();
    assert!(log.starts_with('['), "the log says how much it dropped: {}", &log[..80.min(log.len())]);
    assert!(log.len() < 64 * 1024 + 100, "the log is bounded: {} bytes", log.len());
}

#[tokio::test]
async fn broken_handshakes_are_reported_clearly() {
    let error = ExtensionProcess::start(options("wrong-protocol")).await.err().expect("refused");
    assert!(matches!(error, StartError::ProtocolMismatch { extension: 99, host: 1 }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "the extension speaks protocol version 99, this host speaks version 1; rebuild it against this version of xif-sdk"
    );

    let error = ExtensionProcess::start(options("garbage")).await.err().expect("refused");
    assert!(matches!(error, StartError::Protocol(_)), "{error:?}");
    assert!(error.to_string().starts_with("the extension broke the protocol during its handshake"), "{error}");

    let error = ExtensionProcess::start(options("exits-early")).await.err().expect("refused");
    let StartError::ExitedBeforeHandshake { status, log } = &error else { panic!("{error:?}") };
    assert_eq!(status.code(), Some(2));
    assert!(log.contains("the configuration file `payments.conf` is missing"), "{log}");

    let mut silent = options("silent");
    silent.handshake_timeout = Duration::from_millis(500);
    let error = ExtensionProcess::start(silent).await.err().expect("refused");
    assert_eq!(error.to_string(), "the extension did not complete its handshake within 500ms; it was stopped");

    let mut missing = options("behaviours");
    missing.binary = missing.binary.with_file_name("no-such-binary");
    let error = ExtensionProcess::start(missing).await.err().expect("refused");
    assert!(error.to_string().starts_with("cannot run extension binary `"), "{error}");
    assert!(error.to_string().contains("no-such-binary"), "{error}");
}

#[tokio::test]
async fn garbage_after_the_handshake_fails_the_call_and_stops_the_process() {
    // This fixture announces no actions, and is expected to announce none.
    let mut options = options("garbage-reply");
    options.signatures.clear();
    let extension = ExtensionProcess::start(options).await.expect("starts");
    let error = extension.call("Echo", values(json!({ "Message": "x" }))).await.expect_err("garbage");
    assert!(matches!(error, CallError::Protocol(_)), "{error:?}");
    assert!(
        error.to_string().starts_with("the extension broke the protocol: a frame is not a protocol message"),
        "{error}"
    );
}

#[tokio::test]
async fn a_binary_that_does_not_match_its_definition_is_refused() {
    let mut options = options("behaviours");
    let text = std::fs::read_to_string(fixtures::workspace().join("fixtures/behaviours/extension.toml"))
        .expect("definition")
        .replace("name = \"Fail\"", "name = \"Refund\"")
        .replace(
            "inputs = [ { name = \"Message\", type = \"Text\" } ]",
            "inputs = [ { name = \"Message\", type = \"Integer\" } ]",
        );
    options.signatures = xif_host::signatures(&xif_definition::parse(&text).expect("parses"));
    let error = ExtensionProcess::start(options).await.err().expect("refused");
    assert_eq!(
        error.to_string(),
        "the extension binary does not match its definition: action `Echo` has other parameters in the binary; \
         action `Refund` is in the definition but not in the binary; \
         action `Fail` is in the binary but not in the definition; rebuild it"
    );
}
