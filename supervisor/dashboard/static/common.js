// What every page of the mgsup dashboard shares: building elements (text only, never HTML),
// formatting, the live-update connection, POSTs with the CSRF token, and the confirmation dialog.
"use strict";

const MG = (() => {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  let clockOffset = 0; // server time minus browser time, in seconds

  // Every text goes in through textContent: output a job printed can never become markup.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function now() {
    return Date.now() / 1000 + clockOffset;
  }

  function syncClock(serverNow) {
    if (typeof serverNow === "number") clockOffset = serverNow - Date.now() / 1000;
  }

  function seconds(value) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    if (value < 10) return `${value.toFixed(1)}s`;
    const whole = Math.floor(value);
    if (whole < 60) return `${whole}s`;
    const pad = (n) => String(n).padStart(2, "0");
    if (whole < 3600) return `${Math.floor(whole / 60)}m${pad(whole % 60)}s`;
    if (whole < 86400) return `${Math.floor(whole / 3600)}h${pad(Math.floor((whole % 3600) / 60))}m`;
    return `${Math.floor(whole / 86400)}d${pad(Math.floor((whole % 86400) / 3600))}h`;
  }

  function bytes(n) {
    if (n === null || n === undefined) return "";
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
    return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  }

  function clock(epoch) {
    if (!epoch) return "–";
    return new Date(epoch * 1000).toLocaleString(undefined, {
      month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
    });
  }

  function age(row) {
    return row.created ? seconds(Math.max(0, now() - row.created)) : "–";
  }

  function duration(row) {
    if ((row.status === "running" || row.status === "paused") && row.start) {
      return seconds(Math.max(0, now() - row.start));
    }
    return seconds(row.duration);
  }

  function pill(status) {
    return el("span", { class: `pill s-${status}`, text: status });
  }

  const PHASES = { initial_answer: "answering", enforcement: "voting", presentation: "presenting" };

  function phaseName(phase) {
    return PHASES[phase] || phase || "starting";
  }

  function progressBar(progress) {
    if (!progress) return el("span", { class: "muted", text: "–" });
    const percent = Math.max(0, Math.min(100, progress.percent || 0));
    // A run that ended without an answer says how, whatever its bar reached.
    const failed = progress.outcome && !["running", "answered"].includes(progress.outcome);
    const state = failed ? " bad" : progress.stalled ? " stalled" : percent >= 100 ? " done" : "";
    const bar = el("div", { class: `bar${state}` });
    bar.style.width = `${failed ? 100 : percent}%`;
    const label = failed ? progress.outcome.replaceAll("_", " ")
      : progress.winner ? `★ ${progress.winner}`
        : `${phaseName(progress.phase)} ${progress.percent ?? 0}%${progress.stalled ? " · stalled" : ""}`;
    return el("div", { class: "progress", title: `${progress.phase || "starting"} ${percent}%`, dataset: { percent } },
      bar, el("span", { class: "label", text: label }));
  }

  function exitText(row) {
    if (row.signal) return row.signal;
    return row.exit_code === null || row.exit_code === undefined ? "–" : String(row.exit_code);
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify(body || {}),
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
    return data;
  }

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
    return data;
  }

  // One live connection per page; the badge in the top bar says whether updates are flowing.
  // `url` is a function, so a reconnection asks for what the page has not seen yet.
  function live(url, handlers) {
    const badge = document.getElementById("live");
    const state = (name, text) => { badge.className = `live ${name}`; badge.textContent = text; };
    let source = null;
    let retry = null;
    function open() {
      source = new EventSource(url());
      source.onopen = () => state("on", "live");
      source.onerror = () => {
        state("wait", "reconnecting");
        source.close();
        retry = setTimeout(open, 1000);
      };
      for (const [name, handler] of Object.entries(handlers)) {
        source.addEventListener(name, (event) => handler(JSON.parse(event.data)));
      }
    }
    open();
    return {
      close() {
        clearTimeout(retry);
        source.close();
      },
    };
  }

  // A modal question; resolves to true when confirmed. `action` runs before the dialog closes, so
  // its error can be shown in it. `undoable` actions get a plain OK button instead of a red one.
  function confirmDialog({ title, text, ok, extra, action, undoable }) {
    const dialog = document.getElementById("confirm");
    const error = document.getElementById("confirm-error");
    document.getElementById("confirm-title").textContent = title;
    document.getElementById("confirm-text").textContent = text;
    document.getElementById("confirm-extra").replaceChildren(...(extra ? [extra] : []));
    const okButton = document.getElementById("confirm-ok");
    okButton.textContent = ok;
    okButton.className = undoable ? "" : "danger";
    okButton.disabled = false;
    error.hidden = true;
    return new Promise((resolve) => {
      const onClick = async (event) => {
        event.preventDefault();
        okButton.disabled = true;
        okButton.textContent = `${ok}…`;
        try {
          await action();
          finish(true);
        } catch (err) {
          error.textContent = err.message;
          error.hidden = false;
          okButton.disabled = false;
          okButton.textContent = ok;
        }
      };
      const onClose = () => finish(false);
      function finish(result) {
        okButton.removeEventListener("click", onClick);
        dialog.removeEventListener("close", onClose);
        if (dialog.open) dialog.close();
        resolve(result);
      }
      okButton.addEventListener("click", onClick);
      dialog.addEventListener("close", onClose);
      dialog.showModal();
    });
  }

  function killDialog(shellId, name) {
    const grace = el("input", { type: "number", id: "grace", min: "0", step: "0.5", value: "5" });
    const extra = el("label", { class: "grace" }, "Seconds between SIGTERM and SIGKILL ", grace);
    return confirmDialog({
      title: `Kill ${name ? `${name} (${shellId})` : shellId}?`,
      text: "Its whole process tree gets SIGTERM, then SIGKILL after the grace period. This cannot be undone.",
      ok: "Kill",
      extra,
      action: () => post(`/api/shells/${encodeURIComponent(shellId)}/kill`, { grace: Number(grace.value) }),
    });
  }

  // What a shell's pause/resume button does: pause a running one, resume a paused one; a cluster
  // shell (a Ray job) cannot be paused.
  function switchable(status, backend) {
    if (backend && backend !== "local") return null;
    return { running: "pause", paused: "resume" }[status] || null;
  }

  // Pausing stops the whole tree with SIGSTOP (its slot is kept, its timeout waits); resuming continues it.
  function switchDialog(shellId, name, pause) {
    const verb = pause ? "Pause" : "Resume";
    return confirmDialog({
      title: `${verb} ${name ? `${name} (${shellId})` : shellId}?`,
      text: pause
        ? "Every process of its tree is stopped (SIGSTOP) until you resume it. It keeps its slot, and its " +
          "timeout does not run while it is paused; Kill still ends it."
        : "Every process of its tree continues (SIGCONT), and so does its timeout.",
      ok: verb,
      undoable: true,
      action: () => post(`/api/shells/${encodeURIComponent(shellId)}/${pause ? "pause" : "resume"}`),
    });
  }

  // Restarting runs the same command as a new shell; its page is opened once it exists.
  async function restartDialog(shellId, name, live) {
    let started = null;
    const confirmed = await confirmDialog({
      title: `Restart ${name ? `${name} (${shellId})` : shellId}?`,
      text: (live ? "It is killed first (its whole process tree), then its " : "Its ") +
        "command runs again as a new shell, in the same directory, with the dashboard's environment.",
      ok: "Restart",
      action: async () => { started = await post(`/api/shells/${encodeURIComponent(shellId)}/restart`); },
    });
    if (confirmed && started) window.location.assign(`/shells/${encodeURIComponent(started.shell_id)}`);
    return confirmed;
  }

  return {
    el, now, syncClock, seconds, bytes, clock, age, duration, pill, phaseName, progressBar, exitText,
    post, getJSON, live, confirmDialog, killDialog, switchable, switchDialog, restartDialog,
  };
})();
