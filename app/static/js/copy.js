// Copy buttons: <button data-copy="#input-id">Copy</button>.
document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-copy]");
  if (!button) { return; }
  event.preventDefault();
  var field = document.querySelector(button.getAttribute("data-copy"));
  if (!field) { return; }
  field.select();
  var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 1500); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
  } else { document.execCommand("copy"); done(); }
});
