// allframe-lab stream browser (anywidget ESM; no build step).
// Kernel side: allframe_lab/notebook/stream_browser.py. The browser sends filters and the
// selection; the kernel runs the SQL and sends back `rows`, `total` and `timeline`
// (a timeline.v1 payload). The timeline uses the same DOM hooks as the JupyterLab
// timeline renderer: .allframe-timeline, .allframe-timeline-lane[data-lane],
// .allframe-timeline-event[data-position], .allframe-timeline-payload.

const MAX_LANES = 8;

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

function shortTime(iso) {
  if (!iso) return "";
  return iso.replace("T", " ").slice(0, 16);
}

function toInput(iso) {
  // "2011-10-01T00:38:44.546000+00:00" -> "2011-10-01T00:38" (datetime-local, shown as UTC)
  return iso ? iso.slice(0, 16) : "";
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

function renderTimeline(container, payload, onPick) {
  container.replaceChildren();
  const lanes = payload.lanes || [];
  const events = payload.events || [];
  const root = h("div", { class: "allframe-timeline allframe-sb-timeline" });
  root.append(h("div", { class: "allframe-sb-timeline-title", text: payload.title || "" }));
  if (!lanes.length) {
    root.append(h("div", { class: "allframe-sb-hint",
      text: "Click a stream (Ctrl/Shift-click to add up to 8) to see its events over time." }));
    container.append(root);
    return;
  }
  const times = events.map((e) => Date.parse(e.time));
  const lo = Math.min(...times);
  const hi = Math.max(...times);
  const span = hi - lo || 1;
  const axis = h("div", { class: "allframe-sb-axis" },
    h("span", { text: shortTime(new Date(lo).toISOString()) + " UTC" }),
    h("span", { text: shortTime(new Date(hi).toISOString()) + " UTC" }));
  root.append(axis);
  const selectedBox = h("div", { class: "allframe-timeline-selected", text: "Click an event to see its payload." });
  const payloadBox = h("pre", { class: "allframe-timeline-payload" });
  const metaBox = h("pre", { class: "allframe-sb-metadata" });
  for (const lane of lanes) {
    const track = h("div", { class: "allframe-sb-track" });
    const row = h("div", { class: "allframe-timeline-lane", "data-lane": lane.id },
      h("div", { class: "allframe-sb-lane-label", title: lane.id, text: lane.label || lane.id }),
      track);
    events.forEach((e, i) => {
      if (e.lane !== lane.id) return;
      const left = ((times[i] - lo) / span) * 100;
      const dot = h("div", {
        class: "allframe-timeline-event",
        "data-position": String(e.position),
        "data-type": e.type,
        title: `${e.type} · v${e.version ?? "?"} · ${shortTime(e.time)} · position ${e.position}`,
        style: `left: calc(${left.toFixed(3)}% - 5px)`,
      });
      dot.addEventListener("click", (ev) => {
        ev.stopPropagation();
        root.querySelectorAll(".allframe-timeline-event.selected").forEach((d) => d.classList.remove("selected"));
        dot.classList.add("selected");
        selectedBox.textContent = `${e.type} · stream ${e.lane} · version ${e.version ?? "?"}` +
          ` · position ${e.position} · ${shortTime(e.time)} UTC`;
        payloadBox.textContent = JSON.stringify(e.data ?? {}, null, 2);
        metaBox.textContent = e.metadata && Object.keys(e.metadata).length
          ? "metadata " + JSON.stringify(e.metadata) : "";
        onPick(e.position);
      });
      track.append(dot);
    });
    root.append(row);
  }
  root.append(selectedBox, payloadBox, metaBox);
  container.append(root);
}

function render({ model, el }) {
  const root = h("div", { class: "allframe-stream-browser" });
  const query = h("input", { type: "search", class: "allframe-stream-query", placeholder: "stream id contains…" });
  const type = h("select", { class: "allframe-stream-type" });
  const from = h("input", { type: "datetime-local", class: "allframe-stream-from", title: "from (UTC)" });
  const to = h("input", { type: "datetime-local", class: "allframe-stream-to", title: "to (UTC)" });
  const clear = h("button", { class: "allframe-stream-clear", text: "clear" });
  const count = h("div", { class: "allframe-stream-count" });
  const error = h("div", { class: "allframe-stream-error" });
  const list = h("div", { class: "allframe-stream-list" });
  const timeline = h("div", { class: "allframe-sb-timeline-box" });
  root.append(
    h("div", { class: "allframe-stream-filters" }, query, type,
      h("label", { text: "from" }), from, h("label", { text: "to (UTC)" }), to, clear),
    count, error,
    h("div", { class: "allframe-stream-panes" }, list, timeline));
  el.append(root);

  const send = (changes) => {
    for (const [k, v] of Object.entries(changes)) model.set(k, v);
    model.save_changes();
  };
  const sendQuery = debounce(() => send({ query: query.value }), 250);
  query.addEventListener("input", sendQuery);
  type.addEventListener("change", () => send({ event_type: type.value }));
  from.addEventListener("change", () => send({ time_from: from.value }));
  to.addEventListener("change", () => send({ time_to: to.value }));
  clear.addEventListener("click", () => {
    query.value = ""; type.value = ""; from.value = ""; to.value = "";
    send({ query: "", event_type: "", time_from: "", time_to: "" });
  });

  const drawTypes = () => {
    const current = model.get("event_type");
    type.replaceChildren(h("option", { value: "", text: "any event type" }));
    for (const t of model.get("types")) {
      const opt = h("option", { value: t.type, text: `${t.type} (${t.events})` });
      type.append(opt);
    }
    type.value = current;
  };

  const drawRange = () => {
    const lo = toInput(model.get("first_time"));
    const hi = toInput(model.get("last_time"));
    for (const inp of [from, to]) {
      if (lo) inp.min = lo;
      if (hi) inp.max = hi;
    }
    from.value = toInput(model.get("time_from"));
    to.value = toInput(model.get("time_to"));
    if (document.activeElement !== query) query.value = model.get("query");
  };

  const drawRows = () => {
    const rows = model.get("rows");
    const selected = new Set(model.get("selected"));
    const total = model.get("total");
    count.textContent = `${total} stream${total === 1 ? "" : "s"} match` +
      (rows.length < total ? ` (showing the first ${rows.length})` : "") +
      ` · ${model.get("query_ms").toFixed(0)} ms`;
    const table = h("table", { class: "allframe-stream-table" });
    table.append(h("thead", {}, h("tr", {},
      ...["stream", "events", "first", "last", "from", "to"].map((t) => h("th", { text: t })))));
    const body = h("tbody");
    for (const r of rows) {
      const tr = h("tr", {
        class: "allframe-stream-row" + (selected.has(r.stream_id) ? " selected" : ""),
        "data-stream-id": r.stream_id,
      },
        h("td", { text: r.stream_id }), h("td", { text: String(r.events) }),
        h("td", { text: r.first_type }), h("td", { text: r.last_type }),
        h("td", { text: shortTime(r.first_occurred) }), h("td", { text: shortTime(r.last_occurred) }));
      tr.addEventListener("click", (ev) => {
        let next;
        if (ev.ctrlKey || ev.metaKey || ev.shiftKey) {
          const cur = model.get("selected").slice();
          const i = cur.indexOf(r.stream_id);
          if (i >= 0) cur.splice(i, 1); else cur.push(r.stream_id);
          next = cur.slice(-MAX_LANES);
        } else {
          next = [r.stream_id];
        }
        send({ selected: next });
      });
      body.append(tr);
    }
    table.append(body);
    list.replaceChildren(table);
  };

  const drawTimeline = () => renderTimeline(timeline, model.get("timeline"),
    (position) => send({ selected_position: position }));
  const drawError = () => { error.textContent = model.get("error"); };

  drawTypes(); drawRange(); drawRows(); drawTimeline(); drawError();
  model.on("change:types", drawTypes);
  model.on("change:event_type", drawTypes);
  model.on("change:first_time", drawRange);
  model.on("change:last_time", drawRange);
  model.on("change:time_from", drawRange);
  model.on("change:time_to", drawRange);
  model.on("change:query", drawRange);
  model.on("change:rows", drawRows);
  model.on("change:total", drawRows);
  model.on("change:selected", drawRows);
  model.on("change:timeline", drawTimeline);
  model.on("change:error", drawError);
}

export default { render };
