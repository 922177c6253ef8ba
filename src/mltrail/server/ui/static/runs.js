// The runs table: selection for compare, folding child runs, the column picker and paging on scroll.
(function () {
  "use strict";
  var el = window.mltrail.el;
  var body = document.getElementById("runs-body");
  if (!body) return;
  var base = "";
  var brand = document.querySelector("header.top .brand");
  if (brand) base = brand.getAttribute("href").replace(/\/$/, "");
  var MAX_SCROLL_ROWS = 2000;  // past this, the "next page" link navigates instead of appending

  // ---- selection
  var compareButton = document.getElementById("compare-button");
  var countLabel = document.getElementById("selected-count");
  function updateSelection() {
    var n = body.querySelectorAll("input[name=run_ids]:checked").length;
    compareButton.disabled = n === 0;
    countLabel.textContent = n ? n + " selected" : "";
  }
  body.addEventListener("change", function (ev) {
    if (ev.target.name === "run_ids") updateSelection();
  });
  var all = document.getElementById("select-all");
  all.addEventListener("change", function () {
    body.querySelectorAll("tr.run:not([hidden]) input[name=run_ids]").forEach(function (c) { c.checked = all.checked; });
    updateSelection();
  });
  updateSelection();

  // ---- folding child runs under their parent
  body.addEventListener("click", function (ev) {
    var b = ev.target.closest("button.fold");
    if (!b) return;
    var open = b.getAttribute("aria-expanded") !== "true";
    b.setAttribute("aria-expanded", open ? "true" : "false");
    var id = b.getAttribute("data-run-id");
    body.querySelectorAll("tr.child").forEach(function (tr) {
      if (tr.getAttribute("data-parent") === id) tr.hidden = !open;
    });
  });

  // ---- column picker: the checked boxes become the `columns` parameter
  var picker = document.getElementById("columns-form");
  if (picker) {
    picker.addEventListener("submit", function () {
      var chosen = [];
      picker.querySelectorAll("input.col-choice:checked").forEach(function (c) { chosen.push(c.value); });
      document.getElementById("columns-value").value = chosen.join(",");
    });
  }

  // ---- rows from the JSON API (same cells as the server-rendered ones)
  function row(r, child) {
    var name = el("td", {class: "name"});
    if (r.children && r.children.length) {
      name.appendChild(el("button", {type: "button", class: "fold", "aria-expanded": "false", "data-run-id": r.run_id},
        "\u25B8 " + r.children.length));
      name.appendChild(document.createTextNode(" "));
    }
    name.appendChild(el("a", {href: base + "/runs/" + encodeURIComponent(r.run_id)}, r.name));
    if (r.parent_id && !child) {
      name.appendChild(document.createTextNode(" "));
      name.appendChild(el("a", {class: "parent-link muted", href: base + "/runs/" + encodeURIComponent(r.parent_id)},
        "\u21B3 " + r.parent_id.slice(0, 8)));
    }
    if (r.has_models) { name.appendChild(document.createTextNode(" ")); name.appendChild(el("span", {class: "badge"}, "model")); }
    var tr = el("tr", {class: child ? "run child" : "run", "data-run-id": r.run_id, "data-parent": child ? r.parent_id : null,
                       hidden: !!child},
      el("td", {class: "sel"}, el("input", {type: "checkbox", name: "run_ids", value: r.run_id, form: "compare-form",
                                            "aria-label": "Select " + r.name})),
      name,
      el("td", null, el("span", {class: "status status-" + r.status.toLowerCase()}, r.status)),
      el("td", {class: "nowrap"}, r.start), el("td", {class: "nowrap"}, r.duration),
      el("td", null, r.user), el("td", null, r.source));
    r.cells.forEach(function (c) { tr.appendChild(el("td", {class: "cell"}, c)); });
    return tr;
  }

  // ---- paging on scroll: the "next page" link is a real link; with JS it appends instead
  var next = document.getElementById("next-page");
  if (!next || !("IntersectionObserver" in window)) return;
  var loading = false;
  var loaded = body.querySelectorAll("tr.run:not(.child)").length;
  function loadMore() {
    if (loading || !next.getAttribute("data-api")) return;
    if (loaded >= MAX_SCROLL_ROWS) { observer.disconnect(); return; }
    loading = true;
    next.parentNode.classList.add("loading");
    window.mltrail.getJSON(next.getAttribute("data-api")).then(function (page) {
      var frag = document.createDocumentFragment();
      page.rows.forEach(function (r) {
        frag.appendChild(row(r, false));
        (r.children || []).forEach(function (c) { frag.appendChild(row(c, true)); });
      });
      body.appendChild(frag);
      body.dispatchEvent(new CustomEvent("mltrail:rows-added", {bubbles: true}));  // live.js looks for running rows
      loaded += page.rows.length;
      if (page.next_page_token) {
        var api = new URL(next.getAttribute("data-api"), location.href);
        api.searchParams.set("page_token", page.next_page_token);
        next.setAttribute("data-api", api.pathname + api.search);
        var href = new URL(next.href, location.href);
        href.searchParams.set("page_token", page.next_page_token);
        next.href = href.pathname + href.search;
      } else {
        next.remove();
        observer.disconnect();
      }
    }).catch(function (e) {
      next.parentNode.appendChild(el("span", {class: "error"}, "Could not load more runs: " + e.message));
      observer.disconnect();
    }).then(function () {
      loading = false;
      if (next.parentNode) {
        next.parentNode.classList.remove("loading");
        observer.unobserve(next);  // observing again re-checks: still in view means load the next page
        observer.observe(next);
      }
    });
  }
  var observer = new IntersectionObserver(function (entries) {
    if (entries.some(function (e) { return e.isIntersecting; })) loadMore();
  }, {rootMargin: "600px"});
  observer.observe(next);
})();
