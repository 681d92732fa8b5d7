import CapstanModel
import Foundation

/// A deploy.json is accepted or refused with a DeploySpecError; an accepted one reads back
/// equal after encoding.
enum DeploySpecHarness {
    static func run(_ bytes: UnsafeRawBufferPointer) throws -> FuzzVerdict {
        let spec: DeploySpec
        do {
            spec = try DeploySpec.parse(Data(bytes))
        } catch {
            return .refused(error.description)
        }
        let again: DeploySpec
        do {
            again = try DeploySpec.parse(try JSONEncoder().encode(spec))
        } catch {
            throw FuzzFinding("an accepted deploy.json does not read back after encoding: \(error)")
        }
        guard again == spec else { throw FuzzFinding("deploy.json changed on a round trip: \(spec) → \(again)") }
        return .accepted
    }
}
