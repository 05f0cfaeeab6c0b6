// EntryExit console: CSRF header for htmx requests and keyboard shortcuts. No inline script
// (the Content-Security-Policy forbids it), no storage of any kind.
(function () {
  "use strict";
  var csrf = document.body.getAttribute("data-csrf");
  document.body.addEventListener("htmx:configRequest", function (event) {
    if (csrf) { event.detail.headers["X-CSRF-Token"] = csrf; }
  });

  function typing(event) {
    var tag = (event.target.tagName || "").toLowerCase();
    return tag === "input" || tag === "select" || tag === "textarea";
  }

  var pendingG = false;
  document.addEventListener("keydown", function (event) {
    if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var key = event.key;
    if (pendingG) {
      pendingG = false;
      if (key === "f") { window.location.assign("/console/"); return; }
      if (key === "q") { window.location.assign("/console/queue"); return; }
    }
    if (key === "g") { pendingG = true; return; }

    var list = document.querySelector("[data-keyboard-list]");
    if (list && (key === "j" || key === "k")) {
      var links = Array.prototype.slice.call(list.querySelectorAll("a"));
      if (!links.length) { return; }
      var index = links.indexOf(document.activeElement);
      index = key === "j" ? Math.min(links.length - 1, index + 1) : Math.max(0, index - 1);
      links[index].focus();
      event.preventDefault();
      return;
    }

    var select = document.getElementById("traveler");
    if (select && /^[1-9]$/.test(key)) {
      var option = select.querySelector('option[data-key="' + key + '"]');
      if (option) { select.value = option.value; select.focus(); event.preventDefault(); }
      return;
    }
    var buttons = { c: "confirmed", o: "opted_out", r: "rejected" };
    if (select && buttons[key]) {
      var button = document.querySelector('button[value="' + buttons[key] + '"]');
      if (button) { button.focus(); event.preventDefault(); }
    }
  });
})();
