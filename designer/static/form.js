/* The form and entity designer: palette -> canvas of sections (tabs, rows of 1-4 columns, child
   grids) -> the entity and form definitions as JSON, exactly the bundle format. SortableJS does the
   dragging; every change goes through `change()`, which keeps undo/redo history and refreshes the
   server-rendered preview (htmx). Expressions are checked on the server as they are typed. */
(function () {
  "use strict";
  var root = document.getElementById("form-designer");
  if (!root || !window.Sortable || !window.LoomDesigner) { return; }
  var D = window.LoomDesigner, el = D.el;
  var T = JSON.parse(document.getElementById("i18n").getAttribute("data-i18n"));
  var APP = root.getAttribute("data-app"), ENTITY = root.getAttribute("data-entity");
  var LOC = root.getAttribute("data-locale") || "zh-CN";
  var messages = document.getElementById("designer-messages");
  var statusEl = document.getElementById("designer-status");
  var canvas = document.getElementById("canvas"), props = document.getElementById("props");
  var state = null, formKey = null, locks = {entity: 0, form: 0}, versions = {entity: 0, form: 0};
  var undo = [], redo = [], selected = null, meta = {entities: []}, previewTimer = null;
  window.loomFormDesigner = {state: function () { return state; }};

  function label(v, fallback) {
    if (!v) { return fallback || ""; }
    if (typeof v === "string") { return v; }
    return v[LOC] || v["zh-CN"] || v.en || fallback || "";
  }
  function itemKey(it) { return typeof it === "string" ? it : it.field; }
  function fieldByKey(key, list) {
    return (list || state.entity.fields).filter(function (f) { return f.key === key; })[0];
  }
  function status(text) { statusEl.textContent = text || ""; }

  // -- state, history -------------------------------------------------------------------------------
  function snapshot() { return JSON.stringify(state); }
  function change(fn) {
    var before = snapshot();
    fn();
    if (snapshot() !== before) {       // a no-op (e.g. a repeated change event) is not a history step
      undo.push(before);
      if (undo.length > 200) { undo.shift(); }
      redo = [];
    }
    render();
  }
  function restore(from, to) {
    if (!from.length) { return; }
    to.push(snapshot());
    state = JSON.parse(from.pop());
    render();
  }
  function cleaned() {
    var form = JSON.parse(JSON.stringify(state.form));
    form.sections = form.sections.filter(function (s) { return s.fields && s.fields.length; });
    return {entity: state.entity, form: form};
  }
  function items(withLock) {
    var c = cleaned();
    return [{kind: "entity", key: ENTITY, body: c.entity, lock_version: locks.entity, version: versions.entity},
            {kind: "form", key: formKey, body: c.form, lock_version: locks.form, version: versions.form}]
      .map(function (it) { if (withLock) { delete it.version; } else { delete it.lock_version; } return it; });
  }

  // -- loading ---------------------------------------------------------------------------------------
  function load() {
    return Promise.all([D.call("GET", root.getAttribute("data-api")), D.call("GET", root.getAttribute("data-meta"))])
      .then(function (res) {
        var data = res[0];
        meta = res[1];
        formKey = data.form_key;
        versions = {entity: data.entity.version, form: data.form.version};
        locks = {entity: data.entity.lock_version, form: data.form.lock_version};
        var ent = data.entity.body || {key: ENTITY, label: {"zh-CN": ENTITY, en: ENTITY}, fields: []};
        var form = data.form.body || {key: formKey, entity: ENTITY, "default": true,
                                      label: {"zh-CN": label(ent.label, ENTITY), en: ENTITY}, sections: []};
        if (!form.sections.length) {
          form.sections.push({label: {"zh-CN": "基本信息", en: "Basics"}, columns: 2, fields: []});
        }
        state = {entity: ent, form: form};
        undo = []; redo = [];
        root.setAttribute("data-staff-url", data.staff_url);
        render();
        if (data.entity.draft || data.form.draft) { status((data.entity.draft_author || data.form.draft_author || "") + " · draft"); }
      });
  }

  // -- rendering -------------------------------------------------------------------------------------
  function render() {
    canvas.innerHTML = "";
    var sections = el("div", {className: "canvas-sections", id: "canvas-sections"});
    state.form.sections.forEach(function (s, i) { sections.appendChild(renderSection(s, i)); });
    canvas.appendChild(sections);
    Sortable.create(sections, {handle: ".section-handle", animation: 120, forceFallback: true,
                               onEnd: function (ev) { moveSection(ev.oldIndex, ev.newIndex); }});
    renderUnplaced();
    renderProps();
    root.querySelector('[data-action="undo"]').disabled = !undo.length;
    root.querySelector('[data-action="redo"]').disabled = !redo.length;
    schedulePreview();
  }

  function renderSection(s, i) {
    var cols = s.columns || 1;
    var head = el("div", {className: "section-head"}, [
      el("span", {className: "section-handle", title: "drag", text: "⠿"}),
      el("span", {className: "section-name", text: label(s.label, T.section + " " + (i + 1))}),
      s.tab ? el("span", {className: "badge", text: label(s.tab)}) : null,
      el("span", {className: "muted", text: cols + " ×"})]);
    var box = el("div", {className: "canvas-section" + (selected && selected.section === i ? " selected" : ""),
                         "data-section": i}, [head]);
    head.addEventListener("click", function () { select({section: i}); });
    var list = el("ul", {className: "section-fields cols-" + cols, "data-section": i, "data-empty": T.empty});
    (s.fields || []).forEach(function (it) { list.appendChild(renderItem(it)); });
    box.appendChild(list);
    Sortable.create(list, {group: {name: "fields", pull: true, put: ["fields", "palette"]}, animation: 120, forceFallback: true,
                           onAdd: onAdd, onUpdate: onMove, onRemove: function () {}});
    return box;
  }

  function renderItem(it) {
    var key = itemKey(it), f = fieldByKey(key);
    var span = typeof it === "string" ? 1 : (it.span || 1);
    var li = el("li", {className: "canvas-field span-" + (f && f.type === "table" ? "full" : span) +
                       (selected && selected.field === key && !selected.table ? " selected" : ""), "data-key": key}, [
      el("span", {className: "field-name", text: f ? label(f.label, key) : key}),
      el("span", {className: "field-type muted", text: f ? f.type : "?"}),
      f && f.required ? el("span", {className: "req", text: "*"}) : null]);
    li.addEventListener("click", function (ev) { ev.stopPropagation(); select({field: key}); });
    if (f && f.type === "table") {
      var grid = el("ul", {className: "child-fields", "data-table": key, "data-empty": T.child_empty});
      (f.fields || []).forEach(function (c) {
        var cli = el("li", {className: "child-field" + (selected && selected.table === key && selected.field === c.key ? " selected" : ""),
                            "data-key": c.key}, [el("span", {text: label(c.label, c.key)}), el("small", {className: "muted", text: " " + c.type})]);
        cli.addEventListener("click", function (ev) { ev.stopPropagation(); select({field: c.key, table: key}); });
        grid.appendChild(cli);
      });
      li.appendChild(grid);
      Sortable.create(grid, {group: {name: "child", pull: false, put: ["palette"]}, animation: 120, forceFallback: true,
                             onAdd: onAddChild, onUpdate: function (ev) { moveChild(key, ev.oldIndex, ev.newIndex); }});
    }
    return li;
  }

  function renderUnplaced() {
    var ul = document.getElementById("unplaced");
    ul.innerHTML = "";
    var placed = {};
    state.form.sections.forEach(function (s) { (s.fields || []).forEach(function (it) { placed[itemKey(it)] = true; }); });
    state.entity.fields.forEach(function (f) {
      if (!placed[f.key]) { ul.appendChild(el("li", {className: "palette-item placed-field", "data-key": f.key, text: label(f.label, f.key)})); }
    });
  }

  function select(sel) { selected = sel; render(); }

  // -- drag and drop --------------------------------------------------------------------------------
  function uniqueKey(base, list) {
    var n = 1, key = base;
    var taken = {};
    (list || state.entity.fields).forEach(function (f) { taken[f.key] = true; });
    while (taken[key]) { n += 1; key = base + "_" + n; }
    return key;
  }
  function newField(type, list) {
    var typeLabel = (document.querySelector('#palette [data-type="' + type + '"]') || {}).textContent || type;
    var key = uniqueKey(type === "table" ? "lines" : type.replace("multi_select", "tags"), list);
    var f = {key: key, type: type, label: {"zh-CN": typeLabel.trim(), en: key}};
    if (type === "select" || type === "multi_select") {
      f.options = [{value: "a", label: {"zh-CN": "选项A", en: "Option A"}}, {value: "b", label: {"zh-CN": "选项B", en: "Option B"}}];
    }
    if (type === "decimal") { f.precision = 18; f.scale = 2; }
    if (type === "link") { f.entity = (meta.entities[0] || {}).key || ENTITY; }
    if (type === "computed") { f.expression = "1"; f.result = "integer"; }
    if (type === "table") { f.fields = [{key: "name", type: "text", label: {"zh-CN": "名称", en: "Name"}}]; }
    return f;
  }
  function onAdd(ev) {
    var target = parseInt(ev.to.getAttribute("data-section"), 10), idx = ev.newIndex;
    var type = ev.item.getAttribute("data-type"), existing = ev.item.getAttribute("data-key");
    if (ev.item.parentNode) { ev.item.parentNode.removeChild(ev.item); }
    change(function () {
      var item;
      if (type) {
        var f = newField(type);
        state.entity.fields.push(f);
        item = f.key;
        selected = {field: f.key};
      } else {
        item = existing;
        state.form.sections.forEach(function (s) {
          s.fields = (s.fields || []).filter(function (it) {
            if (itemKey(it) === existing) { item = it; return false; }
            return true;
          });
        });
      }
      state.form.sections[target].fields.splice(idx, 0, item);
    });
  }
  function onMove(ev) {
    var s = parseInt(ev.to.getAttribute("data-section"), 10);
    change(function () {
      var list = state.form.sections[s].fields;
      list.splice(ev.newIndex, 0, list.splice(ev.oldIndex, 1)[0]);
    });
  }
  function onAddChild(ev) {
    var table = ev.to.getAttribute("data-table"), type = ev.item.getAttribute("data-type"), idx = ev.newIndex;
    ev.item.parentNode.removeChild(ev.item);
    if (!type || type === "table") { render(); return; }
    change(function () {
      var t = fieldByKey(table);
      var f = newField(type, t.fields);
      t.fields.splice(idx, 0, f);
      selected = {field: f.key, table: table};
    });
  }
  function moveChild(table, from, to) {
    change(function () { var l = fieldByKey(table).fields; l.splice(to, 0, l.splice(from, 1)[0]); });
  }
  function moveSection(from, to) {
    if (from === to) { return; }
    change(function () { var l = state.form.sections; l.splice(to, 0, l.splice(from, 1)[0]); });
  }
  Sortable.create(document.getElementById("palette"), {group: {name: "palette", pull: "clone", put: false},
                                                       sort: false, forceFallback: true});
  Sortable.create(document.getElementById("unplaced"), {group: {name: "fields", pull: "clone", put: false},
                                                        sort: false, forceFallback: true});

  // -- property panel ---------------------------------------------------------------------------------
  function input(name, value, attrs) {
    var id = "prop-" + name;
    var inp;
    if (attrs && attrs.kind === "textarea") {
      inp = el("textarea", {className: "input", id: id, name: name, rows: 3});
      inp.value = value || "";
    } else if (attrs && attrs.kind === "select") {
      inp = el("select", {className: "input", id: id, name: name});
      attrs.options.forEach(function (o) {
        var opt = el("option", {value: o[0], text: o[1]});
        if (String(value) === String(o[0])) { opt.selected = true; }
        inp.appendChild(opt);
      });
    } else if (attrs && attrs.kind === "checkbox") {
      inp = el("input", {type: "checkbox", id: id, name: name});
      inp.checked = !!value;
    } else {
      inp = el("input", {className: "input", id: id, name: name, type: "text", autocomplete: "off"});
      inp.value = value === undefined || value === null ? "" : value;
    }
    var wrap = el("div", {className: "field prop"}, [el("label", {className: "field-label", "for": id, text: T[name] || name}), inp]);
    if (attrs && attrs.expression) {
      var out = el("div", {className: "expr-check", "data-check-for": name});
      wrap.appendChild(out);
      inp.classList.add("expr");
      inp.addEventListener("input", function () { checkExpression(inp.value, out); });
      if (value) { checkExpression(value, out); }
    }
    return wrap;
  }
  var checkTimers = {};
  function checkExpression(source, out) {
    var name = out.getAttribute("data-check-for");
    clearTimeout(checkTimers[name]);
    if (!source.trim()) { out.textContent = ""; out.className = "expr-check"; return; }
    checkTimers[name] = setTimeout(function () {
      D.call("POST", root.getAttribute("data-check"), {source: source, mode: "eval"}).then(function (r) {
        if (!r._ok) { return; }
        out.className = "expr-check " + (r.problems.length ? "bad" : "good");
        out.textContent = r.problems.length ? r.problems.map(function (p) { return p.message; }).join("; ") : T.ok;
      });
    }, 250);
  }
  function optionsText(opts) {
    return (opts || []).map(function (o) {
      if (typeof o !== "object") { return String(o); }
      var l = o.label || {};
      return o.value + (o.label ? "=" + (typeof l === "string" ? l : (l["zh-CN"] || "") + "|" + (l.en || "")) : "");
    }).join("\n");
  }
  function parseOptions(text) {
    return text.split("\n").map(function (l) { return l.trim(); }).filter(Boolean).map(function (l) {
      var parts = l.split("=");
      if (parts.length < 2) { return l; }
      var names = parts.slice(1).join("=").split("|");
      return {value: parts[0].trim(), label: {"zh-CN": names[0].trim(), en: (names[1] || names[0]).trim()}};
    });
  }
  function renderProps() {
    props.innerHTML = "";
    if (!selected) { props.appendChild(el("p", {className: "muted", text: "…"})); return; }
    if (selected.section !== undefined) { return sectionProps(state.form.sections[selected.section]); }
    var list = selected.table ? fieldByKey(selected.table).fields : state.entity.fields;
    var f = fieldByKey(selected.field, list);
    if (!f) { return; }
    var item = null;
    if (!selected.table) {
      state.form.sections.forEach(function (s) { (s.fields || []).forEach(function (it, i) { if (itemKey(it) === f.key) { item = {s: s, i: i}; } }); });
    }
    var types = ["text", "long_text", "integer", "decimal", "boolean", "date", "datetime", "select", "multi_select",
                 "link", "email", "phone", "attachment", "computed", "table"].map(function (t) { return [t, t]; });
    var rows = [
      input("key", f.key), input("label_zh", (f.label || {})["zh-CN"]), input("label_en", (f.label || {}).en),
      input("type", f.type, {kind: "select", options: types}), input("required", f.required, {kind: "checkbox"})];
    if (f.type !== "table" && f.type !== "computed") { rows.push(input("default", f["default"] === undefined ? "" : f["default"])); }
    if (f.type === "select" || f.type === "multi_select") { rows.push(input("options", optionsText(f.options), {kind: "textarea"})); }
    if (f.type === "link") { rows.push(input("entity", f.entity, {kind: "select", options: meta.entities.map(function (e) { return [e.key, e.label]; })})); }
    if (["integer", "decimal"].indexOf(f.type) >= 0) { rows.push(input("min", f.min)); rows.push(input("max", f.max)); }
    if (["text", "long_text", "email", "phone"].indexOf(f.type) >= 0) { rows.push(input("max_length", f.max_length)); rows.push(input("pattern", f.pattern)); }
    if (f.type === "computed") {
      rows.push(input("expression", f.expression, {expression: true}));
      rows.push(input("result", f.result || "text", {kind: "select", options: ["text", "integer", "decimal", "boolean", "date", "datetime"].map(function (t) { return [t, t]; })}));
    }
    rows.push(input("visible_if", f.visible_if, {expression: true}));
    var rule = (state.entity.validations || []).filter(function (v) { return (v.fields || []).length === 1 && v.fields[0] === f.key; })[0];
    if (!selected.table) {
      rows.push(input("validations", rule ? rule.expression : "", {expression: true}));
      rows.push(input("validation_msg", rule ? label(rule.message) : ""));
    }
    if (item && f.type !== "table") { rows.push(input("span", typeof item.s.fields[item.i] === "string" ? 1 : (item.s.fields[item.i].span || 1), {kind: "select", options: [[1, "1"], [2, "2"], [3, "3"], [4, "4"]]})); }
    var form = el("form", {className: "prop-form", "data-field": f.key}, rows);
    form.appendChild(el("button", {type: "button", className: "btn btn-sm btn-danger", "data-action": "remove-field", text: T.remove}));
    props.appendChild(el("h2", {className: "section-title", text: label(f.label, f.key)}));
    props.appendChild(form);
    form.addEventListener("change", function (ev) { applyField(f, item, ev.target); });
    form.querySelector('[data-action="remove-field"]').addEventListener("click", function () { removeField(f.key); });
  }
  function applyField(f0, item, target) {
    var name = target.name, v = target.type === "checkbox" ? target.checked : target.value;
    var table = selected.table, oldKey = f0.key;
    change(function () {
      var list = table ? fieldByKey(table).fields : state.entity.fields;
      var f = fieldByKey(oldKey, list);
      var setOr = function (k, val) { if (val === "" || val === false || val === null) { delete f[k]; } else { f[k] = val; } };
      if (name === "key" && /^[a-z][a-z0-9_]*$/.test(v)) {
        f.key = v;
        state.form.sections.forEach(function (s) {
          s.fields = s.fields.map(function (it) {
            if (itemKey(it) !== oldKey) { return it; }
            if (typeof it === "string") { return v; }
            it.field = v; return it;
          });
        });
        selected = {field: v, table: table};
      } else if (name === "label_zh" || name === "label_en") {
        f.label = f.label && typeof f.label === "object" ? f.label : {};
        f.label[name === "label_zh" ? "zh-CN" : "en"] = v;
      } else if (name === "type") {
        var fresh = newField(v, list);
        Object.keys(f).forEach(function (k) { if (["key", "label", "required", "help", "visible_if"].indexOf(k) < 0) { delete f[k]; } });
        Object.keys(fresh).forEach(function (k) { if (["key", "label"].indexOf(k) < 0) { f[k] = fresh[k]; } });
      } else if (name === "options") {
        f.options = parseOptions(v);
      } else if (name === "default") {
        if (v === "") { delete f["default"]; }
        else if (f.type === "integer" && /^-?\d+$/.test(v)) { f["default"] = parseInt(v, 10); }
        else if (f.type === "boolean") { f["default"] = v === "true" || v === "1"; }
        else { f["default"] = v; }
      } else if (name === "min" || name === "max") {
        setOr(name, v === "" ? "" : (isNaN(Number(v)) ? v : Number(v)));
      } else if (name === "max_length") {
        setOr(name, v === "" ? "" : parseInt(v, 10));
      } else if (name === "validations" || name === "validation_msg") {
        var rules = state.entity.validations = state.entity.validations || [];
        var rule = rules.filter(function (r) { return (r.fields || []).length === 1 && r.fields[0] === f.key; })[0];
        if (!rule) { rule = {expression: "", message: {"zh-CN": "", en: ""}, fields: [f.key]}; rules.push(rule); }
        if (name === "validations") { rule.expression = v; } else { rule.message = {"zh-CN": v, en: v}; }
        state.entity.validations = rules.filter(function (r) { return r.expression; });
        if (!state.entity.validations.length) { delete state.entity.validations; }
        rules.forEach(function (r) { if (!r.message || !label(r.message)) { r.message = {"zh-CN": "不符合规则", en: "Rule not met"}; } });
      } else if (name === "span") {
        var s = item.s, i = state.form.sections.indexOf(s) >= 0 ? item.i : -1;
        var sec = state.form.sections.filter(function (x) { return x.fields.some(function (it) { return itemKey(it) === f.key; }); })[0];
        i = sec.fields.map(itemKey).indexOf(f.key);
        var n = parseInt(v, 10);
        sec.fields[i] = n > 1 ? {field: f.key, span: n} : f.key;
      } else {
        setOr(name, v);
      }
    });
  }
  function removeField(key) {
    change(function () {
      if (selected.table) {
        var t = fieldByKey(selected.table);
        t.fields = t.fields.filter(function (f) { return f.key !== key; });
      } else {
        state.entity.fields = state.entity.fields.filter(function (f) { return f.key !== key; });
        state.form.sections.forEach(function (s) { s.fields = s.fields.filter(function (it) { return itemKey(it) !== key; }); });
      }
      selected = null;
    });
  }
  function sectionProps(s) {
    var rows = [input("label_zh", (s.label || {})["zh-CN"]), input("label_en", (s.label || {}).en),
                input("tab", s.tab ? label(s.tab) : ""),
                input("columns", s.columns || 1, {kind: "select", options: [[1, "1"], [2, "2"], [3, "3"], [4, "4"]]}),
                input("visible_if", s.visible_if, {expression: true})];
    var form = el("form", {className: "prop-form"}, rows);
    form.appendChild(el("button", {type: "button", className: "btn btn-sm btn-danger", "data-action": "remove-section", text: T.remove}));
    props.appendChild(el("h2", {className: "section-title", text: T.section}));
    props.appendChild(form);
    form.addEventListener("change", function (ev) {
      var name = ev.target.name, v = ev.target.value;
      change(function () {
        var sec = state.form.sections[selected.section];
        if (name === "label_zh" || name === "label_en") {
          sec.label = sec.label && typeof sec.label === "object" ? sec.label : {};
          sec.label[name === "label_zh" ? "zh-CN" : "en"] = v;
        } else if (name === "tab") {
          if (v) { sec.tab = {"zh-CN": v, en: v}; } else { delete sec.tab; }
        } else if (name === "columns") {
          sec.columns = parseInt(v, 10);
        } else if (name === "visible_if") {
          if (v) { sec.visible_if = v; } else { delete sec.visible_if; }
        }
      });
    });
    form.querySelector('[data-action="remove-section"]').addEventListener("click", function () {
      change(function () { state.form.sections.splice(selected.section, 1); selected = null; });
    });
  }

  // -- preview (server-rendered by the staff screens' macros) ---------------------------------------
  function schedulePreview() {
    clearTimeout(previewTimer);
    previewTimer = setTimeout(function () {
      document.getElementById("preview-draft").value = JSON.stringify(cleaned());
      if (window.htmx) { window.htmx.trigger(document.getElementById("preview-form"), "loom:preview"); }
    }, 300);
  }

  // -- lifecycle: save, validate, diff, publish, history ------------------------------------------------
  function fail(data) {
    var e = D.errorOf(data);
    D.show(messages, D.problemList(e.title, e.problems));
    root.setAttribute("data-last", "error");
  }
  function ok(node) {
    D.show(messages, node);
    root.setAttribute("data-last", "ok");
  }
  function save() {
    return D.call("POST", root.getAttribute("data-draft"), {items: items(true)}).then(function (r) {
      if (!r._ok) { return fail(r); }
      locks.entity = r.saved.entity.lock_version;
      locks.form = r.saved.form.lock_version;
      ok(el("div", {className: "alert alert-ok", role: "status", text: T.saved.replace("{v}", locks.entity)}));
    });
  }
  function validate(showDiff) {
    return D.call("POST", root.getAttribute("data-validate"), {items: items(false)}).then(function (r) {
      if (!r._ok) { fail(r); return null; }
      if (!r.ok) { D.show(messages, D.problemList(T.problems, r.problems)); root.setAttribute("data-last", "invalid"); return null; }
      var box = el("div", {className: "alert alert-ok", role: "status"}, [el("strong", {text: T.valid})]);
      box.appendChild(planList(r.migration));
      if (showDiff) {
        box.appendChild(el("h3", {text: T.diff}));
        var pre = el("pre", {className: "designer-diff"});
        Object.keys(r.diff).forEach(function (k) { r.diff[k].forEach(function (line) { pre.appendChild(document.createTextNode(k + " " + line + "\n")); }); });
        box.appendChild(pre);
      }
      ok(box);
      return r;
    });
  }
  function planList(steps) {
    var wrap = el("div", {className: "plan"}, [el("h3", {text: T.plan})]);
    if (!steps || !steps.length) { wrap.appendChild(el("p", {className: "muted", text: T.noplan})); return wrap; }
    var ul = el("ul");
    steps.forEach(function (s) { ul.appendChild(el("li", {className: /archive/.test(s) ? "destructive" : "", text: s})); });
    wrap.appendChild(ul);
    return wrap;
  }
  var dialog = document.getElementById("publish-dialog");
  function publish() {
    validate(true).then(function (r) {
      if (!r) { return; }
      var plan = dialog.querySelector("[data-plan]");
      D.show(plan, planList(r.migration));
      if (r.destructive) { plan.appendChild(el("p", {className: "alert alert-warn", text: T.destructive})); }
      var confirmBox = dialog.querySelector(".destructive-confirm");
      confirmBox.hidden = !r.destructive;
      confirmBox.querySelector("input").checked = false;
      dialog.setAttribute("data-destructive", r.destructive ? "1" : "0");
      if (dialog.showModal) { dialog.showModal(); } else { dialog.setAttribute("open", ""); }
    });
  }
  function confirmPublish() {
    var destructive = dialog.getAttribute("data-destructive") === "1";
    var confirmed = dialog.querySelector("[data-confirm-destructive]").checked;
    if (destructive && !confirmed) { dialog.querySelector(".destructive-confirm").classList.add("has-error"); return; }
    D.call("POST", root.getAttribute("data-publish"), {items: items(false), confirm_destructive: confirmed}).then(function (r) {
      dialog.close ? dialog.close() : dialog.removeAttribute("open");
      if (!r._ok) { return fail(r); }
      var changed = r.published.some(function (p) { return p.changed; });
      load().then(function () {
        var box = el("div", {className: "alert alert-ok", role: "status"}, [el("strong", {text: changed ? T.published : T.nochange})]);
        var staff = root.getAttribute("data-staff-url");
        if (staff) { box.appendChild(el("a", {className: "btn btn-sm", href: staff, "data-staff-link": "1", text: "→ " + staff})); }
        ok(box);
        root.setAttribute("data-published", String(versions.entity) + "/" + String(versions.form));
      });
    });
  }
  function history() {
    var base = root.getAttribute("data-history");
    Promise.all([D.call("GET", base.replace("__kind__", "entity").replace("__key__", ENTITY)),
                 D.call("GET", base.replace("__kind__", "form").replace("__key__", formKey))]).then(function (res) {
      var box = el("div", {className: "alert", role: "status"}, [el("strong", {text: T.history})]);
      [["entity", ENTITY, res[0]], ["form", formKey, res[1]]].forEach(function (h) {
        var ul = el("ul", {"data-history": h[0]});
        (h[2].history || []).forEach(function (v) {
          var btn = el("button", {type: "button", className: "btn btn-sm", "data-rollback": h[0], "data-version": v.version, text: T.rollback});
          btn.addEventListener("click", function () { rollback(h[0], h[1], v.version); });
          ul.appendChild(el("li", {}, [h[0] + " v" + v.version + " · " + (v.author || "") + " · " + (v.created_at || "").slice(0, 19) + " · " + v.status + " ",
                                       v.status === "published" ? null : btn]));
        });
        box.appendChild(ul);
      });
      ok(box);
    });
  }
  function rollback(kind, key, version) {
    var url = root.getAttribute("data-rollback").replace("__kind__", kind).replace("__key__", key);
    D.call("POST", url, {version: version, confirm_destructive: true}).then(function (r) {
      if (!r._ok) { return fail(r); }
      load().then(function () { ok(el("div", {className: "alert alert-ok", role: "status", text: T.published + " v" + r.published.version})); });
    });
  }

  root.addEventListener("click", function (ev) {
    var b = ev.target.closest("[data-action]");
    if (!b) { return; }
    var a = b.getAttribute("data-action");
    if (a === "undo") { restore(undo, redo); }
    else if (a === "redo") { restore(redo, undo); }
    else if (a === "add-section") {
      change(function () { state.form.sections.push({label: {"zh-CN": T.section, en: "Section"}, columns: 2, fields: []}); });
    }
    else if (a === "save") { save(); }
    else if (a === "validate") { validate(false); }
    else if (a === "diff") { validate(true); }
    else if (a === "history") { history(); }
    else if (a === "publish") { publish(); }
    else if (a === "confirm-publish") { confirmPublish(); }
    else if (a === "close-dialog") { dialog.close ? dialog.close() : dialog.removeAttribute("open"); }
  });
  document.addEventListener("keydown", function (ev) {
    if ((ev.ctrlKey || ev.metaKey) && ev.key === "z" && !/INPUT|TEXTAREA|SELECT/.test(ev.target.tagName)) {
      ev.preventDefault();
      if (ev.shiftKey) { restore(redo, undo); } else { restore(undo, redo); }
    }
  });
  load().then(function () { root.setAttribute("data-ready", "1"); });
})();
