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

  // Escape closes an open disclosure and gives focus back to its button if focus was inside it.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = event.target.closest && event.target.closest(".switcher-menu, .dropdown-menu");
    closeMenus(null);
    if (open) {
      var btn = document.querySelector('[data-toggle="' + open.id + '"]');
      if (btn) btn.focus();
    }
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

  // Expanders ("N members" in Transactions): a link that loads a list under it with htmx the first time,
  // then shows or hides it; aria-expanded says which.
  function expanderFor(box) {
    return box && box.id ? document.querySelector('[data-expander][aria-controls="' + box.id + '"]') : null;
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    var link = event.detail.elt;
    if (!link.hasAttribute || !link.hasAttribute("data-expander")) return;
    var box = document.getElementById(link.getAttribute("aria-controls"));
    if (!box || !box.childElementCount) return;  // not loaded yet: let htmx fetch it
    event.preventDefault();
    var open = link.getAttribute("aria-expanded") === "true";
    box.hidden = open;
    link.setAttribute("aria-expanded", open ? "false" : "true");
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var link = expanderFor(event.detail.target);
    if (link) {
      event.detail.target.hidden = false;
      link.setAttribute("aria-expanded", "true");
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
  // Retry-After is either seconds or an HTTP date; either way, whole seconds from now (at least 1).
  function retryAfterSeconds(xhr) {
    var value = xhr && xhr.getResponseHeader("Retry-After");
    if (!value) return 0;
    var seconds = /^\d+$/.test(value.trim()) ? parseInt(value, 10) : Math.ceil((Date.parse(value) - Date.now()) / 1000);
    return isNaN(seconds) ? 0 : Math.max(1, seconds);
  }
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var status = xhr ? xhr.status : 0;
    var text;
    if (status === 403) {
      text = "You are not allowed to do this any more. Reload the page. Nothing was moved.";
    } else if (status === 429) {
      var wait = retryAfterSeconds(xhr);
      text = "Too many requests — try again in " + (wait ? wait + (wait === 1 ? " second" : " seconds") : "a minute") +
        ". Nothing was moved this time.";
    } else {
      text = "Something went wrong (error " + status + "). Nothing was moved; please try again.";
    }
    report(event, text);
  });
  document.addEventListener("htmx:sendError", function (event) {
    report(event, "The server could not be reached. Nothing was moved; please try again.");
  });
})();
