"""The status page's style sheet and its one small script, inline in every page (no external
fonts, scripts or images), with the hashes its Content-Security-Policy allows them by.

The script only enhances: it shows times in the reader's time zone (UTC stays in the
tooltip) and swaps in a fresh copy of the page when the server says something changed
(server-sent events). Without it the page is complete and a reload shows the news.
"""

from __future__ import annotations

import base64
import hashlib

CSS = """
:root{--fg:#1f2328;--muted:#4b5563;--bg:#ffffff;--line:#d0d7de;--card:#f6f8fa;
--bad:#b3261e;--warn:#8a4b00;--good:#1a6b32;--info:#0b5cad;--grey:#4b5563;--link:#0a55a8}
*{box-sizing:border-box}
html{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
font-size:16px;line-height:1.5;color:var(--fg);background:var(--bg)}
body{margin:0}
a{color:var(--link)}
a:focus-visible,summary:focus-visible{outline:3px solid var(--info);outline-offset:2px}
.skip{position:absolute;left:-999px;top:0;background:var(--bg);padding:.5rem}
.skip:focus{left:.5rem}
header,main,footer{max-width:70rem;margin:0 auto;padding:0 1rem}
header{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:baseline;
border-bottom:1px solid var(--line);padding-top:.75rem;padding-bottom:.5rem}
.brand{margin:0;font-weight:700}
nav ol{list-style:none;display:flex;flex-wrap:wrap;gap:.25rem;margin:0;padding:0}
nav li+li::before{content:"/";margin-right:.25rem;color:var(--muted)}
h1{font-size:1.5rem;margin:1rem 0 .25rem}
h2{font-size:1.2rem;margin:1.5rem 0 .5rem}
h3{font-size:1rem;margin:1rem 0 .25rem}
.updated,footer{color:var(--muted);font-size:.9rem}
.verdict{display:flex;gap:.5rem;align-items:flex-start}
.verdict .icon{margin-top:.2rem}
ul.apps{list-style:none;margin:0;padding:0;display:grid;gap:.5rem}
li.app{display:grid;grid-template-columns:minmax(10rem,1.2fr) minmax(12rem,1.5fr) minmax(12rem,2fr);
gap:.25rem 1rem;padding:.6rem .75rem;background:var(--card);border:1px solid var(--line);
border-left:6px solid var(--grey);border-radius:6px}
li.app .name{font-weight:700;overflow-wrap:anywhere}
li.app .where{display:block;color:var(--muted);font-size:.85rem;font-weight:400}
.state{display:flex;gap:.4rem;align-items:flex-start;font-weight:600}
.deploy{color:var(--fg);font-size:.95rem}
li.status-failing,li.status-degraded{border-left-color:var(--bad)}
li.status-drifted,li.status-pending{border-left-color:var(--warn)}
li.status-progressing{border-left-color:var(--info)}
li.status-ok{border-left-color:var(--good)}
.icon{flex:none;width:1.1rem;height:1.1rem}
.icon-bad{fill:var(--bad)}.icon-warn{fill:var(--warn)}.icon-good{fill:var(--good)}
.icon-info{fill:var(--info)}.icon-grey{fill:var(--grey)}
.icon .fg{fill:#ffffff}
.s-failing,.s-degraded{color:var(--bad)}.s-drifted,.s-pending{color:var(--warn)}
.s-ok{color:var(--good)}.s-progressing{color:var(--info)}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:.5rem 0}
dl.facts dt{font-weight:600}
dl.facts dd{margin:0;overflow-wrap:anywhere}
.message{white-space:pre-wrap}
figure{margin:0}
svg.timeline{width:100%;height:auto;max-height:10rem;background:var(--card);
border:1px solid var(--line);border-radius:6px}
svg.timeline .axis,svg.timeline .tick{stroke:var(--muted);stroke-width:1}
svg.timeline .tick-label,svg.timeline .empty{fill:var(--muted);font-size:12px}
.cat-deploy{fill:var(--info)}.cat-failure{fill:var(--bad)}.cat-drift{fill:var(--warn)}
.cat-rollback{fill:#6b3fa0}.cat-recovery{fill:var(--good)}.cat-mute,.cat-ack{fill:var(--grey)}
.cat-other{fill:var(--muted)}
.stroke{fill:none;stroke:var(--good);stroke-width:3}
g.span rect{opacity:.35}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:.25rem 1rem;margin:.5rem 0;padding:0;
font-size:.9rem}
.legend li{display:flex;gap:.3rem;align-items:center}
ol.events{margin:.5rem 0;padding-left:1.25rem}
ol.events li{margin:.15rem 0}
code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:.9em;overflow-wrap:anywhere}
@media (max-width:40rem){
li.app{grid-template-columns:1fr}
dl.facts{grid-template-columns:1fr}
dl.facts dd{margin-bottom:.4rem}
h1{font-size:1.3rem}
}
"""

SCRIPT = """
(function(){
var body=document.body;
function localize(root){
 var now=new Date(body.getAttribute('data-now')||Date.now());
 root.querySelectorAll('time[datetime]').forEach(function(t){
  var d=new Date(t.getAttribute('datetime'));
  if(isNaN(d.getTime()))return;
  var same=d.toDateString()===now.toDateString();
  var o=same?{hour:'2-digit',minute:'2-digit'}:
   {year:'numeric',month:'short',day:'numeric',hour:'2-digit',minute:'2-digit'};
  t.textContent=d.toLocaleString(undefined,o);
  t.setAttribute('data-local','1');
 });
}
function refresh(){
 fetch(location.href,{headers:{'Accept':'text/html'},cache:'no-store',credentials:'same-origin'})
 .then(function(r){return r.ok?r.text():null;})
 .then(function(html){
  if(!html)return;
  var doc=new DOMParser().parseFromString(html,'text/html');
  var fresh=doc.getElementById('main'),old=document.getElementById('main');
  if(!fresh||!old)return;
  old.replaceWith(fresh);
  body.setAttribute('data-now',doc.body.getAttribute('data-now')||'');
  body.setAttribute('data-version',doc.body.getAttribute('data-version')||'');
  document.title=doc.title;
  localize(fresh);
 }).catch(function(){});
}
localize(document);
var live=body.getAttribute('data-live');
if(live&&window.EventSource){
 var note=document.getElementById('live-note');
 if(note)note.hidden=false;
 var es=new EventSource(live);
 es.onmessage=function(e){
  if(e.data&&e.data!==body.getAttribute('data-version'))refresh();
 };
}
})();
"""


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


CSP = (
    "default-src 'none'; "
    f"style-src {_hash(CSS)}; "
    f"script-src {_hash(SCRIPT)}; "
    "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
"""The page's Content-Security-Policy: only its own inline style and script, and requests
to driftbot itself."""
