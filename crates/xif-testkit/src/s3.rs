//! An S3-compatible object store for tests: `moto_server` (from `scripts/install-test-tools`)
//! on a free loopback port, and the switch (`XIF_TEST_BLOBS=s3`) that runs the server suites
//! with their archives in it.
//!
//! Moto keeps everything in memory and checks no credentials, but the server signs its
//! requests as it would for AWS, with the dummy keys in [`ENV`]. Each moto runs under a small
//! watchdog that kills it when its stdin closes, which happens when the [`Moto`] is dropped or
//! the test process dies however it dies: no moto outlives its tests.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The AWS environment the server is given to sign its requests to moto with.
pub const ENV: [(&str, &str); 3] =
    [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_REGION", "us-east-1")];

/// Runs the command given as arguments, and kills it once stdin ends.
const WATCHDOG: &str = "import subprocess, sys\n\
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n\
sys.stdin.read()\n\
p.kill()\n\
p.wait()\n";

/// Whether the suites run with their archives in S3 (`XIF_TEST_BLOBS=s3`).
pub fn enabled() -> bool {
    std::env::var("XIF_TEST_BLOBS").is_ok_and(|value| value == "s3")
}

/// A running `moto_server`, stopped when dropped.
pub struct Moto {
    watchdog: Option<Child>,
    port: u16,
    buckets: Vec<String>,
}

impl Moto {
    /// Starts moto on a free loopback port and waits until it answers.
    pub fn start() -> Self {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut moto = Self { watchdog: None, port, buckets: Vec::new() };
        moto.resume();
        moto
    }

    /// Its endpoint, such as `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Makes the bucket `name` (if it is not there) and returns the server's `--blobs` URL for
    /// it. Buckets made here are made again by [`Moto::resume`].
    pub fn bucket(&mut self, name: &str) -> String {
        self.create(name);
        if !self.buckets.iter().any(|bucket| bucket == name) {
            self.buckets.push(name.to_owned());
        }
        format!("s3://{name}?endpoint={}&region=us-east-1", self.endpoint())
    }

    /// Stops moto (which forgets every object) and waits until it has.
    pub fn stop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            drop(watchdog.stdin.take());
            watchdog.wait().ok();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.answers() {
            assert!(Instant::now() < deadline, "moto still answers on port {} after being stopped", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts moto again on the same port, empty but for the buckets made through
    /// [`Moto::bucket`], and waits until it answers.
    pub fn resume(&mut self) {
        assert!(self.watchdog.is_none(), "moto is running");
        let python = crate::python_tool("python");
        let moto = crate::python_tool("moto_server");
        let watchdog = Command::new(python)
            .args(["-c", WATCHDOG])
            .arg(moto)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts (run scripts/install-test-tools)");
        self.watchdog = Some(watchdog);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.answers() {
            assert!(Instant::now() < deadline, "moto_server did not answer on port {} within 30 s", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
        for bucket in self.buckets.clone() {
            self.create(&bucket);
        }
    }

    /// How many objects in `bucket` have a key starting with `prefix`.
    pub fn objects(&self, bucket: &str, prefix: &str) -> usize {
        let (status, body) =
            self.request("GET", &format!("/{bucket}?list-type=2&prefix={prefix}")).expect("moto answers");
        assert_eq!(status, 200, "moto did not list `{bucket}`: {body}");
        body.matches("<Key>").count()
    }

    /// How many multipart uploads to `bucket` are in progress (neither completed nor aborted).
    pub fn multipart_uploads(&self, bucket: &str) -> usize {
        let (status, body) = self.request("GET", &format!("/{bucket}?uploads")).expect("moto answers");
        assert_eq!(status, 200, "moto did not list the uploads to `{bucket}`: {body}");
        body.matches("<Upload>").count()
    }

    fn create(&self, bucket: &str) {
        let (status, _) = self.request("PUT", &format!("/{bucket}")).expect("moto answers");
        assert!(status == 200 || status == 409, "moto refused to make bucket `{bucket}`: {status}");
    }

    fn answers(&self) -> bool {
        self.request("GET", "/").is_ok_and(|(status, _)| status == 200)
    }

    /// An unsigned request (moto does not check signatures), answered with its status and body.
    fn request(&self, method: &str, path: &str) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|status| status.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {answer:.80}")))?;
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body).to_owned();
        Ok((status, body))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            drop(watchdog.stdin.take());
            watchdog.wait().ok();
        }
    }
}

/// The moto shared by the tests of this process, started at first use; it ends with the
/// process (see the module's documentation).
pub fn shared() -> &'static Mutex<Moto> {
    static MOTO: OnceLock<Mutex<Moto>> = OnceLock::new();
    MOTO.get_or_init(|| Mutex::new(Moto::start()))
}

/// The `--blobs` URL of the bucket that belongs to the data directory `data` in the shared
/// moto: a server restarted on the same directory finds its archives again.
pub fn blobs_for(data: &Path) -> String {
    let bucket = bucket_of(data);
    shared().lock().unwrap_or_else(std::sync::PoisonError::into_inner).bucket(&bucket)
}

/// How many objects the data directory's bucket in the shared moto holds under `prefix`
/// (`sha256/`: stored archives; `staging/`: uploads being copied), and how many multipart
/// uploads to it are in progress.
pub fn objects_for(data: &Path, prefix: &str) -> (usize, usize) {
    let bucket = bucket_of(data);
    let moto = shared().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    (moto.objects(&bucket, prefix), moto.multipart_uploads(&bucket))
}

fn bucket_of(data: &Path) -> String {
    // FNV-1a of the path: a bucket name of its own for each directory, in the characters S3
    // allows.
    let hash = data
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3));
    format!("xif-{hash:016x}")
}

/// When the suites run on S3 ([`enabled`]): adds `--blobs` with the data directory's bucket
/// and moto's dummy AWS keys to `command`, a `xif server`. Does nothing otherwise, nor when the
/// command names its blob store already.
pub fn configure(command: &mut Command, data: &Path) {
    if enabled() && !command.get_args().any(|argument| argument == "--blobs") {
        command.arg("--blobs").arg(blobs_for(data)).envs(ENV);
    }
}
