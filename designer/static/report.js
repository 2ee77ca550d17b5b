/* The report builder: pick a source entity and its links, drag fields onto dimensions and
   measures, set filters, parameters and the chart; the preview runs the draft report through the
   reports engine on real data with the designer's own permissions; publishing adds it to a
   dashboard. The body written is the bundle's report format (reports/*.yaml). */
(function () {
  "use strict";
  var root = document.getElementById("report-designer");
  if (!root || !window.Sortable || !window.LoomDesigner) { return; }
  var D = window.LoomDesigner, el = D.el;
  var T = JSON.parse(root.getAttribute("data-i18n"));
  var KEY = root.getAttribute("data-key"), LOC = root.getAttribute("data-locale");
  var messages = document.getElementById("designer-messages");
  var meta = {entities: []}, version = 0, lock = 0, chart = null;
  var dims = [], measures = [];     // [{path, label}] / [{path|null, label, agg}]
  var $ = function (id) { return document.getElementById(id); };
  window.loomReportDesigner = {body: function () { return body(); }};

  function entity(key) { return meta.entities.filter(function (e) { return e.key === key; })[0]; }
  function fieldsOf(src) {
    var out = [{path: "", label: T.count, type: "count"}];
    var e = entity(src);
    if (!e) { return out; }
    e.fields.forEach(function (f) {
      out.push({path: f.key, label: f.label, type: f.type});
      if (f.type === "link" && f.target) {
        var t = entity(f.target.split(".").pop());
        (t ? t.fields : []).forEach(function (g) {
          if (g.type !== "link") { out.push({path: f.key + "." + g.key, label: f.label + " · " + g.label, type: g.type}); }
        });
      }
    });
    return out;
  }
  function keyOf(path, agg) { return ((agg && agg !== "count" ? agg + "_" : "") + (path || "records")).replace(/\./g, "_"); }
  function body() {
    var dimensions = dims.map(function (d) { return {key: keyOf(d.path), field: d.path, label: {"zh-CN": d.label, en: d.label}}; });
    var ms = measures.map(function (m) {
      var out = {key: m.path ? keyOf(m.path, m.agg) : "records", agg: m.path ? m.agg : "count", label: {"zh-CN": m.label, en: m.label}};
      if (m.path) { out.field = m.path; }
      return out;
    });
    var b = {key: KEY, label: {"zh-CN": $("report-label-zh").value || KEY, en: $("report-label-en").value || KEY},
             source: $("report-source").value, dimensions: dimensions, measures: ms};
    var filters = $("report-filters").value.split("\n").map(function (l) { return l.trim(); }).filter(Boolean);
    if (filters.length) { b.filters = filters; }
    var params = $("report-params").value.split("\n").map(function (l) { return l.trim(); }).filter(Boolean).map(function (l) {
      var p = l.split(":");
      return {key: p[0].trim(), type: (p[1] || "text").trim()};
    });
    if (params.length) { b.parameters = params; }
    b.chart = {type: $("report-chart").value};
    if (dimensions.length) { b.chart.dimension = dimensions[0].key; }
    if (ms.length) { b.chart.measures = ms.map(function (m) { return m.key; }); }
    return b;
  }
  function loadBody(b) {
    $("report-label-zh").value = b.label ? (b.label["zh-CN"] || "") : "";
    $("report-label-en").value = b.label ? (b.label.en || "") : "";
    $("report-source").value = b.source || $("report-source").value;
    dims = (b.dimensions || []).filter(function (d) { return d.field; }).map(function (d) { return {path: d.field, label: d.label ? (d.label[LOC] || d.label["zh-CN"] || d.key) : d.key}; });
    measures = (b.measures || []).filter(function (m) { return m.agg; }).map(function (m) { return {path: m.field || "", agg: m.agg, label: m.label ? (m.label[LOC] || m.label["zh-CN"] || m.key) : m.key}; });
    $("report-filters").value = (b.filters || []).join("\n");
    $("report-params").value = (b.parameters || []).map(function (p) { return p.key + ":" + p.type; }).join("\n");
    if (b.chart && b.chart.type) { $("report-chart").value = b.chart.type; }
  }

  function renderFields() {
    var ul = $("report-fields");
    ul.innerHTML = "";
    fieldsOf($("report-source").value).forEach(function (f) {
      ul.appendChild(el("li", {className: "palette-item", "data-path": f.path, "data-type": f.type, "data-label": f.label, text: f.label}));
    });
  }
  function renderZones() {
    var dz = $("report-dimensions"), mz = $("report-measures");
    dz.innerHTML = ""; mz.innerHTML = "";
    dz.setAttribute("data-empty", T.drop_dims); mz.setAttribute("data-empty", T.drop_measures);
    dims.forEach(function (d, i) {
      var rm = el("button", {type: "button", className: "btn btn-ghost btn-sm", text: "×", title: T.remove});
      rm.addEventListener("click", function () { dims.splice(i, 1); renderZones(); preview(); });
      dz.appendChild(el("li", {className: "zone-item", "data-path": d.path}, [d.label + " ", rm]));
    });
    measures.forEach(function (m, i) {
      var rm = el("button", {type: "button", className: "btn btn-ghost btn-sm", text: "×", title: T.remove});
      rm.addEventListener("click", function () { measures.splice(i, 1); renderZones(); preview(); });
      var agg = el("select", {className: "input input-sm", "data-agg": i});
      (m.path ? ["sum", "avg", "min", "max", "count", "count_distinct"] : ["count"]).forEach(function (a) {
        var o = el("option", {value: a, text: a}); if (a === m.agg) { o.selected = true; } agg.appendChild(o);
      });
      agg.addEventListener("change", function () { m.agg = agg.value; preview(); });
      mz.appendChild(el("li", {className: "zone-item", "data-path": m.path}, [agg, " " + m.label + " ", rm]));
    });
  }
  function onDrop(kind) {
    return function (ev) {
      var path = ev.item.getAttribute("data-path"), label = ev.item.getAttribute("data-label"), type = ev.item.getAttribute("data-type");
      if (ev.item.parentNode) { ev.item.parentNode.removeChild(ev.item); }
      if (kind === "dim" && path) { dims.splice(ev.newIndex, 0, {path: path, label: label}); }
      if (kind === "measure") {
        var numeric = type === "decimal" || type === "integer";
        measures.splice(ev.newIndex, 0, {path: path, label: label, agg: !path ? "count" : (numeric ? "sum" : "count_distinct")});
      }
      renderZones();
      preview();
    };
  }
  Sortable.create($("report-fields"), {group: {name: "report", pull: "clone", put: false}, sort: false, forceFallback: true});
  Sortable.create($("report-dimensions"), {group: {name: "report", pull: false, put: true}, forceFallback: true, onAdd: onDrop("dim"),
    onUpdate: function (ev) { dims.splice(ev.newIndex, 0, dims.splice(ev.oldIndex, 1)[0]); renderZones(); preview(); }});
  Sortable.create($("report-measures"), {group: {name: "report", pull: false, put: true}, forceFallback: true, onAdd: onDrop("measure"),
    onUpdate: function (ev) { measures.splice(ev.newIndex, 0, measures.splice(ev.oldIndex, 1)[0]); renderZones(); preview(); }});

  var previewTimer = null, previewUrl = null;
  function preview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(function () {
      if (!measures.length) { return; }
      root.setAttribute("data-preview", "loading");
      D.call("POST", previewUrl, {body: body()}).then(function (r) {
        if (!r._ok || !r.ok) {
          var e = r._ok ? {title: T.problems, problems: r.problems} : D.errorOf(r);
          D.show(messages, D.problemList(e.title, e.problems));
          root.setAttribute("data-preview", "error");
          return;
        }
        D.show(messages, null);
        var box = $("report-preview-chart"), table = $("report-preview-table");
        table.innerHTML = "";
        if (r.option && window.echarts) {
          box.hidden = false;
          if (!chart) { chart = window.echarts.init(box, null, {locale: LOC === "en" ? "EN" : "ZH"}); window.loomReportChart = chart; }
          chart.off("finished");
          chart.on("finished", function () { root.setAttribute("data-preview", "ready"); });
          chart.setOption(r.option, true);
        } else {
          box.hidden = true;
          var t = el("table", {className: "table"});
          var head = el("tr");
          r.result.columns.forEach(function (c) { head.appendChild(el("th", {text: c.label})); });
          t.appendChild(head);
          r.result.rows.forEach(function (row) {
            var tr = el("tr");
            r.result.columns.forEach(function (c) { tr.appendChild(el("td", {text: row[c.key] === null || row[c.key] === undefined ? "" : String(row[c.key])})); });
            t.appendChild(tr);
          });
          table.appendChild(t);
          root.setAttribute("data-preview", "ready");
        }
      });
    }, 250);
  }
  function save() {
    D.call("POST", root.getAttribute("data-draft"), {items: [{kind: "report", key: KEY, body: body(), lock_version: lock}]}).then(function (r) {
      if (!r._ok) { var e = D.errorOf(r); return D.show(messages, D.problemList(e.title, e.problems)); }
      lock = r.saved.report.lock_version;
      D.show(messages, el("div", {className: "alert alert-ok", role: "status", text: T.saved}));
    });
  }
  function publish() {
    var dash = root.querySelector("input[name=dashboard]").value.trim();
    D.call("POST", root.getAttribute("data-publish"), {body: body(), version: version, dashboard: dash || null}).then(function (r) {
      if (!r._ok) { var e = D.errorOf(r); root.setAttribute("data-last", "error"); return D.show(messages, D.problemList(e.title, e.problems)); }
      version = r.published[0].version;
      lock = 0;
      var box = el("div", {className: "alert alert-ok", role: "status"}, [el("strong", {text: T.published + " "})]);
      if (r.dashboard_url) { box.appendChild(el("a", {className: "btn btn-sm", href: r.dashboard_url, "data-dashboard-link": "1", text: T.open})); }
      D.show(messages, box);
      root.setAttribute("data-last", "ok");
    });
  }
  root.addEventListener("click", function (ev) {
    var b = ev.target.closest("[data-action]");
    if (!b) { return; }
    var a = b.getAttribute("data-action");
    if (a === "preview") { preview(); } else if (a === "save") { save(); } else if (a === "publish") { publish(); }
  });
  root.addEventListener("change", function (ev) {
    if (ev.target.id === "report-source") { dims = []; measures = []; renderFields(); renderZones(); return; }
    if (ev.target.closest(".designer-canvas")) { preview(); }
  });

  D.call("GET", root.getAttribute("data-api")).then(function (data) {
    previewUrl = data.preview_url;
    version = data.report.version;
    lock = data.report.lock_version;
    return D.call("GET", data.meta_url).then(function (m) {
      meta = m;
      var src = $("report-source");
      meta.entities.forEach(function (e) { src.appendChild(el("option", {value: e.key, text: e.label})); });
      var dl = $("dashboards");
      (meta.dashboards || []).forEach(function (d) { dl.appendChild(el("option", {value: d.key, text: d.label})); });
      if (data.report.body) { loadBody(data.report.body); }
      renderFields();
      renderZones();
      preview();
      root.setAttribute("data-ready", "1");
    });
  });
})();
