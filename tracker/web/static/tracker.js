// tracker's keyboard shortcuts for the screening page; every key presses a button or link the page already
// has, so the page works the same without this file.
(function () {
  "use strict";
  var keys = {i: "button[value=include]", e: "button[value=exclude]", m: "button[value=maybe]",
              n: "button[value=not-retrieved]", u: "#undo", j: "#forward", k: "#back", h: "#highlight-toggle"};
  // Highlighting on or off, as the reviewer last left it (a class on the article; the marks stay in the page).
  function applyHighlighting() {
    var button = document.getElementById("highlight-toggle");
    var article = document.getElementById("highlighted");
    if (!button || !article) {
      return;
    }
    var on = window.localStorage.getItem("tracker-highlighting") !== "off";
    article.classList.toggle("highlighting", on);
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.textContent = on ? "Highlighting on" : "Highlighting off";
  }
  document.addEventListener("click", function (event) {
    if (event.target && event.target.id === "highlight-toggle") {
      var on = window.localStorage.getItem("tracker-highlighting") !== "off";
      window.localStorage.setItem("tracker-highlighting", on ? "off" : "on");
      applyHighlighting();
    }
  });
  document.addEventListener("DOMContentLoaded", applyHighlighting);
  document.addEventListener("htmx:afterSwap", applyHighlighting);
  function typing(target) {
    var name = target && target.tagName;
    return name === "INPUT" || name === "TEXTAREA" || name === "SELECT" || (target && target.isContentEditable);
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || !document.getElementById("screen")) {
      return;
    }
    if (typing(event.target)) {
      if (event.key === "Escape") {
        event.target.blur();
      }
      return;
    }
    if (event.key === "/") {
      var find = document.getElementById("find");
      if (find) {
        event.preventDefault();
        find.focus();
      }
      return;
    }
    if (/^[1-9]$/.test(event.key)) {
      var box = document.querySelector("input[data-key='" + event.key + "']");
      if (box) {
        event.preventDefault();
        box.checked = !box.checked;
      }
      return;
    }
    var selector = keys[event.key];
    var target = selector && document.querySelector(selector);
    if (target) {
      event.preventDefault();
      target.click();
    }
  });
})();
