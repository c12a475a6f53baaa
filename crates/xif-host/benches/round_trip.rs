//! The bar of DESIGN.md: a call from the host to an extension process and back takes, at the
//! median, at most 1.5 times a bare socket ping-pong between two processes with the same
//! payload, measured in the same run. Samples of the two alternate in batches so that the
//! machine's drift affects both alike; the medians, p99s and their ratio are printed.

#![expect(clippy::print_stdout, reason = "a benchmark reports its figures on stdout")]

#[path = "../tests/support/fixtures.rs"]
mod fixtures;

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use xif_host::{ExtensionProcess, StartOptions, Values};
use xif_protocol::{CHANNEL_ENV, HostMessage, TOKEN_ENV, encode};

const BATCHES: usize = 20;
const PER_BATCH: usize = 1_000;
const WARM_UP: usize = 2_000;

fn inputs() -> Values {
    serde_json::json!({ "Message": "hello" }).as_object().cloned().unwrap_or_default()
}

/// The bare baseline: a blocking socket to a peer process that sends each frame straight back.
struct PingPong {
    stream: std::os::unix::net::UnixStream,
    frame: Vec<u8>,
    reply: Vec<u8>,
    _child: std::process::Child,
    _directory: tempfile::TempDir,
}

impl PingPong {
    fn start() -> Self {
        let directory = tempfile::tempdir().expect("temporary directory");
        let socket = directory.path().join("channel");
        let listener = UnixListener::bind(&socket).expect("listening");
        let child = std::process::Command::new(fixtures::binary("ping-pong"))
            .env(CHANNEL_ENV, &socket)
            .env(TOKEN_ENV, "unused")
            .spawn()
            .expect("the peer starts");
        let (stream, _) = listener.accept().expect("the peer connects");
        // The same bytes as the host sends for a call of `Echo`.
        let frame = encode(&HostMessage::Call { id: 1, action: "Echo".into(), inputs: inputs() });
        let reply = vec![0; frame.len()];
        Self { stream, frame, reply, _child: child, _directory: directory }
    }

    fn round_trip(&mut self) {
        self.stream.write_all(&self.frame).expect("written");
        self.stream.read_exact(&mut self.reply).expect("echoed");
    }
}

fn percentile(samples: &mut [Duration], fraction: f64) -> Duration {
    samples.sort_unstable();
    samples[((samples.len() - 1) as f64 * fraction).round() as usize]
}

fn main() {
    if std::env::args().any(|argument| argument == "--list") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let project = fixtures::workspace().join("fixtures/behaviours");
    let definition = xif_definition::parse(&std::fs::read_to_string(project.join("extension.toml")).expect("read"))
        .expect("the fixture's definition parses");
    let mut options = StartOptions::new(fixtures::binary("behaviours"), project, "Behaviours".into(), "1.0.0".into());
    options.signatures = xif_host::signatures(&definition);
    let extension = runtime.block_on(ExtensionProcess::start(options)).expect("the extension starts");
    let mut ping_pong = PingPong::start();

    let call = |extension: &ExtensionProcess| {
        runtime.block_on(extension.call("Echo", inputs())).expect("echo");
    };
    for _ in 0..WARM_UP {
        call(&extension);
        ping_pong.round_trip();
    }
    let mut bare = Vec::with_capacity(BATCHES * PER_BATCH);
    let mut host = Vec::with_capacity(BATCHES * PER_BATCH);
    for _ in 0..BATCHES {
        for _ in 0..PER_BATCH {
            let started = Instant::now();
            ping_pong.round_trip();
            bare.push(started.elapsed());
        }
        for _ in 0..PER_BATCH {
            let started = Instant::now();
            call(&extension);
            host.push(started.elapsed());
        }
    }
    // The runner's figures: each batch's median and p99 is one run.
    let batch_figures = |samples: &[Duration], quantile: f64| -> Vec<f64> {
        samples.chunks(PER_BATCH).map(|batch| percentile(&mut batch.to_vec(), quantile).as_secs_f64() * 1e6).collect()
    };
    let (bare_medians, host_medians) = (batch_figures(&bare, 0.5), batch_figures(&host, 0.5));
    let (baseline, _, _) = xif_testkit::spread(&bare_medians);
    xif_testkit::Figure::new(
        "host → extension → host round trip, median (baseline: bare socket ping-pong)",
        "µs",
        &host_medians,
        "at most 1.5× the baseline",
        |median| median <= baseline * 1.5,
    )
    .against(baseline)
    .report();
    let (bare_p99s, host_p99s) = (batch_figures(&bare, 0.99), batch_figures(&host, 0.99));
    let (baseline, _, _) = xif_testkit::spread(&bare_p99s);
    xif_testkit::Figure::new(
        "host → extension → host round trip, p99 (baseline: bare socket ping-pong)",
        "µs",
        &host_p99s,
        "reported",
        |_| true,
    )
    .against(baseline)
    .report();
    let (bare_median, host_median) = (percentile(&mut bare, 0.5), percentile(&mut host, 0.5));
    let (bare_p99, host_p99) = (percentile(&mut bare, 0.99), percentile(&mut host, 0.99));
    let ratio = host_median.as_secs_f64() / bare_median.as_secs_f64();
    println!("round trip, {} samples each, {} byte call frame", BATCHES * PER_BATCH, ping_pong.frame.len());
    println!("{:<44} {:>10} {:>10}", "", "median", "p99");
    println!("{:<44} {:>10.1?} {:>10.1?}", "bare socket ping-pong (baseline)", bare_median, bare_p99);
    println!("{:<44} {:>10.1?} {:>10.1?}", "host -> extension -> host (xif-host, xif-sdk)", host_median, host_p99);
    println!("ratio of medians: {ratio:.2} (bar: at most 1.50) -> {}", if ratio <= 1.5 { "met" } else { "NOT met" });
    runtime.block_on(extension.stop(Duration::from_secs(5))).expect("stopped");
}
