// Shared by the libFuzzer targets (Fuzz/Sources) and the corpus replay tests (Tests/…/FuzzHarnesses).

/// What a harness concluded about one input: taken, or refused with the error a caller would see.
enum FuzzVerdict: Equatable, Sendable {
    case accepted
    case refused(String)
}

/// A property that must hold for every input broke: a bug, not a bad input.
struct FuzzFinding: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// libFuzzer's view of a harness: a finding is a crash, anything else a pass.
func fuzzOne(
    _ data: UnsafePointer<UInt8>?, _ size: Int, _ harness: (UnsafeRawBufferPointer) throws -> FuzzVerdict
) -> Int32 {
    do {
        _ = try harness(UnsafeRawBufferPointer(start: data, count: size))
    } catch {
        fatalError("\(error)")
    }
    return 0
}

extension FuzzVerdict {
    /// What is wrong with this verdict for the seed `name`, nil when nothing: a seed named
    /// `accepted-…` must be accepted, `refused-…` refused, and a refusal must say why.
    func mismatch(forSeedNamed name: String) -> String? {
        switch self {
        case .accepted where name.hasPrefix("refused-"): "\(name) was accepted"
        case .refused(let why) where name.hasPrefix("accepted-"): "\(name) was refused: \(why)"
        case .refused(let why) where why.isEmpty: "\(name) was refused without a reason"
        default: nil
        }
    }
}
