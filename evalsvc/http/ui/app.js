// evalsvc dashboard: jobs, a job's live progress, log and report, submit forms built from /openapi.json,
// and the comparison of two runs. Plain JavaScript, no framework. Every data call goes to /api/ with the
// token kept in sessionStorage (sent as Authorization: Bearer, never in a URL); progress streams through
// fetch (not EventSource, which cannot send the header).
"use strict";

const TOKEN_KEY = "evalsvc-token";
const POLL_MS = 2000;
const ACTIVE = ["queued", "running"];
const main = document.getElementById("main");
let view = { stop() {} }; // what the current page must stop (timers, streams) when another one opens
let openapi = null;

// ---- small helpers ------------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token()) headers.Authorization = `Bearer ${token()}`;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    options = Object.assign({}, options, { body: JSON.stringify(options.json) });
  }
  const response = await fetch(path, Object.assign({}, options, { headers, cache: "no-store" }));
  if (options.raw) {
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    return response;
  }
  const type = response.headers.get("content-type") || "";
  const body = type.includes("application/json") ? await response.json() : await response.text();
  if (response.status === 401) showAuth("This service needs a bearer token: enter it above.", true);
  if (!response.ok) throw new ApiError(response.status, typeof body === "object" ? body : { message: body });
  return body;
}

function showAuth(message, bad) {
  const status = document.getElementById("auth-status");
  status.textContent = message;
  status.className = bad ? "error" : "muted";
}

function notice(message, isError) {
  return el("p", { class: isError ? "notice error" : "notice", role: isError ? "alert" : "status" }, message);
}

function fmtTime(iso) { return iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z") : "–"; }

function duration(job) {
  if (!job.started_at) return "–";
  const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
  const s = Math.max(0, (end - Date.parse(job.started_at)) / 1000);
  return s < 60 ? `${s.toFixed(1)} s` : s < 3600 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`
    : `${(s / 3600).toFixed(1)} h`;
}

function model(job) { return (job.config && job.config.model) || "–"; }

// Progress over the parts (sweep points, datasets) reported so far; 100 % once a job completed.
function progressOf(job) {
  if (job.state === "completed") return 100;
  let done = 0, total = 0;
  for (const part of Object.values(job.progress || {})) {
    if (typeof part.total === "number" && part.total > 0) { done += part.done || 0; total += part.total; }
  }
  return total ? Math.min(100, Math.floor((100 * done) / total)) : null;
}

function stateCell(state) { return el("span", { class: `state state-${state}` }, state); }

function setView(stop) { view.stop(); view = { stop }; }

// ---- jobs ---------------------------------------------------------------------------------------------

function listParams() {
  const ops = openapi.paths["/api/v1/jobs"].get.parameters;
  const enumOf = (name) => ops.find((p) => p.name === name).schema.enum;
  return { states: enumOf("state"), kinds: enumOf("kind") };
}

async function showJobs(query) {
  const { states, kinds } = listParams();
  const stateSel = el("select", { id: "filter-state" }, el("option", { value: "" }, "any"),
    states.map((s) => el("option", { value: s, selected: query.get("state") === s }, s)));
  const kindSel = el("select", { id: "filter-kind" }, el("option", { value: "" }, "any"),
    kinds.map((k) => el("option", { value: k, selected: query.get("kind") === k }, k)));
  const body = el("tbody");
  const status = el("p", { role: "status", class: "muted" });
  const table = el("table", { id: "jobs" },
    el("caption", { class: "muted", style: "text-align:left" }, "Newest first; refreshed every 2 s."),
    el("thead", {}, el("tr", {}, ["Job", "Kind", "State", "Model", "Progress", "Duration", "Created"].map(
      (h) => el("th", { scope: "col", class: h === "Progress" || h === "Duration" ? "num" : null }, h)))),
    body);
  const refilter = () => {
    const q = new URLSearchParams();
    if (stateSel.value) q.set("state", stateSel.value);
    if (kindSel.value) q.set("kind", kindSel.value);
    location.hash = `#/jobs${q.toString() ? "?" + q : ""}`;
  };
  stateSel.addEventListener("change", refilter);
  kindSel.addEventListener("change", refilter);
  main.replaceChildren(el("h2", {}, "Jobs"),
    el("div", { class: "filters" },
      el("div", {}, el("label", { for: "filter-state" }, "State"), stateSel),
      el("div", {}, el("label", { for: "filter-kind" }, "Kind"), kindSel)),
    status, table);
  let timer = null, stopped = false;
  const load = async () => {
    const q = new URLSearchParams({ limit: "100" });
    if (stateSel.value) q.set("state", stateSel.value);
    if (kindSel.value) q.set("kind", kindSel.value);
    try {
      const data = await api(`/api/v1/jobs?${q}`);
      body.replaceChildren(...data.jobs.map((job) => {
        const pct = progressOf(job);
        return el("tr", { "data-job": job.id },
          el("td", {}, el("a", { href: `#/job/${job.id}` }, job.id)), el("td", {}, job.kind),
          el("td", {}, stateCell(job.state)), el("td", {}, model(job)),
          el("td", { class: "num" }, pct === null ? "–" : `${pct}%`), el("td", { class: "num" }, duration(job)),
          el("td", {}, fmtTime(job.created_at)));
      }));
      status.textContent = `${data.total} job${data.total === 1 ? "" : "s"}`;
      status.className = "muted";
    } catch (err) {
      status.textContent = err.message;
      status.className = "error";
    }
    if (!stopped) timer = setTimeout(load, POLL_MS);
  };
  setView(() => { stopped = true; clearTimeout(timer); });
  await load();
}

// ---- one job ------------------------------------------------------------------------------------------

// Server-sent events read from a fetch stream: calls onEvent(name, data) until the stream ends or is aborted.
async function followEvents(jobId, signal, onEvent) {
  const response = await api(`/api/v1/jobs/${encodeURIComponent(jobId)}/events`, { raw: true, signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

async function showJob(jobId) {
  const abort = new AbortController();
  let logTimer = null, stopped = false;
  setView(() => { stopped = true; abort.abort(); clearTimeout(logTimer); });
  let job;
  try {
    job = (await api(`/api/v1/jobs/${encodeURIComponent(jobId)}`)).job;
  } catch (err) {
    main.replaceChildren(el("h2", {}, `Job ${jobId}`), notice(err.message, true));
    return;
  }
  const meta = el("dl", { class: "meta" });
  const bars = el("div", { id: "progress", "aria-live": "polite" });
  const actions = el("div", { class: "actions" });
  const message = el("div", { id: "job-message" });
  const logPre = el("pre", { class: "log", id: "log", tabindex: "0" });
  const reportBox = el("div", { id: "report" });
  const parts = {};
  main.replaceChildren(el("h2", {}, `Job ${jobId}`), meta, actions, message, el("h3", {}, "Progress"), bars,
    el("h3", {}, "Report"), reportBox, el("h3", {}, "Log"), logPre);

  const render = () => {
    meta.replaceChildren(...[["Kind", job.kind], ["State", stateCell(job.state)], ["Model", model(job)],
      ["Created", fmtTime(job.created_at)], ["Duration", duration(job)], ["Request id", job.request_id || "–"],
      ["Output", job.output_dir || "–"]].flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    actions.replaceChildren();
    if (ACTIVE.includes(job.state)) {
      actions.append(el("button", { class: "danger", onclick: cancel }, "Cancel"));
    } else {
      actions.append(el("button", { class: "danger", onclick: remove }, "Delete"));
    }
    message.replaceChildren(job.error ? notice(`${job.state}: ${job.error.message || job.error.type}`, true) : "");
    for (const [part, p] of Object.entries(job.progress || {})) updatePart(part, p);
    if (!Object.keys(job.progress || {}).length && !bars.childElementCount) {
      bars.append(el("p", { class: "muted", id: "no-progress" }, ACTIVE.includes(job.state)
        ? "Waiting for the first progress event…" : "No progress was reported."));
    }
  };
  const updatePart = (part, p) => {
    const total = typeof p.total === "number" && p.total > 0 ? p.total : null;
    const done = Math.min(p.done || 0, total || p.done || 0);
    const pct = total ? Math.floor((100 * done) / total) : null;
    const label = `${part}: ${done}${total ? ` / ${total} (${pct}%)` : ""}`
      + (p.failed ? `, ${p.failed} failed` : "") + (typeof p.rps === "number" ? `, ${p.rps.toFixed(1)} req/s` : "");
    let row = parts[part];
    if (!row) {
      const none = document.getElementById("no-progress");
      if (none) none.remove();
      const id = `bar-${Object.keys(parts).length}`;
      row = parts[part] = { bar: el("progress", { max: "100", id, "aria-label": part }), text: el("span", {}) };
      bars.append(el("div", { class: "bar" }, row.bar, row.text));
    }
    if (pct === null) row.bar.removeAttribute("value"); else row.bar.value = pct;
    row.text.textContent = label;
  };
  const loadLog = async () => {
    try {
      const text = await api(`/api/v1/jobs/${encodeURIComponent(jobId)}/log`);
      logPre.textContent = text || "(empty)";
      logPre.scrollTop = logPre.scrollHeight;
    } catch (err) { logPre.textContent = err.message; }
    if (!stopped && ACTIVE.includes(job.state)) logTimer = setTimeout(loadLog, POLL_MS);
  };
  const loadReport = async () => {
    if (ACTIVE.includes(job.state)) {
      reportBox.replaceChildren(el("p", { class: "muted" }, "The report appears when the job has finished."));
      return;
    }
    if (!job.output_dir) {
      reportBox.replaceChildren(el("p", { class: "muted" }, "This job wrote no run directory, so no report."));
      return;
    }
    try {
      const html = await api(`/api/v1/jobs/${encodeURIComponent(jobId)}/report`);
      const frame = el("iframe", { class: "report", title: `report of job ${jobId}`, sandbox: "allow-scripts" });
      frame.srcdoc = html; // sandboxed without allow-same-origin: its scripts cannot reach this page or its token
      // on a service without a token the report's own URL opens in a tab (served with a sandboxing CSP)
      const link = openapi.components.securitySchemes ? null : el("p", {}, el("a", {
        href: `/api/v1/jobs/${encodeURIComponent(jobId)}/report`, target: "_blank", rel: "noopener" },
      "Open the report in a new tab"));
      reportBox.replaceChildren(...[link, frame].filter(Boolean));
    } catch (err) {
      reportBox.replaceChildren(el("p", { class: "muted" }, err.message));
    }
  };
  async function cancel() {
    try {
      job = (await api(`/api/v1/jobs/${encodeURIComponent(jobId)}/cancel`, { method: "POST" })).job;
      message.replaceChildren(notice(`Cancel requested: the job is ${job.state}.`));
    } catch (err) { message.replaceChildren(notice(err.message, true)); }
  }
  async function remove() {
    if (!confirm(`Delete job ${jobId}, its output directory and its log?`)) return;
    try {
      await api(`/api/v1/jobs/${encodeURIComponent(jobId)}`, { method: "DELETE" });
      location.hash = "#/jobs";
    } catch (err) { message.replaceChildren(notice(err.message, true)); }
  }

  render();
  loadLog();
  if (!ACTIVE.includes(job.state)) { loadReport(); return; }
  loadReport();
  try {
    await followEvents(jobId, abort.signal, (name, data) => {
      if (name === "progress") {
        updatePart(data.part || "", data);
      } else if (name === "state" || name === "end") {
        job = data;
        render();
        if (name === "end") { clearTimeout(logTimer); loadLog(); loadReport(); }
      }
    });
  } catch (err) {
    if (!stopped) message.replaceChildren(notice(`live progress stopped: ${err.message}`, true));
  }
}

// ---- submit -------------------------------------------------------------------------------------------

// Job kinds: every POST /api/v1/jobs/{kind} in /openapi.json, with its request schema.
function submitKinds() {
  const kinds = [];
  for (const [path, ops] of Object.entries(openapi.paths)) {
    const m = /^\/api\/v1\/jobs\/([a-z_]+)$/.exec(path);
    if (!m || !ops.post) continue;
    const ref = ops.post.requestBody.content["application/json"].schema.$ref;
    kinds.push({ kind: m[1], path, summary: ops.post.summary, schema: resolve(ref) });
  }
  return kinds;
}

function resolve(ref) { return ref.split("/").slice(1).reduce((o, k) => o[k], openapi); }

function typesOf(schema) {
  const types = new Set();
  const add = (s) => {
    if (s.$ref) s = resolve(s.$ref);
    if (s.anyOf || s.oneOf) (s.anyOf || s.oneOf).forEach(add);
    else if (Array.isArray(s.type)) s.type.forEach((t) => types.add(t));
    else if (s.type) types.add(s.type);
    else if (s.enum) types.add("string");
  };
  add(schema);
  return types;
}

function enumOf(schema) {
  if (schema.enum) return schema.enum;
  for (const s of schema.anyOf || schema.oneOf || []) if (s.enum) return s.enum;
  return null;
}

function itemsOf(schema) {
  if (schema.items) return schema.items;
  for (const s of schema.anyOf || schema.oneOf || []) if (s.items) return s.items;
  return null;
}

// One form control for one schema property; `read()` gives the value to send, or undefined to leave it out.
function fieldFor(name, schema, required) {
  const id = `field-${name}`;
  const types = typesOf(schema);
  const choices = enumOf(schema);
  const items = itemsOf(schema);
  const many = types.has("array") && items && enumOf(items);
  let input;
  if (many) { // a list of named choices (eval datasets): pick any number
    input = el("select", { id, name, multiple: true, size: String(Math.min(8, many.length)) },
      many.map((c) => el("option", { value: JSON.stringify(c) }, String(c))));
  } else if (choices) {
    input = el("select", { id, name }, el("option", { value: "" }, required ? "choose…" : "(default)"),
      choices.map((c) => el("option", { value: JSON.stringify(c) }, String(c))));
  } else if (types.size === 1 && types.has("boolean") || (types.has("boolean") && types.has("null") && types.size === 2)) {
    input = el("select", { id, name }, el("option", { value: "" }, "(default)"),
      el("option", { value: "true" }, "true"), el("option", { value: "false" }, "false"));
  } else if (types.has("object") && !types.has("string")) {
    input = el("textarea", { id, name, placeholder: "JSON object", spellcheck: "false" });
  } else {
    const secret = /api_key|token|secret|password/.test(name);
    input = el("input", { id, name, type: secret ? "password" : "text", autocomplete: "off", spellcheck: "false",
      placeholder: types.has("array") ? "one value, or several separated by commas" : "" });
  }
  const help = [schema.description || "", many ? "Ctrl-click (⌘-click) picks several." : "",
    schema.default !== undefined && schema.default !== null ? `Default: ${JSON.stringify(schema.default)}.` : ""]
    .filter(Boolean).join(" ");
  const error = el("p", { class: "field-error", id: `error-${name}`, role: "alert" });
  const box = el("div", { class: "field", "data-field": name },
    el("label", { for: id }, name + (required ? " (required)" : "")), input,
    help ? el("p", { class: "help", id: `help-${name}` }, help) : null, error);
  input.setAttribute("aria-describedby", `error-${name}${help ? ` help-${name}` : ""}`);
  const read = () => {
    if (many) {
      const picked = Array.from(input.selectedOptions, (o) => JSON.parse(o.value));
      return picked.length ? picked : undefined;
    }
    const text = input.value.trim();
    if (text === "") return undefined;
    if (choices) return JSON.parse(text);
    if (input.tagName === "SELECT") return text === "true";
    if ((types.has("object") || types.has("array")) && /^[[{]/.test(text)) {
      try { return JSON.parse(text); } catch (e) { return text; } // the service names the field and the problem
    }
    if (types.has("array") && text.includes(",")) return text.split(",").map((t) => scalar(t.trim(), items ? typesOf(items) : types));
    return scalar(text, types);
  };
  return { name, box, input, error, read };
}

function scalar(text, types) {
  if ((types.has("integer") || types.has("number")) && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return Number(text);
  if (types.has("boolean") && (text === "true" || text === "false")) return text === "true";
  if (types.has("null") && text === "null") return null;
  return text;
}

function showSubmit(kindName) {
  setView(() => {});
  const kinds = submitKinds();
  const chosen = kinds.find((k) => k.kind === kindName) || kinds.find((k) => k.kind === "perf") || kinds[0];
  const tabs = el("div", { class: "tabs", role: "navigation", "aria-label": "Job kind" }, kinds.map((k) =>
    el("a", { href: `#/submit/${k.kind}`, "aria-current": k === chosen ? "page" : null }, k.kind)));
  const schema = chosen.schema;
  const required = schema.required || [];
  const names = Object.keys(schema.properties);
  const fields = {};
  for (const name of names) fields[name] = fieldFor(name, schema.properties[name], required.includes(name));
  const formError = el("div", { id: "form-error" });
  const more = el("details", { id: "more-options" }, el("summary", {}, "More options"),
    names.filter((n) => !required.includes(n)).map((n) => fields[n].box));
  const submit = el("button", { type: "submit" }, `Submit ${chosen.kind} job`);
  const form = el("form", { id: "submit-form", novalidate: true },
    required.map((n) => fields[n].box), more, formError, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const f of Object.values(fields)) { f.error.textContent = ""; f.box.classList.remove("invalid"); }
    formError.replaceChildren();
    const body = {};
    for (const f of Object.values(fields)) {
      const value = f.read();
      if (value !== undefined) body[f.name] = value;
    }
    submit.disabled = true;
    try {
      const answer = await api(chosen.path, { method: "POST", json: body });
      location.hash = `#/job/${answer.job_id}`;
    } catch (err) {
      const field = err.body.error && err.body.error.field;
      const top = field ? String(field).split(/[.[]/)[0] : null;
      if (top && fields[top]) {
        const f = fields[top];
        f.error.textContent = err.body.error.reason ? `${field}: ${err.body.error.reason}` : err.message;
        f.box.classList.add("invalid");
        if (f.box.parentElement === more) more.open = true;
        f.input.focus();
      } else {
        formError.replaceChildren(notice(err.message, true));
      }
    } finally {
      submit.disabled = false;
    }
  });
  main.replaceChildren(el("h2", {}, "Submit a job"), tabs, el("p", { class: "muted" }, chosen.summary), form);
}

// ---- compare ------------------------------------------------------------------------------------------

function fmtNum(v, digits = 2) {
  if (v === null || v === undefined) return "–";
  return Math.abs(v) >= 1000 ? v.toFixed(0) : v.toFixed(digits);
}

async function showCompare(query) {
  setView(() => {});
  let jobs;
  try {
    jobs = (await api("/api/v1/jobs?state=completed&limit=200")).jobs.filter((j) => j.output_dir);
  } catch (err) {
    main.replaceChildren(el("h2", {}, "Compare two runs"), notice(err.message, true));
    return;
  }
  const option = (j, selected) => el("option", { value: j.id, selected },
    `${j.id} · ${j.kind} · ${model(j)} · ${fmtTime(j.finished_at)}`);
  const base = el("select", { id: "compare-base" }, el("option", { value: "" }, "choose…"),
    jobs.map((j) => option(j, query.get("base") === j.id)));
  const newer = el("select", { id: "compare-new" }, el("option", { value: "" }, "choose…"),
    jobs.map((j) => option(j, query.get("new") === j.id)));
  const out = el("div", { id: "comparison", "aria-live": "polite" });
  const form = el("form", { class: "filters", id: "compare-form" },
    el("div", {}, el("label", { for: "compare-base" }, "Base run"), base),
    el("div", {}, el("label", { for: "compare-new" }, "New run"), newer),
    el("div", {}, el("button", { type: "submit" }, "Compare")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    out.replaceChildren(el("p", { class: "muted" }, "Comparing…"));
    try {
      const q = new URLSearchParams({ base: base.value, new: newer.value });
      const data = await api(`/api/v1/compare?${q}`);
      out.replaceChildren(...comparisonTable(data.comparison), el("h3", {}, "Charts"),
        el("p", { class: "muted", id: "compare-page-status" }, "Drawing both runs on the same charts…"));
      q.set("format", "html");
      const html = await api(`/api/v1/compare?${q}`);
      const frame = el("iframe", { class: "report", title: "comparison page", sandbox: "allow-scripts" });
      frame.srcdoc = html; // sandboxed without allow-same-origin, as the job reports
      document.getElementById("compare-page-status").replaceWith(frame);
    } catch (err) {
      out.replaceChildren(notice(err.message, true));
    }
  });
  main.replaceChildren(el("h2", {}, "Compare two runs"), jobs.length < 2
    ? notice("Two completed runs with output directories are needed to compare.") : "", form, out);
}

function comparisonTable(cmp) {
  const rows = cmp.rows.map((r) => el("tr", { class: r.noise === "beyond" ? "beyond" : null },
    el("td", {}, r.point), el("td", {}, r.metric), el("td", { class: "num" }, fmtNum(r.base)),
    el("td", { class: "num" }, fmtNum(r.new)), el("td", { class: "num" }, fmtNum(r.change)),
    el("td", { class: "num" }, r.rel_change === null ? "–" : `${(100 * r.rel_change).toFixed(1)}%`),
    el("td", {}, r.noise === null ? "no verdict" : r.noise === "beyond" ? "beyond noise" : "within noise")));
  const parts = [el("p", { class: "muted" }, `${cmp.kind} runs: ${cmp.rows.length} metrics compared, `
    + `${cmp.rows.filter((r) => r.noise === "beyond").length} beyond noise.`)];
  if (cmp.only_base.length) parts.push(el("p", {}, `Only in the base run: ${cmp.only_base.join(", ")}`));
  if (cmp.only_new.length) parts.push(el("p", {}, `Only in the new run: ${cmp.only_new.join(", ")}`));
  parts.push(el("table", {}, el("thead", {}, el("tr", {}, ["Point", "Metric", "Base", "New", "Change", "Change %",
    "Noise"].map((h) => el("th", { scope: "col" }, h)))), el("tbody", {}, rows)));
  return parts;
}

// ---- routing and login --------------------------------------------------------------------------------

async function route() {
  const [path, search] = (location.hash.slice(1) || "/jobs").split("?");
  const query = new URLSearchParams(search || "");
  const [, section, arg] = path.split("/");
  for (const a of document.querySelectorAll("nav a")) {
    a.toggleAttribute("aria-current", a.dataset.section === section || (section === "job" && a.dataset.section === "jobs"));
    if (a.hasAttribute("aria-current")) a.setAttribute("aria-current", "page");
  }
  try {
    if (!openapi) openapi = await api("/openapi.json");
    if (openapi.components.securitySchemes && !token()) {
      setView(() => {});
      main.replaceChildren(el("h2", {}, "Sign in"), notice("This service needs a bearer token: enter it in "
        + "the Bearer token field above. It is kept for this browser session only."));
      document.getElementById("token").focus();
      return;
    }
    if (section === "job" && arg) await showJob(decodeURIComponent(arg));
    else if (section === "submit") showSubmit(arg);
    else if (section === "compare") await showCompare(query);
    else await showJobs(query);
  } catch (err) {
    main.replaceChildren(notice(err.message, true));
  }
}

document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("token");
  if (input.value) sessionStorage.setItem(TOKEN_KEY, input.value);
  input.value = "";
  showAuth(token() ? "token set for this browser session" : "no token", false);
  route();
});
document.getElementById("forget").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  showAuth("no token", false);
  route();
});
window.addEventListener("hashchange", route);
showAuth(token() ? "token set for this browser session" : "no token", false);
route();
