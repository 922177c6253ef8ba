// Metric charts: one uPlot chart per metric key, a series per run (and per line: train/validation),
// data downsampled by the server. uPlot (vendor/uplot, 50 KB) draws 100 series of 1,000 points in
// milliseconds; Plotly.js (4.8 MB) is loaded only for the compare page's parallel coordinates, when
// that view comes into sight. The first chart's data is requested at once (the page preloads it);
// other charts load when scrolled near. Dragging a range fetches finer data for it; a double click
// goes back to the whole series.
//
// For live updates (and tests): window.mltrailCharts = {state, charts, renderedAt, extend(updates),
// lastStep(run_id, key), lastPoint(run_id, key), addChart({key, label, urls, group}),
// addLine(chartKey, {key, label, urls, main})}.
(function () {
  "use strict";
  var dataEl = document.getElementById("chart-data");
  if (!dataEl) return;
  var cfg = JSON.parse(dataEl.textContent);
  var getJSON = window.mltrail.getJSON;
  var el = window.mltrail.el;
  var runs = {};
  cfg.runs.forEach(function (r) { runs[r.id] = r; });
  var state = {x: "step", smoothing: 0, logY: false};
  var renderedAt = {};  // chart index -> performance.now() of its first drawing (for benchmarks)
  var PLOT_HEIGHT = 280;
  var RAW_MAX_SERIES = 10;  // with smoothing, the raw lines are drawn faintly behind, for up to this many
  var LINE_COLORS = ["#ff7f0e", "#2ca02c", "#d62728", "#9467bd"];  // validation lines, after the run's colour

  function merge(responses) {
    var out = [];
    responses.forEach(function (r) { out = out.concat(r.runs); });
    return out;
  }

  function makeChart(spec, i, div) {
    // a run page's chart may hold validation metrics too: one line (own requests) per metric key
    var lines = [{key: spec.key, label: spec.label || null, urls: spec.urls}].concat(spec.extra || []);
    return {key: spec.key, urls: spec.urls, lines: lines, index: i, div: div, full: null, series: null,
            zoomed: null, zoomRange: null, plot: null, seq: 0, zoomTicket: 0, pending: []};
  }

  var charts = (cfg.charts || []).map(function (c, i) {
    return makeChart(c, i, document.querySelector('.plot[data-index="' + i + '"]'));
  });

  // every line's series, each tagged with its line (label and index), in line order
  function fetchLines(chart, urlsOf) {
    return Promise.all(chart.lines.map(function (line, li) {
      return Promise.all(urlsOf(line).map(getJSON)).then(merge).then(function (series) {
        series.forEach(function (s) { s.label = line.label; s.line = li; s.key = line.key; });
        return series;
      });
    })).then(function (all) { return [].concat.apply([], all); });
  }

  // each series' line index from its key (addLine may put a line before the others)
  function reindex(chart, series) {
    (series || []).forEach(function (s) { s.line = lineOf(chart, s.key); });
    return series;
  }

  function fetchFull(chart) {
    if (!chart.full) chart.full = fetchLines(chart, function (line) { return line.urls; }).then(function (series) {
      performance.mark("mltrail:data:" + chart.index);
      chart.series = reindex(chart, series);  // a line may have come first while these were on the way
      var queued = chart.pending;
      chart.pending = [];
      queued.forEach(function (u) { appendTo(chart, u); });  // live points that came while this was in flight
      return series;
    });
    return chart.full;
  }
  if (charts.length) fetchFull(charts[0]);  // the request the page preloaded: start it before uPlot parses

  // uPlot is a deferred script after this one: it has run by DOMContentLoaded. Deferred scripts run
  // while readyState is already "interactive", so that state does not mean uPlot is there yet; "load"
  // covers a page where this script arrived after DOMContentLoaded.
  var libReady = new Promise(function (resolve) {
    if (window.uPlot || document.readyState === "complete") { resolve(); return; }
    document.addEventListener("DOMContentLoaded", resolve);
    window.addEventListener("load", resolve);
  }).then(function () { performance.mark("mltrail:lib-ready"); });

  // exponential moving average with TensorBoard's debiasing; gaps (null) stay gaps
  function smooth(values, w) {
    if (!w) return values;
    var out = new Array(values.length), last = 0, n = 0;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v === null || !isFinite(v)) { out[i] = null; continue; }
      last = last * w + (1 - w) * v;
      n++;
      out[i] = last / (1 - Math.pow(w, n));
    }
    return out;
  }

  function xs(s) {
    if (state.x === "step") return s.steps;
    if (state.x === "wall") return s.timestamps;
    var t0 = s.timestamps.length ? s.timestamps[0] : 0;
    return s.timestamps.map(function (t) { return (t - t0) / 1000; });
  }

  // uPlot draws series over one shared x array: the union of every series' x values, each series
  // holding `undefined` where it has no point (uPlot joins its line across those and the cursor
  // finds the series' nearest point there), `null` where the logged value is not finite (a gap).
  // A series may hold several points at one x (a run logging every value at step 0, MLflow's
  // default step): that x appears as many times as the series with the most points there has, and
  // each series fills its slots in its own order, so every point is drawn at its x, as MLflow does.
  function align(columns) {
    var need = new Map();
    columns.forEach(function (c) {
      var seen = new Map();
      for (var i = 0; i < c.x.length; i++) {
        var k = (seen.get(c.x[i]) || 0) + 1;
        seen.set(c.x[i], k);
        if ((need.get(c.x[i]) || 0) < k) need.set(c.x[i], k);
      }
    });
    var values = Array.from(need.keys()).sort(function (a, b) { return a - b; });
    var x = [], at = new Map();
    values.forEach(function (v) {
      at.set(v, x.length);
      for (var k = need.get(v); k > 0; k--) x.push(v);
    });
    var data = [x];
    columns.forEach(function (c) {
      var y = new Array(x.length), used = new Map();
      for (var j = 0; j < c.x.length; j++) {
        var k = used.get(c.x[j]) || 0;
        used.set(c.x[j], k + 1);
        y[at.get(c.x[j]) + k] = c.y[j];
      }
      data.push(y);
    });
    return data;
  }

  function hasRepeats(x) {
    return new Set(x).size < x.length;
  }

  function lineColor(s) {
    var run = runs[s.run_id] || {color: "#444"};
    return s.line ? LINE_COLORS[(s.line - 1) % LINE_COLORS.length] : run.color;
  }

  function faint(color) {
    return color.charAt(0) === "#" && color.length === 7 ? color + "40" : color;
  }

  // the columns and uPlot series options of what a chart shows now (raw lines first, faint, without legend)
  function build(chart, series) {
    var columns = [], opts = [], named = 0;
    var withRaw = state.smoothing > 0 && series.length <= RAW_MAX_SERIES;
    function push(s, y, raw) {
      if (state.logY) y = y.map(function (v) { return v !== null && v > 0 ? v : null; });
      var color = lineColor(s);
      var run = runs[s.run_id] || {name: s.run_id};
      var line = chart.lines[s.line], x = xs(s);
      columns.push({x: x, y: y});
      // points where a line alone would hide them: a single point, or several at one x
      opts.push({label: ((line && line.label) || run.name) + (raw ? " (raw)" : ""), stroke: raw ? faint(color) : color,
                 width: raw ? 1 : 1.5, raw: raw, run_id: s.run_id, key: s.key, spanGaps: false,
                 points: {show: s.steps.length === 1 || hasRepeats(x)}});
      if (!raw) named++;
    }
    if (withRaw) series.forEach(function (s) { push(s, s.values, true); });
    series.forEach(function (s) { push(s, smooth(s.values, state.smoothing), false); });
    return {data: align(columns), series: opts, named: named};
  }

  function fmtValue(u, v) { return v === null || v === undefined ? "—" : (+v).toPrecision(6).replace(/\.?0+(e|$)/, "$1"); }

  function xAxisLabel() {
    return {step: "step", relative: "relative time (s)", wall: "wall time"}[state.x];
  }

  function plotSize(chart) {
    return {width: Math.max(200, chart.div.clientWidth || chart.div.parentNode.clientWidth || 500), height: PLOT_HEIGHT};
  }

  function options(chart, built) {
    var series = [{label: xAxisLabel(), value: state.x === "wall" ? "{YYYY}-{MM}-{DD} {HH}:{mm}:{ss}" : null}];
    built.series.forEach(function (s) {
      series.push({label: s.label, stroke: s.stroke, width: s.width, spanGaps: s.spanGaps, points: s.points,
                   value: fmtValue, class: s.raw ? "raw" : null});
    });
    var size = plotSize(chart);
    return {
      width: size.width, height: size.height, ms: 1, series: series,
      scales: {x: {time: state.x === "wall"}, y: {distr: state.logY ? 3 : 1}},
      axes: [{label: xAxisLabel(), size: 40, labelSize: 16}, {size: 64}],
      legend: {live: true},
      cursor: {drag: {x: true, y: false, setScale: false}, focus: {prox: 16}},
      focus: {alpha: 0.3},
      hooks: {setSelect: [function (u) { onSelect(chart, u); }]}
    };
  }

  function message(div, text) {
    div.textContent = "";
    div.appendChild(el("div", {class: "plot-message"}, text));
  }

  function announce(chart, named) {
    if (!renderedAt[chart.index]) renderedAt[chart.index] = performance.now();
    chart.div.setAttribute("data-series", String(named));
    chart.div.setAttribute("data-rendered", String(++chart.seq));
    chart.div.dispatchEvent(new CustomEvent("mltrail:rendered", {bubbles: true}));
  }

  // A full (re)build: new uPlot instance when the series or the options change (x mode, log scale,
  // smoothing adds raw lines); setData alone when only the points changed.
  function draw(chart, series) {
    if (!window.uPlot) { message(chart.div, "The chart library (uPlot) did not load."); return; }
    var built = build(chart, series);
    var shape = built.series.map(function (s) { return s.label + "|" + s.stroke; }).join(",") +
                "|" + state.x + "|" + state.logY;
    if (chart.plot && chart.shape === shape) {
      chart.plot.setData(built.data, !chart.zoomRange);
    } else {
      if (chart.plot) chart.plot.destroy();
      chart.div.textContent = "";
      chart.plot = new window.uPlot(options(chart, built), built.data, chart.div);
      chart.shape = shape;
      watchSize(chart);
      chart.plot.over.addEventListener("dblclick", function () { resetZoom(chart); });
    }
    if (chart.zoomRange) chart.plot.setScale("x", {min: chart.zoomRange[0], max: chart.zoomRange[1]});
    announce(chart, built.named);
  }

  function watchSize(chart) {
    if (chart.resizer || !("ResizeObserver" in window)) return;
    var last = chart.div.clientWidth;
    chart.resizer = new ResizeObserver(function () {
      var w = chart.div.clientWidth;
      if (!chart.plot || !w || w === last) return;
      last = w;
      chart.plot.setSize(plotSize(chart));
    });
    chart.resizer.observe(chart.div);
  }

  function render(chart) {
    return Promise.all([fetchFull(chart), libReady]).then(function () {
      draw(chart, chart.zoomed || chart.series);
    }).catch(function (e) { message(chart.div, "Could not load " + chart.key + ": " + e.message); });
  }

  // ---- zoom: fetch the chosen range again at full resolution for the chart's width
  function stepRange(series, lo, hi) {
    if (state.x === "step") return [Math.floor(lo), Math.ceil(hi)];
    var a = Infinity, b = -Infinity;
    series.forEach(function (s) {
      var x = xs(s);
      for (var i = 0; i < x.length; i++) {
        if (x[i] >= lo && x[i] <= hi) { a = Math.min(a, s.steps[i]); b = Math.max(b, s.steps[i]); }
      }
    });
    return isFinite(a) && isFinite(b) ? [a, b] : null;
  }

  function onSelect(chart, u) {
    if (u.select.width < 4) return;  // a click, not a drag
    var lo = u.posToVal(u.select.left, "x"), hi = u.posToVal(u.select.left + u.select.width, "x");
    u.setSelect({left: 0, top: 0, width: 0, height: 0}, false);
    zoom(chart, lo, hi);
  }

  function zoom(chart, lo, hi) {
    chart.zoomRange = [lo, hi];
    chart.plot.setScale("x", {min: lo, max: hi});  // at once, with the points at hand
    var range = stepRange(chart.series, lo, hi);
    if (!range) return Promise.resolve();
    var ticket = ++chart.zoomTicket;
    function ranged(line) {
      return line.urls.map(function (u) {
        var url = new URL(u, location.href);
        url.searchParams.set("min_step", range[0]);
        url.searchParams.set("max_step", range[1]);
        return url.pathname + url.search;
      });
    }
    return fetchLines(chart, ranged).then(function (series) {
      if (ticket !== chart.zoomTicket || !chart.zoomRange) return;  // a newer zoom or a reset won
      chart.zoomed = reindex(chart, series);
      draw(chart, series);
    }).catch(function () { /* keep the coarse data */ });
  }

  function resetZoom(chart) {
    chart.zoomTicket++;
    chart.zoomRange = null;
    chart.zoomed = null;
    if (chart.series) draw(chart, chart.series);
  }

  // ---- controls
  function redrawAll() {
    charts.forEach(function (c) { if (c.plot) draw(c, c.zoomed || c.series); });
  }
  var xSel = document.getElementById("x-axis");
  if (xSel) xSel.addEventListener("change", function () {
    state.x = xSel.value;
    charts.forEach(function (c) { c.zoomed = null; c.zoomRange = null; });
    redrawAll();
  });
  var sm = document.getElementById("smoothing"), smOut = document.getElementById("smoothing-value");
  if (sm) sm.addEventListener("input", function () {
    state.smoothing = parseFloat(sm.value) || 0;
    if (smOut) smOut.textContent = sm.value;
    clearTimeout(sm._t);
    sm._t = setTimeout(redrawAll, 60);
  });
  var logY = document.getElementById("log-y");
  if (logY) logY.addEventListener("change", function () { state.logY = logY.checked; redrawAll(); });

  // ---- draw charts as they come into view
  var render0 = null;
  var io = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (e) {
      if (!e.isIntersecting) return;
      io.unobserve(e.target);
      render(charts[+e.target.getAttribute("data-index")]);
    });
  }, {rootMargin: "300px"}) : null;
  function watch(chart) {
    if (io && chart.div) io.observe(chart.div);
    else render(chart);
  }
  charts.forEach(function (c, i) {
    if (i === 0) render0 = render(c);  // its data is on the way already: draw it wherever it is
    else watch(c);
  });

  // ---- live updates (the run and compare pages' pollers call these)
  function lineOf(chart, key) {
    for (var i = 0; i < chart.lines.length; i++) if (chart.lines[i].key === key) return i;
    return -1;
  }

  // new points of one (run, key) appended to a chart's series; false when the chart does not draw it
  function appendTo(chart, u) {
    var li = lineOf(chart, u.key);
    if (li < 0 || !runs[u.run_id]) return false;
    if (!chart.series) {  // not loaded: a fetch in flight gets these afterwards, none yet fetches them all
      if (chart.full) chart.pending.push(u);
      return false;
    }
    var s = null;
    chart.series.forEach(function (c) { if (c.run_id === u.run_id && c.line === li) s = c; });
    if (!s) {
      s = {run_id: u.run_id, steps: [], timestamps: [], values: [], label: chart.lines[li].label, line: li, key: u.key};
      chart.series.push(s);
    }
    // points come in (step, timestamp) order: one at or before the last drawn is drawn already
    // (a poll may overlap the page's own fetch); a later one at the same step is new
    var n = s.steps.length, added = false;
    var lastStep = n ? s.steps[n - 1] : -Infinity, lastTime = n ? s.timestamps[n - 1] : -Infinity;
    for (var i = 0; i < u.steps.length; i++) {
      var step = u.steps[i], time = u.timestamps[i];
      if (step < lastStep || (step === lastStep && time <= lastTime)) continue;
      s.steps.push(step);
      s.timestamps.push(time);
      s.values.push(u.values[i] === null || u.values[i] === undefined ? null : +u.values[i]);
      lastStep = step;
      lastTime = time;
      added = true;
    }
    return added;
  }

  var redrawQueued = {};
  function extend(updates) {
    (updates || []).forEach(function (u) {
      charts.forEach(function (chart) {
        if (appendTo(chart, u) && chart.plot && !redrawQueued[chart.index]) {
          redrawQueued[chart.index] = true;  // one redraw per chart per frame, however many updates came
          requestAnimationFrame(function () {
            redrawQueued[chart.index] = false;
            if (!chart.zoomed) draw(chart, chart.series);  // a zoomed view keeps its range until reset
          });
        }
      });
    });
  }

  // the last point drawn of one run's metric as [step, timestamp] (the live poll's mark), or null
  function lastPoint(runId, key) {
    var best = null;
    charts.forEach(function (chart) {
      var li = lineOf(chart, key);
      if (li < 0 || !chart.series) return;
      chart.series.forEach(function (s) {
        var n = s.steps.length;
        if (s.run_id !== runId || s.line !== li || !n) return;
        var p = [s.steps[n - 1], s.timestamps[n - 1]];
        if (!best || p[0] > best[0] || (p[0] === best[0] && p[1] > best[1])) best = p;
      });
    });
    return best;
  }

  function lastStep(runId, key) {
    var p = lastPoint(runId, key);
    return p ? p[0] : -1;
  }

  function chartOf(key) {
    for (var i = 0; i < charts.length; i++) if (charts[i].key === key) return charts[i];
    return null;
  }

  // A chart's section: with a `group` (the run page's layout: "" for ungrouped metrics, else the
  // first `/` segment), that group's grid, made where the page would have rendered it; without
  // one, the last grid (the compare page's single grid).
  function gridFor(group) {
    var section = document.getElementById("charts");
    if (!section) return null;
    var empty = section.querySelector(":scope > p.muted");
    if (empty) empty.remove();
    var groups = section.querySelectorAll(":scope > details.chart-group"), grid;
    if (group === undefined || group === null) {
      var grids = section.querySelectorAll(".charts");
      return grids.length ? grids[grids.length - 1] : section.appendChild(el("div", {class: "charts"}));
    }
    if (group === "") {  // ungrouped charts come first
      grid = section.querySelector(":scope > .charts");
      return grid || section.insertBefore(el("div", {class: "charts"}), groups.length ? groups[0] : null);
    }
    var box = null, next = null;
    groups.forEach(function (d) {
      var name = d.getAttribute("data-group");
      if (name === group) box = d;
      else if (!next && name > group) next = d;
    });
    if (!box) {
      box = el("details", {class: "chart-group", open: true, "data-group": group},
               el("summary", null, el("span", {class: "group-name"}, group), " ", el("span", {class: "muted small"}, "0")),
               el("div", {class: "charts"}));
      section.insertBefore(box, next);
    }
    return box.querySelector(".charts");
  }

  // a group's count in its summary: the metrics its charts draw
  function recount(chart) {
    var box = chart.div.closest("details.chart-group"), count = box && box.querySelector("summary .muted");
    if (!count) return;
    var n = 0;
    charts.forEach(function (c) { if (box.contains(c.div)) n += c.lines.length; });
    count.textContent = String(n);
  }

  // a chart for a key that appeared after the page loaded, in its group's grid (or the last grid)
  function addChart(spec) {
    if (chartOf(spec.key)) return chartOf(spec.key);
    var grid = gridFor(spec.group);
    if (!grid) return null;
    var i = charts.length;
    var div = el("div", {class: "plot", "data-index": String(i)});
    grid.appendChild(el("div", {class: "chart", id: "chart-" + i, "data-index": String(i), "data-key": spec.key},
                        el("div", {class: "chart-title"}, spec.label || spec.key), div));
    var chart = makeChart({key: spec.key, urls: spec.urls, extra: spec.extra}, i, div);
    charts.push(chart);
    recount(chart);
    watch(chart);
    return chart;
  }

  // the run page's labels: with validation lines, the chart's own metric is "train", and one
  // validation line is "validation" (several are named by their keys)
  function labelLines(chart) {
    if (chart.lines.length < 2) return;
    chart.lines[0].label = "train";
    for (var i = 1; i < chart.lines.length; i++) chart.lines[i].label = chart.lines.length === 2 ? "validation" : chart.lines[i].key;
  }

  function retitle(chart) {
    var box = chart.div.parentNode, title = box && box.querySelector(".chart-title");
    if (!title) return;
    box.setAttribute("data-key", chart.key);
    title.textContent = chart.key;
    chart.lines.slice(1).forEach(function (line) {
      title.appendChild(document.createTextNode(" "));
      title.appendChild(el("span", {class: "muted"}, "· " + line.key));
    });
  }

  // Another metric drawn on the chart of `chartKey`: a validation metric that appeared after the
  // page loaded joins its train metric's chart; with `main`, the metric becomes the chart's own
  // (a train metric that appeared after its validation metric had a chart). Its points come from
  // its own requests, after whatever the chart is fetching already.
  function addLine(chartKey, spec) {
    var chart = chartOf(chartKey);
    if (!chart) return null;
    if (lineOf(chart, spec.key) >= 0) return chart;
    var line = {key: spec.key, label: spec.label || null, urls: spec.urls};
    if (spec.main) {
      chart.lines.unshift(line);
      reindex(chart, chart.series);
      reindex(chart, chart.zoomed);
      chart.key = spec.key;
      chart.urls = spec.urls;
    } else {
      chart.lines.push(line);
    }
    labelLines(chart);
    retitle(chart);
    recount(chart);
    if (!chart.full) return chart;  // not fetched yet: its first fetch brings every line
    line.loading = true;  // the live poll leaves it alone until its points are here
    chart.full = chart.full.then(function () {
      return Promise.all(line.urls.map(getJSON)).then(merge);
    }).then(function (series) {
      series.forEach(function (s) { s.key = line.key; chart.series.push(s); });
      reindex(chart, chart.series);
      line.loading = false;
      if (chart.plot && !chart.zoomed) draw(chart, chart.series);
      return chart.series;
    });
    if (chart.plot && !chart.zoomed) draw(chart, chart.series);  // new labels and colours at once
    return chart;
  }

  // ---- parallel coordinates (compare page): Plotly.js, loaded when the view comes near
  function loadPlotly(src) {
    if (window.Plotly) return Promise.resolve();
    return new Promise(function (resolve, reject) {
      var s = el("script", {src: src});
      s.onload = function () { resolve(); };
      s.onerror = function () { reject(new Error("Plotly.js did not load from " + src)); };
      document.head.appendChild(s);
    });
  }

  function parcoords() {
    var pc = cfg.parcoords, div = document.getElementById("parcoords");
    if (!pc || !div) return;
    var sel = document.getElementById("parcoords-metric");
    // Plotly renders names with its own tags (<b>, <br>, ...): escape user text so it shows as typed
    function esc(s) { return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); }
    function dims() {
      var out = [];
      Object.keys(pc.params).forEach(function (k) {
        var vals = pc.params[k];
        var nums = vals.map(function (v) { return v === null || v === "" ? NaN : Number(v); });
        if (nums.every(function (n) { return isFinite(n); })) {
          out.push({label: esc(k), values: nums});
        } else {
          var cats = Array.from(new Set(vals.map(function (v) { return v === null ? "—" : String(v); }))).sort();
          out.push({label: esc(k), values: vals.map(function (v) { return cats.indexOf(v === null ? "—" : String(v)); }),
                    tickvals: cats.map(function (_, i) { return i; }), ticktext: cats.map(esc)});
        }
      });
      return out;
    }
    function drawPc() {
      var d = dims();
      var metric = sel && sel.value;
      var trace = {type: "parcoords", dimensions: d};
      if (metric && pc.metrics[metric]) {
        var mv = pc.metrics[metric].map(function (v) { return v === null ? NaN : v; });
        var finite = mv.filter(function (v) { return isFinite(v); });
        var lo = finite.length ? Math.min.apply(null, finite) : 0;
        mv = mv.map(function (v) { return isFinite(v) ? v : lo; });
        trace.dimensions = d.concat([{label: esc(metric), values: mv}]);
        trace.line = {color: mv, colorscale: "Viridis", showscale: true};
      }
      if (!trace.dimensions.length) { message(div, "No parameter differs between these runs."); return; }
      window.Plotly.react(div, [trace], {margin: {l: 80, r: 80, t: 40, b: 20}}, {responsive: true, displaylogo: false});
      div.setAttribute("data-rendered", "1");
    }
    function open() {
      var src = div.getAttribute("data-plotly-src");
      if (!src) { message(div, "Plotly.js is not available: install the plotly Python package."); return; }
      message(div, "Loading the parallel coordinates…");
      loadPlotly(src).then(function () {
        div.textContent = "";
        drawPc();
        if (sel) sel.addEventListener("change", drawPc);
      }).catch(function (e) { message(div, e.message); });
    }
    // after the first chart, and only when scrolled near: Plotly is large, and most visits never look
    (charts.length ? render0 : Promise.resolve()).then(function () {
      if (!("IntersectionObserver" in window)) { open(); return; }
      var pcObserver = new IntersectionObserver(function (entries) {
        if (entries.some(function (e) { return e.isIntersecting; })) { pcObserver.disconnect(); open(); }
      }, {rootMargin: "200px"});
      pcObserver.observe(div);
    });
  }
  parcoords();

  window.mltrailCharts = {state: state, charts: charts, renderedAt: renderedAt, extend: extend,
                          lastStep: lastStep, lastPoint: lastPoint, addChart: addChart, addLine: addLine};
})();
