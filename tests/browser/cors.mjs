// Auth0's Hello World single-page apps run on http://localhost:4040 and call
// the API with fetch and a token. This serves such a page from that origin
// and from another one, and has Chromium call the API from each: the client
// origin reads the bodies (and a 401's challenge); the other is blocked by CORS.
//
// Environment: API (http://127.0.0.1:PORT), READER_TOKEN (read:messages),
// ADMIN_TOKEN (read:admin-messages), OUT_DIR.
import http from "node:http";

import { check, required, run, watch } from "./chromium.mjs";

const api = required("API");
const readerToken = required("READER_TOKEN");
const adminToken = required("ADMIN_TOKEN");
const outDir = required("OUT_DIR");

// The single-page app: `callApi` runs in the page, as an SPA's code would.
const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Hello World SPA</title></head>
<body><h1>Hello World SPA</h1><pre id="log"></pre>
<script>
async function callApi(api, path, token) {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  try {
    const response = await fetch(api + path, { headers });
    const result = {
      path,
      status: response.status,
      challenge: response.headers.get("WWW-Authenticate"),
      body: await response.json(),
    };
    document.getElementById("log").textContent += JSON.stringify(result) + "\\n";
    return result;
  } catch (err) {
    const result = { path, blocked: String(err) };
    document.getElementById("log").textContent += JSON.stringify(result) + "\\n";
    return result;
  }
}
</script></body></html>`;

/** Serves PAGE on 127.0.0.1:`port` (0: any free port); resolves to the port. */
function serve(port) {
  const server = http.createServer((request, response) => {
    response.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    response.end(PAGE);
  });
  return new Promise((resolve, reject) => {
    server.once("error", (err) =>
      reject(new Error(`cannot serve the page on port ${port}: ${err.message}`)),
    );
    server.listen(port, "127.0.0.1", () => resolve({ server, port: server.address().port }));
  });
}

/** Loads the page from `origin` and makes the calls; returns their results. */
async function callsFrom(browser, origin, report) {
  const page = await browser.newPage();
  // The 403 and the 401 below are asked for; Chromium logs them.
  watch(page, report, /status of 40[13] /);
  await page.goto(`${origin}/`);
  const calls = [
    ["/api/private-scoped", readerToken],
    ["/api/messages/admin", adminToken],
    ["/api/messages/admin", readerToken],
    ["/api/private", null],
  ];
  const results = [];
  for (const [path, token] of calls) {
    results.push(await page.evaluate(([a, p, t]) => callApi(a, p, t), [api, path, token]));
  }
  const name = new URL(origin).port === "4040" ? "spa-client-origin" : "spa-other-origin";
  await page.screenshot({ path: `${outDir}/${name}.png` });
  await page.close();
  return results;
}

await run(async (browser, report) => {
  const client = await serve(4040);
  const other = await serve(0);
  try {
    report.clientOrigin = await callsFrom(browser, "http://localhost:4040", report);
    // What the blocked calls log is expected: judge only the client origin's.
    const expectedProblems = report.problems.length;
    report.otherOrigin = await callsFrom(browser, `http://127.0.0.1:${other.port}`, report);
    report.otherOriginConsole = report.problems.splice(expectedProblems);

    const [scoped, admin, denied, anonymous] = report.clientOrigin;
    check(scoped.status === 200 && scoped.body.message.includes("read:messages"), `scoped: ${JSON.stringify(scoped)}`);
    check(admin.status === 200 && admin.body.text === "This is an admin message.", `admin: ${JSON.stringify(admin)}`);
    check(denied.status === 403 && denied.body.error === "insufficient_scope", `denied: ${JSON.stringify(denied)}`);
    check(
      anonymous.status === 401 && /resource_metadata="http:\/\/[^"]+\/\.well-known\/oauth-protected-resource"/.test(anonymous.challenge || ""),
      `the 401's challenge is readable and names the metadata: ${JSON.stringify(anonymous)}`,
    );
    for (const call of report.otherOrigin) {
      check(call.blocked && !("body" in call), `another origin must be blocked: ${JSON.stringify(call)}`);
    }
    check(
      report.otherOriginConsole.some((line) => line.includes("CORS")),
      `the browser names CORS as the reason: ${report.otherOriginConsole.join("; ")}`,
    );
    check(report.problems.length === 0, `the client origin's page reported problems: ${report.problems.join("; ")}`);
  } finally {
    client.server.close();
    other.server.close();
  }
});
