// The docs page in a real browser: it loads under its CSP with no violation,
// a person pastes a token into "Authorize" and calls a protected route, and
// under `dev` a development-token button does the same. Screenshots go to
// OUT_DIR.
//
// Environment: API (http://127.0.0.1:PORT), READER_TOKEN (read:messages),
// ADMIN_TOKEN (read:admin-messages), OUT_DIR.
import { check, required, run, watch } from "./chromium.mjs";

const api = required("API");
const readerToken = required("READER_TOKEN");
const outDir = required("OUT_DIR");

/** Opens the operation `id` (tag-operationId), executes it, returns status and body. */
async function execute(page, id) {
  const block = page.locator(`#operations-${id}`);
  await block.locator(".opblock-summary-control").click();
  await block.locator("button.execute").click();
  const row = block.locator(".live-responses-table .response").first();
  await row.waitFor({ timeout: 10000 });
  const status = (await row.locator(".response-col_status").innerText()).trim();
  const body = await row.locator(".response-col_description pre").first().innerText();
  return { status, body };
}

await run(async (browser, report) => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  watch(page, report);
  const response = await page.goto(`${api}/docs`);
  report.csp = response.headers()["content-security-policy"];
  await page.locator(".opblock").first().waitFor({ timeout: 15000 });
  report.operations = await page.locator(".opblock").count();
  report.devTokens = await page.locator("#dev-tokens li").count();
  await page.screenshot({ path: `${outDir}/docs-page.png` });

  // As a person does: Authorize, paste the token, close, call the route.
  await page.locator(".auth-wrapper button.authorize").click();
  const dialog = page.locator(".modal-ux");
  await dialog.locator("input").first().fill(readerToken);
  await dialog.locator("button.authorize").click();
  await dialog.locator("button.btn-done").click();
  report.pasted = await execute(page, "quickstart-getPrivateScoped");
  check(report.pasted.status === "200", `pasted token: ${JSON.stringify(report.pasted)}`);
  check(report.pasted.body.includes("read:messages to see this"), `pasted token body: ${report.pasted.body}`);
  await page.locator("#operations-quickstart-getPrivateScoped").scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${outDir}/docs-call.png` });

  // Under `dev`: the page's own button for the admin token.
  if (report.devTokens > 0) {
    await page.locator("#dev-tokens button", { hasText: "read:admin-messages" }).click();
    report.devButton = await execute(page, "messages-getAdminMessage");
    check(report.devButton.status === "200", `dev token: ${JSON.stringify(report.devButton)}`);
    check(report.devButton.body.includes("This is an admin message."), `dev token body: ${report.devButton.body}`);
  }
  check(report.problems.length === 0, `the page reported problems: ${report.problems.join("; ")}`);
});
