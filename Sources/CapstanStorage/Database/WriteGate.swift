/// Lets one task at a time write to an SQLite file from this process.
///
/// SQLite allows one writer per file; queuing writers here keeps them from sleeping in SQLite's busy
/// handler on the shared thread pool, where they could starve the writer that holds the lock.
actor WriteGate {
    /// One gate per file, shared by every store of the process that opens it.
    static func forFile(_ path: String) async -> WriteGate {
        await WriteGateRegistry.shared.gate(for: path)
    }

    private var isHeld = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !isHeld {
            isHeld = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            isHeld = false
        } else {
            // Ownership passes straight to the next waiter; `isHeld` stays true.
            waiters.removeFirst().resume()
        }
    }
}

private actor WriteGateRegistry {
    static let shared = WriteGateRegistry()
    private var gates: [String: WriteGate] = [:]

    func gate(for path: String) -> WriteGate {
        if let gate = gates[path] { return gate }
        let gate = WriteGate()
        gates[path] = gate
        return gate
    }
}
