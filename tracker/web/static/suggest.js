// tracker's keyboard shortcuts for the Suggestions page (a separate file from the screening page's tracker.js);
// every key presses a button or link the page already has, so the page works the same without this file.
(function () {
  "use strict";
  var keys = {a: "#add", d: "#dismiss", u: "#undo", j: "#older", k: "#newer"};
  function typing(target) {
    var name = target && target.tagName;
    return name === "INPUT" || name === "TEXTAREA" || name === "SELECT" || (target && target.isContentEditable);
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || !document.getElementById("suggestions")) {
      return;
    }
    if (typing(event.target)) {
      if (event.key === "Escape") {
        event.target.blur();
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
