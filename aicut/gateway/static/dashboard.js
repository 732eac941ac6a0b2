// aicut dashboard: vanilla JS, no framework, no CDN. Live from /api/events (server-sent events), never reloads.
// Every value from the server is inserted as text (textContent), never as HTML.
"use strict";

const PAGE = 25;
const STATE_LABELS = {
  QUEUED: "排队 Queued", DISPATCHED: "已分发 Dispatched", RUNNING: "运行中 Running",
  SUCCEEDED: "成功 Succeeded", FAILED: "失败 Failed", CANCELLED: "已取消 Cancelled",
};
const STAGE_LABELS = {
  resolve: "解析 resolve", fetch: "下载 fetch", probe: "检测 probe", transcribe: "转写 transcribe",
  plan: "剪辑方案 plan", render: "渲染 render", subtitles: "字幕 subtitles", cover: "封面 cover",
  publish: "发布 publish", done: "完成 done",
};

const view = { state: "", offset: 0, machines: null, clockOffset: 0 };
let refreshTimer = null;
let lastRefresh = 0;

// ------------------------------------------------------------------------------------------------ helpers
function $(id) { return document.getElementById(id); }

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function text(id, value) { $(id).textContent = value; }

function dash(v) { return v === null || v === undefined || v === "" ? "—" : v; }

function pct(rate) { return rate === null || rate === undefined ? "—" : (rate * 100).toFixed(1) + "%"; }

function serverNow() { return Date.now() + view.clockOffset; }

function fmtTime(ms) {
  if (!ms) return "—";
  const d = new Date(ms), now = new Date();
  const hms = d.toLocaleTimeString("zh-CN", { hour12: false });
  if (d.toDateString() === now.toDateString()) return hms;
  return `${d.getMonth() + 1}-${String(d.getDate()).padStart(2, "0")} ${hms}`;
}

function fmtAge(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 10) return seconds.toFixed(1) + " s";
  if (seconds < 120) return Math.round(seconds) + " s";
  if (seconds < 7200) return Math.round(seconds / 60) + " min";
  return Math.round(seconds / 3600) + " h";
}

function fmtDuration(s) { return s === null || s === undefined ? "—" : s < 60 ? s.toFixed(2) + " s" : fmtAge(s); }

function badge(cls, label) { return h("span", { class: `badge ${cls}` }, label); }

function stateBadge(state) { return badge(state, STATE_LABELS[state] || state); }

function stageLabel(stage) { return STAGE_LABELS[stage] || stage || "—"; }

function bar(percent, attrs) {
  const fill = h("span");
  fill.style.width = Math.max(0, Math.min(100, percent)) + "%";
  return h("div", Object.assign({ class: "bar", "data-percent": percent.toFixed(1) }, attrs || {}),
    fill, h("em", null, percent.toFixed(1) + "%"));
}

function setBar(el, percent) {
  el.dataset.percent = percent.toFixed(1);
  el.querySelector("span").style.width = Math.max(0, Math.min(100, percent)) + "%";
  el.querySelector("em").textContent = percent.toFixed(1) + "%";
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

// ------------------------------------------------------------------------------------------------ machines
function renderMachines(data) {
  view.machines = data;
  view.clockOffset = data.generated_unix_ms - Date.now();
  const rows = $("machine-rows");
  rows.replaceChildren();
  if (!data.machines.length) {
    rows.append(h("tr", { class: "empty" }, h("td", { colspan: 11 }, "machines.yaml 中没有机器 No machine in machines.yaml")));
  }
  for (const m of data.machines) {
    const status = m.online
      ? badge("ok", "在线 Online")
      : badge("bad", "离线 Offline");
    const load = !m.online ? badge("", "—") : m.busy ? badge("info", "忙碌 Busy") : badge("", "空闲 Idle");
    const rotation = [];
    if (m.ejected) rotation.push(badge("bad", "已隔离 Ejected"));
    if (m.draining) rotation.push(badge("warn", "排空中 Draining"));
    if (m.online && m.state === "NOT_SERVING") rotation.push(badge("bad", "暂停 Not serving"));
    if (!rotation.length) rotation.push(m.online ? badge("ok", "正常 In rotation") : badge("", "—"));
    const nvenc = m.nvenc ? badge("ok", "有 Yes") : h("span", { title: m.nvenc_reason || "" }, "无 No");
    rows.append(h("tr", { "data-address": m.address, "data-online": String(m.online), class: m.online ? "" : "offline" },
      h("td", null, h("strong", null, m.address), m.worker_id && m.worker_id !== m.address
        ? h("div", { class: "muted small" }, m.worker_id) : null),
      h("td", null, status, m.state_reason ? h("div", { class: "muted small" }, m.state_reason) : null),
      h("td", null, load),
      h("td", null, `${m.slots_used} / ${m.slots_total}`),
      h("td", null, m.priority),
      h("td", null, nvenc),
      // Online: the age the server measured (a new event comes when it grows); offline: it grows here.
      h("td", { class: "age", "data-seen": m.online ? null : m.last_seen_unix_ms || null }, m.online
        ? fmtAge(m.heartbeat_age_s) : m.last_seen_unix_ms ? fmtAge(Math.max(0, serverNow() - m.last_seen_unix_ms) / 1000) : "—"),
      h("td", null, m.online ? m.rtt_ms.toFixed(1) + " ms" : "—"),
      h("td", null, rotation),
      h("td", null, `${m.dispatched} / ${m.succeeded} / ${m.failed}`),
      h("td", { class: "wrap muted small" }, dash(m.last_error))));
  }
  const s = data.summary;
  text("c-machines", `${s.online} / ${s.total}`);
  text("c-slots", `${s.slots_used} / ${s.slots_total}`);
  renderRunning(data.machines);
}

function renderRunning(machines) {
  const list = $("running-list");
  const live = [];
  for (const m of machines) for (const t of m.tasks) live.push([m, t]);
  if (!live.length) {
    list.replaceChildren(h("p", { class: "empty" }, "没有运行中的任务 No task running"));
    return;
  }
  const existing = new Map([...list.querySelectorAll(".run")].map((el) => [el.dataset.taskId, el]));
  const keep = new Set();
  for (const [m, t] of live) {
    keep.add(t.id);
    let row = existing.get(t.id);
    if (!row) {
      row = h("div", { class: "run", "data-task-id": t.id },
        h("div", null, h("button", { type: "button", class: "link", on: { click: () => openDetail(t.id) } }, t.id),
          h("div", { class: "muted small attempt" })),
        h("div", { class: "machine" }),
        h("div", { class: "stage" }),
        bar(t.percent, { "data-task-id": t.id }));
      list.append(row);
    }
    row.querySelector(".attempt").textContent = `第 ${t.attempt} 次尝试 attempt ${t.attempt}`;
    row.querySelector(".machine").textContent = m.address;
    row.querySelector(".stage").textContent = stageLabel(t.stage);
    setBar(row.querySelector(".bar"), t.percent);
    const listed = document.querySelector(`#task-rows tr[data-task-id="${CSS.escape(t.id)}"] .live`);
    if (listed) listed.textContent = ` ${stageLabel(t.stage)} ${t.percent.toFixed(1)}%`;
  }
  for (const [id, el] of existing) if (!keep.has(id)) el.remove();
  list.querySelectorAll(".empty").forEach((el) => el.remove());
}

function tickAges() {
  for (const td of document.querySelectorAll("td.age")) {
    const seen = Number(td.dataset.seen);
    if (seen) td.textContent = fmtAge(Math.max(0, serverNow() - seen) / 1000);
  }
}

// ------------------------------------------------------------------------------------------------ cluster
function renderCluster(c) {
  text("version", `v${c.version}`);
  text("uptime", `运行 Up ${fmtAge(c.uptime_s)}`);
  text("c-queued", c.queue_length);
  text("c-active", c.tasks.active);
  text("c-success", pct(c.dispatch.success_rate));
  text("c-failure", pct(c.dispatch.failure_rate));
  const on = c.monitoring.enabled;
  $("c-monitoring").replaceChildren(on ? badge("ok", "开 On") : badge("", "关 Off"));
  $("m-state").replaceChildren(on ? badge("ok", "开 On") : badge("", "关 Off"));
  text("m-check", c.monitoring.last_check_unix_ms ? fmtTime(c.monitoring.last_check_unix_ms) : "—");
  text("m-error", dash(c.monitoring.last_error));

  const d = c.dispatch;
  const kv = $("stats-kv");
  kv.replaceChildren(
    h("dt", null, "已完成 Finished"), h("dd", null, d.finished),
    h("dt", null, "成功 Succeeded"), h("dd", null, `${d.succeeded} (${pct(d.success_rate)})`),
    h("dt", null, "失败 Failed"), h("dd", null, `${d.failed} (${pct(d.failure_rate)})`),
    h("dt", null, "已取消 Cancelled"), h("dd", null, d.cancelled),
    h("dt", null, "排队 Queued"), h("dd", null, c.tasks.queued),
    h("dt", null, "已创建 Created"), h("dd", null, c.counters.created),
    h("dt", null, "本次启动后分发 Dispatched since start"),
    h("dd", null, `${d.attempts_since_start.dispatched} (成功 ok ${d.attempts_since_start.succeeded}, 失败 failed ${d.attempts_since_start.failed})`));
  const spread = $("spread");
  spread.replaceChildren();
  for (const m of d.per_machine) {
    spread.append(h("div", { class: "row" }, h("span", null, m.address), bar(m.share * 100),
      h("span", { class: "muted small" }, `${m.dispatched} · 成功率 ${pct(m.success_rate)}`)));
  }
  if (!d.per_machine.length) spread.append(h("p", { class: "empty" }, "—"));
  if (!$("event-list").children.length) for (const e of c.recent_events) addEvent(e);
}

// ------------------------------------------------------------------------------------------------ tasks
async function loadTasks() {
  const q = new URLSearchParams({ offset: view.offset, limit: PAGE });
  if (view.state) q.set("state", view.state);
  const page = await getJSON(`/api/tasks?${q}`);
  if (page.total && page.offset >= page.total) {   // the page emptied under us: step back
    view.offset = Math.max(0, Math.floor((page.total - 1) / PAGE) * PAGE);
    return loadTasks();
  }
  const rows = $("task-rows");
  rows.replaceChildren();
  if (!page.tasks.length) rows.append(h("tr", { class: "empty" }, h("td", { colspan: 8 }, "没有任务 No tasks")));
  for (const t of page.tasks) {
    rows.append(h("tr", { "data-task-id": t.id },
      h("td", null, h("button", { type: "button", class: "link", on: { click: () => openDetail(t.id) } }, t.id)),
      h("td", { class: "wrap" }, dash(t.title)),
      h("td", null, stateBadge(t.state), t.state === "RUNNING"
        ? h("span", { class: "live small" }, t.stage ? ` ${stageLabel(t.stage)} ${t.percent.toFixed(1)}%` : "") : null),
      h("td", null, dash(t.worker)),
      h("td", null, t.attempt),
      h("td", null, fmtTime(t.created_unix_ms)),
      h("td", null, fmtTime(t.finished_unix_ms)),
      h("td", { class: "wrap small" }, t.error ? `${t.error.code ? t.error.code + ": " : ""}${t.error.message}` : "—")));
  }
  const first = page.total ? page.offset + 1 : 0;
  const last = page.offset + page.tasks.length;
  text("page-info", `${first}–${last} / ${page.total}`);
  $("prev").disabled = page.offset === 0;
  $("next").disabled = last >= page.total;
}

async function refresh() {
  lastRefresh = Date.now();
  try {
    const [cluster] = await Promise.all([getJSON("/api/cluster/status"), loadTasks()]);
    renderCluster(cluster);
  } catch (err) {
    console.warn(err);
  }
}

// At most one refresh a second, however many task events arrive.
function scheduleRefresh() {
  if (refreshTimer) return;
  const wait = Math.max(0, 1000 - (Date.now() - lastRefresh));
  refreshTimer = setTimeout(() => { refreshTimer = null; refresh(); }, wait);
}

// ------------------------------------------------------------------------------------------------ task detail
function section(title, ...content) { return [h("h3", null, title), ...content]; }

function table(headers, rows) {
  return h("table", { class: "grid" }, h("thead", null, h("tr", null, headers.map((x) => h("th", null, x)))),
    h("tbody", null, rows.map((r) => h("tr", null, r.map((x) => h("td", { class: "wrap" }, x))))));
}

async function openDetail(id) {
  const body = $("detail-body");
  body.replaceChildren(h("p", { class: "muted" }, "加载中 Loading…"));
  const dialog = $("detail");
  if (!dialog.open) dialog.showModal();
  let d;
  try {
    d = await getJSON(`/api/tasks/${encodeURIComponent(id)}`);
  } catch (err) {
    body.replaceChildren(h("p", null, `无法加载 Could not load: ${err.message}`));
    return;
  }
  const t = d.task;
  const parts = [
    h("h2", null, `任务 Task ${t.id} `, stateBadge(t.state)),
    h("dl", { class: "kv" },
      h("dt", null, "标题 Title"), h("dd", null, dash(t.title)),
      h("dt", null, "来源 Origin"), h("dd", null, t.origin),
      h("dt", null, "机器 Machine"), h("dd", null, dash(d.machine)),
      h("dt", null, "尝试 Attempt"), h("dd", null, t.attempt),
      h("dt", null, "当前阶段 Stage"), h("dd", null, `${stageLabel(d.current.stage)} ${d.current.percent}%`),
      h("dt", null, "等待 Waiting"), h("dd", null, fmtDuration(d.durations.waiting_s)),
      h("dt", null, "处理 Running"), h("dd", null, fmtDuration(d.durations.running_s)),
      h("dt", null, "总计 Total"), h("dd", null, fmtDuration(d.durations.total_s))),
  ];
  if (d.error) parts.push(...section("错误 Error", h("p", null, badge("bad", d.error.code || "ERROR"), " ",
    d.error.message, d.error.retryable ? " (可重试 retryable)" : " (不重试 final)")));
  parts.push(...section("来源 Sources", table(["名称 Name", "URL", "类型 Kind"],
    d.spec.sources.map((s) => [s.name, s.url, s.kind]))));
  parts.push(...section("时间线 Timeline", table(["步骤 Step", "时间 Time"],
    d.timeline.map((x) => [x.step, fmtTime(x.at_unix_ms)]))));
  if (d.stages.length) parts.push(...section("各阶段耗时 Stage times", table(["阶段 Stage", "秒 Seconds"],
    d.stages.map((s) => [stageLabel(s.name), s.seconds.toFixed(3)]))));
  for (const p of d.plans) parts.push(...section("剪辑方案 Edit plan", h("dl", { class: "kv" },
    h("dt", null, "原时长 Source"), h("dd", null, fmtDuration(p.source_duration_s)),
    h("dt", null, "剪后 Output"), h("dd", null, fmtDuration(p.output_duration_s)),
    h("dt", null, "删除 Removed"), h("dd", null, `${fmtDuration(p.removed_s)} · ` +
      Object.entries(p.removed_by_reason).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(", ")),
    h("dt", null, "标记 Flagged"), h("dd", null, p.flagged ? `是 yes: ${p.flag_reason}` : "否 no"))));
  if (d.media.length) parts.push(...section("媒体 Media", table(["名称 Name", "容器 Container", "时长 Duration", "大小 Size", "视频 Video", "音频 Audio"],
    d.media.map((m) => [m.name, m.container, fmtDuration(m.duration_s), `${(m.size_bytes / 1e6).toFixed(2)} MB`,
      m.video.map((v) => `${v.codec} ${v.width}×${v.height} ${v.fps} fps`).join(", ") || "—",
      m.audio.map((a) => `${a.codec} ${a.sample_rate} Hz ×${a.channels}`).join(", ") || "—"]))));
  if (d.outputs.length) parts.push(...section("输出 Outputs", table(["名称 Name", "类型 Kind", "URL", "大小 Size"],
    d.outputs.map((o) => [o.name, o.kind, o.url ? h("a", { href: o.url, rel: "noreferrer", target: "_blank" }, o.url) : "—",
      `${(o.size_bytes / 1e6).toFixed(2)} MB`]))));
  if (d.history.length) parts.push(...section("尝试记录 Attempt history", table(["尝试 Attempt", "机器 Machine", "结果 Outcome", "详情 Detail"],
    d.history.map((x) => [dash(x.attempt), dash(x.worker), dash(x.outcome), x.detail]))));
  body.replaceChildren(...parts);
}

// ------------------------------------------------------------------------------------------------ events
function describe(e) {
  if (e.kind === "task") {
    const from = e.from ? `${e.from} → ` : "";
    return `任务 task ${e.task_id}#${e.attempt}: ${from}${e.to}${e.text ? " · " + e.text : ""}`;
  }
  if (e.kind === "progress") return `任务 task ${e.task_id}#${e.attempt}: ${stageLabel(e.stage)}`;
  if (e.kind === "worker") return `机器 worker ${e.worker}: ${e.text}`;
  if (e.kind === "monitoring") return `论坛监控 monitoring: ${e.text}`;
  return `${e.kind}: ${e.text}`;
}

function addEvent(e) {
  const list = $("event-list");
  list.prepend(h("li", { "data-kind": e.kind }, h("time", null, fmtTime(e.at_unix_ms)), describe(e)));
  while (list.children.length > 50) list.lastElementChild.remove();
}

function connect() {
  const conn = $("conn");
  const source = new EventSource("/api/events");
  source.onopen = () => {
    conn.dataset.state = "live";
    conn.textContent = "实时 Live";
    scheduleRefresh();   // catch up on what happened while disconnected
  };
  source.onerror = () => {
    conn.dataset.state = "reconnecting";
    conn.textContent = "重连中 Reconnecting…";
  };
  source.addEventListener("machines", (ev) => renderMachines(JSON.parse(ev.data)));
  source.onmessage = (ev) => {
    const e = JSON.parse(ev.data);
    addEvent(e);
    if (e.kind === "task" || e.kind === "monitoring" || e.kind === "worker") scheduleRefresh();
  };
}

// ------------------------------------------------------------------------------------------------ start
function start() {
  for (const b of $("tabs").querySelectorAll("button")) {
    b.addEventListener("click", () => {
      $("tabs").querySelectorAll("button").forEach((x) => x.classList.toggle("on", x === b));
      view.state = b.dataset.state;
      view.offset = 0;
      loadTasks().catch(console.warn);
    });
  }
  $("prev").addEventListener("click", () => { view.offset = Math.max(0, view.offset - PAGE); loadTasks().catch(console.warn); });
  $("next").addEventListener("click", () => { view.offset += PAGE; loadTasks().catch(console.warn); });
  getJSON("/api/machines/status").then(renderMachines).catch(console.warn);
  refresh();
  connect();
  setInterval(tickAges, 1000);
}

document.addEventListener("DOMContentLoaded", start);
