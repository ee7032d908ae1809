// Attribution graph page, part 3 of 4: restyling after a change, the side panel and the node card.
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

