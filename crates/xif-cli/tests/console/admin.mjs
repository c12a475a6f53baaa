// Administration in Service Center: users and permissions, my tokens, database connections and
// mappings, nodes, publication locks, and 403 for everyone but administrators.
import { readFileSync, writeFileSync, unlinkSync } from "node:fs";
import { createHash } from "node:crypto";
import { assert, url, adminPassword, newPage, signIn, capture, apiToken, api, run } from "./lib.mjs";

const env = (name) => {
  assert.ok(process.env[name], `${name} is set by the Rust test`);
  return process.env[name];
};
const shopArchive = env("XIF_SHOP_ARCHIVE");
const slowArchive = env("XIF_SLOW_ARCHIVE");
const goodDb = env("XIF_GOOD_DB");
const wrongDb = env("XIF_WRONG_DB");

/** Uploads the archive at `path` as a new version of `name` through the API. */
async function upload(token, name, path) {
  const bytes = readFileSync(path);
  const answer = await fetch(`${url}/api/v1/extensions/${name}/versions`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "x-xif-sha256": createHash("sha256").update(bytes).digest("hex") },
    body: bytes,
  });
  assert.equal(answer.status, 201, `the upload of ${name}: ${await answer.text()}`);
}

/** `capture()`, and the page must not be wider than a phone's 390 pixels at that width. */
async function shoot(page, name) {
  await capture(page, name);
  const width = page.viewportSize().width;
  await page.setViewportSize({ width: 390, height: 844 });
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  await page.setViewportSize({ width, height: 900 });
  assert.ok(wide <= 390, `${name} is ${wide} pixels wide at a phone's width`);
}

/** The row of a `.list` table whose heading cell is exactly `name`. */
const row = (page, name) => page.locator("table.list tbody tr", { has: page.locator("th", { hasText: new RegExp(`^${name}( \\(you\\))?$`) }) });

await run(async (browser) => {
  const admin = await newPage(browser);
  // Confirmations (remove, revoke, break, map anyway) are accepted.
  admin.on("dialog", (dialog) => dialog.accept());
  await signIn(admin, "admin", adminPassword);
  const adminToken = await apiToken("admin", adminPassword);

  // ── Users ──
  await admin.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Users", exact: true }).click();
  await admin.getByRole("heading", { level: 1, name: "Users" }).waitFor();
  assert.equal(await row(admin, "admin").count(), 1);
  await shoot(admin, "admin-users");

  // A weak password is said next to the password field; the name is kept.
  await admin.getByLabel("User name").fill("dev");
  await admin.getByLabel("Password", { exact: true }).fill("short");
  await admin.getByRole("button", { name: "Add user" }).click();
  const weak = admin.locator("#new-password-error");
  await weak.waitFor();
  assert.match(await weak.textContent(), /at least 12 characters/);
  assert.equal(await admin.getByLabel("User name").inputValue(), "dev");
  assert.match(await admin.getByLabel("Password", { exact: true }).getAttribute("aria-describedby"), /new-password-error/);
  assert.equal(await admin.getByLabel("Password", { exact: true }).inputValue(), "", "a password is never shown back");
  await shoot(admin, "admin-users-weak-password");

  // An invalid name is said next to the name.
  await admin.getByLabel("User name").fill("no spaces allowed");
  await admin.getByLabel("Password", { exact: true }).fill("a-good-long-password");
  await admin.getByRole("button", { name: "Add user" }).click();
  await admin.locator("#new-name-error").waitFor();

  // Added, then granted allow-extensions.
  await admin.getByLabel("User name").fill("dev");
  await admin.getByLabel("Password", { exact: true }).fill("dev-password-123");
  await admin.getByRole("button", { name: "Add user" }).click();
  await admin.getByText("User dev was added.").waitFor();
  const dev = row(admin, "dev");
  assert.equal(await dev.locator("td[data-label=Permissions]").textContent(), "none");
  await admin.getByLabel("Permission to grant to dev").selectOption("allow-extensions");
  await dev.getByRole("button", { name: "Grant" }).click();
  await admin.getByText("The permissions of dev were changed.").waitFor();
  assert.match(await row(admin, "dev").locator("td[data-label=Permissions]").textContent(), /allow-extensions/);
  await shoot(admin, "admin-users-granted");

  // Granted and revoked again: allow-foreign-entities.
  await admin.getByLabel("Permission to grant to dev").selectOption("allow-foreign-entities");
  await row(admin, "dev").getByRole("button", { name: "Grant" }).click();
  await admin.getByText("The permissions of dev were changed.").waitFor();
  await row(admin, "dev").getByRole("button", { name: "Revoke allow-foreign-entities from dev" }).click();
  await admin.getByText("The permissions of dev were changed.").waitFor();
  assert.doesNotMatch(await row(admin, "dev").locator("td[data-label=Permissions]").textContent(), /foreign/);

  // Removing oneself: the API refuses, and the page says so.
  const [refusal] = await Promise.all([
    admin.waitForResponse((r) => r.url().endsWith("/console/users/admin/remove")),
    row(admin, "admin").getByRole("button", { name: "Remove admin" }).click(),
  ]);
  assert.equal(refusal.status(), 400);
  await admin.locator("#users-error").waitFor();
  assert.match(await admin.locator("#users-error").textContent(), /cannot remove your own account/);
  await shoot(admin, "admin-users-remove-self");

  // A user removed is gone.
  assert.equal((await api(adminToken, "POST", "/users", { name: "temp", password: "temp-password-1" })).status, 201);
  await admin.goto(`${url}/console/users`);
  await row(admin, "temp").getByRole("button", { name: "Remove temp" }).click();
  await admin.getByText("User temp was removed.").waitFor();
  assert.equal(await row(admin, "temp").count(), 0);

  // The user granted allow-extensions signs in and sees Upload.
  const developer = await newPage(browser);
  developer.on("dialog", (dialog) => dialog.accept());
  await signIn(developer, "dev", "dev-password-123");
  const devNav = developer.getByRole("navigation", { name: "Main" });
  await devNav.getByRole("link", { name: "Upload & Publish", exact: true }).waitFor();
  for (const hidden of ["Users", "Connections", "Nodes", "Locks"]) {
    assert.equal(await devNav.getByRole("link", { name: hidden, exact: true }).count(), 0, `${hidden} is not shown to dev`);
  }

  // An extension with an entity, published through the API.
  await upload(adminToken, "Shop", shopArchive);
  const published = await api(adminToken, "POST", "/extensions/Shop/publications", { version: 1, expected: null });
  assert.equal(published.status, 200, JSON.stringify(published.body));

  // ── My tokens ──
  await admin.goto(`${url}/console/tokens`);
  await admin.getByRole("heading", { level: 1, name: "My tokens" }).waitFor();
  assert.equal(await admin.locator("tr.current .this-session").textContent(), "this session");
  await shoot(admin, "admin-tokens");

  // An unknown extension is said next to the extensions field.
  await admin.getByLabel("Module name").fill("Billing");
  await admin.getByLabel("Extensions it may use").fill("Nope");
  await admin.getByRole("button", { name: "Create token" }).click();
  await admin.locator("#token-extensions-error").waitFor();
  assert.match(await admin.locator("#token-extensions-error").textContent(), /^No version of extension Nope was uploaded/);
  assert.equal(await admin.getByLabel("Module name").inputValue(), "Billing");

  // Created: shown once, with a copy button.
  await admin.getByLabel("Extensions it may use").fill("Shop");
  await admin.getByLabel("Lifetime").selectOption({ label: "1 day" });
  await admin.getByRole("button", { name: "Create token" }).click();
  const shown = admin.getByLabel("The new token");
  await shown.waitFor();
  const moduleToken = await shown.inputValue();
  assert.match(moduleToken, /^xif_/);
  await admin.getByRole("button", { name: "Copy" }).click();
  await admin.locator(".new-token .copied").filter({ hasText: /./ }).waitFor();
  await shoot(admin, "admin-tokens-created");
  // The token works, as the module.
  assert.equal((await api(moduleToken, "POST", "/extensions/Shop/actions/Echo", { Text: "hi" })).status, 200);
  // Never shown again.
  await admin.goto(`${url}/console/tokens`);
  await admin.getByRole("heading", { level: 1, name: "My tokens" }).waitFor();
  assert.equal(await admin.getByLabel("The new token").count(), 0);
  assert.ok(!(await admin.content()).includes(moduleToken), "the token is not on the page any more");
  const billing = admin.locator("table.tokens tbody tr", { hasText: "module Billing" });
  assert.match(await billing.locator("td[data-label='Module scope']").textContent(), /Billing on Shop/);
  // Revoked: it works no more.
  await billing.getByRole("button", { name: /^Revoke token/ }).click();
  await admin.getByText(/Token \d+ was revoked\./).waitFor();
  assert.equal(await admin.locator("table.tokens tbody tr", { hasText: "module Billing" }).count(), 0);
  assert.equal((await api(moduleToken, "POST", "/extensions/Shop/actions/Echo", { Text: "hi" })).status, 401);

  // ── Connections ──
  await admin.goto(`${url}/console/connections`);
  await admin.getByRole("heading", { level: 1, name: "Database connections" }).waitFor();
  const shopMain = row(admin, "Shop / main");
  assert.match(await shopMain.locator("td[data-label=Connection]").textContent(), /missing configuration/);
  await shoot(admin, "admin-connections-empty");

  // A bad name is said next to the name, and the URL is never shown back.
  await admin.getByLabel("Name", { exact: true }).fill("1 bad");
  await admin.getByLabel("URL").fill(`sqlite://${wrongDb}`);
  await admin.getByRole("button", { name: "Add connection" }).click();
  await admin.locator("#connection-name-error").waitFor();
  assert.equal(await admin.getByLabel("URL").inputValue(), "");
  assert.equal(await admin.getByLabel("URL").getAttribute("type"), "password");
  // A URL the server cannot take is said next to the URL.
  await admin.getByLabel("Name", { exact: true }).fill("broken");
  await admin.getByLabel("URL").fill("oracle://ann:hunter2@db/x");
  await admin.getByRole("button", { name: "Add connection" }).click();
  await admin.locator("#connection-url-error").waitFor();
  assert.equal(await admin.getByLabel("URL").inputValue(), "", "the URL is not put back in its field");
  assert.ok(!(await admin.content()).includes("hunter2"), "the URL's password is nowhere on the page");
  await shoot(admin, "admin-connections-bad-url");

  // A database whose table does not fit: the problems are listed next to the map form.
  await admin.getByLabel("Name", { exact: true }).fill("wrong");
  await admin.getByLabel("URL").fill(`sqlite://${wrongDb}`);
  await admin.getByRole("button", { name: "Add connection" }).click();
  await admin.getByText("Connection wrong was added.").waitFor();
  await admin.getByLabel("Logical database", { exact: true }).selectOption("Shop/main");
  await admin.getByLabel("Connection", { exact: true }).selectOption("wrong");
  await admin.getByRole("button", { name: "Map", exact: true }).click();
  const problems = admin.locator("#map-problems li");
  await problems.first().waitFor();
  assert.ok((await problems.count()) >= 1);
  assert.match(await problems.allTextContents().then((all) => all.join("\n")), /column `notes.Body`/);
  await admin.getByRole("button", { name: "Map anyway" }).waitFor();
  await shoot(admin, "admin-connections-mismatch");
  // Mapped anyway (forced, as the API allows): the mapping is recorded.
  await admin.getByRole("button", { name: "Map anyway" }).click();
  await admin.getByText("Logical database Shop/main to wrong was mapped.").waitFor();
  assert.match(await row(admin, "Shop / main").locator("td[data-label=Connection]").textContent(), /^wrong \(by admin/);

  // The right database: added, tested, mapped.
  await admin.getByLabel("Name", { exact: true }).fill("shop");
  await admin.getByLabel("URL").fill(`sqlite://${goodDb}`);
  await admin.getByRole("button", { name: "Add connection" }).click();
  await admin.getByText("Connection shop was added.").waitFor();
  await admin.getByRole("button", { name: "Test shop" }).click();
  const tested = admin.locator("#test-result");
  await tested.waitFor();
  assert.match(await tested.textContent(), /Connection shop works: it answered in \d+ ms/);
  await shoot(admin, "admin-connections-tested");
  // A database that went away: the test says it failed, in words.
  const goneDb = `${goodDb}.gone`;
  writeFileSync(goneDb, "");
  await admin.getByLabel("Name", { exact: true }).fill("gone");
  await admin.getByLabel("URL").fill(`sqlite://${goneDb}`);
  await admin.getByRole("button", { name: "Add connection" }).click();
  await admin.getByText("Connection gone was added.").waitFor();
  unlinkSync(goneDb);
  await admin.getByRole("button", { name: "Test gone" }).click();
  await admin.locator("#test-result").waitFor();
  assert.match(await admin.locator("#test-result").textContent(), /Connection gone failed \(after \d+ ms\):/);
  await shoot(admin, "admin-connections-test-failed");
  await row(admin, "gone").getByRole("button", { name: "Remove gone" }).click();
  await admin.getByText("Connection gone was removed.").waitFor();
  await admin.getByLabel("Logical database", { exact: true }).selectOption("Shop/main");
  await admin.getByLabel("Connection", { exact: true }).selectOption("shop");
  await admin.getByRole("button", { name: "Map", exact: true }).click();
  await admin.getByText("Logical database Shop/main to shop was mapped.").waitFor();
  assert.match(await row(admin, "Shop / main").locator("td[data-label=Connection]").textContent(), /^shop \(by admin/);
  assert.match(await row(admin, "shop").locator("td[data-label=Mapped]").textContent(), /Shop\/main/);
  await shoot(admin, "admin-connections-mapped");
  // Records now reach the mapped database.
  assert.equal((await api(adminToken, "GET", "/extensions/Shop/entities/Note/records")).status, 200);

  // A mapped connection is not removed unless forced; the unmapped one is.
  await row(admin, "shop").getByRole("button", { name: "Remove shop" }).click();
  await admin.locator("#remove-error").waitFor();
  assert.match(await admin.locator("#remove-error").textContent(), /in use by `Shop\/main`/);
  await shoot(admin, "admin-connections-in-use");
  await admin.goto(`${url}/console/connections`);
  await row(admin, "wrong").getByRole("button", { name: "Remove wrong" }).click();
  await admin.getByText("Connection wrong was removed.").waitFor();

  // ── Nodes ──
  await admin.goto(`${url}/console/nodes`);
  await admin.getByRole("heading", { level: 1, name: "Nodes" }).waitFor();
  const node = admin.locator("section.node");
  assert.equal(await node.count(), 1);
  assert.match(await node.locator("h2").textContent(), /live/);
  assert.match(await row(admin, "Shop").locator("td[data-label='Running version']").textContent(), /version 1/);
  await shoot(admin, "admin-nodes");

  // ── Locks ──
  await admin.goto(`${url}/console/locks`);
  await admin.getByRole("heading", { level: 1, name: "Publication locks" }).waitFor();
  await admin.getByText("No publication holds a lock.").waitFor();
  await shoot(admin, "admin-locks-empty");
  // A slow deploy holds its extension's lock while it starts.
  await upload(adminToken, "Slow", slowArchive);
  const publishing = api(adminToken, "POST", "/extensions/Slow/publications", { version: 1, expected: null });
  let held = false;
  for (let attempt = 0; attempt < 200 && !held; attempt++) {
    await admin.goto(`${url}/console/locks`);
    held = (await row(admin, "Slow").count()) === 1;
  }
  assert.ok(held, "the slow publication's lock is listed");
  assert.equal(await row(admin, "Slow").locator("td[data-label=Holder]").textContent(), "admin");
  await shoot(admin, "admin-locks-held");
  await row(admin, "Slow").getByRole("button", { name: "Break the lock of Slow" }).click();
  await admin.getByText("The publication lock of Slow was broken.").waitFor();
  await publishing;

  // ── Everyone else: 403 on every administration URL, GET and POST ──
  for (const path of ["/console/users", "/console/connections", "/console/nodes", "/console/locks"]) {
    const answer = await developer.goto(`${url}${path}`);
    assert.equal(answer.status(), 403, `GET ${path} as dev`);
    await developer.getByRole("heading", { level: 1, name: "Not allowed" }).waitFor();
  }
  await shoot(developer, "admin-forbidden");
  const csrf = await developer.locator('meta[name="csrf-token"]').getAttribute("content");
  const posts = [
    ["/console/users", { name: "intruder", password: "intruder-password" }],
    ["/console/users/admin/grant", { permission: "allow-extensions" }],
    ["/console/users/dev/grant", { permission: "allow-foreign-entities" }],
    ["/console/users/admin/revoke", { permission: "allow-extensions" }],
    ["/console/users/admin/remove", {}],
    ["/console/connections", { name: "mine", url: `sqlite://${goodDb}` }],
    ["/console/connections/map", { database: "Shop/main", connection: "shop", force: "true" }],
    ["/console/connections/shop/test", {}],
    ["/console/connections/shop/remove", { force: "true" }],
    ["/console/extensions/Slow/lock/break", {}],
  ];
  for (const [path, form] of posts) {
    const answer = await developer.request.post(`${url}${path}`, { form: { _csrf: csrf, ...form }, maxRedirects: 0 });
    assert.equal(answer.status(), 403, `POST ${path} as dev`);
  }
  // Nothing changed.
  const users = await api(adminToken, "GET", "/users");
  assert.deepEqual(users.body.map((user) => user.name).sort(), ["admin", "dev"]);
  assert.deepEqual(users.body.find((user) => user.name === "dev").permissions, ["allow-extensions"]);
  assert.equal((await api(adminToken, "GET", "/connections")).body.length, 1);

  // Their own tokens they manage; revoking this session's token signs them out.
  await developer.goto(`${url}/console/tokens`);
  await developer.getByRole("button", { name: "Create token" }).waitFor();
  await developer.locator("tr.current").getByRole("button", { name: "Revoke and sign out" }).click();
  await developer.getByRole("heading", { name: "Sign in to Service Center" }).waitFor();
  const gone = await developer.goto(`${url}/console/tokens`);
  assert.match(gone.url(), /\/console\/sign-in/);
});
