// An extension's other tabs: consumers, entities and their mapping, the log followed live, the
// integration log with its filters, and the API description. XIF_ARCHIVE_1 and XIF_ARCHIVE_2
// are two versions of the `behaviours` fixture (with an entity `Order` in logical database
// `sales`), packed by the Rust test.
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { assert, url, adminPassword, newPage, signIn, capture, apiToken, api, run } from "./lib.mjs";

const NAME = "Behaviours";
const base = `${url}/console/extensions/${NAME}`;

/** Uploads the archive at `path` as a version of Behaviours: its number. */
async function upload(token, path) {
  const bytes = readFileSync(path);
  const answer = await fetch(`${url}/api/v1/extensions/${NAME}/versions`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "x-xif-sha256": createHash("sha256").update(bytes).digest("hex") },
    body: bytes,
  });
  const body = await answer.json();
  assert.equal(answer.status, 201, `upload of ${path}: ${JSON.stringify(body)}`);
  return body.version.number;
}

/** Waits until `check()` is true, asking again every 100 ms, for at most `seconds`. */
async function until(what, check, seconds = 15) {
  const deadline = Date.now() + seconds * 1000;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `waited ${seconds} s for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

await run(async (browser) => {
  // Two versions uploaded, the first published; a module that declares it uses it.
  const admin = await apiToken("admin", adminPassword);
  assert.equal(await upload(admin, process.env.XIF_ARCHIVE_1), 1);
  assert.equal(await upload(admin, process.env.XIF_ARCHIVE_2), 2);
  let published = await api(admin, "POST", `/extensions/${NAME}/publications`, { version: 1, expected: null });
  assert.equal(published.status, 200, JSON.stringify(published.body));
  const made = await api(admin, "POST", "/tokens", { module: "Shop", extensions: [NAME] });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const shop = made.body.token;
  const declared = await api(shop, "PUT", "/modules/Shop/dependencies", {
    dependencies: [{ extension: NAME, version: 1, actions: ["Echo", "Fail"] }],
  });
  assert.equal(declared.status, 200, JSON.stringify(declared.body));

  // Calls: one that succeeds (as the module), one that fails (as the administrator).
  assert.equal((await api(shop, "POST", `/extensions/${NAME}/actions/Echo`, { Message: "hello" })).status, 200);
  const failed = await api(admin, "POST", `/extensions/${NAME}/actions/Fail`, {});
  assert.equal(failed.status, 422, JSON.stringify(failed.body));
  await until("both calls in the integration log", async () => (await api(admin, "GET", `/extensions/${NAME}/calls`)).body.length === 2);

  const page = await newPage(browser);
  await signIn(page, "admin", adminPassword);

  // Consumers: the module, its state, the version it was checked against, what changed.
  await page.goto(`${base}/consumers`);
  await page.getByRole("heading", { level: 2, name: "Consumers" }).waitFor();
  assert.equal(await page.getByRole("navigation", { name: "Extension" }).getByRole("link", { name: "Consumers" }).getAttribute("aria-current"), "page");
  const consumer = page.getByRole("row", { name: /Shop/ });
  assert.match(await consumer.textContent(), /Up to date.*version 1.*nothing it uses/);
  await capture(page, "extension-consumers");

  // Entities: the logical database without a connection, its entity, table and attributes.
  await page.getByRole("navigation", { name: "Extension" }).getByRole("link", { name: "Entities" }).click();
  await page.getByRole("heading", { level: 3, name: "Logical database sales" }).waitFor();
  assert.match(await page.locator(".warning.mapping").textContent(), /Missing configuration/);
  assert.equal(await page.getByRole("link", { name: "Map it in Database connections" }).getAttribute("href"), "/console/connections");
  await page.getByRole("heading", { level: 4, name: "Order" }).waitFor();
  assert.equal(await page.locator("dl.facts dd").first().textContent(), "orders");
  const customer = page.getByRole("row", { name: /Customer/ });
  assert.match(await customer.textContent(), /customer.*Text \(80\).*yes/);
  assert.match(await page.getByRole("row", { name: /^Id/ }).textContent(), /identifier, numbered by the database/);
  await capture(page, "extension-entities");

  // The API description: actions with their inputs and outputs, record operations, the
  // document to download (the API's own).
  await page.getByRole("navigation", { name: "Extension" }).getByRole("link", { name: "API" }).click();
  await page.getByRole("heading", { level: 4, name: "Echo" }).waitFor();
  const echo = page.locator("section", { has: page.getByRole("heading", { level: 4, name: "Echo" }) });
  assert.match(await echo.textContent(), /POST \/api\/v1\/extensions\/Behaviours\/actions\/Echo/);
  assert.match(await echo.getByRole("table", { name: "Inputs of Echo" }).textContent(), /Message.*Text.*JSON string.*yes/);
  assert.match(await echo.getByRole("table", { name: "Outputs of Echo" }).textContent(), /Echoed/);
  for (const action of ["Fail", "Panic", "Crash", "Sleep", "Flood", "Allocate", "Environment"]) {
    await page.getByRole("heading", { level: 4, name: action, exact: true }).waitFor();
  }
  const fail = page.locator("section", { has: page.getByRole("heading", { level: 4, name: "Fail" }) });
  assert.match(await fail.textContent(), /No inputs\..*No outputs\./);
  const orders = page.getByRole("table", { name: "Record operations of Order" });
  assert.match(await orders.textContent(), /GET\s*\/api\/v1\/extensions\/Behaviours\/entities\/Order\/records\/\{id\}/);
  assert.match(await page.locator("main .hint").first().textContent(), /published version 1 \(declared 1\.0\.0\)/);
  const link = page.getByRole("link", { name: "Download the OpenAPI document" });
  const download = await page.request.get(`${url}${await link.getAttribute("href")}`);
  assert.equal(download.status(), 200);
  assert.deepEqual(await download.json(), (await api(admin, "GET", `/extensions/${NAME}/openapi.json`)).body);
  await capture(page, "extension-api");

  // The integration log: both calls, then the failed one only, and a wrong filter said next to it.
  await page.getByRole("navigation", { name: "Extension" }).getByRole("link", { name: "Integration log" }).click();
  const calls = page.getByRole("table", { name: `Calls to ${NAME}` });
  await calls.waitFor();
  assert.equal(await calls.locator("tbody tr").count(), 2);
  assert.match(await calls.locator("tbody tr").nth(0).textContent(), /Fail.*admin.*failed.*action_failed/);
  assert.match(await calls.locator("tbody tr").nth(1).textContent(), /Echo.*Shop.*admin.*ok/);
  await capture(page, "extension-calls");
  await page.getByLabel("Failed calls only").check();
  await page.getByRole("button", { name: "Show" }).click();
  await page.waitForURL(/failed=true/);
  await until("the failed calls only", async () => (await calls.locator("tbody tr").count()) === 1);
  assert.match(await calls.locator("tbody tr").textContent(), /Fail.*action_failed/);
  assert.equal(await page.getByLabel("Failed calls only").isChecked(), true);
  await capture(page, "extension-calls-failed");
  await page.getByLabel("Since").fill("yesterday");
  await page.getByRole("button", { name: "Show" }).click();
  await page.locator("#since-error").waitFor();
  assert.match(await page.locator("#since-error").textContent(), /since is an RFC 3339 time.*not yesterday/);
  assert.equal(await page.getByLabel("Since").getAttribute("aria-invalid"), "true");
  await capture(page, "extension-calls-wrong-filter");
  // Paging: one entry a page, the next page by its link.
  await page.goto(`${base}/calls?limit=1`);
  assert.match(await calls.locator("tbody tr").textContent(), /Fail/);
  await page.getByRole("link", { name: "Older calls" }).click();
  await page.waitForURL(/after=/);
  assert.match(await calls.locator("tbody tr").textContent(), /Echo/);

  // The log, followed live: a line the extension writes appears without reloading.
  await page.goto(`${base}/log`);
  const log = page.getByRole("log");
  await until("the start line in the log", async () => (await log.textContent()).includes("behaviours starting"));
  const follow = page.getByRole("button", { name: "Follow live" });
  assert.equal(await follow.getAttribute("aria-pressed"), "true");
  await page.evaluate(() => (window.notReloaded = true));
  assert.equal((await api(admin, "POST", `/extensions/${NAME}/actions/Panic`, {})).status, 422);
  await until("the panic in the followed log", async () => (await log.textContent()).includes("the fixture panics on purpose"));
  assert.equal(await page.evaluate(() => window.notReloaded), true, "the page was not reloaded");
  assert.match(await page.locator("#log-status").textContent(), /Following live/);
  await capture(page, "extension-log");

  // Paused, then followed again; a new version's process replaces what is shown.
  await follow.click();
  assert.equal(await follow.getAttribute("aria-pressed"), "false");
  assert.match(await page.locator("#log-status").textContent(), /Paused/);
  await capture(page, "extension-log-paused");
  published = await api(admin, "POST", `/extensions/${NAME}/publications`, { version: 2, expected: 1 });
  assert.equal(published.status, 200, JSON.stringify(published.body));
  await follow.click();
  assert.equal(await follow.getAttribute("aria-pressed"), "true");
  await until("the new process's log in place of the old", async () => {
    const text = await log.textContent();
    return text.includes("behaviours starting") && !text.includes("panics on purpose");
  });
  assert.equal(await page.evaluate(() => window.notReloaded), true, "the page was not reloaded");

  // Version 2 published: the module, checked against version 1, is now outdated.
  await page.goto(`${base}/consumers`);
  assert.match(await page.getByRole("row", { name: /Shop/ }).textContent(), /Outdated.*version 1/);
  await capture(page, "extension-consumers-outdated");

  // Without scripts, the log is shown as it is, with a Refresh link and no Follow button.
  const plain = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 900 } });
  const still = await plain.newPage();
  await still.goto(`${url}/console/sign-in`);
  await still.getByLabel("User name").fill("admin");
  await still.getByLabel("Password").fill(adminPassword);
  await still.getByRole("button", { name: "Sign in" }).click();
  await still.getByRole("heading", { level: 1, name: "Extensions" }).waitFor();
  await still.goto(`${base}/log`);
  assert.match(await still.getByRole("log").textContent(), /behaviours starting/);
  assert.equal(await still.getByRole("button", { name: "Follow live" }).count(), 0);
  await still.getByRole("link", { name: "Refresh" }).click();
  await still.getByRole("heading", { level: 2, name: "Log" }).waitFor();
  await plain.close();

  // A user without allow-extensions may read the tabs but the integration log, and sees no
  // connections to map.
  assert.equal((await api(admin, "POST", "/users", { name: "reader", password: "reader-password-1" })).status, 201);
  const reader = await newPage(browser);
  await signIn(reader, "reader", "reader-password-1");
  await reader.goto(`${base}/entities`);
  assert.match(await reader.locator(".warning.mapping").textContent(), /Missing configuration/);
  assert.equal(await reader.getByRole("link", { name: "Map it in Database connections" }).count(), 0);
  const refused = await reader.goto(`${base}/calls`);
  assert.equal(refused.status(), 403);
  assert.match(await reader.locator(".error").textContent(), /allow-extensions/);
  await capture(reader, "extension-calls-refused");
  const unknown = await reader.goto(`${url}/console/extensions/Nowhere/log`);
  assert.equal(unknown.status(), 404);
});
