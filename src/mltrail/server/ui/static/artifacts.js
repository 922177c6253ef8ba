// The artifact browser: a lazily expanded tree and a preview pane (text and tables via textContent, images via <img>,
// TensorBoard event files, or a directory holding them, as charts drawn by tensorboard.js).
(function () {
  "use strict";
  var el = window.mltrail.el;

  function apiQuery(box, path) {
    var owner = box.getAttribute("data-owner") === "model" ? "model_id" : "run_id";
    return owner + "=" + encodeURIComponent(box.getAttribute("data-owner-id")) + "&path=" + encodeURIComponent(path);
  }
  function base() {
    var brand = document.querySelector("header.top .brand");
    return brand ? brand.getAttribute("href").replace(/\/$/, "") : "";
  }
  function fileHref(box, path) {
    return base() + "/ui/files/" + box.getAttribute("data-owner") + "/" + encodeURIComponent(box.getAttribute("data-owner-id")) +
      "/" + path.split("/").map(encodeURIComponent).join("/");
  }
  function size(n) {
    if (n === null || n === undefined) return "";
    if (n < 1024) return n + " B";
    if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
    return (n / 1048576).toFixed(1) + " MiB";
  }

  function entry(box, f) {
    var li = el("li", {role: "treeitem", class: f.is_dir ? "dir" : "file"},
      el("a", {href: fileHref(box, f.path), "data-path": f.path, "data-dir": f.is_dir ? "1" : "0"}, f.name));
    if (!f.is_dir) li.appendChild(el("span", {class: "muted size"}, size(f.size)));
    return li;
  }

  function isEventFile(name) { return name.indexOf("tfevents") >= 0; }

  // A directory holding TensorBoard event files gets a button that previews them all as charts.
  function chartsButton(li, path) {
    if (!window.mltrailTensorBoard || li.querySelector(":scope > button.tb-open")) return;
    var b = el("button", {type: "button", class: "tb-open small", "data-path": path, title: "Preview the event files as charts"},
      "TensorBoard charts");
    li.insertBefore(b, li.querySelector(":scope > ul"));
  }

  function showTensorBoard(box, path, a) {
    var pane = box.querySelector(".preview");
    box.querySelectorAll(".tree a.selected").forEach(function (x) { x.classList.remove("selected"); });
    if (a) a.classList.add("selected");
    pane.dataset.ticket = String(Number(pane.dataset.ticket || 0) + 1);  // a slower file preview must not replace this
    pane.textContent = "";
    pane.appendChild(el("div", {class: "preview-head"}, el("strong", {class: "preview-name"}, path || "(artifact root)"),
      el("span", {class: "muted"}, "TensorBoard scalars")));
    var charts = el("div", {class: "tb-preview"});
    pane.appendChild(charts);
    var query = apiQuery(box, "").replace(/&path=$/, "");
    window.mltrailTensorBoard.render(charts, window.mltrailTensorBoard.url(query, path));
  }

  function toggleDir(box, li, a) {
    if (li.classList.contains("open")) {
      li.classList.remove("open");
      var sub = li.querySelector("ul");
      if (sub) sub.hidden = true;
      return;
    }
    li.classList.add("open");
    var existing = li.querySelector("ul");
    if (existing) { existing.hidden = false; return; }
    var ul = el("ul", {role: "group"}, el("li", {class: "muted"}, "Loading…"));
    li.appendChild(ul);
    window.mltrail.getJSON(base() + "/ui/api/artifacts?" + apiQuery(box, a.getAttribute("data-path"))).then(function (r) {
      ul.textContent = "";
      if (!r.files.length) ul.appendChild(el("li", {class: "muted"}, "(empty)"));
      r.files.forEach(function (f) { ul.appendChild(entry(box, f)); });
      if (r.files.some(function (f) { return !f.is_dir && isEventFile(f.name); })) chartsButton(li, a.getAttribute("data-path"));
    }).catch(function (e) { ul.textContent = ""; ul.appendChild(el("li", {class: "error"}, e.message)); });
  }

  // A CSV file or logged table: its first rows as a table, every cell a text node.
  function table(t) {
    var head = el("tr", null);
    t.columns.forEach(function (c) { head.appendChild(el("th", null, c)); });
    var body = el("tbody", null);
    t.rows.forEach(function (r) {
      var tr = el("tr", null);
      r.forEach(function (v) { tr.appendChild(el("td", null, v)); });
      body.appendChild(tr);
    });
    var shown = t.rows.length;
    var note = t.total === null ? "The first " + shown + " rows." :
      t.total + (t.total === 1 ? " row" : " rows") + (t.total > shown ? ", the first " + shown + " shown." : ".");
    return el("div", {class: "preview-table"}, el("p", {class: "muted small"}, note),
      el("div", {class: "table-wrap"}, el("table", {class: "grid data-table"}, el("thead", null, head), body)));
  }

  function showPreview(box, a) {
    var pane = box.querySelector(".preview");
    box.querySelectorAll(".tree a.selected").forEach(function (x) { x.classList.remove("selected"); });
    a.classList.add("selected");
    pane.textContent = "";
    pane.appendChild(el("p", {class: "muted"}, "Loading…"));
    // Clicks can outrun the server: only the latest request may fill the pane, so a slow
    // answer for an earlier file never replaces the preview of the file now selected.
    var ticket = (pane.dataset.ticket = String(Number(pane.dataset.ticket || 0) + 1));
    function current() { return pane.dataset.ticket === ticket; }
    // A file the page already shows (the run's model summary): point there rather than show it twice.
    var elsewhere = JSON.parse(box.getAttribute("data-shown-elsewhere") || "{}")[a.getAttribute("data-path")];
    var target = elsewhere && document.getElementById(elsewhere);
    if (target) {
      pane.textContent = "";
      var section = target.closest("section[id]");
      pane.appendChild(el("div", {class: "preview-head"}, el("strong", {class: "preview-name"}, a.getAttribute("data-path")),
        el("a", {href: a.getAttribute("href"), download: a.textContent}, "Download")));
      pane.appendChild(el("p", {class: "muted shown-elsewhere"}, "Shown in the ",
        el("a", {href: "#" + (section ? section.id : elsewhere)}, section ? "Models section" : "page"), "."));
      return;
    }
    window.mltrail.getJSON(base() + "/ui/api/preview?" + apiQuery(box, a.getAttribute("data-path"))).then(function (p) {
      if (!current()) return;
      pane.textContent = "";
      var head = el("div", {class: "preview-head"}, el("strong", {class: "preview-name"}, p.path),
        el("span", {class: "muted"}, size(p.size)), el("a", {href: p.url, download: p.name}, "Download"));
      pane.appendChild(head);
      if (p.kind === "image") {
        pane.appendChild(el("img", {src: p.url, alt: p.name, class: "preview-image"}));
      } else if (p.kind === "tensorboard" && window.mltrailTensorBoard) {
        var charts = el("div", {class: "tb-preview"});
        pane.appendChild(charts);
        var query = apiQuery(box, "").replace(/&path=$/, "");
        window.mltrailTensorBoard.render(charts, window.mltrailTensorBoard.url(query, p.path));
      } else if (p.kind === "table") {
        pane.appendChild(table(p.table));
      } else if (p.kind === "binary") {
        pane.appendChild(el("p", {class: "muted"}, "A binary file: no preview."));
      } else {
        pane.appendChild(el("pre", {class: "preview-text lang-" + p.kind}, p.text));
        if (p.truncated) pane.appendChild(el("p", {class: "muted"}, "Only the beginning of this file is shown."));
      }
    }).catch(function (e) {
      if (!current()) return;
      pane.textContent = ""; pane.appendChild(el("p", {class: "error"}, e.message));
    });
  }

  // The run's log directories, found by tensorboard.js: their entries in the tree get the button too.
  document.addEventListener("mltrail:tensorboard-dirs", function (ev) {
    ev.detail.dirs.forEach(function (d) {
      if (!d.path) return;
      document.querySelectorAll(".artifacts .tree a[data-dir='1']").forEach(function (a) {
        if (a.getAttribute("data-path") === d.path) chartsButton(a.parentNode, d.path);
      });
    });
  });

  document.querySelectorAll(".artifacts").forEach(function (box) {
    // the root listing came with the page: a root holding event files gets its button on the tree itself
    var rootFiles = box.querySelectorAll(".tree > ul > li.file > a[data-path]");
    if (Array.prototype.some.call(rootFiles, function (x) { return isEventFile(x.textContent); })) {
      var tree = box.querySelector(".tree");
      if (window.mltrailTensorBoard) {
        tree.insertBefore(el("button", {type: "button", class: "tb-open small", "data-path": ""}, "TensorBoard charts"), tree.firstChild);
      }
    }
    box.querySelector(".tree").addEventListener("click", function (ev) {
      var tb = ev.target.closest("button.tb-open");
      if (tb) { showTensorBoard(box, tb.getAttribute("data-path"), tb.parentNode.querySelector(":scope > a")); return; }
      var a = ev.target.closest("a[data-path]");
      if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
      ev.preventDefault();
      if (a.getAttribute("data-dir") === "1") toggleDir(box, a.parentNode, a);
      else showPreview(box, a);
    });
  });
})();
