// EntryExit kiosk: the privacy notice first, then the camera with live guidance from the
// service's quality check, an automatic capture when the face is good, and the decision in
// plain words. No inline script (strict CSP), no storage, nothing sent but camera frames
// taken while the camera screen is shown. Never shows a name, a score or a gallery photo:
// the service sends none.
(function () {
  "use strict";
  var body = document.body;
  var csrf = body.getAttribute("data-csrf");
  var noticeVersion = body.getAttribute("data-notice-version");
  var texts = JSON.parse(document.getElementById("kiosk-texts").textContent);
  var notices = JSON.parse(document.getElementById("kiosk-notices").textContent);
  var languages = Object.keys(texts);
  var language = languages[0];

  var screens = {
    notice: document.getElementById("notice-screen"),
    camera: document.getElementById("camera-screen"),
    result: document.getElementById("result-screen")
  };
  var video = document.getElementById("preview");
  var guidance = document.getElementById("guidance");
  var decision = document.getElementById("decision");

  var CHECK_WIDTH = 480;        // quality checks run on a small frame (cheap: ~20 ms)
  var CHECK_EVERY_MS = 150;
  var READY_IN_A_ROW = 2;       // two good frames in a row before the capture
  var FRAMES_PER_CAPTURE = 1;   // the capture endpoint takes a list: a burst is this number
  var RESET_AFTER_MS = 15000;
  var TRY_AGAIN_AFTER_MS = 4000;

  var stream = null;
  var checking = false;
  var readyCount = 0;
  var capturing = false;
  var resetTimer = null;
  var lastMessage = null;

  function text(key) { return (texts[language] && texts[language][key]) || texts[languages[0]][key] || ""; }

  function setLanguage(chosen) {
    language = chosen;
    document.documentElement.setAttribute("lang", chosen);
    document.title = text("title");
    Array.prototype.forEach.call(document.querySelectorAll("[data-text]"), function (element) {
      element.textContent = text(element.getAttribute("data-text"));
    });
    document.getElementById("notice-text").textContent = notices[chosen];
    Array.prototype.forEach.call(document.querySelectorAll("button.language"), function (button) {
      button.setAttribute("aria-pressed", button.getAttribute("data-language") === chosen ? "true" : "false");
    });
    if (lastMessage) { decision.textContent = lastMessage(); }
  }

  function show(name) {
    Object.keys(screens).forEach(function (key) { screens[key].hidden = key !== name; });
    var heading = screens[name].querySelector("h1, .decision");
    if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
  }

  function stopCamera() {
    checking = false;
    if (stream) { stream.getTracks().forEach(function (track) { track.stop(); }); }
    stream = null;
    video.srcObject = null;
  }

  function showNotice() {
    stopCamera();
    if (resetTimer) { window.clearTimeout(resetTimer); resetTimer = null; }
    lastMessage = null;
    decision.textContent = "";
    show("notice");
  }

  // The next traveler starts from a fresh page: the notice and lane of the policy and
  // assignment in force now, in the first language.
  function nextTraveler() { window.location.reload(); }

  function finish(messageFunction, kind) {
    stopCamera();
    lastMessage = messageFunction;
    decision.className = "decision decision-" + kind;
    show("result");
    decision.textContent = messageFunction();
    if (kind === "try_again") {
      resetTimer = window.setTimeout(startCamera, TRY_AGAIN_AFTER_MS);
    } else {
      resetTimer = window.setTimeout(nextTraveler, RESET_AFTER_MS);
    }
  }

  function post(url, form) {
    return fetch(url, {
      method: "POST", body: form, credentials: "same-origin", headers: { "X-CSRF-Token": csrf }
    }).then(function (response) {
      if (response.status === 401) { window.location.reload(); throw new Error("unpaired"); }
      return response.json().then(function (json) { return { status: response.status, json: json }; });
    });
  }

  function frameBlob(width) {
    var sourceWidth = video.videoWidth, sourceHeight = video.videoHeight;
    var scale = width ? sourceWidth / width : 1;
    var canvas = document.createElement("canvas");
    canvas.width = Math.round(sourceWidth / scale);
    canvas.height = Math.round(sourceHeight / scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    return new Promise(function (resolve) {
      canvas.toBlob(function (blob) { resolve({ blob: blob, scale: scale }); }, "image/jpeg", 0.9);
    });
  }

  function checkLoop() {
    if (!checking || capturing) { return; }
    if (!video.videoWidth) { window.setTimeout(checkLoop, CHECK_EVERY_MS); return; }
    var asked = performance.now();
    frameBlob(Math.min(CHECK_WIDTH, video.videoWidth)).then(function (frame) {
      var form = new FormData();
      form.append("frame", frame.blob, "check.jpg");
      form.append("scale", String(Math.max(1, frame.scale)));
      return post("/kiosk/quality", form);
    }).then(function (answer) {
      if (!checking) { return; }
      // From grabbing the frame to the advice on screen: the guidance's reaction time.
      guidance.setAttribute("data-check-ms", String(Math.round(performance.now() - asked)));
      if (answer.status !== 200) { window.setTimeout(checkLoop, 1000); return; }
      if (answer.json.ready) {
        readyCount += 1;
        guidance.textContent = text("hold_still");
        guidance.setAttribute("data-advice", "ready");
        if (readyCount >= READY_IN_A_ROW) { capture(); return; }
      } else {
        readyCount = 0;
        guidance.textContent = text("advice_" + answer.json.advice) || text("look");
        guidance.setAttribute("data-advice", answer.json.advice);
      }
      window.setTimeout(checkLoop, CHECK_EVERY_MS);
    }).catch(function () { if (checking) { window.setTimeout(checkLoop, 1000); } });
  }

  function capture() {
    capturing = true;
    checking = false;
    var started = performance.now();
    var frames = [];
    function collect() {
      return frameBlob(0).then(function (frame) {
        frames.push(frame.blob);
        if (frames.length < FRAMES_PER_CAPTURE) { return collect(); }
      });
    }
    collect().then(function () {
      var form = new FormData();
      frames.forEach(function (blob, index) { form.append("frames", blob, "frame-" + (index + 1) + ".jpg"); });
      form.append("notice_version", noticeVersion);
      form.append("language", language);
      return post("/kiosk/captures", form);
    }).then(function (answer) {
      capturing = false;
      decision.setAttribute("data-capture-ms", String(Math.round(performance.now() - started)));
      if (answer.status === 409 && /notice/.test(answer.json.detail || "")) { window.location.reload(); return; }
      if (answer.status === 409) { finish(function () { return text("lane_closed"); }, "see_officer"); return; }
      if (answer.status !== 200) { finish(function () { return text("see_officer"); }, "see_officer"); return; }
      var message = answer.json.message, reason = answer.json.reason;
      if (message === "proceed") { finish(function () { return text("proceed"); }, "proceed"); return; }
      if (message === "try_again") {
        finish(function () { return text("try_again") + " " + (text("advice_" + reason) || ""); }, "try_again");
        return;
      }
      finish(function () { return text("see_officer"); }, "see_officer");
    }).catch(function () {
      capturing = false;
      finish(function () { return text("see_officer"); }, "see_officer");
    });
  }

  function startCamera() {
    if (resetTimer) { window.clearTimeout(resetTimer); resetTimer = null; }
    lastMessage = null;
    if (body.getAttribute("data-lane-open") !== "yes") {
      finish(function () { return text("lane_closed"); }, "see_officer");
      return;
    }
    show("camera");
    guidance.textContent = text("starting");
    guidance.removeAttribute("data-advice");
    readyCount = 0;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      finish(function () { return text("camera_unavailable"); }, "see_officer");
      return;
    }
    navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false })
      .then(function (media) {
        stream = media;
        video.srcObject = media;
        checking = true;
        checkLoop();
      }).catch(function () { finish(function () { return text("camera_unavailable"); }, "see_officer"); });
  }

  function decline() {
    stopCamera();
    var form = new FormData();
    form.append("notice_version", noticeVersion);
    form.append("language", language);
    post("/kiosk/opt-out-requests", form).then(function (answer) {
      if (answer.status === 409 && /notice/.test(answer.json.detail || "")) { window.location.reload(); return; }
      finish(function () { return text("opted_out"); }, "opted_out");
    }).catch(function () { finish(function () { return text("see_officer"); }, "see_officer"); });
  }

  document.getElementById("start").addEventListener("click", startCamera);
  document.getElementById("next").addEventListener("click", nextTraveler);
  Array.prototype.forEach.call(document.querySelectorAll("button.decline"), function (button) {
    button.addEventListener("click", decline);
  });
  Array.prototype.forEach.call(document.querySelectorAll("button.show-notice"), function (button) {
    button.addEventListener("click", showNotice);
  });
  Array.prototype.forEach.call(document.querySelectorAll("button.language"), function (button) {
    button.addEventListener("click", function () { setLanguage(button.getAttribute("data-language")); });
  });
})();
