// The untrusted email flow in a real browser: headless Chromium (Debian's
// /usr/bin/chromium) driven by playwright-core, JavaScript disabled, walks
// the activation portal from the emailed link to "Account activated",
// reading the verification code from the mail a real SMTP receiver stored.
//
// Run by tests/integration/browser.rs, which starts bwgate and the receiver
// and adds the user. Inputs (environment):
//   BWGATE_ACTIVATION_URL  the activation link from the email
//   BWGATE_MAIL_DIR        the receiver's out dir (one NNNNNN.json per message)
//   BWGATE_EMAIL           the address to enter (the code goes there)
//   BWGATE_SCREENSHOT_DIR  where the numbered full-page PNGs go
//   BWGATE_SPKI            base64 SHA-256 of the server certificate's SPKI:
//                          the only certificate the browser accepts besides
//                          publicly trusted ones (the dev CA is not)
//   CHROMIUM               optional, default /usr/bin/chromium
//
// Prints one line per check; exits 1 with "FAIL: ..." (and a screenshot
// named NN-failure.png) at the first failed expectation.

import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (!v) fail(`${name} is not set`);
  return v;
};

class Expectation extends Error {}

function fail(message) {
  throw new Expectation(message);
}

function expect(ok, message) {
  if (!ok) fail(message);
  console.log(`ok: ${message}`);
}

let activationUrl, mailDir, email, shots, spki, executablePath;
let shotNo = 0;

/** A full-page screenshot named NN-name.png, in order. */
async function screenshot(page, name) {
  shotNo += 1;
  const file = path.join(shots, `${String(shotNo).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot: ${file}`);
}

/** The page's structure: landmarks, headings, labelled controls. */
async function checkAccessible(page, what) {
  const lang = await page.locator("html").getAttribute("lang");
  expect(!!lang, `${what}: <html lang="${lang}">`);
  const title = await page.title();
  expect(title.trim().length > 0, `${what}: <title>${title}</title>`);
  expect((await page.locator("main").count()) === 1, `${what}: one <main>`);
  const h1 = page.locator("main h1");
  expect((await h1.count()) === 1, `${what}: one <h1> in <main>`);
  expect(
    ((await h1.textContent()) ?? "").trim().length > 0,
    `${what}: <h1> "${(await h1.textContent())?.trim()}"`,
  );
  // Every visible control has an accessible name from a <label>.
  const inputs = page.locator("input:not([type=hidden]), select, textarea");
  for (let i = 0; i < (await inputs.count()); i++) {
    const input = inputs.nth(i);
    const id = await input.getAttribute("id");
    const labels = id ? await page.locator(`label[for="${id}"]`).count() : 0;
    const name = (await input.getAttribute("name")) ?? `#${i}`;
    expect(labels === 1, `${what}: input ${name} has a <label for="${id}">`);
  }
  const buttons = page.locator("button, input[type=submit]");
  for (let i = 0; i < (await buttons.count()); i++) {
    const text = ((await buttons.nth(i).textContent()) ?? "").trim();
    expect(text.length > 0, `${what}: button "${text}" is named`);
  }
}

/** The one role=alert on the page, which must contain `needle`. */
async function checkAlert(page, what, needle) {
  const alert = page.getByRole("alert");
  expect((await alert.count()) === 1, `${what}: one role=alert`);
  const text = ((await alert.textContent()) ?? "").trim();
  expect(text.includes(needle), `${what}: alert "${text}" has "${needle}"`);
}

async function noAlert(page, what) {
  expect((await page.getByRole("alert").count()) === 0, `${what}: no role=alert`);
}

/** Submits a form by clicking its button; returns the HTTP status. */
async function submit(page, button) {
  const [response] = await Promise.all([
    page.waitForNavigation(),
    page.getByRole("button", { name: button }).click(),
  ]);
  return response?.status();
}

function messageFiles() {
  try {
    return fs
      .readdirSync(mailDir)
      .filter((f) => /^\d+\.json$/.test(f))
      .sort();
  } catch {
    return [];
  }
}

/** The value of header `name` of an RFC 5322 message, unfolded and
 * RFC 2047-decoded. */
function header(message, name) {
  const head = message.split(/\r?\n\r?\n/, 1)[0].replace(/\r?\n[ \t]+/g, " ");
  const line = head
    .split(/\r?\n/)
    .find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  if (line === undefined) return undefined;
  return line
    .slice(name.length + 1)
    .trim()
    .replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=\s*/g, (_, _charset, enc, text) =>
      enc.toUpperCase() === "B"
        ? Buffer.from(text, "base64").toString("utf8")
        : Buffer.from(
            text
              .replace(/_/g, " ")
              .replace(/=([0-9A-Fa-f]{2})/g, (_m, h) => String.fromCharCode(parseInt(h, 16))),
            "latin1",
          ).toString("utf8"),
    );
}

/** Waits for a message to `to`, not among `seen`, whose subject matches
 * `pattern`; returns [message, match]. */
async function waitForMail(to, seen, pattern, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const f of messageFiles()) {
      if (seen.has(f)) continue;
      const m = JSON.parse(fs.readFileSync(path.join(mailDir, f), "utf8"));
      const rcpts = (m.rcpt_tos ?? []).map((r) => r.toLowerCase());
      const match = (header(m.data, "Subject") ?? "").match(pattern);
      if (rcpts.includes(to.toLowerCase()) && match) return [m, match];
    }
    if (Date.now() > deadline) {
      fail(`no message to ${to} with a subject like ${pattern} in ${mailDir} after ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The first https link in the message whose path is `pathname`. */
function linkIn(message, pathname) {
  const text = message.data.replace(/=\r?\n/g, "").replace(/=3D/g, "=");
  for (const m of text.matchAll(/https:\/\/[^\s"'<>]+/g)) {
    const url = new URL(m[0]);
    if (url.pathname === pathname) return url.href;
  }
  return undefined;
}

/** Chromium with a fresh profile, JavaScript off, trusting only publicly
 * trusted certificates and the key whose SPKI hash is `pin`. */
async function launch(pin) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "bwgate-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    // The portal must work without JavaScript.
    javaScriptEnabled: false,
    viewport: { width: 800, height: 600 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      // Trust exactly the server's key (the dev CA is not a system root).
      `--ignore-certificate-errors-spki-list=${pin}`,
    ],
  });
  return [context, profile];
}

async function main() {
  activationUrl = env("BWGATE_ACTIVATION_URL");
  mailDir = env("BWGATE_MAIL_DIR");
  email = env("BWGATE_EMAIL");
  shots = env("BWGATE_SCREENSHOT_DIR");
  spki = env("BWGATE_SPKI");
  executablePath = env("CHROMIUM", "/usr/bin/chromium");
  if (!fs.existsSync(executablePath)) {
    fail(`no Chromium at ${executablePath}: run scripts/test.sh (installs Debian's chromium)`);
  }
  fs.mkdirSync(shots, { recursive: true });

  // The pin is what makes the dev certificate acceptable: with another
  // key pinned the browser refuses the server (and sends no request).
  {
    const [context, profile] = await launch("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      const error = await page.goto(activationUrl).then(
        (r) => `HTTP ${r?.status()}`,
        (e) => e.message,
      );
      expect(
        error.includes("ERR_CERT_AUTHORITY_INVALID"),
        `without the server's pin the browser refuses it (${error.split("\n")[0]})`,
      );
    } finally {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    }
  }

  const [context, profile] = await launch(spki);
  let page;
  try {
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(15000);
    await flow(context, page);
  } catch (e) {
    if (page && !page.isClosed()) {
      try {
        await screenshot(page, "failure");
        console.log(`failure page: ${page.url()}`);
      } catch {
        // the original error matters more
      }
    }
    throw e;
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

async function flow(context, page) {
  // 0. JavaScript is really off in this browser context: a page script
  // does not run (the portal's own CSP would block inline scripts anyway).
  const probe = await context.newPage();
  await probe.setContent("<title>no js</title><script>document.title = 'js ran'</script>");
  expect((await probe.title()) === "no js", "JavaScript is disabled in the browser context");
  await probe.close();

  // 1. The emailed activation link: step 1, the address BroadWorks gave
  // prefilled.
  let response = await page.goto(activationUrl);
  expect(response?.status() === 200, `GET activation link: ${response?.status()}`);
  const tls = await response.securityDetails();
  expect(
    tls !== null && /TLS/.test(tls.protocol ?? ""),
    `HTTPS with the pinned server key (${tls?.protocol}, subject ${tls?.subjectName})`,
  );
  expect(
    (await page.title()) === "Activate your account",
    "the page is titled 'Activate your account'",
  );
  await checkAccessible(page, "activation page");
  await noAlert(page, "activation page");
  expect(
    await page.getByRole("heading", { name: /Step 1/ }).isVisible(),
    "activation page shows 'Step 1'",
  );
  const emailBox = page.getByLabel("Email address");
  expect(
    (await emailBox.getAttribute("type")) === "email",
    "the email input is type=email",
  );
  await screenshot(page, "activation");

  // 2. The browser's own check: an address without "@" never leaves it.
  await emailBox.fill("not an email");
  const before = page.url();
  await page.getByRole("button", { name: "Send code" }).click();
  await page.waitForTimeout(300);
  expect(page.url() === before, "the browser keeps 'not an email' (type=email, required)");
  expect(
    !(await emailBox.evaluate((e) => e.validity.valid)),
    "the email input reports itself invalid",
  );
  await screenshot(page, "email-blocked-by-browser");

  // 3. An address the browser accepts but the server refuses (no dot in
  // the domain): error 9001 on the page, the field marked invalid.
  await emailBox.fill("ann@home");
  let status = await submit(page, "Send code");
  expect(status === 400, `POST /activate/email with 'ann@home': ${status}`);
  await checkAccessible(page, "refused email page");
  await checkAlert(page, "refused email page", "error 9001");
  expect(
    (await page.getByLabel("Email address").getAttribute("aria-invalid")) === "true",
    "the email input is aria-invalid=true",
  );
  expect(
    await page.getByRole("heading", { name: /Step 1/ }).isVisible(),
    "still on step 1",
  );
  await screenshot(page, "email-refused");

  // 4. A valid address: step 2, a code goes out.
  const seen = new Set(messageFiles());
  await page.getByLabel("Email address").fill(email);
  status = await submit(page, "Send code");
  expect(status === 200, `POST /activate/email with '${email}': ${status}`);
  await checkAccessible(page, "code page");
  await noAlert(page, "code page");
  expect(
    await page.getByRole("heading", { name: /Step 2/ }).isVisible(),
    "code page shows 'Step 2'",
  );
  const sentTo = ((await page.getByRole("status").textContent()) ?? "").trim();
  expect(
    sentTo.toLowerCase().includes(email.toLowerCase()),
    `code page says where the code went: "${sentTo}"`,
  );
  await screenshot(page, "code-sent");

  const [mail, match] = await waitForMail(
    email,
    seen,
    /^Your Webex verification code: (\d{6})$/,
  );
  const code = match[1];
  console.log(`ok: verification email received, code ${code}`);

  // 5. The emailed link opens a confirmation page (in another tab; a GET
  // changes nothing, so the code form stays usable).
  const verifyLink = linkIn(mail, "/activate/verify");
  expect(verifyLink !== undefined, "the verification email links to /activate/verify");
  const tab = await context.newPage();
  response = await tab.goto(verifyLink);
  expect(response?.status() === 200, `GET emailed verification link: ${response?.status()}`);
  await checkAccessible(tab, "confirm page");
  expect(
    await tab.getByRole("button", { name: "Confirm and activate" }).isVisible(),
    "confirm page offers 'Confirm and activate'",
  );
  await screenshot(tab, "emailed-link");
  await tab.close();

  // 6. A wrong code: error 9026, counted.
  const wrong = code === "000000" ? "000001" : "000000";
  await page.getByLabel("Verification code").fill(wrong);
  status = await submit(page, "Verify and activate");
  expect(status === 400, `POST /activate/verify with a wrong code: ${status}`);
  await checkAccessible(page, "wrong code page");
  await checkAlert(page, "wrong code page", "error 9026");
  await checkAlert(page, "wrong code page", "attempts left");
  expect(
    (await page.getByLabel("Verification code").getAttribute("aria-invalid")) === "true",
    "the code input is aria-invalid=true",
  );
  await screenshot(page, "code-wrong");

  // 7. The right code: activated.
  await page.getByLabel("Verification code").fill(code);
  status = await submit(page, "Verify and activate");
  expect(status === 200, `POST /activate/verify with the emailed code: ${status}`);
  await checkAccessible(page, "activated page");
  await noAlert(page, "activated page");
  expect(
    ((await page.locator("h1").textContent()) ?? "").trim() === "Account activated",
    "the page says 'Account activated'",
  );
  await screenshot(page, "activated");

  // 8. The link is used up.
  response = await page.goto(activationUrl);
  expect(response?.status() === 400, `GET the used activation link: ${response?.status()}`);
  await checkAccessible(page, "used link page");
  await checkAlert(page, "used link page", "error 9025");
  await screenshot(page, "link-used");
}

try {
  await main();
  console.log(`untrusted_flow: passed, ${shotNo} screenshots in ${shots}`);
} catch (e) {
  console.error(
    e instanceof Expectation ? `FAIL: ${e.message}` : `FAIL: ${e?.stack ?? e}`,
  );
  process.exit(1);
}
