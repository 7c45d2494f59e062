// Draws the charts of a tapedeck report from the JSON embedded in the page.
// No network, no libraries: plain SVG.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var data = JSON.parse(document.getElementById("tapedeck-data").textContent);

  function el(tag, attrs, parent) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function fmt(v) {
    if (Number.isInteger(v)) return String(v);
    if (v >= 100) return v.toFixed(0);
    if (v >= 10) return v.toFixed(1);
    return String(Math.round(v * 100) / 100);
  }
  function niceTicks(max, n) {
    if (!(max > 0)) max = 1;
    var raw = max / n, mag = Math.pow(10, Math.floor(Math.log10(raw))), norm = raw / mag;
    var step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
    var ticks = [];
    for (var i = 0; i <= n + 2 && ticks.length < 20; i++) {
      ticks.push(i * step);
      if (i * step >= max) break;
    }
    return ticks;
  }

  // spec: {series: [{name, color, points: [[x, y], ...]}], xTicks: [[x, label]] | null,
  //        yUnit: "ms", dots: bool}
  function chart(host, spec) {
    var W = 460, H = 210, L = 50, R = 22, T = 22, B = 26;
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, class: "plot", role: "img" }, host);
    var xs = [], ys = [];
    spec.series.forEach(function (s) {
      s.points.forEach(function (p) { xs.push(p[0]); ys.push(p[1]); });
    });
    var yt = niceTicks(Math.max.apply(null, ys.concat([0])) * 1.05, 4);
    var ymax = yt[yt.length - 1];
    var xt = spec.xTicks || niceTicks(Math.max.apply(null, xs.concat([1])), 6).map(function (v) {
      return [v, fmt(v) + "s"];
    });
    var xmax = spec.xTicks ? xt[xt.length - 1][0] : xt[xt.length - 1][0] || 1;
    var sx = function (x) { return L + (x / xmax) * (W - L - R); };
    var sy = function (y) { return H - B - (y / ymax) * (H - T - B); };
    var g = el("g", { class: "grid" }, svg), a = el("g", { class: "axis" }, svg);
    yt.forEach(function (v) {
      el("line", { x1: L, x2: W - R, y1: sy(v), y2: sy(v) }, g);
      el("text", { x: L - 6, y: sy(v) + 3.5, "text-anchor": "end" }, a).textContent =
        fmt(v) + (spec.yUnit ? " " + spec.yUnit : "");
    });
    xt.forEach(function (t) {
      el("line", { x1: sx(t[0]), x2: sx(t[0]), y1: T, y2: H - B }, g);
      el("text", { x: sx(t[0]), y: H - B + 15, "text-anchor": "middle" }, a).textContent = t[1];
    });
    var sg = el("g", { class: "series" }, svg);
    spec.series.forEach(function (s) {
      if (!s.points.length) return;
      var d = s.points.map(function (p, i) {
        return (i ? "L" : "M") + sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1);
      }).join("");
      el("path", { d: d, stroke: s.color }, sg);
      if (spec.dots) {
        s.points.forEach(function (p) {
          var c = el("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 2.6, fill: s.color }, sg);
          el("title", {}, c).textContent = s.name + ": " + (p[2] || "") + " " + fmt(p[1]) + " " + (spec.yUnit || "");
        });
      }
    });
    var lg = el("g", { class: "legend" }, svg), lx = W - R;
    spec.series.slice().reverse().forEach(function (s) {
      var t = el("text", { x: lx, y: 12, "text-anchor": "end" }, lg);
      t.textContent = s.name;
      var w = t.getComputedTextLength ? t.getComputedTextLength() : s.name.length * 6;
      el("rect", { x: lx - w - 14, y: 4, width: 10, height: 10, rx: 2, fill: s.color }, lg);
      lx -= w + 26;
    });
    return svg;
  }

  var QTICKS = [[0, "0%"], [1, "90%"], [2, "99%"], [3, "99.9%"], [4, "99.99%"], [5, "99.999%"]];
  function qx(q) { return -Math.log10(Math.max(1 - q, 1e-5)); }
  function pctLabel(q) { return "p" + String(Math.round(q * 100000) / 1000); }

  document.querySelectorAll("[data-spectrum]").forEach(function (host) {
    var ep = data.endpoints[+host.getAttribute("data-spectrum")];
    chart(host, {
      yUnit: "ms",
      dots: true,
      xTicks: QTICKS,
      series: ep.spectra.map(function (sp, i) {
        return {
          name: data.sides[i].name,
          color: data.sides[i].color,
          points: sp.map(function (p) { return [qx(p[0]), p[1], pctLabel(p[0])]; })
        };
      })
    });
  });

  var METRICS = {
    rps: { unit: "/s", get: function (p) { return p.requests; } },
    users: { unit: "", get: function (p) { return p.users; } },
    p95: { unit: "ms", get: function (p) { return p.p95_ms; } },
    errors: { unit: "/s", get: function (p) { return p.failures; } }
  };
  document.querySelectorAll("[data-timeline]").forEach(function (host) {
    var m = METRICS[host.getAttribute("data-timeline")];
    chart(host, {
      yUnit: m.unit,
      series: data.timelines.map(function (tl, i) {
        return {
          name: data.sides[i].name,
          color: data.sides[i].color,
          points: tl.map(function (p) { return [p.t, m.get(p)]; })
        };
      })
    });
  });
  document.documentElement.setAttribute("data-charts", "rendered");
})();
