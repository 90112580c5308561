// The dashboard's few behaviours beyond htmx attributes.
(function () {
  "use strict";

  // Say so when polls stop reaching the server, rather than show stale figures as live.
  function banner() { return document.getElementById("connection-lost"); }
  function markReached() {
    var stamp = document.querySelector("#connection-lost [data-last-ok]");
    if (stamp) stamp.textContent = new Date().toISOString().slice(11, 19) + " UTC"; // pages show UTC
  }
  document.addEventListener("DOMContentLoaded", markReached);
  document.addEventListener("htmx:sendError", function () {
    var el = banner();
    if (el) el.hidden = false;
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var el = banner();
    if (!el || !event.detail.successful) return;
    el.hidden = true;
    markReached();
  });

  // A refused action (403, 413, 500...) is not swapped into the page: tell the operator why. To htmx
  // the server gives its reason for a 4xx (a missing permission, a page out of date, a form too
  // large) as plain text.
  function refusalReason(xhr) {
    var type = xhr.getResponseHeader("Content-Type") || "";
    if (xhr.status < 400 || xhr.status > 499 || type.indexOf("text/plain") !== 0) return "";
    return (xhr.responseText || "").trim().slice(0, 500); // shown by alert(): text, never HTML
  }
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var verb = (event.detail.requestConfig && event.detail.requestConfig.verb) || "get";
    if (verb === "get") return; // polls: the banner above covers an unreachable server
    window.alert(
      refusalReason(xhr) || "The server refused this action (" + xhr.status + " " + xhr.statusText + ")."
    );
  });

  // Filter forms marked data-autosubmit apply a choice at once (without JavaScript: their button);
  // hx-sync="this:replace" on them lets a newer choice replace one still on its way.
  // The field chosen from keeps the focus for the next choice: htmx puts it back only if it still
  // had the focus when the new page came in, and a CI run saw it land on <body> once. Each form
  // remembers its own field: a page that settles after the next choice was made must not take it.
  document.addEventListener("change", function (event) {
    var form = event.target.form;
    if (!form || !form.hasAttribute("data-autosubmit")) return;
    form.setAttribute("data-applied-from", event.target.id || "");
    form.requestSubmit();
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    var config = event.detail.requestConfig;
    var form = config && config.elt;
    if (event.detail.target !== document.body || !form || !form.getAttribute) return; // a poll's region
    var field = document.getElementById(form.getAttribute("data-applied-from") || "");
    if (field && (!document.activeElement || document.activeElement === document.body)) {
      field.focus({ preventScroll: true });
    }
  });

  // A poll replaces the live region: keep the <details> the operator opened open.
  var openDetails = [];
  document.addEventListener("htmx:beforeSwap", function (event) {
    openDetails = Array.prototype.map.call(
      event.detail.target.querySelectorAll("details[id][open]"),
      function (el) { return el.id; }
    );
  });
  document.addEventListener("htmx:afterSwap", function () {
    openDetails.forEach(function (id) {
      var el = document.getElementById(id);
      if (el) el.open = true;
    });
    openDetails = [];
  });

  // ...and the keyboard focus where it was. htmx puts it back only on an element with an id; any
  // other (a card, an alert's title, a chart's summary) fell to <body> at each poll, and the next
  // Tab started again at the top of the page. The element is found again by its id; else by its
  // tag, link and name and its rank among those alike; else (its link changed, it is gone) the
  // focusable at its place in its nearest container with an id that is still there (its row, the
  // region). Regions swapped out of band (a poll's banner, its counts) are kept the same way.
  var FOCUSABLE = "a[href], button, input, select, textarea, summary, [tabindex]";
  function focusables(root) {
    return Array.prototype.filter.call(root.querySelectorAll(FOCUSABLE), function (el) {
      return !el.disabled && el.getClientRects().length > 0;
    });
  }
  function focusKey(el) {
    return el.tagName + " " + (el.getAttribute("href") || "") + " " + (el.getAttribute("name") || "");
  }
  function alike(region, key, tag) {
    return Array.prototype.filter.call(region.querySelectorAll(tag), function (el) {
      return focusKey(el) === key && el.matches(FOCUSABLE);
    });
  }
  function typing(el) { return el.matches("input, textarea, select"); }
  var keptFocus = {}; // by region id
  function keepFocus(region) {
    var active = document.activeElement;
    if (!region || !region.id || keptFocus[region.id] || !active || active === document.body) return;
    if (!region.contains(active) || (active.id && typing(active))) return; // htmx puts a field back, caret too
    var places = [];
    for (var el = active.parentElement; el && el !== region.parentElement; el = el.parentElement) {
      if (el.id) places.push({ id: el.id, index: focusables(el).indexOf(active) });
    }
    var key = focusKey(active);
    keptFocus[region.id] = {
      id: active.id, key: key, tag: active.tagName, rank: alike(region, key, active.tagName).indexOf(active), places: places
    };
    // A focused element is what Chrome's scroll anchoring holds in place: with the new region
    // inserted above the old one, the page scrolled down by the region's height at each poll.
    if (!typing(active)) active.blur();
  }
  function restoreFocus() {
    Object.keys(keptFocus).forEach(function (regionId) {
      var kept = keptFocus[regionId], region = document.getElementById(regionId);
      delete keptFocus[regionId];
      if (document.activeElement && document.activeElement !== document.body) return; // autofocus took it
      var el = kept.id ? document.getElementById(kept.id) : null;
      if (!el && region) el = alike(region, kept.key, kept.tag)[kept.rank];
      for (var i = 0; !el && i < kept.places.length; i++) {
        var place = document.getElementById(kept.places[i].id);
        if (!place) continue;
        var all = focusables(place);
        el = all[Math.min(Math.max(kept.places[i].index, 0), all.length - 1)];
      }
      if (el) el.focus({ preventScroll: true });
    });
  }
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.shouldSwap) keepFocus(event.detail.target);
  });
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    if (event.detail.shouldSwap) keepFocus(event.detail.target);
  });
  document.addEventListener("htmx:afterSettle", restoreFocus);

  // A table wider (or, a chart's, taller) than its box scrolls in it: Tab must reach the box for
  // the arrow keys to scroll it (axe: scrollable-region-focusable), named after its panel's
  // heading. A box that fits is no tab stop. Marked before restoreFocus looks for it again.
  function markScrollingTables() {
    document.querySelectorAll(".table-wrap").forEach(function (wrap) {
      var scrolls = wrap.scrollWidth > wrap.clientWidth + 1 || wrap.scrollHeight > wrap.clientHeight + 1;
      if (scrolls && !wrap.hasAttribute("tabindex")) {
        var panel = wrap.closest("section, details");
        var heading = panel && panel.querySelector("h1, h2, summary");
        wrap.setAttribute("tabindex", "0");
        wrap.setAttribute("role", "region");
        wrap.setAttribute("aria-label", heading ? heading.textContent.trim().replace(/\s+/g, " ") : "Table");
      } else if (!scrolls && wrap.getAttribute("role") === "region") {
        ["tabindex", "role", "aria-label"].forEach(function (name) { wrap.removeAttribute(name); });
      }
    });
  }
  document.addEventListener("DOMContentLoaded", markScrollingTables);
  document.addEventListener("htmx:afterSwap", markScrollingTables);
  document.addEventListener("toggle", markScrollingTables, true); // a chart's table opened
  window.addEventListener("resize", markScrollingTables);

  // An action's outcome that holds while the job runs ("Cancel requested: it stops…", "Retry
  // queued") goes once a poll shows the job stopped: a drill saw it stay above "cancelled".
  // It had the focus since the action: the keyboard carries on from the job's own actions (Retry
  // job), not from the top of the page, as an operator on call found after a cancel.
  document.addEventListener("htmx:afterSettle", function () {
    var live = document.getElementById("job-live");
    var outcome = document.querySelector("#job-notice [data-while-active]");
    if (!live || !outcome || !live.hasAttribute("data-stopped")) return;
    var focusedOutcome = document.activeElement === outcome;
    outcome.remove();
    var next = focusedOutcome && focusables(live)[0];
    if (next) next.focus({ preventScroll: true });
  });

  // After an action whose page follows (pause, resume, run a job), its outcome is where the
  // keyboard and the screen reader start, not the top of the page.
  document.addEventListener("htmx:afterSettle", function (event) {
    if (!event.detail.boosted || document.activeElement !== document.body) return;
    var outcome = document.querySelector(".messages .notice");
    if (!outcome) return;
    outcome.setAttribute("tabindex", "-1");
    outcome.focus({ preventScroll: true });
  });
})();
