// Signing in and out of Service Center, refused forms, throttling, and what a user without
// permissions sees.
import { assert, url, adminPassword, newPage, signIn, capture, apiToken, api, run } from "./lib.mjs";

await run(async (browser) => {
  const page = await newPage(browser);

  // The server's root leads to the console, which asks to sign in.
  await page.goto(url);
  await page.getByRole("heading", { name: "Sign in to Service Center" }).waitFor();
  assert.match(page.url(), /\/console\/sign-in\?next=/);
  await capture(page, "sign-in");

  // A wrong password is said next to the password field, the user name kept.
  await page.getByLabel("User name").fill("admin");
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  const error = page.locator("#password-error");
  await error.waitFor();
  assert.equal(await error.textContent(), "Wrong user name or password.");
  assert.equal(await page.getByLabel("User name").inputValue(), "admin");
  assert.equal(await page.getByLabel("Password").getAttribute("aria-describedby"), "password-error");
  await capture(page, "sign-in-wrong-password");

  // The right one opens the extensions page, with the session cookie as it must be.
  await signIn(page, "admin", adminPassword);
  const cookies = await page.context().cookies();
  const session = cookies.find((cookie) => cookie.name === "xif_session");
  assert.ok(session, "a session cookie is set");
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, "Strict");
  // Scripts cannot read it.
  assert.equal(await page.evaluate(() => document.cookie.includes("xif_session")), false);
  for (const link of ["Extensions", "Upload & Publish", "My tokens", "Users", "Connections", "Nodes", "Locks"]) {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: link, exact: true }).waitFor();
  }
  await capture(page, "extensions-empty");

  // A form posted without its anti-forgery token (as another site would) is refused, and
  // changes nothing: the session still works.
  const forged = await page.request.post(`${url}/console/sign-out`, { form: { nothing: "here" }, maxRedirects: 0 });
  assert.equal(forged.status(), 403);
  assert.match(await forged.text(), /anti-forgery token/);
  const wrong = await page.request.post(`${url}/console/sign-out`, { form: { _csrf: "0".repeat(64) }, maxRedirects: 0 });
  assert.equal(wrong.status(), 403);
  await page.reload();
  await page.getByRole("heading", { level: 1, name: "Extensions" }).waitFor();

  // A user without permissions sees no administration and no upload.
  const admin = await apiToken("admin", adminPassword);
  assert.equal((await api(admin, "POST", "/users", { name: "reader", password: "reader-password-1" })).status, 201);
  const reader = await newPage(browser);
  await signIn(reader, "reader", "reader-password-1");
  const nav = reader.getByRole("navigation", { name: "Main" });
  await nav.getByRole("link", { name: "Extensions", exact: true }).waitFor();
  for (const hidden of ["Upload & Publish", "Users", "Connections", "Nodes", "Locks"]) {
    assert.equal(await nav.getByRole("link", { name: hidden, exact: true }).count(), 0, `${hidden} is not shown to a reader`);
  }
  await capture(reader, "extensions-as-reader");

  // Signing out ends the session: its token is revoked, so the old cookie opens nothing.
  const before = (await reader.context().cookies()).find((cookie) => cookie.name === "xif_session").value;
  await reader.getByRole("button", { name: "Sign out" }).click();
  await reader.getByRole("heading", { name: "Sign in to Service Center" }).waitFor();
  const replay = await fetch(`${url}/console/extensions`, { headers: { cookie: `xif_session=${before}` }, redirect: "manual" });
  assert.equal(replay.status, 303);
  assert.match(replay.headers.get("location"), /\/console\/sign-in/);

  // A flood of wrong passwords is throttled as the API's logins are, and says when to retry.
  const flood = await newPage(browser);
  let throttled = null;
  for (let attempt = 0; attempt < 12 && !throttled; attempt++) {
    await flood.goto(`${url}/console/sign-in`);
    await flood.getByLabel("User name").fill("reader");
    await flood.getByLabel("Password").fill(`wrong ${attempt}`);
    const [response] = await Promise.all([
      flood.waitForResponse((r) => r.url().endsWith("/console/sign-in") && r.request().method() === "POST"),
      flood.getByRole("button", { name: "Sign in" }).click(),
    ]);
    if (response.status() === 429) throttled = response;
  }
  assert.ok(throttled, "a flood of sign-ins is throttled");
  assert.ok(Number(throttled.headers()["retry-after"]) >= 1);
  await flood.locator("#signin-error").waitFor();
  assert.match(await flood.locator("#signin-error").textContent(), /too many login attempts.*try again in \d+ second/i);
  await capture(flood, "sign-in-throttled");
});
