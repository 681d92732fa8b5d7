"use strict";
(function () {
  const log = document.getElementById("log");
  if (!log || !log.dataset.follow) return;
  const status = document.getElementById("status");
  log.scrollTop = log.scrollHeight;
  function append(text) {
    const span = document.createElement("span");
    span.className = "line";
    span.textContent = text + "\n";
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.appendChild(span);
    log.dataset.lines = String(parseInt(log.dataset.lines || "0", 10) + 1);
    if (atBottom) log.scrollTop = log.scrollHeight;
  }
  function handle(item) {
    if (item.line) {
      append(item.line.line);
    } else if (item.end) {
      if (status) {
        status.textContent = item.end.status;
        status.className = "status status-" + item.end.status;
      }
      log.dataset.ended = "true";
      setTimeout(function () { window.location.reload(); }, 1500);
    }
  }
  async function follow() {
    const response = await fetch(log.dataset.follow, { credentials: "same-origin" });
    if (!response.ok || !response.body) return;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n")) >= 0) {
        const text = buffer.slice(0, end);
        buffer = buffer.slice(end + 1);
        if (text) handle(JSON.parse(text));
      }
    }
  }
  follow().catch(function (error) { log.dataset.error = String(error); });
})();
