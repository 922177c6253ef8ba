// Live updates of RUNNING runs on the run page, the compare page and the runs table.
//
// While a shown run is RUNNING, one request to /ui/api/live every second brings, for the running
// runs: status, times, latest metric values, metric keys new to the page and, per charted metric,
// the points after the last point the chart has drawn, by (step, timestamp), so a run logging every
// value at one step grows too (appended with mltrailCharts.extend). A new metric gets a chart in its
// group's section, or joins its train metric's chart as the validation line, as the server-rendered
// run page would have drawn it (mltrailCharts.addChart, addLine). The
// duration ticks every second between polls. A run that finishes gets one last answer (its last
// points and its FINISHED status) and is no longer asked about; with nothing running there are no
// timers and no requests. "Pause" stops the requests (and the ticking) until "Resume"; a hidden tab
// pauses too, and catches up when shown again.
//
// What the pages mark: `[data-live-status|duration|ended="<run_id>"]` hold a run's status, duration
// and end time (the run page), `tr[data-live-metric="<key>"]` its latest values (the run page's
// metrics table); tables `[data-live-table]` have `th[data-col]` headers (`status`, `duration`,
// `metrics.<key>`) and `tr[data-run-id]` rows (the runs table, the compare page's runs).
(function () {
  "use strict";
  var el = window.mltrail.el;
  var POLL_MS = 1000;
  var MAX_URL = 8000;  // a longer query is split over several requests (many running runs on one page)
  var BIG = Number.MIN_SAFE_INTEGER;  // "since" for a loaded chart without a point of this run yet
  // the run page groups its charts (by prefix, validation with train); the compare page does not
  var grouped = !!document.querySelector('#charts[data-chart-layout="grouped"]');
  var brand = document.querySelector("header.top .brand");
  var base = brand ? brand.getAttribute("href").replace(/\/$/, "") : "";
  var dataEl = document.getElementById("chart-data");
  var cfg = dataEl ? JSON.parse(dataEl.textContent) : {};

  var running = {};  // run id -> {start: ms or null} for every shown run still RUNNING
  var paused = false;
  var pollTimer = null, tickTimer = null, inFlight = false;
  var clockOffset = 0;  // server clock - browser clock, from the last answer
  var control = null;
  var stats = {requests: 0, lastAnswer: 0};  // for tests and the benchmark

  // ---- what the page shows
  function statusText(node) {
    var s = node.querySelector(".status") || node;
    return (s.textContent || "").trim();
  }

  function tableCells(table) {
    var cols = {};
    table.querySelectorAll("thead th").forEach(function (th, i) {
      var c = th.getAttribute("data-col");
      if (c) cols[c] = i;
    });
    return cols;
  }

  function scan() {
    document.querySelectorAll("[data-live-status]").forEach(function (node) {
      var id = node.getAttribute("data-live-status");
      if (statusText(node) === "RUNNING" && !running[id]) running[id] = {start: null};
    });
    document.querySelectorAll("table[data-live-table]").forEach(function (table) {
      var col = tableCells(table).status;
      if (col === undefined) return;
      table.querySelectorAll("tbody tr[data-run-id]").forEach(function (tr) {
        var id = tr.getAttribute("data-run-id"), td = tr.children[col];
        if (td && statusText(td) === "RUNNING" && !running[id]) running[id] = {start: null};
      });
    });
  }

  // ---- writing an answer into the page
  function statusSpan(status) {
    return el("span", {class: "status status-" + status.toLowerCase()}, status);
  }

  function fmtDuration(ms) {  // as the server's fmt_duration writes it
    if (ms < 0) return "";
    if (ms < 1000) return ms + " ms";
    var s = ms / 1000;
    if (s < 60) return s.toFixed(1) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + String(Math.floor(s % 60)).padStart(2, "0") + " s";
    return Math.floor(s / 3600) + " h " + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + " min";
  }

  function fmtTime(ms) {  // local YYYY-MM-DD HH:MM:SS, as the server's fmt_time
    var d = new Date(ms), p = function (n) { return String(n).padStart(2, "0"); };
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) + ":" +
           p(d.getMinutes()) + ":" + p(d.getSeconds());
  }

  function setText(node, text) { if (node.textContent !== text) node.textContent = text; }

  function setStatus(node, status) {
    if (statusText(node) === status) return;
    node.textContent = "";
    node.appendChild(statusSpan(status));
  }

  function eachTableRow(id, fn) {
    document.querySelectorAll("table[data-live-table]").forEach(function (table) {
      var cols = tableCells(table);
      table.querySelectorAll('tbody tr[data-run-id="' + CSS.escape(id) + '"]').forEach(function (tr) { fn(tr, cols); });
    });
  }

  function durationOf(r) {
    if (r.end_time) return r.duration;
    var start = running[r.run_id] ? running[r.run_id].start : r.start_time;
    return start ? fmtDuration(Date.now() + clockOffset - start) : "";
  }

  function showDuration(id, text) {
    document.querySelectorAll('[data-live-duration="' + CSS.escape(id) + '"]').forEach(function (n) { setText(n, text); });
    eachTableRow(id, function (tr, cols) {
      if (cols.duration !== undefined && tr.children[cols.duration]) setText(tr.children[cols.duration], text);
    });
  }

  function showRun(r) {
    var sel = '="' + CSS.escape(r.run_id) + '"]';
    document.querySelectorAll("[data-live-status" + sel).forEach(function (n) { setStatus(n, r.status); });
    document.querySelectorAll("[data-live-ended" + sel).forEach(function (n) { setText(n, r.ended); });
    showDuration(r.run_id, durationOf(r));
    eachTableRow(r.run_id, function (tr, cols) {
      if (cols.status !== undefined && tr.children[cols.status]) setStatus(tr.children[cols.status], r.status);
      Object.keys(cols).forEach(function (c) {
        if (c.indexOf("metrics.") !== 0) return;
        var m = r.latest[c.slice(8)];
        if (m && tr.children[cols[c]]) setText(tr.children[cols[c]], m.text);
      });
    });
    // the run page's metrics table: latest value, step, time
    document.querySelectorAll("tr[data-live-metric]").forEach(function (tr) {
      var m = r.latest[tr.getAttribute("data-live-metric")];
      if (!m || tr.cells.length < 4) return;
      setText(tr.cells[1], m.text);
      setText(tr.cells[2], String(m.step));
      setText(tr.cells[3], fmtTime(m.timestamp));
    });
  }

  // ---- charts
  function chartApi() { return window.mltrailCharts && window.mltrailCharts.extend ? window.mltrailCharts : null; }

  // per running run, per metric key the page charts: the last point drawn as [step, timestamp], or
  // null while its chart (or line) has not loaded (its own fetch will bring every point)
  function sinceFor(ids) {
    var api = chartApi();
    if (!api) return null;
    var loaded = {};
    api.charts.forEach(function (chart) {
      chart.lines.forEach(function (line) {
        loaded[line.key] = loaded[line.key] || (!!chart.series && !line.loading);
      });
    });
    var since = {};
    ids.forEach(function (id) {
      var keys = {};
      Object.keys(loaded).forEach(function (k) {
        if (!loaded[k]) { keys[k] = null; return; }
        keys[k] = api.lastPoint(id, k) || BIG;
      });
      since[id] = keys;
    });
    return since;
  }

  function metricUrls(key, ids) {
    var n = cfg.max_points || 1000;
    return [base + "/ui/api/metrics?" + new URLSearchParams({key: key, max_points: n, run_ids: ids.join(",")})];
  }

  function hasChart(api, key) {
    return api.charts.some(function (c) { return c.key === key; });
  }

  // where a new metric goes on the run page (the server says with `placement`, from the rule that
  // laid out the page): onto the chart of the metric it validates, or the chart of a metric that
  // validates it becomes its chart, else a chart of its own in its group's section
  function place(api, key, where, urls) {
    if (!grouped || !where) { api.addChart({key: key, label: key, urls: urls}); return; }
    if (where.validates && hasChart(api, where.validates)) {
      api.addLine(where.validates, {key: key, urls: urls});
      return;
    }
    var by = (where.validated_by || []).filter(function (v) { return hasChart(api, v); })[0];
    if (by) api.addLine(by, {key: key, urls: urls, main: true});
    else api.addChart({key: key, label: key, urls: urls, group: where.group || ""});
  }

  function showCharts(answer) {
    var api = chartApi();
    if (!api) return;
    var updates = [], added = {}, where = {};
    answer.runs.forEach(function (r) {
      (r.series || []).forEach(function (s) {
        if (s.steps.length) updates.push({run_id: r.run_id, key: s.key, steps: s.steps, timestamps: s.timestamps, values: s.values});
      });
      (r.new_keys || []).forEach(function (k) { (added[k] = added[k] || []).push(r.run_id); });
      Object.keys(r.placement || {}).forEach(function (k) { where[k] = r.placement[k]; });
    });
    if (updates.length) api.extend(updates);
    // a pair new in one answer shares one chart: train metrics first (`val_xent` sorts before `xent`)
    var keys = Object.keys(added).sort();
    var validation = keys.filter(function (k) { return where[k] && where[k].validates && added[where[k].validates]; });
    keys.filter(function (k) { return validation.indexOf(k) < 0; }).concat(validation).forEach(function (k) {
      place(api, k, where[k], metricUrls(k, added[k]));
    });
  }

  // ---- polling
  function requests(ids) {
    var since = sinceFor(ids);
    var urls = [], chunk = [];
    function url(part) {
      var q = new URLSearchParams({run_ids: part.join(",")});
      if (since) {
        var s = {};
        part.forEach(function (id) { s[id] = since[id]; });
        q.set("since", JSON.stringify(s));
      }
      return base + "/ui/api/live?" + q.toString();
    }
    ids.forEach(function (id) {
      chunk.push(id);
      if (chunk.length > 1 && url(chunk).length > MAX_URL) {
        chunk.pop();
        urls.push(url(chunk));
        chunk = [id];
      }
    });
    if (chunk.length) urls.push(url(chunk));
    return urls;
  }

  function answerOf(bodies) {
    var out = {now: Date.now(), runs: []};
    bodies.forEach(function (b) { out.now = b.now; out.runs = out.runs.concat(b.runs); });
    return out;
  }

  function poll() {
    pollTimer = null;
    var ids = Object.keys(running);
    if (!ids.length || paused || document.hidden || inFlight) return;
    inFlight = true;
    var urls = requests(ids);
    stats.requests += urls.length;
    Promise.all(urls.map(window.mltrail.getJSON)).then(answerOf).then(function (answer) {
      clockOffset = answer.now - Date.now();
      showCharts(answer);
      answer.runs.forEach(function (r) {
        if (r.status === "RUNNING") running[r.run_id] = {start: r.start_time};
        else delete running[r.run_id];  // this answer carried its last points: done with it
        showRun(r);
      });
      stats.lastAnswer = performance.now();
      document.dispatchEvent(new CustomEvent("mltrail:live", {detail: answer}));
    }).catch(function (e) {
      setNote("Live updates: " + e.message);
    }).then(function () {
      inFlight = false;
      schedule();
    });
  }

  function tick() {
    Object.keys(running).forEach(function (id) {
      var start = running[id].start;
      if (start) showDuration(id, fmtDuration(Date.now() + clockOffset - start));
    });
  }

  // timers only while something runs, the page is shown and the user has not paused
  function schedule() {
    var active = Object.keys(running).length > 0 && !paused && !document.hidden;
    if (active && !pollTimer && !inFlight) pollTimer = setTimeout(poll, POLL_MS);
    if (active && !tickTimer) tickTimer = setInterval(tick, 1000);
    if (!active) {
      clearTimeout(pollTimer); pollTimer = null;
      clearInterval(tickTimer); tickTimer = null;
    }
    showControl();
  }

  function pollNow() {
    clearTimeout(pollTimer);
    pollTimer = null;
    poll();
    schedule();
  }

  // ---- the pause control: in the chart toolbar, else the table toolbar, else beside the title
  function setNote(text) {
    if (control) setText(control.querySelector(".live-note"), text);
  }

  function showControl() {
    var any = Object.keys(running).length > 0;
    if (!control) {
      if (!any) return;
      var host = document.getElementById("chart-controls") || document.getElementById("compare-form") ||
                 document.querySelector("main h1");
      if (!host) return;
      control = el("span", {class: "live-control", id: "live-control"},
        el("span", {class: "live-dot", "aria-hidden": "true"}), el("span", {class: "live-label"}, "Live"), " ",
        el("button", {type: "button", id: "live-toggle", "aria-pressed": "false"}, "Pause"), " ",
        el("span", {class: "live-note muted small"}, ""));
      host.appendChild(control);
      control.querySelector("button").addEventListener("click", function () {
        paused = !paused;
        if (paused) schedule(); else pollNow();
      });
    }
    var state = !any ? "ended" : paused ? "paused" : document.hidden ? "hidden" : "live";
    control.setAttribute("data-state", state);
    var button = control.querySelector("button");
    button.hidden = !any;
    setText(button, paused ? "Resume" : "Pause");
    button.setAttribute("aria-pressed", paused ? "true" : "false");
    setText(control.querySelector(".live-label"), state === "ended" ? "Finished" : state === "paused" ? "Paused" : "Live");
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) schedule(); else if (!paused) pollNow();
  });
  // rows the runs table appends as it pages may hold running runs
  document.addEventListener("mltrail:rows-added", function () {
    var before = Object.keys(running).length;
    scan();
    if (Object.keys(running).length > before && !pollTimer && !inFlight) pollNow();
  });

  window.mltrailLive = {stats: stats, running: running, pollNow: pollNow,
                        isActive: function () { return !!(pollTimer || tickTimer || inFlight); }};
  scan();
  if (Object.keys(running).length) pollNow();  // at once: points logged since the page was rendered
})();
