// The rule-tree builder of the segment form (progressive enhancement).
//
// The form works without this file: the rule is a YAML/JSON text field. This
// script reads that field, draws the tree as nested groups and conditions
// over the registered fields and aggregates (embedded by the server as JSON),
// and writes the tree back as JSON on every change, so the server validates
// exactly what the text field holds. When the server refused the rule, the
// node named by the error's JSON-pointer path is marked with the message.
(function () {
  "use strict";
  var root = document.getElementById("rule-builder");
  if (!root) { return; }
  var reg = JSON.parse(document.getElementById(root.getAttribute("data-registry")).textContent);
  var L = JSON.parse(document.getElementById(root.getAttribute("data-labels")).textContent);
  var target = document.getElementById(root.getAttribute("data-target"));
  var readonly = root.getAttribute("data-readonly") === "1";
  var controls = window.KizunaControls(readonly, function () { save(); });
  var el = controls.el, input = controls.input, select = controls.select;
  var number = controls.number;
  var errorPath = root.getAttribute("data-error-path") || "";
  var errorText = root.getAttribute("data-error") || "";
  var fieldsByName = {};
  reg.fields.forEach(function (f) { fieldsByName[f.name] = f; });
  var aggsByName = {};
  reg.aggregates.forEach(function (a) { aggsByName[a.name] = a; });

  var model;
  try {
    model = toModel(JSON.parse(target.value || "null") || {and: []});
  } catch (e) {
    var note = document.createElement("p");
    note.className = "muted small";
    note.textContent = L.unparsed;
    root.appendChild(note);
    if (target.closest("details")) { target.closest("details").open = true; }
    return;
  }
  if (model.kind !== "group") { model = {kind: "group", mode: "all", children: [model]}; }

  function isObject(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }
  function copy(v) { return JSON.parse(JSON.stringify(v)); }

  function toModel(node) {
    if (isObject(node) && Array.isArray(node.and)) {
      return {kind: "group", mode: "all", children: node.and.map(toModel)};
    }
    if (isObject(node) && Array.isArray(node.or)) {
      return {kind: "group", mode: "any", children: node.or.map(toModel)};
    }
    if (isObject(node) && "not" in node) {
      var inner = node.not;
      if (isObject(inner) && Array.isArray(inner.or)) {
        return {kind: "group", mode: "none", children: inner.or.map(toModel)};
      }
      return {kind: "group", mode: "none", children: [toModel(inner)]};
    }
    if (isObject(node) && typeof node.field === "string" && fieldsByName[node.field]) {
      return {kind: "field", node: copy(node)};
    }
    if (isObject(node) && typeof node.aggregate === "string" && aggsByName[node.aggregate]) {
      return {kind: "aggregate", node: copy(node)};
    }
    if (isObject(node) && typeof node.consent === "string") { return {kind: "consent", node: copy(node)}; }
    if (isObject(node) && typeof node.survey === "string") { return {kind: "survey", node: copy(node)}; }
    return {kind: "raw", node: node};
  }

  function toDoc(m) {
    if (m.kind === "group") {
      var kids = m.children.map(toDoc);
      if (m.mode === "any") { return {or: kids}; }
      if (m.mode === "none") { return {not: {or: kids}}; }
      return {and: kids};
    }
    return m.node;
  }

  function childPath(path, m, i) {
    if (m.mode === "any") { return path + "/or/" + i; }
    if (m.mode === "none") { return path + "/not/or/" + i; }
    return path + "/and/" + i;
  }

  function defaults(kind) {
    if (kind === "aggregate") { return {aggregate: "orders", op: "gte", value: 1, days: 365}; }
    if (kind === "consent") { return {consent: reg.consents[0]}; }
    if (kind === "survey") { return {survey: "nps", op: "gte", value: 9, days: 365}; }
    if (kind === "raw") { return {}; }
    var first = fieldsByName.region ? "region" : reg.fields[0].name;
    return {field: first, op: "eq", value: ""};
  }

  function save() {
    target.value = JSON.stringify(toDoc(model), null, 2);
  }

  function typed(text, type) {
    if (type === "number") { return number(text); }
    if (type === "bool") { return text === "true"; }
    return text;
  }

  function rerender() { errorPath = ""; draw(); save(); }

  function fieldEditor(row, node) {
    var spec = fieldsByName[node.field] || reg.fields[0];
    row.appendChild(select("b-field", reg.fields.map(function (f) {
      return [f.name, f.name];
    }), node.field, function (v) {
      node.field = v;
      var ops = reg.ops_by_type[fieldsByName[v].type];
      if (ops.indexOf(node.op) < 0) { node.op = ops[0]; }
      if (fieldsByName[v].type === "bool") { node.value = true; }
      rerender();
    }, L.field));
    var ops = reg.ops_by_type[spec.type];
    row.appendChild(select("b-op", ops.map(function (o) { return [o, o]; }), node.op || "eq", function (v) {
      node.op = v;
      if (reg.presence_ops.indexOf(v) >= 0) { delete node.value; }
      else if (reg.set_ops.indexOf(v) >= 0) { node.value = Array.isArray(node.value) ? node.value : []; }
      else if (Array.isArray(node.value)) { node.value = node.value[0] || ""; }
      rerender();
    }));
    var op = node.op || "eq";
    if (reg.presence_ops.indexOf(op) >= 0) { return; }
    if (op === "within_last_days") {
      row.appendChild(input("b-value", node.value, function (v) { node.value = number(v); }, L.days, "number"));
      return;
    }
    if (reg.set_ops.indexOf(op) >= 0) {
      var list = Array.isArray(node.value) ? node.value.join(", ") : "";
      var i = input("b-value", list, function (v) {
        node.value = v.split(",").map(function (s) { return s.trim(); })
          .filter(function (s) { return s !== ""; })
          .map(function (s) { return typed(s, spec.type); });
      }, L.list_hint);
      i.placeholder = L.list_hint;
      row.appendChild(i);
      return;
    }
    if (spec.type === "bool") {
      row.appendChild(select("b-value", [["true", "true"], ["false", "false"]], String(node.value),
        function (v) { node.value = v === "true"; save(); }));
      return;
    }
    var kind = spec.type === "number" ? "number" : (spec.type === "date" ? "date" : "text");
    row.appendChild(input("b-value", node.value, function (v) { node.value = typed(v, spec.type); },
      spec.help || spec.name, kind));
  }

  function numberParts(row, node, ops, windowed) {
    row.appendChild(select("b-op", ops.map(function (o) { return [o, o]; }), node.op || "gte",
      function (v) { node.op = v; save(); }));
    row.appendChild(input("b-value", node.value, function (v) { node.value = number(v); }, "value", "number"));
    if (windowed) {
      var d = input("b-days", node.days, function (v) {
        var n = number(v);
        if (n === "") { delete node.days; } else { node.days = n; }
      }, L.days, "number");
      d.placeholder = L.days;
      row.appendChild(d);
    }
  }

  function aggregateEditor(row, node) {
    row.appendChild(select("b-agg", reg.aggregates.map(function (a) { return [a.name, a.name]; }),
      node.aggregate, function (v) {
        var fresh = {aggregate: v, op: node.op || "gte", value: node.value === undefined ? 1 : node.value};
        if (aggsByName[v].windowed && node.days) { fresh.days = node.days; }
        Object.keys(node).forEach(function (k) { delete node[k]; });
        Object.assign(node, fresh);
        rerender();
      }, L.aggregate));
    var spec = aggsByName[node.aggregate];
    spec.params.forEach(function (p) {
      var i = input("b-param", node[p], function (v) { node[p] = v; }, p);
      i.placeholder = p;
      row.appendChild(i);
    });
    numberParts(row, node, reg.order_ops, spec.windowed);
  }

  function consentEditor(row, node) {
    row.appendChild(select("b-consent", reg.consents.map(function (c) { return [c, c]; }), node.consent,
      function (v) { node.consent = v; save(); }, L.consent));
    row.appendChild(select("b-granted", [["true", L.granted], ["false", L.not_granted]],
      String(node.granted !== false), function (v) {
        if (v === "true") { delete node.granted; } else { node.granted = false; }
        save();
      }));
  }

  function surveyEditor(row, node) {
    row.appendChild(select("b-survey", Object.keys(reg.surveys).map(function (k) {
      var s = reg.surveys[k];
      return [k, k + " (" + s[0] + "–" + s[1] + ")"];
    }), node.survey, function (v) { node.survey = v; save(); }, L.survey));
    numberParts(row, node, reg.order_ops, true);
  }

  function rawEditor(row, m) {
    var i = input("b-raw", JSON.stringify(m.node), function (v) {
      try { m.node = JSON.parse(v); i.classList.remove("node-error"); }
      catch (e) { i.classList.add("node-error"); }
    }, L.raw);
    i.size = 60;
    row.appendChild(i);
  }

  function leaf(m, path, onRemove) {
    var box = el("div", "rule-node rule-leaf");
    box.setAttribute("data-path", path);
    var row = el("div", "rule-row");
    row.appendChild(select("b-kind", [["field", L.field], ["aggregate", L.aggregate],
      ["consent", L.consent], ["survey", L.survey], ["raw", L.raw]], m.kind, function (v) {
      m.kind = v;
      m.node = defaults(v);
      rerender();
    }));
    if (m.kind === "field") { fieldEditor(row, m.node); }
    else if (m.kind === "aggregate") { aggregateEditor(row, m.node); }
    else if (m.kind === "consent") { consentEditor(row, m.node); }
    else if (m.kind === "survey") { surveyEditor(row, m.node); }
    else { rawEditor(row, m); }
    if (!readonly) {
      var rm = el("button", "b-remove link", L.remove);
      rm.type = "button";
      rm.addEventListener("click", onRemove);
      row.appendChild(rm);
    }
    box.appendChild(row);
    return box;
  }

  function group(m, path, onRemove) {
    var box = el("div", "rule-node rule-group");
    box.setAttribute("data-path", path);
    var head = el("div", "rule-row");
    head.appendChild(select("b-mode", [["all", L.all], ["any", L.any], ["none", L.none]], m.mode,
      function (v) { m.mode = v; rerender(); }));
    if (!readonly) {
      var add = el("button", "b-add", L.add_condition);
      add.type = "button";
      add.addEventListener("click", function () {
        m.children.push({kind: "field", node: defaults("field")});
        rerender();
      });
      head.appendChild(add);
      var addGroup = el("button", "b-add-group", L.add_group);
      addGroup.type = "button";
      addGroup.addEventListener("click", function () {
        m.children.push({kind: "group", mode: "any", children: [{kind: "field", node: defaults("field")}]});
        rerender();
      });
      head.appendChild(addGroup);
      if (onRemove) {
        var rm = el("button", "b-remove link", L.remove);
        rm.type = "button";
        rm.addEventListener("click", onRemove);
        head.appendChild(rm);
      }
    }
    box.appendChild(head);
    m.children.forEach(function (child, i) {
      var remove = function () { m.children.splice(i, 1); rerender(); };
      var p = childPath(path, m, i);
      box.appendChild(child.kind === "group" ? group(child, p, remove) : leaf(child, p, remove));
    });
    return box;
  }

  function markError() {
    if (!errorPath || !errorText) { return; }
    var best = null;
    var bestLength = -1;
    root.querySelectorAll("[data-path]").forEach(function (node) {
      var p = node.getAttribute("data-path");
      var prefix = errorPath === p || errorPath.indexOf(p + "/") === 0;
      if (prefix && p.length > bestLength) { best = node; bestLength = p.length; }
    });
    if (!best) { return; }
    best.classList.add("node-error");
    var msg = el("p", "field-error", errorText);
    msg.setAttribute("data-testid", "node-error");
    msg.setAttribute("role", "alert");
    best.appendChild(msg);
  }

  function draw() {
    while (root.firstChild) { root.removeChild(root.firstChild); }
    root.appendChild(group(model, "/rule", null));
    markError();
  }

  draw();
  var details = target.closest("details");
  if (details && (errorPath || !errorText)) { details.open = false; }
  var form = target.form;
  if (form) { form.addEventListener("submit", save); }
})();
