import CapstanModel
import Foundation
import NixCore
import TestSupport
import Testing

/// Store paths are `StorePath`s from the moment they are read: deploy.json, agent messages and API
/// bodies naming something that is not one are refused with a message naming it, and on the wire a
/// store path is exactly its full path as a JSON string.
@Suite("Store paths on the wire")
struct StorePathWireTests {
    static let system = StorePath.named("system")

    static func decode<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
        try JSONDecoder.capstan.decode(type, from: Data(json.utf8))
    }

    /// The decoder's own reason, which the API and the agent channel report.
    static func reason(_ error: (any Error)?) -> String {
        guard case .dataCorrupted(let context)? = error as? DecodingError else { return "\(String(describing: error))" }
        return context.debugDescription
    }

    @Test(arguments: [
        (
            #"{"agents": {"web1": "/nix/store/abc-system"}}"#,
            #"agents.web1: "/nix/store/abc-system" is not a store path"#,
            "too short"
        ),
        (#"{"agents": {"web1": "/etc/passwd"}}"#, #"agents.web1: "/etc/passwd" is not a store path"#, "/nix/store"),
        (
            #"{"agents": {"web1": "\#(system.path)"}, "rollbackScript": {"x86_64-linux": "\#(system.path)/bin/check"}}"#,
            #"rollbackScript.x86_64-linux: "\#(system.path)/bin/check" is not a store path"#,
            "a file inside a store path"
        ),
    ])
    func aDeployJSONNamingNoStorePathIsRefused(json: String, names: String, reason: String) throws {
        let error = #expect(throws: DeploySpecError.self) { try DeploySpec.parse(Data(json.utf8)) }
        let message = error?.description ?? ""
        #expect(message.hasPrefix("deploy.json: "), "\(message)")
        #expect(message.contains(names), "\(message)")
        #expect(message.contains(reason), "\(message)")
    }

    @Test func aDeployJSONsPathsAreParsedOnce() throws {
        let spec = try DeploySpec.parse(Data(#"{"agents": {"web1": "\#(Self.system.path)"}}"#.utf8))
        #expect(spec.agents == ["web1": Self.system])
    }

    @Test func anAgentMessageNamingNoStorePathIsRefused() throws {
        let report = #"""
            {"type": "localAction", "localAction": {"id": "local-1", "action": "activate",
             "storePath": "/etc/passwd", "succeeded": true, "rolledBack": false,
             "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:01Z"}}
            """#
        let error = #expect(throws: DecodingError.self) { try Self.decode(AgentMessage.self, report) }
        #expect(
            Self.reason(error) == "invalid store path '/etc/passwd': it is not in the store directory '/nix/store'")
        // An order from the server is read as strictly by the agent.
        let order = #"{"type": "deploy", "deployment": {"id": "d1", "index": 1, "storePath": "/nix/store/x-y"}}"#
        let orderError = #expect(throws: DecodingError.self) { try Self.decode(ServerMessage.self, order) }
        #expect(Self.reason(orderError).hasPrefix("invalid store path '/nix/store/x-y': it is too short"))
    }

    @Test func aHelloNamingNoStorePathIsNotBelievedButAccepted() throws {
        let hello = try Self.decode(
            AgentHello.self,
            #"{"name": "web1", "version": "1", "system": "x86_64-linux", "currentStorePath": "/tmp/x"}"#)
        #expect(hello.name == "web1")
        #expect(hello.currentStorePath == nil)
    }

    @Test func anAPIBodyNamingNoStorePathIsRefused() throws {
        let outside = "/tmp/store/\(Self.system.baseName)"
        let body = #"{"storePath": "\#(outside)", "narHash": "sha256:x", "narSize": 1, "references": [], "sigs": []}"#
        let error = #expect(throws: DecodingError.self) { try Self.decode(PathUploadInfo.self, body) }
        #expect(Self.reason(error) == "invalid store path '\(outside)': it is not in the store directory '/nix/store'")
    }

    @Test func aStorePathIsItsFullPathAsAJSONString() throws {
        let order = DeploymentOrder(id: "d1", index: 1, storePath: Self.system, rollbackScript: nil)
        let json = String(decoding: try JSONEncoder.capstan.encode(order), as: UTF8.self)
        #expect(json == #"{"id":"d1","index":1,"storePath":"\#(Self.system.path)"}"#)
        #expect(try Self.decode(DeploymentOrder.self, json) == order)
        let spec = DeploySpec(agents: ["web1": Self.system], rollbackScript: ["x86_64-linux": Self.system])
        #expect(
            String(decoding: try JSONEncoder.capstan.encode(spec), as: UTF8.self)
                == #"{"agents":{"web1":"\#(Self.system.path)"},"rollbackScript":{"x86_64-linux":"\#(Self.system.path)"}}"#
        )
    }
}
