// The experiment folders: a card each, with how far its batch has come.
"use strict";

(() => {
  const { el } = MG;

  function render(data) {
    const box = document.getElementById("folders");
    document.getElementById("empty").hidden = data.folders.length > 0;
    box.replaceChildren(...data.folders.map((f) => {
      const done = f.runs ? (f.finished / f.runs) * 100 : 0;
      const bar = el("div", { class: done >= 100 ? "bar done" : "bar" });
      bar.style.width = `${done}%`;
      return el("a", { class: "card folder", href: `/experiments/${f.key}` },
        el("h2", { text: f.name }),
        el("p", { class: "mono muted", text: f.folder }),
        f.error ? el("p", { class: "error", text: f.error }) : null,
        el("div", { class: "progress" }, bar, el("span", { class: "label", text: `${f.finished}/${f.runs} finished` })),
        el("p", { class: "stats" },
          el("span", { class: "ok", text: `${f.succeeded} succeeded` }), " · ",
          el("span", { class: f.finished - f.succeeded ? "bad" : "muted", text: `${f.finished - f.succeeded} failed` }),
          " · updated ", f.updated ? MG.clock(f.updated) : "–"));
    }));
  }

  MG.live(() => "/events/experiments", { experiments: render });
})();
