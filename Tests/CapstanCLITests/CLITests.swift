import Foundation
import Testing
import TestSupport

@Test func capstanPrintsHelp() throws {
    let result = try ProcessRunner.run([TestEnvironment.capstanBinary, "--help"], check: true)
    #expect(result.stdoutString.contains("USAGE: capstan"))
}
