// Small behaviours shared by every page. htmx is loaded before this file.
// No inline scripts or handlers anywhere (the Content-Security-Policy forbids them): pages
// declare behaviour with data- attributes and this file wires them up.
(function () {
  if (window.htmx) {
    // Swap 4xx responses too: forms re-render with their field errors (422), and
    // refusals (403/409/429) render as a banner the server retargets to #messages.
    htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "4..", swap: true, error: false },
      { code: "...", swap: false, error: true },
    ];
  }

  // <dialog> openers: <button data-open-dialog="id">.
  document.addEventListener("click", function (e) {
    var opener = e.target.closest("[data-open-dialog]");
    if (opener) {
      var d = document.getElementById(opener.getAttribute("data-open-dialog"));
      if (d && d.showModal) { e.preventDefault(); d.showModal(); }
    }
    var closer = e.target.closest("[data-close-dialog]");
    if (closer) { var dlg = closer.closest("dialog"); if (dlg) { e.preventDefault(); dlg.close(); } }
  });

  // One way to confirm a destructive action: <form data-confirm="Revoke …?"> (or a submit
  // button with data-confirm, when only that button of the form is destructive) asks in the
  // page's confirm dialog (#confirm-dialog in base.html) before it submits, for plain and
  // htmx forms alike (this listener runs in the capture phase, before htmx sees the submit).
  var pending = null;
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var source = e.submitter && e.submitter.hasAttribute("data-confirm") ? e.submitter : form;
    if (!source.hasAttribute || !source.hasAttribute("data-confirm")) return;
    if (form._confirmed) { form._confirmed = false; return; }
    var dialog = document.getElementById("confirm-dialog");
    if (!dialog || !dialog.showModal) return;  // no dialog support: submit as before
    e.preventDefault();
    e.stopImmediatePropagation();
    pending = { form: form, submitter: e.submitter || null };
    dialog.querySelector("[data-confirm-message]").textContent = source.getAttribute("data-confirm");
    var ok = dialog.querySelector("[data-confirm-ok]");
    ok.textContent = source.getAttribute("data-confirm-button") || "Confirm";
    dialog.showModal();
    ok.focus();
  }, true);
  document.addEventListener("click", function (e) {
    if (!e.target.closest("[data-confirm-ok]") || !pending) return;
    e.preventDefault();
    var p = pending; pending = null;
    document.getElementById("confirm-dialog").close();
    p.form._confirmed = true;
    // Clicking the original button again (rather than requestSubmit) keeps its name=value in
    // the submission for htmx too, which tracks the last clicked button.
    if (p.submitter) { p.submitter.click(); }
    else if (p.form.requestSubmit) { p.form.requestSubmit(); } else { p.form.submit(); }
  });
  document.addEventListener("close", function (e) {
    if (e.target.id === "confirm-dialog") pending = null;
  }, true);

  // <input data-select-on-focus>: a one-time secret is selected for copying.
  document.addEventListener("focusin", function (e) {
    if (e.target.matches && e.target.matches("[data-select-on-focus]")) e.target.select();
  });

  // <button data-copy="text">: copies to the clipboard and says so.
  document.addEventListener("click", function (e) {
    var btn = e.target.closest("[data-copy]");
    if (!btn) return;
    e.preventDefault();
    var text = btn.getAttribute("data-copy");
    var done = function () { btn.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
    } else {
      var input = document.createElement("textarea");
      input.value = text; input.setAttribute("readonly", ""); input.className = "offscreen";
      document.body.appendChild(input); input.select();
      try { document.execCommand("copy"); done(); } catch (err) { /* nothing to do */ }
      input.remove();
    }
  });

  // The top bar's menu button (narrow screens): shows and hides the navigation.
  document.addEventListener("click", function (e) {
    var toggle = e.target.closest("[data-nav-toggle]");
    if (!toggle) return;
    var target = document.getElementById(toggle.getAttribute("aria-controls"));
    var open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (target) target.classList.toggle("open", open);
  });

  // A 5xx or a network failure during an htmx request shows a banner instead of failing silently.
  document.addEventListener("htmx:responseError", function () {
    var m = document.getElementById("messages");
    if (m) m.innerHTML = '<div class="banner error" role="alert">Something went wrong. Nothing was changed; please try again.</div>';
  });
  document.addEventListener("htmx:sendError", function () {
    var m = document.getElementById("messages");
    if (m) m.innerHTML = '<div class="banner error" role="alert">The server could not be reached. Please try again.</div>';
  });
})();

// <button data-history-back>: the previous page (error pages).
document.addEventListener("click", function (e) {
  if (e.target.closest("[data-history-back]")) { e.preventDefault(); history.back(); }
});

// <input type="checkbox" data-select-all="members">: (un)checks every enabled input[name=members].
document.addEventListener("change", function (e) {
  var all = e.target.closest && e.target.closest("[data-select-all]");
  if (!all) return;
  var name = all.getAttribute("data-select-all");
  document.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (box) {
    if (!box.disabled) box.checked = all.checked;
  });
});

// <button data-density-toggle="audit" aria-pressed>: compact rows, remembered in this browser.
(function () {
  var KEY = "signalsmith-density";
  function apply(compact) {
    document.documentElement.classList.toggle("density-compact", compact);
    document.querySelectorAll("[data-density-toggle]").forEach(function (b) {
      b.setAttribute("aria-pressed", compact ? "true" : "false");
    });
  }
  var stored = false;
  try { stored = window.localStorage.getItem(KEY) === "compact"; } catch (err) { /* private mode */ }
  document.addEventListener("DOMContentLoaded", function () { apply(stored); });
  document.addEventListener("click", function (e) {
    if (!e.target.closest("[data-density-toggle]")) return;
    stored = !document.documentElement.classList.contains("density-compact");
    try { window.localStorage.setItem(KEY, stored ? "compact" : "comfortable"); } catch (err) { /* ignore */ }
    apply(stored);
  });
})();

// On a narrow screen the tab strips scroll sideways: keep the current tab in view.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll(".tabs [aria-current='page']").forEach(function (tab) {
    var strip = tab.closest(".tabs");
    if (strip && strip.scrollWidth > strip.clientWidth) {
      strip.scrollLeft = tab.offsetLeft - strip.offsetLeft - 16;
    }
  });
});
