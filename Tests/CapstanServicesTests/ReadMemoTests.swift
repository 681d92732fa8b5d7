import NIOCore
import Testing

@testable import CapstanServices

/// What the binary-cache routes keep in memory never outlives a removal: a narinfo or cache row
/// read from the database before the memo was told to forget is not remembered after it.
@Suite("Read memo")
struct ReadMemoTests {
    @Test func aNarinfoReadBeforeAForgetIsNotRememberedAfterIt() {
        let memo = ReadMemo()
        let text = ByteBuffer(string: "StorePath: /nix/store/00000000000000000000000000000000-x\n")
        // A reader takes the generation, reads the row; the path is removed and forgotten; then it remembers.
        let readBefore = memo.generation
        memo.forget(cacheID: "fleet")
        memo.remember(narInfo: text, cacheID: "fleet", hashPart: "h", readAt: readBefore)
        #expect(memo.narInfo(cacheID: "fleet", hashPart: "h") == nil, "a removed path's narinfo was remembered")
        // Read after the forget, it is kept.
        memo.remember(narInfo: text, cacheID: "fleet", hashPart: "h", readAt: memo.generation)
        #expect(memo.narInfo(cacheID: "fleet", hashPart: "h") == text)
    }
}
