// What Service Center's browser scenarios share: Debian's Chromium driven by Playwright
// (installed by scripts/install-test-tools into $XIF_TEST_TOOLS/node; no browser is downloaded),
// signing in, screenshots saved as test artefacts, and axe-core's accessibility check.
//
// A scenario is a script run by a Rust test (tests/console_*.rs) against a real `xif server`
// it started: XIF_URL is the server, XIF_ADMIN_PASSWORD the administrator's password,
// XIF_SCREENSHOTS where screenshots go; other XIF_* variables are the scenario's own.
import { createRequire } from "node:module";
import { readFileSync, mkdirSync } from "node:fs";
import assert from "node:assert/strict";

const tools = process.env.XIF_TEST_TOOLS || "/opt/xif-test-tools";
const require = createRequire(`${tools}/node/package.json`);
const { chromium } = require("playwright-core");
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

export { assert };
/** The server, such as http://127.0.0.1:40123. */
export const url = process.env.XIF_URL;
export const adminPassword = process.env.XIF_ADMIN_PASSWORD;
const shots = process.env.XIF_SCREENSHOTS;
assert.ok(url && adminPassword && shots, "XIF_URL, XIF_ADMIN_PASSWORD and XIF_SCREENSHOTS are set by the Rust test");
mkdirSync(shots, { recursive: true });

/** Debian's Chromium, headless (as root it must run without its sandbox). */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.XIF_CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

/** A new page in a context of its own (its own cookies), at `width` pixels (a phone: 390). */
export async function newPage(browser, width = 1280) {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  // Anything the page logs as an error (a script failing, a refused resource) fails the test.
  page.on("pageerror", (error) => {
    throw new Error(`the page threw: ${error}`);
  });
  page.on("console", (message) => {
    if (message.type() === "error") console.error(`browser console error on ${page.url()}: ${message.text()}`);
  });
  return page;
}

/** Signs in as `user` with `password` from the sign-in page, and waits for the extensions page. */
export async function signIn(page, user, password) {
  await page.goto(`${url}/console/sign-in`);
  await page.getByLabel("User name").fill(user);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { level: 1, name: "Extensions" }).waitFor();
}

/** Saves a full-page screenshot as `NAME.png` among the test's artefacts. */
export async function screenshot(page, name) {
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

/**
 * Runs axe-core on the page as it is and fails on any serious or critical violation, listing
 * each with the elements concerned. Injected through the DevTools protocol, which the page's
 * Content-Security-Policy (scripts from the server only) does not apply to.
 */
export async function checkAccessibility(page, name) {
  await page.evaluate(axeSource);
  const results = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ["violations"] }),
  );
  const bad = results.violations.filter((violation) => ["serious", "critical"].includes(violation.impact));
  const described = bad
    .map((v) => `${v.impact} ${v.id}: ${v.help}\n${v.nodes.map((node) => `    ${node.target.join(" ")}: ${node.failureSummary}`).join("\n")}`)
    .join("\n");
  assert.equal(bad.length, 0, `accessibility of ${name} (${page.url()}):\n${described}`);
}

/** A screenshot and an accessibility check, at desktop width then at a phone's. */
export async function capture(page, name) {
  await screenshot(page, name);
  await checkAccessibility(page, name);
  const width = page.viewportSize().width;
  await page.setViewportSize({ width: 390, height: 844 });
  await screenshot(page, `${name}-phone`);
  await checkAccessibility(page, `${name} at a phone's width`);
  await page.setViewportSize({ width, height: 900 });
}

/** An API token of `user`, by the API's login. */
export async function apiToken(user, password) {
  const answer = await fetch(`${url}/api/v1/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user, password }),
  });
  assert.equal(answer.status, 200, `the API login of ${user}`);
  return (await answer.json()).token;
}

/** Calls the API with `token`: the answer's status and JSON body (null when none). */
export async function api(token, method, path, body) {
  const answer = await fetch(`${url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await answer.text();
  return { status: answer.status, body: text ? JSON.parse(text) : null };
}

/** Runs `scenario(browser)` and closes the browser whatever happens; a failure exits 1. */
export async function run(scenario) {
  const browser = await launch();
  try {
    await scenario(browser);
  } finally {
    await browser.close();
  }
}
