// stepline's authoring workbench (#/author, #/author/NAME): a definition
// in a code editor (CodeMirror 6, vendored in vendor/codemirror.js), the
// server's validator run as the user types with every diagnostic at its
// line and column, field names completed from the ASL schema the
// validator uses, the graph redrawn beside the text, one state run on its
// own through TestState, and saving as a new state machine or a new
// revision. Everything goes through the REST API like the other pages;
// untrusted text reaches the DOM only as text (h() and CodeMirror).
"use strict";

(function () {
  const CM = window.StepCodeMirror;
  // How long the typing must pause before the validator is asked.
  const DEBOUNCE = 350;

  const TEMPLATE = `{
  "Comment": "A new state machine",
  "StartAt": "Hello",
  "States": {
    "Hello": {
      "Type": "Pass",
      "Result": {"hello": "world"},
      "End": true
    }
  }
}
`;

  // ---- the schema, for completion --------------------------------------------

  let schemaPromise = null;
  function loadSchema() {
    if (!schemaPromise) {
      schemaPromise = fetch("/assets/asl.schema.json", { headers: { Accept: "application/json" } })
        .then((r) => (r.ok ? r.json() : null))
        .catch(() => null);
    }
    return schemaPromise;
  }

  const STATE_TYPES = ["Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"];

  // The schema's definition names for what an object at a path is.
  const NESTED = {
    state: { Retry: "retriers", Catch: "catchers", Choices: "rules", Branches: "branches", ItemProcessor: "processor", Iterator: "processor", ItemReader: "ItemReader", ItemBatcher: "ItemBatcher", ResultWriter: "ResultWriter" },
    retriers: "Retrier",
    catchers: "Catcher",
    rules: "choice",
    branches: "scope",
    nestedRules: "rule",
    ItemReader: { ReaderConfig: "ReaderConfig" },
    ResultWriter: { WriterConfig: "WriterConfig" },
  };

  // The field names allowed in an object of kind `kind` (with `type`, the
  // state's Type), with their descriptions.
  function fieldsFor(schema, kind, type) {
    const defs = schema.$defs || {};
    const props = (name) => (defs[name] && defs[name].properties) || {};
    switch (kind) {
      case "root":
        return { ...props("StateMachineScope"), ...(schema.properties || {}) };
      case "scope":
        return props("StateMachineScope");
      case "processor":
        return { ...props("StateMachineScope"), ...props("ItemProcessor") };
      case "state":
        if (STATE_TYPES.includes(type)) return props(type + "State");
        return Object.assign({}, ...STATE_TYPES.map((t) => props(t + "State")));
      case "choice":
        return { ...props("ChoiceRuleFields"), ...props("ChoiceRule") };
      case "rule":
        return props("ChoiceRuleFields");
      default:
        return props(kind);
    }
  }

  // ---- the syntax tree -------------------------------------------------------

  // A Property node's key (the PropertyName's JSON string), or null.
  function keyOf(state, property) {
    const name = property && property.getChild("PropertyName");
    if (!name) return null;
    try {
      return JSON.parse(state.sliceDoc(name.from, name.to));
    } catch (e) {
      return null;
    }
  }

  // The string value of `object`'s member `key`, if it is one.
  function memberString(state, object, key) {
    for (let p = object.firstChild; p; p = p.nextSibling) {
      if (p.name !== "Property" || keyOf(state, p) !== key) continue;
      const value = p.lastChild;
      if (value && value.name === "String") {
        try {
          return JSON.parse(state.sliceDoc(value.from, value.to));
        } catch (e) {
          return null;
        }
      }
    }
    return null;
  }

  // The innermost object around `pos` and the steps from the top to it:
  // [{key, node}], key a member name or an array index, node the value.
  function objectPath(state, pos) {
    let node = CM.syntaxTree(state).resolveInner(pos, -1);
    while (node && node.name !== "Object") node = node.parent;
    if (!node) return null;
    const target = node;
    const steps = [];
    for (let n = node; n && n.parent; n = n.parent) {
      const parent = n.parent;
      if (parent.name === "Property") {
        steps.unshift({ key: keyOf(state, parent), node: n });
        n = parent; // the loop's step goes on from the Property's parent
      } else if (parent.name === "Array") {
        let index = 0;
        for (let c = parent.firstChild; c && c.from < n.from; c = c.nextSibling) {
          if (!/^[[\],]$/.test(c.name) && c.name !== "⚠") index++;
        }
        steps.unshift({ key: index, node: n });
      }
    }
    return { object: target, steps };
  }

  // What the object at the end of `steps` is: root, scope, state, ...
  function kindOf(state, steps) {
    let kind = "root";
    let type = null;
    for (const { key, node } of steps) {
      const nested = NESTED[kind];
      if ((kind === "root" || kind === "scope" || kind === "processor") && key === "States") kind = "states";
      else if (kind === "processor" && key === "ProcessorConfig") kind = "ProcessorConfig";
      else if (kind === "states") {
        kind = "state";
        type = node.name === "Object" ? memberString(state, node, "Type") : null;
      } else if ((kind === "choice" || kind === "rule") && (key === "And" || key === "Or")) kind = "nestedRules";
      else if ((kind === "choice" || kind === "rule") && key === "Not") kind = "rule";
      else if (typeof nested === "string" && typeof key === "number") kind = nested;
      else if (nested && typeof nested === "object" && nested[key]) kind = nested[key];
      else return { kind: null, type: null };
    }
    return { kind, type };
  }

  // The name of the innermost state whose text holds `pos`, or null.
  function stateAt(state, pos) {
    const path = objectPath(state, pos);
    if (!path) return null;
    for (let i = path.steps.length - 1; i >= 1; i--) {
      const { kind } = kindOf(state, path.steps.slice(0, i));
      if (kind === "states") return path.steps[i].key;
    }
    return null;
  }

  // The key of state `name` in the text (wherever it is nested), or null.
  function stateKey(state, name) {
    let found = null;
    CM.syntaxTree(state).iterate({
      enter(node) {
        if (found) return false;
        if (node.name !== "Property" || keyOf(state, node.node) !== name) return undefined;
        const object = node.node.parent;
        const path = object && objectPath(state, object.from + 1);
        if (path && kindOf(state, path.steps).kind === "states") {
          found = node.node.getChild("PropertyName");
          return false;
        }
        return undefined;
      },
    });
    return found;
  }

  // ---- completion ------------------------------------------------------------

  // The values a field's schema allows, when it lists them (`enum`,
  // `const`, through local `$ref`s).
  function valuesOf(schema, spec) {
    for (let depth = 0; spec && depth < 8; depth++) {
      if (Array.isArray(spec.enum)) return spec.enum.filter((v) => typeof v === "string");
      if (typeof spec.const === "string") return [spec.const];
      const ref = typeof spec.$ref === "string" && /^#\/\$defs\/(.+)$/.exec(spec.$ref);
      spec = ref ? (schema.$defs || {})[ref[1]] : null;
    }
    return [];
  }

  function completeFields(context) {
    const { state, pos } = context;
    const before = state.sliceDoc(Math.max(0, pos - 200), pos);
    // A string value being typed: the values its field allows.
    const value = /"([A-Za-z]+)"\s*:\s*"([A-Za-z.]*)$/.exec(before);
    if (value) {
      return loadSchema().then((schema) => {
        const path = schema && objectPath(state, pos);
        const { kind, type } = path ? kindOf(state, path.steps) : { kind: null };
        // A state's Type may be any type, whatever it says now.
        const values = kind === "state" && value[1] === "Type" ? STATE_TYPES : kind ? valuesOf(schema, fieldsFor(schema, kind, type)[value[1]]) : [];
        if (!values.length) return null;
        return { from: pos - value[2].length, options: values.map((v) => ({ label: v, type: "enum" })), validFor: /^[A-Za-z.]*$/ };
      });
    }
    const key = /[{,]\s*("?)([A-Za-z]*)$/.exec(before);
    if (!key || (!key[1] && !key[2] && !context.explicit)) return null;
    return loadSchema().then((schema) => {
      if (!schema) return null;
      const path = objectPath(state, pos);
      if (!path) return null;
      const { kind, type } = kindOf(state, path.steps);
      if (!kind) return null;
      const present = new Set();
      for (let p = path.object.firstChild; p; p = p.nextSibling) {
        if (p.name !== "Property") continue;
        if (!(p.from <= pos && pos <= p.to)) {
          present.add(keyOf(state, p));
          continue;
        }
        // The key being typed has no colon yet, so the parser reads the
        // next member's key as an error inside it: that key is there too.
        for (let c = p.firstChild; c; c = c.nextSibling) {
          if (c.name !== "⚠") continue;
          try {
            present.add(JSON.parse(state.sliceDoc(c.from, c.to)));
          } catch (e) {
            // not a key
          }
        }
      }
      const fields = fieldsFor(schema, kind, type);
      const quoted = key[1] === '"';
      const options = Object.entries(fields)
        .filter(([name]) => !present.has(name))
        .map(([name, spec]) => ({
          label: name,
          apply: quoted ? name : `"${name}"`,
          type: "property",
          info: spec && spec.description ? spec.description : undefined,
          // Type first: a state starts with its Type.
          boost: name === "Type" ? 10 : 0,
        }));
      return { from: pos - key[2].length, options, validFor: /^[A-Za-z]*$/ };
    });
  }

  // ---- positions -------------------------------------------------------------

  // A validator position (1-based line, column in Unicode scalar values)
  // as an offset in the editor's text (UTF-16).
  function offset(doc, line, column) {
    if (!line || line < 1) return 0;
    if (line > doc.lines) return doc.length;
    const l = doc.line(line);
    let at = l.from;
    let n = 1;
    for (const ch of l.text) {
      if (n >= column) break;
      at += ch.length;
      n++;
    }
    return Math.min(at, l.to);
  }

  // A diagnostic covers the token it points at (a key, a string, a
  // number), or one character.
  function toEditor(doc, state, d) {
    const from = offset(doc, d.line, d.column);
    let to = Math.min(doc.length, from + 1);
    const node = CM.syntaxTree(state).resolveInner(from, 1);
    if (node && node.from === from && /^(String|PropertyName|Number|True|False|Null)$/.test(node.name)) to = node.to;
    if (from === to && from > 0) return { from: from - 1, to };
    return { from, to };
  }

  // The validator says ERROR or WARNING; classes and CodeMirror want
  // lower case.
  function severity(d) {
    return String(d.severity).toLowerCase() === "error" ? "error" : "warning";
  }

  // ---- the page --------------------------------------------------------------

  // Opens the workbench in ctx.main for `machine` (a state machine as
  // GET /v1/state-machines/NAME answers, or null for a new one). Returns
  // the page's cleanup.
  function open(ctx, machine) {
    const { h, api, show, graphFrame } = ctx;
    let current = machine; // the stored state machine, once there is one
    let definition = null; // the text's last parse that succeeded
    let graph = null;
    let selected = null;
    let lastDiagnostics = [];
    let closed = false;
    let savedDoc = null; // the text as stored (or as first shown), to tell unsaved edits

    const title = h("h1#author-title");
    const meta = h("span.meta#author-meta");
    const status = h("span.check#author-status", { role: "status" }, "checking…");
    const diagnosticsList = h("ul.diagnostics#author-diagnostics");
    const editorHost = h("div.editor#author-editor");
    const graphHost = graphFrame(h("p.muted", {}, "The graph appears when the definition is JSON."));
    graphHost.id = "author-graph";

    const nameInput = h("input#author-name", { type: "text", maxlength: 80, spellcheck: "false", autocomplete: "off", placeholder: "state machine name", "aria-label": "State machine name" });
    const saveNew = h("button#author-save-new", { type: "button" }, "Save as new state machine");
    const saveRevision = h("button.primary#author-save-revision", { type: "button" }, "Save as new revision");
    const publish = h("input#author-publish", { type: "checkbox" });
    const publishLabel = h("label.publish", { title: "A version is a numbered, unchangeable snapshot of a revision (PublishStateMachineVersion)" }, publish, " and publish it as a version");
    const saveMessage = h("div.save-message#author-save-message", { role: "status" });

    // Starting an execution runs the stored definition, so the form is
    // there once the state machine is, and says which revision it runs.
    const runSection = h("section.run#author-run");
    function renderRun() {
      if (!current) return runSection.replaceChildren();
      runSection.replaceChildren(h("p.muted.small#author-run-revision", {}, `Runs the saved revision ${current.revision}.`), ctx.startForm(current.name));
    }

    const dirtyMark = h("span.dirty#author-dirty", { hidden: true }, " · unsaved changes");
    function dirty() {
      return !view.state.doc.eq(savedDoc);
    }
    function renderHeader() {
      renderRun();
      title.textContent = current ? "Author · " + current.name : "Author · new state machine";
      meta.replaceChildren(current ? h("span", {}, `${current.type} · revision ${current.revision} · `, h("a", { href: "#/machines/" + ctx.seg(current.name) }, "its page")) : "not saved yet", dirtyMark);
      saveRevision.hidden = !current;
      if (current && !nameInput.value) nameInput.value = current.name;
    }

    // ---- diagnostics: the list under the editor ----
    function renderDiagnostics(list, verdict) {
      lastDiagnostics = list;
      const errors = list.filter((d) => severity(d) === "error").length;
      const warnings = list.length - errors;
      status.className = "check " + (errors ? "bad" : "good");
      status.textContent = verdict || (errors ? `${errors} error${errors === 1 ? "" : "s"}` : "valid") + (warnings ? `, ${warnings} warning${warnings === 1 ? "" : "s"}` : "");
      diagnosticsList.replaceChildren(
        ...list.map((d) =>
          h(
            "li.diagnostic",
            { class: "diagnostic " + severity(d), tabindex: 0, dataset: { line: d.line, column: d.column, code: d.code, pointer: d.pointer } },
            h("span.at", {}, `${d.line}:${d.column}`),
            " ",
            h("span.sev", {}, severity(d)),
            " ",
            h("span.code", {}, d.code),
            " ",
            h("span.msg", {}, d.message),
            d.pointer ? h("span.pointer.muted", {}, " " + d.pointer) : null,
          ),
        ),
      );
    }
    function jumpTo(from, to) {
      view.dispatch({ selection: { anchor: from, head: to === undefined ? from : to }, scrollIntoView: true });
      view.focus();
    }
    diagnosticsList.addEventListener("click", (ev) => {
      const li = ev.target.closest("li.diagnostic");
      if (!li) return;
      const doc = view.state.doc;
      jumpTo(offset(doc, Number(li.dataset.line), Number(li.dataset.column)));
    });
    diagnosticsList.addEventListener("keydown", (ev) => ev.key === "Enter" && ev.target.click());

    function asEditorDiagnostics(state, list) {
      return list.map((d) => ({
        ...toEditor(state.doc, state, d),
        severity: severity(d),
        message: `${d.code}: ${d.message}`,
        source: d.pointer || undefined,
      }));
    }

    // ---- the graph beside the text ----
    function redrawGraph(text) {
      let def;
      try {
        def = JSON.parse(text);
      } catch (e) {
        graphHost.classList.add("stale");
        return;
      }
      graphHost.classList.remove("stale");
      definition = def;
      const frame = graphHost.querySelector(".graph-wrap");
      graph = window.StepGraph.render(def, (n) => {
        const key = stateKey(view.state, n);
        if (key) jumpTo(key.from, key.to);
        selectState(n);
      });
      frame.replaceChildren(graph.svg);
      if (selected) graph.select(selected);
      renderTestTarget();
    }

    // ---- the validator, as a CodeMirror lint source ----
    async function validate(v) {
      const text = v.state.doc.toString();
      redrawGraph(text);
      let answer;
      try {
        answer = await api("POST", "/v1/validate", text);
      } catch (err) {
        if (closed) return [];
        if (err.status === 401) {
          // A server with tokens and none given yet: its form instead.
          show(h("div.head", {}, h("h1", {}, "Author")), ctx.errorBox(err));
          cleanup();
          return [];
        }
        renderDiagnostics([], (err.code ? err.code + ": " : "") + err.message);
        return [];
      }
      if (closed || v.state.doc.toString() !== text) return asEditorDiagnostics(v.state, lastDiagnostics);
      renderDiagnostics(answer.diagnostics);
      return asEditorDiagnostics(v.state, answer.diagnostics);
    }

    // The editor lives in a shadow root: CodeMirror then gives its styles
    // to a constructed style sheet (adoptedStyleSheets) instead of the
    // <style> element it puts in a document's head, which the pages'
    // policy (style-src 'self') refuses. editor.css styles it from inside.
    const shadow = editorHost.attachShadow({ mode: "open" });
    // The editor follows the pages' dark mode: a highlight style for dark
    // backgrounds, swapped in and out through a compartment whenever
    // app.js changes the root's data-theme (the toggle, or the system's
    // preference on "auto"). The light theme is CodeMirror's own.
    const themeSlot = new CM.Compartment();
    const T = CM.tags;
    const darkHighlight = CM.HighlightStyle.define(
      [
        { tag: T.propertyName, color: "#7ee787" },
        { tag: T.string, color: "#a5d6ff" },
        { tag: T.number, color: "#79c0ff" },
        { tag: [T.bool, T.null, T.keyword], color: "#ff7b72" },
        { tag: T.punctuation, color: "#c9d1d9" },
        { tag: T.invalid, color: "#f85149" },
      ],
      { themeType: "dark" },
    );
    const themeExtension = () => {
      const dark = document.documentElement.dataset.theme === "dark";
      editorHost.dataset.theme = dark ? "dark" : "light";
      return dark ? [CM.EditorView.theme({}, { dark: true }), CM.syntaxHighlighting(darkHighlight)] : [];
    };
    const editorRoot = h("div.host");
    shadow.append(h("link", { rel: "stylesheet", href: "/assets/editor.css" }), editorRoot);
    const view = new CM.EditorView({
      parent: editorRoot,
      root: shadow,
      state: CM.EditorState.create({
        doc: machine ? machine.definition : TEMPLATE,
        extensions: [
          CM.setup,
          CM.json(),
          CM.lintGutter(),
          CM.linter(validate, { delay: DEBOUNCE }),
          CM.autocompletion({ override: [completeFields], activateOnTyping: true }),
          CM.EditorView.updateListener.of((u) => {
            if (u.docChanged) {
              status.className = "check";
              status.textContent = "checking…";
              dirtyMark.hidden = !current || !dirty();
            }
            if (u.selectionSet) {
              const name = stateAt(u.state, u.state.selection.main.head);
              if (name && name !== selected) selectState(name);
            }
          }),
          CM.EditorView.contentAttributes.of({ "aria-label": "Definition" }),
          themeSlot.of(themeExtension()),
        ],
      }),
    });
    const themeWatch = new MutationObserver(() => view.dispatch({ effects: themeSlot.reconfigure(themeExtension()) }));
    themeWatch.observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });

    // ---- Test this state ----
    const testTarget = h("p.muted#author-test-state", {}, "Select a state in the graph or put the cursor in its text.");
    const testInput = h("textarea#author-test-input", { rows: 5, spellcheck: "false" }, "{}");
    const testMock = h("textarea#author-test-mock", { rows: 3, spellcheck: "false", placeholder: "empty: the task runs for real" });
    const mockLabel = h("label#author-test-mock-label", {}, "Mock result of the task (JSON)", testMock);
    const testButton = h("button.primary#author-test-run", { type: "button", disabled: true }, "Test this state");
    const testResult = h("div.test-result#author-test-result", { role: "status" });

    function findState(def, name, depth = 0) {
      if (!def || typeof def !== "object" || depth > 50) return null;
      const states = def.States && typeof def.States === "object" ? def.States : {};
      if (Object.prototype.hasOwnProperty.call(states, name)) return { spec: states[name], top: depth === 0 };
      for (const s of Object.values(states)) {
        for (const scope of [...(Array.isArray(s && s.Branches) ? s.Branches : []), s && (s.ItemProcessor || s.Iterator)]) {
          const found = findState(scope, name, depth + 1);
          if (found) return found;
        }
      }
      return null;
    }

    function renderTestTarget() {
      const found = selected && definition ? findState(definition, selected) : null;
      testButton.disabled = !found;
      mockLabel.hidden = !(found && found.spec && found.spec.Type === "Task");
      testTarget.textContent = found ? `${selected} (${found.spec && found.spec.Type})` : selected ? `${selected}: not in the definition` : "Select a state in the graph or put the cursor in its text.";
      testTarget.classList.toggle("muted", !found);
    }

    function selectState(name) {
      selected = name;
      if (graph) graph.select(name);
      renderTestTarget();
    }

    const STAGES = [
      ["input", "Input"],
      ["afterInputPath", "After InputPath"],
      ["afterParameters", "After Parameters"],
      ["afterArguments", "After Arguments"],
      ["result", "Result"],
      ["afterResultSelector", "After ResultSelector"],
      ["afterResultPath", "After ResultPath"],
    ];

    testButton.addEventListener("click", async () => {
      testResult.replaceChildren();
      const found = selected && definition ? findState(definition, selected) : null;
      if (!found) return;
      let input;
      let mock;
      try {
        input = JSON.parse(testInput.value.trim() || "{}");
      } catch (e) {
        testResult.replaceChildren(h("div.error-box", {}, "The input is not valid JSON: " + e.message));
        return;
      }
      if (!mockLabel.hidden && testMock.value.trim()) {
        try {
          mock = { result: JSON.parse(testMock.value) };
        } catch (e) {
          testResult.replaceChildren(h("div.error-box", {}, "The mock result is not valid JSON: " + e.message));
          return;
        }
      }
      // A top-level state is tested in its state machine (by name); a
      // nested one alone, with the query language it inherits.
      const body = { input, inspectionLevel: "DEBUG" };
      if (found.top) {
        body.definition = view.state.doc.toString();
        body.stateName = selected;
      } else {
        const spec = { ...found.spec };
        if (definition.QueryLanguage && !spec.QueryLanguage) spec.QueryLanguage = definition.QueryLanguage;
        body.definition = spec;
      }
      if (mock) body.mock = mock;
      testButton.disabled = true;
      try {
        const r = await api("POST", "/v1/test-state", JSON.stringify(body));
        const data = r.inspectionData || {};
        const stages = STAGES.filter(([k]) => data[k] !== undefined).map(([k, label]) => stage(k, label, data[k]));
        if (r.output !== undefined) stages.push(stage("output", "Output", r.output));
        if (data.variables !== undefined) stages.push(stage("variables", "Variables", data.variables));
        // Through h(), which skips absent children (replaceChildren would
        // show a null as the text "null").
        testResult.replaceChildren(
          h(
            "div",
            {},
            h("p", {}, ctx.badge(r.status), r.nextState ? h("span#author-test-next", {}, " next: ", h("strong", {}, r.nextState)) : h("span#author-test-next.muted", {}, " no next state (the end)")),
          r.error || r.cause ? h("div.error-box#author-test-error", {}, h("strong", {}, r.error || "Error"), r.cause ? h("div.cause", {}, r.cause) : null) : null,
            h("div.stages", {}, stages),
          ),
        );
        testResult.scrollIntoView({ block: "nearest" });
      } catch (err) {
        testResult.replaceChildren(h("div.error-box", {}, (err.code ? err.code + ": " : "") + err.message), ...(err.data && err.data.diagnostics ? [h("p.muted.small", {}, "The diagnostics are listed under the editor.")] : []));
        if (err.data && err.data.diagnostics) showServerDiagnostics(err.data.diagnostics);
      } finally {
        testButton.disabled = false;
      }
    });

    function stage(key, label, value) {
      return h("section.json.stage", { class: "json stage", dataset: { stage: key } }, h("h4", {}, label), h("pre", {}, ctx.pretty(value)));
    }

    // ---- saving ----
    function showServerDiagnostics(list) {
      renderDiagnostics(list);
      view.dispatch(CM.setDiagnostics(view.state, asEditorDiagnostics(view.state, list)));
    }

    async function save(asNew) {
      saveMessage.replaceChildren();
      saveMessage.className = "save-message";
      const text = view.state.doc.toString();
      const name = nameInput.value.trim();
      if (asNew && !name) {
        saveMessage.textContent = "Give the new state machine a name.";
        nameInput.focus();
        return;
      }
      saveNew.disabled = saveRevision.disabled = true;
      try {
        const saved = asNew ? await api("POST", "/v1/state-machines?name=" + ctx.seg(name), text) : await api("PUT", "/v1/state-machines/" + ctx.seg(current.name), text);
        current = saved;
        savedDoc = CM.EditorState.create({ doc: text }).doc;
        dirtyMark.hidden = !dirty();
        // The address follows the saved state machine without reloading
        // the page (which would lose the editor's undo history).
        history.replaceState(null, "", "#/author/" + ctx.seg(saved.name));
        ctx.setHere(location.hash);
        renderHeader();
        saveMessage.className = "save-message good";
        saveMessage.append(asNew ? `Created ${saved.name}, revision ${saved.revision}. ` : `Saved revision ${saved.revision} of ${saved.name}. `);
        if (publish.checked) {
          // The revision just saved, by number: if someone updated the
          // state machine meanwhile, the server refuses rather than
          // publishing their text.
          try {
            const v = await api("POST", "/v1/state-machines/" + ctx.seg(saved.name) + "/versions", JSON.stringify({ revision: saved.revision }));
            saveMessage.append(`Published as version ${v.version}. `);
          } catch (err) {
            saveMessage.className = "save-message bad";
            saveMessage.append(`Not published: ${err.code ? err.code + ": " : ""}${err.message} `);
          }
        }
        saveMessage.append(h("a", { href: "#/machines/" + ctx.seg(saved.name) }, "Open its page"));
      } catch (err) {
        saveMessage.className = "save-message bad";
        saveMessage.textContent = (err.code ? err.code + ": " : "") + err.message;
        if (err.data && Array.isArray(err.data.diagnostics)) showServerDiagnostics(err.data.diagnostics);
      } finally {
        saveNew.disabled = saveRevision.disabled = false;
      }
    }
    saveNew.addEventListener("click", () => save(true));
    saveRevision.addEventListener("click", () => save(false));

    show(
      h("div.head", {}, title, meta),
      h("div.save-bar", {}, nameInput, saveNew, saveRevision, publishLabel, saveMessage),
      h(
        "div.split.author",
        {},
        h("div.pane.editor-pane", {}, editorHost, h("div.check-line", {}, status), diagnosticsList),
        h(
          "div.pane.side.author-side",
          {},
          graphHost,
          h("section.test#author-test", {}, h("h3", {}, "Test this state"), testTarget, h("label", {}, "Input (JSON)", testInput), mockLabel, testButton, testResult),
          runSection,
        ),
      ),
    );
    savedDoc = view.state.doc;
    // Closing the tab or reloading with unsaved edits asks first.
    const beforeUnload = (ev) => {
      if (!dirty()) return;
      ev.preventDefault();
      ev.returnValue = "";
    };
    window.addEventListener("beforeunload", beforeUnload);
    // And so does going to another page of the application.
    ctx.setMayLeave(() => !dirty() || window.confirm("Leave the workbench? The unsaved changes will be lost."));
    renderHeader();
    renderTestTarget();
    redrawGraph(view.state.doc.toString());
    loadSchema();
    function cleanup() {
      if (closed) return;
      closed = true;
      ctx.setMayLeave(null);
      window.removeEventListener("beforeunload", beforeUnload);
      themeWatch.disconnect();
      view.destroy();
    }
    return cleanup;
  }

  window.StepAuthor = { open };
})();
