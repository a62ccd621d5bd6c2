// 评分引擎 · the job page follows its job: the job's JSON every second, until it has ended.
// Without script the page refreshes itself (<meta http-equiv=refresh>); everything is in the
// database, so a reload, or another server, shows the same progress.
(function () {
  var card = document.getElementById("job");
  if (!card || card.getAttribute("data-finished") === "yes") { return; }
  var url = card.getAttribute("data-url");
  var width = 1000;

  function text(id, value) {
    var el = document.getElementById(id);
    if (el) { el.textContent = value; }
  }

  function failures(job) {
    var body = document.getElementById("job-failures");
    if (!body || !job.failures.length) { return; }
    body.textContent = "";
    job.failures.forEach(function (f) {
      var row = document.createElement("tr");
      var who = document.createElement("td");
      var why = document.createElement("td");
      who.textContent = f.label;
      why.textContent = f.message;
      row.appendChild(who);
      row.appendChild(why);
      body.appendChild(row);
    });
    text("job-failures-count", job.failures.length + " 个");
  }

  function show(job) {
    var done = job.total ? width * job.done / job.total : 0;
    var failed = job.total ? width * job.failed / job.total : 0;
    document.getElementById("job-bar-done").setAttribute("width", done.toFixed(1));
    var bad = document.getElementById("job-bar-failed");
    bad.setAttribute("x", done.toFixed(1));
    bad.setAttribute("width", failed.toFixed(1));
    document.getElementById("job-bar").setAttribute("aria-valuenow", job.done + job.failed);
    text("job-state", job.state_words);
    text("job-percent", job.percent + "%");
    text("job-done", job.done);
    text("job-failed", job.failed);
    text("job-remaining", job.remaining);
    text("job-total", job.total);
    text("job-seconds", job.seconds === null ? "—" : job.seconds);
    failures(job);
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error(r.status); }
        return r.json();
      })
      .then(function (job) {
        show(job);
        // ended: the page once more from the server, with its summary and without the cancel button
        if (job.finished) { window.location.reload(); } else { window.setTimeout(poll, 1000); }
      })
      .catch(function () {
        text("job-live", "暂时无法获取进度，稍后重试…");
        window.setTimeout(poll, 3000);
      });
  }
  window.setTimeout(poll, 1000);
})();
