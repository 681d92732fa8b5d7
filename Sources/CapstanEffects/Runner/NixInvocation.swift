import Foundation

/// Runs a `nix` program, stderr passed through (progress and evaluation errors reach the person),
/// stdout captured.
enum NixInvocation {
    static func output(_ arguments: [String], passStderr: Bool = true) throws(EffectError) -> (
        status: Int32, stdout: Data, stderr: String
    ) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw .command(arguments, status: -1, stderr: "could not start: \(error.localizedDescription)")
        }
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) {
            while true {
                let chunk = err.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                errData.append(chunk)
                if passStderr { FileHandle.standardError.write(chunk) }
            }
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        group.wait()
        return (process.terminationStatus, outData, String(decoding: errData, as: UTF8.self))
    }

    /// Runs and fails on a non-zero exit; `quiet` keeps stderr for the error only.
    static func checked(_ arguments: [String], quiet: Bool = false) throws(EffectError) -> Data {
        let result = try output(arguments, passStderr: !quiet)
        guard result.status == 0 else { throw .command(arguments, status: result.status, stderr: result.stderr) }
        return result.stdout
    }
}
