import CapstanModel
import Foundation

#if canImport(CapstanServer)
    @testable import CapstanServer
#endif

/// Every frame an agent socket reads: Capstan's own agent protocol both ways (a message that
/// decodes encodes to one that decodes equal), and the cachix agent's frames as the server's
/// CachixWire types decode them. Accepted when any of them decodes.
enum AgentFramesHarness {
    /// Dates as the server's agent channel reads and writes them.
    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    static func run(_ bytes: UnsafeRawBufferPointer) throws -> FuzzVerdict {
        let input = Data(bytes)
        var errors: [String] = []
        var accepted = try roundTrip(AgentMessage.self, input, errors: &errors)
        accepted = try roundTrip(ServerMessage.self, input, errors: &errors) || accepted
        let cachix = JSONDecoder()
        for decode in [
            { _ = try cachix.decode(CachixWire.Envelope<CachixWire.AgentCommand>.self, from: input) },
            { _ = try cachix.decode(CachixWire.LogFrame.self, from: input) },
            { _ = try cachix.decode(CachixWire.MultipartComplete.self, from: input) },
        ] {
            do {
                try decode()
                accepted = true
            } catch {
                errors.append("\(error)")
            }
        }
        return accepted ? .accepted : .refused(errors.joined(separator: "; "))
    }

    static func roundTrip<Message: Codable & Equatable>(
        _ type: Message.Type, _ data: Data, errors: inout [String]
    ) throws -> Bool {
        let message: Message
        do {
            message = try decoder.decode(Message.self, from: data)
        } catch {
            errors.append("\(Message.self): \(error)")
            return false
        }
        let again: Message
        do {
            again = try decoder.decode(Message.self, from: try encoder.encode(message))
        } catch {
            throw FuzzFinding("an accepted \(Message.self) does not read back after encoding: \(error)")
        }
        guard again == message else {
            throw FuzzFinding("\(Message.self) changed on a round trip: \(message) → \(again)")
        }
        return true
    }
}
