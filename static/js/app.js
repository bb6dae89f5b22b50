// Small progressive enhancements. No inline scripts anywhere: everything lives in static files.
(function () {
  "use strict";

  function closeMenus(except) {
    document.querySelectorAll("[data-toggle]").forEach(function (btn) {
      if (btn === except) return;
      var menu = document.getElementById(btn.getAttribute("data-toggle"));
      if (menu && !menu.hidden) {
        menu.hidden = true;
        btn.setAttribute("aria-expanded", "false");
      }
    });
  }

  document.addEventListener("click", function (event) {
    var btn = event.target.closest("[data-toggle]");
    if (btn) {
      var menu = document.getElementById(btn.getAttribute("data-toggle"));
      if (menu) {
        closeMenus(btn);
        menu.hidden = !menu.hidden;
        btn.setAttribute("aria-expanded", menu.hidden ? "false" : "true");
      }
      return;
    }
    if (!event.target.closest(".switcher-menu, .dropdown-menu")) closeMenus(null);
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") closeMenus(null);
  });

  // Dialogs loaded with htmx into #dialog open themselves; closing empties them.
  document.addEventListener("htmx:afterSwap", function (event) {
    var dialog = event.target.closest && event.target.closest("dialog");
    if (dialog && !dialog.open && dialog.showModal) dialog.showModal();
  });
  document.addEventListener("click", function (event) {
    var closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      var dialog = closer.closest("dialog");
      if (dialog) dialog.close();
    }
  });

  // Invitation links: copy to the clipboard, and select the whole link on focus.
  document.addEventListener("click", function (event) {
    var btn = event.target.closest("[data-copy]");
    if (!btn) return;
    var input = document.querySelector(btn.getAttribute("data-copy"));
    if (!input) return;
    input.select();
    if (navigator.clipboard) navigator.clipboard.writeText(input.value);
    btn.textContent = "Copied";
  });
  document.addEventListener("focusin", function (event) {
    if (event.target.matches && event.target.matches("[data-select-on-focus]")) event.target.select();
  });
})();

// A failed htmx request inside a dialog (403 after a role change, 500, network) says so instead of doing nothing.
(function () {
  "use strict";
  function report(event, text) {
    var target = event.detail && event.detail.target;
    var dialog = target && target.closest && target.closest("dialog");
    if (!dialog) return;
    var box = dialog.querySelector("[data-request-error]");
    if (!box) {
      box = document.createElement("p");
      box.className = "form-error";
      box.setAttribute("role", "alert");
      box.setAttribute("data-request-error", "");
      dialog.prepend(box);
    }
    box.textContent = text;
  }
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    report(event, status === 403
      ? "You are not allowed to do this any more. Reload the page. Nothing was moved."
      : "Something went wrong (error " + status + "). Nothing was moved; please try again.");
  });
  document.addEventListener("htmx:sendError", function (event) {
    report(event, "The server could not be reached. Nothing was moved; please try again.");
  });
})();
