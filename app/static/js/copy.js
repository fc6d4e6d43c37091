// Copy buttons. The markup convention, unchanged and backward-compatible, for every template:
//
//   <input id="acs-url" type="text" readonly value="…">   (or a <textarea>, or any element: its text is copied)
//   <button type="button" data-copy="#acs-url">Copy</button>
//
// Optional: data-copy-label="ACS URL" names the value in the announcement; without it the text of
// <label for="acs-url"> (or the field's aria-label) is used. Pressing the button copies the value,
// shows "Copied" on the button for a moment, keeps keyboard focus on the button (the field is not
// selected), and announces "Copied: <name>" through one polite live region (role=status) that this
// script adds to the page once, marked data-copy-status (a page may render its own instead).
(function () {
  var statusRegion = function () {
    var region = document.querySelector("[data-copy-status]");
    if (!region) {
      region = document.createElement("div");
      region.setAttribute("role", "status");
      region.setAttribute("aria-live", "polite");
      region.setAttribute("data-copy-status", "");
      region.className = "visually-hidden";
      document.body.appendChild(region);
    }
    return region;
  };

  var nameOf = function (button, field) {
    var label = button.getAttribute("data-copy-label");
    if (!label && field.id) {
      var element = document.querySelector('label[for="' + field.id + '"]');
      label = element ? element.textContent : "";
    }
    return (label || field.getAttribute("aria-label") || "").trim();
  };

  var copyWithSelection = function (field, button) {
    // Older browsers and plain-http pages: copy through a selection, then give focus back.
    if (typeof field.select === "function") {
      field.select();
    } else {
      var range = document.createRange();
      range.selectNodeContents(field);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
    }
    try { document.execCommand("copy"); } finally { button.focus(); }
  };

  // Create the live region up front: screen readers announce changes only to a region they know.
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", statusRegion);
  } else {
    statusRegion();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) { return; }
    event.preventDefault();
    var field = document.querySelector(button.getAttribute("data-copy"));
    if (!field) { return; }
    var value = "value" in field ? field.value : field.textContent;
    if (!button.hasAttribute("data-copy-text")) { button.setAttribute("data-copy-text", button.textContent); }
    var done = function () {
      var region = statusRegion();
      var name = nameOf(button, field);
      button.textContent = "Copied";
      button.focus();
      region.textContent = "";
      // A fresh text node a moment later, so that copying the same value twice is announced twice.
      setTimeout(function () { region.textContent = name ? "Copied: " + name : "Copied"; }, 50);
      clearTimeout(button._copyTimer);
      button._copyTimer = setTimeout(function () { button.textContent = button.getAttribute("data-copy-text"); }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(value).then(done, function () { copyWithSelection(field, button); done(); });
    } else {
      copyWithSelection(field, button);
      done();
    }
  });
})();
