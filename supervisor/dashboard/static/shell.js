// One shell: its details, a coordination run's progress, and the live output of both streams.
// Each stream is held as one byte range [start, end) of its log: it opens on the last window,
// grows at the end as the job writes, and "load earlier" prepends the window before `start`.
"use strict";

(() => {
  const { el } = MG;
  const shellId = document.getElementById("shell").dataset.shellId;
  const base = `/api/shells/${encodeURIComponent(shellId)}`;
  const MAX_CHARS = 2_000_000; // beyond this the view starts again from the last window
  const KNOWN = new Set(["shell_id", "name", "status", "exit_code", "signal", "timed_out", "pid", "command", "cwd",
    "created_at", "start_time", "end_time", "duration_seconds", "stdout_path", "stderr_path", "log_dir",
    "status_file", "coordination", "message", "resource_usage", "attempt", "retries", "after"]);
  const LIVE = new Set(["queued", "running", "paused"]);
  const FINAL = new Set(["completed", "timeout", "error", "interrupted"]);
  const streams = {
    stdout: { pre: document.getElementById("out-stdout"), start: 0, end: null, size: 0 },
    stderr: { pre: document.getElementById("out-stderr"), start: 0, end: null, size: 0 },
  };
  const follow = document.getElementById("follow");
  const earlier = document.getElementById("earlier");
  let shown = "stdout";
  let last = null;

  // -- details --------------------------------------------------------------------------------------

  function renderDetails(details) {
    MG.syncClock(details.now);
    last = details;
    const status = details.status;
    const row = details.row;
    document.title = `${status.name || shellId} · ${status.status} · mgsup`;
    document.getElementById("status-pill").replaceWith(
      Object.assign(MG.pill(status.status), { id: "status-pill" }));
    document.getElementById("title-name").textContent = status.name || "";
    document.getElementById("command").textContent = details.command_line;
    const message = document.getElementById("message");
    message.hidden = !status.message;
    message.textContent = status.message || "";
    document.getElementById("kill").hidden = !LIVE.has(status.status);
    const verb = MG.switchable(status.status, status.backend);
    document.getElementById("pause").hidden = verb !== "pause";
    document.getElementById("resume").hidden = verb !== "resume";
    document.getElementById("restart").hidden = false;
    const facts = [
      ["PID", status.pid ?? "–"],
      ["Exit", MG.exitText(row) + (status.timed_out ? " · timed out" : "")],
      ["Created", MG.clock(row.created)],
      ["Started", MG.clock(row.start)],
      ["Ended", MG.clock(row.end)],
      ["Duration", MG.duration(row), "duration"],
      ["Working directory", status.cwd, null, true],
    ];
    if (status.retries) facts.push(["Attempt", `${status.attempt} of ${status.retries + 1}`]);
    if (status.after && status.after.length) facts.push(["Starts after", status.after.join(", "), null, true]);
    if (status.log_dir) facts.push(["Log directory", status.log_dir, null, true]);
    if (status.status_file) facts.push(["status.json", status.status_file, null, true]);
    const usage = status.resource_usage;
    if (usage) {
      facts.push(["CPU time", MG.seconds((usage.user_seconds || 0) + (usage.system_seconds || 0))]);
      if (usage.max_rss_kb) facts.push(["Peak memory", MG.bytes(usage.max_rss_kb * 1024)]);
    }
    for (const [key, value] of Object.entries(status)) {
      if (KNOWN.has(key) || value === null || value === undefined || typeof value === "object") continue;
      facts.push([key.replaceAll("_", " "), String(value)]);
    }
    document.getElementById("facts").replaceChildren(...facts.map(([term, value, id, mono]) => el("div", { class: "fact" },
      el("dt", { text: term }),
      el("dd", { class: mono ? "mono" : null, id: id ? `fact-${id}` : null, title: mono ? value : null, text: value }))));
    renderCoordination(details);
  }

  function renderCoordination(details) {
    const summary = details.status.coordination;
    const section = document.getElementById("coordination");
    section.hidden = !summary;
    if (!summary) return;
    const phase = summary.phase || "initial_answer";
    const steps = ["initial_answer", "enforcement", "presentation", FINAL.has(phase) ? phase : "completed"];
    const at = phase === "completed" ? 4 : FINAL.has(phase) ? 3 : Math.max(0, steps.indexOf(phase));
    document.getElementById("phases").replaceChildren(...steps.map((step, i) => el("li", {
      class: i === 3 && FINAL.has(phase) && phase !== "completed" ? "bad" : i < at ? "done" : i === at ? "current" : "",
      text: i === 3 ? (FINAL.has(phase) ? phase : "done") : MG.phaseName(step),
    })));
    const percent = Math.max(0, Math.min(100, summary.completion_percentage || 0));
    const bar = document.getElementById("coord-bar");
    bar.style.width = `${percent}%`;
    bar.className = `bar${summary.stalled ? " stalled" : percent >= 100 ? " done" : ""}`;
    bar.parentElement.dataset.percent = String(percent);
    document.getElementById("coord-percent").textContent = `${percent}%`;

    const badges = [];
    if (summary.winner) badges.push(el("span", { class: "badge winner", id: "winner" }, "★ winner ", el("b", { text: summary.winner })));
    if (summary.outcome) badges.push(el("span", { class: `badge outcome o-${summary.outcome}`, text: `outcome: ${summary.outcome}` }));
    if (summary.stalled) badges.push(el("span", { class: "badge warn", text: "stalled: status.json stopped changing" }));
    if (summary.active_agent && !FINAL.has(phase)) badges.push(el("span", { class: "badge", text: `active: ${summary.active_agent}` }));
    for (const [label, value] of usageFigures(summary, details.status.budget)) badges.push(el("span", { class: "badge", text: `${label}: ${value}` }));
    const over = summary.budget_exceeded;
    if (over) badges.push(el("span", { class: "badge bad", id: "budget-exceeded", text: `budget exceeded: ${over.limit} used ${over.used.toLocaleString()}, budget ${over.budget.toLocaleString()}` }));
    if (summary.error) badges.push(el("span", { class: "badge bad", text: `error: ${summary.error}` }));
    document.getElementById("coord-badges").replaceChildren(...badges);

    renderAgents(summary, details.timeline, details.now);
    renderVotes(summary.votes || {});
    const answer = details.answer || summary.final_answer_preview;
    document.getElementById("answer-box").hidden = !answer;
    document.getElementById("answer").textContent = answer || "";
  }

  // Tokens, cost (the runner's figure or the price table's) and the run's budget.
  function usageFigures(summary, budget) {
    const figures = [];
    const tokens = summary.tokens || {};
    if (typeof tokens.total_tokens === "number") {
      figures.push(["tokens", `${tokens.total_tokens.toLocaleString()} (${(tokens.input_tokens ?? 0).toLocaleString()} in, ` +
        `${(tokens.output_tokens ?? 0).toLocaleString()} out)`]);
    }
    if (typeof summary.cost_usd === "number") {
      const source = { runner: " (runner)", prices: " (prices.yaml)" }[summary.cost_source] || "";
      figures.push(["cost", `$${summary.cost_usd.toFixed(4)}${source}`]);
    }
    for (const [key, value] of Object.entries(budget || {})) figures.push([`budget ${key}`, value.toLocaleString()]);
    return figures;
  }

  function renderAgents(summary, timeline, now) {
    const agents = summary.agents || {};
    const ids = Object.keys(agents);
    const first = timeline.length ? timeline[0].time : null;
    const ended = FINAL.has(summary.phase);
    const lastTime = timeline.length ? timeline[timeline.length - 1].time : null;
    const stop = ended ? lastTime : Math.max(lastTime || 0, now);
    const span = first !== null && stop > first ? stop - first : 0;
    document.getElementById("agents").replaceChildren(...ids.map((id) => {
      const lane = el("div", { class: "lane", title: "status over time" });
      if (span > 0) {
        timeline.forEach((entry, i) => {
          const status = entry.agents[id];
          if (!status) return;
          const to = i + 1 < timeline.length ? timeline[i + 1].time : stop;
          const seg = el("span", { class: `seg a-${status}`, title: `${status} · ${MG.seconds(to - entry.time)}` });
          seg.style.left = `${((entry.time - first) / span) * 100}%`;
          seg.style.width = `${Math.max(0.5, ((to - entry.time) / span) * 100)}%`;
          lane.append(seg);
        });
      } else {
        lane.append(Object.assign(el("span", { class: `seg a-${agents[id]}` }), {}));
        lane.lastChild.style.width = "100%";
      }
      const error = (summary.errors || {})[id];
      return el("div", { class: `agent${summary.active_agent === id && !ended ? " active" : ""}`, dataset: { agent: id } },
        el("span", { class: "agent-name mono", text: id }),
        el("span", { class: `apill a-${agents[id]}`, text: agents[id] || "?" }),
        lane,
        error ? el("span", { class: "agent-error", text: typeof error === "object" ? (error.message || JSON.stringify(error)) : String(error) }) : null);
    }));
    const seen = new Set(timeline.flatMap((entry) => Object.values(entry.agents)).concat(Object.values(agents)));
    document.getElementById("legend").replaceChildren(...[...seen].filter(Boolean).sort().map((status) =>
      el("span", {}, el("i", { class: `a-${status}` }), status)));
    document.getElementById("timeline-hint").textContent = span > 0
      ? `Status over ${MG.seconds(span)} as seen by this dashboard.` : "";
  }

  function renderVotes(votes) {
    const entries = Object.entries(votes);
    const most = Math.max(1, ...entries.map(([, n]) => n));
    const box = document.getElementById("votes");
    if (!entries.length) {
      box.replaceChildren(el("p", { class: "muted", text: "no votes yet" }));
      return;
    }
    box.replaceChildren(...entries.map(([label, count]) => {
      const bar = el("span", { class: "vbar" });
      bar.style.width = `${(count / most) * 100}%`;
      return el("div", { class: "vote" }, el("span", { class: "mono", text: label }),
        el("span", { class: "vtrack" }, bar), el("b", { text: String(count) }));
    }));
  }

  // -- output ---------------------------------------------------------------------------------------

  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  function atBottom(pre) {
    return pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 24;
  }

  function setWindow(name, win) {
    const s = streams[name];
    s.pre.textContent = win.text;
    s.start = win.start;
    s.end = win.end;
    s.size = Math.max(win.size || 0, win.end);
    afterChange(name);
  }

  function append(chunk) {
    const s = streams[chunk.stream];
    if (s.end === null) return;
    if (chunk.reset) {
      setWindow(chunk.stream, chunk);
      return;
    }
    let text = chunk.text;
    if (chunk.end <= s.end) return; // already shown (a reconnection resent it)
    if (chunk.start < s.end) text = decoder.decode(encoder.encode(text).slice(s.end - chunk.start));
    else if (chunk.start > s.end) return;
    s.pre.append(text);
    s.end = chunk.end;
    s.size = Math.max(chunk.size || 0, chunk.end);
    if (s.pre.textContent.length > MAX_CHARS) {
      MG.getJSON(`${base}/output?stream=${chunk.stream}&end=${s.end}`).then((win) => setWindow(chunk.stream, win));
      return;
    }
    if (chunk.stream === "stderr" && shown !== "stderr" && text) document.getElementById("dot-stderr").hidden = false;
    afterChange(chunk.stream);
  }

  function afterChange(name) {
    const s = streams[name];
    document.getElementById(`size-${name}`).textContent = MG.bytes(s.size);
    if (name === shown) {
      earlier.hidden = s.start <= 0;
      earlier.textContent = `Load earlier output (${MG.bytes(s.start)} before)`;
      if (follow.checked) s.pre.scrollTop = s.pre.scrollHeight;
    }
  }

  async function loadEarlier() {
    const s = streams[shown];
    earlier.disabled = true;
    try {
      const win = await MG.getJSON(`${base}/output?stream=${shown}&end=${s.start}`);
      const height = s.pre.scrollHeight;
      s.pre.prepend(win.text);
      s.start = win.start;
      s.pre.scrollTop += s.pre.scrollHeight - height;
      follow.checked = false;
      afterChange(shown);
    } finally {
      earlier.disabled = false;
    }
  }

  function show(name) {
    shown = name;
    for (const tab of document.querySelectorAll(".tab")) tab.setAttribute("aria-selected", String(tab.dataset.stream === name));
    for (const [key, s] of Object.entries(streams)) s.pre.hidden = key !== name;
    if (name === "stderr") document.getElementById("dot-stderr").hidden = true;
    afterChange(name);
  }

  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => show(tab.dataset.stream));
  for (const s of Object.values(streams)) {
    s.pre.addEventListener("scroll", () => { follow.checked = atBottom(s.pre); });
  }
  follow.addEventListener("change", () => afterChange(shown));
  document.getElementById("wrap").addEventListener("change", (event) => {
    document.querySelector(".output").classList.toggle("nowrap", !event.target.checked);
  });
  earlier.addEventListener("click", loadEarlier);
  document.getElementById("kill").addEventListener("click", () => MG.killDialog(shellId, last && last.status.name));
  document.getElementById("pause").addEventListener("click", () => MG.switchDialog(shellId, last && last.status.name, true));
  document.getElementById("resume").addEventListener("click", () => MG.switchDialog(shellId, last && last.status.name, false));
  document.getElementById("restart").addEventListener("click", () => MG.restartDialog(
    shellId, last && last.status.name, Boolean(last && LIVE.has(last.status.status))));

  setInterval(() => {
    if (last && (last.status.status === "running" || last.status.status === "paused")) {
      const cell = document.getElementById("fact-duration");
      if (cell) cell.textContent = MG.duration(last.row);
    }
  }, 1000);

  async function start() {
    const [out, err] = await Promise.all(["stdout", "stderr"].map(
      (name) => MG.getJSON(`${base}/output?stream=${name}`)));
    setWindow("stdout", out);
    setWindow("stderr", err);
    const source = MG.live(() => `/events/shells/${encodeURIComponent(shellId)}?stdout=${streams.stdout.end}&stderr=${streams.stderr.end}`, {
      details: renderDetails,
      output: append,
      gone: () => {
        source.close();
        for (const id of ["kill", "pause", "resume", "restart"]) document.getElementById(id).hidden = true;
        document.getElementById("message").hidden = false;
        document.getElementById("message").textContent = "This shell's record was removed (cleaned).";
      },
    });
  }
  start();
})();
