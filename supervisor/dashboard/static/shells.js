// The shells table: one page of rows at a time (filters and paging done by the server), pushed
// over server-sent events whenever it changes. Rows are updated in place, keyed by shell id.
"use strict";

(() => {
  const { el } = MG;
  const params = new URLSearchParams(location.search);
  const query = {
    status: params.get("status") || "",
    group: params.get("group") || "",
    name: params.get("name") || "",
    page: Number(params.get("page") || 1),
  };
  const tbody = document.querySelector("#shells tbody");
  const nameInput = document.getElementById("filter-name");
  const groupSelect = document.getElementById("filter-group");
  let source = null;
  let current = null;
  const rows = new Map(); // shell id -> { tr, row }

  nameInput.value = query.name;

  function connect() {
    if (source) source.close();
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value && !(key === "page" && value === 1)) search.set(key, value);
    }
    const text = search.toString();
    history.replaceState(null, "", text ? `/?${text}` : "/");
    source = MG.live(() => `/events/shells${text ? `?${text}` : ""}`, { table: render });
  }

  function render(view) {
    MG.syncClock(view.now);
    current = view;
    if (view.page !== query.page) query.page = view.page;
    renderChips(view);
    renderGroups(view);
    const seen = new Set();
    let previous = null;
    for (const row of view.rows) {
      seen.add(row.id);
      let entry = rows.get(row.id);
      if (!entry) {
        entry = { tr: el("tr", { dataset: { id: row.id } }) };
        rows.set(row.id, entry);
      }
      if (JSON.stringify(entry.row) !== JSON.stringify(row)) {
        entry.row = row;
        fill(entry.tr, row);
      }
      const expected = previous ? previous.nextSibling : tbody.firstChild;
      if (expected !== entry.tr) tbody.insertBefore(entry.tr, expected);
      previous = entry.tr;
    }
    for (const [id, entry] of rows) {
      if (!seen.has(id)) {
        entry.tr.remove();
        rows.delete(id);
      }
    }
    const empty = document.getElementById("empty");
    empty.hidden = view.rows.length > 0;
    empty.textContent = view.total === 0
      ? "No shells on record yet. Start one: mgsup start -- 'echo hello'"
      : "No shell matches these filters.";
    document.getElementById("range").textContent = view.matched
      ? `${view.first}–${view.first + view.rows.length - 1} of ${view.matched}` : "";
    document.getElementById("pageinfo").textContent = `page ${view.page} of ${view.pages}`;
    document.getElementById("prev").disabled = view.page <= 1;
    document.getElementById("next").disabled = view.page >= view.pages;
    document.getElementById("clean").disabled = !endedCount(view);
  }

  function endedCount(view) {
    return ["stopped", "failed", "killed", "lost"].reduce((sum, s) => sum + (view.counts[s] || 0), 0);
  }

  function fill(tr, row) {
    tr.className = `s-${row.status}`;
    tr.dataset.status = row.status;
    const link = el("a", { href: `/shells/${row.id}`, class: "mono", text: row.id });
    const active = ["running", "queued", "paused"].includes(row.status);
    const kill = active
      ? el("button", { type: "button", class: "icon danger", title: "Kill…", "aria-label": `kill ${row.id}`,
        onclick: () => MG.killDialog(row.id, row.name), text: "■" })
      : null;
    const verb = MG.switchable(row.status, row.backend);
    const change = verb
      ? el("button", { type: "button", class: `icon secondary ${verb}`, title: verb === "pause" ? "Pause…" : "Resume…",
        "aria-label": `${verb} ${row.id}`, onclick: () => MG.switchDialog(row.id, row.name, verb === "pause"),
        text: verb === "pause" ? "❚❚" : "▶" })
      : null;
    tr.replaceChildren(
      el("td", { class: "c-status" }, MG.pill(row.status), row.timed_out ? el("span", { class: "tag", text: "timeout" }) : null),
      el("td", { class: "c-id" }, link),
      el("td", { class: "c-name", text: row.name || "" }, row.group ? el("span", { class: "tag", text: row.group }) : null,
        row.backend && row.backend !== "local" ? el("span", { class: "tag", text: row.backend }) : null),
      el("td", { class: "c-command mono", title: row.command, text: row.command }),
      el("td", { class: "c-progress" }, MG.progressBar(row.progress)),
      el("td", { class: "c-age", text: MG.age(row) }),
      el("td", { class: "c-duration", text: MG.duration(row) }),
      el("td", { class: `c-exit${row.exit_code ? " bad" : ""}`, text: MG.exitText(row) }),
      el("td", { class: "c-actions" }, change, kill),
    );
  }

  function renderChips(view) {
    const chips = document.getElementById("chips");
    const all = Object.values(view.counts).reduce((a, b) => a + b, 0);
    const chip = (status, label, count) => el("button", {
      type: "button", role: "tab", class: `chip s-${status || "all"}`, "aria-selected": String(query.status === status),
      onclick: () => { query.status = status; query.page = 1; connect(); },
    }, el("span", { class: "chip-label", text: label }), el("span", { class: "count", text: String(count) }));
    chips.replaceChildren(chip("", "all", all),
      ...Object.entries(view.counts).map(([status, count]) => chip(status, status, count)));
  }

  function renderGroups(view) {
    groupSelect.hidden = view.groups.length === 0 && !query.group;
    const options = [el("option", { value: "", text: "all groups" }),
      ...view.groups.map((g) => el("option", { value: g, text: g }))];
    if (groupSelect.options.length !== options.length) groupSelect.replaceChildren(...options);
    groupSelect.value = query.group;
  }

  let typing = null;
  nameInput.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { query.name = nameInput.value.trim(); query.page = 1; connect(); }, 200);
  });
  groupSelect.addEventListener("change", () => { query.group = groupSelect.value; query.page = 1; connect(); });
  document.getElementById("prev").addEventListener("click", () => { query.page -= 1; connect(); });
  document.getElementById("next").addEventListener("click", () => { query.page += 1; connect(); });
  document.getElementById("clean").addEventListener("click", () => {
    const count = current ? endedCount(current) : 0;
    MG.confirmDialog({
      title: "Clean ended shells?",
      text: `This removes the records and logs of ${count} ended shell${count === 1 ? "" : "s"} ` +
        "(stopped, failed, killed, lost). Running, paused and queued shells stay.",
      ok: "Clean",
      action: () => MG.post("/api/clean"),
    });
  });

  // Ages and running durations move every second without a message from the server.
  setInterval(() => {
    for (const { tr, row } of rows.values()) {
      tr.querySelector(".c-age").textContent = MG.age(row);
      if (row.status === "running" || row.status === "paused") {
        tr.querySelector(".c-duration").textContent = MG.duration(row);
      }
    }
  }, 1000);

  connect();
})();
