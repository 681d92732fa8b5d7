import Mustache

/// The dashboard's Mustache templates. Every value from users, agents or logs goes through `{{ }}`,
/// which escapes HTML; `{{{ }}}` appears once, for the page body the dashboard rendered itself.
enum DashboardTemplates {
    static func makeLibrary() throws -> MustacheLibrary {
        var templates: [String: MustacheTemplate] = [:]
        for (name, text) in all { templates[name] = try MustacheTemplate(string: text) }
        return MustacheLibrary(templates: templates)
    }

    static let all: [String: String] = [
        "layout": layout, "sign-in": signIn, "agents": agents, "agent-new": agentNew, "agent-created": agentCreated,
        "deployments": deployments, "deployment": deployment, "confirm": confirm, "caches": caches,
        "onboarding": onboarding, "activate-token": activateToken, "error": error, "audit": audit,
    ]

    static let audit = #"""
        <h1>Audit log</h1>
        {{^events}}<p class="empty">Nothing recorded yet.</p>{{/events}}
        {{#hasEvents}}
        <table class="audit">
        <thead><tr><th>When</th><th>Who</th><th>What</th><th>On</th><th>Detail</th></tr></thead>
        <tbody>
        {{#events}}
        <tr data-action="{{action}}"><td>{{time}}</td><td>{{actor}}</td><td>{{action}}</td><td><code>{{target}}</code></td><td>{{detail}}</td></tr>
        {{/events}}
        </tbody>
        </table>
        {{/hasEvents}}
        """#

    static let layout = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · Capstan</title>
        <link rel="stylesheet" href="/static/dashboard.css">
        </head>
        <body>
        <header>
        <a class="brand" href="/agents">Capstan</a>
        {{#actor}}
        <nav><a href="/agents">Agents</a><a href="/deployments">Deployments</a><a href="/caches">Caches</a><a href="/audit">Audit</a><a href="/onboarding">Get started</a></nav>
        <form method="post" action="/sign-out" class="sign-out"><span class="who">{{actor}}</span> <button type="submit">Sign out</button></form>
        {{/actor}}
        </header>
        <main>
        {{{content}}}
        </main>
        </body>
        </html>
        """#

    static let signIn = #"""
        <h1>Sign in</h1>
        {{#error}}<p class="error">{{error}}</p>{{/error}}
        <form method="post" action="/sign-in" class="card">
        <label for="token">Token</label>
        <input type="password" id="token" name="token" autocomplete="off" required>
        <p class="hint">An admin or activate token of your workspace, e.g. from <code>capstan token create --kind admin</code>.</p>
        <button type="submit" id="sign-in">Sign in</button>
        </form>
        """#

    static let agents = #"""
        <h1>Agents</h1>
        <p><a class="button" href="/agents/new">Add an agent</a></p>
        {{^agents}}<p class="empty">No agents yet.</p>{{/agents}}
        {{#hasAgents}}
        <table id="agents">
        <thead><tr><th>Agent</th><th>State</th><th>Last seen</th><th>System</th><th>Version</th><th>Current configuration</th><th>Latest deployment</th><th></th></tr></thead>
        <tbody>
        {{#agents}}
        <tr class="agent" data-agent="{{name}}">
        <td class="name">{{name}}</td>
        <td>{{#online}}<span class="badge online">online</span>{{/online}}{{^online}}<span class="badge offline">offline</span>{{/online}}</td>
        <td>{{lastSeen}}</td>
        <td>{{system}}</td>
        <td>{{version}}</td>
        <td><code>{{currentStorePath}}</code></td>
        <td>{{#latestID}}<a href="/deployments/{{latestID}}"><span class="status status-{{latestStatus}}">{{latestStatus}}</span></a>{{/latestID}}</td>
        <td><a href="/deployments?agent={{name}}">History</a> · <a href="/agents/{{name}}/rollback">Roll back…</a></td>
        </tr>
        {{/agents}}
        </tbody>
        </table>
        {{/hasAgents}}
        """#

    static let agentNew = #"""
        <h1>Add an agent</h1>
        {{#error}}<p class="error">{{error}}</p>{{/error}}
        <form method="post" action="/agents/new" class="card">
        <label for="name">Name</label>
        <input id="name" name="name" pattern="[a-z0-9][a-z0-9-]*" required>
        <p class="hint">Lower-case letters, digits and dashes; the name used in deploy.json.</p>
        <button type="submit">Create agent and token</button>
        </form>
        """#

    static let agentCreated = #"""
        <h1>Agent {{name}} added</h1>
        <p>Its token is shown <strong>only this once</strong>; keep it on the machine, readable by root only.</p>
        <pre class="secret" id="agent-token">{{token}}</pre>
        <h2>Run the agent</h2>
        <pre>CAPSTAN_AGENT_TOKEN={{token}} capstan deploy agent {{name}} --url {{serverURL}}</pre>
        <h2>On NixOS</h2>
        <p>Put <code>CAPSTAN_AGENT_TOKEN={{token}}</code> in <code>/etc/capstan-agent.env</code> (mode 0600), then:</p>
        <pre>{ config, pkgs, ... }:
        {
          systemd.services.capstan-agent = {
            wantedBy = [ "multi-user.target" ];
            wants = [ "network-online.target" ];
            after = [ "network-online.target" ];
            path = [ config.nix.package ];
            serviceConfig = {
              ExecStart = "${pkgs.capstan}/bin/capstan deploy agent {{name}} --url {{serverURL}}";
              EnvironmentFile = "/etc/capstan-agent.env";
              Restart = "always";
              # An activation may restart the agent; the deployment it runs must survive that.
              KillMode = "process";
            };
          };
        }</pre>
        <p><a href="/agents">Back to the agents</a></p>
        """#

    static let deployments = #"""
        <h1>Deployments</h1>
        <form method="get" action="/deployments" class="filters">
        <label for="agent">Agent</label>
        <select id="agent" name="agent"><option value="">all</option>{{#agentOptions}}<option value="{{name}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/agentOptions}}</select>
        <label for="status">Status</label>
        <select id="status" name="status"><option value="">all</option>{{#statusOptions}}<option value="{{name}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/statusOptions}}</select>
        <button type="submit">Filter</button>
        </form>
        {{^deployments}}<p class="empty">No deployments match.</p>{{/deployments}}
        {{#hasDeployments}}
        <table id="deployments">
        <thead><tr><th>Agent</th><th>#</th><th>Status</th><th>Created</th><th>Finished</th><th>By</th><th>Store path</th></tr></thead>
        <tbody>
        {{#deployments}}
        <tr class="deployment" data-id="{{id}}">
        <td>{{agent}}</td>
        <td><a href="/deployments/{{id}}">#{{index}}</a></td>
        <td><span class="status status-{{status}}">{{status}}</span>{{#rolledBack}} <span class="badge">rolled back</span>{{/rolledBack}}</td>
        <td>{{created}}</td>
        <td>{{finished}}</td>
        <td>{{createdBy}}</td>
        <td><code>{{storePath}}</code></td>
        </tr>
        {{/deployments}}
        </tbody>
        </table>
        {{/hasDeployments}}
        """#

    static let deployment = #"""
        <h1>Deployment #{{index}} of <a href="/deployments?agent={{agent}}">{{agent}}</a></h1>
        <p><span id="status" class="status status-{{status}}">{{status}}</span>{{#rolledBack}} <span class="badge" id="rolled-back">rolled back</span>{{/rolledBack}}</p>
        {{#reason}}<p class="reason" id="reason">{{reason}}</p>{{/reason}}
        <dl class="facts">
        <dt>Store path</dt><dd><code id="store-path">{{storePath}}</code></dd>
        <dt>Created</dt><dd id="created">{{created}}{{#createdBy}} by {{createdBy}}{{/createdBy}}</dd>
        <dt>Started</dt><dd id="started">{{started}}</dd>
        <dt>Finished</dt><dd id="finished">{{finished}}</dd>
        <dt>Duration</dt><dd>{{duration}}</dd>
        <dt>Closure size</dt><dd id="closure-size">{{closureSize}}</dd>
        </dl>
        <p class="actions">
        {{#canCancel}}<a class="button danger" id="cancel" href="/deployments/{{id}}/cancel">Cancel…</a>{{/canCancel}}
        {{#canRetry}}<a class="button" id="retry" href="/deployments/{{id}}/retry">Retry…</a>{{/canRetry}}
        <a class="button" id="rollback" href="/agents/{{agent}}/rollback">Roll {{agent}} back…</a>
        </p>
        {{#hasChecks}}<h2>Health checks</h2>
        <table id="checks"><thead><tr><th>Check</th><th>Result</th><th>Attempts</th><th>Last output</th></tr></thead>
        <tbody>{{#checks}}<tr class="check check-{{result}}"><td><code>{{check}}</code></td><td>{{result}}</td><td>{{attempts}}</td><td><pre>{{output}}</pre></td></tr>{{/checks}}</tbody>
        </table>{{/hasChecks}}
        <h2>Log</h2>
        <pre id="log" class="log"{{#following}} data-follow="/api/v1/deployments/{{id}}/log"{{/following}} data-lines="{{lineCount}}">{{#lines}}<span class="line">{{.}}
        </span>{{/lines}}</pre>
        {{#following}}<script src="/static/live-log.js" defer></script>{{/following}}
        """#

    static let confirm = #"""
        <h1>{{question}}</h1>
        <p>{{explanation}}</p>
        <form method="post" action="{{action}}" class="card">
        <button type="submit" class="danger" id="confirm">{{button}}</button>
        <a href="{{back}}">No, go back</a>
        </form>
        """#

    static let caches = #"""
        <h1>Caches</h1>
        {{^caches}}<p class="empty">No caches yet: <code>capstan cache create NAME</code>.</p>{{/caches}}
        {{#caches}}
        <section class="card cache" data-cache="{{name}}">
        <h2>{{name}} <span class="badge">{{visibility}}</span></h2>
        <dl class="facts">
        <dt>Paths</dt><dd class="paths">{{pathCount}}</dd>
        <dt>Size</dt><dd class="size">{{narSize}} as NARs, {{fileSize}} stored ({{compression}})</dd>
        <dt>Public key</dt><dd><code class="key">{{publicKey}}</code></dd>
        <dt>Substituter</dt><dd><code>{{url}}</code></dd>
        </dl>
        <h3>Use it</h3>
        <pre>capstan use {{name}}</pre>
        <p>or, on NixOS:</p>
        <pre>nix.settings.substituters = [ "{{url}}" ];
        nix.settings.trusted-public-keys = [ "{{publicKey}}" ];</pre>
        <p>Push to it: <code>capstan push {{name}} ./result</code></p>
        </section>
        {{/caches}}
        """#

    static let onboarding = #"""
        <h1>Get started</h1>
        <section class="card">
        <h2>Add an agent</h2>
        <p>Each machine runs an agent that pulls its configuration from here.</p>
        <p><a class="button" href="/agents/new">Add an agent</a></p>
        </section>
        <section class="card">
        <h2>Start a deployment</h2>
        <p>CI activates deployments with an activate token. Create one for your CI's secrets; it is shown once.</p>
        {{#error}}<p class="error">{{error}}</p>{{/error}}
        <form method="post" action="/onboarding/activate-token">
        <label for="label">Label</label>
        <input id="label" name="label" value="ci" required>
        <button type="submit">Create an activate token</button>
        </form>
        </section>
        """#

    static let activateToken = #"""
        <h1>Activate token {{label}}</h1>
        <p>Shown <strong>only this once</strong>.</p>
        <pre class="secret" id="activate-token">{{token}}</pre>
        <h2>As an effect secret</h2>
        <pre>capstan secret add default-cachix-activate --string cachixActivateToken {{token}}</pre>
        <p>or the matching entry of <code>secrets.json</code>:</p>
        <pre>{
          "default-cachix-activate": {
            "kind": "Secret",
            "data": { "cachixActivateToken": "{{token}}" }
          }
        }</pre>
        <h2>From a shell</h2>
        <pre>CAPSTAN_URL={{serverURL}} CAPSTAN_ACTIVATE_TOKEN={{token}} capstan deploy activate deploy.json</pre>
        """#

    static let error = #"""
        <h1>{{heading}}</h1>
        <p class="error">{{message}}</p>
        <p><a href="/agents">Back to the dashboard</a></p>
        """#
}
