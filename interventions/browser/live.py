"""Live feature view: a local page (127.0.0.1 only) where one types a text and sees which SAE
latents fire on each token (torch model + TorchSAE, truncated forward to the SAE's site).

    serve(model, sae, site="runs/browser/x", port=8765)       # Ctrl-C stops it

GET /            the live page          POST /api/encode  {"text": "..."} -> per-token top latents
GET /site/...    the static browser (if `site` is given), so latents link to their cards
Bounded: at most MAX_TOKENS tokens and MAX_BODY bytes per request. One thread per connection,
each with a CONNECTION_TIMEOUT on its socket, so an idle or slow client holds up nobody; the
model runs one encode at a time (a lock), the page and the static files are served beside it.
"""

from __future__ import annotations

import errno
import json
import mimetypes
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch

MAX_TOKENS = 256
MAX_BODY = 64 * 1024
CONNECTION_TIMEOUT = 10.0
"""Seconds a connection may sit idle (or send its request slowly) before it is closed."""


@torch.no_grad()
def encode_text(model, sae, text: str, top: int = 8, max_tokens: int = MAX_TOKENS) -> dict:
    """Per token: its string and the `top` latents with the largest activations there."""
    hook = sae.check_fits(model, strict_model=False)
    tokens = model.to_tokens(text)[:, :max_tokens]
    site = model.site(hook)
    stop = None                                     # run only the blocks the site needs
    if site.layer is not None:
        stop = site.layer if hook.endswith("hook_resid_pre") else site.layer + 1
        stop = stop if stop <= model.n_layers else None
    _, cache = model.run_with_cache(tokens, names=[hook], stop_at_layer=stop)
    f = sae.encode(cache[hook][0].float().to(sae.W_enc.device))          # [pos, d_sae]
    vals, idx = f.topk(min(top, f.shape[-1]), dim=-1)
    strs = model.to_str_tokens(tokens[0])
    bos = 1 if model.bos_token_id is not None and int(tokens[0, 0]) == model.bos_token_id else 0
    out = []
    for p, s in enumerate(strs):
        feats = [[int(i), round(float(v), 4)] for v, i in zip(vals[p], idx[p]) if v > 0]
        out.append({"token": s, "bos": p < bos, "features": feats, "l0": int((f[p] > 0).sum())})
    return {"hook": hook, "n_tokens": len(strs), "truncated": bool(model.to_tokens(text).shape[1] > max_tokens),
            "tokens": out}


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Live SAE features</title>
<style>
body{font:14px/1.5 system-ui,sans-serif;margin:24px;color:#1d2330;max-width:1100px}
textarea{width:100%;height:90px;font:14px ui-monospace,monospace;padding:6px}
#toks span{font-family:ui-monospace,monospace;white-space:pre;cursor:pointer;border-radius:2px;padding:1px 0}
#toks span.sel{outline:2px solid #d35400}
table{border-collapse:collapse;margin-top:12px}td{padding:2px 8px}a{color:#2456c7}
.muted{color:#889}
</style></head><body>
<h2>Live SAE features <span class="muted" id="hook"></span></h2>
<textarea id="text">The quick brown fox jumps over the lazy dog.</textarea>
<p><button id="go">Encode</button>
<span class="muted">click a token to list its latents; colour = L0-normalised strength of its top latent</span></p>
<div id="toks"></div><div id="feats"></div>
<script>
var SITE = __SITE__;
var data = null;
function esc(s){return s.replace(/\\n/g,"\\u21b5");}
function pick(p){
  document.querySelectorAll("#toks span").forEach(function(e,i){e.className = i===p ? "sel" : "";});
  var t = data.tokens[p], h = "<table><tr><th>latent</th><th>activation</th></tr>";
  t.features.forEach(function(f){
    var name = SITE ? '<a href="/site/index.html#f='+f[0]+'" target="_blank">#'+f[0]+'</a>' : "#"+f[0];
    h += "<tr><td>"+name+"</td><td>"+f[1].toFixed(3)+"</td></tr>";
  });
  document.getElementById("feats").innerHTML = h + "</table><p class='muted'>"+t.l0+" latents active</p>";
}
document.getElementById("go").onclick = function(){
  fetch("/api/encode",{method:"POST",headers:{"Content-Type":"application/json"},
    body:JSON.stringify({text:document.getElementById("text").value})})
  .then(function(r){return r.json();}).then(function(d){
    if(d.error){document.getElementById("toks").textContent = d.error; return;}
    data = d; document.getElementById("hook").textContent = d.hook + (d.truncated ? " (truncated)" : "");
    var mx = 0; d.tokens.forEach(function(t){ if(!t.bos && t.features.length) mx = Math.max(mx, t.features[0][1]); });
    var box = document.getElementById("toks"); box.textContent = "";
    d.tokens.forEach(function(t,i){
      var s = document.createElement("span"); s.textContent = esc(t.token);
      var a = t.features.length && mx > 0 && !t.bos ? t.features[0][1]/mx : 0;
      s.style.background = "rgba(255,120,0,"+a.toFixed(3)+")";
      s.title = t.features.slice(0,3).map(function(f){return "#"+f[0]+": "+f[1].toFixed(2);}).join(", ");
      s.onclick = function(){pick(i);}; box.appendChild(s);
    });
  });
};
</script></body></html>"""


class LiveServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's default of 5 resets a burst of connections

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # the client went away: nothing to report
        super().handle_error(request, client_address)


def check_port(port: int) -> None:
    """One clear error before any work when 127.0.0.1:port cannot be served."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            why = "is already in use" if e.errno == errno.EADDRINUSE else f"cannot be bound ({e.strerror})"
            raise ValueError(f"--port {port} {why}; pass another --port (or stop what is listening there)") from None


def make_server(model, sae, site: str | Path | None = None, port: int = 8765, top: int = 8,
                timeout: float = CONNECTION_TIMEOUT) -> LiveServer:
    """A threaded HTTP server bound to 127.0.0.1 (port 0: any free port); call serve_forever() on it."""
    site_dir = Path(site).resolve() if site else None
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: an idle client keeps its connection (and its thread) only
        # until `timeout`

        def setup(self):
            self.timeout = timeout
            super().setup()

        def log_message(self, *args):  # quiet
            pass

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, code: int, obj) -> None:
            self._send(code, json.dumps(obj).encode(), "application/json")

        def do_GET(self):
            path = self.path.split("?")[0].split("#")[0]
            if path in ("/", "/index.html"):
                page = PAGE.replace("__SITE__", "true" if site_dir else "false")
                return self._send(200, page.encode(), "text/html; charset=utf-8")
            if site_dir and path.startswith("/site/"):
                target = (site_dir / path[len("/site/"):]).resolve()
                if site_dir in target.parents and target.is_file():
                    ctype = mimetypes.guess_type(str(target))[0] or "application/octet-stream"
                    return self._send(200, target.read_bytes(), ctype)
            self._json(404, {"error": "not found"})

        def do_POST(self):
            if self.path != "/api/encode":
                return self._json(404, {"error": "not found"})
            length = self.headers.get("Content-Length") or "0"
            if not length.isdigit():
                self.close_connection = True  # the body's end is unknown: the connection cannot be reused
                return self._json(400, {"error": f"Content-Length {length!r} is not a byte count"})
            if int(length) > MAX_BODY:
                self.close_connection = True
                return self._json(413, {"error": f"request larger than {MAX_BODY} bytes"})
            try:
                body = json.loads(self.rfile.read(int(length)) or b"{}")
            except (ValueError, UnicodeDecodeError) as e:
                return self._json(400, {"error": f"the body is not JSON ({e})"})
            text = body.get("text") if isinstance(body, dict) else None
            if not isinstance(text, str) or not text.strip():
                return self._json(400, {"error": "send a JSON object {\"text\": \"...\"} with a non-empty text"})
            try:
                with lock:
                    res = encode_text(model, sae, text, top=top)
            except (ValueError, KeyError) as e:
                return self._json(400, {"error": str(e)})
            self._json(200, res)

    return LiveServer(("127.0.0.1", port), Handler)


def serve(model, sae, site: str | Path | None = None, port: int = 8765, top: int = 8) -> None:
    server = make_server(model, sae, site, port, top)
    host, p = server.server_address[:2]
    print(f"live feature page on http://{host}:{p}/  (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.server_close()
