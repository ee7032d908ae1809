// Attribution graph page. Self-contained: page.py inlines this file, graph.css and the data
// (window.__graph); nothing is fetched. Annotations (pins, supernodes) are saved as a download
// and loaded back through a file input (FileReader).
(function () {
  "use strict";
  var G = window.__graph;
  var SVGNS = "http://www.w3.org/2000/svg";
  var LEFT = 64, TOP = 30, BOTTOM = 44, BOX_H = 20;
  var $ = function (id) { return document.getElementById(id); };
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function sv(tag, attrs, cls) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (cls) e.setAttribute("class", cls);
    return e;
  }
  function fmt(x) {
    if (x === null || x === undefined) return "\u2013";
    var a = Math.abs(x);
    if (a === 0) return "0";
    if (a >= 1000 || a < 0.01) return x.toExponential(2);
    return x.toPrecision(3);
  }
  function pct(x) { return x === null || x === undefined ? "\u2013" : (x * 100).toPrecision(3) + "%"; }
  function showTok(s) { return String(s).replace(/\n/g, "\u21b5").replace(/\t/g, "\u21e5").replace(/\r/g, "\u240d"); }
  function has(obj, k) { return typeof k === "string" && Object.prototype.hasOwnProperty.call(obj, k); }
  function clip(s, n) { return s.length > n ? s.slice(0, Math.max(1, n - 1)) + "\u2026" : s; }
  function tip(parent, text) { var t = sv("title"); t.textContent = text; parent.appendChild(t); return parent; }

  if (!G) { $("graph").innerHTML = '<p class="error">no graph data (window.__graph is missing)</p>'; return; }

  // ---------------------------------------------------------------- index and layout
  var byId = Object.create(null), incoming = Object.create(null), outgoing = Object.create(null), cells = Object.create(null);
  var KIND_ORDER = { token: 0, feature: 1, error: 2, logit: 3 };
  G.nodes.forEach(function (n) {
    byId[n.id] = n; incoming[n.id] = []; outgoing[n.id] = [];
    (cells[n.layer + ":" + n.pos] = cells[n.layer + ":" + n.pos] || []).push(n);
  });
  G.edges.forEach(function (e) { outgoing[e.source].push(e); incoming[e.target].push(e); });
  // a crowded cell stacks its nodes in a block (DOT px apart, LINE px between its rows) and only its
  // own column widens; columns and rows fill the panel when they can, and the whole drawing is
  // scaled to fit it when they cannot (fit(), below)
  var DOT = 10, LINE = 8, MIN_COL = 60;
  var nPos = G.tokens.length, box = $("graph").getBoundingClientRect();
  var ROW_H = Math.max(32, Math.min(110, (box.height - TOP - BOTTOM) / (G.n_layers + 2)));
  var rowsFit = Math.max(1, Math.floor((ROW_H - 6) / LINE));
  var colW = G.tokens.map(function () { return MIN_COL; });
  Object.keys(cells).forEach(function (key) {
    var c = cells[key];
    if (c[0].kind === "feature" || c[0].kind === "error") colW[c[0].pos] = Math.max(colW[c[0].pos], Math.ceil(c.length / rowsFit) * DOT + 16);
  });
  var spare = box.width - LEFT - 16 - colW.reduce(function (a, b) { return a + b; }, 0);
  if (spare > 0) colW = colW.map(function (w) { return w + spare / nPos; });
  var colLeft = [LEFT];
  colW.forEach(function (w, p) { colLeft[p + 1] = colLeft[p] + w; });
  var W = colLeft[nPos] + 16, H = TOP + (G.n_layers + 2) * ROW_H + BOTTOM;
  var maxInfl = Math.max.apply(null, G.nodes.map(function (n) { return n.influence; }).concat([1e-12]));
  var maxW = Math.max.apply(null, G.edges.map(function (e) { return Math.abs(e.weight); }).concat([1e-12]));
  function rowY(layer) { return TOP + (G.n_layers - layer) * ROW_H + ROW_H / 2; }
  function colX(pos) { return colLeft[pos] + colW[pos] / 2; }
  function nodeText(n) { return n.card && typeof n.card.token === "string" ? n.card.token : n.label; }
  function layerName(l) { return l < 0 ? "tokens" : l >= G.n_layers ? "logits" : "L" + l; }
  Object.keys(cells).forEach(function (key) {
    var list = cells[key].sort(function (a, b) {
      return KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || b.influence - a.influence || (a.id < b.id ? -1 : 1);
    });
    var n = list.length, pos = list[0].pos, boxes = list[0].kind === "token" || list[0].kind === "logit";
    if (boxes) {  // one token box per column; the logit row's boxes spread leftwards over whole columns
      var first = Math.max(0, pos + 1 - n), left = colLeft[first], slot = (colLeft[pos + 1] - left) / n;
      list.forEach(function (node, k) {
        node.x = left + (k + 0.5) * slot;
        node.y = rowY(node.layer);
        node.r = 3 + 5 * Math.sqrt(node.influence / maxInfl);
        node.boxW = Math.max(14, Math.min(slot - 6, 7 * showTok(nodeText(node)).length + 10));
      });
      return;
    }
    var rows = Math.min(n, rowsFit), perRow = Math.ceil(n / rows), alone = n === 1;
    list.forEach(function (node, k) {
      var row = Math.floor(k / perRow), inRow = Math.min(perRow, n - row * perRow);
      node.x = colX(pos) + (k % perRow - (inRow - 1) / 2) * DOT;
      node.y = rowY(node.layer) + (row - (rows - 1) / 2) * LINE;
      var s = Math.sqrt(node.influence / maxInfl), big = node.kind === "feature" ? 4 + 9 * s : 3 + 5 * s;
      node.r = alone ? Math.min(big, 0.4 * ROW_H) : Math.min(big, 0.45 * DOT);
    });
  });

  // ---------------------------------------------------------------- state
  var state = { selected: null, pinned: [], supernodes: [], pinnedOnly: false };
  var checked = {}, nodeEls = {}, edgeEls = [], openMembers = {};
  function isPinned(id) { return state.pinned.indexOf(id) >= 0; }

  // ---------------------------------------------------------------- the SVG
  var svg = sv("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H });
  var gGrid = sv("g", {}, "grid"), gEdges = sv("g", {}, "edges"), gSuper = sv("g", {}, "supers"), gNodes = sv("g", {}, "nodes");
  [gGrid, gEdges, gSuper, gNodes].forEach(function (g) { svg.appendChild(g); });
  for (var l = -1; l <= G.n_layers; l++) {
    gGrid.appendChild(sv("line", { x1: LEFT - 8, x2: W - 8, y1: rowY(l), y2: rowY(l) }));
    gGrid.appendChild(sv("text", { x: 6, y: rowY(l) + 4 })).textContent = layerName(l);
  }
  G.tokens.forEach(function (tok, p) {
    var t = sv("text", { x: colX(p), y: H - BOTTOM + 18, "text-anchor": "middle" }, "tok");
    t.textContent = clip(showTok(tok), 14);
    tip(t, p + ": " + JSON.stringify(tok));
    gGrid.appendChild(t);
    gGrid.appendChild(sv("text", { x: colX(p), y: H - BOTTOM + 34, "text-anchor": "middle" })).textContent = String(p);
  });
  G.edges.forEach(function (e) {
    var a = byId[e.source], b = byId[e.target], my = (a.y + b.y) / 2;
    var p = sv("path", {
      d: "M" + a.x + "," + a.y + " C" + a.x + "," + my + " " + b.x + "," + my + " " + b.x + "," + b.y,
      "stroke-width": (0.6 + 5 * Math.abs(e.weight) / maxW).toFixed(2), "data-source": e.source, "data-target": e.target,
    }, "edge " + (e.weight >= 0 ? "pos" : "neg"));
    tip(p, a.label + " \u2192 " + b.label + ": " + fmt(e.weight));
    edgeEls.push(p); gEdges.appendChild(p);
  });
  G.nodes.forEach(function (n) {
    var g = sv("g", { transform: "translate(" + n.x + "," + n.y + ")", "data-id": n.id }, "node " + n.kind);
    if (n.kind === "feature") g.appendChild(sv("circle", { r: n.r }));
    else if (n.kind === "error") g.appendChild(sv("rect", { x: -n.r, y: -n.r, width: 2 * n.r, height: 2 * n.r, transform: "rotate(45)" }));
    else {
      g.appendChild(sv("rect", { x: -n.boxW / 2, y: -BOX_H / 2, width: n.boxW, height: BOX_H, rx: 3,
        "stroke-width": (1 + 2 * Math.sqrt(n.influence / maxInfl)).toFixed(2) }));
      g.appendChild(sv("text", { y: 4, "text-anchor": "middle" })).textContent = clip(showTok(nodeText(n)), Math.floor((n.boxW - 6) / 7));
    }
    tip(g, n.label + "  (" + n.id + ")" + (n.clerp ? "\n" + n.clerp : "") + "\ninfluence " + pct(n.influence) + (n.activation !== null ? "\nactivation " + fmt(n.activation) : ""));
    nodeEls[n.id] = g; gNodes.appendChild(g);
  });
  $("graph").appendChild(svg);
  // fitted to the panel when the drawing is larger (no scrolling to find the nodes); "1:1" toggles
  function fit(on) {
    var scale = Math.min(1, (box.width - 4) / W, (box.height - 4) / H);
    svg.setAttribute("width", on ? W * scale : W);
    svg.setAttribute("height", on ? H * scale : H);
    svg.dataset.fitted = on && scale < 1 ? "1" : "0";
  }
  fit(true);
  if ($("fit-btn")) $("fit-btn").addEventListener("click", function () { fit(svg.dataset.fitted !== "1"); });
  svg.addEventListener("click", function (ev) {
    var g = ev.target.closest("g.node");
    if (!g) { select(null); return; }
    var id = g.getAttribute("data-id");
    if (ev.shiftKey) togglePin(id); else select(id);
  });

  function drawSupers() {
    gSuper.textContent = "";
    state.supernodes.forEach(function (s, i) {
      var x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      s.members.forEach(function (id) {
        var n = byId[id], hw = n.kind === "feature" || n.kind === "error" ? n.r * 1.5 : n.boxW / 2, hh = n.kind === "feature" || n.kind === "error" ? n.r * 1.5 : BOX_H / 2;
        x0 = Math.min(x0, n.x - hw); x1 = Math.max(x1, n.x + hw); y0 = Math.min(y0, n.y - hh); y1 = Math.max(y1, n.y + hh);
      });
      var g = sv("g", { "data-index": i }, "supernode");
      g.appendChild(sv("rect", { x: x0 - 8, y: y0 - 8, width: x1 - x0 + 16, height: y1 - y0 + 16, rx: 8 }));
      g.appendChild(sv("text", { x: x0 - 6, y: y0 - 12 })).textContent = s.label;
      gSuper.appendChild(g);
    });
  }

  // ---------------------------------------------------------------- restyle after any change
  function restyle() {
    var sel = state.selected, near = {}, onPath = new Set();
    if (sel) {
      near[sel] = 1;
      incoming[sel].forEach(function (e) { near[e.source] = 1; });
      // every edge on a path from the selection to the logits
      var stack = [sel], seen = {};
      while (stack.length) {
        var id = stack.pop();
        if (seen[id]) continue;
        seen[id] = 1; near[id] = 1;
        outgoing[id].forEach(function (e) { onPath.add(e); stack.push(e.target); });
      }
    }
    G.nodes.forEach(function (n) {
      var c = nodeEls[n.id].classList;
      c.toggle("sel", n.id === sel); c.toggle("pinned", isPinned(n.id));
      c.toggle("faded", !!sel && !near[n.id]); c.toggle("hidden", state.pinnedOnly && !isPinned(n.id));
    });
    G.edges.forEach(function (e, i) {
      var c = edgeEls[i].classList, touch = !!sel && (e.source === sel || e.target === sel);
      c.toggle("hi", touch); c.toggle("path", onPath.has(e)); c.toggle("faded", !!sel && !touch && !onPath.has(e));
      c.toggle("hidden", state.pinnedOnly && !(isPinned(e.source) && isPinned(e.target)));
    });
    drawSupers();
    renderSide();
  }

  function renderSide() {
    var ul = $("pinned");
    ul.textContent = "";
    state.pinned.forEach(function (id) {
      var li = el("li"), cb = el("input"), lab = el("span", "plabel", showTok(byId[id].label)), rm = el("button", "rm", "\u00d7");
      li.dataset.id = id;
      cb.type = "checkbox"; cb.value = id; cb.checked = !!checked[id];
      cb.addEventListener("change", function () { checked[id] = cb.checked; });
      lab.title = id;
      lab.addEventListener("click", function () { select(id); });
      rm.title = "unpin"; rm.type = "button";
      rm.addEventListener("click", function () { togglePin(id); });
      [cb, lab, rm].forEach(function (x) { li.appendChild(x); });
      ul.appendChild(li);
    });
    $("pin-count").textContent = state.pinned.length;
    var su = $("supernodes");
    su.textContent = "";
    state.supernodes.forEach(function (s, i) {
      var li = el("li"), lab = el("span", "plabel", s.label + " (" + s.members.length + ")"), rm = el("button", "rm", "\u00d7");
      var ren = el("button", "rename", "\u270e"), box = el("details", "members"), sub = el("ul");
      box.appendChild(el("summary", null, "members"));
      box.appendChild(sub);
      box.open = !!openMembers[s.label];
      box.addEventListener("toggle", function () { openMembers[s.label] = box.open; });
      lab.title = s.members.join(", ");
      rm.title = "remove this supernode"; rm.type = "button";
      rm.addEventListener("click", function () { state.supernodes.splice(i, 1); restyle(); });
      ren.title = "rename"; ren.type = "button";
      ren.addEventListener("click", function () {
        var name = window.prompt("supernode label", s.label);
        if (name && name.trim()) { s.label = name.trim(); restyle(); }
      });
      s.members.forEach(function (id, j) {     // take a member out: splits it off the group
        var m = el("li"), out = el("button", "out", "\u00d7");
        m.appendChild(el("span", "plabel", showTok(byId[id].label + (byId[id].clerp ? ": " + byId[id].clerp : ""))));
        out.title = "take out of this supernode"; out.type = "button";
        out.addEventListener("click", function () {
          s.members.splice(j, 1);
          if (!s.members.length) state.supernodes.splice(i, 1);
          restyle();
        });
        m.appendChild(out); sub.appendChild(m);
      });
      [lab, rm, ren, box].forEach(function (x) { li.appendChild(x); });
      su.appendChild(li);
    });
    $("super-count").textContent = state.supernodes.length;
    var pb = $("pin-btn");
    if (pb) pb.textContent = isPinned(pb.dataset.id) ? "unpin" : "pin";
  }

  function notice(msg, warn) {
    $("notice").textContent = msg;
    $("notice").className = "small " + (warn ? "warn" : "ok");
  }

  // ---------------------------------------------------------------- the card
  function stat(label, value) {
    var d = el("div", "stat");
    [el("b", null, value), el("span", null, label)].forEach(function (x) { d.appendChild(x); });
    return d;
  }
  function panel(title, cls) { var p = el("div", "panel " + cls); p.appendChild(el("h3", null, title)); return p; }
  function logitTable(pos, neg) {
    var table = el("table", "logits"), head = el("tr");
    head.appendChild(el("th", "pos", "promoted")); head.appendChild(el("th"));
    head.appendChild(el("th", "neg", "suppressed")); head.appendChild(el("th"));
    table.appendChild(head);
    for (var j = 0; j < Math.max(pos.length, neg.length); j++) {
      var tr = el("tr");
      [[pos[j], "pos"], [neg[j], "neg"]].forEach(function (p) {
        var td = el("td"), v = el("td", "v " + p[1]);
        if (p[0]) { td.appendChild(el("span", "tokname", showTok(p[0][0]))); v.textContent = (p[0][1] > 0 ? "+" : "") + fmt(p[0][1]); }
        tr.appendChild(td); tr.appendChild(v);
      });
      table.appendChild(tr);
    }
    return table;
  }
  function example(ex) {
    var div = el("div", "ex"), acts = ex.acts || [], mx = Math.max.apply(null, acts.concat([0])), best = acts.indexOf(mx);
    (ex.tokens || []).forEach(function (tok, j) {
      var a = acts[j], span = el("span", "tok" + (j === best && mx > 0 ? " hl" : ""), showTok(tok));
      if (a !== undefined && a !== null) {
        if (a > 0 && mx > 0) span.style.background = "rgba(255, 120, 0, " + (0.12 + 0.88 * Math.min(1, a / mx)).toFixed(3) + ")";
        span.title = JSON.stringify(tok) + ": " + fmt(a);
        span.dataset.act = a;
      }
      div.appendChild(span);
    });
    return div;
  }
  function edgeList(title, edges, end) {
    var p = panel(title, end === "source" ? "incoming" : "outgoing");
    var top = edges.slice().sort(function (a, b) { return Math.abs(b.weight) - Math.abs(a.weight); }).slice(0, 10);
    if (!top.length) p.appendChild(el("p", "hint small", "none"));
    top.forEach(function (e) {
      var other = byId[e[end]], row = el("div", "edge-row");
      row.dataset.id = other.id;
      row.appendChild(el("span", "v " + (e.weight >= 0 ? "pos" : "neg"), (e.weight > 0 ? "+" : "") + fmt(e.weight)));
      row.appendChild(el("span", "who", showTok(other.label) + "  " + other.id));
      row.addEventListener("click", function () { select(other.id); });
      p.appendChild(row);
    });
    if (edges.length > top.length) p.appendChild(el("p", "hint small", (edges.length - top.length) + " weaker not shown"));
    return p;
  }
  function showCard(id) {
    var card = $("card");
    card.textContent = "";
    if (!id) { card.removeAttribute("data-id"); card.appendChild(el("p", "hint", "Click a node to see its card.")); return; }
    var n = byId[id], c = n.card || {};
    card.dataset.id = id;
    var h = el("h2", null, showTok(n.label)), pin = el("button", null, isPinned(id) ? "unpin" : "pin");
    h.appendChild(el("span", "badge " + n.kind, n.kind));
    pin.id = "pin-btn"; pin.type = "button"; pin.dataset.id = id;
    pin.addEventListener("click", function () { togglePin(id); });
    h.appendChild(pin);
    card.appendChild(h);
    if (n.clerp) card.appendChild(el("p", "clerp", showTok(n.clerp)));
    var st = el("div", "stats"), given = function (x) { return x !== null && x !== undefined; };
    [["id", n.id], ["feature", given(n.feature) && "#" + n.feature], ["layer", layerName(n.layer)],
      ["position", n.pos + " " + showTok(JSON.stringify(G.tokens[n.pos]))], ["activation", given(n.activation) && fmt(n.activation)],
      ["influence", pct(n.influence)], ["token", (n.kind === "token" || n.kind === "logit") && showTok(JSON.stringify(c.token))],
      ["probability", n.kind === "logit" && pct(c.prob)], ["error norm", n.kind === "error" && fmt(c.norm)],
    ].forEach(function (kv) { if (kv[1]) st.appendChild(stat(kv[0], kv[1])); });
    card.appendChild(st);
    if (n.kind === "feature") {
      if ((c.logits_pos || []).length || (c.logits_neg || []).length) {
        var lp = panel("Logit effect of the decoder direction", "logit-table");
        lp.appendChild(logitTable(c.logits_pos || [], c.logits_neg || []));
        card.appendChild(lp);
      }
      var ep = panel("Top activations", "examples");
      (c.examples || []).forEach(function (ex) { ep.appendChild(example(ex)); });
      if (c.note) ep.appendChild(el("p", "hint small note", c.note));
      else if (!(c.examples || []).length) ep.appendChild(el("p", "hint small", "no examples"));
      card.appendChild(ep);
    }
    card.appendChild(edgeList("Strongest incoming edges (" + incoming[id].length + ")", incoming[id], "source"));
    card.appendChild(edgeList("Strongest outgoing edges (" + outgoing[id].length + ")", outgoing[id], "target"));
  }

  // ---------------------------------------------------------------- actions
  function select(id) { state.selected = id; showCard(id); restyle(); }
  function togglePin(id) {
    var i = state.pinned.indexOf(id);
    if (i >= 0) { state.pinned.splice(i, 1); delete checked[id]; } else state.pinned.push(id);
    restyle();
  }
  function annotation() {
    return { graph: G.title, pinned: state.pinned.slice(),
      supernodes: state.supernodes.map(function (s) { return { label: s.label, members: s.members.slice() }; }) };
  }
  function applyAnnotation(a, name) {
    if (!a || typeof a !== "object" || Array.isArray(a) || !Array.isArray(a.pinned || []) || !Array.isArray(a.supernodes || []))
      throw new Error("not a graph annotation ({graph, pinned: [...], supernodes: [...]})");
    var unknown = [];
    function known(id) {
      if (has(byId, id)) return true;
      if (unknown.indexOf(String(id)) < 0) unknown.push(String(id));
      return false;
    }
    var pinned = (a.pinned || []).filter(function (id, i, all) { return known(id) && all.indexOf(id) === i; });
    var supers = (a.supernodes || []).map(function (s) {
      var m = Array.isArray(s && s.members) ? s.members : [];
      return { label: String((s && s.label) || "supernode"), members: m.filter(function (id, i) { return known(id) && m.indexOf(id) === i; }) };
    }).filter(function (s) { return s.members.length; });
    state.pinned = pinned; state.supernodes = supers; checked = {};
    restyle();
    var msg = "loaded " + name + ": " + pinned.length + " pinned, " + supers.length + " supernodes";
    if (a.graph && a.graph !== G.title) msg += " (saved for graph " + JSON.stringify(a.graph) + ")";
    if (unknown.length) msg += "; ignored " + unknown.length + " id(s) not in this graph: " + unknown.join(", ");
    notice(msg, unknown.length > 0);
  }
  window.__annotation = annotation;

  $("show-pinned").addEventListener("change", function () { state.pinnedOnly = this.checked; restyle(); });
  $("group-btn").addEventListener("click", function () {
    var members = state.pinned.filter(function (id) { return checked[id]; }), label = $("group-label").value.trim();
    if (!members.length) { notice("tick the pinned nodes to group first", true); return; }
    if (!label) { notice("type a label for the supernode", true); return; }
    state.supernodes.push({ label: label, members: members });
    checked = {}; $("group-label").value = "";
    restyle();
    notice("grouped " + members.length + " nodes as " + JSON.stringify(label));
  });
  var undo = null, suggested = G.suggested_supernodes || [];
  $("suggest-btn").textContent = "suggest supernodes (" + suggested.length + ")";
  $("suggest-btn").disabled = !suggested.length;
  $("suggest-btn").addEventListener("click", function () {
    undo = state.supernodes.map(function (s) { return { label: s.label, members: s.members.slice() }; });
    suggested.forEach(function (s) { state.supernodes.push({ label: s.label, members: s.members.slice() }); });
    $("undo-btn").disabled = false;
    restyle();
    notice("added " + suggested.length + " suggested supernodes (grouped by label and decoder direction): rename, take members out, or undo");
  });
  $("undo-btn").addEventListener("click", function () {
    if (!undo) return;
    state.supernodes = undo; undo = null;
    $("undo-btn").disabled = true;
    restyle();
    notice("suggested supernodes removed");
  });
  $("save-btn").addEventListener("click", function () {
    var blob = new Blob([JSON.stringify(annotation(), null, 2) + "\n"], { type: "application/json" });
    var a = el("a"), url = URL.createObjectURL(blob);
    a.href = url; a.download = "graph_annotation.json";
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 5000);
  });
  $("load-file").addEventListener("change", function () {
    var input = this, f = input.files[0];
    if (!f) return;
    var r = new FileReader();
    r.onload = function () {
      try { applyAnnotation(JSON.parse(r.result), f.name); } catch (err) { notice("cannot load " + f.name + ": " + err.message, true); }
      input.value = "";
    };
    r.onerror = function () { notice("cannot read " + f.name, true); input.value = ""; };
    r.readAsText(f);
  });

  // ---------------------------------------------------------------- header
  document.title = G.title;
  $("title").textContent = G.title;
  $("meta").textContent = [G.model, G.nodes.length + " nodes", G.edges.length + " edges"].filter(Boolean).join(" \u00b7 ");
  $("prompt").textContent = G.prompt;
  [["replacement", "replacement"], ["completeness", "completeness"], ["pruned_replacement", "pruned repl."],
    ["pruned_completeness", "pruned compl."]].forEach(function (k) {
    var s = el("span", null, k[1] + " "), v = G.scores[k[0]];
    s.appendChild(el("b", null, typeof v === "number" ? v.toFixed(3) : "\u2013"));
    s.dataset.score = k[0];
    $("scores").appendChild(s);
  });
  restyle();
  document.body.dataset.ready = "1";
})();
