// allframe-lab command form (anywidget ESM; no build step).
// Kernel side: allframe_lab/notebook/command_form.py. The browser collects the values and
// sends {type: "submit", values}; the kernel validates, dispatches and sends back errors or
// the recorded events.

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) el.append(c);
  return el;
}

function hint(f) {
  const c = f.constraints || {};
  const parts = [];
  if ("minimum" in c) parts.push(`≥ ${c.minimum}`);
  if ("exclusiveMinimum" in c) parts.push(`> ${c.exclusiveMinimum}`);
  if ("maximum" in c) parts.push(`≤ ${c.maximum}`);
  if ("exclusiveMaximum" in c) parts.push(`< ${c.exclusiveMaximum}`);
  if ("multipleOf" in c) parts.push(`multiple of ${c.multipleOf}`);
  if ("minLength" in c) parts.push(`length ≥ ${c.minLength}`);
  if ("maxLength" in c) parts.push(`length ≤ ${c.maxLength}`);
  if ("pattern" in c) parts.push(`matches ${c.pattern}`);
  if ("format" in c) parts.push(c.format);
  if ("minItems" in c) parts.push(`≥ ${c.minItems} items`);
  if ("maxItems" in c) parts.push(`≤ ${c.maxItems} items`);
  const kind = f.kind === "json" ? "JSON" : f.kind;
  return [kind, ...parts].join(", ") + (f.required ? "" : " (optional)");
}

function makeInput(f, value) {
  const c = f.constraints || {};
  const id = `allframe-cf-${f.name}`;
  if (f.kind === "enum") {
    const sel = h("select", { name: f.name, id, class: "allframe-cf-input" });
    if (!f.required) sel.append(h("option", { value: "", text: "" }));
    for (const o of f.options || []) sel.append(h("option", { value: JSON.stringify(o), text: String(o) }));
    if (value !== undefined && value !== null) sel.value = JSON.stringify(value);
    return sel;
  }
  if (f.kind === "boolean") {
    const cb = h("input", { type: "checkbox", name: f.name, id, class: "allframe-cf-input" });
    cb.checked = Boolean(value ?? f.default ?? false);
    return cb;
  }
  if (f.kind === "json") {
    const ta = h("textarea", { name: f.name, id, class: "allframe-cf-input", rows: 2 });
    if (value !== undefined && value !== null) ta.value = typeof value === "string" ? value : JSON.stringify(value);
    return ta;
  }
  const attrs = { type: f.input, name: f.name, id, class: "allframe-cf-input",
                  required: f.required, placeholder: f.default !== undefined ? String(f.default) : undefined };
  if (f.kind === "integer" || f.kind === "number") {
    attrs.step = f.kind === "integer" ? "1" : "any";
    attrs.min = c.minimum; attrs.max = c.maximum;
  } else {
    attrs.minlength = c.minLength; attrs.maxlength = c.maxLength;
    attrs.pattern = c.pattern;
  }
  const input = h("input", attrs);
  if (value !== undefined && value !== null) input.value = String(value);
  return input;
}

function readValue(f, input) {
  if (f.kind === "boolean") return input.checked;
  const raw = input.value;
  if (raw === "") return null;
  if (f.kind === "enum") { try { return JSON.parse(raw); } catch { return raw; } }
  if (f.kind === "integer" || f.kind === "number") {
    const n = Number(raw);
    return Number.isFinite(n) ? n : raw;  // not a number: the kernel reports it
  }
  return raw;  // strings; JSON fields are parsed by the kernel
}

function cell(v) {
  if (v === null || v === undefined) return "";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

function render({ model, el }) {
  const root = h("div", { class: "allframe-commandform" });
  const title = h("div", { class: "allframe-cf-title" });
  const topError = h("div", { class: "allframe-cf-form-error" });
  const form = h("form", { class: "allframe-cf-form", novalidate: true });
  const submit = h("button", { type: "submit", class: "allframe-cf-submit", text: "Submit" });
  const result = h("div", { class: "allframe-cf-result" });
  root.append(title, topError, form, result);
  el.append(root);
  let inputs = {};
  let errorSlots = {};

  const buildForm = () => {
    const fields = model.get("fields") || [];
    const values = model.get("values") || {};
    title.textContent = model.get("command") + (model.get("description") ? ` — ${model.get("description")}` : "");
    inputs = {}; errorSlots = {};
    form.replaceChildren();
    for (const f of fields) {
      const input = makeInput(f, values[f.name]);
      const err = h("div", { class: "allframe-cf-error", "data-field": f.name });
      inputs[f.name] = input; errorSlots[f.name] = err;
      form.append(h("div", { class: "allframe-cf-field", "data-field": f.name },
        h("label", { for: input.id, text: f.title + (f.required ? " *" : "") }),
        input,
        h("span", { class: "allframe-cf-hint", text: hint(f), title: f.description || "" }),
        err));
    }
    form.append(h("div", { class: "allframe-cf-actions" }, submit));
  };

  const showResult = () => {
    const errors = model.get("errors") || {};
    const status = model.get("status");
    root.setAttribute("data-status", status);
    root.setAttribute("data-submissions", String(model.get("submissions")));
    const loose = [];
    for (const slot of Object.values(errorSlots)) slot.textContent = "";
    for (const f of Object.keys(inputs)) inputs[f].classList.remove("allframe-cf-invalid");
    for (const [path, msg] of Object.entries(errors)) {
      const top = path.split(".")[0];
      if (errorSlots[top]) {
        const slot = errorSlots[top];
        slot.textContent = (slot.textContent ? slot.textContent + "; " : "") + (path === top ? msg : `${path}: ${msg}`);
        inputs[top].classList.add("allframe-cf-invalid");
      } else loose.push(`${path}: ${msg}`);
    }
    const top = [model.get("form_error"), ...loose].filter(Boolean).join("\n");
    topError.textContent = top;
    topError.style.display = top ? "" : "none";
    const recorded = model.get("recorded") || [];
    result.replaceChildren();
    if (status === "recorded") {
      const cols = ["position", "stream_id", "version", "type", "data"];
      const table = h("table", { class: "allframe-cf-recorded" },
        h("thead", {}, h("tr", {}, ...cols.map((c) => h("th", { text: c })))));
      const tbody = h("tbody");
      for (const r of recorded) {
        tbody.append(h("tr", {}, ...cols.map((c) => h("td", { "data-column": c, text: cell(r[c]) }))));
      }
      table.append(tbody);
      result.append(h("div", { class: "allframe-cf-ok", text: `recorded ${recorded.length} event${recorded.length === 1 ? "" : "s"}` }), table);
    }
  };

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const values = {};
    for (const f of model.get("fields") || []) values[f.name] = readValue(f, inputs[f.name]);
    model.send({ type: "submit", values });
  });

  model.on("change:fields", () => { buildForm(); showResult(); });
  for (const name of ["errors", "form_error", "recorded", "status", "submissions"]) {
    model.on(`change:${name}`, showResult);
  }
  buildForm();
  showResult();
}

export default { render };
