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
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body, signal) {
    const init = { method, headers: { Accept: "application/json" }, signal };
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
      throw new ApiError(res.status, (data && data.code) || String(res.status), (data && data.message) || res.statusText);
    }
    return data;
  }

  function errorBox(err) {
    const code = err && err.code ? err.code + ": " : "";
    return h("div.error-box", { role: "alert" }, code + (err && err.message ? err.message : String(err)));
  }

  // ---- formatting ----------------------------------------------------------

  function when(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    const pad = (n, w = 2) => String(n).padStart(w, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function duration(fromIso, toIso) {
    if (!fromIso) return "";
    const ms = (toIso ? new Date(toIso) : new Date()) - new Date(fromIso);
    if (ms < 1000) return `${ms} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
    const s = Math.round(ms / 1000);
    if (s < 3600) return `${Math.floor(s / 60)} m ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} m`;
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
    return "#/executions/" + seg(e.stateMachine) + "/" + seg(e.name);
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
    if (leave) leave();
    leave = null;
    setLive(false);
    const { parts, params } = parseHash();
    document.getElementById("nav-machines").classList.toggle("on", parts[0] !== "executions");
    document.getElementById("nav-executions").classList.toggle("on", parts[0] === "executions");
    window.scrollTo(0, 0);
    if (parts.length === 0) return machinesPage();
    if (parts[0] === "machines" && parts.length === 2) return machinePage(parts[1]);
    if (parts[0] === "executions" && parts.length === 1) return executionsPage(params);
    if (parts[0] === "executions" && parts.length === 3) return executionPage(parts[1], parts[2]);
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
  function graphFrame(content) {
    const frame = h("div.graph-wrap#graph", {}, content);
    const fit = h("button.fit#graph-fit", { type: "button", title: "Fit the graph to the frame, or show it at full size" }, "Fit");
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
    show(h("div.head", {}, h("h1", {}, "State machines")), h("table.list#machines", {}, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Type"), h("th.num", {}, "Revision"), h("th", {}, "Created"), h("th", {}, ""))), body));
    try {
      let next = null;
      const all = [];
      do {
        const page = await api("GET", "/v1/state-machines?limit=1000" + (next ? "&next=" + seg(next) : ""));
        all.push(...page.stateMachines);
        next = page.next;
      } while (next && all.length < 10000);
      if (all.length === 0) {
        body.append(h("tr", {}, h("td.empty", { colspan: 5 }, "No state machines yet. Create one with `stepline` or POST /v1/state-machines.")));
      }
      all.sort((a, b) => a.name.localeCompare(b.name));
      for (const m of all) {
        body.append(
          h(
            "tr",
            {},
            h("td", {}, h("a", { href: "#/machines/" + seg(m.name) }, m.name)),
            h("td", {}, m.type),
            h("td.num", {}, m.revision),
            h("td", {}, when(m.creationDate)),
            h("td", {}, h("a.muted", { href: "#/executions?machine=" + seg(m.name) }, "executions")),
          ),
        );
      }
    } catch (err) {
      main.append(errorBox(err));
    }
  }

  // ---- one state machine ---------------------------------------------------

  function startForm(machine) {
    const name = h("input#start-name", { type: "text", placeholder: "generated when empty", maxlength: 80, spellcheck: "false", autocomplete: "off" });
    const input = h("textarea#start-input", { rows: 6, spellcheck: "false" }, "{}");
    const message = h("div.form-error#start-error", { role: "alert" });
    const button = h("button.primary#start-button", { type: "submit" }, "Start execution");
    const form = h(
      "form.start#start-form",
      {},
      h("h3", {}, "Start an execution"),
      h("label", {}, "Name", name),
      h("label", {}, "Input (JSON)", input),
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

  // ---- executions ----------------------------------------------------------

  const STATUSES = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"];

  async function executionsPage(params) {
    document.title = "Executions · stepline";
    const machine = params.get("machine") || "";
    const status = params.get("status") || "";
    const machineSel = h("select#filter-machine", {}, h("option", { value: "" }, "All state machines"));
    const statusSel = h("select#filter-status", {}, h("option", { value: "" }, "Any status"), STATUSES.map((s) => h("option", { value: s, selected: s === status }, s.replace("_", " "))));
    const apply = () => {
      const q = new URLSearchParams();
      if (machineSel.value) q.set("machine", machineSel.value);
      if (statusSel.value) q.set("status", statusSel.value);
      const s = q.toString();
      location.hash = "#/executions" + (s ? "?" + s : "");
    };
    machineSel.addEventListener("change", apply);
    statusSel.addEventListener("change", apply);
    const body = h("tbody");
    const footer = h("div");
    const problems = h("div");
    show(
      h("div.head", {}, h("h1", {}, "Executions"), h("div.filters", {}, machineSel, statusSel)),
      problems,
      h("table.list#executions", {}, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "State machine"), h("th", {}, "Status"), h("th", {}, "Started"), h("th.num", {}, "Duration"))), body),
      footer,
    );
    api("GET", "/v1/state-machines?limit=1000")
      .then((page) => {
        const names = page.stateMachines.map((m) => m.name).sort();
        if (machine && !names.includes(machine)) names.unshift(machine);
        for (const n of names) machineSel.append(h("option", { value: n, selected: n === machine }, n));
      })
      .catch(() => {});
    const tokens = [null];
    let current = 0;
    // The first page refreshes itself, so new and finishing executions
    // show up without a reload; older pages stay still to be read.
    const timer = setInterval(() => current === 0 && !document.hidden && load(0), 5000);
    leave = () => clearInterval(timer);
    const load = async (index) => {
      current = index;
      let path = "/v1/executions?limit=" + PAGE;
      if (machine) path += "&machine=" + seg(machine);
      if (status) path += "&status=" + seg(status);
      if (tokens[index]) path += "&next=" + seg(tokens[index]);
      try {
        const page = await api("GET", path);
        tokens[index + 1] = page.next || null;
        body.replaceChildren();
        if (page.executions.length === 0) body.append(h("tr", {}, h("td.empty", { colspan: 5 }, "No executions match.")));
        for (const e of page.executions) {
          body.append(
            h(
              "tr",
              { dataset: { status: e.status } },
              h("td", {}, h("a", { href: execLink(e) }, e.name)),
              h("td", {}, h("a.muted", { href: "#/machines/" + seg(e.stateMachine) }, e.stateMachine)),
              h("td", {}, badge(e.status)),
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
  }

  // ---- one execution -------------------------------------------------------

  const FAILURE = /(Failed|TimedOut|Aborted)$/;

  // What the history says about each state: its visits (entered, exited,
  // failure events) and a status for the graph. Built incrementally as
  // events arrive.
  class Tracker {
    constructor() {
      this.byId = new Map(); // event id -> event
      this.owner = new Map(); // event id -> state name
      // event id -> the visit it belongs to, along previousEventId: Map
      // iterations run side by side, so "the last open visit" is not it.
      this.visitOf = new Map();
      this.states = new Map(); // name -> {visits, open, failed, caught}
      this.open = []; // names of Parallel/Map states entered and not yet left
    }
    state(name) {
      if (!this.states.has(name)) this.states.set(name, { visits: [], open: 0, failed: false, caught: false });
      return this.states.get(name);
    }
    add(ev) {
      this.byId.set(ev.id, ev);
      const d = ev.details || {};
      const t = ev.type;
      let owner = null;
      if (t.endsWith("StateEntered")) {
        owner = d.name;
        const s = this.state(owner);
        const visit = { entered: ev, exited: null, failure: null };
        s.visits.push(visit);
        this.visitOf.set(ev.id, visit);
        s.open++;
        if (t === "FailStateEntered") s.failed = true;
        if (t === "ParallelStateEntered" || t === "MapStateEntered") this.open.push(owner);
        // A state entered right after another's failure: that failure was
        // caught.
        const prev = this.byId.get(ev.previousEventId);
        const prevOwner = this.owner.get(ev.previousEventId);
        if (prev && prevOwner && FAILURE.test(prev.type)) {
          const p = this.state(prevOwner);
          p.caught = true;
          p.open = Math.max(0, p.open - 1);
        }
      } else if (t.endsWith("StateExited")) {
        owner = d.name;
        const s = this.state(owner);
        let visit = this.visitOf.get(ev.previousEventId);
        if (!visit || visit.entered.details.name !== owner || visit.exited) {
          visit = [...s.visits].reverse().find((v) => !v.exited);
        }
        if (visit) this.visitOf.set(ev.id, visit);
        if (visit) visit.exited = ev;
        // Left after a failure: a Catch took it (stepline, like AWS for
        // Parallel and Map, records the exit of a caught state).
        if (visit && visit.failure) s.caught = true;
        s.open = Math.max(0, s.open - 1);
        const i = this.open.lastIndexOf(owner);
        if (i >= 0) this.open.splice(i, 1);
      } else if (/^(Parallel|Map)State/.test(t)) {
        const kind = t.startsWith("Parallel") ? "Parallel" : "Map";
        owner = [...this.open].reverse().find((n) => {
          const s = this.states.get(n);
          return s && s.visits.length && s.visits[s.visits.length - 1].entered.type === kind + "StateEntered";
        });
        if (owner && FAILURE.test(t)) {
          const i = this.open.lastIndexOf(owner);
          if (i >= 0) this.open.splice(i, 1);
        }
      } else if (t.startsWith("MapIteration")) {
        owner = d.name;
      } else if (!t.startsWith("Execution")) {
        const prev = this.byId.get(ev.previousEventId);
        if (prev && !prev.type.endsWith("StateExited")) {
          owner = this.owner.get(prev.id) || null;
          if (this.visitOf.has(prev.id)) this.visitOf.set(ev.id, this.visitOf.get(prev.id));
        }
      }
      if (owner) {
        this.owner.set(ev.id, owner);
        if (FAILURE.test(t) && !t.startsWith("MapIteration")) {
          const s = this.state(owner);
          s.failed = true;
          const visit = this.visitOf.get(ev.id) || s.visits[s.visits.length - 1];
          if (visit && !visit.failure) visit.failure = ev;
        }
      }
    }
    // name -> running | succeeded | failed | caught | aborted
    statuses(executionStatus) {
      const out = new Map();
      for (const [name, s] of this.states) {
        let st;
        if (s.open > 0 && !s.failed) {
          st = executionStatus === "RUNNING" ? "running" : executionStatus === "ABORTED" ? "aborted" : "failed";
        } else if (s.caught) st = "caught";
        else if (s.failed) st = "failed";
        else st = "succeeded";
        out.set(name, st);
      }
      return out;
    }
  }

  function compact(value) {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    return text.length > 200 ? text.slice(0, 199) + "…" : text;
  }

  function eventSummary(ev) {
    const d = ev.details || {};
    if (d.error !== undefined || d.cause !== undefined) return [d.error || "", d.cause ? " — " + d.cause : ""].join("");
    if (d.output !== undefined) return "output " + compact(d.output);
    if (d.input !== undefined && !d.resource) return "input " + compact(d.input);
    if (d.resource) return d.resource;
    if (d.index !== undefined) return "item " + d.index;
    if (d.length !== undefined) return d.length + " items";
    return "";
  }

  async function executionPage(machine, name) {
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

    let confirmTimer = null;
    stopButton.addEventListener("click", async () => {
      if (!stopButton.classList.contains("confirm")) {
        stopButton.classList.add("confirm");
        stopButton.textContent = "Confirm stop";
        confirmTimer = setTimeout(() => {
          stopButton.classList.remove("confirm");
          stopButton.textContent = "Stop";
        }, 4000);
        return;
      }
      clearTimeout(confirmTimer);
      stopButton.disabled = true;
      try {
        exec = await api("POST", base + "/stop", "{}");
        renderHeader();
      } catch (err) {
        toast((err.code ? err.code + ": " : "") + err.message);
        stopButton.disabled = false;
      }
    });

    function renderMeta() {
      metaSlot.textContent = `${exec.stateMachine} · revision ${exec.revision} · started ${when(exec.startDate)} · ${duration(exec.startDate, exec.stopDate)}`;
    }

    function renderHeader() {
      statusSlot.replaceChildren(badge(exec.status));
      renderMeta();
      stopButton.hidden = exec.status !== "RUNNING";
      const parts = [];
      if (exec.error !== undefined || exec.cause !== undefined) {
        parts.push(h("div.error-box#exec-error", { role: "alert" }, h("strong", {}, exec.error || "Error"), exec.cause ? h("div.cause", {}, exec.cause) : null));
      }
      summary.replaceChildren(...parts);
      if (!selected) renderState();
      setLive(exec.status === "RUNNING");
    }

    function refreshGraph() {
      if (graph) graph.setStatus(tracker.statuses(exec.status));
      if (selected) renderState();
    }

    function selectState(n) {
      selected = n;
      if (graph) graph.select(n);
      renderState();
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
      const s = tracker.states.get(selected);
      const parts = [h("h3", {}, selected, " ", h("button.link.small#show-execution", { type: "button", onclick: () => selectState(null) }, "back to the execution"))];
      if (!s) {
        parts.push(h("p.muted", {}, "Not entered (yet)."));
      } else {
        const st = tracker.statuses(exec.status).get(selected);
        parts.push(h("p", {}, badge(st.toUpperCase()), ` ${s.visits.length} visit${s.visits.length === 1 ? "" : "s"}`));
        const shown = s.visits.slice(-10);
        if (s.visits.length > shown.length) parts.push(h("p.muted", {}, `showing the last ${shown.length}`));
        for (const v of shown) {
          const d = v.failure && v.failure.details;
          parts.push(
            h(
              "div.visit",
              {},
              h("div.muted.small", {}, `event ${v.entered.id} · ${when(v.entered.timestamp)}`),
              d ? h("div.error-box", {}, h("strong", {}, d.error || v.failure.type), d.cause ? h("div.cause", {}, d.cause) : null) : null,
              jsonBlock("Input", v.entered.details.input),
              v.exited ? jsonBlock("Output", v.exited.details.output) : null,
            ),
          );
        }
      }
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
          h("td.num.muted", {}, "+" + (new Date(ev.timestamp) - firstTime.t) + " ms"),
          h("td.type", {}, ev.type),
          h("td", {}, tracker.owner.get(ev.id) || ""),
          h("td.summary-cell", {}, eventSummary(ev)),
        );
        const toggle = () => {
          if (!detail) {
            detail = h("tr.detail", {}, h("td", { colspan: 5 }, h("pre", {}, JSON.stringify(ev.details, null, 2))));
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
      h("div.head", {}, h("h1", {}, name), statusSlot, metaSlot, h("span.grow"), stopButton, h("a.button", { href: "#/machines/" + seg(machine) }, "State machine")),
      summary,
      h("div.split", {}, h("div.pane.wide", {}, graphWrap, h("div.legend", {}, ["running", "succeeded", "failed", "caught", "aborted"].map((s) => h("span", { class: "key st-" + s }, s)))), h("div.pane.side", {}, statePanel)),
      h("h2", {}, "Events"),
      h("table.list.timeline#timeline", {}, h("thead", {}, h("tr", {}, h("th.num", {}, "#"), h("th.num", {}, "Time"), h("th", {}, "Type"), h("th", {}, "State"), h("th", {}, "Details"))), timeline),
    );
    renderHeader();
    // The header's running time ticks while the page is open.
    const ticker = setInterval(() => exec.status === "RUNNING" && renderMeta(), 1000);
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
      if (page.status !== exec.status) {
        try {
          exec = await api("GET", base, undefined, ctl.signal);
        } catch (err) {
          if (ctl.signal.aborted) return;
        }
        renderHeader();
      }
      refreshGraph();
      if (!page.more && page.status !== "RUNNING") break;
    }
  }

  window.addEventListener("hashchange", route);
  route();
})();
