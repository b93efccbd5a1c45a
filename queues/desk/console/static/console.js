// Escalator agent console: live SLA countdowns, and the queue and the case kept current from
// the desk's event stream (/v1/events, authenticated by the console's cookie). The pages work
// without this script; it only keeps them live.
"use strict";

(function () {
  const body = document.body;
  const prefix = body.dataset.prefix || "/console";
  // Count down against the server's clock, not the browser's.
  const serverNow = Date.parse(body.dataset.now || "");
  const skew = Number.isNaN(serverNow) ? 0 : serverNow - Date.now();
  const now = () => Date.now() + skew;

  function span(ms) {
    const total = Math.floor(Math.abs(ms) / 1000);
    const d = Math.floor(total / 86400);
    const h = Math.floor((total % 86400) / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    const two = (n) => String(n).padStart(2, "0");
    if (d > 0) return `${d}d ${two(h)}h`;
    if (h > 0) return `${h}h ${two(m)}m`;
    return `${m}m ${two(s)}s`;
  }

  function tickClocks() {
    const at = now();
    document.querySelectorAll(".sla[data-due]").forEach((clock) => {
      const due = Date.parse(clock.dataset.due);
      if (Number.isNaN(due)) return;
      const warn = clock.dataset.warn ? Date.parse(clock.dataset.warn) : NaN;
      let state = "running";
      if (clock.dataset.state === "breached" || at >= due) state = "breached";
      else if (clock.dataset.state === "warning" || (!Number.isNaN(warn) && at >= warn)) state = "warning";
      clock.classList.remove("sla-running", "sla-warning", "sla-breached");
      clock.classList.add(`sla-${state}`);
      clock.dataset.live = state;
      const left = at < due ? `${span(due - at)} left` : `overdue ${span(at - due)}`;
      const time = clock.querySelector(".sla-time");
      const text = state === "running" ? left : `${left} · ${state}`;
      if (time && time.textContent !== text) time.textContent = text;
      clock.title = `due ${new Date(due).toLocaleString()}`;
    });
  }

  function formatTimes(root) {
    root.querySelectorAll("time[datetime]:not([data-formatted])").forEach((el) => {
      const at = Date.parse(el.getAttribute("datetime"));
      if (Number.isNaN(at)) return;
      el.textContent = new Date(at).toLocaleString();
      el.dataset.formatted = "1";
    });
  }

  // Refresh a fragment when the stream says something changed; poll as a fallback.
  function follow(url, onEvent, refresh) {
    let timer = null;
    const soon = () => {
      if (timer) return;
      timer = setTimeout(() => { timer = null; refresh(); }, 250);
    };
    if ("EventSource" in window) {
      const stream = new EventSource("/v1/events");
      stream.addEventListener("case", (message) => {
        try {
          if (onEvent(JSON.parse(message.data))) soon();
        } catch (error) {
          soon();
        }
      });
      stream.addEventListener("open", soon); // catch up on anything missed while reconnecting
    }
    setInterval(soon, 15000);
  }

  async function fetchFragment(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (response.status === 401) {
      window.location.assign(`${prefix}/login`);
      return null;
    }
    return response.ok ? response.text() : null;
  }

  // Fragments carry a version (data-version); redraw only when it changed.
  const versionOf = (html) => (/data-version="([^"]*)"/.exec(html) || [])[1];
  const currentVersion = (root) => {
    const marker = root.querySelector("[data-version]");
    return marker ? marker.dataset.version : undefined;
  };

  // Redraw `root` with `html`, keeping keyboard focus on the same control (by id, by
  // name and value, or else by its place among the focusable controls).
  const FOCUSABLE = "a[href], button, input:not([type=hidden]), select, textarea, summary";
  function redraw(root, html) {
    const focused = document.activeElement;
    let restore = null;
    if (focused && root.contains(focused)) {
      const index = [...root.querySelectorAll(FOCUSABLE)].indexOf(focused);
      const selector = focused.id
        ? `#${CSS.escape(focused.id)}`
        : focused.name && focused.value
          ? `[name="${CSS.escape(focused.name)}"][value="${CSS.escape(focused.value)}"]`
          : null;
      restore = () => {
        const again = (selector && root.querySelector(selector)) || root.querySelectorAll(FOCUSABLE)[index];
        if (again) again.focus();
      };
    }
    root.innerHTML = html;
    formatTimes(root);
    tickClocks();
    if (restore) restore();
  }

  function liveQueue(table) {
    const rows = table.querySelector("tbody");
    const announcer = document.getElementById("queue-announcer");
    const ids = () => new Set([...rows.querySelectorAll("tr[data-case-id]")].map((tr) => tr.dataset.caseId));
    follow(table.dataset.liveQueue, () => true, async () => {
      const html = await fetchFragment(table.dataset.liveQueue);
      if (html === null || versionOf(html) === currentVersion(rows)) return;
      const before = ids();
      redraw(rows, html);
      const added = [...rows.querySelectorAll("tr[data-case-id]")].filter((tr) => !before.has(tr.dataset.caseId));
      added.forEach((tr) => tr.classList.add("is-new"));
      if (added.length && announcer) {
        announcer.textContent = added.length === 1 ? "1 new case in your queue" : `${added.length} new cases in your queue`;
      }
    });
  }

  function liveCase(layout) {
    const live = document.getElementById("case-live");
    const caseId = layout.dataset.caseId;
    follow(layout.dataset.liveCase, (event) => event.case_id === caseId, async () => {
      const html = await fetchFragment(layout.dataset.liveCase);
      if (html === null || versionOf(html) === currentVersion(live)) return;
      redraw(live, html);
    });
  }

  // Heartbeat: tells the desk this console is still open. Without one for the presence
  // timeout (ESCALATOR_DESK_PRESENCE_TIMEOUT_SECONDS) the agent goes offline and their
  // cases go back to the queue; the selector then shows what the desk decided.
  function heartbeat() {
    const select = document.getElementById("presence");
    if (!select) return;
    let known = select.value; // the presence the desk last reported
    const beat = async () => {
      try {
        const response = await fetch("/v1/me/heartbeat", { method: "POST", credentials: "same-origin" });
        if (!response.ok) return;
        const state = await response.json();
        if (state.presence && state.presence !== known) {
          // show a change made elsewhere (e.g. expiry), never undo a choice the agent is making
          const untouched = select.value === known && document.activeElement !== select;
          known = state.presence;
          if (untouched) select.value = state.presence;
        }
      } catch (error) {
        // offline for a moment: the next beat tries again
      }
    };
    beat();
    setInterval(beat, 30000);
  }

  heartbeat();
  formatTimes(document);
  tickClocks();
  setInterval(tickClocks, 1000);
  const queue = document.querySelector("[data-live-queue]");
  if (queue) liveQueue(queue);
  const layout = document.querySelector("[data-live-case]");
  if (layout) liveCase(layout);
})();
