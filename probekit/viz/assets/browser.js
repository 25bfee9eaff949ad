(function () {
"use strict";
const D = JSON.parse(document.getElementById("pk-data").textContent);
const ROW = 18, MID = 278, LINE_BUDGET = 8000;
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#843c39", "#7b4173", "#3182bd"];
const $ = (id) => document.getElementById(id);
const st = {level: D.level, layer: D.initial.layer, head: D.initial.head, focus: null, pinned: false};
const cache = new Map();
const api = {state: st, drawn: 0, checksum: 0, draws: 0, errors: [], ready: false};
window.probekitView = api;
let marked = [];

function colour(h, a) {
  if (D.H <= PALETTE.length) return a === undefined ? PALETTE[h] : PALETTE[h] + Math.round(a * 255).toString(16).padStart(2, "0");
  return "hsla(" + Math.round(h * 360 / D.H) + ",70%,42%," + (a === undefined ? 1 : a) + ")";
}
function bytes(b64) {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
async function inflate(b64) {
  // zlib data (Python's zlib.compress) through the browser's own DecompressionStream: no library, no network.
  const stream = new Blob([bytes(b64)]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
async function prepare(level) {
  const v = D.views[level];
  if (!v.buf) { v.buf = await inflate(v.heads); v.px = await inflate(v.thumbs); }
}
function view() { return D.views[st.level]; }
let firstBytes = null;
function headBytes(l, h) {
  // Every head from the inflated block; before that, the first view's head from its uncompressed copy.
  const v = view();
  if (v.buf) return v.buf.subarray(v.offsets[l * D.H + h], v.offsets[l * D.H + h + 1]);
  if (D.first && st.level === D.level && l === D.initial.layer && h === D.initial.head) {
    if (!firstBytes) firstBytes = bytes(D.first);
    return firstBytes;
  }
  return null;
}
function available(heads) { return heads.every((h) => headBytes(st.layer, h) !== null); }
function headMap(l, h) {
  const key = st.level + ":" + l + ":" + h;
  let m = cache.get(key);
  if (m) return m;
  const v = view(), U = v.units.length, b = headBytes(l, h);
  const ptr = new Uint32Array(U + 1);
  for (let i = 0; i < U; i++) ptr[i + 1] = ptr[i] + (b[2 * i] | (b[2 * i + 1] << 8));
  const nnz = ptr[U], c0 = 2 * U, v0 = c0 + 2 * nnz, col = new Uint16Array(nnz);
  for (let k = 0; k < nnz; k++) col[k] = b[c0 + 2 * k] | (b[c0 + 2 * k + 1] << 8);
  m = {ptr: ptr, col: col, val: b.subarray(v0, v0 + nnz)};
  cache.set(key, m);
  return m;
}
function fmt(x) {
  // one number format for every statistic: three decimals
  if (x === null || x === undefined) return "\u2013";
  return x.toFixed(3);
}

const scroll = $("pk-scroll"), canvas = $("pk-canvas"), ctx = canvas.getContext("2d");
function sizeCanvas() {
  const dpr = window.devicePixelRatio || 1, h = scroll.clientHeight;
  canvas.width = Math.round(MID * dpr); canvas.height = Math.round(h * dpr);
  canvas.style.width = MID + "px"; canvas.style.height = h + "px";
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
}

function draw() {
  // Lines crossing the visible strip only; beyond LINE_BUDGET of them, the faintest are left out (a software
  // canvas strokes ~50k lines a second; faint lines in an overlay are noise anyway). A hovered token shows all.
  const U = view().units.length, top = scroll.scrollTop, hgt = scroll.clientHeight;
  ctx.clearRect(0, 0, MID, hgt);
  ctx.lineWidth = 1;
  const heads = st.head < 0 ? Array.from({length: D.H}, (_, h) => h) : [st.head];
  if (!available(heads)) return;   // not inflated yet: drawn as soon as it is
  const f = st.focus, hist = new Uint32Array(256);
  const i0 = f && f.side === "L" ? f.i : 0, i1 = f && f.side === "L" ? f.i + 1 : U;
  function each(fn) {
    for (const h of heads) {
      const m = headMap(st.layer, h);
      for (let i = i0; i < i1; i++) {
        const yi = i * ROW + ROW / 2 - top;
        for (let k = m.ptr[i]; k < m.ptr[i + 1]; k++) {
          const j = m.col[k];
          if (f && f.side === "R" && j !== f.i) continue;
          const yj = j * ROW + ROW / 2 - top;
          if ((yi < 0 && yj < 0) || (yi > hgt && yj > hgt)) continue;
          fn(h, i, j, yi, yj, m.val[k]);
        }
      }
    }
  }
  let total = 0;
  each((h, i, j, yi, yj, v) => { hist[v]++; total++; });
  let vmin = 1;
  if (!f && total > LINE_BUDGET) {
    let kept = 0, v = 255;
    while (v >= 1 && kept + hist[v] <= LINE_BUDGET) { kept += hist[v]; v--; }
    vmin = Math.min(255, v + 1);
  }
  let n = 0, sum = 0, last = -1;
  each((h, i, j, yi, yj, v) => {
    if (v < vmin) return;
    if (h !== last) { ctx.strokeStyle = colour(h); last = h; }
    ctx.globalAlpha = v / 255;
    ctx.beginPath(); ctx.moveTo(0, yi); ctx.lineTo(MID, yj); ctx.stroke();
    n++; sum = (sum + (((h * U + i) * U + j) + 1) * v) % 2147483647;
  });
  ctx.globalAlpha = 1;
  api.drawn = n; api.inView = total; api.checksum = sum; api.draws++;
  canvas.dataset.lines = String(n);
  canvas.dataset.key = st.level + ":" + (st.layer + D.layerOffset) + ":" + (st.head < 0 ? "all" : st.head + 1);
  $("pk-status").textContent = n < total ? "Showing the " + n.toLocaleString("en") + " strongest of " +
    total.toLocaleString("en") + " lines in view (weight \u2265 " + (vmin / 255).toFixed(3) +
    "); hover over a token to see all of its lines." : "";
}
let pending = false;
function redrawSoon() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; draw(); });
}

function buildColumns() {
  const v = view(), U = v.units.length;
  $("pk-rows").style.height = (U * ROW) + "px";
  scroll.style.setProperty("--pk-h", (U * ROW + 2) + "px");
  for (const id of ["pk-left", "pk-right"]) {
    const col = $(id), frag = document.createDocumentFragment();
    col.textContent = "";
    for (let i = 0; i < U; i++) {
      const d = document.createElement("div");
      d.className = v.special[i] ? "pk-tok pk-special" : "pk-tok";
      d.style.top = (i * ROW) + "px";
      d.textContent = v.units[i];
      d.title = v.units[i];
      d.dataset.i = String(i);
      frag.appendChild(d);
    }
    col.appendChild(frag);
  }
  marked = [];
  sizeCanvas();
}

function clearMarks() { for (const e of marked) { e.classList.remove("pk-focus"); e.style.background = ""; } marked = []; }
function setFocus(f) {
  st.focus = f;
  clearMarks();
  const info = $("pk-info"), v = view();
  if (!f) { info.textContent = "Hover over a token to isolate its lines (left: attention from it, right: attention to it); click to pin."; draw(); return; }
  const mine = $(f.side === "L" ? "pk-left" : "pk-right").children[f.i];
  mine.classList.add("pk-focus"); marked.push(mine);
  const u = v.units[f.i];
  if (st.head < 0 || !available([st.head])) {
    info.textContent = (f.side === "L" ? "from " : "to ") + "\u201c" + u + "\u201d, all heads of layer " + (st.layer + D.layerOffset);
  } else {
    const m = headMap(st.layer, st.head), pairs = [];
    for (let i = 0; i < v.units.length; i++) {
      for (let k = m.ptr[i]; k < m.ptr[i + 1]; k++) {
        if (f.side === "L" && i === f.i) pairs.push([m.col[k], m.val[k]]);
        else if (f.side === "R" && m.col[k] === f.i) pairs.push([i, m.val[k]]);
      }
    }
    pairs.sort((a, b) => b[1] - a[1]);
    const other = $(f.side === "L" ? "pk-right" : "pk-left").children;
    for (const [j, w] of pairs) {
      const e = other[j];
      e.style.background = colour(st.head, Math.max(16, w) / 255);
      marked.push(e);
    }
    info.textContent = (f.side === "L" ? "\u201c" + u + "\u201d attends to: " : "attending to \u201c" + u + "\u201d: ") +
      pairs.slice(0, 6).map(([j, w]) => "\u201c" + v.units[j] + "\u201d " + (w / 255).toFixed(2)).join(", ");
  }
  draw();
}
function hover(side) {
  return (e) => {
    if (st.pinned) return;
    const t = e.target.closest(".pk-tok");
    if (t) setFocus({side: side, i: +t.dataset.i});
  };
}
for (const [id, side] of [["pk-left", "L"], ["pk-right", "R"]]) {
  const col = $(id);
  col.addEventListener("mouseover", hover(side));
  col.addEventListener("mouseleave", () => { if (!st.pinned) setFocus(null); });
  col.addEventListener("click", (e) => {
    const t = e.target.closest(".pk-tok");
    if (!t) return;
    st.pinned = !st.pinned || !(st.focus && st.focus.side === side && st.focus.i === +t.dataset.i);
    setFocus({side: side, i: +t.dataset.i});
  });
}

function select(layer, head) {
  st.layer = layer; st.head = head; st.pinned = false;
  $("pk-layer").value = String(layer); $("pk-head").value = String(head);
  const sw = $("pk-legend").children;
  for (let h = 0; h < sw.length; h++) sw[h].classList.toggle("pk-on", h === head);
  for (const c of $("pk-grid").children) c.classList.toggle("pk-on", +c.dataset.l === layer && +c.dataset.h === head);
  setFocus(null);
}
function option(sel, value, text) {
  const o = document.createElement("option");
  o.value = String(value); o.textContent = text; sel.appendChild(o);
}
function buildControls() {
  const ls = $("pk-layer"), hs = $("pk-head"), lg = $("pk-legend");
  for (let l = 0; l < D.L; l++) option(ls, l, String(l + D.layerOffset));
  option(hs, -1, "all (overlaid)");
  for (let h = 0; h < D.H; h++) {
    option(hs, h, String(h + 1));
    const s = document.createElement("span");
    s.style.background = colour(h); s.title = "head " + (h + 1);
    s.addEventListener("click", () => select(st.layer, st.head === h ? -1 : h));
    lg.appendChild(s);
  }
  ls.addEventListener("change", () => select(+ls.value, st.head));
  hs.addEventListener("change", () => select(st.layer, +hs.value));
  const levels = Object.keys(D.views);
  if (levels.length > 1) {
    $("pk-levels").hidden = false;
    for (const r of document.getElementsByName("pk-level")) {
      r.checked = r.value === st.level;
      r.addEventListener("change", () => { if (r.checked) setLevel(r.value).catch(fail); });
    }
  }
}
async function setLevel(level) {
  await prepare(level);
  st.level = level; st.pinned = false; st.focus = null;
  buildColumns(); buildGallery(); select(st.layer, st.head);
  const n = D.storage.notes[level];
  $("pk-dropped").textContent = "For this input the largest weight dropped by the cap is " + n.droppedMax.toFixed(3) +
    " and on average " + n.massDropped.toFixed(4) + " of each row's attention is not stored.";
}

let cells = [], desc = true;
function buildGallery() {
  const grid = $("pk-grid"), v = view(), B = v.thumbB, px = v.px, S = D.stats;
  grid.textContent = "";
  cells = [];
  for (let l = 0; l < D.L; l++) for (let h = 0; h < D.H; h++) {
    const cell = document.createElement("div"), idx = l * D.H + h;
    cell.className = "pk-cell"; cell.dataset.l = String(l); cell.dataset.h = String(h);
    const b = document.createElement("b");
    b.textContent = (l + D.layerOffset) + "-" + (h + 1);
    cell.appendChild(b);
    const c = document.createElement("canvas");
    c.width = B; c.height = B;
    const img = c.getContext("2d").createImageData(B, B), off = idx * B * B;
    for (let k = 0; k < B * B; k++) {
      const t = px[off + k] / 255;
      img.data[4 * k] = 247 - t * 239; img.data[4 * k + 1] = 251 - t * 203;
      img.data[4 * k + 2] = 255 - t * 148; img.data[4 * k + 3] = 255;
    }
    c.getContext("2d").putImageData(img, 0, 0);
    cell.appendChild(c);
    if (S) {
      const tb = document.createElement("table");
      S.names.forEach((name, s) => {
        const tr = document.createElement("tr"), a = document.createElement("td"), z = document.createElement("td");
        a.textContent = name; a.title = name; z.textContent = fmt(S.values[s][idx]); z.className = "pk-v";
        tr.dataset.s = String(s); tr.appendChild(a); tr.appendChild(z); tb.appendChild(tr);
      });
      cell.appendChild(tb);
    }
    cell.title = "layer " + (l + D.layerOffset) + ", head " + (h + 1) + ": click to show";
    cell.addEventListener("click", () => { select(l, h); $("pk-view").scrollIntoView({block: "nearest"}); });
    cells.push(cell);
  }
  sortGallery();
}
function sortGallery() {
  const key = +$("pk-sort").value, S = D.stats, grid = $("pk-grid");
  const val = (c) => (key < 0 || !S) ? null : S.values[key][+c.dataset.l * D.H + +c.dataset.h];
  const pos = (c) => +c.dataset.l * D.H + +c.dataset.h;
  cells.sort((a, b) => {
    const x = val(a), y = val(b);
    if (key < 0 || !S) return desc ? pos(b) - pos(a) : pos(a) - pos(b);
    if (x === null && y === null) return pos(a) - pos(b);
    if (x === null) return 1;
    if (y === null) return -1;
    return desc ? y - x || pos(a) - pos(b) : x - y || pos(a) - pos(b);
  });
  for (const c of cells) {
    grid.appendChild(c);
    for (const tr of c.querySelectorAll("tr")) tr.classList.toggle("pk-key", +tr.dataset.s === key);
  }
}
function buildSortBar() {
  const sel = $("pk-sort"), S = D.stats;
  option(sel, -1, "layer, head");
  if (S) S.names.forEach((name, s) => option(sel, s, name));
  sel.value = S && S.names.length ? String(S.sort || 0) : "-1";
  desc = !(sel.value === "-1");
  const btn = $("pk-dir");
  btn.textContent = desc ? "descending" : "ascending";
  sel.addEventListener("change", () => { desc = sel.value !== "-1"; btn.textContent = desc ? "descending" : "ascending"; sortGallery(); });
  btn.addEventListener("click", () => { desc = !desc; btn.textContent = desc ? "descending" : "ascending"; sortGallery(); });
  $("pk-source").textContent = S ? "Statistics: " + (D.statsSource || "given table") : "No statistics given.";
}

window.addEventListener("error", (e) => api.errors.push(String(e.message)));
function fail(e) {
  api.errors.push(String(e));
  $("pk-info").textContent = "This page could not start: " + e +
    (typeof DecompressionStream === "undefined" ? " (it needs a browser with DecompressionStream: Chrome 80+, " +
     "Firefox 113+, Safari 16.4+)" : "");
  console.error(e);
}
buildControls();
buildSortBar();
if (D.first) {
  // The first view now, synchronously (its head is stored uncompressed): a screenshot right after load shows it.
  try {
    buildColumns(); select(st.layer, st.head);
    api.firstView = true; document.body.dataset.firstView = "1";
  } catch (e) { fail(e); }
}
scroll.addEventListener("scroll", redrawSoon, {passive: true});
window.addEventListener("resize", () => { sizeCanvas(); redrawSoon(); });
Promise.all(Object.keys(D.views).map(prepare)).then(() => setLevel(st.level)).then(() => { api.ready = true; document.body.dataset.ready = "1"; }, fail);
})();
