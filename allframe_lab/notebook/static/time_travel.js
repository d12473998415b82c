// allframe-lab time-travel widget (anywidget ESM; no build step).
// Kernel side: allframe_lab/notebook/time_travel.py. The browser only sends intents
// (a new `position`, a `goto_timestamp` message); the kernel computes what is shown.

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v);
  }
  for (const c of children) el.append(c);
  return el;
}

function cellText(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function toLocalInput(iso) {
  // "2012-01-02T03:04:05.123+00:00" -> "2012-01-02T03:04:05.123" (shown as UTC)
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d.getTime())) return "";
  return d.toISOString().slice(0, 23);
}

function render({ model, el }) {
  const root = h("div", { class: "allframe-timetravel" });
  const slider = h("input", { type: "range", class: "allframe-tt-slider", step: "1" });
  const posLabel = h("span", { class: "allframe-tt-position" });
  const btn = (label, cls, title) => h("button", { class: `allframe-tt-btn ${cls}`, title, text: label });
  const backN = btn("−N", "allframe-tt-back-n", "step back N events");
  const back1 = btn("−1", "allframe-tt-back-1", "step back one event");
  const play = btn("▶", "allframe-tt-play", "play / pause");
  const fwd1 = btn("+1", "allframe-tt-fwd-1", "step forward one event");
  const fwdN = btn("+N", "allframe-tt-fwd-n", "step forward N events");
  const time = h("input", { type: "datetime-local", step: "0.001", class: "allframe-tt-time" });
  const stepInput = h("input", { type: "number", min: "1", class: "allframe-tt-stepsize" });
  const projSelect = h("select", { class: "allframe-tt-projection" });
  const ms = h("span", { class: "allframe-tt-ms" });
  const error = h("div", { class: "allframe-tt-error" });
  const eventBox = h("div", { class: "allframe-tt-event" });
  const aggBox = h("div", { class: "allframe-tt-aggregate" });
  const summary = h("div", { class: "allframe-tt-summary" });
  const table = h("table", { class: "allframe-tt-table" });

  root.append(
    h("div", { class: "allframe-tt-controls" }, backN, back1, play, fwd1, fwdN, slider, posLabel),
    h("div", { class: "allframe-tt-controls" },
      h("label", { text: "occurred_at (UTC) " }), time,
      h("label", { text: " N " }), stepInput,
      h("label", { text: " projection " }), projSelect, ms),
    error,
    h("div", { class: "allframe-tt-panels" }, eventBox, aggBox),
    summary, table);
  el.append(root);

  let pending = null;
  const commit = (p) => {
    const head = model.get("head");
    p = Math.max(head ? 1 : 0, Math.min(head, Math.round(p)));
    if (pending) { clearTimeout(pending); pending = null; }
    if (p !== model.get("position")) {
      model.set("position", p);
      model.save_changes();
    }
  };
  slider.addEventListener("input", () => {
    posLabel.textContent = `position ${slider.value} / ${model.get("head")}`;
    if (pending) clearTimeout(pending);
    pending = setTimeout(() => commit(Number(slider.value)), 150);
  });
  slider.addEventListener("change", () => commit(Number(slider.value)));
  const stepBy = (n) => commit(model.get("position") + n);
  back1.addEventListener("click", () => stepBy(-1));
  fwd1.addEventListener("click", () => stepBy(1));
  backN.addEventListener("click", () => stepBy(-model.get("step_size")));
  fwdN.addEventListener("click", () => stepBy(model.get("step_size")));
  time.addEventListener("change", () => {
    if (time.value) model.send({ type: "goto_timestamp", timestamp: time.value });
  });
  stepInput.addEventListener("change", () => {
    const n = Math.max(1, Math.round(Number(stepInput.value) || 1));
    model.set("step_size", n);
    model.save_changes();
  });
  projSelect.addEventListener("change", () => {
    model.set("projection", projSelect.value);
    model.save_changes();
  });

  // Play: one step per tick, and only once the kernel has shown the previous step.
  let timer = null;
  const tick = () => {
    if (model.get("shown_position") !== model.get("position")) return;  // kernel busy
    const head = model.get("head");
    const next = Math.min(head, model.get("position") + model.get("step_size"));
    if (next >= head) { model.set("playing", false); }
    commit(next);
    model.save_changes();
  };
  const syncPlay = () => {
    const on = model.get("playing");
    play.textContent = on ? "❚❚" : "▶";
    if (on && !timer) timer = setInterval(tick, Math.max(50, model.get("interval_ms")));
    if (!on && timer) { clearInterval(timer); timer = null; }
  };
  play.addEventListener("click", () => {
    model.set("playing", !model.get("playing"));
    model.save_changes();
    syncPlay();
  });

  const renderEvent = () => {
    const e = model.get("event") || {};
    eventBox.replaceChildren(h("div", { class: "allframe-tt-title", text: "event at the cursor" }));
    if (!e.type) { eventBox.append(h("div", { text: "(no event)" })); return; }
    const dl = h("table", { class: "allframe-tt-kv" });
    for (const k of ["position", "type", "stream_id", "version", "occurred_at"]) {
      dl.append(h("tr", {}, h("th", { text: k }), h("td", { class: `allframe-tt-event-${k}`, text: cellText(e[k]) })));
    }
    eventBox.append(dl, h("pre", { class: "allframe-tt-payload", text: JSON.stringify(e.data, null, 1) }));
  };
  const renderAggregate = () => {
    const a = model.get("aggregate_state") || {};
    aggBox.replaceChildren();
    if (!a.aggregate) { aggBox.style.display = "none"; return; }
    aggBox.style.display = "";
    aggBox.append(
      h("div", { class: "allframe-tt-title", text: `${a.aggregate} ${a.stream_id} @ version ${a.version}` }),
      h("pre", { class: "allframe-tt-state", text: JSON.stringify(a.state, null, 1) }));
  };
  const renderTable = () => {
    const cols = model.get("columns") || [];
    const rows = model.get("rows") || [];
    const flags = model.get("row_changed") || [];
    const kind = model.get("projection_kind");
    summary.textContent = model.get("projection")
      ? `${model.get("projection")} (${kind}): ${model.get("total_rows")} rows; ` +
        `${model.get("changed_count")} changed, ${model.get("removed_count")} removed since the previous point; ` +
        `showing ${rows.length}`
      : "no projection selected";
    const thead = h("thead", {}, h("tr", {}, ...cols.map((c) => h("th", { text: c }))));
    const tbody = h("tbody");
    rows.forEach((r, i) => {
      const tr = h("tr", flags[i] ? { class: "allframe-tt-changed", "data-changed": "true" } : { "data-changed": "false" });
      for (const c of cols) tr.append(h("td", { "data-column": c, text: cellText(r[c]) }));
      tbody.append(tr);
    });
    table.replaceChildren(thead, tbody);
  };
  const renderControls = () => {
    const head = model.get("head");
    slider.min = head ? "1" : "0";
    slider.max = String(head);
    if (!pending) slider.value = String(model.get("position"));
    posLabel.textContent = `position ${model.get("position")} / ${head}`;
    if (document.activeElement !== time) time.value = toLocalInput(model.get("timestamp"));
    time.min = toLocalInput(model.get("first_timestamp"));
    time.max = toLocalInput(model.get("last_timestamp"));
    if (document.activeElement !== stepInput) stepInput.value = String(model.get("step_size"));
    const names = model.get("projections") || [];
    if (projSelect.options.length !== names.length) {
      projSelect.replaceChildren(...names.map((n) => h("option", { value: n, text: n })));
    }
    projSelect.value = model.get("projection");
    ms.textContent = ` ${model.get("compute_ms").toFixed(1)} ms`;
    error.textContent = model.get("error");
    error.style.display = model.get("error") ? "" : "none";
    root.setAttribute("data-shown-position", String(model.get("shown_position")));
  };

  let scheduled = false;
  const update = () => {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(() => {
      scheduled = false;
      renderControls(); renderEvent(); renderAggregate(); renderTable(); syncPlay();
    });
  };
  for (const name of ["shown_position", "position", "head", "rows", "event", "aggregate_state",
                      "error", "projections", "projection", "step_size", "playing", "timestamp"]) {
    model.on(`change:${name}`, update);
  }
  update();
  return () => { if (timer) clearInterval(timer); if (pending) clearTimeout(pending); };
}

export default { render };
