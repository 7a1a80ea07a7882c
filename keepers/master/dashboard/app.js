/*
 * The master's dashboard page (keepers/master/dashboard.ts serves it). Polls /dashboard/state every 1.5 s
 * and redraws. Every value from the state goes into the DOM as text (createTextNode, textContent, title,
 * SVG attributes built from numbers): node names, task errors, file names and logs come from nodes and are
 * hostile input, so this file never uses innerHTML, insertAdjacentHTML, document.write or eval.
 *
 * The operator token (optional) comes from the URL fragment (/dashboard#token=...), which browsers never
 * send to a server; it is kept in sessionStorage, taken out of the address bar, and sent as
 * `Authorization: Bearer` to the master only.
 */
"use strict";
(() => {
  const POLL_MS = 1500;
  const LOGS_MS = 3000;
  const TOKEN_KEY = "computenet-dashboard-token";
  const SVG = "http://www.w3.org/2000/svg";

  let token = null;
  let polls = 0;
  let selectedTask = null;
  let lastState = null;
  let logsTimer = null;

  // ---------------------------------------------------------------- token

  function readToken() {
    const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (match) {
      token = decodeURIComponent(match[1]);
      try {
        sessionStorage.setItem(TOKEN_KEY, token);
      } catch (_) {
        // storage unavailable: the token lives for this page only
      }
      history.replaceState(null, "", location.pathname + location.search);
      return;
    }
    try {
      token = sessionStorage.getItem(TOKEN_KEY);
    } catch (_) {
      token = null;
    }
  }

  function dropToken() {
    token = null;
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch (_) {
      // nothing stored
    }
  }

  const authHeaders = () => (token ? { authorization: `Bearer ${token}` } : {});

  // ---------------------------------------------------------------- DOM helpers (text only)

  /** An element with text children; attributes limited to a safe set. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = String(value);
      else if (key === "title") node.title = String(value);
      else if (key === "colspan") node.colSpan = Number(value);
      else if (key === "onclick") node.addEventListener("click", value);
      else if (key.startsWith("data-")) node.setAttribute(key, String(value));
      else throw new Error(`attribute not allowed: ${key}`);
    }
    append(node, children);
    return node;
  }

  function append(parent, children) {
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    append(node, children);
    return node;
  }

  const byId = (id) => document.getElementById(id);
  /** A class-name-safe form of a state name. */
  const cls = (text) => String(text).replace(/[^A-Za-z0-9_-]/g, "");
  const badge = (text) => el("span", { class: `state state-${cls(text)}` }, text);
  const mono = (text, title) => el("span", { class: "mono", title }, text);
  const short = (address) => (typeof address === "string" && address.length > 14 ? `${address.slice(0, 8)}…${address.slice(-6)}` : String(address ?? "—"));

  /** Distinct colours for the run's nodes (by address order); other addresses get a hue from their bytes. */
  const PALETTE = ["#4ea1ff", "#f0883e", "#3fb950", "#a371f7", "#db61a2", "#e3b341", "#56d4dd", "#ff7b72", "#8ddb8c", "#b1bac4"];
  let colours = new Map();

  function assignColours(state) {
    const addresses = new Set([...state.nodes.map((n) => n.node), ...state.epochs.flatMap((e) => e.power.map((p) => p.node))].map((a) => String(a).toLowerCase()));
    colours = new Map([...addresses].sort().map((address, i) => [address, PALETTE[i % PALETTE.length]]));
  }

  function colour(address) {
    const known = colours.get(String(address).toLowerCase());
    if (known) return known;
    const hue = parseInt(String(address).slice(2, 8), 16) % 360 || 0;
    return `hsl(${hue}, 45%, 62%)`;
  }

  function nodeLabel(address) {
    if (!address) return el("span", { class: "muted" }, "—");
    const swatch = el("span", { class: "swatch" });
    swatch.style.background = colour(address);
    return el("span", { title: address }, swatch, mono(short(address)));
  }

  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "never";
    if (seconds < 60) return `${seconds} s ago`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
    return `${Math.floor(seconds / 3600)} h ago`;
  }

  function sinceIso(iso, nowIso) {
    if (!iso) return "—";
    const seconds = Math.max(0, Math.round((Date.parse(nowIso) - Date.parse(iso)) / 1000));
    return ago(seconds);
  }

  const clock = (sec) => (sec ? new Date(sec * 1000).toLocaleTimeString() : "—");

  /** wei (decimal string) as CNET with up to 4 decimals. */
  function cnet(wei) {
    try {
      const value = BigInt(wei);
      const whole = value / 10n ** 18n;
      const frac = ((value % 10n ** 18n) * 10000n) / 10n ** 18n;
      return `${whole.toLocaleString("en-US")}${frac > 0n ? `.${frac.toString().padStart(4, "0").replace(/0+$/, "")}` : ""} CNET`;
    } catch (_) {
      return String(wei);
    }
  }

  function bytes(n) {
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  }

  function share(part, total) {
    try {
      const t = BigInt(total);
      if (t === 0n) return 0;
      return Number((BigInt(part) * 10000n) / t) / 100;
    } catch (_) {
      return 0;
    }
  }

  function fill(tableId, rows, columns, empty) {
    const body = byId(tableId).tBodies[0];
    body.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { class: "empty", colspan: columns }, empty))]));
  }

  // ---------------------------------------------------------------- sections

  function renderRun(state) {
    const run = state.run;
    byId("run-title").textContent = `run ${run.runId}`;
    document.title = `computenet run ${run.runId}`;
    const facts = [
      ["status", badge(run.status)],
      ["master", nodeLabel(run.master)],
      ["buyer", nodeLabel(run.buyer)],
      ["assignment", run.assignment],
      ["heartbeat", `every ${run.heartbeatIntervalSec} s`],
      ["epoch", state.chain.epoch === null ? "—" : state.chain.epoch],
      ["phase", state.chain.phase ? badge(state.chain.phase) : "—"],
      ["nodes", `${state.nodesTotal}`],
      ["tasks", `${state.tasksTotal}`],
    ];
    if (run.leader !== undefined) facts.push(["instance", run.leader ? "leader" : "follower"]);
    if (state.chain.error) facts.push(["chain", el("span", { class: "muted" }, state.chain.error)]);
    byId("run").replaceChildren(...facts.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v))));

    const bar = byId("epoch-progress");
    const t = state.chain.timeline;
    if (!t) {
      bar.replaceChildren(el("div", { class: "muted" }, state.chain.phase === "NotStarted" ? "epoch 1 has not started" : "no epoch"));
      return;
    }
    const span = t.end - t.start;
    const parts = [
      ["PoC", t.start, t.pocEnd],
      ["PoCValidation", t.pocEnd, t.pocValidationEnd],
      ["Work", t.pocValidationEnd, t.end],
    ].map(([name, from, to]) => {
      const part = el("div", { class: `phase-${name}`, title: `${name}: ${clock(from)} – ${clock(to)}` }, name === "PoCValidation" ? "PoC validation" : name);
      part.style.width = `${((to - from) / span) * 100}%`;
      return part;
    });
    const now = el("div", { class: "now", title: "now (chain time)" });
    now.style.left = `${Math.min(100, Math.max(0, ((state.chain.chainTime - t.start) / span) * 100))}%`;
    bar.replaceChildren(...parts, now);
  }

  function renderNodes(state) {
    const counts = Object.entries(state.counts.nodes).map(([s, n]) => `${n} ${s}`).join(", ");
    byId("nodes-count").textContent = state.nodesTotal ? `(${counts}${state.nodes.length < state.nodesTotal ? `; ${state.nodes.length} shown` : ""})` : "";
    const powerEpoch = state.epochs.find((e) => e.power.length > 0);
    const rows = state.nodes.map((n) =>
      el(
        "tr",
        { "data-node": n.node, "data-state": n.state },
        el("td", {}, nodeLabel(n.node), n.endpoint ? el("div", { class: "muted mono" }, n.endpoint) : null),
        el("td", {}, badge(n.state)),
        el("td", {}, n.participation),
        el(
          "td",
          { title: powerEpoch ? `epoch ${powerEpoch.epoch}${powerEpoch.powerFinal ? " (final)" : " (so far)"}` : "no power in the recent epochs" },
          n.power === null ? "—" : `${n.power}${powerEpoch && n.power !== "0" ? ` (${share(n.power, powerEpoch.totalPower)}%)` : ""}`,
        ),
        el("td", { title: n.lastHeartbeat || "" }, ago(n.heartbeatAgeSec)),
        el("td", { title: n.stateSince || "" }, sinceIso(n.stateSince, state.generatedAt)),
        el("td", {}, n.tasks.length ? n.tasks.map((id, i) => [i ? ", " : "", mono(id)]) : el("span", { class: "muted" }, "idle")),
      ),
    );
    fill("nodes", rows, 7, "no nodes yet: the master lists the nodes registered for its run");
  }

  function renderTasks(state) {
    const counts = Object.entries(state.counts.tasks).map(([s, n]) => `${n} ${s}`).join(", ");
    byId("tasks-count").textContent = state.tasksTotal ? `(${counts}${state.tasks.length < state.tasksTotal ? `; latest ${state.tasks.length} shown` : ""})` : "";
    const operator = state.view === "operator";
    const rows = state.tasks.map((t) => {
      const chain = t.chain;
      const notes = [t.error, t.nodeError ? `node: ${t.nodeError}` : null, !t.final && t.waiting ? t.waiting : null].filter(Boolean);
      return el(
        "tr",
        { "data-task": t.taskId, "data-state": t.state, "data-node": t.node },
        el("td", {}, mono(t.taskId)),
        el("td", {}, badge(t.state), t.restarts ? el("span", { class: "muted" }, ` ${t.restarts} restarts`) : null),
        el("td", {}, nodeLabel(t.node)),
        el("td", {}, t.exitCode === null ? "—" : String(t.exitCode)),
        el(
          "td",
          { title: chain && chain.resultHash ? `seal of the result ${chain.resultHash}` : "" },
          chain ? [`#${chain.ledgerTaskId} · epoch ${chain.epoch} · `, badge(chain.status), ` · ${cnet(chain.pay)}`] : el("span", { class: "muted" }, state.run.assignment === "chain" ? "not yet" : "local"),
        ),
        el(
          "td",
          {},
          chain ? `${chain.validationsOk} ✓ ${chain.validations - chain.validationsOk} ✗` : "—",
          chain && chain.dispute ? [" ", badge(chain.dispute)] : null,
        ),
        el("td", {}, t.files.count ? `${t.files.count} (${bytes(t.files.bytes)})` : el("span", { class: "muted" }, "none")),
        el(
          "td",
          {},
          operator
            ? el("button", { onclick: () => selectTask(t.taskId), "data-logs": t.taskId }, selectedTask === t.taskId ? "shown below" : "logs & files")
            : el("span", { class: "muted", title: "logs, specs and file names need the operator token (/dashboard#token=…)" }, "token needed"),
        ),
        el("td", { class: "wrap" }, notes.length ? notes.map((n, i) => el("div", { class: i === 0 && t.error ? "" : "muted" }, n)) : ""),
      );
    });
    fill("tasks", rows, 9, "no tasks yet");
    renderTaskDetail(state);
  }

  function selectTask(taskId) {
    selectedTask = selectedTask === taskId ? null : taskId;
    if (lastState) renderTasks(lastState);
    if (selectedTask) void refreshLogs();
  }

  function renderTaskDetail(state) {
    const box = byId("task-detail");
    const task = selectedTask && state.view === "operator" ? state.tasks.find((t) => t.taskId === selectedTask) : undefined;
    if (!task) {
      box.hidden = true;
      if (logsTimer) clearTimeout(logsTimer);
      logsTimer = null;
      return;
    }
    box.hidden = false;
    byId("task-detail-title").textContent = `task ${task.taskId}`;
    const spec = task.spec || {};
    const files = (task.files.list || []).map((f) =>
      el(
        "li",
        {},
        el("button", { onclick: () => void download(task.taskId, f) }, "download"),
        " ",
        mono(f.name, f.sha256),
        el("span", { class: "muted" }, ` ${bytes(f.size)}`),
      ),
    );
    let logs = byId("task-logs");
    if (!logs || logs.getAttribute("data-task") !== task.taskId) {
      logs = el("pre", { class: "logs", "data-task": task.taskId }, "loading logs…");
      logs.id = "task-logs";
    }
    byId("task-detail-body").replaceChildren(
      el(
        "dl",
        { class: "facts" },
        el("div", {}, el("dt", {}, "image"), el("dd", {}, mono(spec.image || "—"))),
        el("div", {}, el("dt", {}, "command"), el("dd", {}, mono((spec.command || []).join(" ")))),
        el("div", {}, el("dt", {}, "resources"), el("dd", {}, `${spec.cpus} CPU, ${spec.memoryMB} MB, ${spec.gpus} GPU`)),
        el("div", {}, el("dt", {}, "env"), el("dd", {}, (spec.envNames || []).join(", ") || "—")),
        el("div", {}, el("dt", {}, "container"), el("dd", {}, mono(task.containerId || "—"))),
      ),
      el("h3", {}, "files"),
      files.length ? el("ul", { class: "files" }, files) : el("div", { class: "muted" }, "no files stored"),
      el("h3", {}, "logs"),
      logs,
    );
  }

  async function refreshLogs() {
    if (logsTimer) clearTimeout(logsTimer);
    logsTimer = null;
    const taskId = selectedTask;
    if (!taskId) return;
    let text;
    try {
      const res = await fetch(`/dashboard/tasks/${encodeURIComponent(taskId)}/logs?tail=500`, { headers: authHeaders(), cache: "no-store" });
      const body = await res.json();
      text = res.ok ? `${body.stdout}${body.stderr ? `\n--- stderr ---\n${body.stderr}` : ""}` || "(no output yet)" : `logs unavailable: ${body.error || res.status}`;
    } catch (error) {
      text = `logs unavailable: ${error.message}`;
    }
    const logs = byId("task-logs");
    if (selectedTask !== taskId || !logs || logs.getAttribute("data-task") !== taskId) return;
    logs.textContent = text;
    const task = lastState && lastState.tasks.find((t) => t.taskId === taskId);
    if (task && !task.final) logsTimer = setTimeout(() => void refreshLogs(), LOGS_MS);
  }

  async function download(taskId, file) {
    const res = await fetch(`/dashboard/tasks/${encodeURIComponent(taskId)}/files/${encodeURIComponent(file.sha256)}`, { headers: authHeaders() });
    if (!res.ok) {
      alert(`download failed: HTTP ${res.status}`);
      return;
    }
    const url = URL.createObjectURL(await res.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = String(file.name).split("/").pop() || file.sha256;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30_000);
  }

  /** Stacked bars: each epoch's power split between its nodes (share of the total), current epoch first. */
  function renderPowerChart(state) {
    const box = byId("power-chart");
    const epochs = state.epochs;
    if (!epochs.length) {
      box.replaceChildren(el("div", { class: "muted" }, state.chain.error ? `no epochs: ${state.chain.error}` : "no epoch has started yet"));
      return;
    }
    const width = 760;
    const label = 130;
    const barWidth = width - label - 10;
    const row = 26;
    const top = 18;
    const height = top + epochs.length * row + 4;
    const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "power distribution per epoch" });
    for (const pct of [0, 25, 50, 75, 100]) {
      const x = label + (barWidth * pct) / 100;
      chart.appendChild(svg("line", { x1: x, x2: x, y1: top - 4, y2: height, stroke: "#2a3440", "stroke-width": 1 }));
      chart.appendChild(svg("text", { x, y: 11, "text-anchor": pct === 0 ? "start" : pct === 100 ? "end" : "middle", class: "axis" }, `${pct}%`));
    }
    const nodes = new Map();
    epochs.forEach((e, i) => {
      const y = top + i * row;
      chart.appendChild(svg("text", { x: 0, y: y + 15 }, `epoch ${e.epoch}${e.powerFinal ? "" : " (so far)"}`));
      if (!e.power.length) {
        chart.appendChild(svg("text", { x: label + 4, y: y + 15, class: "axis" }, e.phase === "PoC" ? "PoC in progress" : "no power"));
        return;
      }
      let x = label;
      for (const p of e.power) {
        const pct = share(p.power, e.totalPower);
        const w = (barWidth * pct) / 100;
        nodes.set(p.node, true);
        const rect = svg(
          "rect",
          { x: x.toFixed(2), y, width: Math.max(0, w - 1).toFixed(2), height: row - 6, rx: 3, fill: colour(p.node), "data-node": p.node, "data-epoch": e.epoch },
          svg("title", {}, `${p.node}: power ${p.power} of ${e.totalPower} (${pct}%) in epoch ${e.epoch}`),
        );
        chart.appendChild(rect);
        if (w > 44) chart.appendChild(svg("text", { x: (x + w / 2).toFixed(2), y: y + 14, "text-anchor": "middle", fill: "#0f1419" }, `${pct}%`));
        x += w;
      }
    });
    const legend = el(
      "div",
      { class: "legend" },
      [...nodes.keys()].map((node) => {
        const swatch = el("span", { class: "swatch" });
        swatch.style.background = colour(node);
        return el("span", { title: node }, swatch, mono(short(node)));
      }),
    );
    box.replaceChildren(chart, legend);

    const rows = epochs.map((e) =>
      el(
        "tr",
        { "data-epoch": e.epoch },
        el("td", {}, e.epoch),
        el("td", {}, badge(e.phase)),
        el("td", {}, e.powerFinal ? "final" : "so far"),
        el("td", {}, e.totalPower),
        el("td", {}, String(e.power.length)),
        el("td", {}, clock(e.timeline.start)),
        el("td", {}, clock(e.timeline.end)),
        el("td", {}, clock(e.timeline.claimEnd)),
      ),
    );
    fill("epochs", rows, 8, "no epochs");
  }

  function renderValidations(state) {
    fill(
      "validations",
      state.validations
        .slice()
        .reverse()
        .map((v) =>
          el(
            "tr",
            {},
            el("td", {}, `#${v.ledgerTaskId}`),
            el("td", {}, mono(v.taskId)),
            el("td", {}, v.epoch),
            el("td", {}, nodeLabel(v.executor)),
            el("td", {}, nodeLabel(v.validator)),
            el("td", {}, badge(v.ok ? "ok" : "bad"), v.ok ? " reproduced" : " not reproduced"),
          ),
        ),
      6,
      "no validations yet",
    );
    fill(
      "disputes",
      state.disputes.map((d) =>
        el(
          "tr",
          {},
          el("td", {}, `#${d.ledgerTaskId}`),
          el("td", {}, mono(d.taskId)),
          el("td", {}, d.epoch),
          el("td", {}, nodeLabel(d.executor)),
          el("td", {}, nodeLabel(d.accuser)),
          el("td", {}, badge(d.status)),
          el("td", {}, `${d.invalidWeight} / ${d.validWeight}`),
          // Votes carry seals: one seal per voter is a non-deterministic task (it ends Unresolved).
          el("td", {}, `${d.votes.length} (${new Set(d.votes.map((v) => v.seal ?? (v.invalid ? "against" : "for"))).size})`),
          el("td", {}, d.slashed ? cnet(d.slashed) : "—"),
        ),
      ),
      9,
      "no disputes",
    );
    fill(
      "claims",
      state.claims.map((c) => {
        const status = c.claimed ? (c.forfeited ? "forfeited" : "claimed") : c.expired ? "expired" : "unclaimed";
        return el(
          "tr",
          { "data-claim": `${c.epoch}:${c.node}` },
          el("td", {}, c.epoch),
          el("td", {}, nodeLabel(c.node)),
          el("td", {}, badge(status)),
          el("td", {}, cnet(c.work)),
          el("td", {}, cnet(c.reward)),
        );
      }),
      5,
      "no claims yet (claims open after an epoch's Dispute phase)",
    );
  }

  function render(state) {
    lastState = state;
    assignColours(state);
    renderRun(state);
    renderNodes(state);
    renderTasks(state);
    renderPowerChart(state);
    renderValidations(state);
    const view = byId("view");
    view.textContent = state.view === "operator" ? "operator view" : state.operatorViewAvailable ? "public view (operator view: /dashboard#token=…)" : "public view";
    byId("updated").textContent = `updated ${new Date(state.generatedAt).toLocaleTimeString()}`;
  }

  function setLive(kind, text) {
    const live = byId("live");
    live.className = `pill pill-${kind}`;
    live.textContent = text;
  }

  async function poll() {
    try {
      const res = await fetch("/dashboard/state", { headers: authHeaders(), cache: "no-store" });
      if (res.status === 401 && token) {
        dropToken();
        setLive("down", "token refused: public view");
        return poll();
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      render(await res.json());
      polls++;
      document.body.setAttribute("data-polls", String(polls));
      setLive("live", "live");
    } catch (error) {
      setLive("down", `disconnected (${error.message}); retrying`);
    }
    setTimeout(() => void poll(), POLL_MS);
  }

  readToken();
  void poll();
})();
