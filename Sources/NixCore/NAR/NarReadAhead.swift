import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A second reading thread for the serialiser: it opens, fstats and reads the small regular files
/// of the directory being serialised ahead of it, so that the per-file system calls of a tree of
/// many small files are shared between two cores instead of bounding one.
///
/// The serialiser takes the directory's entries in order; the read-ahead thread claims every other
/// regular file ahead of it (never the serialiser's next one, or each would keep waiting for the
/// other's file), and the serialiser emits them in NAR order, copying what was read ahead and
/// reading the rest itself. Anything the read-ahead thread cannot read exactly (too large,
/// not a regular file any more, an error, a size that changed) is left to the serialiser, which
/// reads it as it would without read-ahead and fails the same way. Memory is bounded by
/// `slotCount` buffers of `NarWriter.readAheadFileLimit` bytes whatever the tree.
final class NarReadAhead: @unchecked Sendable {
    /// Files held read ahead at once.
    static let slotCount = 64
    /// How many entries past the serialiser's the thread may claim; it claims every other one.
    static let window = 2 * slotCount

    /// A directory being serialised, from `enter` to `leave`; its mutable parts change only under the lock.
    final class Directory: @unchecked Sendable {
        let fd: Int32
        let entries: [NarDumper.DirectoryEntry]
        let parent: Directory?
        /// One past the last entry the listing calls a regular file: nothing to read ahead from there on.
        let regularEnd: Int
        fileprivate var states: [EntryState]
        /// The entry the serialiser handles next.
        fileprivate var position = 0
        /// Where the read-ahead thread looks for its next entry.
        fileprivate var scan = 0
        /// Entries the read-ahead thread is reading now; the directory's descriptor stays open until none.
        fileprivate var reading = 0

        fileprivate init(fd: Int32, entries: [NarDumper.DirectoryEntry], parent: Directory?) {
            self.fd = fd
            self.entries = entries
            self.parent = parent
            regularEnd = (entries.lastIndex { $0.isRegular } ?? -1) + 1
            states = Array(repeating: .pending, count: entries.count)
        }

        /// Whether files remain that the read-ahead thread may take.
        fileprivate var hasWork: Bool { max(scan, position + 1) < regularEnd }
    }

    fileprivate enum EntryState {
        case pending
        case claimedBySerialiser
        case reading
        case read(Contents)
        case leftToSerialiser
    }

    /// A file read ahead: its bytes are in `slot` until `release`.
    struct Contents {
        let slot: Int
        let size: Int
        let executable: Bool
    }

    private struct State {
        var active: Directory?
        var freeSlots: [Int]
        var stopped = false
        var threadAsleep = false
        /// The serialiser's position in the active directory at which a sleeping thread is woken.
        var wakeAt = Int.max
    }

    private let state: Mutex<State>
    private let slotCapacity: Int
    private let storage: UnsafeMutableRawPointer
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    /// Starts the read-ahead thread; `stop` must be called once the serialisation ends, however it ends.
    init() {
        // One byte more than the largest file read ahead detects a file that grew since its fstat.
        slotCapacity = NarWriter.readAheadFileLimit + 1
        storage = UnsafeMutableRawPointer.allocate(byteCount: Self.slotCount * slotCapacity, alignment: 64)
        state = Mutex(State(freeSlots: Array((0..<Self.slotCount).reversed())))
        let thread = Thread { [self] in
            defer { finished.signal() }
            run()
        }
        thread.name = "nar-read-ahead"
        thread.start()
    }

    deinit { storage.deallocate() }

    func bytes(of contents: Contents) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: storage + contents.slot * slotCapacity, count: contents.size)
    }

    /// Ends the read-ahead thread and waits for it.
    func stop() {
        state.withLock { state in
            state.stopped = true
            state.threadAsleep = false
        }
        wake.signal()
        finished.wait()
    }

    // MARK: The serialiser's side

    /// Makes the directory open as `fd`, with its sorted `entries`, the one read ahead in.
    func enter(fd: Int32, entries: [NarDumper.DirectoryEntry], parent: Directory?) -> Directory {
        let directory = Directory(fd: fd, entries: entries, parent: parent)
        activate(directory)
        return directory
    }

    /// Called before the directory's descriptor closes: waits for the reads still using it and
    /// returns the parent to read-ahead.
    func leave(_ directory: Directory) {
        activate(directory.parent)
        while true {
            let (idle, wakeThread) = state.withLock { state in
                guard directory.reading == 0 else { return (false, false) }
                // Files read ahead but never emitted (the serialisation failed) give their slots back.
                let held = state.freeSlots.count
                for case .read(let contents) in directory.states { state.freeSlots.append(contents.slot) }
                directory.states.removeAll()
                let wakeThread = state.threadAsleep && state.freeSlots.count > held
                if wakeThread { state.threadAsleep = false }
                return (true, wakeThread)
            }
            if wakeThread { wake.signal() }
            if idle { return }
            sched_yield()
        }
    }

    /// The entry at `index`, read ahead, or nil when the serialiser is to read it itself; moves
    /// the serialiser to that entry.
    func take(_ index: Int, of directory: Directory) -> Contents? {
        while true {
            let (answer, wakeThread): (Contents??, Bool) = state.withLock { state in
                directory.position = index + 1
                let wakeThread = state.threadAsleep && directory.position >= state.wakeAt
                if wakeThread { state.threadAsleep = false }
                switch directory.states[index] {
                case .pending:
                    directory.states[index] = .claimedBySerialiser
                    return (.some(nil), wakeThread)
                case .read(let contents):
                    directory.states[index] = .claimedBySerialiser
                    return (.some(contents), wakeThread)
                case .leftToSerialiser, .claimedBySerialiser:
                    return (.some(nil), wakeThread)
                case .reading:
                    return (nil, wakeThread)
                }
            }
            if wakeThread { wake.signal() }
            if let answer { return answer }
            // The other thread is in the middle of this very file: a few microseconds.
            sched_yield()
        }
    }

    /// Gives a slot from `take` back once its bytes are emitted.
    func release(_ contents: Contents) {
        let wakeThread = state.withLock { state in
            state.freeSlots.append(contents.slot)
            let wakeThread = state.threadAsleep && state.freeSlots.count == Self.slotCount / 2
            if wakeThread { state.threadAsleep = false }
            return wakeThread
        }
        if wakeThread { wake.signal() }
    }

    private func activate(_ directory: Directory?) {
        let wakeThread = state.withLock { state in
            state.active = directory
            // Waking the thread costs both sides a few microseconds: only for a directory with files to read.
            let wakeThread = state.threadAsleep && directory?.hasWork == true
            if wakeThread { state.threadAsleep = false }
            return wakeThread
        }
        if wakeThread { wake.signal() }
    }

    // MARK: The read-ahead thread

    private enum Work {
        case stop
        case sleep
        case read(Directory, index: Int, slot: Int)
    }

    private func run() {
        while true {
            switch claim() {
            case .stop:
                return
            case .sleep:
                wake.wait()
            case .read(let directory, let index, let slot):
                let contents = load(directory.entries[index], in: directory.fd, into: slot)
                state.withLock { state in
                    directory.reading -= 1
                    if let contents {
                        directory.states[index] = .read(contents)
                    } else {
                        directory.states[index] = .leftToSerialiser
                        state.freeSlots.append(slot)
                    }
                }
            }
        }
    }

    /// The next regular file of the active directory within reach of the serialiser, with a slot for it.
    private func claim() -> Work {
        state.withLock { state in
            if state.stopped { return .stop }
            guard let directory = state.active else { return sleep(&state, until: .max) }
            let limit = min(directory.regularEnd, directory.position + Self.window)
            // Not the serialiser's next entry: the two would otherwise keep waiting for each other's file.
            var index = max(directory.scan, directory.position + 1)
            while index < limit, !(directory.entries[index].isRegular && directory.states[index].isPending) {
                index += 1
            }
            directory.scan = index
            guard index < limit else {
                let more = limit < directory.regularEnd
                return sleep(&state, until: more ? directory.position + Self.window / 2 : .max)
            }
            guard let slot = state.freeSlots.popLast() else {
                return sleep(&state, until: .max)
            }
            directory.states[index] = .reading
            // Every other file, so that the serialiser reads the ones between while this one is read.
            directory.scan = index + 2
            directory.reading += 1
            return .read(directory, index: index, slot: slot)
        }
    }

    private func sleep(_ state: inout State, until position: Int) -> Work {
        state.threadAsleep = true
        state.wakeAt = position
        return .sleep
    }

    /// Reads a regular file of at most `readAheadFileLimit` bytes whole, or nil for anything else.
    private func load(_ entry: NarDumper.DirectoryEntry, in parent: Int32, into slot: Int) -> Contents? {
        // O_NONBLOCK: an entry replaced by a fifo since the listing must not block the open.
        let fd = entry.name.withUnsafeBufferPointer { name in
            name.withMemoryRebound(to: CChar.self) {
                openat(parent, $0.baseAddress!, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
            }
        }
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0, status.st_mode & S_IFMT == S_IFREG,
            status.st_size <= NarWriter.readAheadFileLimit
        else { return nil }
        let size = Int(status.st_size)
        let buffer = storage + slot * slotCapacity
        var count = 0
        while true {
            let wanted = size + 1 - count
            let n = read(fd, buffer + count, wanted)
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            count += n
            // A short read of a regular file means end of file; more than its size means it grew.
            if n < wanted || count > size { break }
        }
        guard count == size else { return nil }
        return Contents(slot: slot, size: size, executable: status.st_mode & S_IXUSR != 0)
    }
}

extension NarReadAhead.EntryState {
    fileprivate var isPending: Bool {
        if case .pending = self { return true }
        return false
    }
}
