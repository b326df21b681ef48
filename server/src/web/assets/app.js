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
    document.getElementById("nav-machines").classList.toggle("on", parts[0] !== "executions" && parts[0] !== "author");
    document.getElementById("nav-executions").classList.toggle("on", parts[0] === "executions");
    document.getElementById("nav-author").classList.toggle("on", parts[0] === "author");
    window.scrollTo(0, 0);
    if (parts.length === 0) return machinesPage();
    if (parts[0] === "machines" && parts.length === 2) return machinePage(parts[1]);
    if (parts[0] === "executions" && parts.length === 1) return executionsPage(params);
    if (parts[0] === "executions" && parts.length === 3) return executionPage(parts[1], parts[2]);
    if (parts[0] === "author" && parts.length <= 2) return authorPage(parts[1] || null);
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
    show(h("div.head", {}, h("h1", {}, "State machines")), h("table.list#machines", {}, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Type"), h("th.num", {}, "Revision"), h("th", {}, "Created"), h("th", {}, "Latest execution"), h("th", {}, ""))), body));
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
            {},
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
    }
    visits(name) {
      if (!this.states.has(name)) this.states.set(name, []);
      return this.states.get(name);
    }
    // Cancels what still runs inside `parent` (or everything, for null).
    cancelInside(parent) {
      for (const v of this.live) {
        let p = v.parent;
        while (p && p !== parent) p = p.parent;
        if (parent === null || p === parent) {
          v.cancelled = true;
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
        this.cancelInside(visit);
        const i = this.compound.indexOf(visit);
        if (i >= 0) this.compound.splice(i, 1);
      }
      if (/^Execution(Failed|TimedOut|Aborted|Succeeded)$/.test(t)) this.cancelInside(null);
    }
    // name -> running | failed | caught | aborted | succeeded: the most
    // telling of its visits (a Map's inner states have one per item).
    statuses(executionStatus) {
      const out = new Map();
      for (const [name, visits] of this.states) {
        let best = RANK.length;
        for (const v of visits) {
          let st;
          if (v.caught) st = "caught";
          else if (v.failure) st = "failed";
          else if (v.exited) st = "succeeded";
          else if (v.cancelled || executionStatus !== "RUNNING") st = "aborted";
          else st = "running";
          best = Math.min(best, RANK.indexOf(st));
        }
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
    if (d.error !== undefined || d.cause !== undefined) return [d.error || "", d.cause ? " — " + d.cause : ""].join("");
    if (d.output !== undefined) return "output " + compact(d.output);
    if (d.input !== undefined && !d.resource) return "input " + compact(d.input);
    if (d.resource) return d.resource;
    if (d.index !== undefined) return "item " + d.index;
    if (d.length !== undefined) return d.length + " items";
    return "";
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
        parts.push(h("div.error-box#exec-error", { role: "alert" }, h("strong", {}, exec.error || "Error"), causeBlock(exec.cause)));
      }
      summary.replaceChildren(...parts);
      if (!selected) renderState();
      setLive(exec.status === "RUNNING");
    }

    function refreshGraph() {
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
              h("div.muted.small", {}, `event ${v.entered.id} · ${when(v.entered.timestamp)}`),
              d ? h("div.error-box", {}, h("strong", {}, d.error || v.failure.type), causeBlock(d.cause)) : null,
              jsonBlock("Input", v.entered.details.input),
              v.attempts.length > 1 ? attemptList(v.attempts, attemptLog(selected, placedLogs)) : null,
              v.exited ? jsonBlock("Output", v.exited.details.output) : null,
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
