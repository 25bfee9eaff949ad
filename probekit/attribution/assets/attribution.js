/* probekit attribution page: the misclassified filter and the confidence sort. No network, no globals but
   window.probekitAttribution (what is shown, for tests and scripting). */
(function () {
  "use strict";
  var list = document.getElementById("pk-list");
  var wrong = document.getElementById("pk-wrong");
  var sort = document.getElementById("pk-sort");
  var count = document.getElementById("pk-count");
  var blocks = Array.prototype.slice.call(list.children);
  function apply() {
    list.classList.toggle("only-wrong", wrong.checked);
    var order = blocks.slice();
    var key = sort.value;
    if (key !== "input") {
      var sign = key === "asc" ? 1 : -1;
      order.sort(function (a, b) {
        var d = sign * (parseFloat(a.dataset.p) - parseFloat(b.dataset.p));
        return d !== 0 ? d : parseInt(a.dataset.i, 10) - parseInt(b.dataset.i, 10);
      });
    }
    var frag = document.createDocumentFragment();
    order.forEach(function (b) { frag.appendChild(b); });
    list.appendChild(frag);
    var visible = order.filter(function (b) { return !wrong.checked || b.dataset.ok === "0"; });
    count.textContent = visible.length + " of " + blocks.length + " examples";
    window.probekitAttribution = {
      order: visible.map(function (b) { return parseInt(b.dataset.i, 10); }),
      total: blocks.length
    };
  }
  wrong.addEventListener("change", apply);
  sort.addEventListener("change", apply);
  apply();
})();
