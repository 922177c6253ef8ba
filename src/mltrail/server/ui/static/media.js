// Step-wise images on the run page: the slider and the step links choose the step a series shows.
// Only attributes the server wrote are copied (URLs, step numbers); nothing is parsed as HTML.
(function () {
  "use strict";

  document.querySelectorAll(".image-series").forEach(function (box) {
    var links = Array.prototype.slice.call(box.querySelectorAll(".step-list a[data-step]"));
    var img = box.querySelector("img.step-image");
    var full = box.querySelector("a.step-full");
    var label = box.querySelector(".step-label");
    var slider = box.querySelector("input.step-slider");

    function show(i) {
      var a = links[i];
      if (!a) return;
      img.src = a.getAttribute("data-thumb");
      img.alt = box.getAttribute("data-key") + " at step " + a.getAttribute("data-step");
      full.href = a.getAttribute("href");
      label.textContent = a.getAttribute("data-step");
      links.forEach(function (x, j) {
        x.classList.toggle("selected", j === i);
        if (j === i) x.setAttribute("aria-current", "true"); else x.removeAttribute("aria-current");
      });
      if (slider) slider.value = String(i);
    }

    if (slider) {
      slider.hidden = false;
      slider.addEventListener("input", function () { show(Number(slider.value)); });
    }
    box.querySelector(".step-list").addEventListener("click", function (ev) {
      var a = ev.target.closest("a[data-step]");
      if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
      ev.preventDefault();
      show(links.indexOf(a));
    });
  });
})();
