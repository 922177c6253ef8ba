// TensorBoard event files as scalar charts: one uPlot chart per tag, one line per directory (train, validation).
// window.mltrailTensorBoard.render(container, url) fills `container` from /ui/api/tensorboard; on a run page, the
// TensorBoard section lists the run's log directories (found by /ui/api/tensorboard/dirs) with a button each.
(function () {
  "use strict";
  var el = window.mltrail.el;
  var script = document.currentScript;
  var COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];
  var uplotReady = null;

  function base() {
    var brand = document.querySelector("header.top .brand");
    return brand ? brand.getAttribute("href").replace(/\/$/, "") : "";
  }

  // uPlot is fetched the first time a preview opens (the page's charts may already have loaded it).
  function loadUPlot() {
    if (window.uPlot) return Promise.resolve(window.uPlot);
    if (!uplotReady) {
      uplotReady = new Promise(function (resolve, reject) {
        var css = script && script.getAttribute("data-uplot-css");
        if (css && !document.querySelector('link[href="' + css + '"]')) {
          document.head.appendChild(el("link", {rel: "stylesheet", href: css}));
        }
        var s = el("script", {src: script ? script.getAttribute("data-uplot") : ""});
        s.onload = function () { if (window.uPlot) resolve(window.uPlot); else reject(new Error("uPlot did not load")); };
        s.onerror = function () { uplotReady = null; reject(new Error("Could not load the chart library (uPlot).")); };
        document.head.appendChild(s);
      });
    }
    return uplotReady;
  }

  // uPlot wants one x array shared by every line: the union of the lines' steps, gaps as null.
  function aligned(series) {
    var seen = {};
    series.forEach(function (s) { s.steps.forEach(function (x) { seen[x] = true; }); });
    var xs = Object.keys(seen).map(Number).sort(function (a, b) { return a - b; });
    var at = {};
    xs.forEach(function (x, i) { at[x] = i; });
    var data = [xs];
    series.forEach(function (s) {
      var ys = new Array(xs.length).fill(null);
      s.steps.forEach(function (x, i) { ys[at[x]] = s.values[i]; });
      data.push(ys);
    });
    return data;
  }

  function chart(uPlot, box, c, width) {
    var plot = el("div", {class: "tb-plot"});
    var shown = c.series.reduce(function (n, s) { return n + s.steps.length; }, 0);
    var total = c.series.reduce(function (n, s) { return n + s.points; }, 0);
    var div = el("div", {class: "tb-chart", "data-tag": c.tag, "data-series": c.series.length},
      el("div", {class: "chart-title"}, c.tag, shown < total ? el("span", {class: "muted small"}, " · " + shown + " of " + total + " points") : null),
      plot);
    box.appendChild(div);
    var opts = {
      width: width, height: 220,
      scales: {x: {time: false}},
      axes: [{label: "step"}, {}],
      series: [{label: "step"}].concat(c.series.map(function (s, i) {
        return {label: s.run, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true, points: {show: s.steps.length < 60}};
      })),
    };
    new uPlot(opts, aligned(c.series), plot);
    div.setAttribute("data-drawn", "1");
  }

  function render(container, url) {
    container.textContent = "";
    var status = el("p", {class: "muted"}, "Reading the event files…");
    container.appendChild(status);
    return window.mltrail.getJSON(url).then(function (r) {
      if (!r.available) { status.textContent = r.note; status.className = "muted tb-note"; return r; }
      return loadUPlot().then(function (uPlot) {
        container.textContent = "";
        var names = r.files.length === 1 ? r.files[0] : r.files.length + " event files";
        container.appendChild(el("p", {class: "muted small tb-summary"},
          r.charts.length + (r.charts.length === 1 ? " scalar tag" : " scalar tags") + " from " + names + " (" + r.events + " events)."));
        if (r.note) container.appendChild(el("p", {class: "muted tb-note"}, r.note));
        (r.problems || []).forEach(function (p) { container.appendChild(el("p", {class: "muted small tb-problem"}, p)); });
        if (!r.charts.length) container.appendChild(el("p", {class: "muted"}, "No scalars in these event files."));
        var box = el("div", {class: "tb-charts"});
        container.appendChild(box);
        var width = Math.max(280, Math.min(520, (container.clientWidth || 560) - 20));
        r.charts.forEach(function (c) { chart(uPlot, box, c, width); });
        return r;
      });
    }).catch(function (e) {
      container.textContent = "";
      container.appendChild(el("p", {class: "error"}, e.message));
    });
  }

  function url(query, path) {
    return base() + "/ui/api/tensorboard?" + query + "&path=" + encodeURIComponent(path);
  }

  // The run page: a section listing the log directories, and a button on each in the artifact tree.
  function runSection(section) {
    var query = "run_id=" + encodeURIComponent(section.getAttribute("data-run-id"));
    window.mltrail.getJSON(base() + "/ui/api/tensorboard/dirs?" + query).then(function (r) {
      if (!r.dirs.length) return;
      section.hidden = false;
      if (r.available) document.dispatchEvent(new CustomEvent("mltrail:tensorboard-dirs", {detail: r}));
      var list = section.querySelector(".tb-dirs");
      var target = section.querySelector(".tb-preview");
      if (!r.available) list.appendChild(el("p", {class: "muted tb-note"}, "This run has TensorBoard event files. " +
        "Install tensorboard on the server to preview them as charts; they can still be downloaded from Artifacts."));
      r.dirs.forEach(function (d) {
        var label = d.path || "(artifact root)";
        var b = el("button", {type: "button", class: "tb-open", "data-path": d.path}, "Show charts");
        b.disabled = !r.available;
        b.addEventListener("click", function () { render(target, url(query, d.path)); });
        list.appendChild(el("p", {class: "tb-dir"}, el("span", {class: "mono"}, label), " ",
          el("span", {class: "muted small"}, d.files + (d.files === 1 ? " event file" : " event files") +
            (d.runs.length ? " · " + d.runs.join(", ") : "")), " ", b));
      });
    }).catch(function () { /* no section: the artifacts remain browsable */ });
  }

  window.mltrailTensorBoard = {render: render, url: url};
  var section = document.getElementById("tensorboard");
  if (section) {
    // after the page's own work: discovery lists artifact directories, which the first paint never needs
    (window.requestIdleCallback || function (f) { return setTimeout(f, 1); })(function () { runSection(section); });
  }
})();
