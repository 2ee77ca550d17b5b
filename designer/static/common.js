/* Designer helpers shared by the form, process and report designers: JSON calls with the CSRF
   token, problem lists, the status line. No inline scripts anywhere (CSP). */
(function () {
  "use strict";
  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }
  function call(method, url, body) {
    var opts = {method: method, credentials: "same-origin",
                headers: {"Accept": "application/json", "X-CSRFToken": csrf()}};
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(function (r) {
      return r.text().then(function (t) {
        var data = {};
        try { data = t ? JSON.parse(t) : {}; } catch (e) { data = {detail: t}; }
        data._status = r.status;
        data._ok = r.ok;
        return data;
      });
    });
  }
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { e.textContent = attrs[k]; }
      else if (k === "className") { e.className = attrs[k]; }
      else if (attrs[k] !== null && attrs[k] !== undefined && attrs[k] !== false) { e.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); } });
    return e;
  }
  function problemList(title, problems, kind) {
    var box = el("div", {className: "alert " + (kind || "alert-error"), role: "alert"});
    box.appendChild(el("strong", {text: title}));
    var ul = el("ul");
    (problems || []).forEach(function (p) {
      var where = p.path || p.field || "";
      ul.appendChild(el("li", {"data-path": where}, [where ? el("code", {text: where}) : null, " " + (p.message || p)]));
    });
    box.appendChild(ul);
    return box;
  }
  function show(container, node) {
    container.innerHTML = "";
    if (node) { container.appendChild(node); }
  }
  function errorOf(data) {
    return {title: data.detail || data.title || ("HTTP " + data._status), problems: data.errors || []};
  }
  window.LoomDesigner = {call: call, el: el, problemList: problemList, show: show, errorOf: errorOf};

  // designer home: "new ..." forms go to the editor of the typed key
  document.querySelectorAll("form[data-new]").forEach(function (f) {
    f.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var key = f.querySelector("input[name=key]").value.trim();
      if (/^[a-z][a-z0-9_]*$/.test(key)) { window.location.href = f.getAttribute("data-base").replace("__key__", key); }
    });
  });
})();
