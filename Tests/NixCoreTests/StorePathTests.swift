import Foundation
import Testing

@testable import NixCore

private let hash = "0c6kzph7l0dcbfmjap64f0czdafn3b7x"

@Test("A store path splits into store directory, hash part and name")
func storePathParts() throws {
    let path = try StorePath(parsing: "/nix/store/\(hash)-hello-2.12.1")
    #expect(path.storeDir == "/nix/store")
    #expect(path.hashPart == hash)
    #expect(path.name == "hello-2.12.1")
    #expect(path.baseName == "\(hash)-hello-2.12.1")
    #expect(path.path == "/nix/store/\(hash)-hello-2.12.1")
    #expect(path.description == path.path)
    #expect(try StorePath(baseName: path.baseName) == path)
    #expect(try StorePath(parsing: "/other/store/\(hash)-x", storeDir: "/other/store/").storeDir == "/other/store")
}

@Test(
    "Names Nix accepts are accepted",
    arguments: ["a", "A-Z.0_9+?=", "x.drv", "hello-1.0", String(repeating: "n", count: 211), "-leading-dash"])
func validNames(name: String) throws {
    #expect(try StorePath(baseName: "\(hash)-\(name)").name == name)
}

private let invalidStorePathCases: [(String, String)] = [
    ("/nix/store/\(hash)-", "the name is empty"),
    ("/nix/store/\(hash)-" + String(repeating: "n", count: 212), "longer than 211"),
    ("/nix/store/\(hash)-.hidden", "starts with '.'"),
    ("/nix/store/\(hash)-with space", "illegal character ' '"),
    ("/nix/store/\(hash)-caf\u{e9}", "illegal character 'é'"),
    ("/nix/store/\(hash)-a/b", "inside a store path"),
    ("/nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7e-x", "outside nix32"),
    ("/nix/store/0C6KZPH7L0DCBFMJAP64F0CZDAFN3B7X-x", "outside nix32"),
    ("/nix/store/\(hash)_x", "expected '-'"),
    ("/nix/store/abc-x", "too short"),
    ("/usr/store/\(hash)-x", "not in the store directory '/nix/store'"),
    ("/nix/storex/\(hash)-x", "not in the store directory"),
    ("", "not in the store directory"),
]

@Test(
    "Invalid store paths fail with the input and the reason", arguments: invalidStorePathCases)
func invalidStorePaths(input: String, expected: String) {
    do {
        let path = try StorePath(parsing: input)
        Issue.record("'\(input)' parsed as \(path)")
    } catch let error as StorePathError {
        #expect(error.description.contains(expected), "\(error.description)")
        #expect(error.description.contains("'\(input)'"))
    } catch {
        Issue.record("unexpected error \(error)")
    }
}

@Test("Store paths sort by base name and round-trip through Codable as the full path")
func storePathOrderingAndCodable() throws {
    let a = try StorePath(baseName: "00000000000000000000000000000000-z")
    let b = try StorePath(baseName: "10000000000000000000000000000000-a")
    #expect(a < b)
    #expect([b, a].sorted() == [a, b])
    let json = try JSONEncoder().encode([a])
    #expect(String(decoding: json, as: UTF8.self) == #"["\/nix\/store\/00000000000000000000000000000000-z"]"#)
    #expect(try JSONDecoder().decode([StorePath].self, from: json) == [a])
    let custom = try StorePath(parsing: "/tmp/store/\(hash)-x", storeDir: "/tmp/store")
    #expect(try JSONDecoder().decode(StorePath.self, from: JSONEncoder().encode(custom)) == custom)
    #expect(throws: DecodingError.self) { try JSONDecoder().decode(StorePath.self, from: Data(#""relative""#.utf8)) }
}
