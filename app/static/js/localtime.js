// The exact time of each <time data-local-time> in the viewer's own time zone, on hover (the
// title). The server renders UTC; without scripts that stays, and says so.
(function () {
  "use strict";
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
  });
  document.querySelectorAll("time[data-local-time]").forEach(function (element) {
    var when = new Date(element.getAttribute("datetime"));
    if (!isNaN(when.getTime())) {
      element.setAttribute("title", format.format(when));
    }
  });
})();
