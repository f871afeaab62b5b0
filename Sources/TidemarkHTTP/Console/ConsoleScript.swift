/// The console's script (see `ConsoleAssets`).
enum ConsoleScript {
    static let source = #"""
"use strict";
// Tidemark console: renders every page from the JSON API (/api/...), live through
// Server-Sent Events (/api/events). Text from the broker only ever goes through
// textContent / createTextNode: nothing a client produced can become markup.
(function () {
  const main = document.getElementById("main");
  const errors = document.getElementById("errors");
  const live = document.getElementById("live");
  const params = new URLSearchParams(location.search);
  let token = sessionStorage.getItem("tidemark-token") || "";
  let onSnapshot = null;  // the current page's live update, if it has one

  function report(message) {
    errors.appendChild(document.createTextNode(message + "\n"));
  }
  window.addEventListener("error", (e) => report("error: " + e.message));
  window.addEventListener("unhandledrejection", (e) => report("error: " + (e.reason && e.reason.message || e.reason)));

  // --- DOM helpers -------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  function table(headers, rows, numeric) {
    const num = new Set(numeric || []);
    return el("table", {},
      el("thead", {}, el("tr", {}, headers.map((h, i) => el("th", { class: num.has(i) ? "num" : null }, h)))),
      el("tbody", {}, rows.map((r) => {
        const cells = r.cells || r;
        return el("tr", { class: r.class || null, "data-key": r.key || null },
          cells.map((c, i) => el("td", { class: num.has(i) ? "num" : null }, c)));
      })));
  }
  function card(label, value, key) {
    return el("div", { class: "card" }, el("div", { class: "label" }, label), el("div", { class: "value", "data-field": key || null }, value));
  }
  function link(href, text) { return el("a", { href }, text); }
  // A path naming a group: its id as a segment, except "." and ".." (a browser resolves those
  // as steps of the path): then "_", and the id in the `id` query parameter, which wins.
  function idPath(base, id, rest = "", query = "") {
    const dots = id === "." || id === "..";
    const q = [dots ? "id=" + encodeURIComponent(id) : "", query].filter(Boolean).join("&");
    return base + "/" + (dots ? "_" : encodeURIComponent(id)) + rest + (q ? "?" + q : "");
  }
  // replaceChildren, leaving out the absent (a view's optional parts are null).
  function fill(node, ...children) {
    node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  }
  const fmt = {
    n: (v) => v === null || v === undefined ? "–" : Number(v).toLocaleString("en-US"),
    rate: (v) => v === null || v === undefined ? "–" : (v >= 100 ? Math.round(v).toLocaleString("en-US") : Number(v).toFixed(1)) + "/s",
    bytes: (v) => {
      if (v === null || v === undefined) return "–";
      const units = ["B", "KiB", "MiB", "GiB", "TiB"];
      let i = 0; while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
      return (i ? v.toFixed(1) : v) + " " + units[i];
    },
    secs: (v) => {
      if (v === null || v === undefined) return "–";
      if (v < 0.001) return (v * 1e6).toFixed(0) + " µs";
      if (v < 1) return (v * 1000).toFixed(1) + " ms";
      if (v < 120) return v.toFixed(1) + " s";
      if (v < 7200) return (v / 60).toFixed(1) + " min";
      return (v / 3600).toFixed(1) + " h";
    },
    // A timestamp out of Date's range (a producer may send any int64) shows as its number.
    time: (ms) => (Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(ms)),
  };

  // --- API ---------------------------------------------------------------
  async function api(path, options) {
    const headers = Object.assign({ "Accept": "application/json" }, (options && options.headers) || {});
    if (token) headers["X-Tidemark-Token"] = token;
    const response = await fetch(path, Object.assign({}, options || {}, { headers }));
    const text = await response.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = { error: text }; }
    if (!response.ok) {
      const error = new Error((body && body.error) || ("HTTP " + response.status));
      error.status = response.status;
      throw error;
    }
    return body;
  }
  async function post(path, payload) {
    return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) });
  }

  // --- Live updates --------------------------------------------------------
  let events = 0;
  let source = null;
  // (Again when a token is entered: a stream refused without it is closed for good.)
  function connect() {
    if (source) source.close();
    const query = new URLSearchParams();
    if (params.get("max_events")) query.set("max_events", params.get("max_events"));
    if (token) query.set("token", token);
    const stream = new EventSource("/api/events" + (query.toString() ? "?" + query : ""));
    source = stream;
    stream.addEventListener("snapshot", (e) => {
      events += 1;
      document.body.dataset.events = String(events);
      live.textContent = "live · " + new Date().toLocaleTimeString();
      const snapshot = JSON.parse(e.data);
      if (onSnapshot) onSnapshot(snapshot);
    });
    stream.addEventListener("error", () => {
      live.textContent = events ? "live updates paused" : "no live updates";
      if (params.get("max_events") && events >= Number(params.get("max_events"))) stream.close();
    });
  }

  // --- Pages ---------------------------------------------------------------
  function overviewCards(o) {
    return el("div", { class: "cards", id: "overview-cards" },
      card("Version", o.version, "version"),
      card("Uptime", fmt.secs(o.uptimeSeconds), "uptime"),
      card("Kafka listener", o.kafkaAddress, "address"),
      card("Data directory", o.dataDirectory, "dataDirectory"),
      card("Connections", fmt.n(o.connections), "connections"),
      card("Produce requests", fmt.rate(o.produceRequestsPerSecond), "produceRate"),
      card("Fetch requests", fmt.rate(o.fetchRequestsPerSecond), "fetchRate"),
      card("Records in", fmt.rate(o.recordsInPerSecond), "recordsRate"),
      card("Bytes in", fmt.bytes(o.bytesInPerSecond) + "/s", "bytesIn"),
      card("Bytes out", fmt.bytes(o.bytesOutPerSecond) + "/s", "bytesOut"),
      card("fsync p99", fmt.secs(o.fsyncP99Seconds), "fsyncP99"),
      card("Records stored", fmt.n(o.recordsTotal), "recordsTotal"),
      card("Topics / partitions", fmt.n(o.topics) + " / " + fmt.n(o.partitions), "topics"),
      card("Groups / queues", fmt.n(o.groups) + " / " + fmt.n(o.queues), "groups"));
  }
  function offlineNotice(o) {
    const list = (ps) => ps.map((p) => p.topic + "-" + p.partition + " (" + p.reason + ")").join(", ");
    const notices = [];
    if (o.partitionsOffline.length) {
      notices.push(el("div", { class: "notice bad", id: "offline" }, "Partitions offline: ", list(o.partitionsOffline)));
    }
    if (o.partitionsDamaged.length) {
      notices.push(el("div", { class: "notice bad", id: "damaged" },
        "Partitions damaged on disk (reads stop there; run tidemark verify --repair with the broker stopped): ",
        list(o.partitionsDamaged)));
    }
    return notices.length ? el("div", {}, ...notices) : null;
  }
  async function overviewPage() {
    const o = await api("/api/overview");
    document.body.dataset.initialRecords = String(o.recordsTotal);
    const region = el("div", { id: "overview" }, overviewCards(o), offlineNotice(o));
    fill(main, el("h1", {}, "Overview"), region);
    onSnapshot = (s) => fill(region, overviewCards(s.overview), offlineNotice(s.overview));
  }

  function topicsTable(rows) {
    return table(["Topic", "Partitions", "Records", "Size", "Records/s", "Retention"],
      rows.filter((t) => !t.isInternal || params.get("internal")).map((t) => ({ key: t.name, cells: [
        link("/topics/" + encodeURIComponent(t.name), t.name), fmt.n(t.partitions), fmt.n(t.records), fmt.bytes(t.sizeBytes),
        fmt.rate(t.recordsPerSecond),
        (t.retentionMs === null || t.retentionMs === undefined ? "forever" : fmt.secs(t.retentionMs / 1000)) +
          (t.retentionBytes ? " / " + fmt.bytes(t.retentionBytes) : "")] })),
      [1, 2, 3, 4]);
  }
  async function topicsPage() {
    const rows = await api("/api/topics");
    const region = el("div", { id: "topics" }, topicsTable(rows));
    fill(main, el("h1", {}, "Topics"), region);
    onSnapshot = (s) => fill(region, topicsTable(s.topics));
  }

  function bytesView(b, mode) {
    if (!b) return el("span", { class: "muted" }, "null");
    // The bytes shown: base64 when they are not text, else the text's own UTF-8.
    const raw = b.base64 != null ? Array.from(atob(b.base64), (c) => c.charCodeAt(0)) : Array.from(new TextEncoder().encode(b.text));
    const hex = () => raw.map((x) => x.toString(16).padStart(2, "0")).join(" ");
    let shown;
    // (A field the server leaves out is undefined: `== null` covers both.)
    if (mode === "hex" || (mode === "auto" && b.text == null)) shown = hex();
    else if ((mode === "json" || mode === "auto") && b.isJSON) {
      try { shown = JSON.stringify(JSON.parse(b.text), null, 2); } catch (e) { shown = b.text; }
    } else shown = b.text == null ? hex() : b.text;
    return el("pre", {}, shown + (b.size > raw.length ? "\n… (" + fmt.n(b.size) + " bytes)" : ""));
  }
  function messagesTable(page, mode) {
    return table(["Offset", "Timestamp", "Key", "Headers", "Value"], page.messages.map((m) => ({ key: String(m.offset), cells: [
      fmt.n(m.offset), fmt.time(m.timestamp), bytesView(m.key, mode),
      el("div", {}, m.headers.map((h) => el("div", {}, el("b", {}, h.key), ": ", h.value ? (h.value.text != null ? h.value.text : bytesView(h.value, "hex")) : "null"))
        .concat(m.headerCount > m.headers.length ? [el("div", { class: "muted" }, "… " + fmt.n(m.headerCount - m.headers.length) + " more headers")] : [])),
      bytesView(m.value, mode)] })), [0]);
  }
  async function topicPage(name) {
    const t = await api("/api/topics/" + encodeURIComponent(name));
    const partition = el("select", { id: "partition" }, t.partitions.map((p) => el("option", { value: p.partition }, String(p.partition))));
    const offset = el("input", { id: "offset", placeholder: "offset", size: 10 });
    const time = el("input", { id: "time", placeholder: "2026-11-30T10:00:00Z or ms", size: 24 });
    const mode = el("select", { id: "mode" }, ["auto", "text", "json", "hex"].map((m) => el("option", { value: m }, m)));
    const results = el("div", { id: "messages" });
    let next = null;
    async function load(from) {
      const q = new URLSearchParams({ partition: partition.value, limit: "20" });
      if (from !== undefined && from !== null) q.set("offset", String(from));
      else if (offset.value) q.set("offset", offset.value);
      else if (time.value) q.set("time", time.value);
      const page = await api("/api/topics/" + encodeURIComponent(name) + "/messages?" + q);
      next = page.next ?? null;
      fill(results, 
        el("p", { class: "muted" }, "Partition " + page.partition + ": offsets " + fmt.n(page.logStartOffset) + "–" + fmt.n(page.logEndOffset) +
          ", showing " + page.messages.length + " from " + fmt.n(page.from)),
        messagesTable(page, mode.value),
        el("div", { class: "controls" }, el("button", { disabled: next === null, onclick: () => load(next) }, "Next page")));
    }
    fill(main, 
      el("h1", {}, "Topic ", name, t.isInternal ? el("span", { class: "badge" }, "internal") : null),
      el("h2", {}, "Partitions"),
      table(["Partition", "Log start", "Log end", "Records", "Size", "Segments", "State"], t.partitions.map((p) => ({ key: String(p.partition), cells: [
        String(p.partition), fmt.n(p.logStartOffset), fmt.n(p.logEndOffset), fmt.n(p.logEndOffset - p.logStartOffset), fmt.bytes(p.sizeBytes),
        fmt.n(p.segments), p.offline ? el("span", { class: "badge bad" }, "offline: " + p.offline) : "online"] })), [1, 2, 3, 4, 5]),
      el("h2", {}, "Messages"),
      el("form", { class: "controls", onsubmit: (e) => { e.preventDefault(); load(); } },
        el("label", {}, "Partition", partition), el("label", {}, "Offset", offset), el("label", {}, "or time", time),
        el("label", {}, "Show as", mode), el("button", { class: "primary", type: "submit" }, "Show")),
      results,
      el("h2", {}, "Configuration"),
      table(["Name", "Value"], t.configs.map((c) => [c.name, c.value])));
    mode.addEventListener("change", () => load(null));
    await load(params.get("offset") || undefined);
    onSnapshot = null;
  }

  function groupsTable(rows) {
    return table(["Group", "Type", "State", "Members", "Topics", "Lag", "Time lag"], rows.map((g) => ({
      key: g.id, class: g.lag > 0 && g.members === 0 ? "alert" : null, cells: [
        el("span", {}, link(idPath("/groups", g.id), g.id),
          g.lag > 0 && g.members === 0 ? el("span", { class: "badge bad" }, "lag, no consumers") : null),
        g.type, g.state, fmt.n(g.members), g.topics.join(", "), fmt.n(g.lag), fmt.secs(g.timeLagSeconds)] })), [3, 5, 6]);
  }
  async function groupsPage() {
    const rows = await api("/api/groups");
    const region = el("div", { id: "groups" }, groupsTable(rows));
    fill(main, el("h1", {}, "Consumer groups"), region);
    onSnapshot = (s) => fill(region, groupsTable(s.groups));
  }

  function lagChart(points) {
    const ns = "http://www.w3.org/2000/svg";
    const w = 640, h = 160, pad = 30;
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "chart"); svg.setAttribute("width", w); svg.setAttribute("height", h); svg.setAttribute("id", "lag-chart");
    const text = (x, y, s) => { const t = document.createElementNS(ns, "text"); t.setAttribute("x", x); t.setAttribute("y", y); t.textContent = s; svg.appendChild(t); };
    if (points.length === 0) { text(pad, h / 2, "collecting lag samples (one every 5 s)…"); return svg; }
    const t0 = points[0].t, t1 = Math.max(points[points.length - 1].t, t0 + 1);
    const max = Math.max(1, ...points.map((p) => p.lag));
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points.map((p) => (pad + (p.t - t0) / (t1 - t0) * (w - 2 * pad)).toFixed(1) + "," +
      (h - pad - p.lag / max * (h - 2 * pad)).toFixed(1)).join(" "));
    svg.appendChild(line);
    text(4, pad, fmt.n(max)); text(4, h - pad, "0");
    text(pad, h - 8, new Date(t0 * 1000).toLocaleTimeString()); text(w - pad - 60, h - 8, new Date(t1 * 1000).toLocaleTimeString());
    return svg;
  }
  async function groupPage(id) {
    const g = await api(idPath("/api/groups", id));
    const topics = Array.from(new Set(g.partitions.map((p) => p.topic)));
    const topic = el("select", { id: "reset-topic" }, topics.map((t) => el("option", { value: t }, t)));
    const to = el("select", { id: "reset-to" }, ["earliest", "latest", "time", "shift"].map((m) => el("option", { value: m }, m)));
    const value = el("input", { id: "reset-value", placeholder: "time (ISO or ms) / shift (±n)", size: 26 });
    const outcome = el("div", { id: "reset-outcome" });
    async function reset(dryRun) {
      const body = { topic: topic.value, to: to.value, dryRun };
      if (to.value === "time") body.timestamp = /^\d+$/.test(value.value) ? Number(value.value) : Date.parse(value.value);
      if (to.value === "shift") body.shift = Number(value.value);
      try {
        const result = await post(idPath("/api/groups", id, "/reset"), body);
        fill(outcome, el("div", { class: "notice" }, result.dryRun ? "Dry run: nothing changed yet." : "Offsets reset."),
          table(["Topic", "Partition", "Committed", "New offset"], result.offsets.map((r) => [r.topic, String(r.partition), r.from === null || r.from === undefined ? "–" : fmt.n(r.from), fmt.n(r.to)]), [1, 2, 3]));
        if (!dryRun) render(await api(idPath("/api/groups", id)));
      } catch (e) {
        fill(outcome, el("div", { class: "notice bad" }, "Refused: " + e.message));
      }
    }
    const region = el("div", { id: "group" });
    function render(g) {
      fill(region, 
        el("div", { class: "cards" }, card("State", g.state, "state"), card("Type", g.type), card("Members", fmt.n(g.members.length), "members"),
          card("Lag", fmt.n(g.lag), "lag"), card("Time lag", fmt.secs(g.timeLagSeconds), "timeLag")),
        g.lag > 0 && g.members.length === 0 ? el("div", { class: "notice bad" }, "This group has lag and no consumers.") : null,
        el("h2", {}, "Lag, last minutes"), lagChart(g.lagHistory),
        el("h2", {}, "Members"),
        g.members.length ? table(["Member", "Client id", "Host", "Assignment"], g.members.map((m) => [m.memberId, m.clientId, m.host, m.assignment.join(", ")]))
          : el("p", { class: "muted" }, "No members."),
        el("h2", {}, "Committed offsets"),
        table(["Topic", "Partition", "Committed", "Log end", "Lag"], g.partitions.map((p) => ({ key: p.topic + "-" + p.partition, cells: [
          p.topic, String(p.partition), p.committed < 0 ? "–" : fmt.n(p.committed), fmt.n(p.logEndOffset), fmt.n(p.lag)] })), [1, 2, 3, 4]));
      applyButton.disabled = g.members.length > 0;
      applyNote.textContent = g.members.length > 0 ? "Stop the group's consumers to reset (the broker refuses while it has members)." : "";
    }
    const applyButton = el("button", { class: "danger", type: "button", id: "reset-apply", onclick: () => reset(false) }, "Apply");
    const applyNote = el("span", { class: "muted" });
    fill(main, el("h1", {}, "Consumer group ", id), region,
      el("h2", {}, "Reset offsets"),
      el("form", { class: "controls", onsubmit: (e) => { e.preventDefault(); reset(true); } },
        el("label", {}, "Topic", topic), el("label", {}, "To", to), el("label", {}, "Value", value),
        el("button", { class: "primary", type: "submit", id: "reset-preview" }, "Preview (dry run)"), applyButton, applyNote),
      outcome);
    render(g);
    onSnapshot = async () => { render(await api(idPath("/api/groups", id))); };
  }

  function queuesTable(rows) {
    return table(["Group", "Topic", "Available", "In flight", "Delayed", "Archived", "Dead-lettered", "DLQ pending", "Redeliveries",
      "Lock expirations", "Oldest unacked", "Acks/s (accept·release·reject)"], rows.map((q) => ({
      key: q.group + "/" + q.topic, class: q.oldestUnackedAgeSeconds > 300 || q.deadLettersPending > 0 ? "alert" : null, cells: [
        link(idPath("/queues", q.group), q.group), q.topic, fmt.n(q.available), fmt.n(q.inFlight), fmt.n(q.delayed),
        fmt.n(q.archived), fmt.n(q.deadLettered), fmt.n(q.deadLettersPending), fmt.n(q.redeliveries), fmt.n(q.lockExpirations),
        fmt.secs(q.oldestUnackedAgeSeconds),
        ["accept", "release", "reject"].map((k) => (q.acksPerSecond[k] || 0).toFixed(1)).join(" · ")] })), [2, 3, 4, 5, 6, 7, 8, 9, 10]);
  }
  async function queuesPage() {
    const rows = await api("/api/queues");
    const region = el("div", { id: "queues" }, rows.length ? queuesTable(rows) : el("p", { class: "muted" }, "No share groups yet."));
    fill(main, el("h1", {}, "Queues (share groups)"), region);
    onSnapshot = (s) => fill(region, s.queues.length ? queuesTable(s.queues) : el("p", { class: "muted" }, "No share groups yet."));
  }
  async function queuePage(group) {
    const region = el("div", { id: "queue" });
    const dlq = el("div", { id: "dlq" });
    async function render() {
      const q = await api(idPath("/api/queues", group));
      fill(region, 
        el("div", { class: "cards" }, card("State", q.state, "state"), card("Workers", fmt.n(q.members.length), "members"),
          card("Dead-letter topic", q.deadLetterTopic || "none", "dlqTopic")),
        el("h2", {}, "By topic"), queuesTable(q.queues),
        el("h2", {}, "Partitions and locks"),
        table(["Topic", "Partition", "Start", "End", "Available", "In flight", "Delayed", "Archived", "Backlog", "Held by (records, lock deadline)"],
          q.partitions.map((p) => ({ key: p.topic + "-" + p.partition, cells: [p.topic, String(p.partition), fmt.n(p.startOffset), fmt.n(p.endOffset),
            fmt.n(p.available), fmt.n(p.inFlight), fmt.n(p.delayed), fmt.n(p.archived), fmt.n(p.backlog),
            el("div", {}, p.holders.map((h) => el("div", {}, h.member + " (" + h.records + ", until " + fmt.time(h.lockDeadlineMs) + ")")))] })),
          [1, 2, 3, 4, 5, 6, 7, 8]),
        el("h2", {}, "Workers"),
        q.members.length ? table(["Member", "Client id", "Host", "Partitions"], q.members.map((m) => [m.memberId, m.clientId, m.host, m.assignment.join(", ")]))
          : el("p", { class: "muted" }, "No workers connected."));
    }
    async function letters() {
      const page = await api(idPath("/api/queues", group, "/dlq", "limit=50"));
      if (!page.topic) { fill(dlq, el("p", { class: "muted" }, "This group has no dead-letter topic.")); return; }
      fill(dlq, 
        el("p", { class: "muted" }, page.topic + "-" + page.partition + ": " + fmt.n(page.logEndOffset - page.logStartOffset) + " dead letters"),
        table(["Offset", "Why", "Original", "Deliveries", "Key", "Value", ""], page.letters.map((l) => ({ key: String(l.message.offset), cells: [
          fmt.n(l.message.offset), l.errors["disposition"] || "", (l.errors["original.topic"] || "?") + "-" + (l.errors["original.partition"] || "?") + "@" + (l.errors["original.offset"] || "?"),
          l.errors["delivery.count"] || "", bytesView(l.message.key, "auto"), bytesView(l.message.value, "auto"),
          l.requeuedTo ? el("span", { class: "badge" }, "requeued to " + l.requeuedTo) : el("button", { type: "button", class: "requeue", onclick: async (e) => {
            try {
              const done = await post(idPath("/api/queues", group, "/dlq/requeue"), { partition: page.partition, offset: l.message.offset });
              e.target.replaceWith(el("span", { class: "badge" }, "requeued to " + done.topic + "-" + done.partition + "@" + done.offset));
            } catch (error) {
              e.target.replaceWith(el("span", { class: "badge bad" }, "refused: " + error.message));
            }
          } }, "Requeue")] })), [0, 3]));
    }
    fill(main, el("h1", {}, "Queue ", group), region, el("h2", {}, "Dead letters"), dlq);
    await render();
    await letters();
    onSnapshot = () => render();
  }

  // --- Router ----------------------------------------------------------------
  async function route() {
    const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    // A group named "." or ".." comes in the `id` query parameter (see `idPath`).
    const named = new URLSearchParams(location.search).get("id");
    if (named !== null && parts.length === 2 && (parts[0] === "groups" || parts[0] === "queues")) parts[1] = named;
    const section = parts[0] || "overview";
    for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.dataset.nav === section);
    try {
      if (parts.length === 0) await overviewPage();
      else if (section === "topics") await (parts[1] ? topicPage(parts[1]) : topicsPage());
      else if (section === "groups") await (parts[1] ? groupPage(parts[1]) : groupsPage());
      else if (section === "queues") await (parts[1] ? queuePage(parts[1]) : queuesPage());
      else fill(main, el("p", {}, "No such page."));
      document.body.dataset.ready = "true";
    } catch (e) {
      if (e.status === 401) fill(main, el("div", { class: "notice bad" }, "This console needs its auth token: enter it above."));
      else throw e;
    }
  }
  document.getElementById("token").value = token;
  document.getElementById("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    token = document.getElementById("token").value;
    sessionStorage.setItem("tidemark-token", token);
    route().finally(connect);
  });
  route().then(connect);
})();
"""#
}
