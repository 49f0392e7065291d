// One experiment folder: the summary per configuration, the plot, and every run, live while the batch runs.
"use strict";

(() => {
  const { el } = MG;
  const key = document.getElementById("experiment").dataset.key;
  const plot = document.getElementById("plot");
  const note = document.getElementById("plot-note");
  let plotVersion = null;

  const counts = (obj) => Object.entries(obj || {}).filter(([, n]) => n).map(([k, n]) => `${k}: ${n}`).join(", ");
  const cell = (value) => el("td", { text: value === null || value === undefined || value === "" ? "–" : String(value) });

  function render(report) {
    MG.syncClock(report.now);
    document.getElementById("exp-name").textContent = report.name;
    document.getElementById("exp-folder").textContent = report.folder;
    const error = document.getElementById("exp-error");
    error.hidden = !report.error;
    error.textContent = report.error || "";
    const verdict = document.getElementById("verdict");
    verdict.hidden = !report.verdict;
    verdict.textContent = report.verdict || "";
    document.querySelector("#labels tbody").replaceChildren(...report.labels.map((s) => el("tr", {},
      el("td", {}, el("b", { text: s.label }), report.better === s.label ? el("span", { class: "tag good", text: "better" }) : null),
      cell(`${s.succeeded}/${s.runs}`),
      el("td", {}, successBar(s.success_rate)),
      cell(s.mean_duration === null ? null : MG.seconds(s.mean_duration)),
      cell(s.mean_tokens === null ? null : Math.round(s.mean_tokens).toLocaleString()),
      cell(counts(s.outcomes)),
      cell(counts(s.winners)))));
    document.querySelector("#runs tbody").replaceChildren(...report.rows.map((r) => el("tr", {},
      el("td", { class: "mono", text: r.experiment_id }),
      cell(r.label),
      el("td", {}, r.finished ? el("span", { class: `pill ${r.succeeded ? "s-stopped" : "s-failed"}`, text: r.outcome })
        : r.live ? MG.progressBar(r.live.progress) || MG.pill(r.live.status) : MG.pill(r.status)),
      cell(r.winner),
      cell(r.duration_seconds === null ? null : MG.seconds(r.duration_seconds)),
      cell(counts(r.votes)),
      cell(r.total_tokens === null ? null : r.total_tokens.toLocaleString()),
      el("td", {}, r.shell_id ? el("a", { class: "mono", href: `/shells/${r.shell_id}`, text: r.shell_id }) : "–"))));
    if (report.version !== plotVersion && report.rows.length) {
      plotVersion = report.version;
      const next = new Image();
      next.onload = () => { plot.src = next.src; plot.hidden = false; note.textContent = ""; };
      next.onerror = () => fetch(next.src).then((r) => r.json()).then((d) => { note.textContent = d.error || ""; })
        .catch(() => { note.textContent = "the plot could not be drawn"; });
      next.src = `/experiments/${key}/plot.png?v=${report.version}`;
    }
  }

  function successBar(rate) {
    const bar = el("div", { class: "bar ok" });
    bar.style.width = `${Math.round(rate * 100)}%`;
    return el("div", { class: "progress small" }, bar, el("span", { class: "label", text: `${Math.round(rate * 100)}%` }));
  }

  MG.live(() => `/events/experiments/${key}`, { report: render });
})();
