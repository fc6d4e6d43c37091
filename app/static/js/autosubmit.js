// Submits the SAML POST form at once (the HTTP-POST binding); the button is the no-script fallback.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("form[data-autosubmit]");
  if (form) { form.submit(); }
});
