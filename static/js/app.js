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
  // Opened after the settle, not the swap: htmx attaches the new body's triggers (the live preview's "input"
  // listener) in its settle step, 20 ms after the swap, and typing into a dialog opened before that was lost.
  document.addEventListener("htmx:afterSettle", function (event) {
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

/* Part: layout */
// The workspace switcher (and the phone nav) are <details> disclosures that work without JavaScript; this only adds
// what a menu-like disclosure is expected to do: Escape closes it and gives focus back to its summary, a click
// elsewhere closes it.
(function () {
  "use strict";
  var SELECTOR = "details[data-switcher], details[data-disclosure]";
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var details = event.target.closest && event.target.closest(SELECTOR);
    if (!details || !details.open) return;
    details.open = false;
    var summary = details.querySelector("summary");
    if (summary) summary.focus();
  });
  document.addEventListener("click", function (event) {
    document.querySelectorAll(SELECTOR).forEach(function (details) {
      if (details.open && !details.contains(event.target)) details.open = false;
    });
  });
})();

/* Part: requests */
// A response that carries `HX-Trigger: {"close-dialog": {}}` (a decided credit request) closes the dialog its
// request came from; the toast in the same header states the outcome. Without JavaScript the view redirects with
// a message instead.
(function () {
  "use strict";
  document.body.addEventListener("close-dialog", function (event) {
    var dialog = event.target && event.target.closest && event.target.closest("dialog");
    if (dialog && dialog.open) dialog.close();
  });
  // The decided request's row (and the Approve/Reject link that had focus back) goes when the pending list is
  // re-fetched: focus moves to the next request's Approve link, or to the list itself, not to the page's start.
  var refocus = false;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id === "requests-list") refocus = target.contains(document.activeElement);
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!refocus) return;
    refocus = false;
    var list = document.getElementById("requests-list");
    if (!list || (document.activeElement && document.activeElement !== document.body)) return;
    var next = list.querySelector(".row-actions a");
    if (next) {
      next.focus();
    } else {
      list.setAttribute("tabindex", "-1");
      list.focus();
    }
  });
})();

/* Part: members */
// The role select saves on change (the Save button stays for keyboard users and without JavaScript). A promotion to
// Admin comes back as a confirmation in the dialog; Cancel there puts the select back on the role they have.
(function () {
  "use strict";
  var lastMenu = null;
  document.addEventListener("change", function (event) {
    var select = event.target;
    var form = select && select.closest && select.closest("form[data-role-form]");
    if (!form || select.name !== "role") return;
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (!form || !form.matches || !form.matches("form[data-role-form]")) return;
    if (event.detail.xhr && event.detail.xhr.status === 204) {
      form.querySelectorAll("option").forEach(function (option) { option.defaultSelected = option.selected; });
    }
  });
  // A dialog closed without confirming: every role select shows the saved role again; focus goes back to the row
  // menu's button when the dialog was opened from a menu item (the item itself is hidden once the menu closes).
  document.addEventListener("close", function (event) {
    if (!event.target || event.target.tagName !== "DIALOG") return;
    document.querySelectorAll("form[data-role-form]").forEach(function (form) { form.reset(); });
    if (lastMenu && document.contains(lastMenu) && !lastMenu.open) {
      var summary = lastMenu.querySelector("summary");
      if (summary) summary.focus();
    }
    lastMenu = null;
  }, true);
  // In a dialog, the Cancel link (a real link for the page without JavaScript) only closes the dialog.
  document.addEventListener("click", function (event) {
    var cancel = event.target.closest && event.target.closest("a[data-close-dialog]");
    if (!cancel || !cancel.closest("dialog")) return;
    if (cancel.closest('[data-testid="member-confirm"], [data-testid="invite-dialog"], [data-testid="remove-confirm"]')) {
      event.preventDefault();
    }
  });
  // A menu item that opens a dialog closes its menu.
  document.addEventListener("click", function (event) {
    var item = event.target.closest && event.target.closest(".row-menu-list a[hx-get]");
    if (!item) return;
    lastMenu = item.closest("details");
    if (lastMenu) lastMenu.open = false;
  });
})();

/* Part: purchases */
// Buy Credits' preset amounts are plain links (?amount=50) that work without JavaScript; here a click fills the
// field in place and fires its `input` event, so htmx's debounced preview shows the credits. Receipts: the Print
// button (hidden until this runs; without JavaScript the page says to use the browser's Print) calls print().
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var preset = event.target.closest && event.target.closest("a[data-preset-amount]");
    if (!preset) return;
    var form = preset.closest("form");
    var input = form && form.querySelector("input[name=amount]");
    if (!input) return;
    event.preventDefault();
    input.value = preset.getAttribute("data-preset-amount");
    form.querySelectorAll("a[data-preset-amount]").forEach(function (a) {
      if (a === preset) a.setAttribute("aria-current", "true");
      else a.removeAttribute("aria-current");
    });
    input.dispatchEvent(new Event("input", { bubbles: true }));
  });
  document.addEventListener("input", function (event) {
    if (!event.isTrusted || !event.target.matches || !event.target.matches("input[name=amount]")) return;
    var form = event.target.closest("form");
    if (!form) return;
    form.querySelectorAll("a[data-preset-amount]").forEach(function (a) {
      if (a.getAttribute("data-preset-amount") === event.target.value.trim()) a.setAttribute("aria-current", "true");
      else a.removeAttribute("aria-current");
    });
  });
  function showPrint(root) {
    (root || document).querySelectorAll("[data-print][hidden]").forEach(function (button) {
      button.hidden = false;
    });
  }
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-print]")) window.print();
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { showPrint(); });
  else showPrint();
})();

// Part: reporting — the balance chart's days: one Tab stop, then the arrow keys (Home/End) move day by day. Without
// JavaScript every day is its own Tab stop, and hover works either way (CSS).
(function () {
  "use strict";
  function rove(svg) {
    var days = svg.querySelectorAll("[data-chart-day]");
    if (!days.length || svg.hasAttribute("data-roving")) return;
    svg.setAttribute("data-roving", "");
    days.forEach(function (day, i) { day.setAttribute("tabindex", i === days.length - 1 ? "0" : "-1"); });
  }
  function init(root) {
    (root.querySelectorAll ? root : document).querySelectorAll("svg.chart").forEach(rove);
  }
  document.addEventListener("keydown", function (event) {
    var day = event.target.closest && event.target.closest("[data-chart-day]");
    if (!day) return;
    var days = Array.prototype.slice.call(day.parentNode.querySelectorAll("[data-chart-day]"));
    var i = days.indexOf(day);
    var next = {ArrowLeft: i - 1, ArrowRight: i + 1, Home: 0, End: days.length - 1}[event.key];
    if (next === undefined || next < 0 || next >= days.length) return;
    event.preventDefault();
    day.setAttribute("tabindex", "-1");
    days[next].setAttribute("tabindex", "0");
    days[next].focus();
  });
  document.addEventListener("htmx:afterSettle", function () { init(document); });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { init(document); });
  else init(document);
})();
