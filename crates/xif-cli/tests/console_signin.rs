//! Service Center in a real browser: signing in and out, the session cookie, forms refused
//! without their anti-forgery token, what a user without permissions sees, and the throttling
//! of a flood of wrong passwords (`tests/console/signin.mjs`).

#[path = "support/browser.rs"]
mod browser;

#[test]
fn signing_in_and_out_refusing_forgeries_and_throttling_floods() {
    let console = browser::Console::start(&[]);
    console.run("signin.mjs", &[]);
}
