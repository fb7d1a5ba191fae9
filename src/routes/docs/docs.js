// The docs page: Swagger UI on the API's own OpenAPI document and, under
// `dev`, one button per development token. Loaded from the page's own origin
// (its CSP allows no inline script).
"use strict";

(function () {
  const ui = SwaggerUIBundle({
    url: new URL("openapi.json", document.baseURI).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    tryItOutEnabled: true,
    displayRequestDuration: true,
    supportedSubmitMethods: ["get", "head"],
    // No call to the public validator: the page works offline.
    validatorUrl: null,
  });
  window.ui = ui;

  const tokens = JSON.parse(document.getElementById("dev-token-data").textContent || "null");
  if (!Array.isArray(tokens) || tokens.length === 0) {
    return;
  }
  const section = document.getElementById("dev-tokens");
  const list = section.querySelector("ul");
  const status = document.getElementById("dev-token-status");
  for (const token of tokens) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "btn";
    button.dataset.sub = token.sub;
    button.textContent = `Use ${token.label}`;
    button.addEventListener("click", () => {
      ui.preauthorizeApiKey("bearerAuth", token.token);
      status.textContent = `Authorized as ${token.sub} (${token.label}).`;
    });
    const detail = document.createElement("span");
    detail.textContent = `${token.sub}, e.g. ${token.path}`;
    const value = document.createElement("code");
    value.className = "dev-token";
    value.title = "the token (select to copy)";
    value.textContent = token.token;
    item.append(button, detail, value);
    list.append(item);
  }
  section.hidden = false;
})();
