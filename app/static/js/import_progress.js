// The progress bar of a running CSV import: polls the job's JSON status and moves the bar; when the
// job changes step (checked, applied, failed), reloads the page, which then shows that step.
// Without JavaScript the page offers a reload link instead.
document.addEventListener("DOMContentLoaded", function () {
  var box = document.querySelector("[data-import-status-url]");
  if (!box) { return; }
  var url = box.getAttribute("data-import-status-url");
  var state = box.getAttribute("data-state");
  var bar = document.getElementById("import-progress");
  var text = document.getElementById("import-progress-text");

  function show(status) {
    bar.max = Math.max(status.rows_total, 1);
    bar.value = status.state === "writing" ? status.rows_written : status.rows_checked;
    if (text.textContent !== status.text) { text.textContent = status.text; }
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("status " + response.status); }
        return response.json();
      })
      .then(function (status) {
        if (status.state !== state) { window.location.reload(); return; }
        show(status);
        window.setTimeout(poll, 700);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }

  window.setTimeout(poll, 300);
});
