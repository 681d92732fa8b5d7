/// The dashboard's stylesheet and its one script, served from `/static/` so that the
/// Content-Security-Policy can forbid inline code.
enum DashboardAssets {
    static let files: [String: (contentType: String, body: String)] = [
        "dashboard.css": ("text/css; charset=utf-8", stylesheet),
        "live-log.js": ("text/javascript; charset=utf-8", liveLog),
    ]

    static let stylesheet = """
        :root { --fg: #1d2330; --muted: #5b6475; --line: #d9dee7; --bg: #f6f7fa; --accent: #2b59c3; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
        header { display: flex; align-items: center; gap: 1.5rem; padding: .7rem 1.5rem; background: #fff;
                 border-bottom: 1px solid var(--line); }
        header .brand { font-weight: 700; color: var(--fg); text-decoration: none; }
        header nav { display: flex; gap: 1rem; flex: 1; }
        header nav a { color: var(--accent); text-decoration: none; }
        .sign-out { margin: 0; } .who { color: var(--muted); }
        main { max-width: 1200px; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
        table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid var(--line); }
        th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { font-size: 13px; color: var(--muted); font-weight: 600; }
        code, pre { font: 13px/1.4 ui-monospace, monospace; }
        td code { word-break: break-all; }
        pre { background: #fff; border: 1px solid var(--line); padding: .7rem; overflow-x: auto; }
        pre.log { background: #10141c; color: #d7dde8; max-height: 32rem; overflow-y: auto; white-space: pre-wrap; }
        pre.secret { background: #fff8e1; border-color: #e0c36a; }
        .card { background: #fff; border: 1px solid var(--line); padding: 1rem 1.2rem; margin: 1rem 0; }
        .facts { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; }
        .facts dt { color: var(--muted); } .facts dd { margin: 0; word-break: break-all; }
        .badge { display: inline-block; padding: 0 .45rem; border-radius: 9px; font-size: 12px; background: #e7eaf0; }
        .badge.online { background: #d8f3dc; color: #1b5e20; } .badge.offline { background: #eceff1; color: #546e7a; }
        .status { display: inline-block; padding: 0 .5rem; border-radius: 4px; font-size: 13px; font-weight: 600; }
        .status-Succeeded { background: #d8f3dc; color: #1b5e20; } .status-Failed { background: #fde0dc; color: #b71c1c; }
        .status-InProgress { background: #dbe7fd; color: #1a3f9c; } .status-Pending { background: #fff3cd; color: #7a5b00; }
        .status-Cancelled { background: #eceff1; color: #455a64; }
        .error { color: #b71c1c; } .reason { color: #7a2e2e; } .empty, .hint { color: var(--muted); }
        .button, button { display: inline-block; padding: .35rem .8rem; border: 1px solid var(--accent); border-radius: 4px;
                          background: var(--accent); color: #fff; text-decoration: none; font: inherit; cursor: pointer; }
        .button.danger, button.danger { background: #b3261e; border-color: #b3261e; }
        .filters { display: flex; gap: .6rem; align-items: center; margin: 1rem 0; }
        label { font-weight: 600; } input, select { font: inherit; padding: .3rem; }
        form.card input { display: block; width: 100%; max-width: 32rem; margin: .3rem 0; }
        """

    /// Follows a running deployment's log: reads the NDJSON stream (the session cookie authorises
    /// it), appends each line as text, and reloads the page when the deployment ends.
    static let liveLog = """
        "use strict";
        (function () {
          const log = document.getElementById("log");
          if (!log || !log.dataset.follow) return;
          let skip = parseInt(log.dataset.lines || "0", 10);
          const status = document.getElementById("status");
          log.scrollTop = log.scrollHeight;
          function append(text) {
            const span = document.createElement("span");
            span.className = "line";
            span.textContent = text + "\\n";
            const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
            log.appendChild(span);
            log.dataset.lines = String(log.getElementsByClassName("line").length);
            if (atBottom) log.scrollTop = log.scrollHeight;
          }
          function handle(item) {
            if (item.line) {
              if (skip > 0) { skip -= 1; return; }
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
              while ((end = buffer.indexOf("\\n")) >= 0) {
                const text = buffer.slice(0, end);
                buffer = buffer.slice(end + 1);
                if (text) handle(JSON.parse(text));
              }
            }
          }
          follow().catch(function (error) { log.dataset.error = String(error); });
        })();
        """
}
