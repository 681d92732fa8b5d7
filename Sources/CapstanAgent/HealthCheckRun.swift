import AsyncHTTPClient
import CapstanModel
import CapstanProcess
import Foundation

/// Runs a deployment's health checks after its activation: round after round, until one round
/// passes entirely or the grace period is over.
struct HealthCheckRun: Sendable {
    let checks: [HealthCheck]
    let grace: Duration
    let executor: CommandExecutor
    let log: DeploymentLog
    /// Units that had failed before the switch: `noFailedUnits` tolerates them.
    let failedBefore: Set<String>
    var retryInterval: Duration = .seconds(2)

    static let systemctlFailed = ["systemctl", "--failed", "--no-legend", "--plain", "--full"]

    /// The units systemd lists as failed now.
    static func failedUnits(executor: CommandExecutor, watch: InterruptionWatch) throws -> Set<String> {
        let output = try executor.run(systemctlFailed, logStdout: false, timeout: .seconds(30), watch: watch)
        return Set(
            output.split(separator: "\n").compactMap { line in
                // Without --plain (or on old systemd) a failed unit's line starts with a bullet.
                line.split(separator: " ").first { $0 != "●" && $0 != "*" }.map(String.init)
            })
    }

    /// The results of the round that passed; throws `DeploymentFailure.checksFailed` with the last
    /// round's results when the grace period ends first, and `Interruption` when the watch stops it.
    func run(watch: InterruptionWatch) async throws -> [CheckResult] {
        let http = HTTPClient(configuration: Self.probeConfiguration)
        do {
            let results = try await rounds(watch: watch, http: http)
            try? await http.shutdown()
            return results
        } catch {
            try? await http.shutdown()
            throw error
        }
    }

    /// A probe reports what the URL itself answers: no redirects followed, and a refused connection
    /// fails at once instead of being retried until the probe's timeout.
    static var probeConfiguration: HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool.retryConnectionEstablishment = false
        return configuration
    }

    private func rounds(watch: InterruptionWatch, http: HTTPClient) async throws -> [CheckResult] {
        log.append("Running \(checks.count) health check(s), retried for up to \(TimeSpan(grace))")
        let start = ContinuousClock.now
        var attempts = 0
        while true {
            attempts += 1
            var results: [CheckResult] = []
            for check in checks {
                try watch.check()
                let (passed, output) = await attempt(check, watch: watch, http: http)
                results.append(
                    CheckResult(check: check.description, passed: passed, attempts: attempts, output: output))
                let summary = output.last.map { ": \($0)" } ?? ""
                log.append("Health check \(check): \(passed ? "passed" : "failed") (attempt \(attempts))\(summary)")
            }
            if results.allSatisfy(\.passed) {
                log.append("All health checks passed")
                return results
            }
            if ContinuousClock.now + retryInterval > start + grace {
                throw DeploymentFailure.checksFailed(results, grace: TimeSpan(grace))
            }
            try await watch.sleep(for: retryInterval)
        }
    }

    /// One run of one check: whether it passed, and the lines that say why.
    private func attempt(_ check: HealthCheck, watch: InterruptionWatch, http: HTTPClient) async -> (Bool, [String]) {
        switch check {
        case .noFailedUnits:
            do {
                let now = try Self.failedUnits(executor: executor, watch: watch)
                let new = now.subtracting(failedBefore).sorted()
                let tolerated = now.intersection(failedBefore).sorted()
                var lines =
                    tolerated.isEmpty ? [] : ["failed before the switch too: " + tolerated.joined(separator: ", ")]
                lines.append(
                    new.isEmpty
                        ? "no unit failed since the switch" : "failed since the switch: " + new.joined(separator: ", "))
                return (new.isEmpty, lines)
            } catch {
                return (false, ["\(error)"])
            }
        case .http(let url, let status, let timeout):
            let limit = min(timeout.duration, watch.remaining ?? timeout.duration)
            return await probe(url, expecting: status, timeout: limit, http: http)
        case .command(let arguments, let timeout):
            do {
                let output = try executor.run(arguments, timeout: timeout.duration, watch: watch)
                return (true, Array(output.split(separator: "\n").map(String.init).suffix(5)))
            } catch let failure as CommandError {
                return (false, Array(failure.lastLines.suffix(4)) + [failure.stepText])
            } catch {
                return (false, ["\(error)"])
            }
        }
    }

    private func probe(_ url: String, expecting expected: Int, timeout: Duration, http: HTTPClient) async
        -> (Bool, [String])
    {
        let milliseconds = max(1, Int64(TimeSpan(timeout).seconds * 1000))
        do {
            let response = try await http.execute(
                HTTPClientRequest(url: url), timeout: .milliseconds(milliseconds))
            let code = Int(response.status.code)
            return (code == expected, ["GET \(url): HTTP \(code)" + (code == expected ? "" : ", expected \(expected)")])
        } catch {
            return (false, ["GET \(url): \(error)"])
        }
    }
}
