// The queue's live updates: server-sent events carry the queue as JSON and the rows are rebuilt
// with textContent only. Every string comes from an IR or a request and is never read as HTML.
"use strict";

(function () {
  var table = document.getElementById("queue");
  if (!table || !window.EventSource) {
    return;
  }
  var body = table.tBodies[0];
  var count = document.getElementById("waiting-count");
  var empty = document.getElementById("queue-empty");
  var live = document.getElementById("live-status");
  var detailUrl = table.getAttribute("data-detail");
  var titleRest = document.title.replace(/^\(\d+\)\s*/, "");

  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function render(state) {
    var rows = document.createDocumentFragment();
    state.rows.forEach(function (r) {
      var tr = document.createElement("tr");
      tr.className = "tier-" + String(Number(r.risk_tier) || 0);
      tr.setAttribute("data-id", r.request_id);
      var tier = document.createElement("span");
      tier.className = "tier";
      tier.textContent = String(r.risk_tier);
      cell(tr, "").appendChild(tier);
      var link = document.createElement("a");
      link.href = detailUrl.replace("REQUEST_ID", encodeURIComponent(r.request_id));
      link.textContent = r.request_id;
      cell(tr, "").appendChild(link);
      cell(tr, r.summary).className = "summary";
      cell(tr, r.tenant_id);
      cell(tr, r.requested_by);
      cell(tr, r.age);
      cell(tr, r.time_left);
      cell(tr, r.status);
      rows.appendChild(tr);
    });
    while (body.firstChild) {
      body.removeChild(body.firstChild);
    }
    body.appendChild(rows);
    count.textContent = String(state.waiting);
    document.title = "(" + String(state.waiting) + ") " + titleRest;
    empty.hidden = state.rows.length > 0;
  }

  var source = new EventSource(table.getAttribute("data-feed"));
  source.addEventListener("queue", function (message) {
    render(JSON.parse(message.data));
    live.textContent = "Live: updated " + new Date().toLocaleTimeString();
  });
  source.addEventListener("signed-out", function () {
    source.close();
    window.location.assign(table.getAttribute("data-signin"));
  });
  source.onerror = function () {
    live.textContent = "Live updates interrupted: reconnecting";
  };
})();
