// EntryExit kiosk, not yet paired: ask for a pairing code, show it, and wait for a
// supervisor to enter it in the console. The pairing ticket is an HttpOnly cookie; this
// script never sees a secret.
(function () {
  "use strict";
  var codeElement = document.getElementById("pairing-code");
  var errorElement = document.getElementById("pairing-error");
  var POLL_MS = 1000;

  function start() {
    fetch("/kiosk/pairing", {
      method: "POST", credentials: "same-origin", headers: { "X-Requested-With": "kiosk" }
    }).then(function (response) {
      if (!response.ok) { throw new Error("status " + response.status); }
      return response.json();
    }).then(function (body) {
      errorElement.textContent = "";
      codeElement.textContent = body.code;
      window.setTimeout(poll, POLL_MS);
    }).catch(function () {
      errorElement.textContent = "Could not get a pairing code; retrying.";
      window.setTimeout(start, 10000);
    });
  }

  function poll() {
    fetch("/kiosk/pairing", { credentials: "same-origin" }).then(function (response) {
      return response.json();
    }).then(function (body) {
      if (body.state === "paired") { window.location.reload(); return; }
      if (body.state === "gone") { start(); return; }  // expired: a new code
      window.setTimeout(poll, POLL_MS);
    }).catch(function () { window.setTimeout(poll, 5 * POLL_MS); });
  }

  start();
})();
