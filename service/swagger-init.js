// Starts Swagger UI on /docs. A file of its own, not an inline script, so a
// same-origin Content-Security-Policy (script-src 'self') can cover the docs too.
"use strict";
window.ui = SwaggerUIBundle({
  url: new URL("openapi.json", document.baseURI).href,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null, // never ask validator.swagger.io: the docs work offline
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
