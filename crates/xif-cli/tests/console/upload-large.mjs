// A large upload from the browser: streamed to the store, never held whole in the server's
// memory (its peak resident memory, VmHWM, grows by far less than the archive's size).
import { readFileSync, statSync } from "node:fs";
import { assert, url, adminPassword, newPage, signIn, apiToken, api, run } from "./lib.mjs";

const file = process.env.XIF_LARGE_XIF;
const mib = Number(process.env.XIF_LARGE_MIB);
const pid = process.env.XIF_SERVER_PID;
assert.ok(file && mib && pid, "the Rust test passes the archive, its size and the server's pid");

/** The server's peak resident memory so far, in MiB. */
function peakMiB() {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmHWM:"));
  return Number(line.replace(/[^0-9]/g, "")) / 1024;
}

await run(async (browser) => {
  const page = await newPage(browser);
  await signIn(page, "admin", adminPassword);
  await page.goto(`${url}/console/upload`);
  await page.getByRole("heading", { level: 1, name: "Upload & Publish an Extension" }).waitFor();
  const before = peakMiB();
  await page.getByLabel("Extension archive (.xif)").setInputFiles(file);
  await Promise.all([
    page.waitForURL(/\/console\/extensions\/Parcels\/publish\?version=1$/, { timeout: 120_000 }),
    page.getByRole("button", { name: "Upload" }).click(),
  ]);
  const after = peakMiB();
  const bytes = statSync(file).size;
  const admin = await apiToken("admin", adminPassword);
  const versions = await api(admin, "GET", "/extensions/Parcels/versions");
  assert.equal(versions.status, 200);
  assert.equal(versions.body[0].size, bytes, "the whole archive was stored");
  const grew = after - before;
  console.log(`a ${(bytes / 1048576).toFixed(1)} MiB upload: the server's peak memory ${before.toFixed(1)} -> ${after.toFixed(1)} MiB`);
  assert.ok(grew < mib / 2, `the server's peak memory grew by ${grew.toFixed(1)} MiB for a ${mib} MiB upload: it held it`);
});
