// Attribution graph page, part 2 of 4: index, layout, state and the SVG drawing.
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

