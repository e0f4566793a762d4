// layerwise serve: the page. Plain JavaScript, no build step. Three views over the JSON API
// (documented in the README and in serve/app.py): Draw, Step through backprop, Train.
"use strict";

const $ = (id) => document.getElementById(id);
// The page's words, in its language: the catalogue the server put into the page (serve/i18n.py).
const i18n = JSON.parse($("i18n").textContent);
function t(key, params = {}) {
  const text = i18n.strings[key];
  if (text === undefined) { console.error(`layerwise: no string ${key}`); return key; }
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}
const state = { model: null, graphs: [], session: null, picked: new Set(), chosenClass: null, lastImage: null };
// Tests and curious users read what the page sent and got back here.
window.layerwise = state;

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let data = null;
  try { data = await response.json(); } catch (e) { data = { error: `${response.status} ${response.statusText}` }; }
  if (!response.ok) throw new Error(data.error || `${response.status}`);
  return data;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

// -- colours ----------------------------------------------------------------------------------
// Sequential (activations, images): black -> purple -> orange -> light yellow.
const SEQ = [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]];
function seqColour(frac) {
  frac = Math.max(0, Math.min(1, Number.isFinite(frac) ? frac : 0));
  const x = frac * (SEQ.length - 1), i = Math.min(Math.floor(x), SEQ.length - 2), f = x - i;
  return SEQ[i].map((c, k) => Math.round(c + f * (SEQ[i + 1][k] - c)));
}
// Diverging (gradients): blue for negative, white at 0, red for positive.
function divColour(frac) {
  frac = Math.max(-1, Math.min(1, Number.isFinite(frac) ? frac : 0));
  return frac >= 0 ? [255, Math.round(255 * (1 - frac)), Math.round(255 * (1 - frac))]
    : [Math.round(255 * (1 + frac)), Math.round(255 * (1 + frac)), 255];
}

// Draw rows × cols values on a canvas, one cell per value. Options: diverging (symmetric around 0),
// grey (an image in [0, 1]), mask (cells hatched), cell (pixels per cell).
function drawGrid(canvas, values, rows, cols, options = {}) {
  const cell = options.cell || Math.max(1, Math.floor(Math.min(8, 240 / Math.max(rows, cols))));
  canvas.width = cols * cell;
  canvas.height = rows * cell;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(cols, rows);
  let lo = Infinity, hi = -Infinity;
  for (const v of values) if (v != null && Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const span = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
  for (let i = 0; i < rows * cols; i++) {
    const v = values[i];
    let rgb;
    if (options.grey) { const g = Math.round(255 * Math.max(0, Math.min(1, v))); rgb = [g, g, g]; }
    else if (options.diverging) rgb = divColour(v / span);
    else rgb = seqColour(hi > lo ? (v - lo) / (hi - lo) : 0.5);
    image.data.set([...rgb, 255], 4 * i);
  }
  // Scale up without smoothing: one value, one crisp cell.
  const small = document.createElement("canvas");
  small.width = cols; small.height = rows;
  small.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, 0, 0, cols * cell, rows * cell);
  if (options.mask) {
    ctx.strokeStyle = "rgba(160,160,160,0.9)";
    ctx.lineWidth = 1;
    for (let i = 0; i < rows * cols; i++) {
      if (!options.mask[i]) continue;
      const x = (i % cols) * cell, y = Math.floor(i / cols) * cell;
      ctx.fillStyle = "#2a2a2a";
      ctx.fillRect(x, y, cell, cell);
      ctx.beginPath();
      ctx.moveTo(x, y + cell); ctx.lineTo(x + cell, y);
      ctx.stroke();
    }
  }
  return canvas;
}

// The input gradient over the digit: the digit in grey, each pixel tinted red (raises the
// class's score) or blue (lowers it), as strongly as its gradient is large.
function drawOverlay(canvas, image, gradient, cell) {
  const h = image.length, w = image[0].length;
  drawGrid(canvas, image.flat(), h, w, { grey: true, cell });
  const ctx = canvas.getContext("2d");
  let span = 0;
  for (const row of gradient) for (const g of row) if (g != null) span = Math.max(span, Math.abs(g));
  if (!span) return canvas;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const g = gradient[y][x] || 0;
      ctx.fillStyle = g > 0 ? `rgba(230, 30, 30, ${(0.85 * g / span).toFixed(3)})`
        : `rgba(40, 90, 255, ${(-0.85 * g / span).toFixed(3)})`;
      ctx.fillRect(x * cell, y * cell, cell, cell);
    }
  }
  return canvas;
}

// -- tabs -------------------------------------------------------------------------------------
function showView(name) {
  for (const tab of document.querySelectorAll("nav button")) {
    const on = tab.dataset.view === name;
    tab.setAttribute("aria-selected", String(on));
    $(`view-${tab.dataset.view}`).hidden = !on;
  }
}
for (const tab of document.querySelectorAll("nav button")) tab.addEventListener("click", () => showView(tab.dataset.view));

// -- Draw -------------------------------------------------------------------------------------
const pad = $("pad");
const padCtx = pad.getContext("2d", { willReadFrequently: true });
let drawing = false, last = null, inFlight = false, again = false, hasInk = false;

function clearPad() {
  padCtx.fillStyle = "#000";
  padCtx.fillRect(0, 0, pad.width, pad.height);
  hasInk = false;
  state.lastImage = null;
  state.chosenClass = null; // a new digit is explained for its own top class
  $("top").replaceChildren();
  $("top").dataset.topClass = "";
  $("activations").replaceChildren();
  $("predict-time").textContent = "";
  for (const id of ["seen", "saliency"]) $(id).getContext("2d").clearRect(0, 0, 140, 140);
}

function padPoint(event) {
  const rect = pad.getBoundingClientRect();
  return [(event.clientX - rect.left) * pad.width / rect.width, (event.clientY - rect.top) * pad.height / rect.height];
}

function strokeTo(point) {
  padCtx.strokeStyle = "#fff";
  padCtx.lineCap = padCtx.lineJoin = "round";
  padCtx.lineWidth = pad.width / 12;
  padCtx.beginPath();
  padCtx.moveTo(...(last || point));
  padCtx.lineTo(...point);
  padCtx.stroke();
  last = point;
  hasInk = true;
}

pad.addEventListener("pointerdown", (e) => {
  drawing = true; last = null; pad.setPointerCapture(e.pointerId); strokeTo(padPoint(e)); requestPredict();
});
pad.addEventListener("pointermove", (e) => { if (drawing) { strokeTo(padPoint(e)); requestPredict(); } });
for (const kind of ["pointerup", "pointercancel"]) {
  pad.addEventListener(kind, () => { if (drawing) { drawing = false; last = null; requestPredict(); } });
}
$("clear").addEventListener("click", clearPad);

// The drawing as the model's input: the ink's bounding box scaled into the image (the whole
// image for the 8×8 digits, whose digits fill their frame; a 20×20 box centred by mass for
// MNIST-sized images, as MNIST was made), averaged over each pixel's area.
function preprocess(height, width) {
  const { data } = padCtx.getImageData(0, 0, pad.width, pad.height);
  let x0 = pad.width, y0 = pad.height, x1 = -1, y1 = -1;
  for (let y = 0; y < pad.height; y++) {
    for (let x = 0; x < pad.width; x++) {
      if (data[4 * (y * pad.width + x)] > 25) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
    }
  }
  if (x1 < 0) return null;
  const small = height < 16;
  const bw = x1 - x0 + 1, bh = y1 - y0 + 1;
  // The 8×8 digits fill their frame's height, while their ink stays off the outer columns
  // (column 0 has ink in 0.07 % of them): the drawing gets the height and at most width − 2.
  const scale = small ? Math.min(height / bh, (width - 2) / bw) : Math.min((20 / 28) * width / bw, (20 / 28) * height / bh);
  const K = 8; // sub-pixels per output pixel, averaged below
  const work = document.createElement("canvas");
  work.width = width * K; work.height = height * K;
  const wctx = work.getContext("2d", { willReadFrequently: true });
  wctx.fillStyle = "#000";
  wctx.fillRect(0, 0, work.width, work.height);
  const dw = bw * scale * K, dh = bh * scale * K;
  wctx.imageSmoothingEnabled = true;
  wctx.imageSmoothingQuality = "high";
  wctx.drawImage(pad, x0, y0, bw, bh, (work.width - dw) / 2, (work.height - dh) / 2, dw, dh);
  const sub = wctx.getImageData(0, 0, work.width, work.height).data;
  let image = [];
  for (let r = 0; r < height; r++) {
    const row = [];
    for (let c = 0; c < width; c++) {
      let sum = 0;
      for (let dy = 0; dy < K; dy++) for (let dx = 0; dx < K; dx++) sum += sub[4 * ((r * K + dy) * work.width + c * K + dx)];
      row.push(sum / (K * K * 255));
    }
    image.push(row);
  }
  if (!small) image = centreByMass(image);
  // Thin strokes become faint pixels when a big drawing shrinks to 8×8; the training digits'
  // strokes are solid, so the brightest pixel is stretched to 1.
  const peak = Math.max(...image.flat());
  if (peak > 0) image = image.map((row) => row.map((v) => Math.min(1, Math.round((v / peak) * 1e4) / 1e4)));
  return image;
}

function centreByMass(image) {
  const h = image.length, w = image[0].length;
  let total = 0, my = 0, mx = 0;
  image.forEach((row, y) => row.forEach((v, x) => { total += v; my += v * y; mx += v * x; }));
  if (total === 0) return image;
  const sy = Math.round((h - 1) / 2 - my / total), sx = Math.round((w - 1) / 2 - mx / total);
  return image.map((row, y) => row.map((_, x) => {
    const yy = y - sy, xx = x - sx;
    return yy >= 0 && yy < h && xx >= 0 && xx < w ? image[yy][xx] : 0;
  }));
}

function requestPredict() {
  state.busy = true;
  if (inFlight) { again = true; return; }
  predict();
}

async function predict() {
  const image = state.model && hasInk ? preprocess(state.model.height, state.model.width) : null;
  if (!image) { state.busy = false; return; }
  inFlight = true;
  const started = performance.now();
  try {
    const body = { image };
    if (state.chosenClass != null) body.class = state.chosenClass;
    const result = await api("POST", "/api/predict", body);
    state.lastImage = image;
    state.lastResult = result;
    showPrediction(image, result, performance.now() - started);
  } catch (err) {
    $("predict-time").textContent = t("page.error", { message: err.message });
  } finally {
    inFlight = false;
    if (again) { again = false; requestPredict(); } else state.busy = false;
  }
}

function showPrediction(image, result, ms) {
  const top = $("top");
  top.replaceChildren(...result.top.map((guess) => {
    const li = el("li", { "data-class": guess.class, class: guess.class === result.class ? "chosen" : "" },
      el("span", { class: "label", text: guess.label }),
      el("span", {}, el("div", { class: "bar", style: `width:${(100 * guess.probability).toFixed(1)}%` })),
      el("span", { class: "prob", text: `${(100 * guess.probability).toFixed(1)} %` }));
    li.title = t("draw.explain_class");
    li.addEventListener("click", () => { state.chosenClass = guess.class; requestPredict(); });
    return li;
  }));
  top.dataset.topClass = String(result.top[0].class);
  $("predict-time").textContent = t("draw.round_trip", { ms: ms.toFixed(0) });
  const h = image.length, w = image[0].length;
  $("seen-size").textContent = `(${h}×${w})`;
  drawGrid($("seen"), image.flat(), h, w, { grey: true, cell: Math.floor(140 / Math.max(h, w)) });
  drawOverlay($("saliency"), image, result.input_gradient, Math.floor(140 / Math.max(h, w)));
  $("saliency-caption").textContent = t("draw.saliency_of", { label: state.model.labels[result.class] });
  const figures = result.activations.map((a) => {
    const canvas = el("canvas");
    if (a.shown.length === 3) {
      // channels side by side, each its own image
      const [c, hh, ww] = a.shown;
      const tiles = [];
      for (let k = 0; k < c; k++) tiles.push(a.values.slice(k * hh * ww, (k + 1) * hh * ww));
      const row = [];
      for (let y = 0; y < hh; y++) for (let k = 0; k < c; k++) for (let x = 0; x < ww; x++) row.push(tiles[k][y * ww + x]);
      const mask = a.mask ? [] : null;
      if (mask) for (let y = 0; y < hh; y++) for (let k = 0; k < c; k++) for (let x = 0; x < ww; x++) mask.push(a.mask[k * hh * ww + y * ww + x]);
      drawGrid(canvas, row, hh, c * ww, { mask, cell: 3 });
    } else {
      const n = a.values.length, cols = Math.ceil(Math.sqrt(n)), rows = Math.ceil(n / cols);
      const values = a.values.concat(Array(rows * cols - n).fill(NaN));
      const mask = a.mask ? a.mask.concat(Array(rows * cols - n).fill(false)) : null;
      drawGrid(canvas, values, rows, cols, { mask, cell: Math.max(6, Math.floor(96 / cols)) });
    }
    const channels = a.shape.length === 3 && a.shown[0] < a.shape[0] ? t("draw.channels", { shown: a.shown[0], total: a.shape[0] }) : "";
    const caption = `${a.layer} (${a.shape.join("×")})${channels}` + (a.masked != null ? t("draw.masked", { count: a.masked }) : "");
    return el("figure", { "data-layer": a.layer }, canvas, el("figcaption", { text: caption }));
  });
  $("activations").replaceChildren(...figures);
}

// -- Step through backprop ----------------------------------------------------------------------
function valueView(value, key, nodeName) {
  const box = el("div", { "data-key": key });
  if (value == null) return box;
  if (value.kind === "scalar") {
    box.append(el("span", { class: "scalar", text: value.text }));
    return box;
  }
  box.append(el("span", { class: "text", text: value.text }));
  if (value.heat) {
    const { rows, cols, values } = value.heat;
    const canvas = el("canvas", { class: "heat" });
    const diverging = value.heat.min < 0 && value.heat.max > 0;
    drawGrid(canvas, values, rows, cols, { diverging, cell: Math.max(1, Math.min(6, Math.floor(360 / cols))) });
    box.append(canvas);
  }
  const details = el("details", {}, el("summary", { class: "small", text: t("step.all_values", { size: value.size }) }));
  const area = el("textarea", { readonly: "", "aria-label": t("step.values_label", { name: key }) });
  if (value.values) area.value = JSON.stringify(value.values);
  else {
    details.addEventListener("toggle", async () => {
      if (!details.open || area.value) return;
      try {
        const node = await api("GET", `/api/sessions/${state.session.session}/nodes/${encodeURIComponent(nodeName)}?full=1`);
        const found = lookup(node, key);
        area.value = found && found.values ? JSON.stringify(found.values) : "";
      } catch (err) {
        area.value = t("step.values_failed", { message: err.message });
      }
    });
  }
  details.append(area);
  box.append(details);
  return box;
}

function lookup(node, key) {
  if (key === "output" || key === "dout") return node[key];
  const ret = node.returns.find((r) => r.name === key);
  if (ret) return ret.value;
  return node.param_grads[key] || node.caches[key] || node.params[key];
}

function nodeCard(node, current) {
  const card = el("div", { class: "node", "data-node": node.name, "data-index": node.index });
  if (current) card.classList.add("current");
  if (!node.forward_done) card.classList.add("pending");
  card.append(el("h4", { text: `${node.label}` }, el("span", { class: "muted small", text: `  ${node.kind}` })));
  card.append(el("div", { class: "io", text: `${node.inputs.join(", ")} → ${node.name}` }));
  if (node.formula) card.append(el("div", { class: "formula", text: t("step.formula", { formula: node.formula }) }));
  const forward = el("dl", { class: "section" });
  if (node.forward_done) {
    forward.append(el("dt", { text: node.name }), el("dd", {}, valueView(node.output, "output", node.name)));
    for (const [name, value] of Object.entries(node.caches)) {
      if (name === "x" && node.kind !== "Mul") continue; // the input is shown where it is made
      forward.append(el("dt", { text: name }), el("dd", {}, valueView(value, name, node.name)));
    }
  } else {
    forward.append(el("dt", { text: node.name }), el("dd", { class: "muted", text: t("step.not_computed") }));
  }
  card.append(forward);
  if (node.backward_done) {
    const back = el("dl", { class: "section" });
    back.append(el("dt", { class: "grad", text: "dout" }), el("dd", { class: "grad" }, valueView(node.dout, "dout", node.name)));
    for (const r of node.returns) {
      if (r.value == null) continue;
      back.append(el("dt", { class: "grad", text: `${r.name} → ${r.to}` }),
        el("dd", { class: "grad" }, valueView(r.value, r.name, node.name)));
    }
    for (const [name, value] of Object.entries(node.param_grads)) {
      back.append(el("dt", { class: "grad", text: name }), el("dd", { class: "grad" }, valueView(value, name, node.name)));
    }
    card.append(back);
  }
  return card;
}

function showSession(s) {
  state.session = s;
  $("graph-title").textContent = s.title;
  $("graph-inputs").replaceChildren(...s.inputs.map((v) =>
    el("div", { class: "value", "data-input": v.name }, el("b", { text: `${v.label} ` }), valueView(v.value, "value", v.name))));
  $("nodes").replaceChildren(...s.nodes.map((n) => nodeCard(n, n.index === s.current)));
  showPhase(s);
}

// A step's answer: the node it ran (its card is redrawn) and where the pass stands.
function showStep(answer) {
  Object.assign(state.session, { phase: answer.phase, forward_done: answer.forward_done,
    backward_done: answer.backward_done, current: answer.current });
  const card = nodeCard(answer.node, true);
  $("nodes").querySelector(`[data-index="${answer.node.index}"]`).replaceWith(card);
  for (const other of $("nodes").querySelectorAll(".node.current")) if (other !== card) other.classList.remove("current");
  card.scrollIntoView({ block: "nearest", inline: "nearest" });
  showPhase(state.session);
}

function showPhase(s) {
  $("step-forward").disabled = s.phase !== "forward";
  $("step-backward").disabled = s.phase !== "backward";
  $("step-reset").disabled = s.forward_done === 0;
  $("step-check").disabled = s.phase !== "done";
  const where = s.phase === "forward" ? t("step.status_forward", { done: s.forward_done, total: s.n_nodes })
    : s.phase === "backward" ? t("step.status_backward", { done: s.backward_done, total: s.n_nodes }) : t("step.status_done");
  $("step-status").textContent = where;
  $("step-status").dataset.phase = s.phase;
}

async function startGraph() {
  $("step-error").textContent = "";
  $("check").hidden = true;
  const name = $("graph-name").value;
  const body = { lang: i18n.lang };
  if (name === "network") body.images = [...state.picked].sort((a, b) => a - b);
  if (name === "sigmoid") body.x = Number($("sigmoid-x").value);
  try {
    const previous = state.session;
    showSession(await api("POST", `/api/graphs/${name}`, body));
    // The server keeps a session's arrays until it is deleted: let the last one go.
    if (previous) api("DELETE", `/api/sessions/${previous.session}`).catch(() => {});
  } catch (err) {
    $("step-error").textContent = err.message;
  }
}

async function step(direction) {
  $("step-error").textContent = "";
  try {
    const answer = await api("POST", `/api/sessions/${state.session.session}/${direction}`);
    if (direction === "reset") { showSession(answer); $("check").hidden = true; } else showStep(answer);
  } catch (err) {
    $("step-error").textContent = err.message;
  }
}

async function check() {
  const button = $("step-check");
  button.disabled = true;
  $("step-status").textContent = t("step.checking");
  try {
    const result = await api("POST", `/api/sessions/${state.session.session}/check`);
    $("check-table").tBodies[0].replaceChildren(...result.rows.map((r) => {
      const kind = r.agrees ? "ok" : "bad";
      return el("tr", { "data-value": r.name },
        el("td", { text: r.name }), el("td", { text: r.analytic.text }), el("td", { text: r.numerical.text }),
        el("td", { class: kind, text: r.relative_error.toExponential(2) }),
        el("td", { text: (r.checked === r.size ? t("check.all", { size: r.size }) : t("check.some", { checked: r.checked, size: r.size }))
          + (r.kinks ? t("check.kinks", { kinks: r.kinks }) : "") }),
        el("td", { class: "small muted", text: r.note }));
    }));
    $("check").hidden = false;
  } catch (err) {
    $("step-error").textContent = err.message;
  } finally {
    showPhase(state.session);
  }
}

async function loadThumbs() {
  const picker = $("image-picker");
  try {
    const data = await api("GET", "/api/images?start=0&count=48");
    $("max-batch").textContent = data.max_batch;
    $("thumbs").replaceChildren(...data.images.map((img, i) => {
      const canvas = drawGrid(el("canvas", { "data-image": i, title: t("step.thumb", { index: i, label: state.model.labels[data.labels[i]] }) }),
        img.flat(), data.height, data.width, { grey: true, cell: Math.max(1, Math.floor(40 / data.width)) });
      canvas.addEventListener("click", () => {
        if (state.picked.has(i)) state.picked.delete(i);
        else if (state.picked.size < data.max_batch) state.picked.add(i);
        canvas.classList.toggle("picked", state.picked.has(i));
        $("picked-count").textContent = state.picked.size;
      });
      return canvas;
    }));
    for (const i of [0, 1]) { state.picked.add(i); $("thumbs").children[i].classList.add("picked"); }
    $("picked-count").textContent = state.picked.size;
  } catch (err) {
    picker.replaceChildren(el("p", { class: "error", text: err.message }));
  }
}

$("graph-name").addEventListener("change", () => {
  const name = $("graph-name").value;
  $("image-picker").hidden = name !== "network";
  $("sigmoid-x-label").hidden = name !== "sigmoid";
});
$("graph-start").addEventListener("click", startGraph);
$("step-forward").addEventListener("click", () => step("forward"));
$("step-backward").addEventListener("click", () => step("backward"));
$("step-reset").addEventListener("click", () => step("reset"));
$("step-check").addEventListener("click", check);

// -- Train --------------------------------------------------------------------------------------
const run = { losses: [], epochs: [], source: null };

function drawChart(canvas, series, options = {}) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, left = 44, bottom = 24, top = 10, right = 10;
  ctx.clearRect(0, 0, W, H);
  ctx.font = "11px system-ui";
  ctx.strokeStyle = "#999"; ctx.fillStyle = "#555";
  ctx.strokeRect(left, top, W - left - right, H - top - bottom);
  // Math.min(...points) overflows the call stack past ~100k points: loops instead.
  let xmin = Infinity, xmax = -Infinity, ymin = Infinity, ymax = -Infinity;
  for (const s of series) {
    for (const [x, y] of s.points) {
      if (!Number.isFinite(y)) continue;
      xmin = Math.min(xmin, x); xmax = Math.max(xmax, x); ymin = Math.min(ymin, y); ymax = Math.max(ymax, y);
    }
  }
  if (xmax < xmin) return;
  const x0 = options.x0 ?? xmin, x1 = Math.max(xmax, x0 + 1);
  const y0 = options.y0 ?? ymin, y1 = options.y1 ?? ymax;
  const px = (x) => left + (W - left - right) * (x - x0) / ((x1 - x0) || 1);
  const py = (y) => H - bottom - (H - top - bottom) * (y - y0) / ((y1 - y0) || 1);
  ctx.fillText(y1.toPrecision(3), 2, top + 8); ctx.fillText(y0.toPrecision(3), 2, H - bottom);
  ctx.fillText(String(x0), left, H - 8); ctx.fillText(String(x1), W - right - 30, H - 8);
  series.forEach((s) => {
    ctx.strokeStyle = s.colour; ctx.fillStyle = s.colour; ctx.lineWidth = 1.5;
    ctx.beginPath();
    s.points.forEach(([x, y], i) => (i ? ctx.lineTo(px(x), py(y)) : ctx.moveTo(px(x), py(y))));
    ctx.stroke();
    if (s.dots) s.points.forEach(([x, y]) => { ctx.beginPath(); ctx.arc(px(x), py(y), 3, 0, 7); ctx.fill(); });
  });
  // The legend where the curves are not: top right for a falling loss, bottom right for rising accuracy.
  const legendTop = options.legend === "bottom" ? H - bottom - 8 - 13 * series.length : top + 14;
  series.forEach((s, i) => { ctx.fillStyle = s.colour; ctx.fillText(s.name, W - right - 50, legendTop + 13 * i); });
}

// At most ~2 points per pixel are drawn: a long run's every step would not show more.
function thinned(values, most = 1000) {
  const every = Math.max(1, Math.ceil(values.length / most));
  const points = [];
  for (let i = 0; i < values.length; i += every) points.push([i + 1, values[i]]);
  if (values.length && (values.length - 1) % every) points.push([values.length, values[values.length - 1]]);
  return points;
}

function drawCurves() {
  drawChart($("loss-chart"), [{ name: t("chart.loss"), colour: "#1f6feb", points: thinned(run.losses) }], { x0: 0 });
  $("loss-chart").dataset.points = run.losses.length;
  drawChart($("acc-chart"), [
    { name: t("chart.train"), colour: "#1f6feb", dots: true, points: run.epochs.map((e) => [e.epoch, e.train_acc]) },
    { name: t("chart.test"), colour: "#c2410c", dots: true, points: run.epochs.filter((e) => e.test_acc != null).map((e) => [e.epoch, e.test_acc]) },
  ], { x0: 0, y1: 1, legend: "bottom" });
  $("acc-chart").dataset.points = run.epochs.length;
}

function drawWeights(w) {
  const n = w.units, cols = Math.ceil(Math.sqrt(n)), rows = Math.ceil(n / cols), gap = 2;
  const cell = Math.max(2, Math.floor(300 / (cols * (w.width + gap))));
  const canvas = $("weights");
  canvas.width = cols * (w.width + gap) * cell; canvas.height = rows * (w.height + gap) * cell;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  const size = w.height * w.width;
  for (let u = 0; u < n; u++) {
    const tile = w.values.slice(u * size, (u + 1) * size);
    const span = Math.max(...tile.map(Math.abs)) || 1;
    const ox = (u % cols) * (w.width + gap) * cell, oy = Math.floor(u / cols) * (w.height + gap) * cell;
    tile.forEach((v, i) => {
      ctx.fillStyle = `rgb(${divColour(v / span).join(",")})`;
      ctx.fillRect(ox + (i % w.width) * cell, oy + Math.floor(i / w.width) * cell, cell, cell);
    });
  }
  canvas.dataset.units = n;
}

function trainSettings() {
  const number = (id) => Number($(id).value);
  return {
    dataset: $("train-dataset").value,
    hidden: $("train-hidden").value.split(",").map((s) => s.trim()).filter(Boolean).map(Number),
    activation: $("train-activation").value, optimizer: $("train-optimizer").value,
    lr: number("train-lr"), epochs: number("train-epochs"), batch_size: number("train-batch"),
  };
}

function follow() {
  if (run.source) run.source.close();
  const source = new EventSource("/api/train/events");
  run.source = source;
  source.addEventListener("started", (e) => {
    const d = JSON.parse(e.data);
    $("train-status").textContent = t("train.started", { run: d.run, images: d.train_images, dataset: d.dataset, steps: d.steps_per_epoch });
  });
  source.addEventListener("steps", (e) => {
    for (const loss of JSON.parse(e.data).losses) run.losses.push(loss);
    drawCurves();
  });
  source.addEventListener("epoch", (e) => {
    const row = JSON.parse(e.data);
    run.epochs.push(row);
    $("train-status").textContent = t("train.epoch", { epoch: row.epoch, loss: Number(row.train_loss).toFixed(4), train: (100 * row.train_acc).toFixed(1) })
      + (row.test_acc != null ? t("train.epoch_test", { test: (100 * row.test_acc).toFixed(1) }) : "");
    drawCurves();
  });
  source.addEventListener("weights", (e) => drawWeights(JSON.parse(e.data)));
  source.addEventListener("finished", (e) => {
    const d = JSON.parse(e.data);
    source.close();
    run.source = null;
    $("train-start").disabled = false;
    $("train-stop").disabled = true;
    $("train-status").dataset.status = d.status;
    if (d.status === "failed") {
      $("train-error").textContent = d.error;
      $("train-status").textContent = t("train.failed");
    } else {
      $("train-status").textContent = t(d.status === "stopped" ? "train.stopped" : "train.finished",
        { steps: d.steps, epochs: d.epochs, accuracy: (100 * d.test_acc).toFixed(1) });
      $("train-save").hidden = false;
    }
  });
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) run.source = null; };
}

$("train-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("train-error").textContent = "";
  try {
    await api("POST", "/api/train", trainSettings());
  } catch (err) {
    $("train-error").textContent = err.message;
    return;
  }
  run.losses = []; run.epochs = [];
  drawCurves();
  $("train-save").hidden = true;
  $("train-start").disabled = true;
  $("train-stop").disabled = false;
  $("train-status").dataset.status = "running";
  $("train-status").textContent = t("train.loading");
  follow();
});

// The learning rate each optimizer starts from on each data set, as `layerwise train` chooses it.
function suggestLr() {
  const table = state.trainOptions && state.trainOptions.default_lr[$("train-dataset").value];
  if (table) $("train-lr").value = table[$("train-optimizer").value];
}
$("train-optimizer").addEventListener("change", suggestLr);
$("train-dataset").addEventListener("change", suggestLr);

$("train-stop").addEventListener("click", async () => {
  try { await api("POST", "/api/train/stop"); } catch (err) { $("train-error").textContent = err.message; }
});

function fillSelect(select, options, chosen) {
  select.replaceChildren(...options.map((o) => el("option", { value: o, text: o })));
  if (chosen) select.value = chosen;
}

// -- start ----------------------------------------------------------------------------------------
// The language switch: the page again in the language chosen (the server remembers it).
function languageSwitch() {
  const select = $("lang-switch");
  select.replaceChildren(...i18n.languages.map((l) => el("option", { value: l.code, text: l.name })));
  select.value = i18n.lang;
  // The open view comes along in the address's #fragment; a running training run re-attaches.
  select.addEventListener("change", () => {
    const view = document.querySelector("nav button[aria-selected=true]").dataset.view;
    window.location.assign(`?lang=${encodeURIComponent(select.value)}#${view}`);
  });
}

async function start() {
  languageSwitch();
  const asked = window.location.hash.slice(1);
  if (document.querySelector(`nav button[data-view="${CSS.escape(asked)}"]`)) showView(asked);
  clearPad();
  state.model = await api("GET", "/api/model");
  const m = state.model;
  $("model-line").textContent = m.trained
    ? t("model.default", { architecture: m.architecture, height: m.height, width: m.width, ...m.trained })
    : t("model.line", { architecture: m.architecture, height: m.height, width: m.width, source: m.source });
  const graphs = await api("GET", "/api/graphs");
  fillSelect($("graph-name"), graphs.graphs.map((g) => g.name), "apple");
  for (const option of $("graph-name").options) option.textContent = t(`graph.${option.value}`);
  loadThumbs();
  const train = await api("GET", "/api/train");
  const o = train.options;
  fillSelect($("train-dataset"), o.datasets, o.defaults.dataset);
  fillSelect($("train-activation"), o.activations, o.defaults.activation);
  fillSelect($("train-optimizer"), o.optimizers, o.defaults.optimizer);
  state.trainOptions = o;
  for (const [id, key] of [["train-hidden", "hidden"], ["train-epochs", "epochs"], ["train-batch", "batch_size"]]) {
    $(id).value = Array.isArray(o.defaults[key]) ? o.defaults[key].join(",") : o.defaults[key];
  }
  suggestLr();
  if (train.run && !["done", "stopped", "failed"].includes(train.run.status)) {
    $("train-start").disabled = true; $("train-stop").disabled = false; follow();
  }
  document.body.dataset.ready = "true";
}
start().catch((err) => { $("model-line").textContent = t("page.error", { message: err.message }); });
