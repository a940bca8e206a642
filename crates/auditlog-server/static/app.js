// auditlog: optional enhancement. Shows times in the browser's own timezone; the page works
// without it (times are then shown in UTC, as labelled).
document.addEventListener("DOMContentLoaded", function () {
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  document.querySelectorAll("time[data-local]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (isNaN(when)) { return; }
    el.textContent = when.toLocaleString(undefined, {
      year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit"
    });
    el.title = el.getAttribute("datetime");
  });
  document.querySelectorAll("[data-timezone]").forEach(function (el) { el.textContent = zone; });
});
