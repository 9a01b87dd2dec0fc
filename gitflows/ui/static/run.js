// While a run is unfinished, refresh its logs and graph from /api/runs/<id> every 1.5 s; when its state
// changes (taken by an agent, finished), reload the page so every fact on it is current.
(function () {
  var page = document.getElementById("run");
  if (!page || page.dataset.finished === "true") { return; }
  var id = page.dataset.runId;
  var shown = document.getElementById("run-state").textContent;
  function tick() {
    fetch("/api/runs/" + id + "?graph=1", {headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (run) {
        var state = document.getElementById("run-state");
        state.textContent = run.state;
        state.className = "state state-" + run.state;
        var logs = document.getElementById("run-logs");
        var atEnd = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
        logs.textContent = run.logs;
        if (atEnd) { logs.scrollTop = logs.scrollHeight; }
        if (run.graph) { document.getElementById("run-graph").innerHTML = run.graph; }
        document.getElementById("run-error").textContent = run.error || "";
        if (run.state !== shown) { window.location.reload(); return; }
        if (!run.finished_state) { setTimeout(tick, 1500); } else { page.dataset.finished = "true"; }
      })
      .catch(function () { setTimeout(tick, 3000); });
  }
  setTimeout(tick, 1500);
})();
