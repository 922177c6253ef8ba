// Metric charts: one Plotly chart per metric key, a series per run, data downsampled by the server.
// The first chart's data is requested at once (the page preloads it) while Plotly itself loads;
// other charts load when scrolled into view. Dragging a range fetches finer data for it.
(function () {
  "use strict";
  var dataEl = document.getElementById("chart-data");
  if (!dataEl) return;
  var cfg = JSON.parse(dataEl.textContent);
  var getJSON = window.mltrail.getJSON;
  var runs = {};
  cfg.runs.forEach(function (r) { runs[r.id] = r; });
  var state = {x: "step", smoothing: 0, logY: false};
  var MAX_GL_CHARTS = 8;  // browsers keep ~16 WebGL contexts per page; each WebGL chart takes one
  // SVG draws a default chart (at most 40,000 points) about twice as fast as WebGL, whose context
  // and shaders cost more than they save at that size: WebGL only for charts larger than that
  var GL_MIN_POINTS = 50000;
  var glCharts = 0;
  var renderedAt = {};  // chart index -> performance.now() of its first drawing (for benchmarks)
  var hasGL = (function () {
    try { var c = document.createElement("canvas"); return !!(c.getContext("webgl") || c.getContext("experimental-webgl")); }
    catch (e) { return false; }
  })();

  // Plotly renders names with its own tags (<b>, <br>, ...): escape user text so it shows as typed.
  function esc(s) { return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"); }

  function merge(responses) {
    var out = [];
    responses.forEach(function (r) { out = out.concat(r.runs); });
    return out;
  }

  var charts = (cfg.charts || []).map(function (c, i) {
    // a run page's chart may hold validation metrics too: one line (own requests) per metric key
    var lines = [{key: c.key, label: c.label || null, urls: c.urls}].concat(c.extra || []);
    return {key: c.key, urls: c.urls, lines: lines, index: i, div: document.querySelector('.plot[data-index="' + i + '"]'),
            full: null, zoomed: null, drawn: false, gl: false, seq: 0, zoomTicket: 0};
  });

  var LINE_COLORS = ["#ff7f0e", "#2ca02c", "#d62728", "#9467bd"];  // validation lines, after the run's colour
  // every line's series, each tagged with its line (label and colour), in line order
  function fetchLines(chart, urlsOf) {
    return Promise.all(chart.lines.map(function (line, li) {
      return Promise.all(urlsOf(line).map(getJSON)).then(merge).then(function (series) {
        series.forEach(function (s) { s.label = line.label; s.line = li; });
        return series;
      });
    })).then(function (all) { return [].concat.apply([], all); });
  }

  function fetchFull(chart) {
    if (!chart.full) chart.full = fetchLines(chart, function (line) { return line.urls; }).then(function (series) {
      performance.mark("mltrail:data:" + chart.index);
      return series;
    });
    return chart.full;
  }
  if (charts.length) fetchFull(charts[0]);  // the request the page preloaded: start it before Plotly parses

  // Plotly is a deferred script after this one: it has run by DOMContentLoaded
  var plotlyReady = new Promise(function (resolve) {
    if (window.Plotly || document.readyState === "complete") { resolve(); return; }
    document.addEventListener("DOMContentLoaded", resolve);
    window.addEventListener("load", resolve);
  }).then(function () { performance.mark("mltrail:plotly-ready"); });

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

  function traces(chart, series) {
    var points = 0;
    series.forEach(function (s) { points += s.steps.length; });
    var type = chart.gl ? "scattergl" : "scatter";
    var out = [];
    series.forEach(function (s) {
      var run = runs[s.run_id] || {name: s.run_id, color: "#444"};
      var x = xs(s);
      var name = esc(s.label || run.name);
      var color = s.line ? LINE_COLORS[(s.line - 1) % LINE_COLORS.length] : run.color;
      if (state.smoothing > 0 && series.length <= 10) {  // the raw series, faint, behind the smoothed one
        out.push({type: type, mode: "lines", x: x, y: s.values, name: name, showlegend: false, hoverinfo: "skip",
                  line: {color: color, width: 1}, opacity: 0.25, meta: {run_id: s.run_id, raw: true}});
      }
      out.push({type: type, mode: s.steps.length === 1 ? "markers" : "lines", x: x,
                y: smooth(s.values, state.smoothing), name: name, line: {color: color, width: 1.5},
                marker: {color: color}, meta: {run_id: s.run_id, key: chart.lines[s.line || 0].key},
                hovertemplate: "%{fullData.name}<br>%{x}: %{y:.6g}<extra></extra>"});
    });
    return out;
  }

  function layout(chart, nSeries) {
    var xTitle = {step: "step", relative: "relative time (s)", wall: "wall time"}[state.x];
    var legend = nSeries > 1 && nSeries <= 10;
    return {margin: {l: 56, r: 12, t: legend ? 28 : 8, b: 40}, showlegend: legend,
            legend: {orientation: "h", x: 0, y: 1.02, yanchor: "bottom"}, hovermode: "closest",
            uirevision: chart.key + "|" + state.x,
            xaxis: {title: {text: xTitle}, type: state.x === "wall" ? "date" : "linear", zeroline: false},
            yaxis: {type: state.logY ? "log" : "linear", zeroline: false, exponentformat: "e"}};
  }

  function message(div, text) {
    div.textContent = "";
    div.appendChild(window.mltrail.el("div", {class: "plot-message"}, text));
  }

  function draw(chart, series) {
    if (!window.Plotly) { message(chart.div, "Plotly.js is not available: install the plotly Python package."); return; }
    if (!chart.drawn) {
      var points = 0;
      series.forEach(function (s) { points += s.steps.length; });
      chart.gl = hasGL && points > GL_MIN_POINTS && glCharts < MAX_GL_CHARTS;
      if (chart.gl) glCharts++;
      chart.div.textContent = "";
    }
    var data = traces(chart, series);
    Plotly.react(chart.div, data, layout(chart, series.length),
                 {responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"]});
    if (!chart.drawn) {
      chart.drawn = true;
      chart.div.on("plotly_relayout", function (ev) { onZoom(chart, ev); });
    }
    if (!renderedAt[chart.index]) renderedAt[chart.index] = performance.now();
    chart.div.setAttribute("data-rendered", String(++chart.seq));
    chart.div.dispatchEvent(new CustomEvent("mltrail:rendered", {bubbles: true}));
  }

  function render(chart) {
    return Promise.all([fetchFull(chart), plotlyReady]).then(function (r) {
      draw(chart, chart.zoomed || r[0]);
    }).catch(function (e) { message(chart.div, "Could not load " + chart.key + ": " + e.message); });
  }

  // ---- zoom: fetch the chosen range again at full resolution for the chart's width
  function stepRange(chart, series, lo, hi) {
    if (state.x === "step") return [Math.floor(lo), Math.ceil(hi)];
    var a = Infinity, b = -Infinity;
    if (state.x === "wall") {
      lo = typeof lo === "number" ? lo : Date.parse(String(lo).replace(" ", "T") + "Z");
      hi = typeof hi === "number" ? hi : Date.parse(String(hi).replace(" ", "T") + "Z");
    }
    series.forEach(function (s) {
      var x = xs(s);
      for (var i = 0; i < x.length; i++) {
        if (x[i] >= lo && x[i] <= hi) { a = Math.min(a, s.steps[i]); b = Math.max(b, s.steps[i]); }
      }
    });
    return isFinite(a) && isFinite(b) ? [a, b] : null;
  }

  var zoomTimers = {};
  function onZoom(chart, ev) {
    if (ev["xaxis.autorange"] || ev.autosize) {
      if (chart.zoomed) { chart.zoomed = null; fetchFull(chart).then(function (s) { draw(chart, s); }); }
      return;
    }
    var lo = ev["xaxis.range[0]"], hi = ev["xaxis.range[1]"];
    if (lo === undefined && ev["xaxis.range"]) { lo = ev["xaxis.range"][0]; hi = ev["xaxis.range"][1]; }
    if (lo === undefined || hi === undefined) return;
    clearTimeout(zoomTimers[chart.index]);
    zoomTimers[chart.index] = setTimeout(function () {
      fetchFull(chart).then(function (full) {
        var range = stepRange(chart, full, lo, hi);
        if (!range) return;
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
          if (ticket !== chart.zoomTicket) return;  // a newer zoom won
          chart.zoomed = series;
          draw(chart, series);
        });
      }).catch(function () { /* keep the coarse data */ });
    }, 150);
  }

  // ---- controls
  function redrawAll() {
    charts.forEach(function (c) { if (c.drawn) render(c); });
  }
  var xSel = document.getElementById("x-axis");
  if (xSel) xSel.addEventListener("change", function () { state.x = xSel.value; charts.forEach(function (c) { c.zoomed = null; }); redrawAll(); });
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
  if ("IntersectionObserver" in window) {
    var io = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) {
        if (!e.isIntersecting) return;
        io.unobserve(e.target);
        render(charts[+e.target.getAttribute("data-index")]);
      });
    }, {rootMargin: "300px"});
    charts.forEach(function (c, i) {
      if (i === 0) render0 = render(c);  // its data is on the way already: draw it wherever it is
      else if (c.div) io.observe(c.div);
    });
  } else {
    charts.forEach(render);
    render0 = Promise.resolve();
  }

  // ---- parallel coordinates (compare page)
  function parcoords() {
    var pc = cfg.parcoords, div = document.getElementById("parcoords");
    if (!pc || !div) return;
    var sel = document.getElementById("parcoords-metric");
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
      if (!window.Plotly) { message(div, "Plotly.js is not available."); return; }
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
      Plotly.react(div, [trace], {margin: {l: 80, r: 80, t: 40, b: 20}}, {responsive: true, displaylogo: false});
      div.setAttribute("data-rendered", "1");
    }
    if (sel) sel.addEventListener("change", drawPc);
    // drawn when scrolled near, after the first chart: it is WebGL too, and costly with many runs
    var first = charts.length ? render0 : Promise.resolve();
    Promise.all([plotlyReady, first]).then(function () {
      if (!("IntersectionObserver" in window)) { drawPc(); return; }
      var pcObserver = new IntersectionObserver(function (entries) {
        if (entries.some(function (e) { return e.isIntersecting; })) { pcObserver.disconnect(); drawPc(); }
      }, {rootMargin: "200px"});
      pcObserver.observe(div);
    });
  }
  parcoords();

  window.mltrailCharts = {state: state, charts: charts, renderedAt: renderedAt};
})();
