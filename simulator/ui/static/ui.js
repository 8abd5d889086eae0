// Live refresh: every element with data-live is re-read from the same URL every few seconds.
// Everything else works without JavaScript.
(function () {
  "use strict";
  var PERIOD_MS = 2000;
  var MAX_REFRESHES = 1800; // an hour at most, then the page stops polling
  var live = document.querySelectorAll("[data-live]");
  if (!live.length || !window.fetch || !window.DOMParser) { return; }
  var count = 0;
  function refresh() {
    if (document.hidden) { return schedule(); }
    fetch(window.location.href, { headers: { "X-Requested-With": "d1sim-live" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (old) {
          var next = fresh.getElementById(old.id);
          if (next && next.innerHTML !== old.innerHTML) { old.innerHTML = next.innerHTML; }
        });
      })
      .catch(function () { /* the server may be restarting: try again next period */ })
      .then(schedule);
  }
  function schedule() { if (++count < MAX_REFRESHES) { window.setTimeout(refresh, PERIOD_MS); } }
  schedule();
})();
