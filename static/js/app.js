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

  // A dialog opens when an opener outside it (a button on the page) loads its body with htmx. A reply to a
  // request made from inside the dialog (a live preview, a search, a submit) never reopens it: once the user
  // has closed it (Cancel, ×, Escape) it stays closed, and its late replies are dropped.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    var dialog = target && target.closest && target.closest("dialog");
    var elt = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (dialog && !dialog.open && elt && dialog.contains(elt)) event.detail.shouldSwap = false;
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var dialog = event.target.closest && event.target.closest("dialog");
    var elt = event.detail.requestConfig && event.detail.requestConfig.elt;
    if (!dialog || dialog.open || !dialog.showModal) return;
    if (elt && dialog.contains(elt)) return;
    dialog._opener = elt && elt.focus ? elt : document.activeElement;
    dialog.showModal();
  });
  // Focus goes back to what opened the dialog when it closes, however it closes.
  document.addEventListener("close", function (event) {
    var dialog = event.target;
    if (!dialog || dialog.tagName !== "DIALOG") return;
    var opener = dialog._opener;
    dialog._opener = null;
    if (opener && document.contains(opener) && opener.focus) opener.focus();
  }, true);
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

// Toasts: the result of a money action, stated where the eye is, whatever the scroll position. A response sends
// `HX-Trigger: {"toast": {"message": "...", "level": "success"}}` (web/toast.py); a full page load shows Django
// messages in the same place (base.html).
(function () {
  "use strict";
  function show(message, level) {
    var box = document.getElementById("toasts");
    if (!box || !message) return;
    var item = document.createElement("p");
    item.className = "toast toast-" + (level || "success");
    item.textContent = message;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", function () { item.remove(); });
    item.appendChild(close);
    box.appendChild(item);
    setTimeout(function () { item.classList.add("toast-leaving"); }, 9000);
    setTimeout(function () { item.remove(); }, 9600);
  }
  document.body.addEventListener("toast", function (event) {
    var detail = event.detail || {};
    show(detail.message || detail.value, detail.level);
  });
})();
