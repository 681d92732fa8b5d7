import CapstanProcess
import Foundation

/// Starts `capstan deploy run` for a deployment as a process in its own session, so that
/// stopping or restarting the agent (which an activation may do) does not stop the deployment.
public enum RunnerLauncher {
    /// Spawns the runner with stdin from /dev/null and its output appended to `runner.out`,
    /// and returns its pid; the caller reaps it (or, after an agent restart, init does).
    public static func spawn(executable: String, stateDirectory: String, directory: DeploymentDirectory) throws
        -> pid_t
    {
        var invocation = CommandInvocation(
            [executable, "deploy", "run", "--state-dir", stateDirectory, "--id", directory.id],
            environment: ChildEnvironment.current())
        invocation.standardOutput = .file(directory.runnerOutputFile)
        invocation.standardError = .file(directory.runnerOutputFile)
        invocation.grouping = .ownSession
        return try CommandRunner.start(invocation)
    }
}
