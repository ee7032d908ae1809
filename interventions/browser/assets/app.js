// SAE feature browser. Works from file://: data arrive as <script> files (data/index.js sets
// window.__index; data/features/cNNNN.js call window.__chunk(NNNN, {...}) on load).
(function () {
  "use strict";
  var IDX = window.__index;
  var ROW_H = 28;
  var chunks = {};      // chunk id -> {s: strings, f: features}
  var waiting = {};     // chunk id -> [callbacks]
  var order = [];       // visible feature ids, in list order
  var selected = -1;

  var $ = function (id) { return document.getElementById(id); };
  var el = function (tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  if (!IDX) {
    $("card").innerHTML = '<p class="error">data/index.js is missing: rebuild with scripts/browse_features.py</p>';
    return;
  }

  // ---------------------------------------------------------------- chunk loading (JSONP style)
  window.__chunk = function (id, data) {
    chunks[id] = data;
    (waiting[id] || []).forEach(function (cb) { cb(data); });
    delete waiting[id];
  };
  function loadChunk(id, cb) {
    if (chunks[id]) { cb(chunks[id]); return; }
    if (waiting[id]) { waiting[id].push(cb); return; }
    waiting[id] = [cb];
    var s = document.createElement("script");
    s.src = "data/features/c" + String(id).padStart(4, "0") + ".js";
    s.onerror = function () { $("card").innerHTML = '<p class="error">cannot load ' + s.src + "</p>"; };
    document.head.appendChild(s);
  }
  function withFeature(i, cb) {
    var c = Math.floor(i / IDX.chunk);
    loadChunk(c, function (data) { cb(data.f[i - c * IDX.chunk], data.s); });
  }

  // ---------------------------------------------------------------- formatting
  function fmt(x) {
    if (x === null || x === undefined) return "–";
    var a = Math.abs(x);
    if (a === 0) return "0";
    if (a >= 1000 || a < 0.01) return x.toExponential(2);
    return x.toPrecision(3);
  }
  function pct(x) { return x === 0 ? "0%" : (x * 100 < 0.01 ? (x * 100).toExponential(1) : (x * 100).toPrecision(3)) + "%"; }
  function showTok(s) { return s.replace(/\n/g, "\u21b5").replace(/\t/g, "\u21e5").replace(/\r/g, "\u240d"); }
  function badges(i) {
    var f = IDX.flag[i], out = [];
    if (f & 1) out.push(el("span", "badge dead", "dead"));
    if (f & 2) out.push(el("span", "badge dense", "dense"));
    return out;
  }

  // ---------------------------------------------------------------- the list (virtualised)
  var searchText = IDX.act.map(function (toks, i) {
    return (toks.join("\u0000") + "\u0000" + (IDX.up ? IDX.up[i].join("\u0000") : "") +
            "\u0000" + (IDX.label ? IDX.label[i] : "")).toLowerCase();
  });

  function recompute() {
    var q = $("search").value.trim().toLowerCase();
    var hideDead = $("hide-dead").checked, hideDense = $("hide-dense").checked;
    var idq = /^#?\d+$/.test(q) ? parseInt(q.replace("#", ""), 10) : -1;
    order = [];
    for (var i = 0; i < IDX.d_sae; i++) {
      if (hideDead && (IDX.flag[i] & 1)) continue;
      if (hideDense && (IDX.flag[i] & 2)) continue;
      if (q && i !== idq && searchText[i].indexOf(q) < 0) continue;
      order.push(i);
    }
    var key = $("sort").value;
    if (key !== "id") {
      var parts = key.split("-"), col = IDX[parts[0]], sign = parts[1] === "asc" ? 1 : -1;
      order.sort(function (a, b) { return sign * (col[a] - col[b]) || a - b; });
    }
    $("count").textContent = order.length + " of " + IDX.d_sae + " features";
    $("spacer").style.height = order.length * ROW_H + "px";
    $("list").scrollTop = 0;
    render();
  }

  function render() {
    var list = $("list"), spacer = $("spacer");
    var first = Math.max(0, Math.floor(list.scrollTop / ROW_H) - 5);
    var last = Math.min(order.length, Math.ceil((list.scrollTop + list.clientHeight) / ROW_H) + 5);
    spacer.textContent = "";
    for (var k = first; k < last; k++) {
      var i = order[k];
      var row = el("div", "item" + (i === selected ? " sel" : ""));
      row.style.top = k * ROW_H + "px";
      row.dataset.id = i;
      var id = el("span", "fid", "#" + i);
      row.appendChild(id);
      row.appendChild(el("span", "ffreq", pct(IDX.freq[i])));
      row.appendChild(el("span", "fmax", fmt(IDX.max[i])));
      var t = el("span", "ftoks");
      badges(i).forEach(function (b) { t.appendChild(b); t.appendChild(document.createTextNode(" ")); });
      t.appendChild(document.createTextNode(IDX.label && IDX.label[i] ? showTok(IDX.label[i])
                                                                      : IDX.act[i].map(showTok).join(" \u00b7 ")));
      if (IDX.label) t.className += " flabel";
      row.appendChild(t);
      spacer.appendChild(row);
    }
  }

  // ---------------------------------------------------------------- the card
  function example(ex, strs, fmax) {
    // ex = [row, token indices, activations, index of the example's token, value]
    var div = el("div", "ex");
    div.appendChild(el("span", "val", fmt(ex[4])));
    for (var j = 0; j < ex[1].length; j++) {
      var a = ex[2][j], s = showTok(strs[ex[1][j]]);
      var span = el("span", "tok", s);
      if (a === null) {
        span.className += " nobox";
        span.title = s + " (no activation stored)";
      } else {
        var alpha = fmax > 0 ? Math.min(1, a / fmax) : 0;
        if (a > 0) span.style.background = "rgba(255, 120, 0, " + (0.12 + 0.88 * alpha).toFixed(3) + ")";
        span.title = JSON.stringify(strs[ex[1][j]]) + ": " + fmt(a);
        span.dataset.act = a;
      }
      if (j === ex[3]) span.className += " hl";
      div.appendChild(span);
    }
    div.title = "store row " + ex[0];
    return div;
  }

  function histogram(f) {
    var start = f.h[0], counts = f.h[1];
    var lo = Math.log10(IDX.edges[0]), hi = Math.log10(IDX.edges[1]), nb = IDX.edges[2];
    var edge = function (j) { return Math.pow(10, lo + (hi - lo) * j / nb); };
    var W = 420, H = 120, pad = 18, n = counts.length;
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "hist");
    svg.setAttribute("width", W);
    svg.setAttribute("height", H + pad);
    if (!n) return svg;
    var mx = Math.max.apply(null, counts), bw = W / n;
    counts.forEach(function (c, j) {
      var r = document.createElementNS(ns, "rect");
      var h = mx ? Math.max(c ? 1 : 0, (H - 4) * c / mx) : 0;
      r.setAttribute("x", (j * bw).toFixed(2));
      r.setAttribute("width", Math.max(1, bw - 1).toFixed(2));
      r.setAttribute("y", (H - h).toFixed(2));
      r.setAttribute("height", h.toFixed(2));
      var t = document.createElementNS(ns, "title");
      t.textContent = fmt(edge(start + j)) + " \u2013 " + fmt(edge(start + j + 1)) + ": " + c;
      r.appendChild(t);
      svg.appendChild(r);
    });
    [[0, "start", edge(start)], [W, "end", edge(start + n)]].forEach(function (a) {
      var t = document.createElementNS(ns, "text");
      t.setAttribute("x", a[0]);
      t.setAttribute("y", H + 13);
      t.setAttribute("text-anchor", a[1]);
      t.textContent = fmt(a[2]);
      svg.appendChild(t);
    });
    return svg;
  }

  function logitTable(f, strs) {
    var table = el("table", "logits");
    var head = el("tr");
    head.appendChild(el("th", "pos", "promoted"));
    head.appendChild(el("th"));
    head.appendChild(el("th", "neg", "suppressed"));
    head.appendChild(el("th"));
    table.appendChild(head);
    for (var j = 0; j < Math.max(f.up.length, f.down.length); j++) {
      var tr = el("tr");
      [[f.up[j], "pos"], [f.down[j], "neg"]].forEach(function (p) {
        var td = el("td"), v = el("td", "v " + p[1]);
        if (p[0]) {
          td.appendChild(el("span", "tokname", showTok(strs[p[0][0]])));
          v.textContent = (p[0][1] > 0 ? "+" : "") + fmt(p[0][1]);
        }
        tr.appendChild(td);
        tr.appendChild(v);
      });
      table.appendChild(tr);
    }
    return table;
  }

  function labelPanel(lab) {
    // the offline label: its text, what kind of rule it is, and the counts behind it
    var p = el("div", "panel label");
    p.appendChild(el("p", "labeltext", showTok(lab.label)));
    var why = lab.kind + " rule";
    if (lab.expected) why += " \u00b7 covers " + pct(lab.expected.tpr) + " of the firings; expected false alarms in " +
                             pct(lab.expected.fpr) + " of quiet 32-token excerpts";
    p.appendChild(el("p", "hint", why));
    [["tokens", "on the token"], ["after", "after the token"]].forEach(function (side) {
      var rows = lab[side[0]];
      if (!rows || !rows.length) return;
      var table = el("table", "evidence");
      var head = el("tr");
      [side[1], "firings", "precision", "lift"].forEach(function (h) { head.appendChild(el("th", null, h)); });
      table.appendChild(head);
      rows.slice(0, 6).forEach(function (r) {
        var tr = el("tr");
        tr.appendChild(el("td", "tokname", showTok(r[1])));
        tr.appendChild(el("td", "v", String(r[2])));
        tr.appendChild(el("td", "v", pct(r[3])));
        tr.appendChild(el("td", "v", fmt(r[4]) + "\u00d7"));
        table.appendChild(tr);
      });
      p.appendChild(table);
    });
    return p;
  }

  function stat(label, value) {
    var d = el("div", "stat");
    d.appendChild(el("b", null, value));
    d.appendChild(el("span", null, label));
    return d;
  }

  function showFeature(i) {
    selected = i;
    render();
    var card = $("card");
    card.innerHTML = '<p class="hint">loading feature ' + i + "\u2026</p>";
    withFeature(i, function (f, strs) {
      if (selected !== i) return;
      card.textContent = "";
      card.dataset.feature = i;
      var h = el("h2", null, "Feature #" + i);
      badges(i).forEach(function (b) { h.appendChild(b); });
      card.appendChild(h);
      if (f.lab) card.appendChild(labelPanel(f.lab));
      var st = el("div", "stats");
      st.appendChild(stat("frequency", pct(IDX.freq[i])));
      st.appendChild(stat("fires on", f.n + " / " + IDX.n_tokens));
      st.appendChild(stat("max", fmt(IDX.max[i])));
      st.appendChild(stat("mean (all tokens)", fmt(IDX.mean[i])));
      st.appendChild(stat("mean when firing", fmt(IDX.meanf[i])));
      card.appendChild(st);
      var panels = el("div", "panels");
      var hp = el("div", "panel");
      hp.appendChild(el("h3", null, "Activation histogram (nonzero, log-spaced bins)"));
      hp.appendChild(f.n ? histogram(f) : el("p", "hint", "never fires"));
      panels.appendChild(hp);
      if (f.up) {
        var lp = el("div", "panel");
        lp.appendChild(el("h3", null, "Logit effect of the decoder direction"));
        lp.appendChild(logitTable(f, strs));
        panels.appendChild(lp);
      }
      card.appendChild(panels);
      var fmax = IDX.max[i];
      var tp = el("div", "panel top");
      tp.appendChild(el("h3", null, "Top activations"));
      if (!f.top.length) tp.appendChild(el("p", "hint", "no activations"));
      f.top.forEach(function (ex) { tp.appendChild(example(ex, strs, fmax)); });
      card.appendChild(tp);
      var bp = el("div", "panel bands");
      bp.appendChild(el("h3", null, "Samples by activation quantile"));
      f.bands.slice().reverse().forEach(function (b) {
        if (!b[2].length) return;
        var sec = el("div", "band");
        sec.appendChild(el("h4", null, "quantiles " + Math.round(b[0] * 100) + "\u2013" + Math.round(b[1] * 100) + "% of nonzero activations"));
        b[2].forEach(function (ex) { sec.appendChild(example(ex, strs, fmax)); });
        bp.appendChild(sec);
      });
      card.appendChild(bp);
    });
  }

  // ---------------------------------------------------------------- wiring
  $("title").textContent = "SAE feature browser \u2014 " + IDX.title;
  $("meta").textContent = [IDX.model, IDX.hook, IDX.architecture, IDX.d_sae + " latents",
    IDX.n_tokens + " tokens", IDX.l0 !== null && IDX.l0 !== undefined ? "L0 " + fmt(IDX.l0) : ""].filter(Boolean).join(" \u00b7 ");
  if (IDX.label) $("listhead").querySelector(".ftoks").textContent = "label";
  $("list").addEventListener("scroll", render);
  window.addEventListener("resize", render);
  $("spacer").addEventListener("click", function (e) {
    var row = e.target.closest(".item");
    if (row) location.hash = "f=" + row.dataset.id;
  });
  $("search").addEventListener("input", recompute);
  $("sort").addEventListener("change", recompute);
  $("hide-dead").addEventListener("change", recompute);
  $("hide-dense").addEventListener("change", recompute);
  function fromHash() {
    var m = /f=(\d+)/.exec(location.hash);
    if (m && +m[1] < IDX.d_sae) showFeature(+m[1]);
  }
  window.addEventListener("hashchange", fromHash);
  recompute();
  fromHash();
  document.body.dataset.ready = "1";
})();
