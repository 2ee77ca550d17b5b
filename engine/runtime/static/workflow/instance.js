/* The instance page: draw the process with the bpmn-js navigated viewer and mark its steps.
   Completed steps get the `loom-done` marker, current ones (waiting, ready, failed) `loom-current`.
   The bpmn.io watermark the viewer adds (a.bjs-powered-by) is left as it is: its licence requires
   it to stay visible. No inline script: the data comes from data-* attributes (CSP). */
(function () {
  "use strict";

  function parse(el, name) {
    try { return JSON.parse(el.getAttribute(name) || "[]"); } catch (e) { return []; }
  }

  function draw(el) {
    if (!window.BpmnJS) { return; }
    var viewer = new window.BpmnJS({ container: el });
    fetch(el.getAttribute("data-xml-url"), { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(function (xml) { return viewer.importXML(xml); })
      .then(function () {
        var canvas = viewer.get("canvas");
        var registry = viewer.get("elementRegistry");
        canvas.zoom("fit-viewport", "auto");
        parse(el, "data-completed").forEach(function (id) {
          if (registry.get(id)) { canvas.addMarker(id, "loom-done"); }
        });
        parse(el, "data-current").forEach(function (id) {
          if (registry.get(id)) { canvas.addMarker(id, "loom-current"); }
        });
        el.setAttribute("data-ready", "true");
      })
      .catch(function () {
        var msg = document.createElement("div");
        msg.className = "alert alert-error";
        msg.textContent = el.getAttribute("data-error-text") || "diagram error";
        el.appendChild(msg);
        el.setAttribute("data-ready", "error");
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("bpmn-canvas");
    if (el) { draw(el); }
  });
})();
