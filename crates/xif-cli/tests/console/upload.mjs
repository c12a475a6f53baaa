// Upload & Publish an Extension from the browser, and the list of extensions.
import { assert, url, adminPassword, newPage, signIn, capture, apiToken, api, run } from "./lib.mjs";

const good = process.env.XIF_GOOD_XIF;
const second = process.env.XIF_SECOND_XIF;
const broken = process.env.XIF_BROKEN_XIF;
const junk = process.env.XIF_JUNK_XIF;
assert.ok(good && second && broken && junk, "the Rust test passes the archives");

await run(async (browser) => {
  const page = await newPage(browser);
  // Every value the progress bar takes is reported here, across the navigation that follows.
  const progress = [];
  await page.exposeBinding("reportUploadProgress", (_source, value) => progress.push(Number(value)));
  await page.addInitScript(() => {
    document.addEventListener("DOMContentLoaded", () => {
      const bar = document.getElementById("upload-bar");
      if (!bar) return;
      new MutationObserver(() => window.reportUploadProgress(bar.getAttribute("value"))).observe(bar, {
        attributes: true,
        attributeFilter: ["value"],
      });
    });
  });
  await signIn(page, "admin", adminPassword);
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Upload & Publish", exact: true }).click();
  await page.getByRole("heading", { level: 1, name: "Upload & Publish an Extension" }).waitFor();
  // The anti-forgery token is the form's first field, before the file.
  const first = await page.locator("#upload-form > *").first().getAttribute("name");
  assert.equal(first, "_csrf");
  await capture(page, "upload");

  // An upload without its anti-forgery token first (as another site would post it) is refused
  // before its file is read, even when the token comes after the file.
  const csrf = await page.locator('meta[name="csrf-token"]').getAttribute("content");
  const junkFile = { name: "junk.xif", mimeType: "application/octet-stream", buffer: Buffer.from("not read") };
  for (const multipart of [{ file: junkFile }, { file: junkFile, _csrf: csrf }, { _csrf: "0".repeat(64), file: junkFile }]) {
    const forged = await page.request.post(`${url}/console/upload`, { multipart, maxRedirects: 0 });
    assert.equal(forged.status(), 403, `refused: ${Object.keys(multipart).join(", ")}`);
    assert.match(await forged.text(), /anti-forgery token/);
  }

  // A good archive: the progress reaches 100%, then the version's publish page.
  await page.getByLabel("Extension archive (.xif)").setInputFiles(good);
  await Promise.all([
    page.waitForURL(/\/console\/extensions\/Parcels\/publish\?version=1$/),
    page.getByRole("button", { name: "Upload" }).click(),
  ]);
  assert.ok(progress.includes(100), `the progress reached 100% (it showed ${progress.join(", ")})`);

  // The same archive again: already uploaded, said next to the input, with a link to publish it.
  await page.goto(`${url}/console/upload`);
  await page.getByLabel("Extension archive (.xif)").setInputFiles(good);
  await page.getByRole("button", { name: "Upload" }).click();
  const error = page.locator("#file-error");
  await error.waitFor();
  assert.match(await error.textContent(), /already uploaded as version 1 of Parcels/);
  assert.equal(await page.getByLabel("Extension archive (.xif)").getAttribute("aria-invalid"), "true");
  await page.getByRole("link", { name: "Publish version 1 of Parcels" }).waitFor();
  await capture(page, "upload-already-uploaded");

  // Not an archive: the API's words next to the input.
  await page.getByLabel("Extension archive (.xif)").setInputFiles(junk);
  await page.getByRole("button", { name: "Upload" }).click();
  await page.locator("#file-error", { hasText: "not a valid XIF" }).waitFor();
  await capture(page, "upload-not-an-archive");

  // A definition the verifier refuses: its problems listed.
  await page.getByLabel("Extension archive (.xif)").setInputFiles(broken);
  await page.getByRole("button", { name: "Upload" }).click();
  await page.locator("#file-error", { hasText: /Nonsense|definition/i }).waitFor();
  await capture(page, "upload-invalid-definition");

  // Without scripts the same form works, and refuses the same way.
  const plain = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 900 } });
  const noScript = await plain.newPage();
  await signIn(noScript, "admin", adminPassword);
  await noScript.goto(`${url}/console/upload`);
  await noScript.getByLabel("Extension archive (.xif)").setInputFiles(junk);
  const [refusal] = await Promise.all([
    noScript.waitForResponse((r) => r.url().endsWith("/console/upload") && r.request().method() === "POST"),
    noScript.getByRole("button", { name: "Upload" }).click(),
  ]);
  assert.equal(refusal.status(), 422);
  await noScript.locator("#file-error", { hasText: "not a valid XIF" }).waitFor();
  await plain.close();

  // The list: the new extension with its columns, and the search filtering it.
  const admin = await apiToken("admin", adminPassword);
  const other = await api(admin, "GET", "/extensions");
  assert.equal(other.status, 200);
  await page.goto(`${url}/console/extensions`);
  const row = page.getByRole("row", { name: /Parcels/ });
  await row.waitFor();
  const cells = await row.locator("td").allTextContents();
  assert.deepEqual(cells.map((cell) => cell.trim()), ["not published", "not running", "none", "none", "1", "complete"]);
  await capture(page, "extensions-list");
  await page.getByLabel("Search by name").fill("zzz");
  await page.getByText("No extension's name contains “zzz”.").waitFor();
  await page.getByLabel("Search by name").fill("parc");
  await row.waitFor();
  await capture(page, "extensions-search");

  // Upload & Publish, end to end in the browser: from the publish page the upload led to (the
  // checks shown first), confirmed, the overview says version 1 runs.
  await page.goto(`${url}/console/extensions/Parcels/publish?version=1`);
  await page.getByRole("heading", { level: 2, name: "Publish version 1" }).waitFor();
  await page.getByRole("button", { name: "Publish version 1" }).click();
  await page.getByRole("heading", { level: 1, name: "Parcels" }).waitFor();
  assert.equal((await page.locator('#facts dd[data-fact="running"]').textContent()).trim(), "version 1");
  await capture(page, "upload-published");

  // Used by two modules: running on this node, both consumers up to date.
  for (const module of ["Shop", "Audit"]) {
    const declared = { dependencies: [{ extension: "Parcels", version: 1, actions: ["Say"] }] };
    assert.equal((await api(admin, "PUT", `/modules/${module}/dependencies`, declared)).status, 200);
  }
  await page.goto(`${url}/console/extensions`);
  const columns = async () => (await row.locator("td").allTextContents()).map((cell) => cell.trim());
  assert.deepEqual(await columns(), ["version 1", "version 1", "1 node", "2 up to date", "1", "complete"]);
  await capture(page, "extensions-list-published");

  // A second version published: the consumers built against the first are compared with it.
  // Held on its way to the server, the upload shows its progress bar and figures.
  await page.goto(`${url}/console/upload`);
  await page.getByLabel("Extension archive (.xif)").setInputFiles(second);
  let release;
  const held = new Promise((resolve) => {
    release = resolve;
  });
  await page.route("**/console/upload", async (route) => {
    await held;
    await route.continue();
  });
  await page.getByRole("button", { name: "Upload" }).click();
  await page.locator("#upload-progress").waitFor({ state: "visible" });
  assert.equal(await page.getByRole("button", { name: "Upload" }).isDisabled(), true);
  assert.match(await page.locator("#upload-figures").textContent(), /^\d+% · /);
  await capture(page, "upload-in-progress");
  release();
  await page.waitForURL(/\/console\/extensions\/Parcels\/publish\?version=2$/);
  await page.unroute("**/console/upload");
  // The publish page the upload led to shows the impact on the two consumers before confirming.
  await page.getByRole("heading", { level: 2, name: "Publish version 2" }).waitFor();
  await page.locator("#consumers").getByRole("rowheader", { name: "Shop", exact: true }).waitFor();
  await page.getByRole("button", { name: "Publish version 2" }).click();
  await page.getByRole("heading", { level: 1, name: "Parcels" }).waitFor();
  assert.equal((await page.locator('#facts dd[data-fact="running"]').textContent()).trim(), "version 2");
  await page.goto(`${url}/console/extensions`);
  const states = await columns();
  assert.deepEqual(states.slice(0, 3), ["version 2", "version 2", "1 node"]);
  assert.match(states[3], /^2 (outdated|not affected)$/);

  // A user without allow-extensions gets 403 on the upload page, and cannot post to it.
  assert.equal((await api(admin, "POST", "/users", { name: "reader", password: "reader-password-1" })).status, 201);
  const reader = await newPage(browser);
  await signIn(reader, "reader", "reader-password-1");
  const denied = await reader.goto(`${url}/console/upload`);
  assert.equal(denied.status(), 403);
  await reader.getByRole("heading", { level: 1, name: "Not allowed" }).waitFor();
  await capture(reader, "upload-forbidden");
});
