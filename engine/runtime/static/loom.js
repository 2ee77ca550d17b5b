/* Loom staff screens: small behaviours by event delegation (no inline scripts, CSP-friendly). */
(function () {
  "use strict";

  function csrfToken() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : null;
  }

  // htmx: send the CSRF token on every request
  document.addEventListener("htmx:configRequest", function (e) {
    var t = csrfToken();
    if (t) { e.detail.headers["X-CSRFToken"] = t; }
  });

  // live form state: hide/show inputs named by the server
  document.addEventListener("htmx:afterSwap", function (e) {
    var state = document.getElementById("form-state");
    if (!state || !state.hasAttribute("data-hidden")) { return; }
    var hidden;
    try { hidden = JSON.parse(state.getAttribute("data-hidden") || "[]"); } catch (err) { return; }
    var set = {};
    hidden.forEach(function (p) { set[p] = true; });
    document.querySelectorAll("form.record-form [data-path]").forEach(function (el) {
      el.classList.toggle("is-hidden", !!set[el.getAttribute("data-path")]);
    });
  });

  function notifyForm(el) {
    var form = el && el.closest ? el.closest("form.record-form") : null;
    if (form && window.htmx) { window.htmx.trigger(form, "loom:rows"); }
  }

  document.addEventListener("click", function (e) {
    var t = e.target;
    // a printable page's print button
    if (t.closest("[data-print]")) { window.print(); return; }
    // remove a child row
    var rm = t.closest("[data-remove-row]");
    if (rm) {
      var row = rm.closest("[data-row]");
      var form = rm.closest("form");
      if (row) { row.remove(); }
      notifyForm(form);
      return;
    }
    // pick a link lookup result
    var opt = t.closest(".lookup-option");
    if (opt) {
      var box = opt.closest("[data-lookup]");
      box.querySelector("[data-lookup-value]").value = opt.getAttribute("data-id");
      box.querySelector("[data-lookup-text]").value = opt.getAttribute("data-title");
      box.querySelector(".lookup-results").innerHTML = "";
      notifyForm(box);
      return;
    }
    // close open lookups when clicking elsewhere
    if (!t.closest("[data-lookup]")) {
      document.querySelectorAll(".lookup-results").forEach(function (r) { r.innerHTML = ""; });
    }
    // tabs
    var tab = t.closest("[data-tab]");
    if (tab) {
      var form2 = tab.closest("form") || document;
      form2.querySelectorAll("[data-tab]").forEach(function (b) { b.classList.toggle("active", b === tab); });
      form2.querySelectorAll("[data-tab-panel]").forEach(function (p) {
        p.classList.toggle("is-hidden-tab", p.getAttribute("data-tab-panel") !== tab.getAttribute("data-tab"));
      });
      return;
    }
    // whole table rows are links
    var tr = t.closest("tr[data-href]");
    if (tr && !t.closest("a, button, input")) { window.location.href = tr.getAttribute("data-href"); }
  });

  // confirmation before dangerous submits
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { e.preventDefault(); }
  }, true);

  // attachment upload through the files API
  document.addEventListener("change", function (e) {
    var input = e.target;
    if (!input.matches || !input.matches("[data-upload-file]")) { return; }
    var box = input.closest("[data-upload]");
    var err = box.querySelector("[data-upload-error]");
    var file = input.files && input.files[0];
    if (!file) { return; }
    var body = new FormData();
    body.append("file", file);
    var headers = {"Accept": "application/json"};
    var t = csrfToken();
    if (t) { headers["X-CSRFToken"] = t; }
    err.hidden = true;
    fetch(box.getAttribute("data-upload"), {method: "POST", body: body, headers: headers, credentials: "same-origin"})
      .then(function (r) { return r.json().then(function (j) { return {ok: r.ok, body: j}; }); })
      .then(function (res) {
        if (!res.ok) { throw new Error((res.body.errors && res.body.errors[0] && res.body.errors[0].message) || res.body.detail || res.body.title); }
        box.querySelector("[data-upload-value]").value = JSON.stringify(res.body);
        box.querySelector("[data-upload-name]").textContent = res.body.name;
      })
      .catch(function (ex) { err.textContent = String(ex.message || ex); err.hidden = false; });
  });

  // Alpine (CSP build) components, for screens that want small local state
  document.addEventListener("alpine:init", function () {
    window.Alpine.data("disclosure", function () {
      return { open: false, toggle: function () { this.open = !this.open; } };
    });
  });
})();
