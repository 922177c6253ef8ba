// mltrail UI helpers shared by every page: DOM building (text only, never HTML) and copy buttons.
(function () {
  "use strict";

  // el("a", {href: "/x", class: "y"}, "text", child...) : attributes via setAttribute, text via textContent.
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        node.setAttribute(k, v === true ? "" : String(v));
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return node;
  }

  // With accounts on, the page carries its session's CSRF token; state changes must send it back.
  function csrfHeaders(headers) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    var out = headers || {};
    if (meta && meta.content) out["X-CSRF-Token"] = meta.content;
    return out;
  }

  // send("POST", url, body): JSON in and out, with the CSRF header; errors reject with the server's message.
  function send(method, url, body) {
    var init = {method: method, credentials: "same-origin", headers: csrfHeaders({"Content-Type": "application/json"})};
    if (body !== undefined) init.body = JSON.stringify(body);
    return fetch(url, init).then(function (r) {
      return r.text().then(function (text) {
        var parsed = text ? JSON.parse(text) : {};
        if (!r.ok) throw new Error(parsed && parsed.message ? parsed.message : ("HTTP " + r.status));
        return parsed;
      });
    });
  }

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", headers: csrfHeaders()}).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body && body.message ? body.message : ("HTTP " + r.status));
        return body;
      });
    });
  }

  function copyText(text, button) {
    function done(ok) {
      var old = button.textContent;
      button.textContent = ok ? "Copied" : "Select and copy";
      setTimeout(function () { button.textContent = old; }, 1200);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
      return;
    }
    var ta = el("textarea", {style: "position:fixed;left:-9999px"});
    ta.value = text;
    document.body.appendChild(ta);
    ta.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(ta);
    done(ok);
  }

  document.addEventListener("click", function (ev) {
    var b = ev.target.closest && ev.target.closest("button.copy");
    if (!b) return;
    var code = b.closest(".snippet").querySelector("pre");
    copyText(code.textContent, b);
  });

  window.mltrail = {el: el, getJSON: getJSON, send: send, csrfHeaders: csrfHeaders};
})();
