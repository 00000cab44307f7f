// wardwatch nurses' page: polls the JSON API and redraws the alert and patient tables in place.
// Where the server pushes alert changes (GET /api/stream, server-sent events), each one redraws at
// once; polling goes on beside it, as the fallback and for the patients' readings, which are not
// pushed. Vanilla JS, no build step. Data are written with textContent only, never as HTML.
"use strict";

(() => {
  const NAME_KEY = "wardwatch.nurseName";
  const NOW_HEADER = "X-Wardwatch-Now";
  const NEW_HIGHLIGHT_MS = 15000;

  const RISK_LABELS = { high: "High", medium: "Medium", "low-medium": "Low–medium", low: "Low" };
  const SEVERITY_LABELS = {
    emergency: "Emergency", urgent: "Urgent", review: "Review", technical: "Technical",
  };
  const RULE_LABELS = {
    news2: "NEWS2", no_data: "No data", message_gap: "Message gap", risk: "Behaviour risk",
  };
  // Short names for the NEWS2 parameters a score lacked (metric wire names, plus likely aliases).
  const PARAMETER_LABELS = {
    systolic_bp: "BP", diastolic_bp: "BP", blood_pressure: "BP",
    consciousness: "consciousness", acvpu: "consciousness",
    resp_rate: "RR", respiration_rate: "RR",
    spo2: "SpO2", heart_rate: "HR", pulse: "HR", temperature: "temp",
    on_oxygen: "O2 status", air_or_oxygen: "O2 status",
  };

  const body = document.body;
  const pollMs = Math.max(250, Number.parseInt(body.dataset.pollMs, 10) || 5000);
  const query = new URLSearchParams(window.location.search);
  const ward = query.get("ward") || null;
  // A notification's link names its patient: their row and alerts are marked and shown first.
  const focusPatient = query.get("patient") || null;
  let focusShown = false;
  const streamOn = body.dataset.stream === "on";
  // A stream refused outright (e.g. 503) is not retried by EventSource itself; we retry it.
  const STREAM_RETRY_MS = 10000;

  const $ = (id) => document.getElementById(id);
  const nameInput = $("nurse-name");
  const connection = $("connection");
  const message = $("message");
  const announcer = $("announcer");
  const alertsBody = $("alerts").tBodies[0];
  const patientsBody = $("patients").tBodies[0];

  let clockSkewMs = 0; // server clock minus browser clock, from the NOW_HEADER
  let lastSuccess = null;
  let lastOk = null; // whether the last poll reached the API (null before the first)
  // off (no stream on this server), connecting, live, paused (the server cannot hear the
  // database) or down (no stream).
  let streamState = streamOn ? "connecting" : "off";
  let knownOpen = null; // Map alert id -> severity, once the first load has been seen
  const firstSeen = new Map(); // alert id -> browser time first shown as new
  const alertRows = new Map(); // alert id -> <tr>, kept so a half-typed note survives a poll
  let focusAfterRender = null;

  // ---- small helpers -------------------------------------------------------------------------

  function el(tag, props = {}, children = []) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined) continue;
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function serverNow() {
    return Date.now() + clockSkewMs;
  }

  function duration(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min`;
    const h = Math.floor(m / 60);
    if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
    return `${Math.floor(h / 24)} days`;
  }

  function ago(iso) {
    const ms = serverNow() - Date.parse(iso);
    return ms < 10000 ? "just now" : `${duration(ms)} ago`;
  }

  function clockTime(iso) {
    return new Date(iso).toLocaleString("en-GB", {
      day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
    });
  }

  function timeEl(iso, text) {
    return el("time", { datetime: iso, title: clockTime(iso), text });
  }

  function missingText(missing) {
    const labels = [];
    for (const name of missing) {
      const label = PARAMETER_LABELS[name] || name.replaceAll("_", " ");
      if (!labels.includes(label)) labels.push(label);
    }
    return `incomplete: no ${labels.join(", ")}`;
  }

  function formatValue(value, digits) {
    return value === undefined || value === null ? null : value.toFixed(digits);
  }

  function say(text, kind) {
    message.textContent = text;
    message.className = `message ${kind}`;
  }

  function errorDetail(payload) {
    if (payload && typeof payload.detail === "string") return payload.detail;
    if (payload && Array.isArray(payload.detail)) {
      return payload.detail.map((d) => d.msg).join("; ");
    }
    return null;
  }

  function apiUrl(path, params = {}) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== null && value !== undefined) query.set(key, value);
    }
    const qs = query.toString();
    return qs ? `${path}?${qs}` : path;
  }

  async function getJson(url) {
    const resp = await fetch(url, { cache: "no-store", headers: { Accept: "application/json" } });
    if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status}`);
    const now = Date.parse(resp.headers.get(NOW_HEADER) || "");
    if (!Number.isNaN(now)) clockSkewMs = now - Date.now();
    return resp.json();
  }

  // ---- alerts --------------------------------------------------------------------------------

  function severityBadge(severity) {
    return el("span", {
      class: `badge sev-${severity}`, text: SEVERITY_LABELS[severity] || severity,
    });
  }

  function escalationCell(alert) {
    const parts = [el("span", { text: `Level ${alert.escalation_level}` })];
    if (alert.state === "open" && alert.next_escalation_at) {
      const due = Date.parse(alert.next_escalation_at) - serverNow();
      const text = due > 0 ? `next in ${duration(due)}` : "escalating now";
      parts.push(el("span", { class: "sub", text }));
    }
    return parts;
  }

  function statusCell(alert) {
    if (alert.state === "acknowledged") {
      const parts = [el("span", { class: "state state-acknowledged", text: "Acknowledged" })];
      parts.push(el("span", { class: "sub", text: `by ${alert.acknowledged_by || "unknown"}` }));
      if (alert.acknowledged_at) {
        parts.push(el("span", { class: "sub" }, [timeEl(alert.acknowledged_at, ago(alert.acknowledged_at))]));
      }
      return parts;
    }
    return [el("span", { class: "state state-open", text: "Open – not acknowledged" })];
  }

  function ackLabel(alert) {
    return `Acknowledge ${SEVERITY_LABELS[alert.severity] || ""} alert for patient ${alert.patient_id}`;
  }

  function actionCell(alert) {
    if (alert.state !== "open") return [el("span", { class: "muted", text: "—" })];
    const noteId = `note-${alert.id}`;
    const note = el("input", {
      id: noteId, type: "text", maxlength: "1000", class: "note", placeholder: "Note (optional)",
    });
    const label = el("label", {
      for: noteId, class: "visually-hidden", text: `Note for alert on patient ${alert.patient_id} (optional)`,
    });
    const button = el("button", {
      type: "button", class: "ack",
      "aria-label": ackLabel(alert),
      text: "Acknowledge",
    });
    button.addEventListener("click", () => acknowledge(alert.id, alert.patient_id, button, note));
    note.addEventListener("keydown", (event) => {
      if (event.key === "Enter") button.click();
    });
    return [label, note, button];
  }

  function fillCell(cell, nodes) {
    cell.replaceChildren(...nodes.filter((node) => node !== null && node !== undefined));
  }

  function renderAlertRow(row, alert) {
    const cells = row.cells;
    row.className = `alert-row sev-row-${alert.severity} state-row-${alert.state}`;
    if (firstSeen.has(alert.id) && Date.now() - firstSeen.get(alert.id) < NEW_HIGHLIGHT_MS) {
      row.classList.add("is-new");
    }
    row.dataset.state = alert.state;
    if (alert.patient_id === focusPatient) row.classList.add("is-focus");
    fillCell(cells[0], [severityBadge(alert.severity)]);
    fillCell(cells[1], [
      el("span", { class: "pid", text: alert.patient_id }),
      ward ? null : el("span", { class: "sub", text: alert.ward }),
    ]);
    fillCell(cells[2], [el("span", { text: RULE_LABELS[alert.rule] || alert.rule })]);
    fillCell(cells[3], [el("span", { text: alert.summary })]);
    fillCell(cells[4], [timeEl(alert.opened_at, ago(alert.opened_at))]);
    fillCell(cells[5], escalationCell(alert));
    fillCell(cells[6], statusCell(alert));
    // Rebuild the action cell only when the state changes, so a note being typed is kept.
    if (row.dataset.actionState !== alert.state) {
      row.dataset.actionState = alert.state;
      fillCell(cells[7], actionCell(alert));
    }
    const button = cells[7].querySelector("button.ack");
    if (button) button.setAttribute("aria-label", ackLabel(alert));
  }

  function renderAlerts(alerts) {
    const seen = new Set();
    let previous = null;
    for (const alert of alerts) {
      seen.add(alert.id);
      let row = alertRows.get(alert.id);
      if (!row) {
        row = el("tr", { "data-alert-id": String(alert.id) });
        for (let i = 0; i < 8; i += 1) row.append(el("td"));
        alertRows.set(alert.id, row);
      }
      renderAlertRow(row, alert);
      // Move a row only when it is out of place: moving the focused element would blur it.
      const expected = previous ? previous.nextElementSibling : alertsBody.firstElementChild;
      if (expected !== row) {
        if (previous) previous.after(row);
        else alertsBody.prepend(row);
      }
      previous = row;
    }
    for (const [id, row] of alertRows) {
      if (!seen.has(id)) {
        row.remove();
        alertRows.delete(id);
        firstSeen.delete(id);
      }
    }
    const open = alerts.filter((a) => a.state === "open").length;
    $("alert-count").textContent = alerts.length
      ? `(${open} open, ${alerts.length - open} acknowledged)` : "";
    $("no-alerts").hidden = alerts.length > 0;
    $("alerts").hidden = alerts.length === 0;
    document.title = `${open ? `(${open}) ` : ""}wardwatch – ${ward || "all wards"}`;
  }

  function announceNew(openAlerts) {
    const current = new Map(openAlerts.map((a) => [a.id, a.severity]));
    if (knownOpen !== null) {
      const news = [];
      for (const alert of openAlerts) {
        const before = knownOpen.get(alert.id);
        if (before === undefined) {
          firstSeen.set(alert.id, Date.now());
          news.push(`New ${SEVERITY_LABELS[alert.severity]} alert, patient ${alert.patient_id}: ${alert.summary}`);
        } else if (before !== alert.severity) {
          firstSeen.set(alert.id, Date.now());
          news.push(`Alert now ${SEVERITY_LABELS[alert.severity]}, patient ${alert.patient_id}: ${alert.summary}`);
        }
      }
      if (news.length > 3) news.splice(3, news.length - 3, `and ${news.length - 3} more`);
      if (news.length) announcer.textContent = `${news.join(". ")}.`;
    }
    knownOpen = current;
  }

  async function acknowledge(alertId, patientId, button, note) {
    const user = nameInput.value.trim();
    if (!user) {
      nameInput.setAttribute("aria-invalid", "true");
      say("Enter your name at the top of the page before acknowledging.", "error");
      nameInput.focus();
      return;
    }
    button.disabled = true;
    button.textContent = "Acknowledging…";
    try {
      const resp = await fetch(`/api/alerts/${alertId}/ack`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ user, note: note.value.trim() || null }),
      });
      const payload = await resp.json().catch(() => null);
      if (resp.ok) {
        say(`Alert for patient ${patientId} acknowledged by ${payload.acknowledged_by}.`, "ok");
        focusAfterRender = alertId;
      } else {
        say(errorDetail(payload) || `Could not acknowledge: HTTP ${resp.status}.`, "error");
      }
    } catch (err) {
      say("Could not reach wardwatch: the alert is NOT acknowledged. Try again.", "error");
    } finally {
      button.disabled = false;
      button.textContent = "Acknowledge";
      refresh();
    }
  }

  // ---- patients ------------------------------------------------------------------------------

  function freshnessCell(patient) {
    if (!patient.last_seen_at) {
      return [el("span", { class: "badge stale-badge", text: "No data yet" })];
    }
    const seen = el("span", { class: "sub-inline" }, [
      document.createTextNode("last seen "), timeEl(patient.last_seen_at, ago(patient.last_seen_at)),
    ]);
    if (!patient.stale) return [seen];
    return [el("span", { class: "badge stale-badge", text: "Stale" }), " ", seen];
  }

  function valueCell(value, note = null) {
    if (value === null) return el("td", { class: "num muted" }, [
      el("span", { "aria-hidden": "true", text: "—" }),
      el("span", { class: "visually-hidden", text: "no reading" }),
    ]);
    return el("td", { class: "num" }, [
      el("span", { text: value }),
      note ? el("span", { class: "sub", text: note }) : null,
    ]);
  }

  // The behaviour-based risk of the latest scored day: a deviation from the patient's own
  // usual, 0-100, with its reasons; "review" once it has lasted (the risk alert is raised).
  function behaviourCell(patient) {
    const b = patient.behaviour;
    if (!b) {
      return el("td", { class: "behaviour muted" }, [el("span", { text: "Not scored yet" })]);
    }
    const nodes = [
      b.alarm
        ? el("span", { class: "badge sev-review", text: `${Math.round(b.score)} sustained` })
        : el("span", { class: "trend-score", text: String(Math.round(b.score)) }),
    ];
    for (const reason of b.reasons) nodes.push(el("span", { class: "sub", text: reason }));
    if (b.learning.length) {
      nodes.push(el("span", { class: "sub", text: `learning: ${b.learning.join(", ")}` }));
    }
    nodes.push(el("span", { class: "sub", text: `day ${b.day}` }));
    return el("td", { class: "behaviour" }, nodes);
  }

  function patientRow(patient) {
    const risk = patient.news2_risk || "unscored";
    const scoreCell = el("td", { class: "score" }, [
      el("span", { class: "total", text: patient.news2_total === null ? "—" : String(patient.news2_total) }),
    ]);
    if (patient.news2_missing.length) {
      scoreCell.append(el("span", { class: "incomplete", text: missingText(patient.news2_missing) }));
    }
    const latest = patient.latest;
    return el("tr", {
      class: `patient-row risk-row-${risk}${patient.stale ? " is-stale" : ""}`
        + (patient.patient_id === focusPatient ? " is-focus" : ""),
      "data-patient-id": patient.patient_id,
    }, [
      el("th", { scope: "row" }, [
        el("span", { class: "pid", text: patient.patient_id }),
        ward ? null : el("span", { class: "sub", text: patient.ward }),
        patient.device_id ? el("span", { class: "sub", text: `device ${patient.device_id}` }) : null,
        patient.spo2_scale === 2 ? el("span", { class: "tag", text: "SpO2 scale 2" }) : null,
        patient.paused ? el("span", { class: "badge paused-badge",
          text: `Alerts paused until ${clockTime(patient.paused.until)}: ${patient.paused.reason}` })
          : null,
      ]),
      scoreCell,
      el("td", {}, [el("span", { class: `badge risk-${risk}`, text: RISK_LABELS[patient.news2_risk] || "Not scored" })]),
      behaviourCell(patient),
      // Derived from the device's ECG or PPG by wardwatch (jobs.derive_beats / derive_pulse).
      valueCell(
        formatValue(latest.heart_rate, 0),
        patient.derived.includes("heart_rate") ? "from waveform" : null,
      ),
      valueCell(formatValue(latest.spo2, 0), latest.on_oxygen === 1 ? "on O2" : null),
      valueCell(
        formatValue(latest.resp_rate, 0),
        patient.derived.includes("resp_rate") ? "from PPG" : null,
      ),
      valueCell(formatValue(latest.temperature, 1)),
      el("td", { class: `freshness${patient.stale ? " stale" : ""}` }, freshnessCell(patient)),
      el("td", {
        class: `num${patient.open_alerts ? " has-alerts" : ""}`, text: String(patient.open_alerts),
      }),
    ]);
  }

  function renderPatients(patients) {
    patientsBody.replaceChildren(...patients.map(patientRow));
    const focused = patientsBody.querySelector("tr.is-focus");
    if (focused && !focusShown) {
      focusShown = true;  // once: later redraws must not pull the nurse's view back
      focused.scrollIntoView({ block: "center" });
    }
    $("patient-count").textContent = patients.length ? `(${patients.length})` : "";
    $("no-patients").hidden = patients.length > 0;
    $("patients").hidden = patients.length === 0;
  }

  // ---- polling -------------------------------------------------------------------------------

  function showConnection(ok) {
    lastOk = ok;
    connection.dataset.stream = streamState;
    const at = lastSuccess
      ? lastSuccess.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" })
      : null;
    if (ok && (streamState === "off" || streamState === "live")) {
      connection.className = "connection ok";
      connection.textContent = streamState === "live"
        ? `Live · updated ${at} · new alerts appear instantly`
        : `Live · updated ${at}`;
    } else if (ok) {
      // Say plainly that a new alert may take up to the poll interval to appear.
      connection.className = "connection degraded";
      connection.textContent = streamState === "connecting"
        ? `Updated ${at} · connecting instant alerts…`
        : `Updated ${at} · instant alerts unavailable: checking every ${duration(pollMs)}`;
    } else {
      connection.className = "connection error";
      connection.textContent = at
        ? `NOT UPDATING: cannot reach wardwatch. Showing data from ${at}. Retrying…`
        : "NOT UPDATING: cannot reach wardwatch. Retrying…";
    }
  }

  async function load() {
    const [patients, open, acknowledged] = await Promise.all([
      getJson(apiUrl("/api/patients", { ward })),
      getJson(apiUrl("/api/alerts", { state: "open", ward })),
      getJson(apiUrl("/api/alerts", { state: "acknowledged", ward })),
    ]);
    announceNew(open);
    renderAlerts([...open, ...acknowledged]);
    renderPatients(patients);
    lastSuccess = new Date();
    showConnection(true);
    if (focusAfterRender !== null) {
      const row = alertRows.get(focusAfterRender);
      focusAfterRender = null;
      if (row && (document.activeElement === null || document.activeElement === document.body)) {
        row.cells[6].setAttribute("tabindex", "-1");
        row.cells[6].focus();
      }
    }
  }

  let timer = 0;
  let running = false;
  let again = false;

  async function refresh() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    window.clearTimeout(timer);
    try {
      await load();
    } catch (err) {
      showConnection(false);
    } finally {
      running = false;
      if (again) {
        again = false;
        refresh();
      } else {
        timer = window.setTimeout(refresh, pollMs);
      }
    }
  }

  // ---- live stream ---------------------------------------------------------------------------

  function setStream(state) {
    streamState = state;
    if (lastOk !== null) showConnection(lastOk);
  }

  function openStream(after) {
    const source = new EventSource(apiUrl("/api/stream", { ward, after }));
    let lastId = after;
    const remember = (event) => {
      if (event.lastEventId) lastId = event.lastEventId;
    };
    source.addEventListener("ready", (event) => {
      remember(event);
      setStream(JSON.parse(event.data).listening ? "live" : "paused");
      refresh(); // whatever happened while the stream was down
    });
    source.addEventListener("status", (event) => {
      setStream(JSON.parse(event.data).listening ? "live" : "paused");
      refresh();
    });
    for (const name of ["alert", "reset"]) {
      source.addEventListener(name, (event) => {
        remember(event);
        refresh();
      });
    }
    source.addEventListener("error", () => {
      setStream("down");
      if (source.readyState === EventSource.CLOSED) {
        window.setTimeout(() => openStream(lastId), STREAM_RETRY_MS);
      }
      // Otherwise the browser reconnects by itself, sending Last-Event-ID.
    });
  }

  // ---- start ---------------------------------------------------------------------------------

  $("ward-title").textContent = ward ? `Virtual ward: ${ward}` : "All virtual wards";
  try {
    nameInput.value = window.localStorage.getItem(NAME_KEY) || "";
  } catch (err) {
    // Storage can be disabled by policy; the name then lasts for this page only.
  }
  nameInput.addEventListener("input", () => {
    nameInput.removeAttribute("aria-invalid");
    try {
      window.localStorage.setItem(NAME_KEY, nameInput.value.trim());
    } catch (err) {
      // See above.
    }
  });
  refresh();
  if (streamOn && typeof window.EventSource === "function") openStream(null);
  else if (streamOn) streamState = "down";
})();
