// An extension's overview in Service Center: validate-only, publishing with the impact on
// consumers shown before confirming, rolling back, a stale confirmation refused, downloading a
// version's .xif, the publication history, a lock held and broken, and a user without
// allow-extensions who sees no Publish button and is refused the form.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { assert, url, adminPassword, newPage, signIn, capture, apiToken, api, run } from "./lib.mjs";

const name = process.env.XIF_EXTENSION;
const locked = process.env.XIF_LOCKED;
assert.ok(name && locked, "XIF_EXTENSION and XIF_LOCKED are set by the Rust test");

await run(async (browser) => {
  const admin = await apiToken("admin", adminPassword);
  const page = await newPage(browser);
  const fact = async (key) => (await page.locator(`#facts dd[data-fact="${key}"]`).textContent()).trim();
  const row = (number) => page.locator(`#versions tr[data-version="${number}"]`);
  await signIn(page, "admin", adminPassword);

  // The list leads to the overview: two versions uploaded, none published.
  await page.getByRole("link", { name, exact: true }).click();
  await page.getByRole("heading", { level: 1, name }).waitFor();
  assert.equal(await fact("published"), "none");
  assert.equal(await fact("running"), "not running");
  assert.equal(await fact("versions"), "2");
  assert.match(await row(1).textContent(), /1\.0\.0/);
  assert.match(await row(2).textContent(), /2\.0\.0/);
  assert.match(await row(1).textContent(), /unsigned/);
  await page.getByText("Never published.").waitFor();
  await capture(page, "extension-uploaded");

  // Validate only: the checks and the consumers, and no button that publishes.
  await row(1).getByRole("link", { name: "Validate only version 1" }).click();
  await page.getByRole("heading", { level: 2, name: "Validate version 1" }).waitFor();
  await page.locator("#checks").waitFor();
  assert.match(await page.locator("#consumers").textContent(), /No module uses this extension/);
  assert.equal(await page.getByRole("button", { name: /Publish|Roll back|Validate/ }).count(), 0);
  assert.equal(await page.locator("#facts").count(), 0);
  await capture(page, "extension-validate-only");

  // Publishing: the impact first, then the confirmation, then the outcome on the overview.
  await page.getByRole("link", { name: "Back to the overview" }).click();
  await row(1).getByRole("link", { name: "Publish version 1" }).click();
  await page.getByRole("heading", { level: 2, name: "Publish version 1" }).waitFor();
  await capture(page, "extension-publish-impact");
  await page.getByRole("button", { name: "Publish version 1" }).click();
  await page.locator("#outcome").getByRole("heading", { name: "Version 1 is published." }).waitFor();
  assert.equal(await fact("published"), "version 1");
  assert.equal(await fact("running"), "version 1");
  assert.equal(await fact("nodes"), "1 of 1 live node");
  assert.match(await page.locator("#outcome").textContent(), /deployed/);
  assert.match(await row(1).textContent(), /published/);
  // The outcome is a page of its own: reloading it shows it again and publishes nothing twice.
  assert.match(page.url(), /\/console\/extensions\/Echo\?notice=/);
  const reloaded = await page.reload();
  assert.equal(reloaded.status(), 200);
  await page.locator("#outcome").getByRole("heading", { name: "Version 1 is published." }).waitFor();
  assert.equal(await page.locator("#refusal").count(), 0);
  await capture(page, "extension-published");

  // A module built against version 1 uses its action `Say`, which version 2 renames: the
  // impact says so before publishing version 2.
  const declared = { dependencies: [{ extension: name, version: 1, actions: ["Say"] }] };
  assert.equal((await api(admin, "PUT", "/modules/Shop/dependencies", declared)).status, 200);
  await row(2).getByRole("link", { name: "Publish version 2" }).click();
  await page.getByRole("heading", { level: 2, name: "Publish version 2" }).waitFor();
  const shop = page.locator("#consumers tbody tr", { hasText: "Shop" });
  assert.match(await shop.textContent(), /incompatible/);
  assert.match(await shop.textContent(), /Say/);
  assert.equal(await page.locator("#checks").getAttribute("class"), "warning");
  assert.match(await page.locator("#checks").textContent(), /Module Shop is incompatible/);
  await capture(page, "extension-publish-impact-on-consumers");
  await page.getByRole("button", { name: "Publish version 2" }).click();
  await page.locator("#outcome").getByRole("heading", { name: "Version 2 is published." }).waitFor();
  assert.match(await page.locator("#outcome").textContent(), /Shop/);
  assert.equal(await fact("running"), "version 2");

  // Rolling back to version 1: its impact first, then the rollback.
  await row(1).getByRole("link", { name: "Roll back to 1" }).click();
  await page.getByRole("heading", { level: 2, name: "Roll back to version 1" }).waitFor();
  assert.match(await page.locator("#consumers").textContent(), /Shop/);
  await capture(page, "extension-rollback-impact");
  await page.getByRole("button", { name: "Roll back to version 1" }).click();
  await page.locator("#outcome").getByRole("heading", { name: "Rolled back to version 1." }).waitFor();
  assert.equal(await fact("published"), "version 1");
  assert.equal(await fact("running"), "version 1");

  // The history, newest first: the rollback from 2 to 1, then 2 over 1, then 1.
  const history = page.locator("#history tbody tr");
  assert.equal(await history.count(), 3);
  const newest = await history.nth(0).locator("td").allTextContents();
  assert.deepEqual(newest.map((cell) => cell.trim()), ["admin", "1", "2", "rollback", "published"]);
  const oldest = await history.nth(2).locator("td").allTextContents();
  assert.deepEqual(oldest.map((cell) => cell.trim()), ["admin", "1", "none", "publication", "published"]);
  await capture(page, "extension-rolled-back");

  // A confirmation made stale by a publication meanwhile is refused, in words, with the
  // API's status, and publishes nothing.
  await row(2).getByRole("link", { name: "Publish version 2" }).click();
  await page.getByRole("heading", { level: 2, name: "Publish version 2" }).waitFor();
  const meanwhile = await api(admin, "POST", `/extensions/${name}/publications`, { version: 2, expected: 1 });
  assert.equal(meanwhile.status, 200, JSON.stringify(meanwhile.body));
  const [refused] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith(`/console/extensions/${name}/publish`) && r.request().method() === "POST"),
    page.getByRole("button", { name: "Publish version 2" }).click(),
  ]);
  assert.equal(refused.status(), 409);
  await page.locator("#refusal").getByRole("heading", { name: "Your publication of version 2 was refused" }).waitFor();
  assert.match(await page.locator("#refusal").textContent(), /another publication happened meanwhile/);
  assert.equal(await fact("published"), "version 2");
  await capture(page, "extension-publish-stale");

  // A download is the version's archive: its SHA-256 is the digest the page shows.
  const shown = await row(1).locator("code.digest").getAttribute("title");
  assert.match(shown, /^[0-9a-f]{64}$/);
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    row(1).getByRole("link", { name: "Download .xif of version 1" }).click(),
  ]);
  assert.equal(download.suggestedFilename(), `${name}-1.xif`);
  const bytes = readFileSync(await download.path());
  assert.equal(createHash("sha256").update(bytes).digest("hex"), shown);
  assert.notEqual(shown, await row(2).locator("code.digest").getAttribute("title"));

  // A lock held is shown; a publication, even validate-only, is refused while it holds; an
  // administrator breaks it, after a confirmation.
  await page.goto(`${url}/console/extensions/${locked}`);
  const lock = page.locator("#lock");
  await lock.getByRole("heading", { name: "Publication lock held" }).waitFor();
  assert.match(await lock.textContent(), /carol/);
  await capture(page, "extension-lock-held");
  const [validation] = await Promise.all([
    page.waitForResponse((r) => r.url().includes(`/console/extensions/${locked}/publish?`)),
    row(1).getByRole("link", { name: "Validate only version 1" }).click(),
  ]);
  assert.equal(validation.status(), 409);
  assert.match(await page.locator("#refusal").textContent(), /being published by carol/);
  await capture(page, "extension-publish-while-locked");
  await page.goto(`${url}/console/extensions/${locked}`);
  await lock.getByRole("link", { name: "Break the lock" }).click();
  await page.getByRole("heading", { level: 2, name: "Break the publication lock" }).waitFor();
  await capture(page, "extension-break-lock-confirm");
  await page.getByRole("button", { name: "Break the lock" }).click();
  await page.locator("#outcome").getByText(/was broken/).waitFor();
  assert.match(await page.locator("#outcome").textContent(), /carol/);
  assert.equal(await page.locator("#lock").count(), 0);
  assert.deepEqual((await api(admin, "GET", "/locks")).body, []);
  await capture(page, "extension-lock-broken");

  // A user without allow-extensions sees the versions and downloads, but no Publish, Roll
  // back or Validate button, and the publish form posted anyway is refused with 403.
  assert.equal((await api(admin, "POST", "/users", { name: "viewer", password: "viewer-password-1" })).status, 201);
  const viewer = await newPage(browser);
  await signIn(viewer, "viewer", "viewer-password-1");
  await viewer.goto(`${url}/console/extensions/${name}`);
  await viewer.getByRole("heading", { level: 2, name: "Versions" }).waitFor();
  await viewer.getByRole("link", { name: "Download .xif of version 1" }).waitFor();
  assert.equal(await viewer.getByRole("link", { name: /^(Publish|Roll back|Validate only)/ }).count(), 0);
  await capture(viewer, "extension-as-viewer");
  const csrf = await viewer.locator('meta[name="csrf-token"]').getAttribute("content");
  const posted = await viewer.request.post(`${url}/console/extensions/${name}/publish`, {
    form: { _csrf: csrf, version: "1", expected: "2" },
    maxRedirects: 0,
  });
  assert.equal(posted.status(), 403);
  assert.match(await posted.text(), /allow-extensions/);
  assert.equal((await api(admin, "GET", `/extensions/${name}`)).body.published, 2);
  const asked = await viewer.goto(`${url}/console/extensions/${name}/publish?version=1`);
  assert.equal(asked.status(), 403);
  assert.equal(await viewer.getByRole("button", { name: /Roll back/ }).count(), 0);
});
