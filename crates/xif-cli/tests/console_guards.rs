//! Service Center's guards, over raw HTTP against a real `xif server` (no browser needed): a
//! sign-in body that trickles is cut off as the API's are, every console answer (errors,
//! redirects, refusals) carries the security headers, the address the server prints for the
//! console works, the session cookie is `Secure` where the browser speaks HTTPS, notices never
//! repeat a sentence from a link, and looking at a publication
//! (validate-only) does not erase what the farm knows of a failed deploy.

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

const PASSWORD: &str = "guards-admin-password";

fn start(extra: &[&str]) -> (xif_testkit::Server, tempfile::TempDir) {
    let directory = tempfile::tempdir().expect("temporary directory");
    let server = xif_testkit::Server::start(
        env!("CARGO_BIN_EXE_xif"),
        &directory.path().join("data"),
        PASSWORD,
        "warn",
        extra,
        drop,
    );
    (server, directory)
}

/// `curl -sS -i ARGUMENTS`: the status and the whole answer (headers and body).
fn curl(arguments: &[&str]) -> (u16, String) {
    let output = Command::new("curl").args(["-sS", "-i"]).args(arguments).output().expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    (status, text)
}

/// Signs in through the console's form as a browser does: the cookie jar holds the session.
fn sign_in(url: &str, jar: &std::path::Path) {
    let answer = sign_in_with(url, jar, &[]);
    assert!(answer.contains("xif_session="), "signed in:\n{answer}");
}

/// Signs in with `extra` curl arguments on both requests; the sign-in's answer (303), headers
/// included.
fn sign_in_with(url: &str, jar: &std::path::Path, extra: &[&str]) -> String {
    let jar = jar.to_str().expect("UTF-8");
    let mut first = vec!["-c", jar, "-b", jar];
    first.extend_from_slice(extra);
    let page_url = format!("{url}/console/sign-in");
    first.push(&page_url);
    let (_, page) = curl(&first);
    let csrf =
        page.split("name=\"_csrf\" value=\"").nth(1).and_then(|rest| rest.split('"').next()).expect("a _csrf field");
    let (csrf_field, password_field) = (format!("_csrf={csrf}"), format!("password={PASSWORD}"));
    let mut second = vec!["-c", jar, "-b", jar, "--data-urlencode", &csrf_field, "--data-urlencode", "user=admin"];
    second.extend_from_slice(&["--data-urlencode", &password_field]);
    second.extend_from_slice(extra);
    second.push(&page_url);
    let (status, answer) = curl(&second);
    assert_eq!(status, 303, "signed in:\n{answer}");
    answer
}

/// The `Set-Cookie` line of the session in `answer`.
fn session_cookie(answer: &str) -> String {
    answer
        .lines()
        .find(|line| line.to_ascii_lowercase().starts_with("set-cookie: xif_session="))
        .unwrap_or_else(|| panic!("no session cookie in:\n{answer}"))
        .to_owned()
}

#[test]
fn the_session_cookie_is_secure_under_tls_and_behind_a_trusted_proxy_that_says_https() {
    // Over TLS.
    let directory = tempfile::tempdir().expect("temporary directory");
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).expect("certificate");
    let (certificate, key) = (directory.path().join("server.pem"), directory.path().join("server.key"));
    std::fs::write(&certificate, certified.cert.pem()).expect("written");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("written");
    let (certificate, key) = (certificate.to_str().expect("UTF-8"), key.to_str().expect("UTF-8"));
    let (server, scratch) = start(&["--tls-cert", certificate, "--tls-key", key]);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let cookie = session_cookie(&sign_in_with(&server.url, &scratch.path().join("tls-jar"), &["-k"]));
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    drop(server);

    // Over plain HTTP: not Secure (the browser would drop it), unless a trusted proxy says its
    // client spoke HTTPS; the same header from anyone else is not believed.
    let (server, scratch) = start(&["--trusted-proxy", "127.0.0.1/32"]);
    let jar = scratch.path().join("jar");
    let plain = session_cookie(&sign_in_with(&server.url, &jar, &[]));
    assert!(!plain.contains("Secure"), "{plain}");
    let proxied = session_cookie(&sign_in_with(
        &server.url,
        &scratch.path().join("jar-proxied"),
        &["-H", "X-Forwarded-Proto: https"],
    ));
    assert!(proxied.contains("; Secure"), "{proxied}");
    let (untrusted, scratch) = start(&[]);
    let claimed =
        session_cookie(&sign_in_with(&untrusted.url, &scratch.path().join("jar"), &["-H", "X-Forwarded-Proto: https"]));
    assert!(!claimed.contains("Secure"), "{claimed}");
}

#[test]
fn a_sign_in_body_that_trickles_is_cut_off_like_the_apis() {
    let (server, _directory) = start(&["--body-timeout", "2"]);
    let address = server.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connects");
    stream
        .write_all(
            b"POST /console/sign-in HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 100000\r\n\r\nuser=a",
        )
        .expect("sends the start");
    // The server answers (and closes) on its own; waiting for that answer is the event.
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let started = Instant::now();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "a trickling sign-in is answered 408, got:\n{answer}");
    assert!(started.elapsed() < Duration::from_secs(15), "cut off after the body timeout, not {:?}", started.elapsed());
    assert!(answer.contains("content-security-policy"), "the 408 page carries the console's headers:\n{answer}");
}

#[test]
fn every_console_answer_carries_the_security_headers_and_notices_repeat_no_sentence() {
    let (server, directory) = start(&[]);
    let url = &server.url;
    // The address `xif server` prints for the console leads to it.
    let (status, answer) = curl(&[&format!("{url}/console/")]);
    assert_eq!(status, 303, "{answer}");
    assert!(answer.to_ascii_lowercase().contains("location: /console/extensions"), "{answer}");

    let jar = directory.path().join("cookies");
    sign_in(url, &jar);
    let jar = jar.to_str().expect("UTF-8");
    let cases: [(&[&str], u16); 6] = [
        (&[&format!("{url}/console/extensions")], 200),
        (&[&format!("{url}/console/nothing-here")], 404),
        (&["-X", "PUT", &format!("{url}/console/extensions")], 405),
        (&[&format!("{url}/console/extensions/Demo/publish")], 400),
        (&[&format!("{url}/console/extensions?q=a")], 200),
        (&["-X", "POST", "-H", "content-type: application/json", "-d", "{}", &format!("{url}/console/sign-out")], 415),
    ];
    for (arguments, expected) in cases {
        let mut all = vec!["-c", jar, "-b", jar];
        all.extend_from_slice(arguments);
        let (status, answer) = curl(&all);
        assert_eq!(status, expected, "{arguments:?}:\n{answer}");
        let lower = answer.to_ascii_lowercase();
        for header in
            ["content-security-policy: default-src 'self'", "x-frame-options: deny", "x-content-type-options: nosniff"]
        {
            assert!(lower.contains(header), "{arguments:?} answers with `{header}`:\n{answer}");
        }
        if expected != 200 {
            assert!(lower.contains("content-type: text/html"), "{arguments:?} is a console page:\n{answer}");
        }
    }
    // A notice says what this session did, never a sentence a link brought.
    let forged = "User%20admin%20was%20removed.%20Sign%20in%20again%20at%20evil.example";
    for path in [
        format!("/console/users?notice={forged}"),
        format!("/console/users?notice={forged}&proof=00000000000000000000000000000000"),
        format!("/console/connections?notice={forged}"),
        format!("/console/locks?notice={forged}"),
    ] {
        let (status, answer) = curl(&["-b", jar, &format!("{url}{path}")]);
        assert_eq!(status, 200, "{path}");
        assert!(!answer.contains("evil.example"), "{path} repeats the link's sentence:\n{answer}");
    }
}

#[test]
fn looking_at_a_publication_keeps_what_the_farm_knows_of_a_failed_deploy() {
    let (server, directory) = start(&[]);
    let token = server.token("admin", PASSWORD);
    // A binary that cannot start: its publication fails to deploy.
    let script = directory.path().join("broken");
    std::fs::write(&script, "#!/nonexistent/interpreter\n").expect("written");
    let definition = "[extension]\nname = \"Broken\"\nversion = \"1.0.0\"\ndescription = \"Does not start.\"\n\n[[actions]]\nname = \"Say\"\ndescription = \"Says.\"\ninputs = []\noutputs = []\n";
    let archive = directory.path().join("Broken.xif");
    std::fs::write(&archive, xif_testkit::pack("Broken", "1.0.0", definition, &script)).expect("written");
    let digest = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(std::fs::read(&archive).expect("read")))
    };
    let authorization = format!("Authorization: Bearer {token}");
    let at = |path: &str| format!("{}/api/v1/extensions/Broken/{path}", server.url);
    let (status, answer) = curl(&[
        "-H",
        &authorization,
        "-H",
        &format!("x-xif-sha256: {digest}"),
        "--data-binary",
        &format!("@{}", archive.display()),
        &at("versions"),
    ]);
    assert_eq!(status, 201, "{answer}");
    let publish = |body: &str| {
        curl(&["-H", &authorization, "-H", "content-type: application/json", "-d", body, &at("publications")])
    };
    let (status, answer) = publish(r#"{"version": 1, "expected": null}"#);
    assert_eq!(status, 422, "{answer}");
    let failure = || {
        let (status, nodes) = curl(&["-H", &authorization, &format!("{}/api/v1/nodes", server.url)]);
        assert_eq!(status, 200, "{nodes}");
        let body = nodes.split("\r\n\r\n").nth(1).expect("a body");
        let nodes: serde_json::Value = serde_json::from_str(body).expect("JSON");
        nodes[0]["extensions"]
            .as_array()
            .and_then(|extensions| extensions.iter().find(|extension| extension["name"] == "Broken"))
            .map(|extension| extension["failure"].clone())
    };
    let before = failure();
    assert!(before.as_ref().is_some_and(|failed| !failed.is_null()), "the node reports the failed deploy: {before:?}");
    let (status, answer) = publish(r#"{"version": 1, "expected": null, "validate_only": true}"#);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(failure(), before, "a validate-only run leaves the failed deploy reported");
}
