// Polls the job's status until it finishes; the state lives on the server, so a reload resumes here.
(function () {
  var box = document.getElementById("job");
  if (!box) return;
  var labels = { done: "已完成", failed: "失败", running: "进行中", queued: "排队中" };
  function tick() {
    fetch(box.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (job) {
        document.getElementById("bar").value = job.percent;
        document.getElementById("percent").textContent = job.percent;
        document.getElementById("status").textContent = labels[job.status] || job.status;
        var msg = document.getElementById("message");
        msg.textContent = job.message;  // textContent: the message is never parsed as HTML
        msg.className = job.status === "failed" ? "notice error" : "";
        if (job.finished) { document.getElementById("next").hidden = false; } else { setTimeout(tick, 700); }
      })
      .catch(function () { setTimeout(tick, 2000); });
  }
  tick();
})();
