// Taxonomist web page: plain JavaScript that only calls the REST API (no build step).
"use strict";

const BATCH = 256; // the API's cap on products per request
const MAX_CSV_ROWS = 5000;

const TEXT = {
  en: {
    model: "Model", language: "Language", apiDocs: "API docs", apiKey: "API key",
    useKey: "Use key", keyHint: "This server needs an API key with the classify scope.",
    classify: "Classify", titlesLabel: "Product titles, one a line",
    enterHint: "Enter classifies; Shift+Enter starts a new line.",
    photo: "Photo (optional, first product)", topK: "Top k", minConfidence: "Min confidence",
    classifyButton: "Classify", csvLabel: "…or upload a CSV (id, title, description)",
    download: "Download CSV", browse: "Browse the taxonomy", searchLabel: "Search categories",
    searchButton: "Search", needsReview: "needs review", suggestion: "Suggestion",
    noCategory: "No category is confident enough", top: "Top level", loading: "Loading models…",
    noModels: "No model is ready yet.", classifying: "Classifying {n} products…",
    done: "Classified {n} products in {s} s.", empty: "Type at least one title.",
    csvRows: "{n} rows read from the CSV.", csvNoTitle: "The CSV needs a 'title' column.",
    noMatch: "No matching category.", children: "{n} subcategories", alternatives: "Alternatives",
    id: "Id", title: "Title", category: "Category", confidence: "Confidence",
  },
  zh: {
    model: "模型", language: "语言", apiDocs: "API 文档", apiKey: "API 密钥",
    useKey: "使用密钥", keyHint: "此服务器需要具有 classify 权限的 API 密钥。",
    classify: "分类", titlesLabel: "商品标题，每行一个", enterHint: "按 Enter 分类；Shift+Enter 换行。",
    photo: "图片（可选，用于第一个商品）", topK: "前 k 个", minConfidence: "最低置信度",
    classifyButton: "分类", csvLabel: "……或上传 CSV（id, title, description）",
    download: "下载 CSV", browse: "浏览类目", searchLabel: "搜索类目", searchButton: "搜索",
    needsReview: "需要人工审核", suggestion: "建议", noCategory: "没有足够可信的类目",
    top: "顶层", loading: "正在加载模型……", noModels: "还没有可用的模型。",
    classifying: "正在分类 {n} 个商品……", done: "已在 {s} 秒内分类 {n} 个商品。",
    empty: "请至少输入一个标题。", csvRows: "从 CSV 读取了 {n} 行。", csvNoTitle: "CSV 需要 'title' 列。",
    noMatch: "没有匹配的类目。", children: "{n} 个子类目", alternatives: "其他候选",
    id: "编号", title: "标题", category: "类目", confidence: "置信度",
  },
};

const state = { models: [], results: [], inputs: [], treeTrail: [] };
const $ = (id) => document.getElementById(id);

function lang() { return $("language").value; }
function t(key, vars = {}) {
  let text = (TEXT[lang()] || TEXT.en)[key] || TEXT.en[key] || key;
  for (const [k, v] of Object.entries(vars)) text = text.replace(`{${k}}`, v);
  return text;
}

function applyLanguage() {
  document.documentElement.lang = lang() === "zh" ? "zh-Hans" : "en";
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
}

function setStatus(message, isError = false) {
  const el = $("status");
  el.textContent = message;
  el.classList.toggle("error", isError);
}

// -- HTTP ----------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

async function api(path, body) {
  const headers = {};
  const key = sessionStorage.getItem("taxonomist-key");
  if (key) headers.Authorization = `Bearer ${key}`;
  const init = { headers };
  if (body !== undefined) {
    init.method = "POST";
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    if (response.status === 401 || response.status === 403) $("key-panel").hidden = false;
    throw new ApiError(response.status, data.detail || `HTTP ${response.status}`);
  }
  return data;
}

// -- models --------------------------------------------------------------------------------
async function loadModels() {
  setStatus(t("loading"));
  try {
    const data = await api("/v1/models");
    state.models = data.models;
  } catch (err) {
    setStatus(err.message, true);
    return;
  }
  const select = $("model");
  const current = select.value;
  select.replaceChildren();
  for (const m of state.models) {
    const option = new Option(m.ready ? `${m.name} (${m.version || "?"})` : `${m.name} …`, m.name);
    option.disabled = !m.ready;
    select.append(option);
  }
  if (current) select.value = current;
  const ready = state.models.filter((m) => m.ready);
  if (!ready.length) {
    setStatus(t("noModels"), true);
    setTimeout(loadModels, 2000);
    return;
  }
  if (!select.value || select.selectedOptions[0]?.disabled) select.value = ready[0].name;
  setStatus("");
  loadTree(null);
}

function currentModel() { return state.models.find((m) => m.name === $("model").value); }
function taxonomyName() { return currentModel()?.taxonomy?.name; }

// -- classify ------------------------------------------------------------------------------
function readFileAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

function options() {
  const body = { top_k: Math.min(20, Math.max(1, Number($("top-k").value) || 1)), language: lang() };
  const min = $("min-confidence").value;
  if (min !== "") body.min_confidence = Math.min(1, Math.max(0, Number(min)));
  return body;
}

async function classifyProducts(products) {
  const model = $("model").value;
  if (!model) return;
  state.results = [];
  state.inputs = products;
  $("results").replaceChildren();
  $("download").disabled = true;
  const progress = $("progress");
  progress.hidden = products.length <= BATCH;
  progress.max = products.length;
  progress.value = 0;
  setStatus(t("classifying", { n: products.length }));
  const started = performance.now();
  try {
    for (let start = 0; start < products.length; start += BATCH) {
      const chunk = products.slice(start, start + BATCH);
      const data = await api(`/v1/models/${encodeURIComponent(model)}/classify`, { products: chunk, ...options() });
      state.results.push(...data.results);
      renderResults(data.results, chunk, start === 0);
      progress.value = start + chunk.length;
    }
  } catch (err) {
    setStatus(err.message, true);
    return;
  } finally {
    progress.hidden = true;
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  setStatus(t("done", { n: state.results.length, s: seconds }));
  $("download").disabled = state.results.length === 0;
}

function percent(x) { return `${Math.round(x * 100)}%`; }

function breadcrumb(candidate, extraClass = "") {
  const wrap = document.createElement("nav");
  wrap.className = `breadcrumb candidate ${extraClass}`;
  wrap.setAttribute("aria-label", candidate.path.join(" > "));
  const list = document.createElement("ol");
  for (const level of candidate.levels) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.className = "crumb-name";
    name.textContent = level.name;
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.setAttribute("role", "meter");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "1");
    bar.setAttribute("aria-valuenow", level.confidence.toFixed(3));
    bar.setAttribute("aria-label", `${level.name} ${percent(level.confidence)}`);
    const fill = document.createElement("span");
    fill.style.width = percent(level.confidence);
    bar.append(fill);
    const conf = document.createElement("span");
    conf.className = "conf";
    conf.textContent = percent(level.confidence);
    item.append(name, bar, conf);
    list.append(item);
  }
  wrap.append(list);
  return wrap;
}

const CARD_LIMIT = 20; // more products than this show as a compact table

function renderResults(results, products, replace) {
  const box = $("results");
  if (replace) box.replaceChildren();
  if (state.inputs.length > CARD_LIMIT) {
    renderTable(results, products);
    return;
  }
  for (let i = 0; i < results.length; i++) box.append(resultCard(results[i], products[i]));
}

function resultCard(r, product) {
  const card = document.createElement("article");
  card.className = "result";
  const title = document.createElement("h3");
  title.textContent = product.title;
  const id = document.createElement("span");
  id.className = "id";
  id.textContent = ` #${r.id}`;
  title.append(id);
  if (r.needs_review) title.append(reviewBadge());
  card.append(title);
  if (r.category) card.append(breadcrumb(r.category));
  else card.append(Object.assign(document.createElement("p"), { textContent: t("noCategory") }));
  if (r.suggestion) {
    card.append(Object.assign(document.createElement("p"), { className: "hint", textContent: t("suggestion") }));
    card.append(breadcrumb(r.suggestion, "alt"));
  }
  if (r.alternatives.length) {
    card.append(Object.assign(document.createElement("p"), { className: "hint", textContent: t("alternatives") }));
    for (const alt of r.alternatives) card.append(breadcrumb(alt, "alt"));
  }
  for (const w of r.warnings) {
    card.append(Object.assign(document.createElement("p"), { className: "warning", textContent: w }));
  }
  return card;
}

function reviewBadge() {
  return Object.assign(document.createElement("span"), { className: "badge", textContent: t("needsReview") });
}

function renderTable(results, products) {
  const box = $("results");
  let body = box.querySelector("tbody");
  if (!body) {
    const table = document.createElement("table");
    table.className = "results-table";
    const head = document.createElement("thead");
    const row = document.createElement("tr");
    for (const key of ["id", "title", "category", "confidence"]) {
      row.append(Object.assign(document.createElement("th"), { scope: "col", textContent: t(key) }));
    }
    head.append(row);
    body = document.createElement("tbody");
    table.append(head, body);
    box.append(table);
  }
  results.forEach((r, i) => {
    const row = document.createElement("tr");
    const cells = [r.id, products[i].title];
    for (const text of cells) row.append(Object.assign(document.createElement("td"), { textContent: text }));
    const cat = document.createElement("td");
    cat.textContent = r.category ? r.category.path.join(" › ") : t("noCategory");
    if (r.needs_review) cat.append(reviewBadge());
    const conf = document.createElement("td");
    const value = r.category ? r.category.confidence : 0;
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.setAttribute("role", "meter");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "1");
    bar.setAttribute("aria-valuenow", value.toFixed(3));
    const fill = document.createElement("span");
    fill.style.width = percent(value);
    bar.append(fill);
    conf.append(Object.assign(document.createElement("span"), { className: "conf", textContent: percent(value) }), bar);
    row.append(cat, conf);
    body.append(row);
  });
}

async function onClassify(event) {
  event.preventDefault();
  const titles = $("titles").value.split("\n").map((s) => s.trim()).filter(Boolean);
  if (!titles.length) {
    setStatus(t("empty"), true);
    return;
  }
  const products = titles.map((title, i) => ({ id: String(i + 1), title }));
  const photo = $("photo").files[0];
  if (photo) products[0].image = await readFileAsDataUrl(photo);
  await classifyProducts(products);
}

// -- CSV -----------------------------------------------------------------------------------
function parseCsv(text) {
  // RFC 4180: quoted fields may hold commas, quotes ("") and newlines
  const rows = [];
  let row = [], field = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field); rows.push(row); row = []; field = "";
    } else field += c;
  }
  if (field !== "" || row.length) { row.push(field); rows.push(row); }
  return rows.filter((r) => r.some((cell) => cell.trim() !== ""));
}

async function onCsv() {
  const file = $("csv").files[0];
  if (!file) return;
  const rows = parseCsv(await file.text());
  const header = (rows.shift() || []).map((h) => h.trim().toLowerCase());
  const col = (name) => header.indexOf(name);
  if (col("title") < 0) {
    setStatus(t("csvNoTitle"), true);
    return;
  }
  const products = [];
  for (const [n, row] of rows.slice(0, MAX_CSV_ROWS).entries()) {
    const title = (row[col("title")] || "").trim();
    if (!title) continue;
    const product = { id: col("id") >= 0 && row[col("id")].trim() ? row[col("id")].trim() : String(n + 1), title: title.slice(0, 4000) };
    if (col("description") >= 0 && row[col("description")]) product.description = row[col("description")].slice(0, 16000);
    products.push(product);
  }
  setStatus(t("csvRows", { n: products.length }));
  await classifyProducts(products);
}

function csvCell(value) {
  const text = String(value ?? "");
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function onDownload() {
  const k = Math.max(1, ...state.results.map((r) => 1 + r.alternatives.length));
  const header = ["id", "title", "category", "category_id", "confidence", "level_confidences", "needs_review"];
  for (let j = 2; j <= k; j++) header.push(`category_${j}`, `confidence_${j}`);
  const lines = [header.join(",")];
  state.results.forEach((r, i) => {
    const c = r.category;
    const cells = [
      r.id, state.inputs[i]?.title, c ? c.path.join(" > ") : "", c ? c.category_id : "",
      c ? c.confidence.toFixed(4) : "", c ? c.levels.map((l) => l.confidence.toFixed(4)).join(";") : "",
      r.needs_review,
    ];
    for (let j = 0; j < k - 1; j++) {
      const alt = r.alternatives[j];
      cells.push(alt ? alt.path.join(" > ") : "", alt ? alt.confidence.toFixed(4) : "");
    }
    lines.push(cells.map(csvCell).join(","));
  });
  const blob = new Blob([lines.join("\n") + "\n"], { type: "text/csv" });
  const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob), download: "predictions.csv" });
  document.body.append(link);
  link.click();
  link.remove();
}

// -- taxonomy ------------------------------------------------------------------------------
function categoryItem(cat, showPath) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "link";
  button.textContent = cat.name + (cat.is_leaf ? "" : " ›");
  button.addEventListener("click", () => loadTree(cat.id));
  item.append(button);
  if (showPath) {
    const path = document.createElement("span");
    path.className = "path";
    path.textContent = cat.path.join(" > ");
    item.append(path);
  }
  return item;
}

async function loadTree(categoryId) {
  const tax = taxonomyName();
  if (!tax) return;
  const base = `/v1/taxonomies/${encodeURIComponent(tax)}/categories`;
  try {
    let trail = [], children;
    if (categoryId === null) {
      children = (await api(`${base}?limit=200&language=${lang()}`)).results;
    } else {
      const cat = await api(`${base}/${encodeURIComponent(categoryId)}?language=${lang()}`);
      trail = [...cat.ancestors, { id: cat.id, name: cat.name }];
      children = cat.children;
    }
    const nav = $("tree-path");
    nav.replaceChildren();
    const top = Object.assign(document.createElement("button"), { type: "button", className: "link", textContent: t("top") });
    top.addEventListener("click", () => loadTree(null));
    nav.append(top);
    for (const step of trail) {
      const b = Object.assign(document.createElement("button"), { type: "button", className: "link", textContent: `› ${step.name}` });
      b.addEventListener("click", () => loadTree(step.id));
      nav.append(b);
    }
    $("tree").replaceChildren(...children.map((c) => categoryItem(c, false)));
  } catch (err) {
    setStatus(err.message, true);
  }
}

async function onSearch(event) {
  event.preventDefault();
  const tax = taxonomyName();
  const q = $("search").value.trim();
  if (!tax || !q) return;
  try {
    const data = await api(`/v1/taxonomies/${encodeURIComponent(tax)}/categories?q=${encodeURIComponent(q)}&limit=50&language=${lang()}`);
    const list = $("search-results");
    list.replaceChildren(...data.results.map((c) => categoryItem(c, true)));
    if (!data.results.length) list.append(Object.assign(document.createElement("li"), { textContent: t("noMatch") }));
  } catch (err) {
    setStatus(err.message, true);
  }
}

// -- wiring --------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  const saved = localStorage.getItem("taxonomist-language");
  if (saved) $("language").value = saved;
  applyLanguage();
  $("classify-form").addEventListener("submit", onClassify);
  $("titles").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("classify-form").requestSubmit();
    }
  });
  $("csv").addEventListener("change", onCsv);
  $("download").addEventListener("click", onDownload);
  $("search-form").addEventListener("submit", onSearch);
  $("model").addEventListener("change", () => loadTree(null));
  $("language").addEventListener("change", () => {
    localStorage.setItem("taxonomist-language", lang());
    applyLanguage();
    loadTree(null);
  });
  $("key-panel").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("taxonomist-key", $("api-key").value.trim());
    $("key-panel").hidden = true;
    loadModels();
  });
  loadModels();
});
