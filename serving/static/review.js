// Keyboard shortcuts on an item page: C controlled, N not controlled, R refer to expert.
// Ignored while typing in a field, so a comment can contain those letters.
document.addEventListener("keydown", function (event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  var tag = (event.target && event.target.tagName) || "";
  if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
  var button = document.querySelector('#decide button[data-key="' + event.key.toLowerCase() + '"]');
  if (button) {
    event.preventDefault();
    button.click();
  }
});
