// Attribution graph page, part 4 of 4: actions. Annotations (pins, supernodes) are saved as a
// download and loaded back through a file input (FileReader).
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
