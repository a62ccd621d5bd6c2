// 评分引擎 · 考核管理网页: the little the pages do in the browser (everything works without it).
document.addEventListener("DOMContentLoaded", function () {
  // 打印 buttons
  document.querySelectorAll("[data-print]").forEach(function (b) {
    b.addEventListener("click", function () { window.print(); });
  });
  // buttons that ask first
  document.querySelectorAll("[data-confirm]").forEach(function (b) {
    b.addEventListener("click", function (e) {
      if (!window.confirm(b.getAttribute("data-confirm"))) { e.preventDefault(); }
    });
  });
  // a fact form with unsaved changes asks before the page is left
  var form = document.querySelector("form[data-facts]");
  if (form) {
    var changed = false;
    form.addEventListener("input", function () { changed = true; });
    form.addEventListener("submit", function () { changed = false; });
    window.addEventListener("beforeunload", function (e) {
      if (changed) { e.preventDefault(); e.returnValue = ""; }
    });
  }
});
