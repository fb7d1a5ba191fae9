// Debian's Chromium, headless, driven by playwright-core (whose own browser
// downloads are not used): a fresh profile, no background traffic.
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

/** Launches Chromium; playwright gives it a new, empty profile. */
export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
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
}

/** The value of environment variable `name`, which must be set. */
export function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} must be set`);
  }
  return value;
}

/**
 * Runs `test` with a browser, printing a JSON report on success; any failure
 * prints one line and exits 1. Every Content-Security-Policy violation and
 * page error is collected on `report.problems`.
 */
export async function run(test) {
  const browser = await launch();
  const report = { problems: [] };
  try {
    await test(browser, report);
  } catch (err) {
    console.error(`FAILED: ${err.message}`);
    console.error(JSON.stringify(report, null, 2));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
  if (!process.exitCode) {
    console.log(JSON.stringify(report, null, 2));
  }
}

/**
 * Records the page's uncaught errors and console errors (CSP violations,
 * failed loads...) on `report.problems`, except those matching `expected`.
 */
export function watch(page, report, expected = null) {
  page.on("pageerror", (err) => report.problems.push(`page error: ${err.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && !(expected && expected.test(message.text()))) {
      report.problems.push(`console: ${message.text()}`);
    }
  });
}

/** Throws `message` unless `condition`. */
export function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}
