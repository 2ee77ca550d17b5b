/* Record page graph panels: draw the server-built ECharts graph options held in data-option.
   No inline script, no eval (CSP); clicking a node that is a record opens its page. */
(function () {
  "use strict";
  if (!window.echarts) { return; }
  var charts = [];
  window.loomGraphs = charts;
  document.querySelectorAll(".loom-graph[data-option]").forEach(function (el) {
    var option;
    try { option = JSON.parse(el.getAttribute("data-option")); } catch (e) {
      el.setAttribute("data-error", String(e)); return;
    }
    var chart = echarts.init(el, null, {renderer: "canvas"});
    chart.on("finished", function () { el.setAttribute("data-ready", "1"); });
    chart.on("click", function (ev) {
      if (ev.dataType === "node" && ev.data && ev.data.value) { window.location.href = ev.data.value; }
    });
    chart.setOption(option);
    charts.push(chart);
    window.addEventListener("resize", function () { chart.resize(); });
  });
})();
