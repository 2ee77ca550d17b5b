/* The BPMN modeler: bpmn-js (prebuilt) with our moddle extension for the engine's attributes
   (spiffworkflow:properties / serviceTaskOperator, as engine/workflow/definitions.py reads them),
   our own side panel BESIDE the canvas (the bpmn.io watermark stays visible), palette and context
   pad translated through the server's catalog, and deploy-time validation shown on the elements. */
(function () {
  "use strict";
  var root = document.getElementById("bpmn-designer");
  if (!root || !window.BpmnJS || !window.LoomDesigner) { return; }
  var D = window.LoomDesigner, el = D.el;
  var T = JSON.parse(root.getAttribute("data-i18n"));
  var APP = root.getAttribute("data-app"), KEY = root.getAttribute("data-key");
  var messages = document.getElementById("designer-messages"), panel = document.getElementById("bpmn-panel");
  var modeler = null, meta = {roles: [], forms: [], actions: []}, version = 0, lock = 0, badges = [];

  function blank(key) {
    return '<?xml version="1.0" encoding="UTF-8"?>\n' +
      '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" ' +
      'xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" xmlns:di="http://www.omg.org/spec/DD/20100524/DI" ' +
      'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="defs_' + key + '" targetNamespace="http://loom.example/bpmn">\n' +
      '  <bpmn:process id="' + key + '" name="' + key + '" isExecutable="true">\n' +
      '    <bpmn:startEvent id="start"><bpmn:outgoing>flow_1</bpmn:outgoing></bpmn:startEvent>\n' +
      '    <bpmn:endEvent id="end"><bpmn:incoming>flow_1</bpmn:incoming></bpmn:endEvent>\n' +
      '    <bpmn:sequenceFlow id="flow_1" sourceRef="start" targetRef="end"/>\n' +
      '  </bpmn:process>\n' +
      '  <bpmndi:BPMNDiagram id="diagram"><bpmndi:BPMNPlane id="plane" bpmnElement="' + key + '">\n' +
      '    <bpmndi:BPMNShape id="start_di" bpmnElement="start"><dc:Bounds x="152" y="102" width="36" height="36"/></bpmndi:BPMNShape>\n' +
      '    <bpmndi:BPMNShape id="end_di" bpmnElement="end"><dc:Bounds x="452" y="102" width="36" height="36"/></bpmndi:BPMNShape>\n' +
      '    <bpmndi:BPMNEdge id="flow_1_di" bpmnElement="flow_1"><di:waypoint x="188" y="120"/><di:waypoint x="452" y="120"/></bpmndi:BPMNEdge>\n' +
      '  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>\n</bpmn:definitions>\n';
  }

  function translateModule(dict) {
    function translate(template, replacements) {
      var text = dict[template] || template;
      return text.replace(/{([^}]+)}/g, function (_, k) { return replacements && replacements[k] !== undefined ? replacements[k] : "{" + k + "}"; });
    }
    return {translate: ["value", translate]};
  }

  // -- extension elements (spiffworkflow:*) -----------------------------------------------------------
  function svc(name) { return modeler.get(name); }
  function ext(bo, create) {
    var e = bo.extensionElements;
    if (!e && create) { e = svc("moddle").create("bpmn:ExtensionElements", {values: []}); }
    return e;
  }
  function findExt(bo, type) {
    var e = ext(bo);
    return e ? (e.values || []).filter(function (v) { return v.$type === type; })[0] : null;
  }
  function getProp(bo, name) {
    var props = findExt(bo, "spiffworkflow:Properties");
    var p = props ? (props.properties || []).filter(function (x) { return x.name === name; })[0] : null;
    return p ? p.value : "";
  }
  function setProp(element, name, value) {
    var bo = element.businessObject, moddle = svc("moddle");
    var e = ext(bo, true);
    var props = (e.values || []).filter(function (v) { return v.$type === "spiffworkflow:Properties"; })[0];
    if (!props) { props = moddle.create("spiffworkflow:Properties", {properties: []}); e.values.push(props); props.$parent = e; }
    var list = (props.properties || []).filter(function (x) { return x.name !== name; });
    if (value) { var p = moddle.create("spiffworkflow:Property", {name: name, value: value}); p.$parent = props; list.push(p); }
    props.properties = list;
    svc("modeling").updateProperties(element, {extensionElements: e});
  }
  function setOperator(element, action, paramsText, resultVariable) {
    var bo = element.businessObject, moddle = svc("moddle");
    var e = ext(bo, true);
    e.values = (e.values || []).filter(function (v) { return v.$type !== "spiffworkflow:ServiceTaskOperator"; });
    if (action) {
      var params = paramsText.split("\n").map(function (l) { return l.trim(); }).filter(Boolean).map(function (l) {
        var i = l.indexOf("=");
        return moddle.create("spiffworkflow:Parameter", {id: l.slice(0, i).trim(), type: "any", value: l.slice(i + 1).trim()});
      });
      var op = moddle.create("spiffworkflow:ServiceTaskOperator", {id: action, resultVariable: resultVariable || undefined,
                                                                  parameters: moddle.create("spiffworkflow:Parameters", {parameters: params})});
      op.$parent = e;
      e.values.push(op);
    }
    svc("modeling").updateProperties(element, {extensionElements: e});
  }
  function operatorOf(bo) {
    var op = findExt(bo, "spiffworkflow:ServiceTaskOperator");
    if (!op) { return {action: "", params: "", result: ""}; }
    var params = op.parameters ? (op.parameters.parameters || []) : [];
    return {action: op.id || "", result: op.resultVariable || "",
            params: params.map(function (p) { return p.id + " = " + p.value; }).join("\n")};
  }
  function timerOf(bo) {
    var defs = bo.eventDefinitions || [];
    return defs.filter(function (d) { return d.$type === "bpmn:TimerEventDefinition"; })[0] || null;
  }

  // -- the side panel -----------------------------------------------------------------------------------
  function row(labelText, control) {
    return el("div", {className: "field prop"}, [el("label", {className: "field-label", text: labelText}), control]);
  }
  function select(name, value, options) {
    var s = el("select", {className: "input", name: name, "data-prop": name});
    s.appendChild(el("option", {value: "", text: T.none}));
    options.forEach(function (o) {
      var opt = el("option", {value: o[0], text: o[1]});
      if (o[0] === value) { opt.selected = true; }
      s.appendChild(opt);
    });
    return s;
  }
  function textInput(name, value, area) {
    var i = el(area ? "textarea" : "input", {className: "input", name: name, "data-prop": name, rows: area ? 4 : null});
    i.value = value || "";
    return i;
  }
  function exprCheck(input, mode) {
    var out = el("div", {className: "expr-check"});
    var timer = null;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        D.call("POST", root.getAttribute("data-check"), {source: input.value, mode: mode}).then(function (r) {
          out.className = "expr-check " + (r.problems && r.problems.length ? "bad" : "good");
          out.textContent = r.problems && r.problems.length ? r.problems.map(function (p) { return p.message; }).join("; ") : T.ok;
        });
      }, 250);
    });
    return out;
  }
  function renderPanel(element) {
    panel.innerHTML = "";
    if (!element || element.type === "bpmn:Process" || element.type === "label") {
      panel.appendChild(el("p", {className: "muted", text: T.nothing}));
      return;
    }
    var bo = element.businessObject, type = element.type, modeling = svc("modeling");
    panel.setAttribute("data-element", element.id);
    panel.appendChild(el("h2", {className: "section-title", text: type.replace("bpmn:", "") + " · " + element.id}));
    var controls = [];
    if (type === "bpmn:Lane") {
      var role = select("role", bo.name || "", meta.roles.map(function (r) { return [r.key, r.label + " (" + r.key + ")"]; }));
      role.addEventListener("change", function () { modeling.updateProperties(element, {name: role.value}); });
      controls.push(row(T.lane, role));
    } else {
      var name = textInput("name", bo.name);
      name.addEventListener("change", function () { modeling.updateProperties(element, {name: name.value}); });
      controls.push(row(T.name, name));
    }
    if (type === "bpmn:UserTask") {
      var form = select("formKey", getProp(bo, "formKey"), meta.forms.map(function (f) { return [f, f]; }));
      form.addEventListener("change", function () { setProp(element, "formKey", form.value); });
      controls.push(row(T.form, form));
    }
    if (type === "bpmn:ServiceTask") {
      var op = operatorOf(bo);
      var action = select("action", op.action, meta.actions.map(function (a) { return [a, a]; }));
      var params = textInput("parameters", op.params, true);
      var result = textInput("resultVariable", op.result);
      var apply = function () { setOperator(element, action.value, params.value, result.value); };
      action.addEventListener("change", apply);
      params.addEventListener("change", apply);
      result.addEventListener("change", apply);
      controls.push(row(T.action, action), row(T.params, params), row(T.result, result));
    }
    if (type === "bpmn:ScriptTask") {
      var script = textInput("script", bo.script, true);
      script.addEventListener("change", function () { modeling.updateProperties(element, {scriptFormat: "python", script: script.value}); });
      controls.push(row(T.script, script), exprCheck(script, "exec"));
    }
    if (type === "bpmn:SequenceFlow" && bo.sourceRef && /Gateway$/.test(bo.sourceRef.$type)) {
      var cond = textInput("condition", bo.conditionExpression ? bo.conditionExpression.body : "");
      cond.addEventListener("change", function () {
        var expr = cond.value ? svc("moddle").create("bpmn:FormalExpression", {body: cond.value}) : undefined;
        modeling.updateProperties(element, {conditionExpression: expr});
      });
      controls.push(row(T.condition, cond), exprCheck(cond, "eval"));
    }
    var timer = timerOf(bo);
    if (timer) {
      var current = timer.timeDuration ? (timer.timeDuration.body || "") : "";
      var m = /P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?/.exec(current.replace(/"/g, "")) || [];
      var d = el("input", {className: "input num", type: "number", min: 0, name: "days", value: m[1] || 0});
      var h = el("input", {className: "input num", type: "number", min: 0, name: "hours", value: m[2] || 0});
      var mi = el("input", {className: "input num", type: "number", min: 0, name: "minutes", value: m[3] || 0});
      var shown = el("code", {className: "timer-value", text: current});
      var applyTimer = function () {
        var dv = parseInt(d.value || "0", 10), hv = parseInt(h.value || "0", 10), mv = parseInt(mi.value || "0", 10);
        var iso = "P" + (dv ? dv + "D" : "") + (hv || mv ? "T" + (hv ? hv + "H" : "") + (mv ? mv + "M" : "") : "");
        if (iso === "P") { iso = "PT0M"; }
        var body = '"' + iso + '"';
        shown.textContent = body;
        var expr = svc("moddle").create("bpmn:FormalExpression", {body: body});
        modeling.updateModdleProperties(element, timer, {timeDuration: expr, timeDate: undefined, timeCycle: undefined});
      };
      [d, h, mi].forEach(function (x) { x.addEventListener("change", applyTimer); });
      controls.push(row(T.timer, el("div", {className: "timer-picker"}, [d, el("span", {text: T.days}), h, el("span", {text: T.hours}),
                                                                             mi, el("span", {text: T.minutes})])), shown);
    }
    controls.forEach(function (c) { panel.appendChild(c); });
  }

  // -- problems on the elements -------------------------------------------------------------------------
  function clearBadges() {
    var overlays = svc("overlays"), canvas = svc("canvas");
    badges.forEach(function (b) { overlays.remove(b.overlay); try { canvas.removeMarker(b.id, "loom-error"); } catch (e) { /* gone */ } });
    badges = [];
  }
  function showProblems(problems) {
    clearBadges();
    var registry = svc("elementRegistry"), overlays = svc("overlays"), canvas = svc("canvas");
    problems.forEach(function (p) {
      var id = p.path;
      if (!id || !registry.get(id)) { return; }
      canvas.addMarker(id, "loom-error");
      var badge = el("div", {className: "loom-error-badge", title: p.message, "data-problem-for": id, text: "!"});
      badges.push({id: id, overlay: overlays.add(id, "loom-problem", {position: {top: -8, right: 8}, html: badge})});
    });
  }

  // -- lifecycle ---------------------------------------------------------------------------------------
  function xml() { return modeler.saveXML({format: true}).then(function (r) { return r.xml; }); }
  function item(withLock, text) {
    var it = {kind: "workflow", key: KEY, body: {key: KEY, xml: text}};
    if (withLock) { it.lock_version = lock; } else { it.version = version; }
    return it;
  }
  function fail(data) { var e = D.errorOf(data); D.show(messages, D.problemList(e.title, e.problems)); showProblems(e.problems); root.setAttribute("data-last", "error"); }
  function ok(text) { D.show(messages, el("div", {className: "alert alert-ok", role: "status", text: text})); root.setAttribute("data-last", "ok"); }
  function validate() {
    return xml().then(function (text) {
      return D.call("POST", root.getAttribute("data-validate"), {items: [item(false, text)]});
    }).then(function (r) {
      if (!r._ok) { fail(r); return false; }
      if (!r.ok) {
        D.show(messages, D.problemList(T.problems, r.problems));
        showProblems(r.problems);
        root.setAttribute("data-last", "invalid");
        return false;
      }
      clearBadges();
      ok(T.valid);
      return true;
    });
  }
  function save() {
    return xml().then(function (text) { return D.call("POST", root.getAttribute("data-draft"), {items: [item(true, text)]}); })
      .then(function (r) { if (!r._ok) { return fail(r); } lock = r.saved.workflow.lock_version; ok(T.saved); return validate(); });
  }
  function publish() {
    return xml().then(function (text) { return D.call("POST", root.getAttribute("data-publish"), {items: [item(false, text)]}); })
      .then(function (r) {
        if (!r._ok) { return fail(r); }
        var p = r.published[0];
        version = p.version;
        lock = 0;
        clearBadges();
        ok(p.changed ? T.published + " v" + p.version : T.nochange);
        root.setAttribute("data-published", String(p.version));
      });
  }

  root.addEventListener("click", function (ev) {
    var b = ev.target.closest("[data-action]");
    if (!b) { return; }
    var a = b.getAttribute("data-action");
    if (a === "validate") { validate(); } else if (a === "save") { save(); } else if (a === "publish") { publish(); }
  });

  D.call("GET", root.getAttribute("data-api")).then(function (data) {
    return Promise.all([D.call("GET", data.meta_url), D.call("GET", data.moddle_url), D.call("GET", data.i18n_url)])
      .then(function (res) {
        meta = res[0];
        var moddleExt = res[1]; delete moddleExt._status; delete moddleExt._ok;
        var dict = res[2]; delete dict._status; delete dict._ok;
        version = data.workflow.version;
        lock = data.workflow.lock_version;
        modeler = new window.BpmnJS({container: "#bpmn-canvas", moddleExtensions: {spiffworkflow: moddleExt},
                                     additionalModules: [translateModule(dict)]});
        window.loomModeler = modeler;
        modeler.on("selection.changed", function (e) { renderPanel(e.newSelection[0]); });
        modeler.on("element.changed", function (e) {
          var sel = svc("selection").get()[0];
          if (sel && e.element === sel && !panel.contains(document.activeElement)) { renderPanel(sel); }
        });
        var body = data.workflow.body;
        return modeler.importXML(body && body.xml ? body.xml : blank(KEY));
      });
  }).then(function () {
    svc("canvas").zoom("fit-viewport");
    renderPanel(null);
    root.setAttribute("data-ready", "1");
  }).catch(function (err) {
    D.show(messages, D.problemList(String(err && err.message || err), []));
  });
})();
