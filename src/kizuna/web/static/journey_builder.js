// The step builder of the journey form (progressive enhancement).
//
// The form works without this file: the definition is a YAML text field.
// When the server could read that text it embeds the definition as JSON; this
// script draws it as a trigger, settings and a list of steps with the fields
// of each step's kind, and writes the definition back into the text field as
// JSON (which YAML reads unchanged) on every change. Conditions of `if`
// steps and anything the builder does not know are edited as JSON in place.
// A refused definition names its bad node (`/steps/2/...`): that step is
// marked with the server's message.
(function () {
  "use strict";
  var root = document.getElementById("journey-builder");
  if (!root) { return; }
  var docEl = document.getElementById(root.getAttribute("data-doc"));
  var L = JSON.parse(document.getElementById(root.getAttribute("data-labels")).textContent);
  var target = document.getElementById(root.getAttribute("data-target"));
  var readonly = root.getAttribute("data-readonly") === "1";
  var controls = window.KizunaControls(readonly, function () { save(); });
  var el = controls.el, input = controls.input, select = controls.select;
  var number = controls.number;
  var errorPath = root.getAttribute("data-error-path") || "";
  var errorText = root.getAttribute("data-error") || "";
  var segments = JSON.parse(root.getAttribute("data-segments") || "[]");
  if (!docEl) { return; }
  var doc = JSON.parse(docEl.textContent);
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) { return; }
  if (!Array.isArray(doc.steps)) { doc.steps = []; }

  var TRIGGERS = ["segment_entry", "segment_exit", "birthday", "anniversary",
    "days_after_last_purchase", "event"];
  // Each step kind: how to recognise it, its fields, and a fresh step.
  var KINDS = {
    wait: {is: function (s) { return "wait" in s; }, fresh: function () { return {wait: {days: 1}}; }},
    email: {action: true, fields: ["subject", "text"],
      fresh: function () { return {action: "email", subject: "", text: "{{ unsubscribe_url }}"}; }},
    create_task: {action: true, fields: ["title"],
      fresh: function () { return {action: "create_task", title: "Call {{ name }}"}; }},
    grant_points: {action: true, fields: ["points", "reason"], numbers: ["points"],
      fresh: function () { return {action: "grant_points", points: 100, reason: "journey"}; }},
    issue_coupon: {action: true, fields: ["kind", "value", "valid_days"], numbers: ["value", "valid_days"],
      fresh: function () { return {action: "issue_coupon", kind: "percent", value: 10, valid_days: 14}; }},
    set_attribute: {action: true, fields: ["key", "value"],
      fresh: function () { return {action: "set_attribute", key: "", value: true}; }},
    webhook: {action: true, fields: ["url", "secret_env"],
      fresh: function () { return {action: "webhook", url: "https://", secret_env: ""}; }},
    "if": {is: function (s) { return "if" in s; },
      fresh: function () { return {"if": {consent: "email"}, then: "", "else": ""}; }},
    exit: {is: function (s) { return "exit" in s; }, fresh: function () { return {exit: true}; }}
  };

  function kindOf(step) {
    if (step && typeof step.action === "string" && KINDS[step.action] && KINDS[step.action].action) {
      return step.action;
    }
    var names = ["wait", "if", "exit"];
    for (var i = 0; i < names.length; i++) {
      if (step && KINDS[names[i]].is(step)) { return names[i]; }
    }
    return "raw";
  }

  function save() { target.value = JSON.stringify(doc, null, 2); }

  function labelled(text, control) {
    var l = el("label", "jb-field");
    l.appendChild(el("span", "muted small", text));
    l.appendChild(control);
    return l;
  }

  function json(cls, value, onValue, label) {
    var i = input(cls, JSON.stringify(value), function (v) {
      try { onValue(JSON.parse(v)); i.classList.remove("node-error"); }
      catch (e) { i.classList.add("node-error"); }
    }, label);
    i.size = 50;
    return i;
  }

  function rerender() { errorPath = ""; draw(); save(); }

  function settings(box) {
    var row = el("div", "rule-row");
    row.appendChild(labelled(L.name, input("jb-name", doc.name, function (v) { doc.name = v; }, L.name)));
    var trigger = doc.trigger && typeof doc.trigger === "object" ? doc.trigger : {};
    var kind = Object.keys(trigger)[0] || "segment_entry";
    row.appendChild(labelled(L.trigger, select("jb-trigger", TRIGGERS.map(function (k) {
      return [k, k];
    }), kind, function (v) {
      var fresh = {};
      fresh[v] = v === "birthday" || v === "anniversary" ? {offset_days: 0}
        : (v === "days_after_last_purchase" ? 30 : (v === "event" ? "order_placed" : (segments[0] || "")));
      doc.trigger = fresh;
      rerender();
    }, L.trigger)));
    var value = trigger[kind];
    if (kind === "segment_entry" || kind === "segment_exit") {
      var names = segments.slice();
      if (value && names.indexOf(value) < 0) { names.unshift(value); }
      row.appendChild(labelled(L.segment, select("jb-trigger-value", names.map(function (n) {
        return [n, n];
      }), value, function (v) { doc.trigger[kind] = v; save(); }, L.segment)));
    } else if (kind === "days_after_last_purchase") {
      row.appendChild(labelled(L.days, input("jb-trigger-value", value, function (v) {
        doc.trigger[kind] = number(v);
      }, L.days, "number")));
    } else if (kind === "event") {
      row.appendChild(labelled(L.event, input("jb-trigger-value", value, function (v) {
        doc.trigger[kind] = v;
      }, L.event)));
    } else {
      var offset = value && typeof value === "object" ? value.offset_days : 0;
      row.appendChild(labelled(L.offset_days, input("jb-trigger-value", offset, function (v) {
        doc.trigger[kind] = {offset_days: number(v)};
      }, L.offset_days, "number")));
    }
    row.appendChild(labelled(L.holdout, input("jb-holdout", doc.holdout_percent, function (v) {
      if (String(v).trim() === "") { delete doc.holdout_percent; } else { doc.holdout_percent = number(v); }
    }, L.holdout, "number")));
    var goal = doc.goal && typeof doc.goal === "object" ? doc.goal.purchase_within_days : "";
    row.appendChild(labelled(L.goal_days, input("jb-goal", goal, function (v) {
      if (String(v).trim() === "") { delete doc.goal; } else { doc.goal = {purchase_within_days: number(v)}; }
    }, L.goal_days, "number")));
    box.appendChild(row);
  }

  function stepFields(row, step, kind) {
    if (kind === "wait") {
      var wait = step.wait && typeof step.wait === "object" ? step.wait : {};
      row.appendChild(labelled(L.days, input("jb-days", wait.days, function (v) {
        var n = number(v);
        if (n === "") { delete wait.days; } else { wait.days = n; }
        step.wait = wait;
      }, L.days, "number")));
      row.appendChild(labelled(L.until, input("jb-until", wait.until, function (v) {
        if (v.trim() === "") { delete wait.until; } else { wait.until = v.trim(); }
        step.wait = wait;
      }, L.until)));
      return;
    }
    if (kind === "if") {
      row.appendChild(labelled(L.condition, json("jb-condition", step["if"], function (v) {
        step["if"] = v;
      }, L.condition)));
      var ids = [["", "—"]].concat(doc.steps.map(function (s) { return [s.id, s.id]; }));
      row.appendChild(labelled(L.then, select("jb-then", ids, step.then, function (v) {
        step.then = v; save();
      }, L.then)));
      row.appendChild(labelled(L["else"], select("jb-else", ids, step["else"], function (v) {
        step["else"] = v; save();
      }, L["else"])));
      return;
    }
    if (kind === "exit") { return; }
    if (kind === "raw") {
      var i = json("jb-raw", step, function (v) {
        Object.keys(step).forEach(function (k) { delete step[k]; });
        Object.assign(step, v);
      }, L.raw);
      row.appendChild(i);
      return;
    }
    var spec = KINDS[kind];
    spec.fields.forEach(function (f) {
      var isNumber = (spec.numbers || []).indexOf(f) >= 0;
      var control = f === "text"
        ? (function () {
          var t = el("textarea", "jb-" + f);
          t.value = step[f] || "";
          t.rows = 3;
          t.readOnly = readonly;
          t.setAttribute("aria-label", f);
          t.addEventListener("input", function () { step[f] = t.value; save(); });
          return t;
        })()
        : input("jb-" + f, step[f], function (v) { step[f] = isNumber ? number(v) : v; }, f,
          isNumber ? "number" : "text");
      row.appendChild(labelled(f, control));
    });
  }

  function steps(box) {
    var list = el("ol", "jb-steps");
    doc.steps.forEach(function (step, i) {
      var item = el("li", "rule-node jb-step");
      item.setAttribute("data-path", "/steps/" + i);
      var row = el("div", "rule-row");
      row.appendChild(labelled(L.step_id, input("jb-id", step.id, function (v) { step.id = v; }, L.step_id)));
      var kind = kindOf(step);
      var options = Object.keys(KINDS).map(function (k) { return [k, L["kind_" + k] || k]; });
      options.push(["raw", L.raw]);
      row.appendChild(labelled(L.kind, select("jb-kind", options, kind, function (v) {
        var fresh = v === "raw" ? {} : KINDS[v].fresh();
        fresh.id = step.id;
        doc.steps[i] = fresh;
        rerender();
      }, L.kind)));
      stepFields(row, step, kind);
      if (!readonly) {
        [["↑", -1], ["↓", 1]].forEach(function (m) {
          var b = el("button", "jb-move link", m[0]);
          b.type = "button";
          b.setAttribute("aria-label", m[1] < 0 ? L.up : L.down);
          b.addEventListener("click", function () {
            var j = i + m[1];
            if (j < 0 || j >= doc.steps.length) { return; }
            var tmp = doc.steps[i]; doc.steps[i] = doc.steps[j]; doc.steps[j] = tmp;
            rerender();
          });
          row.appendChild(b);
        });
        var rm = el("button", "jb-remove link", L.remove);
        rm.type = "button";
        rm.addEventListener("click", function () { doc.steps.splice(i, 1); rerender(); });
        row.appendChild(rm);
      }
      item.appendChild(row);
      list.appendChild(item);
    });
    box.appendChild(list);
    if (!readonly) {
      var addRow = el("div", "rule-row");
      var chooser = select("jb-new-kind", Object.keys(KINDS).map(function (k) {
        return [k, L["kind_" + k] || k];
      }), "create_task", function () {}, L.kind);
      addRow.appendChild(chooser);
      var add = el("button", "jb-add", L.add_step);
      add.type = "button";
      add.addEventListener("click", function () {
        var fresh = KINDS[chooser.value].fresh();
        var n = doc.steps.length + 1;
        while (doc.steps.some(function (s) { return s.id === "step" + n; })) { n += 1; }
        fresh.id = "step" + n;
        doc.steps.push(fresh);
        rerender();
      });
      addRow.appendChild(add);
      box.appendChild(addRow);
    }
  }

  function markError() {
    if (!errorPath || !errorText) { return; }
    var best = null;
    var bestLength = -1;
    root.querySelectorAll("[data-path]").forEach(function (node) {
      var p = node.getAttribute("data-path");
      if ((errorPath === p || errorPath.indexOf(p + "/") === 0) && p.length > bestLength) {
        best = node; bestLength = p.length;
      }
    });
    if (!best) { return; }
    best.classList.add("node-error");
    var msg = el("p", "field-error", errorText);
    msg.setAttribute("data-testid", "builder-error");
    msg.setAttribute("role", "alert");
    best.appendChild(msg);
  }

  function draw() {
    while (root.firstChild) { root.removeChild(root.firstChild); }
    settings(root);
    steps(root);
    markError();
  }

  draw();
  var details = target.closest("details");
  if (details) { details.open = false; }
  if (target.form) { target.form.addEventListener("submit", save); }
})();
