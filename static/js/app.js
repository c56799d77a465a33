// Small behaviours shared by every page. htmx is loaded before this file.
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
