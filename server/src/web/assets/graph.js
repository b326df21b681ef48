// stepline's state machine graph: an ASL definition drawn as SVG with a
// small layered (Sugiyama-style) layout of our own: longest-path layers,
// dummy nodes for long edges, barycentre ordering, then coordinates.
// Parallel branches and Map processors are nested groups laid out by the
// same code, recursively. Everything from the definition (state names,
// conditions, error names) reaches the DOM as text nodes only.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const FONT = "12px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  const NODE_H = 38;
  const MIN_W = 96;
  const GAP_X = 26;
  const GAP_Y = 52;
  const PAD = 14;
  const HEADER = 24;
  const LABEL_MAX = 38;
  const LABEL_FONT = "11px system-ui, sans-serif";
  const MAX_STATES = 2000;

  let measureCtx = null;
  function textWidth(text, font) {
    if (!measureCtx) measureCtx = document.createElement("canvas").getContext("2d");
    measureCtx.font = font || FONT;
    return measureCtx.measureText(text).width;
  }

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clip(text, n) {
    return text.length > n ? text.slice(0, n - 1) + "…" : text;
  }

  // ---- conditions as text ------------------------------------------------

  const OPS = {
    Equals: "==", LessThan: "<", GreaterThan: ">",
    LessThanEquals: "<=", GreaterThanEquals: ">=",
  };

  function literal(v) {
    return typeof v === "string" ? JSON.stringify(v) : String(v);
  }

  // A Choice rule as a short expression: `$.n > 3`, `not(...)`, `a and b`.
  function describeRule(rule, depth) {
    if (!rule || typeof rule !== "object" || depth > 20) return "?";
    if (typeof rule.Condition === "string") {
      return rule.Condition.replace(/^\{%\s*/, "").replace(/\s*%\}$/, "");
    }
    if (Array.isArray(rule.And)) return rule.And.map((r) => describeRule(r, depth + 1)).join(" and ");
    if (Array.isArray(rule.Or)) return rule.Or.map((r) => describeRule(r, depth + 1)).join(" or ");
    if (rule.Not) return "not (" + describeRule(rule.Not, depth + 1) + ")";
    const variable = typeof rule.Variable === "string" ? rule.Variable : "?";
    for (const [key, value] of Object.entries(rule)) {
      if (key === "Variable" || key === "Next" || key === "Comment" || key === "Assign" || key === "Output") continue;
      const path = key.endsWith("Path") && key !== "IsPresent";
      const base = path ? key.slice(0, -4) : key;
      const shown = path ? String(value) : literal(value);
      if (base.startsWith("Is")) {
        const what = base.slice(2).toLowerCase();
        return value === false ? `${variable} is not ${what}` : `${variable} is ${what}`;
      }
      if (base === "StringMatches") return `${variable} matches ${shown}`;
      for (const [suffix, op] of Object.entries(OPS)) {
        if (base.endsWith(suffix) && /^(String|Numeric|Boolean|Timestamp)/.test(base)) {
          return `${variable} ${op} ${shown}`;
        }
      }
      return `${variable} ${key} ${shown}`;
    }
    return variable;
  }

  // ---- model ---------------------------------------------------------------

  // A scope (the top level, a Parallel branch, a Map processor) as nodes
  // and edges. Node ids are state names; ASL names are unique in a whole
  // state machine, so the execution page can colour them by name.
  function buildScope(def, top, budget) {
    const scope = { nodes: new Map(), edges: [], start: null };
    const states = def && typeof def.States === "object" && def.States ? def.States : {};
    if (top) scope.nodes.set("\u0000start", { id: "\u0000start", kind: "start", label: "Start" });
    let needEnd = false;
    for (const [name, state] of Object.entries(states)) {
      if (++budget.count > MAX_STATES) break;
      const s = state && typeof state === "object" ? state : {};
      const node = { id: name, kind: "state", type: String(s.Type || "?"), label: name, children: [] };
      if (s.Type === "Parallel" && Array.isArray(s.Branches)) {
        s.Branches.forEach((b, i) => node.children.push({ title: `Branch ${i + 1}`, scope: buildScope(b, false, budget) }));
      }
      if (s.Type === "Map") {
        const proc = s.ItemProcessor || s.Iterator;
        if (proc) node.children.push({ title: "Item processor", scope: buildScope(proc, false, budget) });
      }
      scope.nodes.set(name, node);
      const edge = (to, label, kind) => {
        if (typeof to === "string") scope.edges.push({ from: name, to, label, kind });
      };
      if (s.Type === "Choice") {
        (Array.isArray(s.Choices) ? s.Choices : []).forEach((rule) => edge(rule && rule.Next, describeRule(rule, 0), "choice"));
        edge(s.Default, "Default", "default");
      } else {
        edge(s.Next, "", "next");
      }
      (Array.isArray(s.Catch) ? s.Catch : []).forEach((c) => {
        const errors = c && Array.isArray(c.ErrorEquals) ? c.ErrorEquals.join(", ") : "?";
        edge(c && c.Next, "catch " + errors, "catch");
      });
      if (top && (s.End === true || s.Type === "Succeed")) {
        scope.edges.push({ from: name, to: "\u0000end", label: "", kind: "next" });
        needEnd = true;
      }
    }
    // Edges to states that do not exist (a definition being edited) are
    // dropped rather than drawn to nowhere.
    scope.edges = scope.edges.filter((e) => scope.nodes.has(e.to) || e.to === "\u0000end");
    if (needEnd) scope.nodes.set("\u0000end", { id: "\u0000end", kind: "end", label: "End" });
    const startAt = typeof def.StartAt === "string" ? def.StartAt : null;
    if (top && startAt && scope.nodes.has(startAt)) {
      scope.edges.unshift({ from: "\u0000start", to: startAt, label: "", kind: "next" });
      scope.start = "\u0000start";
    } else {
      scope.start = startAt && scope.nodes.has(startAt) ? startAt : null;
    }
    return scope;
  }

  // ---- layout --------------------------------------------------------------

  function sizeNode(node) {
    if (node.kind !== "state") {
      node.w = 56;
      node.h = 24;
      return;
    }
    const nameW = Math.max(textWidth(clip(node.label, 48), "600 " + FONT), textWidth(clip(node.type, 48), "11px system-ui, sans-serif")) + 28;
    if (node.children.length === 0) {
      node.w = Math.max(MIN_W, nameW);
      node.h = NODE_H;
      return;
    }
    node.layouts = node.children.map((c) => ({ title: c.title, layout: layoutScope(c.scope) }));
    const inner = node.layouts.reduce((w, c) => w + c.layout.w + 2 * PAD, 0) + GAP_X * (node.layouts.length - 1);
    node.w = Math.max(nameW + 40, inner + 2 * PAD);
    node.h = HEADER + PAD + Math.max(40, ...node.layouts.map((c) => c.layout.h + 2 * PAD + 14)) + PAD;
  }

  // Positions a layer's items as near their wanted x as the order and the
  // gaps allow, by least squares: with y = x - (the widths and gaps to the
  // left), the gap rule says y never decreases, so the best y is the
  // isotonic regression of the wanted y (pool adjacent violators). Greedy
  // pushing instead drifts right, layer after layer, in long graphs.
  function placeRow(l) {
    let off = 0;
    const blocks = [];
    for (const item of l) {
      item.off = off;
      off += item.w + GAP_X;
      blocks.push({ sum: item.want - item.off, n: 1 });
      while (blocks.length > 1) {
        const b = blocks[blocks.length - 1];
        const a = blocks[blocks.length - 2];
        if (a.sum / a.n <= b.sum / b.n) break;
        a.sum += b.sum;
        a.n += b.n;
        blocks.pop();
      }
    }
    let i = 0;
    for (const b of blocks) {
      for (let k = 0; k < b.n; k++, i++) l[i].x = b.sum / b.n + l[i].off;
    }
  }

  function layoutScope(scope) {
    const ids = [...scope.nodes.keys()];
    for (const node of scope.nodes.values()) sizeNode(node);
    const out = new Map(ids.map((id) => [id, []]));
    scope.edges.forEach((e, i) => out.get(e.from).push(i));

    // Back edges by a depth-first search from the start (then from any
    // state it did not reach), so that what remains is acyclic.
    const state = new Map();
    const order = [];
    const back = new Set();
    function dfs(root) {
      const stack = [[root, 0]];
      state.set(root, 1);
      while (stack.length) {
        const top = stack[stack.length - 1];
        const edges = out.get(top[0]);
        if (top[1] < edges.length) {
          const ei = edges[top[1]++];
          const to = scope.edges[ei].to;
          if (state.get(to) === 1) back.add(ei);
          else if (!state.has(to)) {
            state.set(to, 1);
            stack.push([to, 0]);
          }
        } else {
          state.set(top[0], 2);
          order.push(top[0]);
          stack.pop();
        }
      }
    }
    if (scope.start) dfs(scope.start);
    for (const id of ids) if (!state.has(id)) dfs(id);
    order.reverse(); // a topological order of the forward edges

    const layer = new Map(ids.map((id) => [id, 0]));
    for (const id of order) {
      for (const ei of out.get(id)) {
        if (back.has(ei)) continue;
        const to = scope.edges[ei].to;
        layer.set(to, Math.max(layer.get(to), layer.get(id) + 1));
      }
    }
    // The end marker sits below everything.
    if (scope.nodes.has("\u0000end")) {
      layer.set("\u0000end", Math.max(...ids.filter((i) => i !== "\u0000end").map((i) => layer.get(i))) + 1);
    }

    // Layers, with dummy points on forward edges that skip layers.
    const nLayers = Math.max(0, ...layer.values()) + 1;
    const layers = Array.from({ length: nLayers }, () => []);
    const items = new Map(); // id -> {id, w, h, layer, preds, succs}
    // A node reached by a labelled edge takes at least its label's width,
    // so that sibling labels (a Choice's branches) do not overlap.
    const labelW = new Map();
    scope.edges.forEach((e, ei) => {
      if (!e.label || back.has(ei)) return;
      const w = textWidth(clip(e.label, LABEL_MAX), LABEL_FONT) + 18;
      labelW.set(e.to, Math.max(labelW.get(e.to) || 0, w));
    });
    for (const id of order) {
      const n = scope.nodes.get(id);
      const w = Math.max(n.w, labelW.get(id) || 0);
      const item = { id, w, pad: (w - n.w) / 2, h: n.h, layer: layer.get(id), preds: [], succs: [] };
      items.set(id, item);
      layers[item.layer].push(item);
    }
    const routes = scope.edges.map((e, ei) => {
      if (back.has(ei)) return { back: true, points: [] };
      const chain = [e.from];
      for (let l = layer.get(e.from) + 1; l < layer.get(e.to); l++) {
        const id = `\u0001${ei}:${l}`;
        const item = { id, w: 8, h: 0, layer: l, preds: [], succs: [], dummy: true };
        items.set(id, item);
        layers[l].push(item);
        chain.push(id);
      }
      chain.push(e.to);
      for (let i = 0; i + 1 < chain.length; i++) {
        items.get(chain[i]).succs.push(items.get(chain[i + 1]));
        items.get(chain[i + 1]).preds.push(items.get(chain[i]));
      }
      return { back: false, chain };
    });

    // Crossing reduction: barycentre sweeps down and up.
    const pos = (item) => item.order;
    layers.forEach((l) => l.forEach((item, i) => (item.order = i)));
    for (let sweep = 0; sweep < 6; sweep++) {
      const down = sweep % 2 === 0;
      const seq = down ? layers.slice(1) : layers.slice(0, -1).reverse();
      for (const l of seq) {
        for (const item of l) {
          const nb = down ? item.preds : item.succs;
          item.bary = nb.length ? nb.reduce((s, x) => s + pos(x), 0) / nb.length : item.order;
        }
        l.sort((a, b) => a.bary - b.bary || a.order - b.order);
        l.forEach((item, i) => (item.order = i));
      }
    }

    // Coordinates: layers top to bottom; in a layer, each node wants to be
    // centred under its predecessors, then overlaps are pushed apart.
    let y = 0;
    for (const l of layers) {
      const h = Math.max(0, ...l.map((i) => i.h));
      for (const item of l) item.y = y + (h - item.h) / 2;
      l.h = h;
      y += h + GAP_Y;
    }
    const height = Math.max(0, y - GAP_Y);
    let x = 0;
    for (const l of layers) {
      x = 0;
      for (const item of l) {
        item.x = x;
        x += item.w + GAP_X;
      }
    }
    const place = (l, key) => {
      for (const item of l) {
        const nb = item[key];
        item.want = nb.length ? nb.reduce((s, p) => s + p.x + p.w / 2, 0) / nb.length - item.w / 2 : item.x;
      }
      placeRow(l);
    };
    for (let pass = 0; pass < 3; pass++) {
      layers.slice(1).forEach((l) => place(l, "preds"));
      layers.slice(0, -1).reverse().forEach((l) => place(l, "succs"));
    }
    const minX = Math.min(0, ...[...items.values()].map((i) => i.x));
    for (const item of items.values()) item.x -= minX;
    let width = Math.max(0, ...[...items.values()].map((i) => i.x + i.w));

    const anyBack = routes.some((r) => r.back);
    const edges = scope.edges.map((e, ei) => {
      const r = routes[ei];
      const a = items.get(e.from);
      const b = items.get(e.to);
      if (r.back) return { ...e, back: true, a, b };
      const pts = r.chain.map((id) => items.get(id));
      return { ...e, back: false, pts };
    });
    // Loops go round the right-hand side, with room for their labels.
    const loopX = width + 22;
    if (anyBack) {
      const widest = Math.max(0, ...edges.filter((e) => e.back && e.label).map((e) => textWidth(clip(e.label, LABEL_MAX), LABEL_FONT) + 10));
      width = loopX + Math.max(12, widest / 2 + 4);
    }
    return { scope, items, edges, loopX, w: Math.max(width, 60), h: height };
  }

  // ---- drawing -------------------------------------------------------------

  function curve(points) {
    let d = `M${points[0][0]},${points[0][1]}`;
    for (let i = 1; i < points.length; i++) {
      const [x0, y0] = points[i - 1];
      const [x1, y1] = points[i];
      const my = (y0 + y1) / 2;
      d += ` C${x0},${my} ${x1},${my} ${x1},${y1}`;
    }
    return d;
  }

  function drawLabel(g, text, x, y, kind) {
    if (!text) return;
    const shown = clip(text, LABEL_MAX);
    const w = textWidth(shown, LABEL_FONT) + 10;
    const label = el("g", { class: "edge-label " + kind, transform: `translate(${x - w / 2},${y - 8})` });
    label.appendChild(el("title", {}, text));
    label.appendChild(el("rect", { width: w, height: 16, rx: 3 }));
    label.appendChild(el("text", { x: w / 2, y: 12, "text-anchor": "middle" }, shown));
    g.appendChild(label);
  }

  function drawScope(layout, g, index) {
    const edgesG = el("g", { class: "edges" });
    const labelsG = el("g", { class: "labels" });
    const nodesG = el("g", { class: "nodes" });
    g.append(edgesG, nodesG, labelsG);
    const labelsAt = new Map();
    for (const e of layout.edges) {
      let d;
      let lx;
      let ly;
      if (e.back) {
        const right = layout.loopX;
        const sx = e.a.x + e.a.w - (e.a.pad || 0);
        const sy = e.a.y + e.a.h / 2;
        const tx = e.b.x + e.b.w - (e.b.pad || 0);
        const ty = e.b.y + e.b.h / 2;
        d = `M${sx},${sy} C${right},${sy} ${right},${ty} ${tx + 2},${ty}`;
        // The curve's rightmost point (t = 1/2 of this Bézier).
        lx = (sx + tx) / 8 + (3 * right) / 4;
        ly = (sy + ty) / 2;
      } else {
        const pts = e.pts.map((p, i) => {
          if (i === 0) return [p.x + p.w / 2, p.y + p.h];
          if (i === e.pts.length - 1) return [p.x + p.w / 2, p.y - 2];
          return [p.x + p.w / 2, p.y];
        });
        d = curve(pts);
        // The label just above the target, which is spaced to fit it.
        // Several labels into one state stack upwards.
        const n = pts.length;
        const stacked = (labelsAt.get(e.to) || 0) + (e.label ? 1 : 0);
        labelsAt.set(e.to, stacked);
        lx = pts[n - 1][0];
        ly = pts[n - 1][1] - 13 - 17 * Math.max(0, stacked - 1);
      }
      const path = el("path", { d, class: "edge " + e.kind + (e.back ? " back" : ""), "marker-end": "url(#arrow)" });
      path.dataset.from = e.from;
      path.dataset.to = e.to;
      edgesG.appendChild(path);
      drawLabel(labelsG, e.label, lx, ly, e.kind);
    }
    for (const [id, item] of layout.items) {
      if (item.dummy) continue;
      const node = layout.scope.nodes.get(id);
      const ng = el("g", { class: `node ${node.kind} ${node.cls || "type-" + (node.type || node.kind)}`, transform: `translate(${item.x + (item.pad || 0)},${item.y})` });
      if (node.kind !== "state") {
        ng.appendChild(el("rect", { width: node.w, height: node.h, rx: node.h / 2 }));
        ng.appendChild(el("text", { x: node.w / 2, y: node.h / 2 + 4, "text-anchor": "middle" }, node.label));
        nodesG.appendChild(ng);
        continue;
      }
      ng.dataset.state = id;
      ng.setAttribute("tabindex", "0");
      ng.appendChild(el("title", {}, node.title || `${id} (${node.type})`));
      const compound = node.children.length > 0;
      ng.appendChild(el("rect", { class: "box", width: node.w, height: node.h, rx: compound ? 8 : 6 }));
      if (compound) {
        ng.appendChild(el("text", { class: "name", x: 10, y: 16 }, clip(id, 48)));
        ng.appendChild(el("text", { class: "type", x: node.w - 10, y: 16, "text-anchor": "end" }, node.type));
        const inner = node.layouts.reduce((w, c) => w + c.layout.w + 2 * PAD, 0) + GAP_X * (node.layouts.length - 1);
        let cx = (node.w - inner) / 2;
        const bodyH = node.h - HEADER - 2 * PAD;
        for (const child of node.layouts) {
          const boxW = child.layout.w + 2 * PAD;
          const lane = el("g", { class: "lane", transform: `translate(${cx},${HEADER + PAD})` });
          lane.appendChild(el("rect", { width: boxW, height: bodyH, rx: 6 }));
          lane.appendChild(el("text", { class: "lane-title", x: 8, y: 12 }, child.title));
          const innerG = el("g", { transform: `translate(${PAD},${PAD + 14 + (bodyH - 14 - 2 * PAD - child.layout.h) / 2})` });
          lane.appendChild(innerG);
          drawScope(child.layout, innerG, index);
          ng.appendChild(lane);
          cx += boxW + GAP_X;
        }
      } else {
        ng.appendChild(el("text", { class: "name", x: node.w / 2, y: 16, "text-anchor": "middle" }, clip(node.label, 48)));
        ng.appendChild(el("text", { class: "type", x: node.w / 2, y: 30, "text-anchor": "middle" }, clip(node.type, 48)));
      }
      nodesG.appendChild(ng);
      if (!index.has(id)) index.set(id, []);
      index.get(id).push(ng);
    }
  }

  // Draws `definition` (a parsed ASL object). Returns the SVG element and
  // a way to colour states: setStatus(Map name -> status class).
  function render(definition, onSelect) {
    return draw(layoutScope(buildScope(definition || {}, true, { count: 0 })), onSelect, "State machine graph");
  }

  // Draws any directed graph with the same layout and look: `nodes` are
  // {id, label, sub, cls, title}, `edges` {from, to, label}. Used for the
  // graphs that are not a definition (trigger dependencies, lineage).
  // `onSelect` receives a node's id when it is clicked or chosen with
  // the keyboard.
  function renderFlow(nodes, edges, onSelect, ariaLabel) {
    const scope = { nodes: new Map(), edges: [], start: null };
    for (const n of nodes.slice(0, MAX_STATES)) {
      scope.nodes.set(n.id, { id: n.id, kind: "state", type: n.sub || "", label: n.label, cls: n.cls || "flow", title: n.title || n.label, children: [] });
    }
    for (const e of edges) {
      if (scope.nodes.has(e.from) && scope.nodes.has(e.to)) scope.edges.push({ from: e.from, to: e.to, label: e.label || "", kind: "next" });
    }
    return draw(layoutScope(scope), onSelect, ariaLabel);
  }

  function draw(layout, onSelect, ariaLabel) {
    const margin = 16;
    const w = layout.w + 2 * margin;
    const h = layout.h + 2 * margin;
    const svg = el("svg", { class: "graph", viewBox: `0 0 ${w} ${h}`, width: w, height: h, role: "group", "aria-label": ariaLabel });
    const defs = el("defs");
    const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
    marker.appendChild(el("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }));
    defs.appendChild(marker);
    svg.appendChild(defs);
    const root = el("g", { transform: `translate(${margin},${margin})` });
    svg.appendChild(root);
    const index = new Map();
    drawScope(layout, root, index);
    if (onSelect) {
      svg.addEventListener("click", (ev) => {
        const g = ev.target.closest("g.node[data-state]");
        if (g) onSelect(g.dataset.state);
      });
      svg.addEventListener("keydown", (ev) => {
        const g = ev.target.closest("g.node[data-state]");
        if (g && (ev.key === "Enter" || ev.key === " ")) {
          ev.preventDefault();
          onSelect(g.dataset.state);
        }
      });
    }
    const STATUS = ["st-running", "st-succeeded", "st-failed", "st-caught", "st-aborted", "st-selected"];
    return {
      svg,
      setStatus(statuses) {
        for (const [name, nodes] of index) {
          const s = statuses.get(name);
          for (const g of nodes) {
            g.classList.remove(...STATUS.slice(0, 5));
            if (s) g.classList.add("st-" + s);
          }
        }
      },
      // A small label on a node's top right corner (a retried state's
      // attempts): name -> text; states not in the map lose theirs.
      setBadges(badges) {
        for (const [name, nodes] of index) {
          for (const g of nodes) {
            const old = g.querySelector(":scope > g.attempts");
            if (old) old.remove();
            const text = badges.get(name);
            if (!text) continue;
            const boxW = Number(g.querySelector(":scope > rect.box").getAttribute("width"));
            const w = textWidth(text, "600 10px system-ui, sans-serif") + 10;
            const badge = el("g", { class: "attempts", transform: `translate(${boxW - w + 6},-8)` });
            badge.appendChild(el("rect", { width: w, height: 15, rx: 7.5 }));
            badge.appendChild(el("text", { x: w / 2, y: 11, "text-anchor": "middle" }, text));
            g.appendChild(badge);
          }
        }
      },
      select(name) {
        for (const [n, nodes] of index) for (const g of nodes) g.classList.toggle("st-selected", n === name);
      },
    };
  }

  window.StepGraph = { render, renderFlow, describeRule };
})();
