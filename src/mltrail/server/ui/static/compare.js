// The compare page: show only the parameters that differ between the runs.
(function () {
  "use strict";
  var box = document.getElementById("diff-only");
  var table = document.getElementById("params-diff");
  if (!box || !table) return;
  box.addEventListener("change", function () { table.classList.toggle("diff-only", box.checked); });
})();
