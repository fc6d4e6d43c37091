// The site menu's disclosure button (base.html): on a narrow screen the menu folds behind "Menu".
// Without this script the button stays hidden and the menu stays open, wrapped: nothing is lost.
(function () {
  var button = document.querySelector("[data-nav-toggle]");
  var menu = button && document.getElementById(button.getAttribute("aria-controls"));
  if (!menu || !menu.children.length) { return; }
  var narrow = window.matchMedia("(max-width: 767px)");
  var set = function (open) { button.setAttribute("aria-expanded", open ? "true" : "false"); };
  button.hidden = false;
  set(!narrow.matches);
  button.addEventListener("click", function () { set(button.getAttribute("aria-expanded") !== "true"); });
  narrow.addEventListener("change", function (event) { set(!event.matches); });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && narrow.matches && button.getAttribute("aria-expanded") === "true" && menu.contains(document.activeElement)) {
      set(false);
      button.focus();
    }
  });
})();
