/* Dashboards: draw server-built ECharts options; drill down on click. No inline script, no eval:
   options come from the server as plain JSON (definitions never carry JavaScript). */
(function () {
  "use strict";
  var root = document.getElementById("loom-dashboard");
  if (!root || !window.echarts) { return; }
  var apiUrl = root.getAttribute("data-api");
  var locale = root.getAttribute("data-locale") === "en" ? "EN" : "ZH";
  var charts = {};
  window.loomCharts = charts;

  function filters() {
    var q = new URL(apiUrl, window.location.origin).searchParams;
    return q;
  }

  function draw(el, widget) {
    var chart = charts[widget.key];
    if (!chart) {
      chart = echarts.init(el, null, {locale: locale, renderer: "canvas"});
      charts[widget.key] = chart;
      chart.loomStack = [];
      chart.on("click", function (ev) { onClick(el, chart, ev); });
      window.addEventListener("resize", function () { chart.resize(); });
    }
    chart.loomWidget = widget;
    el.setAttribute("data-ready", "0");
    el.setAttribute("data-level", widget.drill ? widget.drill.level : "");
    chart.off("finished");
    chart.on("finished", function () { el.setAttribute("data-ready", "1"); });
    chart.setOption(widget.option, true);
    var up = el.closest(".loom-widget").querySelector(".loom-drill-up");
    if (up) { up.hidden = chart.loomStack.length === 0; }
  }

  function onClick(el, chart, ev) {
    var d = chart.loomWidget.drill;
    if (!d || ev.dataIndex == null) { return; }
    if (d.next) {
      var key = d.keys[ev.dataIndex];
      var q = filters();
      q.set("level", d.next);
      q.set("drill", (d.path ? d.path + "," : "") + d.level + ":" + key);
      chart.loomStack.push(chart.loomWidget);
      load(d.url + "?" + q.toString()).then(function (w) { draw(el, w); });
    } else if (d.records && d.records[ev.dataIndex]) {
      window.location.href = d.records[ev.dataIndex];
    }
  }

  function load(url) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); });
  }

  root.addEventListener("click", function (ev) {
    var btn = ev.target.closest(".loom-drill-up");
    if (!btn) { return; }
    var el = btn.closest(".loom-widget").querySelector(".loom-chart");
    var chart = charts[el.getAttribute("data-chart")];
    if (chart && chart.loomStack.length) { draw(el, chart.loomStack.pop()); }
  });

  load(apiUrl).then(function (data) {
    data.widgets.forEach(function (w) {
      var el = root.querySelector('.loom-chart[data-chart="' + w.key + '"]');
      if (el && w.option) { draw(el, w); }
    });
    root.setAttribute("data-loaded", "1");
  }).catch(function (err) {
    root.setAttribute("data-error", String(err));
  });
})();
