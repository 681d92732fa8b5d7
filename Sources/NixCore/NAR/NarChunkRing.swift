import Dispatch
import Synchronization

/// A fixed ring of buffers between one thread that fills them (the tree reader) and one that
/// drains them (the hasher, compressor or writer), so reading and processing run on two cores
/// with memory bounded by the ring whatever the size of the tree.
///
/// Both sides walk the slots in the same order; the two semaphores count filled and free slots
/// and order each slot's contents between the threads.
final class NarChunkRing: @unchecked Sendable {
    /// What the reader left in a slot.
    enum Slot {
        case chunk(Int)
        case end
        case failure(any Error)
    }

    /// The reader's answer when the consumer has given up.
    struct Abandoned: Error {}

    let capacity: Int
    private let storage: UnsafeMutableRawPointer
    /// Raw storage, not an Array: the two threads write and read different slots at once, which an
    /// Array's copy-on-write check would turn into a race on its buffer.
    private let slots: UnsafeMutablePointer<Slot>
    private let count: Int
    private let free: DispatchSemaphore
    private let filled = DispatchSemaphore(value: 0)
    private let abandoned = Atomic<Bool>(false)
    private var produceIndex = 0
    private var consumeIndex = 0

    init(count: Int, capacity: Int) {
        self.capacity = capacity
        storage = UnsafeMutableRawPointer.allocate(byteCount: count * capacity, alignment: 64)
        self.count = count
        slots = UnsafeMutablePointer<Slot>.allocate(capacity: count)
        slots.initialize(repeating: .end, count: count)
        // Created at 0 and raised: libdispatch traps when a semaphore is freed below its initial value,
        // which an abandoned ring may be.
        free = DispatchSemaphore(value: 0)
        for _ in 0..<count { free.signal() }
    }

    deinit {
        slots.deinitialize(count: count)
        slots.deallocate()
        storage.deallocate()
    }

    private func buffer(_ index: Int) -> UnsafeMutableRawPointer { storage + index * capacity }

    /// Reader side: the next empty buffer, waiting while all are full.
    func acquire() throws -> UnsafeMutableRawPointer {
        free.wait()
        if abandoned.load(ordering: .acquiring) {
            free.signal()
            throw Abandoned()
        }
        return buffer(produceIndex)
    }

    /// Reader side: hands over the buffer from the last `acquire`.
    func publish(_ slot: Slot) {
        slots[produceIndex] = slot
        produceIndex = (produceIndex + 1) % count
        filled.signal()
    }

    /// Consumer side: waits for the next slot and hands its bytes to `body`; false at the end.
    func consume(_ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Bool {
        filled.wait()
        let slot = slots[consumeIndex]
        let start = buffer(consumeIndex)
        consumeIndex = (consumeIndex + 1) % count
        defer { free.signal() }
        switch slot {
        case .chunk(let count):
            try body(UnsafeRawBufferPointer(start: start, count: count))
            return true
        case .end:
            return false
        case .failure(let error):
            throw error
        }
    }

    /// Consumer side: makes the reader's next `acquire` fail, so it stops early.
    func abandon() {
        abandoned.store(true, ordering: .releasing)
        free.signal()
    }
}
