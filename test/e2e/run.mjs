#!/usr/bin/env node
// Browser end-to-end test of @cleanroom-lab/jupyterlab.
//
// Starts the cleanroom-lab JupyterLab app (extension/app/serve.py, Debian's jupyterlab_server)
// on a free localhost port, opens test/e2e/views.ipynb (a copy) in headless Chromium
// (playwright-core + /usr/bin/chromium), runs every cell with the real cleanroom-ts kernel,
// asserts on the rendered DOM (budget gauge numbers, suppressed-row markers, the lift chart's
// SVG, the refusal trace, the invalid-payload box, the Privacy budget sidebar before/after a
// budget-spending cell runs twice, the Room panel against a room server process the test starts),
// saves one screenshot per view (to .scratch/test/screenshots/, or docs/screenshots/ with
// --update-docs) and
// prints `N passed, N failed` last. Every wait is bounded; the server, kernel and browser are
// always stopped.
//
// Usage: node test/e2e/run.mjs [--no-build] [--headed] [--keep]
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, existsSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const args = new Set(process.argv.slice(2));
// Screenshots are test artefacts under .scratch/ ; `node test/e2e/run.mjs --update-docs`
// writes them to docs/screenshots/ (committed, linked from the README) instead.
const SHOTS = process.argv.includes("--update-docs") ? join(REPO, "docs/screenshots") : join(REPO, ".scratch/test/screenshots");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const PYTHON = "/usr/bin/python3";
const T0 = Date.now();
const since = (t) => `${((Date.now() - t) / 1000).toFixed(1)} s`;
const log = (m) => console.log(`[e2e ${since(T0)}] ${m}`);

const results = [];
function check(name, ok, detail = "") {
  results.push({ name, ok });
  console.log(`${ok ? "  ✓" : "  ✗"} ${name}${detail ? ` — ${detail}` : ""}`);
}

async function shot(loc, name) {
  mkdirSync(SHOTS, { recursive: true });
  await loc.scrollIntoViewIfNeeded().catch(() => {});
  await loc.screenshot({ path: join(SHOTS, `${name}.png`) }).catch((e) => check(`screenshot ${name}`, false, String(e)));
}

const cleanups = [];
async function cleanup() {
  while (cleanups.length) {
    const f = cleanups.pop();
    try {
      await f();
    } catch {
      /* best effort */
    }
  }
}
let finishing = false;
async function finish(code) {
  if (finishing) return;
  finishing = true;
  await cleanup();
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  console.log(`e2e total ${since(T0)}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(code ?? (failed > 0 || passed === 0 ? 1 : 0));
}
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => finish(130));
const hardTimeout = setTimeout(() => {
  console.error("e2e: global timeout (420 s)");
  check("finished within 420 s", false);
  finish(1);
}, 420_000);
hardTimeout.unref();

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

/** Start serve.py; resolve with the URL it prints, reject after `ms`. */
function startLab(port, root, token) {
  const child = spawn(
    PYTHON,
    [join(REPO, "extension/app/serve.py"), "--port", String(port), "--root", root, "--token", token, "--no-browser"],
    {
      cwd: REPO,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, PYDEVD_DISABLE_FILE_VALIDATION: "1", CLEANROOM_LAB_STATE: join(root, ".jupyter-state") },
    },
  );
  cleanups.push(
    () =>
      new Promise((res) => {
        if (child.exitCode !== null) return res();
        child.once("exit", res);
        try {
          process.kill(-child.pid, "SIGTERM");
        } catch {
          /* gone */
        }
        setTimeout(() => {
          try {
            process.kill(-child.pid, "SIGKILL");
          } catch {
            /* gone */
          }
          res();
        }, 5000).unref();
      }),
  );
  let serverLog = "";
  child.stderr.on("data", (d) => {
    serverLog += d;
    if (process.env.E2E_VERBOSE) process.stderr.write(d);
  });
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`lab did not start within 60 s:\n${serverLog.slice(-3000)}`)), 60_000);
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = /CLEANROOM_LAB_URL (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        res({ url: m[1], child, serverLog: () => serverLog });
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      rej(new Error(`serve.py exited with ${code}:\n${serverLog.slice(-3000)}`));
    });
  });
}

async function main() {
  if (!args.has("--no-build")) {
    const t = Date.now();
    const b = spawnSync(process.execPath, [join(REPO, "extension/scripts/build.mjs"), "--app"], { cwd: REPO, stdio: "inherit" });
    if (b.status !== 0) throw new Error("extension build failed");
    log(`build checked/done in ${since(t)}`);
  }
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found (Debian package chromium)`);

  // A throwaway notebook root inside the repo, so the kernel resolves @cleanroom-lab/kernel.
  mkdirSync(join(REPO, ".scratch"), { recursive: true });
  const root = mkdtempSync(join(REPO, ".scratch/e2e-"));
  if (!args.has("--keep")) cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  copyFileSync(join(REPO, "test/e2e/views.ipynb"), join(root, "views.ipynb"));

  const port = await freePort();
  const token = randomBytes(16).toString("hex");
  let t = Date.now();
  const lab = await startLab(port, root, token);
  log(`lab listening on port ${port} in ${since(t)}`);

  const { chromium } = await import("playwright-core");
  const profile = mkdtempSync(join(REPO, ".scratch/e2e-chromium-"));
  cleanups.push(() => rmSync(profile, { recursive: true, force: true }));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: !args.has("--headed"),
    viewport: { width: 1280, height: 900 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  cleanups.push(() => ctx.close());
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  page.setDefaultTimeout(30_000);
  const consoleErrors = [];
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(`${m.text()}${m.location()?.url ? ` (${m.location().url})` : ""}`);
  });

  t = Date.now();
  const base = lab.url.replace(/\?token=.*$/, "");
  await page.goto(`${base}/tree/views.ipynb?token=${token}`);
  await page.waitForSelector('body[data-cleanroom-lab-ready="true"]', { state: "attached", timeout: 60_000 });
  await page.waitForSelector(".jp-Notebook .jp-Cell", { timeout: 60_000 });
  check("JupyterLab app loads and opens the notebook", true, since(t));
  // Wait for the notebook to finish loading and its kernel (cleanroom-ts) to be idle.
  t = Date.now();
  await page
    .locator(".jp-NotebookPanel .jp-Spinner")
    .waitFor({ state: "detached", timeout: 60_000 })
    .catch(() => {});
  await page
    .waitForFunction(
      () => /cleanroom/i.test(document.querySelector(".jp-NotebookPanel-toolbar .jp-Toolbar-kernelName")?.textContent ?? ""),
      null,
      { timeout: 60_000 },
    )
    .catch(() => {});
  await page.waitForSelector('.jp-NotebookPanel-toolbar [data-status="idle"]', { state: "attached", timeout: 60_000 }).catch(() => {});
  const kernelName = await page
    .locator(".jp-NotebookPanel-toolbar .jp-Toolbar-kernelName")
    .first()
    .textContent({ timeout: 5_000 })
    .catch(() => "");
  check("notebook uses the cleanroom-ts kernel", /cleanroom/i.test(kernelName ?? ""), `kernel: ${kernelName?.trim()} (${since(t)})`);

  const cells = page.locator(".jp-Notebook .jp-Cell");
  const count = await cells.count();

  /** Run cell i (Shift+Enter) and wait until its prompt shows an execution count. */
  async function runCell(i, timeout = 60_000) {
    const cell = cells.nth(i);
    const before =
      (await cell
        .locator(".jp-InputPrompt")
        .textContent()
        .catch(() => "")) ?? "";
    await cell.locator(".jp-InputArea-editor").click();
    await page.keyboard.press("Shift+Enter");
    await page.waitForFunction(
      ([el, prev]) => {
        const p = el.querySelector(".jp-InputPrompt")?.textContent ?? "";
        return /\[\d+\]/.test(p) && p !== prev;
      },
      [await cell.elementHandle(), before],
      { timeout },
    );
    return cell;
  }

  const out = (i) => cells.nth(i).locator(".jp-OutputArea-output");
  t = Date.now();
  const cellTimes = [];
  for (let i = 0; i < count; i++) {
    const isCode = await cells.nth(i).evaluate((el) => el.classList.contains("jp-CodeCell"));
    if (!isCode) continue;
    const tc = Date.now();
    await runCell(i);
    cellTimes.push(Date.now() - tc);
  }
  check("every cell runs with the real kernel", true, `${cellTimes.length} cells in ${since(t)} (slowest ${Math.max(...cellTimes)} ms)`);
  const errors = await page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count();
  check("no cell printed an error", errors === 0, errors ? `${errors} error outputs` : "");

  const view = (kind) => page.locator(`.crl-view[data-kind="${kind}"]`).first();

  // query / suppression
  const q = page
    .locator('.crl-view[data-kind="query"]')
    .filter({ has: page.locator(".crl-row-suppressed") })
    .first();
  const marker = q.locator(".crl-row-suppressed .crl-suppressed-marker").first();
  check(
    "query: suppressed row is marked with its rule and threshold",
    (await marker.getAttribute("data-rule").catch(() => null)) === "minimum group size" &&
      (await marker.getAttribute("data-threshold").catch(() => null)) === "50",
    await text(marker),
  );
  check("query: released rows are not marked", (await q.locator("tbody tr:not(.crl-row-suppressed)").count()) === 4);
  check(
    "query: each noisy column shows its own ± (converters ±6, value_cents ±59,915)",
    (await text(q.locator('tfoot [data-pm="converters"]'))) === "±6" &&
      (await text(q.locator('tfoot [data-pm="value_cents"]'))) === "±59,915",
  );
  check(
    "query: numbers right-aligned",
    (await q
      .locator("tbody td.crl-num")
      .first()
      .evaluate((td) => getComputedStyle(td).textAlign)
      .catch(() => "")) === "right",
  );
  check(
    "query: a negative noisy value carries the footnote",
    (await text(q.locator('[data-field="negative-note"]'))).includes("below zero"),
  );
  await shot(q, "query-suppression");

  // refused query: why-blocked trace
  const refused = page
    .locator('.crl-view[data-kind="query"]')
    .filter({ has: page.locator(".crl-trace") })
    .first();
  check(
    "refused query: the trace names the refusing step",
    (await refused
      .locator(".crl-step-refused")
      .getAttribute("data-step")
      .catch(() => null)) === "purpose",
  );
  await shot(refused, "query-refused-trace");

  // lift chart SVG
  const lift = view("lift");
  await lift
    .locator(".crl-chart svg")
    .first()
    .waitFor({ timeout: 30_000 })
    .catch(() => {});
  const marks = await lift.locator(".crl-chart svg .mark-rect path, .crl-chart svg .mark-rule line, .crl-chart svg path").count();
  check("lift: vega-lite chart renders as SVG with marks", marks > 0, `${marks} svg paths`);
  check("lift: headline shows the lift", (await text(lift.locator('[data-field="lift"]'))) === "15%");
  check("lift: chart draws the ground truth", (await text(lift.locator(".crl-chart svg"))).includes("ground truth 14%"));
  await shot(lift, "lift");

  check("psi: match rate shown", (await text(view("psi").locator('[data-field="match-rate"]'))) === "match rate (smaller set) 62.5%");
  await shot(view("psi"), "psi");
  check(
    "attestation: failed check and denied key release shown",
    (await view("attestation").locator('[data-status="failed"]').count()) === 1 &&
      (await view("attestation").locator('[data-status="denied"]').count()) === 1,
  );
  await shot(view("attestation"), "attestation");
  check("audit: broken chain pinpointed", (await text(view("audit").locator('[data-field="chain"]'))).includes("chain broken at entry 2"));
  check(
    "audit: template shown by name, hash on hover",
    (await text(view("audit").locator(".crl-template").first())) === "conversions by region" &&
      (
        (await view("audit")
          .locator(".crl-template")
          .first()
          .getAttribute("title")
          .catch(() => "")) ?? ""
      ).startsWith("template 9f2c4e1a"),
  );
  await shot(view("audit"), "audit");
  check("purpose: denied decision shown", (await view("purpose").locator('[data-status="deny"]').count()) === 1);
  await shot(view("purpose"), "purpose");
  check("error payload shown as a typed error", (await text(view("error"))).includes("BUDGET_EXCEEDED"));
  await shot(view("error"), "error");
  const invalid = view("invalid");
  check(
    "invalid payload shows a readable error box, not a blank output",
    (await text(invalid)).includes("unreadable cleanroom-lab output") && (await text(invalid)).includes("roomId"),
  );
  await shot(invalid, "invalid-payload");

  // real layer results through display/from-results
  const titled = (title) =>
    page
      .locator(".crl-view")
      .filter({ has: page.locator(".crl-title", { hasText: title }) })
      .first();
  check(
    "real PSI run renders (match count from runPsi)",
    (await text(titled("PSI (real run)").locator('[data-field="match-count"]'))) === "matched 2",
  );
  check(
    "real computeLift result renders with its chart",
    (await titled("Lift (computeLift)").locator(".crl-chart svg").count()) === 1 &&
      (await text(titled("Lift (computeLift)").locator('[data-field="lift"]'))) === "15%",
  );
  check(
    "real audit log renders verified with a signed head",
    (await text(titled("Audit (real log)").locator('[data-field="chain"]'))).startsWith("✓ chain verified (2 entries)") &&
      (await titled("Audit (real log)").locator('.crl-heads [data-status="ok"]').count()) === 1,
  );

  // budget: the spending cell ran once (collaboration ε 3 − 0.5)
  const spendIndex = count - 1;
  const remainingIn = (loc) => text(loc.locator('.crl-gauge[data-scope="collaboration"] [data-field="remaining"]').first());
  const budgetOut = out(spendIndex).locator('.crl-view[data-kind="budget"]');
  check("budget gauge: remaining after one charge", (await remainingIn(budgetOut)) === "remaining ε 2.5", await remainingIn(budgetOut));
  check(
    "budget gauge: spent after one charge",
    (await text(budgetOut.locator('.crl-gauge[data-scope="collaboration"] [data-field="spent"]'))) === "spent ε 0.5",
  );
  const historyName = budgetOut.locator(".crl-history .crl-template").first();
  check(
    "budget history: template shown by name, hash on hover",
    (await text(historyName)) === "lift" &&
      ((await historyName.getAttribute("title").catch(() => "")) ?? "").startsWith("template 9f2c4e1a"),
    await text(historyName),
  );
  await shot(budgetOut, "budget");

  // sidebar
  const tab = page.locator('.jp-SideBar li[data-id="cleanroom-lab-budget"]').first();
  await tab.click();
  const sidebar = page.locator("#cleanroom-lab-budget");
  await sidebar.waitFor({ state: "visible", timeout: 10_000 }).catch(() => {});
  const sideRemaining1 = await remainingIn(sidebar);
  check("sidebar shows the latest budget", sideRemaining1 === "remaining ε 2.5", sideRemaining1);
  await shot(sidebar, "sidebar-before");

  t = Date.now();
  await runCell(spendIndex);
  await page
    .waitForFunction(
      () => {
        const el = document.querySelector('#cleanroom-lab-budget .crl-gauge[data-scope="collaboration"] [data-field="remaining"]');
        return (el?.textContent ?? "").includes("ε 2") && !(el?.textContent ?? "").includes("2.5");
      },
      null,
      { timeout: 15_000 },
    )
    .catch(() => {});
  const sideRemaining2 = await remainingIn(sidebar);
  check(
    "running the spending cell again changes the sidebar's remaining budget",
    sideRemaining2 === "remaining ε 2" && sideRemaining2 !== sideRemaining1,
    `${sideRemaining1} → ${sideRemaining2} (${since(t)})`,
  );
  check(
    "sidebar party budget updated too",
    (await text(sidebar.locator('.crl-gauge[data-subject="retailer"] [data-field="remaining"]'))) === "remaining ε 1",
  );
  await shot(sidebar, "sidebar-after");
  await page.screenshot({ path: join(SHOTS, "lab.png") });

  // Dark theme: the views and the sidebar follow JupyterLab's CSS variables.
  const axisFill = () =>
    lift
      .locator(".crl-chart svg .role-axis-label text")
      .first()
      .getAttribute("fill")
      .catch(() => null);
  const lightFill = await axisFill();
  t = Date.now();
  await page.locator(".lm-MenuBar-itemLabel", { hasText: /^Settings$/ }).click();
  await page
    .locator(".lm-Menu-itemLabel", { hasText: /^Theme$/ })
    .first()
    .hover();
  await page
    .locator(".lm-Menu-itemLabel", { hasText: /^JupyterLab Dark$/ })
    .first()
    .click();
  const dark = await page
    .waitForFunction(() => document.body.getAttribute("data-jp-theme-light") === "false", null, { timeout: 15_000 })
    .then(
      () => true,
      () => false,
    );
  check("switches to the dark theme", dark, since(t));
  if (dark) {
    await page.waitForTimeout(500);
    const bg = await budgetOut.evaluate((el) => getComputedStyle(el).color);
    check("views follow the theme (light text in dark mode)", /rgba?\((2[0-9]{2}|1[5-9][0-9]),/.test(bg), bg);
    await page
      .waitForFunction(
        ([sel, before]) => document.querySelector(sel)?.getAttribute("fill") !== before,
        ['.crl-view[data-kind="lift"] .crl-chart svg .role-axis-label text', lightFill],
        { timeout: 10_000 },
      )
      .catch(() => {});
    const darkFill = await axisFill();
    check(
      "lift chart is redrawn in the dark theme's colours",
      !!lightFill && !!darkFill && darkFill !== lightFill,
      `${lightFill} → ${darkFill}`,
    );
    await shot(lift, "lift-dark");
    await shot(budgetOut, "budget-dark");
    await shot(sidebar, "sidebar-dark");
    await page.screenshot({ path: join(SHOTS, "lab-dark.png") });
  }

  // The text/html fallback: the same notebook executed by nbconvert and opened as static HTML.
  t = Date.now();
  const state = join(root, ".jupyter-state");
  const conv = spawnSync(
    "/usr/bin/jupyter",
    ["nbconvert", "--to", "html", "--execute", "--ExecutePreprocessor.timeout=120", "--output", "views-static", join(root, "views.ipynb")],
    {
      cwd: root,
      timeout: 180_000,
      encoding: "utf8",
      env: {
        ...process.env,
        JUPYTER_PATH: join(REPO, "kernel-lib/jupyter"),
        JUPYTER_RUNTIME_DIR: join(state, "runtime"),
        JUPYTER_DATA_DIR: join(state, "data"),
        JUPYTER_CONFIG_DIR: join(state, "config"),
        PYDEVD_DISABLE_FILE_VALIDATION: "1",
      },
    },
  );
  const htmlFile = join(root, "views-static.html");
  check(
    "nbconvert executes the notebook to HTML",
    conv.status === 0 && existsSync(htmlFile),
    conv.status === 0 ? since(t) : (conv.stderr ?? "").split("\n").slice(-3).join(" | "),
  );
  if (existsSync(htmlFile)) {
    const staticPage = await ctx.newPage();
    await staticPage.goto(`file://${htmlFile}`, { waitUntil: "domcontentloaded", timeout: 30_000 });
    const kinds = await staticPage.$$eval("[data-cleanroom-kind]", (els) =>
      [...new Set(els.map((e) => e.getAttribute("data-cleanroom-kind")))].sort(),
    );
    check(
      "nbconvert HTML shows the text/html fallback of every kind",
      kinds.join(",") === "attestation,audit,budget,error,lift,psi,purpose,query",
      kinds.join(","),
    );
    const fallback = staticPage.locator('[data-cleanroom-kind="query"]').first();
    check("fallback marks the suppressed row", /⊘ suppressed/.test((await fallback.textContent().catch(() => "")) ?? ""));
    await shot(fallback, "html-fallback-query");
    const liftImg = staticPage.locator('[data-cleanroom-kind="lift"] img[src^="data:image/svg+xml;base64,"]').first();
    check(
      "fallback: the lift chart is present in the HTML export (an <img>, drawn)",
      (await liftImg.evaluate((img) => img.complete && img.naturalWidth > 0).catch(() => false)) === true,
    );
    await shot(staticPage.locator('[data-cleanroom-kind="lift"]').first(), "html-fallback-lift");
    await shot(staticPage.locator('[data-cleanroom-kind="budget"]').last(), "html-fallback-budget");
    await staticPage.close();
  }

  await newNotebookChecks(page, root);
  await liveLoopChecks(page);
  await roomPanelChecks(page, root);

  check(
    "no browser console errors during the whole run",
    consoleErrors.length === 0,
    consoleErrors.length ? `${consoleErrors.length}: ${consoleErrors.slice(0, 5).join(" | ")}` : "",
  );
}

/**
 * The notebook loop as a new user meets it: File → New → Notebook opens on the project kernel
 * (no kernel dialog); the kernel status is busy for exactly as long as a slow cell runs, even
 * while the lab asks the kernel for completions meanwhile; a refusal without attempt() renders
 * as "why blocked" with a one-line error; console.table keeps its box drawing.
 */
async function newNotebookChecks(page, root) {
  const sockets = [];
  page.on("websocket", (ws) => sockets.push(ws));
  let t = Date.now();
  const panels = page.locator("#jp-main-dock-panel .jp-NotebookPanel");
  const before = await panels.count();
  await page.locator(".lm-MenuBar-itemLabel", { hasText: /^File$/ }).click();
  await page.locator(".lm-Menu-itemLabel", { hasText: /^New$/ }).first().hover();
  await page
    .locator(".lm-Menu-itemLabel", { hasText: /^Notebook$/ })
    .first()
    .click();
  await page.waitForFunction((n) => document.querySelectorAll("#jp-main-dock-panel .jp-NotebookPanel").length > n, before, {
    timeout: 30_000,
  });
  const panel = panels.nth(before);
  await panel
    .locator(".jp-Cell .jp-InputArea-editor")
    .first()
    .waitFor({ state: "visible", timeout: 30_000 })
    .catch(async (e) => {
      await page.screenshot({ path: join(SHOTS, "new-notebook-failure.png") });
      throw e;
    });
  const kernelName = panel.locator(".jp-Toolbar-kernelName").first();
  const onProjectKernel = await page
    .waitForFunction((el) => /cleanroom/i.test(el?.textContent ?? ""), await kernelName.elementHandle(), { timeout: 60_000 })
    .then(
      () => true,
      () => false,
    );
  const dialog = await page.locator(".jp-Dialog").count();
  check(
    "File → New → Notebook opens on the project kernel, without a kernel dialog",
    onProjectKernel && dialog === 0,
    `kernel: ${((await kernelName.textContent().catch(() => "")) ?? "").trim()}, dialogs: ${dialog} (${since(t)})`,
  );
  if (!onProjectKernel) return;
  const status = panel.locator(".jp-NotebookPanel-toolbar [data-status]").first();
  await page
    .waitForFunction((el) => el?.getAttribute("data-status") === "idle", await status.elementHandle(), { timeout: 60_000 })
    .catch(() => {});

  const cells = panel.locator(".jp-Cell");
  /** Put `code` into the last cell (no auto-closing brackets: inserted, not typed), run it. */
  async function addAndRun(code) {
    const cell = cells.nth((await cells.count()) - 1); // pinned: Shift+Enter adds a cell below
    await cell.locator(".jp-InputArea-editor").click();
    await page.keyboard.insertText(code);
    await page.keyboard.press("Shift+Enter"); // runs it and adds a new cell below
    return cell;
  }
  const promptDone = async (cell, timeout = 60_000) =>
    page
      .waitForFunction((el) => /\[\d+\]/.test(el.querySelector(".jp-InputPrompt")?.textContent ?? ""), await cell.elementHandle(), {
        timeout,
      })
      .then(
        () => true,
        () => false,
      );

  // 1. Busy while a slow cell runs: the cell waits for a file the test creates (no timing).
  t = Date.now();
  const gate = join(root, "release-gate");
  const slow = await addAndRun(
    'import * as fs from "fs";\n' +
      'await new Promise<void>((done) => { const t = setInterval(() => { if (fs.existsSync("release-gate")) { clearInterval(t); done(); } }, 50); });\n' +
      '"released"',
  );
  const busy = await page
    .waitForFunction((el) => el?.getAttribute("data-status") === "busy", await status.elementHandle(), { timeout: 30_000 })
    .then(
      () => true,
      () => false,
    );
  // Meanwhile the lab talks to the kernel: a completion request from the next cell (Tab).
  const next = cells.nth((await cells.count()) - 1);
  await next.locator(".jp-InputArea-editor").click();
  await page.keyboard.insertText("Math.ab");
  const replied = new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), 20_000);
    for (const ws of sockets)
      ws.on("framereceived", ({ payload }) => {
        if (String(payload).includes('"complete_reply"')) {
          clearTimeout(timer);
          resolve(true);
        }
      });
  });
  await page.keyboard.press("Tab");
  const completer = await replied; // the kernel answered the completion request during the cell
  await page.keyboard.press("Escape");
  const stillBusy = (await status.getAttribute("data-status")) === "busy";
  const statusBar = (
    (await page
      .locator(".jp-StatusBar-TextItem", { hasText: /\| (Idle|Busy)/ })
      .first()
      .textContent()
      .catch(() => "")) ?? ""
  ).trim();
  check(
    "kernel status is busy while a slow cell runs, also after the kernel answered a completion request",
    busy && completer && stillBusy && !/Idle/.test(statusBar),
    `busy: ${busy}, complete_reply received: ${completer}, after completion: ${await status.getAttribute("data-status")}, status bar: "${statusBar}"`,
  );
  writeFileSync(gate, "");
  const ended = await promptDone(slow);
  const idle = await page
    .waitForFunction((el) => el?.getAttribute("data-status") === "idle", await status.elementHandle(), { timeout: 30_000 })
    .then(
      () => true,
      () => false,
    );
  check("kernel status is idle after the slow cell ends", ended && idle, since(t));
  await page.keyboard.press("Escape");
  // clear the completion text typed into the next cell
  await next.locator(".jp-InputArea-editor").click();
  await page.keyboard.press("Control+a");
  await page.keyboard.press("Delete");

  // 2. A refusal without attempt(): the "why blocked" view and a one-line error, no stack.
  t = Date.now();
  const refusedCell = await addAndRun(
    [
      'import { openLab, addParty, liftTemplate, cleanRoomQuery } from "@cleanroom-lab/kernel";',
      'const lab = openLab({ store: ":memory:", rng: { seed: "e2e" } });',
      'addParty(lab, { party: "advertiser" }); addParty(lab, { party: "retailer" });',
      'await cleanRoomQuery(lab, { template: liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.5" }),',
      '  params: { startDay: 0, endDay: 27 }, party: "advertiser", analyst: "bo", purpose: "research" })',
    ].join("\n"),
  );
  await promptDone(refusedCell);
  const why = refusedCell.locator('.crl-view[data-kind="query"] .crl-step-refused').first();
  const whyStep = await why.getAttribute("data-step", { timeout: 20_000 }).catch(() => null);
  const errText = (
    (await refusedCell
      .locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
      .last()
      .textContent()
      .catch(() => "")) ?? ""
  ).trim();
  check('a refusal without attempt() renders as "why blocked"', whyStep === "purpose", `refused at: ${whyStep} (${since(t)})`);
  check(
    "… with a one-line error and no library stack frames",
    /^GRANT_INVALID: no unexpired purpose grant/.test(errText) && !errText.includes("\n") && !/dist\/|\bat /.test(errText),
    JSON.stringify(errText.slice(0, 160)),
  );
  await shot(refusedCell, "query-refused-uncaught");

  // 3. console.table keeps its box drawing (the text and its monospace layout).
  const tableCell = await addAndRun(
    'console.table([{ party: "advertiser", rows: 4000, "ε": 0.5 }, { party: "retailer", rows: 12000, "ε": 1 }])',
  );
  await promptDone(tableCell);
  const pre = tableCell.locator(".jp-OutputArea-output pre").first();
  const tableText = (await pre.textContent().catch(() => "")) ?? "";
  const lines = tableText.trimEnd().split("\n");
  // Every line of a box drawing has the same width in characters and in pixels.
  const widths = await pre
    .evaluate((el) => {
      const probe = document.createElement("span");
      probe.style.whiteSpace = "pre";
      el.appendChild(probe);
      const w = el.textContent
        .trimEnd()
        .split("\n")
        .map((line) => {
          probe.textContent = line;
          return probe.getBoundingClientRect().width;
        });
      probe.remove();
      return w;
    })
    .catch(() => []);
  const sameChars = lines.length >= 5 && lines.every((l) => [...l].length === [...lines[0]].length);
  const samePixels = widths.length >= 5 && Math.max(...widths) - Math.min(...widths) < 1;
  const wraps = await pre.evaluate((el) => el.scrollWidth <= el.clientWidth || getComputedStyle(el).whiteSpace).catch(() => null);
  // … and its vertical lines join: the line box is no taller than the glyphs (≈ 1.2 em).
  const lineHeight = await pre
    .evaluate((el) => parseFloat(getComputedStyle(el).lineHeight) / parseFloat(getComputedStyle(el).fontSize))
    .catch(() => NaN);
  check(
    "console.table keeps its box drawing (lines equally wide in characters and pixels, vertical lines joined)",
    /^┌/.test(lines[0] ?? "") && sameChars && samePixels && lineHeight <= 1.2,
    `${lines.length} lines, pixel widths ${[...new Set(widths.map((w) => Math.round(w)))].join("/")}, line height ${lineHeight.toFixed(3)} em, fits: ${wraps}`,
  );
  await shot(tableCell, "console-table");
}

/**
 * Issue 19, the live loop, in the notebook opened by newNotebookChecks: a PSI shows a progress
 * bar that advances in place while the kernel status stays busy, and ends at 100% when the
 * kernel goes idle; so does a 150,000-row upload, through its phases; the Privacy budget sidebar equals the room's ledger after every spending
 * cell — also one that never calls budget() — and names datasets owner/name.
 */
async function liveLoopChecks(page) {
  const panel = page.locator("#jp-main-dock-panel .jp-NotebookPanel:visible").last();
  const cells = panel.locator(".jp-Cell");
  const status = panel.locator(".jp-NotebookPanel-toolbar [data-status]").first();
  const prompt = (cell) =>
    cell
      .locator(".jp-InputPrompt")
      .textContent()
      .catch(() => "");
  async function addAndRun(code) {
    const cell = cells.nth((await cells.count()) - 1);
    await cell.locator(".jp-InputArea-editor").click();
    await page.keyboard.press("Control+a");
    await page.keyboard.press("Delete");
    await page.keyboard.insertText(code);
    await page.keyboard.press("Shift+Enter");
    return cell;
  }
  const done = async (cell, timeout = 120_000) =>
    page
      .waitForFunction((el) => /\[\d+\]/.test(el.querySelector(".jp-InputPrompt")?.textContent ?? ""), await cell.elementHandle(), {
        timeout,
      })
      .then(
        () => true,
        () => false,
      );
  const sidebar = page.locator("#cleanroom-lab-budget");

  let t = Date.now();
  const setup = await addAndRun(
    [
      "import { openLab, addParty, upload, declarePurpose, approveTemplate, cleanRoomQuery, budget, psiMatch,",
      '  generateStudy, liftSchemas, liftRules, liftTemplate } from "@cleanroom-lab/kernel";',
      'const liveStudy = generateStudy({ seed: "e2e-live", advertiserRows: 3000, overlap: 0.7, holdoutShare: 0.3, baseConversionRate: 0.2, liftPct: 30 });',
      'const liveLab = openLab({ store: ":memory:", room: "live-e2e", rng: { seed: "e2e-live" }, budget: { epsilon: 4 } });',
      'addParty(liveLab, { party: "advertiser" }); addParty(liveLab, { party: "retailer" });',
      '"ready"',
    ].join("\n"),
  );
  check("live loop: setup cell runs", await done(setup), since(t));

  // 1. PSI: the bar advances while the kernel is busy; 100% when it ends.
  t = Date.now();
  const psiCell = await addAndRun(
    'const liveMatch = await psiMatch(liveLab, { a: { party: "advertiser", rows: liveStudy.exposures },\n' +
      '  b: { party: "retailer", rows: liveStudy.purchases } });\n1',
  );
  // samples a cell's progress bar (state, done/total, phase) and the kernel status until the cell ends
  async function watchBar(cell, bar) {
    const samples = [];
    const deadline = Date.now() + 180_000;
    while (Date.now() < deadline) {
      const [state, d, total, phase, kernel, p] = await Promise.all([
        bar.getAttribute("data-state", { timeout: 200 }).catch(() => null),
        bar.getAttribute("data-done", { timeout: 200 }).catch(() => null),
        bar.getAttribute("data-total", { timeout: 200 }).catch(() => null),
        bar.getAttribute("data-phase", { timeout: 200 }).catch(() => null),
        status.getAttribute("data-status").catch(() => null),
        prompt(cell),
      ]);
      if (state) samples.push({ state, done: Number(d), total: Number(total), phase, kernel });
      if (/\[\d+\]/.test(p ?? "")) break;
      await page.waitForTimeout(100);
    }
    return samples;
  }
  const bar = psiCell.locator(".crl-progress").first();
  const samples = await watchBar(psiCell, bar);
  const running = samples.filter((s) => s.state === "running");
  const advancing = new Set(running.map((s) => s.done)).size >= 2;
  check(
    "progress bar advances in place while PSI runs, the kernel busy all along",
    advancing && running.every((s) => s.kernel === "busy") && (await psiCell.locator(".crl-progress").count()) === 1,
    `${running.length} running samples, done values ${[...new Set(running.map((s) => s.done))].join(",")}, ` +
      `kernel ${[...new Set(running.map((s) => s.kernel))].join("/")} (${since(t)})`,
  );
  const finalPct = await bar
    .locator('[role="progressbar"]')
    .getAttribute("aria-valuenow")
    .catch(() => null);
  const idle = await page
    .waitForFunction((el) => el?.getAttribute("data-status") === "idle", await status.elementHandle(), { timeout: 30_000 })
    .then(
      () => true,
      () => false,
    );
  check(
    "progress bar ends at 100% (done) and the kernel goes idle",
    (await bar.getAttribute("data-state").catch(() => null)) === "done" && finalPct === "100" && idle,
    `state ${await bar.getAttribute("data-state").catch(() => null)}, ${finalPct}%, idle ${idle}`,
  );
  // the whole output: the bar's title (task), its teaching label and the bar
  await shot(
    psiCell
      .locator(".jp-OutputArea-output")
      .filter({ has: page.locator(".crl-progress") })
      .first(),
    "progress-done",
  );

  // 1b. A large upload: asynchronous, in steps, with its own bar (phases, in place) by default.
  t = Date.now();
  const bulkCell = await addAndRun(
    [
      'const bulkLab = openLab({ store: ":memory:", room: "bulk-e2e", rng: { seed: "e2e-bulk" } });',
      'addParty(bulkLab, { party: "advertiser" });',
      'const bulkRows = Array.from({ length: 150000 }, (_, i) => ({ join_key: `k${i}`, group: i % 2 ? "test" : "control", reached: 1,',
      '  impressions: 1 + (i % 5), first_exposure_day: i % 28, region: ["north", "south", "east", "west"][i % 4], age_band: "25-34", channel: "search" }));',
      'const bulk = await upload(bulkLab, { party: "advertiser", name: "bulk", rows: bulkRows, schema: liftSchemas().exposures,',
      '  purposes: ["measurement"] });',
      "bulk.rows",
    ].join("\n"),
  );
  const upBar = bulkCell.locator(".crl-progress").first();
  const upSamples = await watchBar(bulkCell, upBar);
  const upRunning = upSamples.filter((s) => s.state === "running");
  const upPhases = [...new Set(upRunning.map((s) => s.phase))];
  check(
    "a large upload shows its progress bar advancing in place through its phases, the kernel busy all along",
    new Set(upRunning.map((s) => s.done)).size >= 2 &&
      upPhases.length >= 2 &&
      upRunning.every((s) => s.kernel === "busy") &&
      (await bulkCell.locator(".crl-progress").count()) === 1,
    `${upRunning.length} running samples, phases ${upPhases.join(" → ")}, kernel ${[...new Set(upRunning.map((s) => s.kernel))].join("/")} (${since(t)})`,
  );
  check(
    "the upload bar ends done at 100% and the receipt follows it",
    (await upBar.getAttribute("data-state").catch(() => null)) === "done" &&
      (await text(bulkCell.locator(".jp-OutputArea-output").last())).includes("150000"),
    `state ${await upBar.getAttribute("data-state").catch(() => null)}`,
  );
  await shot(bulkCell.locator(".jp-Cell-outputArea").first(), "progress-upload");

  // 2. Spending cells: the sidebar equals the ledger after each, also without budget().
  const upload2 = await addAndRun(
    [
      "const liveSchemas = liftSchemas();",
      'await upload(liveLab, { party: "advertiser", name: "exposures", rows: liveMatch.joinedA!, schema: liveSchemas.exposures,',
      '  purposes: ["measurement"], rule: liftRules(5).exposures });',
      'await upload(liveLab, { party: "retailer", name: "purchases", rows: liveMatch.joinedB!, schema: liveSchemas.purchases,',
      '  purposes: ["measurement"], rule: liftRules(5).purchases });',
      'declarePurpose(liveLab, { party: "advertiser", analyst: "bo", purpose: "measurement", justification: "e2e live budget" });',
      'const liveT = (eps: string) => { const t = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: eps, threshold: 5 });',
      '  approveTemplate(liveLab, { party: "retailer", template: t }); approveTemplate(liveLab, { party: "advertiser", template: t }); return t; };',
      "const liveQuery = (eps: string) => cleanRoomQuery(liveLab, { template: liveT(eps), params: { startDay: 0, endDay: 27 },",
      '  party: "advertiser", analyst: "bo", purpose: "measurement" });',
      "// what the ledger says, as text (the budget() payload's amounts)",
      'const ledgerNow = () => (budget(liveLab) as any)[Symbol.for("jupyter.mimebundle")]()["application/vnd.cleanroom-lab.v1+json"].budgets',
      '  .filter((b: any) => b.scope !== "dataset").map((b: any) => `${b.scope}:${b.subject}=${b.spent}`).join(" ");',
      '"uploaded"',
    ].join("\n"),
  );
  await done(upload2);
  const gaugeSpent = (room) =>
    sidebar.locator(`[data-room="${room}"] .crl-gauge`).evaluateAll((els) =>
      els
        .filter((g) => g.getAttribute("data-scope") !== "dataset")
        .map(
          (g) =>
            `${g.getAttribute("data-scope")}:${g.getAttribute("data-subject")}=${g.querySelector('[role="meter"]')?.getAttribute("aria-valuenow")}`,
        )
        .join(" "),
    );
  const ledgerOut = async () => {
    const cell = await addAndRun("console.log(ledgerNow())");
    await done(cell);
    return text(cell.locator(".jp-OutputArea-output").last());
  };
  const waitSidebar = (room, prev) =>
    page
      .waitForFunction(
        ([r, before]) => {
          const g = [...document.querySelectorAll(`#cleanroom-lab-budget [data-room="${r}"] .crl-gauge`)]
            .filter((x) => x.getAttribute("data-scope") !== "dataset")
            .map(
              (x) =>
                `${x.getAttribute("data-scope")}:${x.getAttribute("data-subject")}=${x.querySelector('[role="meter"]')?.getAttribute("aria-valuenow")}`,
            )
            .join(" ");
          return g !== "" && g !== before;
        },
        [room, prev],
        { timeout: 20_000 },
      )
      .catch(() => {});
  let prev = await gaugeSpent("live-e2e");
  // (a) a spending cell that also shows budget(), as notebook 02 does
  const spend1 = await addAndRun('await liveQuery("0.5");\nbudget(liveLab)');
  await done(spend1);
  await waitSidebar("live-e2e", prev);
  const side1 = await gaugeSpent("live-e2e");
  const ledger1 = await ledgerOut();
  check(
    "sidebar equals the ledger after a spending cell that shows budget()",
    side1 !== "" && side1 === ledger1,
    `${side1} | ledger ${ledger1}`,
  );
  // (b) a spending cell that never calls budget()
  prev = side1;
  const spend2 = await addAndRun('await liveQuery("0.25");\n"spent again"');
  await done(spend2);
  await waitSidebar("live-e2e", prev);
  const side2 = await gaugeSpent("live-e2e");
  const ledger2 = await ledgerOut();
  check(
    "sidebar equals the ledger after a spending cell that does not call budget()",
    side2 === ledger2 && side2 !== side1,
    `${side1} → ${side2} | ledger ${ledger2}`,
  );
  await checkDatasetNamesAndWrap("sidebar", sidebar, sidebar.locator('[data-room="live-e2e"]'));
  await shot(sidebar, "sidebar-live");
}

/** A locator's text with whitespace runs collapsed ("" if it never appears). */
const text = async (loc) => ((await loc.textContent({ timeout: 10_000 }).catch(() => null)) ?? "").replace(/\s+/g, " ").trim();

/**
 * A budget panel (the sidebar, or a room of the Room panel) names dataset budgets owner/name,
 * never by fingerprint, and its text wraps instead of overflowing sideways.
 */
async function checkDatasetNamesAndWrap(what, panel, gauges) {
  const names = await gauges
    .locator('.crl-gauge[data-scope="dataset"]')
    .evaluateAll((els) => els.map((e) => e.getAttribute("data-subject")).sort());
  check(
    `${what} names dataset budgets owner/name, not fingerprints`,
    names.join(",") === "advertiser/exposures,retailer/purchases" && !(await text(panel)).includes("sha256"),
    names.join(","),
  );
  const overflow = await panel.evaluate((el) => el.scrollWidth - el.clientWidth).catch(() => -1);
  check(`${what} text wraps (no horizontal overflow)`, overflow === 0, `overflow ${overflow}px`);
}

/** Start scripts/room-server.mjs (a child process, killed by pid at cleanup); resolves with its room URL. */
function startRoomServer(store) {
  const proc = spawn(
    process.execPath,
    [join(REPO, "scripts/room-server.mjs"), "--store", store, "--port", "0", "--room", "e2e-room", "--epsilon", "3"],
    {
      cwd: REPO,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  cleanups.push(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  });
  let err = "";
  proc.stderr.on("data", (d) => (err += d));
  return new Promise((res, rej) => {
    let buf = "";
    const timer = setTimeout(() => rej(new Error(`room server did not listen within 30 s: ${err}`)), 30_000);
    proc.stdout.on("data", (d) => {
      buf += d;
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const e = JSON.parse(line);
          if (e.event === "listening") {
            clearTimeout(timer);
            res({ proc, url: e.url });
          }
        } catch {
          /* not a JSON line */
        }
      }
    });
    proc.once("exit", (c) => rej(new Error(`room server exited (${c}) before listening: ${err}`)));
  });
}

/** Spent per non-dataset budget, straight from the room server's SQLite ledger (what the operator's file says). */
function serverLedger(store) {
  const Database = createRequire(join(REPO, "kernel-lib/package.json"))("better-sqlite3");
  const db = new Database(store, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare("SELECT scope, subject, spent_json FROM dp_budgets WHERE scope != 'dataset' ORDER BY scope, subject").all();
    return rows
      .map((r) => {
        const e = JSON.parse(r.spent_json).epsilon;
        return `${r.scope}:${r.subject}=${e ? +(Number(e.num) / Number(e.den)).toFixed(6) : "?"}`;
      })
      .sort()
      .join(" ");
  } finally {
    db.close();
  }
}

/**
 * The Room panel: the test starts a room server process; the notebook's kernel joins it as the
 * advertiser and the retailer (each with its own key file). Before the retailer accepts, the
 * panel shows the pending collaboration waiting for it; after a query, it shows the members with
 * their abilities and the budget equal to the server's ledger file — refreshed by the kernel
 * after the cell, with no code run by the panel.
 */
async function roomPanelChecks(page, root) {
  const panel = page.locator("#jp-main-dock-panel .jp-NotebookPanel:visible").last();
  const cells = panel.locator(".jp-Cell");
  async function addAndRun(code) {
    const cell = cells.nth((await cells.count()) - 1);
    await cell.locator(".jp-InputArea-editor").click();
    await page.keyboard.press("Control+a");
    await page.keyboard.press("Delete");
    await page.keyboard.insertText(code);
    await page.keyboard.press("Shift+Enter");
    const ok = await page
      .waitForFunction((el) => /\[\d+\]/.test(el.querySelector(".jp-InputPrompt")?.textContent ?? ""), await cell.elementHandle(), {
        timeout: 120_000,
      })
      .then(
        () => true,
        () => false,
      );
    return { cell, ok };
  }
  let t = Date.now();
  const store = join(root, "room.db");
  const server = await startRoomServer(store);
  check("room server process started by the test", /^cleanroom:\/\/127\.0\.0\.1:\d+\/e2e-room#[0-9a-f]{64}$/.test(server.url), since(t));

  const tab = page.locator('.jp-SideBar li[data-id="cleanroom-lab-room"]').first();
  check("the Room panel has a tab beside the Privacy budget sidebar", (await tab.count()) === 1);
  await tab.click().catch(() => {});
  const roomPanel = page.locator("#cleanroom-lab-room");
  await roomPanel.waitFor({ state: "visible", timeout: 10_000 }).catch(() => {});

  t = Date.now();
  const join1 = await addAndRun(
    [
      'import { createIdentity, joinRoom, createCollaboration, acceptCollaboration } from "@cleanroom-lab/kernel";',
      `const ROOM_URL = ${JSON.stringify(server.url)};`,
      `const advId = createIdentity({ name: "advertiser", file: ${JSON.stringify(join(root, "advertiser.key"))} });`,
      `const retId = createIdentity({ name: "retailer", file: ${JSON.stringify(join(root, "retailer.key"))} });`,
      'const adv = await joinRoom(ROOM_URL, { as: "advertiser", identity: advId });',
      'const ret = await joinRoom(ROOM_URL, { as: "retailer", identity: retId });',
      "await createCollaboration(adv, { description: 'e2e lift study', members: [",
      '  { name: "advertiser", publicKey: advId.publicKey, abilities: ["own", "query", "receive"] },',
      '  { name: "retailer", publicKey: retId.publicKey, abilities: ["own"] }] });',
      "await acceptCollaboration(adv);",
      '"joined"',
    ].join("\n"),
  );
  check("a notebook joins the room server (two members, own key files)", join1.ok, since(t));
  const retBlock = roomPanel.locator('[data-room="e2e-room"][data-member="retailer"]');
  await retBlock.waitFor({ state: "attached", timeout: 20_000 }).catch(() => {});
  const missing = await text(retBlock.locator('[data-field="pending"] [data-field="missing"]'));
  check("Room panel: the pending collaboration waits for the retailer", missing === "waiting for: retailer", missing);
  const fp = await text(retBlock.locator('[data-field="fingerprint"]'));
  const pinned = createRequire(join(REPO, "kernel-lib/package.json"))("./dist/server/identity.js").fingerprintOf(server.url.split("#")[1]);
  check("Room panel: the server URL and the pinned key's fingerprint", fp === pinned, `${fp} vs ${pinned}`);

  t = Date.now();
  const spend = await addAndRun(
    [
      "await acceptCollaboration(ret);",
      "const rs = liftSchemas();",
      'await upload(adv, { party: "advertiser", name: "exposures", rows: liveMatch.joinedA!, schema: rs.exposures,',
      '  purposes: ["measurement"], rule: liftRules(5).exposures });',
      'await upload(ret, { party: "retailer", name: "purchases", rows: liveMatch.joinedB!, schema: rs.purchases,',
      '  purposes: ["measurement"], rule: liftRules(5).purchases });',
      'const rt = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.25", threshold: 5 });',
      'await approveTemplate(adv, { party: "advertiser", template: rt }); await approveTemplate(ret, { party: "retailer", template: rt });',
      'await declarePurpose(adv, { party: "advertiser", analyst: "bo", purpose: "measurement", justification: "e2e room panel" });',
      'await cleanRoomQuery(adv, { template: rt, params: { startDay: 0, endDay: 27 }, party: "advertiser", analyst: "bo", purpose: "measurement" });',
      '"queried"',
    ].join("\n"),
  );
  check("the members accept, upload, approve and query through the server", spend.ok, since(t));
  // the panel refreshes after the cell: wait for the budget gauges
  await page
    .waitForFunction(
      () =>
        document.querySelectorAll('#cleanroom-lab-room [data-room="e2e-room"][data-member="retailer"] [data-field="budget"] .crl-gauge')
          .length > 0,
      null,
      { timeout: 20_000 },
    )
    .catch(() => {});
  const members = await retBlock
    .locator('[data-field="members"] li')
    .evaluateAll((els) => els.map((e) => `${e.getAttribute("data-member")}:${e.getAttribute("data-accepted")}`));
  check("Room panel shows the members, each accepted (verified)", members.join(",") === "advertiser:true,retailer:true", members.join(","));
  const abilities = await text(retBlock.locator('[data-field="members"] [data-member="advertiser"]'));
  check("Room panel names abilities", abilities.includes("data owner, can query, receives results"), abilities);
  const approval = await retBlock
    .locator(".crl-room-approval")
    .first()
    .getAttribute("data-approved")
    .catch(() => null);
  const signed = await text(retBlock.locator('.crl-room-approval [data-field="verified"]').first());
  check(
    "Room panel: the template approved, both signatures verified",
    approval === "true" && signed === "signed (verified): advertiser, retailer",
    `${approval} ${signed}`,
  );
  const shown = (
    await retBlock
      .locator('[data-field="budget"] .crl-gauge')
      .evaluateAll((els) =>
        els
          .filter((g) => g.getAttribute("data-scope") !== "dataset")
          .map(
            (g) =>
              `${g.getAttribute("data-scope")}:${g.getAttribute("data-subject")}=` +
              `${+Number(g.querySelector('[role="meter"]')?.getAttribute("aria-valuenow")).toFixed(6)}`,
          ),
      )
  )
    .sort()
    .join(" ");
  const ledger = serverLedger(store);
  check(
    "Room panel budget equals the room server's ledger",
    shown !== "" && shown === ledger && ledger.split(" ").some((x) => Number(x.split("=")[1]) > 0),
    `${shown} | ledger ${ledger}`,
  );
  await checkDatasetNamesAndWrap("Room panel", roomPanel, retBlock.locator('[data-field="budget"]'));
  await shot(roomPanel, "room-panel");
  await page.screenshot({ path: join(SHOTS, "lab-room.png") });
  await addAndRun("adv.close(); ret.close();\n'closed'");
  server.proc.kill("SIGKILL");
}

main().then(
  () => finish(),
  async (e) => {
    console.error(`e2e: ${e instanceof Error ? (e.stack ?? e.message) : e}`);
    check("e2e run completed", false, e instanceof Error ? e.message.split("\n")[0] : String(e));
    await finish(1);
  },
);
