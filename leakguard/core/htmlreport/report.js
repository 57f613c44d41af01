// Hover: the test under the pointer, its outcome and every count, on all charts of its worker.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("leakguard-data").textContent);
  var tip = document.getElementById("tip");
  var drawn = 0;
  document.querySelectorAll("section.timeline").forEach(function (section) {
    var run = data[section.dataset.worker];
    if (!run) { return; }
    var charts = section.querySelectorAll("svg.chart");
    var n = run.tests.length;
    function indexAt(svg, event) {
      var pt = svg.createSVGPoint();
      pt.x = event.clientX; pt.y = event.clientY;
      var x = pt.matrixTransform(svg.getScreenCTM().inverse()).x;
      var axis = svg.querySelector(".axis line:nth-child(2)");
      var left = axis.x1.baseVal.value, right = axis.x2.baseVal.value;
      var i = Math.round((x - left) / Math.max(right - left, 1) * Math.max(n - 1, 1));
      return Math.min(Math.max(i, 0), n - 1);
    }
    function show(i, event) {
      var lines = [(i + 1) + ". " + run.tests[i] + " (" + run.outcomes[i] + ")"];
      Object.keys(run.counts).forEach(function (kind) {
        var v = run.counts[kind][i];
        lines.push(kind + ": " + (v === null || v === undefined ? "-" : v));
      });
      tip.textContent = lines.join("\n");
      tip.hidden = false;
      tip.style.left = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 8) + "px";
      tip.style.top = (event.clientY + 14) + "px";
      charts.forEach(function (svg) {
        var axis = svg.querySelector(".axis line:nth-child(2)");
        var left = axis.x1.baseVal.value, right = axis.x2.baseVal.value;
        var x = left + (right - left) * i / Math.max(n - 1, 1);
        var cursor = svg.querySelector("line.cursor");
        cursor.setAttribute("x1", x); cursor.setAttribute("x2", x);
      });
    }
    charts.forEach(function (svg) {
      svg.addEventListener("mousemove", function (event) { show(indexAt(svg, event), event); });
      svg.addEventListener("mouseleave", function () { tip.hidden = true; });
      svg.addEventListener("click", function (event) {
        var anchor = run.anchors[indexAt(svg, event)];
        if (anchor) { location.hash = anchor; }
      });
      var line = svg.querySelector("path.line");
      if (line && line.getBBox().width > 0) { drawn += 1; }
    });
  });
  document.documentElement.dataset.leakguard = "ready";
  document.documentElement.dataset.charts = String(drawn);
})();
