// tracker's keyboard shortcuts for the screening page; every key presses a button or link the page already
// has, so the page works the same without this file.
(function () {
  "use strict";
  var keys = {i: "button[value=include]", e: "button[value=exclude]", m: "button[value=maybe]", u: "#undo",
              j: "#older", k: "#newer"};
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
