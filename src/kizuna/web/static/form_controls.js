// Form controls shared by the segment and journey builders.
//
// Both builders draw inputs and selects that are read-only for analysts and
// write the edited document back into the form's text field on every
// change; `KizunaControls(readonly, save)` returns the element factories
// bound to one builder's read-only flag and save function.
(function () {
  "use strict";
  window.KizunaControls = function (readonly, save) {
    function el(tag, cls, text) {
      var e = document.createElement(tag);
      if (cls) { e.className = cls; }
      if (text !== undefined) { e.textContent = text; }
      return e;
    }

    function input(cls, value, onInput, label, type) {
      var i = el("input", cls);
      i.type = type || "text";
      i.value = value === undefined || value === null ? "" : value;
      i.setAttribute("aria-label", label || cls);
      i.readOnly = readonly;
      i.addEventListener("input", function () { onInput(i.value); save(); });
      return i;
    }

    function select(cls, options, value, onChange, label) {
      var s = el("select", cls);
      s.setAttribute("aria-label", label || cls);
      options.forEach(function (o) {
        var opt = el("option", null, o[1]);
        opt.value = o[0];
        if (String(o[0]) === String(value)) { opt.selected = true; }
        s.appendChild(opt);
      });
      s.disabled = readonly;
      s.addEventListener("change", function () { onChange(s.value); });
      return s;
    }

    // A number when the text is one, else the text (the server says what is wrong).
    function number(text) {
      var t = String(text).trim();
      if (t === "") { return t; }
      var n = Number(t);
      return isNaN(n) ? t : n;
    }

    return {el: el, input: input, select: select, number: number};
  };
})();
