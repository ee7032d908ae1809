// Attribution graph page, part 1 of 4: helpers. page.py joins graph_kit, graph_layout, graph_panels
// and graph_actions (in that order) into one function scope, inlined with graph.css and the data
// (window.__graph); nothing is fetched.
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
