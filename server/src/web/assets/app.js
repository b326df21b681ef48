// stepline's web pages: state machines, a definition's graph, executions
// and an execution's live view, over the REST API under /v1/. Routing is
// by the URL's fragment (#/executions/flow/run-1), so the server serves one
// page. Untrusted text (names, inputs, outputs, errors) only ever reaches
// the DOM through textContent: see h() below, the one place nodes are made.
"use strict";

(function () {
  const main = document.getElementById("main");
  const PAGE = 25;
  const HISTORY_PAGE = 1000;
  const LONG_POLL = 20;
  let leave = null; // cleanup of the current page (stops polling)
  // A page's "may the user go elsewhere?" (the workbench asks when there
  // are unsaved edits), and the address it was opened at.
  let mayLeave = null;
  let here = location.hash;

  // ---- DOM -----------------------------------------------------------------

  // h("a.cls#id", {href}, child...): children are nodes or strings; strings
  // become text nodes, never markup.
  function h(tag, attrs, ...children) {
    const [name, ...rest] = tag.split(/(?=[.#])/);
    const node = document.createElement(name || "div");
    for (const part of rest) {
      if (part[0] === ".") node.classList.add(part.slice(1));
      else node.id = part.slice(1);
    }
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function show(...nodes) {
    main.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined));
  }

  function toast(text) {
    const t = document.getElementById("toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => (t.hidden = true), 5000);
  }

  function seg(text) {
    return encodeURIComponent(text);
  }

  // ---- API -----------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message, data) {
      super(message);
      this.status = status;
      this.code = code;
      this.data = data; // the whole error body (InvalidDefinition's diagnostics)
    }
  }

  // A server with [[server.tokens]] asks for `Authorization: Bearer`: the
  // token is asked for once and kept for this tab only (sessionStorage).
  const TOKEN_KEY = "stepline-token";

  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || "";
    } catch (e) {
      return "";
    }
  }

  async function api(method, path, body, signal) {
    const init = { method, headers: { Accept: "application/json" }, signal };
    const bearer = token();
    if (bearer) init.headers.Authorization = "Bearer " + bearer;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = body;
    }
    const res = await fetch(path, init);
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (e) {
      throw new ApiError(res.status, "BadResponse", `the server answered ${res.status} with something that is not JSON`);
    }
    if (!res.ok) {
      throw new ApiError(res.status, (data && data.code) || String(res.status), (data && data.message) || res.statusText, data);
    }
    return data;
  }

  function tokenForm() {
    const input = h("input#token-input", { type: "password", autocomplete: "off", required: true, "aria-label": "API token" });
    const refused = token() !== "";
    return h(
      "form.token-form",
      {
        onsubmit: (e) => {
          e.preventDefault();
          try {
            sessionStorage.setItem(TOKEN_KEY, input.value.trim());
          } catch (err) {
            toast("this browser keeps no session storage: the token cannot be kept");
          }
          route();
        },
      },
      h("p", {}, refused
        ? "The server refused the token. Enter another one."
        : "This server asks for an API token (one of the [[server.tokens]] of its stepline.toml). It is kept for this tab only."),
      input,
      h("button", { type: "submit" }, "Use token"),
    );
  }

  function errorBox(err) {
    if (err && err.status === 401) return tokenForm();
    const code = err && err.code ? err.code + ": " : "";
    return h("div.error-box", { role: "alert" }, code + (err && err.message ? err.message : String(err)));
  }

  // ---- formatting ----------------------------------------------------------

  // Times are shown in this browser's zone or in UTC, as the user chose
  // with the header's toggle (kept in this browser), and always say which.
  let utc = false;
  try {
    utc = localStorage.getItem("stepline-zone") === "utc";
  } catch (e) {
    utc = false;
  }

  // Year, month, day, hours, minutes, seconds of `d` in the chosen zone.
  function fields(d) {
    return utc
      ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
      : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()];
  }

  function when(iso) {
    if (!iso) return "";
    const [y, mo, da, hh, mi, ss] = fields(new Date(iso));
    const pad = (n) => String(n).padStart(2, "0");
    return `${y}-${pad(mo)}-${pad(da)} ${pad(hh)}:${pad(mi)}:${pad(ss)}`;
  }

  // The chosen zone: "UTC", or the browser's as an offset ("UTC+01:00")
  // at the moment `d` and its name ("Europe/Paris") when the browser
  // knows it.
  function zoneOf(d) {
    if (utc) return "UTC";
    const off = -d.getTimezoneOffset();
    const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, "0");
    const offset = "UTC" + (off < 0 ? "-" : "+") + pad(off / 60) + ":" + pad(off % 60);
    let name = "";
    try {
      name = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (e) {
      name = "";
    }
    return name && name !== "UTC" && name !== "Etc/UTC" ? `${offset} ${name}` : offset;
  }

  // An absolute time with milliseconds and its zone: what a person copies
  // into a ticket or compares with a log line.
  function whenZoned(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return `${when(iso)}.${String(d.getMilliseconds()).padStart(3, "0")} ${zoneOf(d)}`;
  }

  // "12 s ago", "in 3 min": how far `iso` is from now.
  function relative(iso) {
    if (!iso) return "";
    const ms = new Date(iso) - new Date();
    const s = Math.round(Math.abs(ms) / 1000);
    let text;
    if (s < 2) return "just now";
    if (s < 60) text = `${s} s`;
    else if (s < 3600) text = `${Math.floor(s / 60)} min`;
    else if (s < 172800) text = `${Math.floor(s / 3600)} h` + (s % 3600 >= 60 ? ` ${Math.floor((s % 3600) / 60)} min` : "");
    else text = `${Math.floor(s / 86400)} days`;
    return ms < 0 ? text + " ago" : "in " + text;
  }

  // A time as a person reads it (absolute, with the zone) beside how long
  // ago it was; the relative part is refreshed by the page's ticker.
  function timeBoth(iso, id) {
    return h("span.time", { id, dataset: { at: iso || "" } }, h("span.abs", {}, whenZoned(iso)), " ", h("span.rel.muted", {}, "(" + relative(iso) + ")"));
  }

  function refreshRelative(root) {
    for (const t of root.querySelectorAll("span.time[data-at]")) {
      const rel = t.querySelector(".rel");
      if (rel && t.dataset.at) rel.textContent = "(" + relative(t.dataset.at) + ")";
    }
  }

  // The time of day to the millisecond, in the browser's zone.
  function clock(iso) {
    return when(iso).slice(11) + "." + String(new Date(iso).getMilliseconds()).padStart(3, "0");
  }

  // A duration as the command line writes it (docs/cli.md, "Times and
  // durations"): the two largest units that matter, cut, not rounded:
  // 0.004s, 59.999s, 3m34s, 2h05m, 3d07h.
  function durationMs(ms) {
    ms = Math.max(0, Math.floor(ms));
    const pad = (n, w) => String(Math.floor(n)).padStart(w, "0");
    const MINUTE = 60000, HOUR = 60 * MINUTE, DAY = 24 * HOUR;
    if (ms < MINUTE) return `${Math.floor(ms / 1000)}.${pad(ms % 1000, 3)}s`;
    if (ms < HOUR) return `${Math.floor(ms / MINUTE)}m${pad((ms % MINUTE) / 1000, 2)}s`;
    if (ms < DAY) return `${Math.floor(ms / HOUR)}h${pad((ms % HOUR) / MINUTE, 2)}m`;
    return `${Math.floor(ms / DAY)}d${pad((ms % DAY) / HOUR, 2)}h`;
  }

  function duration(fromIso, toIso) {
    if (!fromIso) return "";
    return durationMs((toIso ? new Date(toIso) : new Date()) - new Date(fromIso));
  }

  function badge(status) {
    return h("span.badge", { class: "badge s-" + String(status).toLowerCase() }, String(status).replace("_", " "));
  }

  function pretty(value) {
    if (value === undefined) return "";
    if (typeof value === "string") return value;
    return JSON.stringify(value, null, 2);
  }

  function jsonBlock(title, value, cls) {
    return h("section.json", { class: "json " + (cls || "") }, h("h4", {}, title), h("pre", {}, pretty(value)));
  }

  function execLink(e) {
    // e.id is MACHINE/NAME, or MACHINE/NAME:ID for an EXPRESS execution.
    return "#/executions/" + seg(e.stateMachine) + "/" + seg(e.id.slice(e.stateMachine.length + 1));
  }

  // ---- router --------------------------------------------------------------

  function parseHash() {
    const raw = location.hash.replace(/^#/, "") || "/";
    const [path, q] = raw.split("?");
    let parts;
    try {
      parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    } catch (e) {
      parts = ["\u0000malformed"]; // a stray % in a typed address: not found
    }
    const params = new URLSearchParams(q || "");
    return { parts, params };
  }

  function route() {
    if (mayLeave && location.hash !== here && !mayLeave()) {
      // Stay: put the address back without another hashchange.
      history.replaceState(null, "", here || "#/");
      return;
    }
    mayLeave = null;
    here = location.hash;
    route.ticket = (route.ticket || 0) + 1;
    if (leave) leave();
    leave = null;
    setLive(false);
    const { parts, params } = parseHash();
    const section = ["executions", "author", "dashboard", "triggers", "lineage"].includes(parts[0]) ? parts[0] : "machines";
    for (const name of ["machines", "executions", "author", "dashboard", "triggers", "lineage"]) {
      document.getElementById("nav-" + name).classList.toggle("on", section === name);
    }
    window.scrollTo(0, 0);
    if (parts.length === 0) return machinesPage();
    if (parts[0] === "machines" && parts.length === 2) return machinePage(parts[1]);
    if (parts[0] === "machines" && parts.length === 3 && parts[2] === "grid") return gridPage(parts[1], params);
    if (parts[0] === "executions" && parts.length === 1) return executionsPage(params);
    if (parts[0] === "executions" && parts.length === 3) return executionPage(parts[1], parts[2], params.get("state"));
    if (parts[0] === "author" && parts.length <= 2) return authorPage(parts[1] || null);
    if (parts[0] === "dashboard" && parts.length === 1) return dashboardPage(params);
    if (parts[0] === "triggers" && parts.length === 1) return triggersPage();
    if (parts[0] === "lineage" && parts.length === 1) return lineagePage(params);
    show(h("h1", {}, "Not found"), h("p", {}, "There is no page here. "), h("a", { href: "#/" }, "State machines"));
  }

  function setLive(on) {
    const live = document.getElementById("live");
    live.textContent = on ? "live" : "";
    live.classList.toggle("on", on);
  }

  // A pager over the API's `next` tokens: back goes to remembered tokens.
  function pager(tokens, index, hasNext, go) {
    return h(
      "div.pager",
      {},
      h("button", { type: "button", disabled: index === 0, onclick: () => go(index - 1) }, "‹ Newer"),
      h("span.page-no", {}, `page ${index + 1}`),
      h("button", { type: "button", disabled: !hasNext, onclick: () => go(index + 1) }, "Older ›"),
    );
  }

  // The graph in its scrolling frame, with a button that fits a large one
  // to the frame instead.
  function graphFrame(content, id = "graph") {
    const frame = h("div.graph-wrap#" + id, {}, content);
    const fit = h("button.fit#" + id + "-fit", { type: "button", title: "Fit the graph to the frame, or show it at full size" }, "Fit");
    fit.addEventListener("click", () => {
      const on = frame.classList.toggle("fit");
      fit.textContent = on ? "Full size" : "Fit";
    });
    return h("div.graph-frame", {}, fit, frame);
  }

  // ---- state machines ------------------------------------------------------

  async function machinesPage() {
    document.title = "State machines · stepline";
    const body = h("tbody");
    // Filters the rows by name as the user types ("/" focuses it).
    const search = h("input.search#machine-search", { type: "search", placeholder: "Search by name (press /)", "aria-label": "Search state machines by name", autocomplete: "off", spellcheck: "false" });
    search.addEventListener("input", () => {
      const needle = search.value.trim().toLowerCase();
      for (const tr of body.querySelectorAll("tr[data-name]")) tr.hidden = needle !== "" && !tr.dataset.name.toLowerCase().includes(needle);
    });
    show(h("div.head", {}, h("h1", {}, "State machines"), h("div.filters", {}, search)), h("table.list#machines", {}, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Type"), h("th.num", {}, "Revision"), h("th", {}, "Created"), h("th", {}, "Latest execution"), h("th", {}, ""))), body));
    try {
      let next = null;
      const all = [];
      do {
        const page = await api("GET", "/v1/state-machines?limit=1000" + (next ? "&next=" + seg(next) : ""));
        all.push(...page.stateMachines);
        next = page.next;
      } while (next && all.length < 10000);
      // The latest execution of each, from the newest 200 of all (one
      // request, not one per state machine).
      const latest = new Map();
      const recent = await api("GET", "/v1/executions?limit=200").catch(() => ({ executions: [] }));
      for (const e of recent.executions) if (!latest.has(e.stateMachine)) latest.set(e.stateMachine, e);
      if (all.length === 0) {
        body.append(h("tr", {}, h("td.empty", { colspan: 6 }, "No state machines yet. Create one with `stepline` or POST /v1/state-machines.")));
      }
      all.sort((a, b) => a.name.localeCompare(b.name));
      for (const m of all) {
        body.append(
          h(
            "tr",
            { dataset: { name: m.name } },
            h("td", {}, h("a", { href: "#/machines/" + seg(m.name) }, m.name)),
            h("td", {}, m.type),
            h("td.num", {}, m.revision),
            h("td", {}, when(m.creationDate)),
            h("td", {}, latest.has(m.name) ? [badge(latest.get(m.name).status), " ", h("a", { href: execLink(latest.get(m.name)) }, latest.get(m.name).name), h("span.muted", {}, " · " + when(latest.get(m.name).startDate))] : h("span.muted", {}, "—")),
            h("td", {}, h("a.muted", { href: "#/executions?machine=" + seg(m.name) }, "executions")),
          ),
        );
      }
    } catch (err) {
      main.append(errorBox(err));
    }
  }

  // ---- one state machine ---------------------------------------------------

  // The inputs executions were last started with, per state machine, kept
  // in this browser (localStorage; never sent anywhere): newest first.
  const RECENT_INPUTS = 8;
  const RECENT_MAX_CHARS = 16384;
  function recentInputs(machine) {
    try {
      const list = JSON.parse(localStorage.getItem("stepline-inputs:" + machine) || "[]");
      return Array.isArray(list) ? list.filter((t) => typeof t === "string") : [];
    } catch (e) {
      return [];
    }
  }
  function rememberInput(machine, text) {
    if (text.length > RECENT_MAX_CHARS) return;
    const list = [text, ...recentInputs(machine).filter((t) => t !== text)].slice(0, RECENT_INPUTS);
    try {
      localStorage.setItem("stepline-inputs:" + machine, JSON.stringify(list));
    } catch (e) {
      // No storage (private mode, full): the form works without it.
    }
  }

  function startForm(machine) {
    const name = h("input#start-name", { type: "text", placeholder: "generated when empty", maxlength: 80, spellcheck: "false", autocomplete: "off" });
    const input = h("textarea#start-input", { rows: 6, spellcheck: "false" }, "{}");
    const recent = recentInputs(machine);
    const recentSel = h(
      "select#start-recent",
      { hidden: recent.length === 0, "aria-label": "Recent inputs" },
      h("option", { value: "" }, `Recent inputs (${recent.length})`),
      recent.map((t, i) => h("option", { value: i }, compact(t.replace(/\s+/g, " ")))),
    );
    recentSel.addEventListener("change", () => {
      if (recentSel.value !== "") input.value = recent[Number(recentSel.value)];
      recentSel.value = "";
      input.focus();
    });
    const message = h("div.form-error#start-error", { role: "alert" });
    const button = h("button.primary#start-button", { type: "submit" }, "Start execution");
    const form = h(
      "form.start#start-form",
      {},
      h("h3", {}, "Start an execution"),
      h("label", {}, "Name", name),
      h("label", {}, "Input (JSON)", input),
      recentSel,
      message,
      button,
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      message.textContent = "";
      const text = input.value.trim() || "{}";
      try {
        JSON.parse(text);
      } catch (e) {
        message.textContent = "The input is not valid JSON: " + e.message;
        input.focus();
        return;
      }
      const n = name.value.trim();
      if (n && !/^[^\s<>{}\[\]?*"#%\\^|~`$&,;:/\u0000-\u001f\u007f-\u009f]{1,80}$/.test(n)) {
        message.textContent = "The name must be 1 to 80 characters without spaces, brackets, wildcards or punctuation such as / : ; , & $ # % (AWS's rule).";
        name.focus();
        return;
      }
      button.disabled = true;
      try {
        const path = "/v1/state-machines/" + seg(machine) + "/executions" + (n ? "?name=" + seg(n) : "");
        const e = await api("POST", path, text);
        rememberInput(machine, text);
        location.hash = execLink(e);
      } catch (err) {
        message.textContent = (err.code ? err.code + ": " : "") + err.message;
      } finally {
        button.disabled = false;
      }
    });
    return form;
  }

  async function machinePage(name) {
    document.title = name + " · stepline";
    show(h("div.head", {}, h("h1", {}, name)), h("p.muted", {}, "Loading…"));
    let m;
    try {
      m = await api("GET", "/v1/state-machines/" + seg(name));
    } catch (err) {
      return show(h("div.head", {}, h("h1", {}, name)), errorBox(err));
    }
    let def = null;
    let parseError = null;
    try {
      def = JSON.parse(m.definition);
    } catch (e) {
      parseError = e.message;
    }
    const recent = h("tbody");
    const graph = graphFrame(def ? window.StepGraph.render(def).svg : errorBox({ message: "the definition is not JSON: " + parseError }));
    const defText = h("details.definition", {}, h("summary", {}, "Definition"), h("pre", {}, m.definition));
    show(
      h(
        "div.head",
        {},
        h("h1", {}, m.name),
        h("span.meta", {}, `${m.type} · revision ${m.revision} · created ${when(m.creationDate)}`),
        h("span.grow"),
        h("a.button#grid-link", { href: "#/machines/" + seg(m.name) + "/grid", title: "The latest executions side by side, state by state" }, "Grid"),
        h("a.button#author-link", { href: "#/author/" + seg(m.name) }, "Edit definition"),
      ),
      h(
        "div.split",
        {},
        h("div.pane.wide", {}, graph, defText),
        h(
          "div.pane.side",
          {},
          startForm(m.name),
          h("h3", {}, "Recent executions ", h("a.muted.small", { href: "#/executions?machine=" + seg(m.name) }, "all")),
          h("table.list.compact#recent", {}, recent),
        ),
      ),
    );
    try {
      const page = await api("GET", "/v1/executions?limit=15&machine=" + seg(m.name));
      if (page.executions.length === 0) recent.append(h("tr", {}, h("td.empty", {}, "None yet.")));
      for (const e of page.executions) {
        recent.append(h("tr", {}, h("td", {}, h("a", { href: execLink(e) }, e.name)), h("td", {}, badge(e.status)), h("td.muted", {}, when(e.startDate))));
      }
    } catch (err) {
      recent.append(h("tr", {}, h("td", {}, errorBox(err))));
    }
  }

  // ---- many runs at once: the grid ------------------------------------------

  // Every state of a definition, parents before what they hold, with its
  // depth: the grid's rows.
  function stateRows(def, depth = 0, out = []) {
    if (!def || typeof def !== "object" || depth > 50 || !def.States || typeof def.States !== "object") return out;
    for (const [name, s] of Object.entries(def.States)) {
      out.push({ name, depth });
      for (const b of Array.isArray(s && s.Branches) ? s.Branches : []) stateRows(b, depth + 1, out);
      if (s && (s.ItemProcessor || s.Iterator)) stateRows(s.ItemProcessor || s.Iterator, depth + 1, out);
    }
    return out;
  }

  // Reads one execution's history into a Tracker: at most GRID_EVENTS
  // events (a longer history is marked as read in part).
  const GRID_EVENTS = 10000;
  async function trackHistory(e, signal) {
    const tracker = new Tracker();
    const base = "/v1/executions/" + seg(e.stateMachine) + "/" + seg(e.id.slice(e.stateMachine.length + 1));
    let after = 0;
    let more = true;
    while (more && after < GRID_EVENTS) {
      const page = await api("GET", `${base}/history?after=${after}&limit=${HISTORY_PAGE}`, undefined, signal);
      for (const ev of page.events) tracker.add(ev);
      after = page.lastEventId;
      more = page.more && page.events.length > 0;
    }
    return { tracker, partial: more };
  }

  const GRID_SIZES = [10, 25, 50, 100];

  // Airflow's grid: the latest executions of one state machine as columns
  // (oldest on the left), its states as rows, each cell coloured by what
  // the state did in that run, and above each column a bar as tall as the
  // run was long. A cell opens that state in that execution.
  async function gridPage(name, params) {
    document.title = name + " · grid · stepline";
    const size = GRID_SIZES.includes(Number(params.get("runs"))) ? Number(params.get("runs")) : 25;
    const ctl = new AbortController();
    leave = () => ctl.abort();
    const sizeSel = h("select#grid-runs", { "aria-label": "How many executions" }, GRID_SIZES.map((n) => h("option", { value: n, selected: n === size }, `last ${n}`)));
    sizeSel.addEventListener("change", () => (location.hash = "#/machines/" + seg(name) + "/grid?runs=" + sizeSel.value));
    const status = h("p.muted#grid-status", {}, "Loading…");
    const holder = h("div.grid-wrap");
    show(
      h("div.head", {}, h("h1", {}, name), h("span.meta", {}, "grid"), h("span.grow"), sizeSel, h("button#grid-refresh", { type: "button", onclick: () => route() }, "Refresh"), h("a.button", { href: "#/machines/" + seg(name) }, "State machine")),
      status,
      holder,
      h("div.legend", {}, ["running", "succeeded", "failed", "caught", "aborted"].map((s) => h("span", { class: "key st-" + s }, s)), h("span", { class: "key st-none" }, "not entered")),
    );
    let def = null;
    let runs;
    try {
      const m = await api("GET", "/v1/state-machines/" + seg(name), undefined, ctl.signal);
      try {
        def = JSON.parse(m.definition);
      } catch (e) {
        def = null;
      }
      runs = (await api("GET", "/v1/executions?limit=" + size + "&machine=" + seg(name), undefined, ctl.signal)).executions.reverse();
      // Four histories at a time: the page's requests stay few and small.
      const results = new Array(runs.length);
      let next = 0;
      const worker = async () => {
        while (next < runs.length) {
          const i = next++;
          results[i] = await trackHistory(runs[i], ctl.signal);
          status.textContent = `Reading histories… ${results.filter(Boolean).length} of ${runs.length}`;
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      runs = runs.map((e, i) => ({ e, ...results[i], statuses: results[i].tracker.statuses(e.status) }));
    } catch (err) {
      if (ctl.signal.aborted) return;
      status.replaceChildren(errorBox(err));
      return;
    }
    if (ctl.signal.aborted) return;
    if (runs.length === 0) {
      status.textContent = "No executions yet.";
      return;
    }
    // The current definition's states, then any that only older runs had.
    const rows = stateRows(def);
    const known = new Set(rows.map((r) => r.name));
    for (const r of runs) for (const n of r.tracker.states.keys()) if (!known.has(n)) (known.add(n), rows.push({ name: n, depth: 0, gone: true }));
    const longest = Math.max(1, ...runs.map((r) => new Date(r.e.stopDate || Date.now()) - new Date(r.e.startDate)));
    const head = h(
      "tr",
      {},
      h("th.g-name", {}, ""),
      runs.map((r) => {
        const ms = new Date(r.e.stopDate || Date.now()) - new Date(r.e.startDate);
        const bar = h("span.run-bar", { class: "run-bar s-" + r.e.status.toLowerCase() });
        bar.style.height = Math.max(6, Math.round((ms / longest) * 40)) + "px";
        return h(
          "th.run",
          { dataset: { execution: r.e.name, status: r.e.status } },
          h("a", { href: execLink(r.e), title: `${r.e.name}\n${r.e.status}${r.partial ? " (history read in part)" : ""}\nstarted ${whenZoned(r.e.startDate)}\n${duration(r.e.startDate, r.e.stopDate)}` }, bar),
        );
      }),
    );
    const body = rows.map((row) =>
      h(
        "tr",
        {},
        (() => {
          const th = h("th.g-name", { title: row.gone ? "not in the current definition" : row.name }, row.name, row.gone ? h("span.muted", {}, " (removed)") : null);
          th.style.paddingLeft = 8 + row.depth * 14 + "px";
          return th;
        })(),
        runs.map((r) => {
          const st = r.statuses.get(row.name);
          const visits = (r.tracker.states.get(row.name) || []).length;
          return h(
            "td.g-cell",
            { dataset: { execution: r.e.name, state: row.name, status: st || "none" } },
            st
              ? h("a.cell", { class: "cell st-" + st, href: execLink(r.e) + "?state=" + seg(row.name), title: `${row.name} in ${r.e.name}: ${st}${visits > 1 ? `, ${visits} visits` : ""}` })
              : h("span.cell.st-none", { title: `${row.name} in ${r.e.name}: not entered` }),
          );
        }),
      ),
    );
    status.textContent = `The last ${runs.length} executions, oldest on the left; a cell opens that state in that execution.`;
    holder.replaceChildren(h("table.grid#grid", {}, h("thead", {}, head), h("tbody", {}, body)));
  }

  // ---- authoring -----------------------------------------------------------

  // The workbench's scripts (the code editor is most of the pages' weight)
  // are loaded the first time it is opened, from this origin like the rest.
  function loadScript(src) {
    loadScript.loaded = loadScript.loaded || new Map();
    if (!loadScript.loaded.has(src)) {
      loadScript.loaded.set(
        src,
        new Promise((resolve, reject) => {
          const script = h("script", { src });
          script.addEventListener("load", resolve);
          script.addEventListener("error", () => reject(new Error("could not load " + src)));
          document.head.append(script);
        }),
      );
    }
    return loadScript.loaded.get(src);
  }

  async function authorPage(name) {
    document.title = (name ? name + " · " : "") + "Author · stepline";
    const ticket = route.ticket;
    show(h("div.head", {}, h("h1", {}, "Author")), h("p.muted", {}, "Loading the editor…"));
    let machine = null;
    try {
      await loadScript("/assets/vendor/codemirror.js");
      await loadScript("/assets/author.js");
      if (name) machine = await api("GET", "/v1/state-machines/" + seg(name));
    } catch (err) {
      return show(h("div.head", {}, h("h1", {}, "Author")), errorBox(err));
    }
    if (ticket !== route.ticket) return; // left while loading
    leave = window.StepAuthor.open({ main, h, api, show, errorBox, graphFrame, seg, badge, when, pretty, startForm, setMayLeave: (f) => (mayLeave = f), setHere: (hash) => (here = hash) }, machine);
  }

  // ---- executions ----------------------------------------------------------

  const STATUSES = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"];

  // A datetime-local input's value (in the zone times are shown in) as
  // RFC 3339, and back; "" for none.
  function fromLocalInput(value) {
    if (!value) return "";
    const d = new Date(utc ? value + "Z" : value);
    return isNaN(d) ? "" : d.toISOString();
  }
  function toLocalInput(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (isNaN(d)) return "";
    const [y, mo, da, hh, mi] = fields(d);
    const pad = (n) => String(n).padStart(2, "0");
    return `${y}-${pad(mo)}-${pad(da)}T${pad(hh)}:${pad(mi)}`;
  }

  async function executionsPage(params) {
    document.title = "Executions · stepline";
    const machine = params.get("machine") || "";
    const status = params.get("status") || "";
    const from = params.get("from") || "";
    const to = params.get("to") || "";
    const name = params.get("name") || "";
    const machineSel = h("select#filter-machine", { "aria-label": "State machine" }, h("option", { value: "" }, "All state machines"));
    const statusSel = h("select#filter-status", { "aria-label": "Status" }, h("option", { value: "" }, "Any status"), STATUSES.map((s) => h("option", { value: s, selected: s === status }, s.replace("_", " "))));
    const fromInput = h("input#filter-from", { type: "datetime-local", value: toLocalInput(from), "aria-label": "Started from", title: "Started at or after" });
    const toInput = h("input#filter-to", { type: "datetime-local", value: toLocalInput(to), "aria-label": "Started before", title: "Started before" });
    const nameInput = h("input.search#filter-name", { type: "search", value: name, placeholder: "Name contains (press /)", "aria-label": "Name contains", autocomplete: "off", spellcheck: "false" });
    // The filters live in the address, so a filtered list can be shared
    // and the back button undoes a filter.
    const go = (changes) => {
      const q = new URLSearchParams();
      const want = Object.assign({ machine: machineSel.value, status: statusSel.value, from: fromLocalInput(fromInput.value), to: fromLocalInput(toInput.value), name: nameInput.value.trim() }, changes || {});
      for (const [k, v] of Object.entries(want)) if (v) q.set(k, v);
      const s = q.toString();
      location.hash = "#/executions" + (s ? "?" + s : "");
    };
    machineSel.addEventListener("change", () => go());
    statusSel.addEventListener("change", () => go());
    fromInput.addEventListener("change", () => go());
    toInput.addEventListener("change", () => go());
    nameInput.addEventListener("keydown", (e) => {
      if (e.key === "Enter") go();
    });
    nameInput.addEventListener("search", () => go());
    const clear = h("button#filter-clear", { type: "button", hidden: !(from || to || name || status || machine), onclick: () => (location.hash = "#/executions") }, "Clear filters");
    const body = h("tbody");
    const footer = h("div");
    const problems = h("div");
    const counts = h("div.counts#status-counts", { role: "status" });
    show(
      h("div.head", {}, h("h1", {}, "Executions"), h("div.filters", {}, machineSel, statusSel, h("label.inline", {}, "from ", fromInput), h("label.inline", {}, "before ", toInput), nameInput, clear)),
      counts,
      problems,
      h("table.list#executions", {}, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "State machine"), h("th", {}, "Status"), h("th", {}, "Error"), h("th", {}, "Started"), h("th.num", {}, "Duration"))), body),
      footer,
    );
    api("GET", "/v1/state-machines?limit=1000")
      .then((page) => {
        const names = page.stateMachines.map((m) => m.name).sort();
        if (machine && !names.includes(machine)) names.unshift(machine);
        for (const n of names) machineSel.append(h("option", { value: n, selected: n === machine }, n));
      })
      .catch(() => {});
    // The counts by status over the period, from the dashboard's counts
    // (kept per hour as executions start and end: never a count of rows).
    const loadCounts = async () => {
      let path = "/v1/dashboard?from=" + seg(from || new Date(Date.now() - 7 * 86400000).toISOString());
      if (to) path += "&to=" + seg(to);
      if (machine) path += "&machine=" + seg(machine);
      try {
        const d = await api("GET", path);
        const sum = { started: 0, succeeded: 0, failed: 0, timedOut: 0, aborted: 0, running: 0 };
        for (const m of d.stateMachines) {
          for (const k of ["started", "succeeded", "failed", "timedOut", "aborted"]) sum[k] += m.windows.range[k];
          sum.running += m.running;
        }
        const chip = (label, n, st) =>
          h("button.chip", { type: "button", class: "chip" + (st ? " s-" + st.toLowerCase() : "") + (st && st === status ? " on" : ""), dataset: { status: st || "", count: n }, title: st ? "Show only " + label : "", disabled: !st, onclick: () => st && go({ status: st === status ? "" : st }) }, h("b", {}, String(n)), " " + label);
        counts.replaceChildren(
          h("span.muted", {}, (from ? "" : "Last 7 days") + " (whole hours): "),
          chip("started", sum.started, ""),
          chip("succeeded", sum.succeeded, "SUCCEEDED"),
          chip("failed", sum.failed, "FAILED"),
          chip("timed out", sum.timedOut, "TIMED_OUT"),
          chip("aborted", sum.aborted, "ABORTED"),
          chip("running now", sum.running, "RUNNING"),
        );
      } catch (err) {
        counts.replaceChildren();
      }
    };
    const tokens = [null];
    let current = 0;
    // The first page refreshes itself, so new and finishing executions
    // show up without a reload; older pages stay still to be read.
    const timer = setInterval(() => {
      if (current === 0 && !document.hidden) {
        load(0);
        loadCounts();
      }
    }, 5000);
    leave = () => clearInterval(timer);
    const load = async (index) => {
      current = index;
      let path = "/v1/executions?limit=" + PAGE;
      if (machine) path += "&machine=" + seg(machine);
      if (status) path += "&status=" + seg(status);
      if (from) path += "&from=" + seg(from);
      if (to) path += "&to=" + seg(to);
      if (name) path += "&name=" + seg(name);
      if (tokens[index]) path += "&next=" + seg(tokens[index]);
      try {
        const page = await api("GET", path);
        tokens[index + 1] = page.next || null;
        body.replaceChildren();
        if (page.executions.length === 0) body.append(h("tr", {}, h("td.empty", { colspan: 6 }, page.next ? "None in the executions read so far: try older ones." : "No executions match.")));
        for (const e of page.executions) {
          body.append(
            h(
              "tr",
              { dataset: { status: e.status } },
              h("td", {}, h("a", { href: execLink(e) }, e.name)),
              h("td", {}, h("a.muted", { href: "#/machines/" + seg(e.stateMachine) }, e.stateMachine)),
              h("td", {}, badge(e.status)),
              h("td.error-cell", {}, e.error || ""),
              h("td", {}, when(e.startDate)),
              h("td.num", {}, duration(e.startDate, e.stopDate)),
            ),
          );
        }
        footer.replaceChildren(pager(tokens, index, Boolean(page.next), load));
      } catch (err) {
        problems.replaceChildren(errorBox(err));
      }
    };
    load(0);
    loadCounts();
  }

  // ---- SVG charts -----------------------------------------------------------

  const SVG_NS = "http://www.w3.org/2000/svg";
  // svg("rect.cls", {x, y}, child...): as h(), in the SVG namespace; text
  // only as text nodes.
  function svg(tag, attrs, ...children) {
    const [name, ...classes] = tag.split(".");
    const node = document.createElementNS(SVG_NS, name);
    for (const c of classes) node.classList.add(c);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) node.setAttribute(k, String(v));
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  // Bars of the executions that ended in each hour of the last `hours`
  // (up to `last`, an hour's start), succeeded below, the others above;
  // a title on each bar says its hour and counts.
  function hourChart(buckets, last, hours) {
    const W = 240;
    const H = 40;
    const byHour = new Map(buckets.map((b) => [Date.parse(b.hour), b]));
    const end = Date.parse(last);
    const cols = [];
    let max = 1;
    for (let i = hours - 1; i >= 0; i--) {
      const at = end - i * 3600000;
      const b = byHour.get(at) || { started: 0, succeeded: 0, failed: 0, timedOut: 0, aborted: 0 };
      const bad = b.failed + b.timedOut + b.aborted;
      max = Math.max(max, b.succeeded + bad);
      cols.push({ at, ok: b.succeeded, bad, started: b.started });
    }
    const w = W / hours;
    const bars = [];
    cols.forEach((c, i) => {
      const x = (i * w).toFixed(2);
      const okH = (c.ok / max) * (H - 2);
      const badH = (c.bad / max) * (H - 2);
      const title = svg("title", {}, `${when(new Date(c.at).toISOString()).slice(0, 16)}: ${c.started} started, ${c.ok} succeeded, ${c.bad} failed, timed out or aborted`);
      const g = svg("g.bar", {}, title);
      if (c.ok) g.append(svg("rect.ok", { x, y: (H - okH).toFixed(2), width: Math.max(w - 0.5, 0.5).toFixed(2), height: okH.toFixed(2) }));
      if (c.bad) g.append(svg("rect.bad", { x, y: (H - okH - badH).toFixed(2), width: Math.max(w - 0.5, 0.5).toFixed(2), height: badH.toFixed(2) }));
      g.append(svg("rect.hit", { x, y: 0, width: w.toFixed(2), height: H }));
      bars.push(g);
    });
    return svg("svg.chart", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": `executions ended per hour, last ${hours} hours` }, svg("line.base", { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5 }), bars);
  }

  function msText(ms) {
    if (ms === null || ms === undefined) return "—";
    return durationMs(ms);
  }

  // ---- dashboard -----------------------------------------------------------

  const WINDOWS = { hour: ["This hour", 24], day: ["Last 24 hours", 24], week: ["Last 7 days", 168] };

  async function dashboardPage(params) {
    document.title = "Dashboard · stepline";
    const chosen = WINDOWS[params.get("window")] ? params.get("window") : "day";
    const tabs = h(
      "div.tabs#dashboard-window",
      { role: "tablist" },
      Object.entries(WINDOWS).map(([key, [label]]) => h("a.tab", { href: "#/dashboard?window=" + key, class: "tab" + (key === chosen ? " on" : ""), role: "tab", "aria-selected": key === chosen ? "true" : "false", dataset: { window: key } }, label)),
    );
    const body = h("tbody");
    const problems = h("div");
    const note = h("p.muted.small#dashboard-note");
    show(
      h("div.head", {}, h("h1", {}, "Dashboard"), tabs, h("span.grow"), h("button#dashboard-refresh", { type: "button", onclick: () => load() }, "Refresh")),
      problems,
      h(
        "table.list#dashboard",
        {},
        h("thead", {}, h("tr", {}, h("th", {}, "State machine"), h("th.num", {}, "Started"), h("th.num", {}, "Running now"), h("th.num", {}, "Finished"), h("th.num", {}, "Success rate"), h("th.num", {}, "p50"), h("th.num", {}, "p95"), h("th", {}, "Ended per hour (" + (chosen === "week" ? "7 days" : "24 hours") + ")"))),
        body,
      ),
      note,
    );
    const load = async () => {
      try {
        const d = await api("GET", "/v1/dashboard");
        body.replaceChildren();
        if (d.stateMachines.length === 0) body.append(h("tr", {}, h("td.empty", { colspan: 8 }, "No state machines yet.")));
        for (const m of d.stateMachines) {
          const w = m.windows[chosen];
          const rate = w.successRate === null ? "—" : (w.successRate * 100).toFixed(w.successRate === 1 ? 0 : 1) + " %";
          body.append(
            h(
              "tr",
              { dataset: { machine: m.name } },
              h("td", {}, h("a", { href: "#/machines/" + seg(m.name) }, m.name)),
              h("td.num.d-started", {}, h("a", { href: "#/executions?machine=" + seg(m.name) }, String(w.started))),
              h("td.num.d-running", {}, String(m.running)),
              h("td.num.d-finished", { title: `${w.succeeded} succeeded, ${w.failed} failed, ${w.timedOut} timed out, ${w.aborted} aborted` }, String(w.finished)),
              h("td.num.d-rate", { class: "num d-rate" + (w.successRate !== null && w.successRate < 1 ? " warn" : "") }, rate),
              h("td.num.d-p50", {}, msText(w.durationP50Ms)),
              h("td.num.d-p95", {}, msText(w.durationP95Ms)),
              h("td.d-chart", {}, hourChart(m.hours, d.hour, WINDOWS[chosen][1])),
            ),
          );
        }
        note.textContent = `Counted by clock hour as executions start and end (${WINDOWS[chosen][0].toLowerCase()}: ${chosen === "hour" ? "the hour so far" : "whole hours, this one so far"}); durations are read from a histogram, within about 20 %. Updated ${when(d.now)}.`;
        problems.replaceChildren();
      } catch (err) {
        problems.replaceChildren(errorBox(err));
      }
    };
    const timer = setInterval(() => !document.hidden && load(), 10000);
    leave = () => clearInterval(timer);
    await load();
  }

  // ---- triggers ------------------------------------------------------------

  function triggerWhat(t) {
    if (t.kind === "schedule") return [t.schedule, t.timezone ? " " + t.timezone : ""].join("");
    if (t.kind === "file") return (t.directory || "") + (t.glob ? "/" + t.glob : "");
    if (t.kind === "webhook") return "POST /v1/hooks/" + t.name + (t.hasSecret ? " (signed)" : "");
    if (t.kind === "execution") return "after " + machineName(t.source || "") + " " + (t.statuses || ["SUCCEEDED"]).join(", ");
    if (t.kind === "dataset") return (t.inputs || []).join(", ") + " " + (t.period || "daily");
    return "";
  }

  // A state machine's name from its name or its ARN.
  function machineName(nameOrArn) {
    const i = nameOrArn.indexOf(":stateMachine:");
    return i < 0 ? nameOrArn : nameOrArn.slice(i + ":stateMachine:".length).split(":")[0];
  }

  // The triggers as a graph of state machines: an execution trigger is an
  // edge from the state machine whose runs start it; any other trigger is
  // a node of its own (a schedule, a directory, a webhook, a set of files)
  // with an edge to the state machine it starts.
  function triggerGraph(list) {
    const nodes = new Map();
    const edges = [];
    const machine = (name) => {
      const id = "m:" + name;
      if (!nodes.has(id)) nodes.set(id, { id, label: name, sub: "state machine", cls: "flow machine" });
      return id;
    };
    for (const t of list) {
      const to = machine(machineName(t.stateMachine));
      const off = t.enabled ? "" : " (disabled)";
      if (t.kind === "execution") {
        edges.push({ from: machine(machineName(t.source || "?")), to, label: t.name + off });
      } else {
        const id = "t:" + t.name;
        nodes.set(id, { id, label: t.name + off, sub: t.kind, cls: "flow trigger" + (t.enabled ? "" : " disabled"), title: t.name + ": " + triggerWhat(t) });
        edges.push({ from: id, to });
      }
    }
    return { nodes: [...nodes.values()], edges };
  }

  async function triggersPage() {
    document.title = "Triggers · stepline";
    const body = h("tbody");
    const problems = h("div");
    const dependencies = h("div#trigger-graph");
    const dialog = backfillDialog(() => load());
    show(
      h("div.head", {}, h("h1", {}, "Triggers")),
      problems,
      h(
        "table.list#triggers",
        {},
        h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Kind"), h("th", {}, "State machine"), h("th", {}, "Last fire"), h("th", {}, "Next fire"), h("th", {}, "Recent executions"), h("th", {}, ""))),
        body,
      ),
      dependencies,
      dialog.node,
    );
    const showDependencies = (list) => {
      if (list.length === 0) return dependencies.replaceChildren();
      const { nodes, edges } = triggerGraph(list);
      const graph = window.StepGraph.renderFlow(nodes, edges, (id) => {
        if (id.startsWith("m:")) location.hash = "#/machines/" + seg(id.slice(2));
        const row = document.querySelector(`#triggers tr[data-trigger="${CSS.escape(id.slice(2))}"]`);
        if (id.startsWith("t:") && row) row.scrollIntoView({ block: "center" });
      }, "What starts what");
      dependencies.replaceChildren(h("h2", {}, "What starts what"), h("p.muted.small", {}, "State machines and the triggers that start them; an arrow from a state machine is an execution trigger, named on the arrow."), graphFrame(graph.svg, "dependency-graph"));
    };
    const setEnabled = async (t, on, button) => {
      button.disabled = true;
      try {
        // A JSON body, however empty: the server takes no write without one.
        await api("POST", "/v1/triggers/" + seg(t.name) + (on ? "/enable" : "/disable"), "{}");
        toast(`${t.name} ${on ? "enabled" : "disabled"}`);
      } catch (err) {
        toast((err.code ? err.code + ": " : "") + err.message);
      }
      load();
    };
    const load = async () => {
      let list;
      try {
        list = (await api("GET", "/v1/triggers")).triggers;
      } catch (err) {
        return problems.replaceChildren(errorBox(err));
      }
      body.replaceChildren();
      showDependencies(list);
      if (list.length === 0) body.append(h("tr", {}, h("td.empty", { colspan: 7 }, "No triggers. Define them in stepline.toml ([[triggers]]) or POST /v1/triggers.")));
      for (const t of list) {
        const recent = h("td.t-recent", {}, h("span.muted", {}, "…"));
        const toggle = h("button.t-toggle", { type: "button", dataset: { enabled: t.enabled } }, t.enabled ? "Disable" : "Enable");
        toggle.addEventListener("click", () => setEnabled(t, !t.enabled, toggle));
        const backfill = t.kind === "schedule" ? h("button.t-backfill", { type: "button", onclick: () => dialog.open(t) }, "Backfill…") : null;
        body.append(
          h(
            "tr",
            { dataset: { trigger: t.name, enabled: t.enabled } },
            h("td", {}, h("b", {}, t.name), " ", t.enabled ? null : h("span.badge.s-aborted.t-disabled", {}, "disabled"), h("div.muted.small", {}, triggerWhat(t)), t.lastError ? h("div.form-error.small", {}, t.lastError) : null),
            h("td", {}, t.kind),
            h("td", {}, h("a", { href: "#/machines/" + seg(t.stateMachine) }, t.stateMachine)),
            h("td.t-last", {}, t.lastFired ? timeBoth(t.lastFired) : h("span.muted", {}, "never"), h("div.muted.small", {}, `${t.fired} started`)),
            h("td.t-next", {}, t.nextFire ? timeBoth(t.nextFire) : h("span.muted", {}, t.enabled ? "—" : "disabled")),
            recent,
            h("td.actions", {}, toggle, " ", backfill),
          ),
        );
        // Its executions are named TRIGGER-EVENT: the newest few, by name.
        api("GET", "/v1/executions?limit=5&machine=" + seg(t.stateMachine) + "&name=" + seg(t.name + "-"))
          .then((page) => {
            recent.replaceChildren(...(page.executions.length ? page.executions.map((e) => h("div", {}, badge(e.status), " ", h("a", { href: execLink(e) }, e.name))) : [h("span.muted", {}, "none")]));
          })
          .catch(() => recent.replaceChildren(h("span.muted", {}, "—")));
      }
      problems.replaceChildren();
    };
    const timer = setInterval(() => !document.hidden && refreshRelative(main), 1000);
    leave = () => clearInterval(timer);
    await load();
  }

  // A schedule's backfill: a range, a preview of the slots it would start
  // (the API's dry run), then the backfill itself.
  function backfillDialog(done) {
    const fromInput = h("input#backfill-from", { type: "datetime-local", required: true });
    const toInput = h("input#backfill-to", { type: "datetime-local", required: true });
    const preview = h("div.backfill-preview#backfill-preview", { role: "status" });
    const message = h("div.form-error#backfill-error", { role: "alert" });
    const previewButton = h("button#backfill-preview-button", { type: "button" }, "Preview");
    const runButton = h("button.primary#backfill-run", { type: "button", disabled: true }, "Run backfill");
    const cancel = h("button#backfill-cancel", { type: "button" }, "Cancel");
    const title = h("h3", {}, "Backfill");
    const node = h("dialog.backfill-dialog#backfill-dialog", {}, title, h("p.muted.small", {}, "Starts one execution per slot of the schedule in the range (both ends included); a slot that already ran is not started again."), h("label", {}, "From", fromInput), h("label", {}, "To", toInput), message, preview, h("div.actions", {}, previewButton, runButton, cancel));
    let trigger = null;
    const body = () => JSON.stringify({ from: fromLocalInput(fromInput.value), to: fromLocalInput(toInput.value) });
    const invalidate = () => {
      runButton.disabled = true;
      preview.replaceChildren();
    };
    fromInput.addEventListener("input", invalidate);
    toInput.addEventListener("input", invalidate);
    previewButton.addEventListener("click", async () => {
      message.textContent = "";
      invalidate();
      if (!fromInput.value || !toInput.value) return (message.textContent = "Choose both ends of the range.");
      try {
        const plan = await api("POST", "/v1/triggers/" + seg(trigger.name) + "/backfill", JSON.stringify(Object.assign(JSON.parse(body()), { dryRun: true })));
        const fresh = plan.slots - plan.existing;
        const more = plan.executions.length > 50 ? [h("p.muted.small", {}, `and ${plan.executions.length - 50} more`)] : [];
        preview.replaceChildren(
          h("p#backfill-summary", { dataset: { slots: plan.slots, existing: plan.existing } }, `${plan.slots} slot${plan.slots === 1 ? "" : "s"}: ${fresh} to start, ${plan.existing} already started.`),
          h("ol.slots", {}, plan.executions.slice(0, 50).map((e) => h("li", { class: e.exists ? "muted" : "" }, whenZoned(e.scheduledTime), " · ", e.name, e.exists ? " (exists)" : ""))),
          ...more,
        );
        runButton.disabled = fresh === 0;
      } catch (err) {
        message.textContent = (err.code ? err.code + ": " : "") + err.message;
      }
    });
    runButton.addEventListener("click", async () => {
      runButton.disabled = true;
      try {
        const report = await api("POST", "/v1/triggers/" + seg(trigger.name) + "/backfill", body());
        toast(`${trigger.name}: ${report.started} started, ${report.existing} already there` + (report.errors.length ? `, ${report.errors.length} errors` : ""));
        node.close();
        done();
      } catch (err) {
        message.textContent = (err.code ? err.code + ": " : "") + err.message;
      }
    });
    cancel.addEventListener("click", () => node.close());
    return {
      node,
      open(t) {
        trigger = t;
        title.textContent = "Backfill " + t.name;
        message.textContent = "";
        invalidate();
        const now = new Date();
        if (!toInput.value) toInput.value = toLocalInput(now.toISOString());
        if (!fromInput.value) fromInput.value = toLocalInput(new Date(now - 86400000).toISOString());
        node.showModal();
      },
    };
  }

  // ---- one execution -------------------------------------------------------

  const FAILURE = /(Failed|TimedOut|Aborted)$/;

  // What the history says about each state: its visits, each with the
  // events that entered and left it and the failure that ended it, and from
  // them a status for the graph. Built incrementally as events arrive.
  //
  // Events are tied to visits along previousEventId (each event follows the
  // last one of its branch or iteration, so concurrent Map iterations do
  // not mix); Parallel and Map events to the innermost such state still
  // open. A visit is the child of the Parallel or Map visit whose branch
  // or iteration it runs in, so that closing that visit (its end, its
  // failure, the execution's end) cancels what was still running inside.
  const ABORT = /Aborted$/;
  const ATTEMPT_START = /^(TaskScheduled|ActivityScheduled|ParallelStateStarted|MapStateStarted)$/;
  const ATTEMPT_END = /^(Task|Activity)(Succeeded|Failed|TimedOut)$|^(Parallel|Map)State(Succeeded|Failed|Aborted)$/;
  const RANK = ["running", "failed", "caught", "aborted", "succeeded"];

  class Tracker {
    constructor() {
      this.byId = new Map(); // event id -> event
      this.owner = new Map(); // event id -> state name
      this.visitOf = new Map(); // event id -> visit
      this.states = new Map(); // name -> visits
      this.live = new Set(); // visits neither left, failed nor cancelled
      this.compound = []; // Parallel and Map visits still open, innermost last
      this.order = []; // every visit, in the order it was entered
    }
    visits(name) {
      if (!this.states.has(name)) this.states.set(name, []);
      return this.states.get(name);
    }
    // Cancels what still runs inside `parent` (or everything, for null),
    // at event `ev`.
    cancelInside(parent, ev) {
      for (const v of this.live) {
        let p = v.parent;
        while (p && p !== parent) p = p.parent;
        if (parent === null || p === parent) {
          v.cancelled = ev || true;
          this.live.delete(v);
        }
      }
    }
    // A task (or activity, Parallel, Map) run is an attempt: scheduled or
    // started, then succeeded, failed or timed out. A Retry makes another.
    attempt(visit, ev) {
      const t = ev.type;
      if (ATTEMPT_START.test(t)) {
        visit.attempts.push({ start: ev, end: null, failure: null });
      } else if (ATTEMPT_END.test(t) && visit.attempts.length) {
        const a = visit.attempts[visit.attempts.length - 1];
        if (a.end) return;
        a.end = ev;
        if (!/Succeeded$/.test(t)) a.failure = ev.details || {};
      }
    }
    // name -> "N attempts" for the states that were retried (the most
    // attempts of any one visit).
    attemptCounts() {
      const out = new Map();
      for (const [name, visits] of this.states) {
        const most = Math.max(0, ...visits.map((v) => v.attempts.length));
        if (most > 1) out.set(name, `${most} attempts`);
      }
      return out;
    }
    fail(visit, ev) {
      if (!visit || visit.exited) return;
      // A Fail state's own event has no error; the failure that follows
      // it (the execution's or the branch's) says which.
      const said = (e) => e && e.details && e.details.error !== undefined;
      if (!visit.failure || (!said(visit.failure) && said(ev))) visit.failure = ev;
      this.live.delete(visit);
    }
    add(ev) {
      this.byId.set(ev.id, ev);
      const d = ev.details || {};
      const t = ev.type;
      const prev = this.byId.get(ev.previousEventId);
      const prevVisit = this.visitOf.get(ev.previousEventId);
      let visit = null;
      if (t.endsWith("StateEntered")) {
        const startsInside = prev && (prev.type === "ParallelStateStarted" || prev.type === "MapIterationStarted");
        visit = { name: d.name, entered: ev, exited: null, failure: null, caught: false, cancelled: false, attempts: [] };
        visit.parent = startsInside ? prevVisit || null : prevVisit ? prevVisit.parent : null;
        // Which Map iteration it runs in (for the Gantt's labels).
        if (prev && prev.type === "MapIterationStarted") visit.iteration = prev.details && prev.details.index;
        else if (!startsInside && prevVisit && prevVisit.parent === visit.parent) visit.iteration = prevVisit.iteration;
        this.order.push(visit);
        this.visits(d.name).push(visit);
        this.live.add(visit);
        if (t === "ParallelStateEntered" || t === "MapStateEntered") this.compound.push(visit);
        if (t === "FailStateEntered") this.fail(visit, ev);
        // Entered right after another state's failure: a Catch took it.
        if (prev && prevVisit && FAILURE.test(prev.type) && prevVisit.failure) prevVisit.caught = true;
      } else if (t.endsWith("StateExited")) {
        visit = prevVisit && prevVisit.name === d.name && !prevVisit.exited ? prevVisit : this.visits(d.name).find((v) => !v.exited && !v.failure) || null;
        if (visit) {
          visit.exited = ev;
          // Left after a failure: a Catch took it (stepline records the
          // exit of a caught state).
          if (visit.failure) visit.caught = true;
          this.live.delete(visit);
        }
      } else if (/^(Parallel|Map)State/.test(t)) {
        const kind = t.startsWith("Parallel") ? "ParallelStateEntered" : "MapStateEntered";
        visit = [...this.compound].reverse().find((v) => v.entered.type === kind) || null;
      } else if (t.startsWith("MapIteration")) {
        visit = [...this.compound].reverse().find((v) => v.name === d.name) || null;
      } else if (!t.startsWith("Execution") && prev && !prev.type.endsWith("StateExited")) {
        visit = prevVisit || null;
      }
      if (visit) {
        this.visitOf.set(ev.id, visit);
        this.owner.set(ev.id, visit.name);
        this.attempt(visit, ev);
      }
      // A failure belongs to its own state's visit and, when it ends a
      // branch or the execution, to the visit it follows (a state whose
      // error had no event of its own, such as a path that matched
      // nothing).
      if (FAILURE.test(t) && !ABORT.test(t) && !t.startsWith("MapIteration")) {
        if (visit) this.fail(visit, ev);
        if (prevVisit && prevVisit !== visit) this.fail(prevVisit, ev);
      } else if (visit && visit.failure && visit.entered !== ev && !visit.exited && !t.endsWith("StateExited") && !FAILURE.test(t)) {
        // The state went on after its failure: a Retry.
        visit.failure = null;
        visit.caught = false;
        this.live.add(visit);
      }
      // A Parallel or Map that ends, fails or aborts cancels its inside.
      if (visit && /^(Parallel|Map)State(Exited|Failed|Aborted)$/.test(t)) {
        this.cancelInside(visit, ev);
        const i = this.compound.indexOf(visit);
        if (i >= 0) this.compound.splice(i, 1);
      }
      if (/^Execution(Failed|TimedOut|Aborted|Succeeded)$/.test(t)) this.cancelInside(null, ev);
    }
    // running | failed | caught | aborted | succeeded: what one visit did.
    visitStatus(v, executionStatus) {
      if (v.caught) return "caught";
      if (v.failure) return "failed";
      if (v.exited) return "succeeded";
      if (v.cancelled || executionStatus !== "RUNNING") return "aborted";
      return "running";
    }
    // When a visit ended: left, failed, or cancelled (null while it runs).
    visitEnd(v) {
      const ev = v.exited || v.failure || (v.cancelled && v.cancelled !== true ? v.cancelled : null);
      return ev ? ev.timestamp : null;
    }
    // name -> running | failed | caught | aborted | succeeded: the most
    // telling of its visits (a Map's inner states have one per item).
    statuses(executionStatus) {
      const out = new Map();
      for (const [name, visits] of this.states) {
        let best = RANK.length;
        for (const v of visits) best = Math.min(best, RANK.indexOf(this.visitStatus(v, executionStatus)));
        if (best < RANK.length) out.set(name, RANK[best]);
      }
      return out;
    }
  }

  // The definition of state `name`, wherever it is nested.
  function findState(def, name, depth = 0) {
    if (!def || typeof def !== "object" || depth > 50) return null;
    const states = def.States && typeof def.States === "object" ? def.States : {};
    if (Object.prototype.hasOwnProperty.call(states, name)) return states[name];
    for (const s of Object.values(states)) {
      const inner = [...(Array.isArray(s && s.Branches) ? s.Branches : []), s && (s.ItemProcessor || s.Iterator)];
      for (const scope of inner) {
        const found = findState(scope, name, depth + 1);
        if (found) return found;
      }
    }
    return null;
  }

  function compact(value) {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    return text.length > 200 ? text.slice(0, 199) + "…" : text;
  }

  function eventSummary(ev) {
    const d = ev.details || {};
    if (d.pool) return `pool ${d.pool.name}, waited ${durationMs(d.pool.waitedMs)}`;
    if (d.error !== undefined || d.cause !== undefined) return [d.error || "", d.cause ? " — " + d.cause : ""].join("");
    if (d.output !== undefined) return "output " + compact(d.output);
    if (d.input !== undefined && !d.resource) return "input " + compact(d.input);
    if (d.resource) return d.resource;
    if (d.index !== undefined) return "item " + d.index;
    if (d.length !== undefined) return d.length + " items";
    return "";
  }

  // What a state changed: the paths its output added (+), removed (-) or
  // changed (~) from its input, at most DIFF_LINES of them.
  const DIFF_LINES = 200;
  function jsonDiff(a, b, path = "$", out = []) {
    if (out.length >= DIFF_LINES) return out;
    const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
    const key = (k) => (/^[A-Za-z_$][\w$]*$/.test(k) ? "." + k : "['" + k + "']");
    if (isObject(a) && isObject(b)) {
      for (const k of Object.keys(a)) {
        if (!Object.prototype.hasOwnProperty.call(b, k)) out.push({ op: "-", path: path + key(k), value: a[k] });
        else jsonDiff(a[k], b[k], path + key(k), out);
      }
      for (const k of Object.keys(b)) if (!Object.prototype.hasOwnProperty.call(a, k)) out.push({ op: "+", path: path + key(k), value: b[k] });
    } else if (Array.isArray(a) && Array.isArray(b)) {
      for (let i = 0; i < Math.max(a.length, b.length); i++) {
        if (i >= a.length) out.push({ op: "+", path: `${path}[${i}]`, value: b[i] });
        else if (i >= b.length) out.push({ op: "-", path: `${path}[${i}]`, value: a[i] });
        else jsonDiff(a[i], b[i], `${path}[${i}]`, out);
      }
    } else if (JSON.stringify(a) !== JSON.stringify(b)) {
      out.push({ op: "~", path, from: a, value: b });
    }
    return out.slice(0, DIFF_LINES);
  }

  function diffBlock(input, output) {
    const changes = jsonDiff(input, output);
    const cls = { "+": "add", "-": "del", "~": "chg" };
    return h(
      "section.diff",
      {},
      h("h4", {}, "Changes from input to output"),
      changes.length === 0
        ? h("p.muted.small", {}, "none: the output is the input")
        : h(
            "ul",
            {},
            changes.map((c) => h("li", { class: cls[c.op] }, h("span.op", {}, c.op), " ", h("span.path", {}, c.path), " ", h("span.val", {}, c.op === "~" ? `${compact(c.from)} → ${compact(c.value)}` : compact(c.value)))),
          ),
      changes.length >= DIFF_LINES ? h("p.muted.small", {}, `the first ${DIFF_LINES} changes`) : null,
    );
  }

  // A cause that is JSON (a task's error object, say) is shown parsed.
  function causeBlock(cause) {
    if (cause === undefined || cause === null || cause === "") return null;
    let parsed = null;
    try {
      const value = JSON.parse(cause);
      if (value && typeof value === "object") parsed = value;
    } catch (e) {
      parsed = null;
    }
    return parsed ? h("pre.cause.parsed", {}, JSON.stringify(parsed, null, 2)) : h("div.cause", {}, String(cause));
  }

  // What a process task's attempt wrote (GET .../logs), as text.
  function logLines(a) {
    return [
      a.stderr ? h("div.small", {}, "stderr") : null,
      a.stderr ? h("pre.log", {}, a.stderr) : null,
      a.stdout ? h("div.small", {}, "stdout") : null,
      a.stdout ? h("pre.log", {}, a.stdout) : null,
    ];
  }

  // Each attempt of a retried state: when it started and ended, how it
  // failed, and what it wrote (`logOf(number, attempt)`, when it has a
  // task log).
  function attemptList(attempts, logOf) {
    return h(
      "div.attempts",
      {},
      h("h4", {}, `Attempts (${attempts.length})`),
      attempts.map((a, i) => {
        const outcome = !a.end ? "running" : a.failure ? "failed" : "succeeded";
        const f = a.failure || {};
        return h(
          "div.attempt",
          { class: "attempt " + outcome, dataset: { attempt: i + 1 } },
          h("div", {}, h("strong", {}, `attempt ${i + 1}`), ` · ${outcome}`, f.error ? h("span.attempt-error", {}, " · " + f.error) : null),
          h("div.muted.small", {}, `start ${when(a.start.timestamp)}`, a.end ? ` · end ${when(a.end.timestamp)} · ${duration(a.start.timestamp, a.end.timestamp)}` : ""),
          a.failure ? causeBlock(f.cause) : null,
          ...(() => {
            const log = logOf(i + 1, a);
            return log ? [h("div.task-log", {}, ...logLines(log))] : [];
          })(),
        );
      }),
    );
  }

  // A definite JSONPath ($, $.a.b, $.a[0], $['a b']) looked up in `value`;
  // undefined for anything else (the page shows no time rather than guess).
  function simplePath(path, value) {
    if (typeof path !== "string" || !path.startsWith("$")) return undefined;
    const steps = [];
    const re = /\.([A-Za-z_$][\w$-]*)|\[(\d+)\]|\['([^']*)'\]/y;
    re.lastIndex = 1;
    while (re.lastIndex < path.length) {
      const m = re.exec(path);
      if (!m) return undefined;
      steps.push(m[1] !== undefined ? m[1] : m[2] !== undefined ? Number(m[2]) : m[3]);
    }
    let v = value;
    for (const k of steps) {
      if (v === null || typeof v !== "object" || !Object.prototype.hasOwnProperty.call(v, k)) return undefined;
      v = v[k];
    }
    return v;
  }

  // When a visit of a Wait state is due to end, from its definition and
  // the input it entered with (Seconds, Timestamp, SecondsPath,
  // TimestampPath); null when the page cannot tell (a JSONata
  // expression), or for another state type.
  function waitEnds(visit, def) {
    const spec = findState(def, visit.name);
    if (!spec || spec.Type !== "Wait") return null;
    const entered = new Date(visit.entered.timestamp).getTime();
    let input = visit.entered.details && visit.entered.details.input;
    if (typeof input === "string") {
      try {
        input = JSON.parse(input);
      } catch (e) {
        input = undefined;
      }
    }
    const isTime = (t) => typeof t === "string" && !t.startsWith("{%") && !Number.isNaN(Date.parse(t));
    let at = null;
    if (typeof spec.Seconds === "number") at = entered + spec.Seconds * 1000;
    else if (isTime(spec.Timestamp)) at = Date.parse(spec.Timestamp);
    else if (spec.SecondsPath) {
      const n = simplePath(spec.SecondsPath, input);
      if (typeof n === "number") at = entered + n * 1000;
    } else if (spec.TimestampPath) {
      const t = simplePath(spec.TimestampPath, input);
      if (isTime(t)) at = Date.parse(t);
    }
    return at === null ? null : new Date(at).toISOString();
  }

  // The Gantt of an execution: one row per visit, in the order states
  // were entered, a bar from entering to leaving on a scale from the
  // execution's start to its end (or now), nested visits indented under
  // their Parallel or Map and labelled with their branch or item. A
  // running Wait shows, hatched, the time still to wait. Rows past
  // GANTT_ROWS are counted, not drawn.
  const GANTT_ROWS = 300;
  function ganttView(tracker, exec, def, onSelect) {
    const t0 = new Date(exec.startDate).getTime();
    const now = Date.now();
    let t1 = exec.stopDate ? new Date(exec.stopDate).getTime() : now;
    const visits = tracker.order.slice(0, GANTT_ROWS);
    const plans = new Map();
    for (const v of visits) {
      if (tracker.visitStatus(v, exec.status) !== "running") continue;
      const due = waitEnds(v, def);
      if (due) {
        plans.set(v, due);
        t1 = Math.max(t1, new Date(due).getTime());
      }
    }
    const span = Math.max(1, t1 - t0);
    const pct = (t) => (Math.min(Math.max(t - t0, 0), span) / span) * 100 + "%";
    const rows = visits.map((v) => {
      const st = tracker.visitStatus(v, exec.status);
      const from = new Date(v.entered.timestamp).getTime();
      const endIso = tracker.visitEnd(v);
      const to = endIso ? new Date(endIso).getTime() : st === "running" ? now : t1;
      let depth = 0;
      for (let p = v.parent; p; p = p.parent) depth++;
      let where = "";
      if (v.iteration !== undefined && v.iteration !== null) where = ` · item ${v.iteration}`;
      else if (v.parent) {
        const spec = findState(def, v.parent.name);
        const i = spec && Array.isArray(spec.Branches) ? spec.Branches.findIndex((b) => b && b.States && Object.prototype.hasOwnProperty.call(b.States, v.name)) : -1;
        if (i >= 0) where = ` · branch ${i + 1}`;
      }
      const label = h("span.g-label", { title: v.name + where }, v.name, h("span.muted", {}, where));
      label.style.paddingLeft = 6 + depth * 14 + "px";
      const bar = h("div.g-bar", { class: "g-bar st-" + st, title: `${v.name}${where}: ${st}, ${whenZoned(v.entered.timestamp)}, ${duration(v.entered.timestamp, endIso || undefined)}` });
      bar.style.left = pct(from);
      bar.style.width = `calc(${pct(to)} - ${pct(from)})`;
      const track = h("div.g-track", {}, bar);
      const due = plans.get(v);
      if (due) {
        const plan = h("div.g-plan", { title: `waits until ${whenZoned(due)}` });
        plan.style.left = pct(now);
        plan.style.width = `calc(${pct(new Date(due).getTime())} - ${pct(now)})`;
        track.append(plan);
      }
      return h(
        "div.g-row",
        { class: "g-row st-" + st, dataset: { state: v.name, status: st }, tabindex: 0, onclick: () => onSelect(v.name), onkeydown: (k) => k.key === "Enter" && onSelect(v.name) },
        label,
        track,
        h("span.g-dur", {}, st === "running" ? duration(v.entered.timestamp) + "…" : duration(v.entered.timestamp, endIso || exec.stopDate)),
      );
    });
    const more = tracker.order.length - visits.length;
    return h(
      "div.gantt#gantt",
      {},
      h("div.g-row.g-axis", {}, h("span.g-label.muted", {}, "State"), h("div.g-track", {}, h("span.g-start.muted", {}, "0"), h("span.g-end.muted", {}, duration(new Date(t0).toISOString(), new Date(t1).toISOString()))), h("span.g-dur.muted", {}, "Duration")),
      rows.length ? rows : h("p.muted", {}, "No state entered yet."),
      more > 0 ? h("p.muted.small", {}, `and ${more} more visits, not drawn`) : null,
    );
  }

  // StopExecution as a dialog: an error and a cause (both optional, at
  // most 256 and 32768 bytes as the API says), then POST .../stop.
  // `done` gets the execution as the server answers it.
  function stopDialogFor(base, done) {
    const error = h("input#stop-error", { type: "text", maxlength: 256, spellcheck: "false", autocomplete: "off", placeholder: "none" });
    const cause = h("textarea#stop-cause", { rows: 4, maxlength: 32768, placeholder: "none" });
    const message = h("div.form-error#stop-message", { role: "alert" });
    const confirm = h("button.danger.confirm#stop-confirm", { type: "submit" }, "Stop execution");
    const cancel = h("button#stop-cancel", { type: "button" }, "Cancel");
    const node = h(
      "dialog.stop-dialog#stop-dialog",
      {},
      h(
        "form",
        {
          onsubmit: async (e) => {
            e.preventDefault();
            message.textContent = "";
            const body = {};
            if (error.value.trim()) body.error = error.value.trim();
            if (cause.value) body.cause = cause.value;
            confirm.disabled = true;
            try {
              const answer = await api("POST", base + "/stop", JSON.stringify(body));
              node.close();
              done(answer);
            } catch (err) {
              message.textContent = (err.code ? err.code + ": " : "") + err.message;
            } finally {
              confirm.disabled = false;
            }
          },
        },
        h("h3", {}, "Stop this execution?"),
        h("p.muted.small", {}, "It ends ABORTED; what runs inside it is cancelled. The error and cause are recorded in its history."),
        h("label", {}, "Error", error),
        h("label", {}, "Cause", cause),
        message,
        h("div.buttons", {}, confirm, cancel),
      ),
    );
    cancel.addEventListener("click", () => node.close());
    return {
      node,
      open() {
        message.textContent = "";
        node.showModal();
        error.focus();
      },
    };
  }

  async function executionPage(machine, name, wantState) {
    document.title = name + " · stepline";
    const base = "/v1/executions/" + seg(machine) + "/" + seg(name);
    const ctl = new AbortController();
    leave = () => ctl.abort();
    show(h("div.head", {}, h("h1", {}, name)), h("p.muted", {}, "Loading…"));
    let exec;
    let def = null;
    try {
      exec = await api("GET", base, undefined, ctl.signal);
      // The definition as the execution started it, not as it is now.
      const m = await api("GET", base + "/state-machine", undefined, ctl.signal).catch(() => null);
      if (m) def = JSON.parse(m.definition);
    } catch (err) {
      if (ctl.signal.aborted) return;
      return show(h("div.head", {}, h("h1", {}, name)), errorBox(err));
    }

    if (ctl.signal.aborted) return; // left while loading
    const tracker = new Tracker();
    let selected = null;
    const statusSlot = h("span#exec-status");
    const metaSlot = h("span.meta");
    const stopButton = h("button.danger#stop-button", { type: "button" }, "Stop");
    const summary = h("div.summary#exec-summary");
    const statePanel = h("div.state-panel#state-panel");
    const timeline = h("tbody");
    const graph = def ? window.StepGraph.render(def, (n) => selectState(n)) : null;
    const graphWrap = graphFrame(graph ? graph.svg : h("p.muted", {}, "The state machine's definition is not available."));

    const redriveButton = h("button#redrive-button", { type: "button", title: "Run it again from where it failed (RedriveExecution)" }, "Redrive");
    const rerunButton = h("button#rerun-button", { type: "button", title: "Start a new execution of this state machine's current revision with this execution's input" }, "Start again with this input");
    const waitSlot = h("div.wait-ends#wait-ends");
    const ganttSlot = h("div.gantt-slot");
    const lineageSlot = h("div#exec-lineage");
    const stopDialog = stopDialogFor(base, (answer) => {
      exec = answer;
      renderHeader();
    });
    stopButton.addEventListener("click", () => stopDialog.open());

    redriveButton.addEventListener("click", async () => {
      redriveButton.disabled = true;
      try {
        await api("POST", base + "/redrive", "{}");
        route(); // the page again, following the history from the top
      } catch (err) {
        toast((err.code ? err.code + ": " : "") + err.message);
        redriveButton.disabled = false;
      }
    });
    rerunButton.addEventListener("click", async () => {
      rerunButton.disabled = true;
      try {
        const e = await api("POST", "/v1/state-machines/" + seg(exec.stateMachine) + "/executions", JSON.stringify(exec.input === undefined ? {} : exec.input));
        location.hash = execLink(e);
      } catch (err) {
        toast((err.code ? err.code + ": " : "") + err.message);
        rerunButton.disabled = false;
      }
    });

    function renderMeta() {
      // Through h(), which skips what is absent (replaceChildren would
      // show a null as the text "null").
      metaSlot.replaceChildren(
        h(
          "span",
          {},
          `${exec.stateMachine} · revision ${exec.revision} · started `,
          timeBoth(exec.startDate, "exec-started"),
          exec.stopDate ? [" · ended ", timeBoth(exec.stopDate, "exec-ended")] : null,
          ` · ${duration(exec.startDate, exec.stopDate)}`,
        ),
      );
    }

    // The Waits still running, and when each ends.
    function renderWaits() {
      const waits = exec.status === "RUNNING" ? [...tracker.live].filter((v) => waitEnds(v, def)).slice(0, 5) : [];
      waitSlot.replaceChildren(
        ...waits.map((v) => {
          const due = waitEnds(v, def);
          return h("div.wait", { dataset: { state: v.name } }, h("strong", {}, v.name), " waits until ", timeBoth(due));
        }),
      );
    }

    function renderGantt() {
      ganttSlot.replaceChildren(ganttView(tracker, exec, def, selectState));
    }

    function renderHeader() {
      statusSlot.replaceChildren(badge(exec.status));
      renderMeta();
      stopButton.hidden = exec.status !== "RUNNING";
      redriveButton.hidden = !["FAILED", "TIMED_OUT", "ABORTED"].includes(exec.status);
      const parts = [];
      if (exec.error !== undefined || exec.cause !== undefined) {
        parts.push(h("div.error-box#exec-error", { role: "alert" }, h("strong", {}, exec.error || "Error"), causeBlock(exec.cause)));
      }
      parts.push(...waitingNotes(exec));
      summary.replaceChildren(...parts);
      if (!selected) renderState();
      setLive(exec.status === "RUNNING");
    }

    function refreshGraph() {
      renderWaits();
      renderGantt();
      if (graph) {
        graph.setStatus(tracker.statuses(exec.status));
        graph.setBadges(tracker.attemptCounts());
      }
      if (selected) renderState();
    }

    function selectState(n) {
      selected = n;
      if (graph) graph.select(n);
      renderState();
      if (n) loadTaskLogs();
    }

    // What process tasks wrote, per attempt (GET .../logs), fetched when a
    // state is selected: a panel shows its own state's attempts.
    let taskLogs = [];
    async function loadTaskLogs() {
      try {
        const answer = await api("GET", base + "/logs", undefined, ctl.signal);
        taskLogs = answer.attempts || [];
      } catch (err) {
        if (ctl.signal.aborted) return;
        taskLogs = [];
      }
      if (selected) renderState();
    }

    // The task log of attempt `number` of state `name` that ran from
    // `attempt.start` to its end: the runner writes it just before the
    // attempt's result is recorded. `shown` collects the logs placed.
    function attemptLog(name, shown) {
      return (number, attempt) => {
        const from = new Date(attempt.start.timestamp).getTime() - 1;
        const to = attempt.end ? new Date(attempt.end.timestamp).getTime() + 1000 : Infinity;
        const log = taskLogs.find((l) => l.stateName === name && l.attempt === number && !shown.has(l.seq) && new Date(l.time).getTime() >= from && new Date(l.time).getTime() <= to);
        if (log) shown.add(log.seq);
        return log || null;
      };
    }

    function taskOutput(name, shown) {
      const attempts = taskLogs.filter((a) => a.stateName === name && !shown.has(a.seq)).slice(-5);
      if (!attempts.length) return [];
      return [
        h("h4", {}, "Task output"),
        ...attempts.map((a) =>
          h(
            "div.visit.task-log",
            {},
            h("div.muted.small", {}, `attempt ${a.attempt} · ${a.outcome}${a.error ? " · " + a.error : ""} · ${when(a.time)}${a.truncated ? " · truncated to the last 64 KiB" : ""}`),
            ...logLines(a),
          ),
        ),
      ];
    }

    function renderState() {
      if (!selected) {
        // Through h(), which skips absent children (replaceChildren would
        // show a null as the text "null").
        statePanel.replaceChildren(
          h(
            "div",
            {},
            h("h3", {}, "Execution"),
            jsonBlock("Input", exec.input),
            exec.output !== undefined ? jsonBlock("Output", exec.output) : null,
            h("p.muted.small", {}, "Select a state in the graph to see its input and output."),
          ),
        );
        return;
      }
      const visits = tracker.states.get(selected);
      const placedLogs = new Set(); // task logs shown with their attempt
      const parts = [h("h3", {}, selected, " ", h("button.link.small#show-execution", { type: "button", onclick: () => selectState(null) }, "back to the execution"))];
      if (!visits) {
        parts.push(h("p.muted", {}, "Not entered (yet)."));
      } else {
        const st = tracker.statuses(exec.status).get(selected);
        parts.push(h("p", {}, badge(st.toUpperCase()), ` ${visits.length} visit${visits.length === 1 ? "" : "s"}`));
        const shown = visits.slice(-10);
        if (visits.length > shown.length) parts.push(h("p.muted", {}, `showing the last ${shown.length}`));
        for (const v of shown) {
          let d = v.failure && v.failure.details;
          // A Fail state in a branch has no event that carries its error:
          // the definition says it.
          const spec = findState(def, selected);
          if (d && d.error === undefined && spec && spec.Type === "Fail") d = { error: spec.Error, cause: spec.Cause };
          parts.push(
            h(
              "div.visit",
              {},
              h("div.muted.small", {}, `event ${v.entered.id} · entered `, timeBoth(v.entered.timestamp), v.exited ? [" · left ", timeBoth(v.exited.timestamp)] : null),
              !v.exited && !v.failure && !v.cancelled && exec.status === "RUNNING" && waitEnds(v, def) ? h("div.wait", {}, "waits until ", timeBoth(waitEnds(v, def))) : null,
              d ? h("div.error-box", {}, h("strong", {}, d.error || v.failure.type), causeBlock(d.cause)) : null,
              jsonBlock("Input", v.entered.details.input),
              v.attempts.length > 1 ? attemptList(v.attempts, attemptLog(selected, placedLogs)) : null,
              v.exited ? jsonBlock("Output", v.exited.details.output) : null,
              v.exited && v.exited.details.output !== undefined ? diffBlock(v.entered.details.input, v.exited.details.output) : null,
            ),
          );
        }
      }
      parts.push(...taskOutput(selected, placedLogs));
      statePanel.replaceChildren(...parts);
    }

    const firstTime = { t: null };
    function addEvents(events) {
      for (const ev of events) {
        tracker.add(ev);
        if (firstTime.t === null) firstTime.t = new Date(ev.timestamp);
        const failure = FAILURE.test(ev.type);
        // The full details row is built on the first click: a long
        // history would otherwise double its rows for nothing.
        let detail = null;
        const row = h(
          "tr.event",
          { class: "event" + (failure ? " failure" : "") + (ev.type.startsWith("Execution") ? " exec" : ""), dataset: { type: ev.type }, tabindex: 0 },
          h("td.num", {}, ev.id),
          h("td.num.muted", { title: whenZoned(ev.timestamp) }, "+" + durationMs(new Date(ev.timestamp) - firstTime.t)),
          h("td.num.at", {}, clock(ev.timestamp)),
          h("td.type", {}, ev.type),
          h("td", {}, tracker.owner.get(ev.id) || ""),
          h("td.summary-cell", {}, eventSummary(ev)),
        );
        const toggle = () => {
          if (!detail) {
            detail = h("tr.detail", {}, h("td", { colspan: 6 }, h("pre", {}, JSON.stringify(ev.details, null, 2))));
            row.after(detail);
          } else {
            detail.hidden = !detail.hidden;
          }
        };
        row.addEventListener("click", toggle);
        row.addEventListener("keydown", (k) => k.key === "Enter" && toggle());
        timeline.append(row);
      }
    }

    show(
      h("div.head", {}, h("h1", {}, name), statusSlot, metaSlot, h("span.grow"), stopButton, redriveButton, rerunButton, h("a.button", { href: "#/machines/" + seg(machine) }, "State machine")),
      summary,
      waitSlot,
      h("div.split", {}, h("div.pane.wide", {}, graphWrap, h("div.legend", {}, ["running", "succeeded", "failed", "caught", "aborted"].map((s) => h("span", { class: "key st-" + s }, s)))), h("div.pane.side", {}, statePanel)),
      h("h2", {}, "Timeline"),
      ganttSlot,
      lineageSlot,
      h("h2", {}, "Events"),
      h("table.list.timeline#timeline", {}, h("thead", {}, h("tr", {}, h("th.num", {}, "#"), h("th.num", {}, "Time"), h("th.num", {}, "At (" + zoneOf(new Date(exec.startDate)) + ")"), h("th", {}, "Type"), h("th", {}, "State"), h("th", {}, "Details"))), timeline),
      stopDialog.node,
    );
    renderHeader();
    // The header's running time, the running bars and every "ago" tick
    // while the page is open.
    const ticker = setInterval(() => {
      if (exec.status === "RUNNING") {
        renderMeta();
        renderGantt();
      }
      refreshRelative(main);
    }, 1000);
    leave = () => {
      ctl.abort();
      clearInterval(ticker);
    };

    // Follow the history: pages of events, long-polling while it runs.
    let after = 0;
    while (!ctl.signal.aborted) {
      let page;
      try {
        const wait = exec.status === "RUNNING" ? "&wait=" + LONG_POLL : "";
        page = await api("GET", `${base}/history?after=${after}&limit=${HISTORY_PAGE}${wait}`, undefined, ctl.signal);
      } catch (err) {
        if (ctl.signal.aborted) return;
        toast("Lost the server: " + err.message + "; retrying");
        await new Promise((r) => setTimeout(r, 2000));
        continue;
      }
      addEvents(page.events);
      after = page.lastEventId;
      // A queued, held or draining execution's note changes with no
      // change of status.
      if (page.status !== exec.status || exec.queued || exec.draining || exec.poolWaits) {
        try {
          exec = await api("GET", base, undefined, ctl.signal);
        } catch (err) {
          if (ctl.signal.aborted) return;
        }
        renderHeader();
      }
      refreshGraph();
      if (wantState && !page.more) {
        selectState(wantState);
        wantState = null;
      }
      if (!page.more && page.status !== "RUNNING") {
        // What it read and wrote is complete once it has ended.
        executionLineage(base, exec.arn, lineageSlot, ctl.signal);
        break;
      }
    }
  }

  // What a running execution waits for before it goes on: a slot of its
  // state machine's max_running, its windows' opening, or (draining) the
  // next window before its tasks are called.
  function waitingNotes(e) {
    const notes = [];
    const q = e.queued;
    if (q && q.reason === "window") {
      notes.push(h("div.wait#exec-queued", { dataset: { reason: "window" } }, h("strong", {}, "Held"), " outside its state machine's windows: it starts when the next one opens, ", timeBoth(q.opens), priorityNote(q)));
    } else if (q && q.reason === "max_running") {
      notes.push(h("div.wait#exec-queued", { dataset: { reason: "max_running" } }, h("strong", {}, `Queued, ${q.position} of ${q.length}`), ": its state machine runs as many executions as its max_running allows; it starts when one ends", priorityNote(q)));
    } else if (q) {
      notes.push(h("div.wait#exec-queued", {}, h("strong", {}, "Queued"), priorityNote(q)));
    }
    for (const w of e.poolWaits || []) {
      notes.push(h("div.wait.pool-wait", { dataset: { state: w.stateName, pool: w.pool } }, h("strong", {}, w.stateName), ` waits for a slot of the pool ${w.pool}, since `, timeBoth(w.since)));
    }
    if (e.draining) {
      notes.push(h("div.wait#exec-draining", {}, h("strong", {}, "Draining"), ": " + e.draining.states.join(", ") + " wait for its state machine's next window, ", timeBoth(e.draining.until)));
    }
    return notes;
  }

  function priorityNote(q) {
    return q.priority ? ` (priority ${q.priority})` : "";
  }

  // ---- lineage -------------------------------------------------------------

  // An execution's page from its ARN (…:execution:MACHINE:NAME).
  function arnLink(arn) {
    const parts = arn.split(":");
    if (parts.length < 8) return null;
    return "#/executions/" + seg(parts[6]) + "/" + seg(parts.slice(7).join(":"));
  }

  function fileNode(path) {
    const cut = path.lastIndexOf("/");
    return { id: "f:" + path, label: path.slice(cut + 1) || path, sub: path.slice(0, cut + 1) || "/", cls: "flow file", title: path };
  }

  function executionNode(arn, here) {
    const parts = arn.split(":");
    const label = parts.length >= 8 ? parts[6] + "/" + parts.slice(7).join(":") : arn;
    return { id: "e:" + arn, label, sub: here ? "this execution" : "execution", cls: "flow execution" + (here ? " here" : ""), title: arn };
  }

  // Files and executions, each node a way to the next question: a file
  // goes to its lineage, an execution to its page.
  function lineageGraph(nodes, edges, id) {
    const graph = window.StepGraph.renderFlow(nodes, edges, (n) => {
      if (n.startsWith("f:")) location.hash = "#/lineage?path=" + encodeURIComponent(n.slice(2));
      const link = n.startsWith("e:") ? arnLink(n.slice(2)) : null;
      if (link) location.hash = link;
    }, "Lineage");
    return graphFrame(graph.svg, id);
  }

  // The edge's words: how it was seen, and in which state.
  function viaLabel(r) {
    return r.via + (r.stateName ? " · " + r.stateName : "");
  }

  // What one execution read and wrote: files read → the execution → files
  // written. Empty (and hidden) when nothing was recorded.
  async function executionLineage(base, arn, slot, signal) {
    let l;
    try {
      l = await api("GET", base + "/lineage", undefined, signal);
    } catch (err) {
      return; // the page works without it
    }
    if (l.read.length === 0 && l.wrote.length === 0) return slot.replaceChildren();
    const me = executionNode(arn, true);
    const nodes = [me];
    const edges = [];
    for (const r of l.read) {
      nodes.push(fileNode(r.path));
      edges.push({ from: "f:" + r.path, to: me.id, label: viaLabel(r) });
    }
    for (const r of l.wrote) {
      if (!nodes.some((n) => n.id === "f:" + r.path)) nodes.push(fileNode(r.path));
      edges.push({ from: me.id, to: "f:" + r.path, label: viaLabel(r) });
    }
    slot.replaceChildren(h("h2", {}, "Files read and written"), lineageGraph(nodes, edges, "lineage-graph"));
  }

  // Which executions wrote a file and which read it.
  async function lineagePage(params) {
    document.title = "Lineage · stepline";
    const path = params.get("path") || "";
    const input = h("input#lineage-path", { type: "text", value: path, placeholder: "/data/warehouse/orders/2026-03-01.csv", size: 60, "aria-label": "An absolute path" });
    const form = h("form.filters#lineage-form", {}, input, h("button", { type: "submit" }, "Show"));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      location.hash = "#/lineage?path=" + encodeURIComponent(input.value.trim());
    });
    const slot = h("div#lineage");
    show(h("div.head", {}, h("h1", {}, "Lineage")), h("p.muted", {}, "Which executions wrote a file, and which read it. Choose a file or an execution in the graph to follow it."), form, slot);
    if (!path) return;
    let l;
    try {
      l = await api("GET", "/v1/lineage?path=" + encodeURIComponent(path));
    } catch (err) {
      return slot.replaceChildren(errorBox(err));
    }
    if (l.writtenBy.length === 0 && l.readBy.length === 0) {
      return slot.replaceChildren(h("p.empty", {}, "No execution is recorded as reading or writing " + l.path + "."));
    }
    const file = fileNode(l.path);
    file.cls += " here";
    const nodes = [file];
    const edges = [];
    const add = (r) => {
      if (!nodes.some((n) => n.id === "e:" + r.executionArn)) nodes.push(executionNode(r.executionArn, false));
    };
    for (const r of l.writtenBy) {
      add(r);
      edges.push({ from: "e:" + r.executionArn, to: file.id, label: viaLabel(r) });
    }
    for (const r of l.readBy) {
      add(r);
      edges.push({ from: file.id, to: "e:" + r.executionArn, label: viaLabel(r) });
    }
    const rows = [...l.writtenBy.map((r) => ["wrote", r]), ...l.readBy.map((r) => ["read", r])].map(([how, r]) =>
      h("tr", {}, h("td", {}, how), h("td", {}, h("a", { href: arnLink(r.executionArn) || "#/lineage" }, executionNode(r.executionArn).label)), h("td", {}, r.via), h("td", {}, r.stateName || ""), h("td", {}, timeBoth(r.time))),
    );
    slot.replaceChildren(
      lineageGraph(nodes, edges, "lineage-graph"),
      h("table.list#lineage-list", {}, h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, "Execution"), h("th", {}, "Via"), h("th", {}, "State"), h("th", {}, "Time"))), h("tbody", {}, rows)),
    );
  }

  // ---- comfort: the theme and the keyboard ---------------------------------

  // "auto" follows prefers-color-scheme (and its changes); "dark" and
  // "light" are the user's choice, kept in this browser.
  const THEMES = ["auto", "dark", "light"];
  const darkQuery = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  let theme = "auto";
  try {
    const kept = localStorage.getItem("stepline-theme");
    if (THEMES.includes(kept)) theme = kept;
  } catch (e) {
    theme = "auto"; // no storage: the choice lasts as long as the page
  }
  function applyTheme() {
    const dark = theme === "dark" || (theme === "auto" && darkQuery !== null && darkQuery.matches);
    document.documentElement.dataset.theme = dark ? "dark" : "light";
    document.getElementById("theme-toggle").textContent = "Theme: " + theme;
  }
  document.getElementById("theme-toggle").addEventListener("click", () => {
    theme = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length];
    try {
      localStorage.setItem("stepline-theme", theme);
    } catch (e) {
      // Kept for this page only.
    }
    applyTheme();
  });
  if (darkQuery) darkQuery.addEventListener("change", applyTheme);
  applyTheme();

  // The zone times are shown in: this browser's, or UTC (the command
  // line's default), kept in this browser; the page is drawn again.
  function applyZone() {
    document.getElementById("zone-toggle").textContent = utc ? "Times: UTC" : "Times: local";
  }
  document.getElementById("zone-toggle").addEventListener("click", () => {
    utc = !utc;
    try {
      localStorage.setItem("stepline-zone", utc ? "utc" : "local");
    } catch (e) {
      // Kept for this page only.
    }
    applyZone();
    route();
  });
  applyZone();

  // "/" focuses the page's search box, as on most sites, unless the user
  // is typing somewhere already.
  document.addEventListener("keydown", (e) => {
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
    // The editor lives in a shadow root: its keys arrive retargeted.
    const t = e.composedPath ? e.composedPath()[0] : e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName) || (t.closest && t.closest("dialog[open]")))) return;
    const box = main.querySelector("input.search");
    if (!box) return;
    e.preventDefault();
    box.focus();
    box.select();
  });

  // Arrow keys move between the rows of a list (the state machines, the
  // executions, the events, the Gantt): from a row, or from a search box
  // down into its list.
  const ROWS = "table.list > tbody > tr:not(.detail), .gantt > .g-row[data-state]";
  function rowTarget(row) {
    return row.matches("[tabindex]") ? row : row.querySelector("a[href], button");
  }
  document.addEventListener("keydown", (e) => {
    if ((e.key !== "ArrowDown" && e.key !== "ArrowUp") || e.ctrlKey || e.metaKey || e.altKey || e.shiftKey) return;
    const t = e.target;
    if (!t || !t.closest) return;
    let next = null;
    if (t.matches("input.search")) {
      if (e.key !== "ArrowDown") return;
      next = [...main.querySelectorAll(ROWS)].find((r) => !r.hidden && rowTarget(r));
    } else {
      const row = t.closest(ROWS);
      if (!row) return;
      const rows = [...row.parentElement.children].filter((r) => r.matches(ROWS) && !r.hidden && rowTarget(r));
      next = rows[rows.indexOf(row) + (e.key === "ArrowDown" ? 1 : -1)] || null;
    }
    if (!next) return;
    e.preventDefault();
    rowTarget(next).focus();
  });

  window.addEventListener("hashchange", route);
  route();
})();
