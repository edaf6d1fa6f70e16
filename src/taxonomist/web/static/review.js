// Reviewer page: talks only to the REST API (/review/...). No build step, no framework.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { item: null, hits: [], active: -1, decided: 0, busy: false, confirming: false, pending: null };

function apiKey() { return localStorage.getItem("taxonomist-api-key") || ""; }

async function api(method, path, body, extraHeaders) {
  const headers = { "Accept": "application/json", ...(extraHeaders || {}) };
  const key = apiKey();
  if (key) { headers["Authorization"] = "Bearer " + key; headers["X-API-Key"] = key; }
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
  if (!response.ok) {
    const detail = (data && (data.detail || data.title)) || response.statusText;
    const error = new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
    error.status = response.status;
    throw error;
  }
  return data;
}

function say(text, kind) { const s = $("status"); s.textContent = text; s.className = kind || ""; }

function filters() {
  const out = {};
  document.querySelectorAll("[data-filter]").forEach((input) => {
    const value = input.value.trim();
    if (!value) return;
    out[input.dataset.filter] = input.type === "number" ? Number(value) : value;
  });
  return out;
}

function query(obj) {
  const params = new URLSearchParams();
  Object.entries(obj).forEach(([k, v]) => params.set(k, String(v)));
  return params.toString();
}

async function refreshCount() {
  try {
    const data = await api("GET", "/review/items?" + query({ ...filters(), limit: 1 }));
    $("open-count").textContent = data.total;
  } catch (e) { $("open-count").textContent = "?"; }
}

// Loads can overlap (a bulk accept's reload, then Enter in the filter box): only the newest
// one may show its item, or a late answer for an old filter replaces the item being worked on
// and clears the search the reviewer is typing into.
let loadSeq = 0, loading = 0;
async function loadNext() {
  const seq = ++loadSeq;
  state.item = null;
  loading += 1; markBusy();
  try {
    const data = await api("POST", "/review/next", filters());
    if (seq === loadSeq) show(data.item);
  } catch (e) {
    if (seq === loadSeq) say(e.status === 401 || e.status === 403 ? "The API key is missing or lacks the review scope (press k)." : e.message, "bad");
  } finally { loading -= 1; markBusy(); }
  refreshCount();
}

function show(item) {
  state.item = item;
  $("hits").innerHTML = ""; state.hits = []; state.active = -1; $("search").value = "";
  if (!item) { $("item").hidden = true; $("empty").hidden = false; return; }
  $("empty").hidden = true; $("item").hidden = false;
  $("title").textContent = item.title || item.text || "(no title)";
  $("product-id").textContent = item.product_id;
  $("item-id").textContent = item.id;
  $("model").textContent = [item.model_name, item.model_version].filter(Boolean).join(" ");
  $("reason").textContent = item.reason;
  $("priority").textContent = item.priority == null ? "–" : item.priority.toFixed(2);
  $("reserved").textContent = item.reserved_until ? "reserved to you until " + item.reserved_until : "";
  const list = $("suggestions"); list.innerHTML = "";
  item.suggestions.slice(0, 5).forEach((s, i) => {
    const li = document.createElement("li");
    li.dataset.categoryId = s.category_id;
    const pct = Math.round((s.confidence || 0) * 100);
    li.innerHTML = `<kbd>${i + 1}</kbd><span></span><span><div class="bar"><span style="width:${pct}%"></span></div>${pct}%</span>`;
    li.children[1].textContent = s.path || s.category_id;
    li.addEventListener("click", () => decide(i === 0 ? "accept" : "correct", s.category_id));
    list.appendChild(li);
  });
  loadPhoto(item);
  loadExplanation(item);
}

// Why the model suggests what it does: fetched after the item shows, so keys never wait
// for it; an answer for an item no longer on screen is dropped.
async function loadExplanation(item) {
  const why = $("why"); why.hidden = true;
  $("why-words").innerHTML = ""; $("why-neighbours").innerHTML = ""; $("why-note").textContent = "";
  let data;
  try { data = await api("GET", `/review/items/${item.id}/explanation`); }
  catch (e) {
    if (!state.item || state.item.id !== item.id) return;
    $("why-note").textContent = "No explanation: " + e.message; why.hidden = false;
    return;
  }
  if (!state.item || state.item.id !== item.id) return;
  const exp = data.explanation;
  exp.words.filter((w) => w.weight !== 0).slice(0, 8).forEach((w) => {
    const li = document.createElement("li");
    li.className = w.weight > 0 ? "for" : "against";
    li.textContent = w.word;
    const small = document.createElement("small");
    small.textContent = (w.weight > 0 ? "+" : "") + w.weight.toFixed(exp.method === "occlusion" ? 3 : 2);
    li.appendChild(small);
    $("why-words").appendChild(li);
  });
  exp.neighbours.forEach((n) => {
    const li = document.createElement("li");
    li.textContent = n.title;
    const path = document.createElement("span");
    path.className = "path";
    path.textContent = `${n.path.join(" › ")} · ${Math.round(n.similarity * 100)}% similar`;
    li.appendChild(path);
    $("why-neighbours").appendChild(li);
  });
  const by = data.model.version && data.queued_by_version && data.model.version !== data.queued_by_version
    ? ` (explained by ${data.model.name} ${data.model.version}; queued by ${data.queued_by_version})` : "";
  $("why-note").textContent = `${exp.method === "linear-exact" ? "exact word contributions" : "each word left out in turn"} for ${exp.path.join(" › ")} (${Math.round(exp.probability * 100)}%)${by}`;
  why.hidden = false;
}

async function loadPhoto(item) {
  const img = $("photo"); img.hidden = true; img.removeAttribute("src");
  if (!item.image) return;
  try {
    const headers = {}; const key = apiKey();
    if (key) { headers["Authorization"] = "Bearer " + key; headers["X-API-Key"] = key; }
    const response = await fetch(`/review/items/${item.id}/image`, { headers });
    if (!response.ok) return;
    if ((response.headers.get("content-type") || "").includes("json")) {
      img.src = (await response.json()).url;
    } else {
      img.src = URL.createObjectURL(await response.blob());
    }
    if (state.item && state.item.id === item.id) img.hidden = false;
  } catch (e) { /* a missing photo must not block the review */ }
}

function newKey() {
  return (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2));
}

async function decide(action, categoryId) {
  if (!state.item || state.busy) return;
  const item = state.item;
  // the same key is sent again on a retry of this very decision, so it counts once
  if (!state.pending || state.pending.item !== item.id || state.pending.action !== action || state.pending.category !== categoryId) {
    state.pending = { item: item.id, action, category: categoryId, key: newKey() };
  }
  setBusy(true);
  try {
    const body = { action };
    if (categoryId) body.category_id = categoryId;
    const result = await api("POST", `/review/items/${item.id}/decision`, body, { "Idempotency-Key": state.pending.key });
    state.pending = null;
    if (action !== "skip") { state.decided += 1; $("done-count").textContent = state.decided; }
    const what = result.action === "skip" ? "skipped" : `${result.action}ed → ${result.category_id}`;
    say(`item ${item.id} ${what}`, "ok");
    await loadNext();
  } catch (e) {
    if (e.status === 409) { state.pending = null; say(e.message, "warn"); await loadNext(); }
    else say(e.message + " (press the key again to retry)", "bad");
  } finally { setBusy(false); }
}

// while a decision and the next item load, keys wait (the page says so; tests read it)
function setBusy(on) { state.busy = on; markBusy(); }
function markBusy() { document.body.dataset.busy = state.busy || loading > 0 ? "1" : ""; }

let searchTimer = null;
async function search() {
  const q = $("search").value.trim();
  if (!q) { state.hits = []; renderHits(); return; }
  try {
    const data = await api("GET", "/review/categories?" + query({ q, limit: 10 }));
    if ($("search").value.trim() !== q) return;  // a newer keystroke is on its way
    state.hits = data.categories; state.active = state.hits.length ? 0 : -1; renderHits();
  } catch (e) { say(e.message, "bad"); }
}

function renderHits() {
  const list = $("hits"); list.innerHTML = "";
  state.hits.forEach((hit, i) => {
    const li = document.createElement("li");
    li.textContent = hit.path; li.dataset.id = hit.id; li.setAttribute("role", "option");
    if (i === state.active) li.className = "active";
    li.addEventListener("mousedown", (ev) => { ev.preventDefault(); chooseHit(i); });
    list.appendChild(li);
  });
}

function chooseHit(i) {
  const hit = state.hits[i];
  if (!hit) return;
  $("search").blur();
  decide("correct", hit.id);
}

async function bulkAsk() {
  try {
    const data = await api("GET", "/review/items?" + query({ ...filters(), limit: 1 }));
    $("confirm-count").textContent = data.total;
    $("confirm").hidden = false; state.confirming = true;
  } catch (e) { say(e.message, "bad"); }
}

async function bulkAccept() {
  $("confirm").hidden = true; state.confirming = false;
  if (state.busy) { say("a decision is still being saved: press b again", "warn"); return; }
  setBusy(true);
  try {
    const result = await api("POST", "/review/bulk-accept", { ...filters(), limit: 10000 }, { "Idempotency-Key": newKey() });
    state.decided += result.accepted; $("done-count").textContent = state.decided;
    say(`bulk-accepted ${result.accepted} items` + (result.skipped_reserved ? ` (${result.skipped_reserved} held by others left alone)` : ""), "ok");
    await loadNext();
  } catch (e) { say(e.message, "bad"); }
  finally { setBusy(false); }
}

$("search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(search, 60); });
$("search").addEventListener("keydown", (ev) => {
  if (ev.key === "ArrowDown") { state.active = Math.min(state.hits.length - 1, state.active + 1); renderHits(); ev.preventDefault(); }
  else if (ev.key === "ArrowUp") { state.active = Math.max(0, state.active - 1); renderHits(); ev.preventDefault(); }
  else if (ev.key === "Enter") { ev.preventDefault(); if (state.active >= 0) chooseHit(state.active); }
  else if (ev.key === "Escape") { $("search").blur(); }
  ev.stopPropagation();
});

document.querySelectorAll("header input").forEach((input) => {
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === "Escape") {
      ev.preventDefault();
      if (input.id === "apikey") localStorage.setItem("taxonomist-api-key", input.value.trim());
      input.blur();
      if (ev.key === "Enter") loadNext();
    }
    ev.stopPropagation();
  });
});

document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (state.confirming) {
    if (ev.key === "y") bulkAccept();
    else if (ev.key === "Escape" || ev.key === "n") { $("confirm").hidden = true; state.confirming = false; }
    ev.preventDefault();
    return;
  }
  const item = state.item;
  if (ev.key === "Enter" || ev.key === "1") { if (item) decide("accept"); }
  else if (/^[2-5]$/.test(ev.key)) {
    const s = item && item.suggestions[Number(ev.key) - 1];
    if (s) decide("correct", s.category_id);
  }
  else if (ev.key === "/") { $("search").focus(); }
  else if (ev.key === "s") { if (item) decide("skip"); }
  else if (ev.key === "b") { bulkAsk(); }
  else if (ev.key === "f") { $("f-category").focus(); }
  else if (ev.key === "k") { $("apikey").focus(); }
  else if (ev.key === "r") { loadNext(); }
  else return;
  ev.preventDefault();
});

$("apikey").value = apiKey();
loadNext();
