import Foundation
import XCTest

@testable import Squeeze

/// A session entered from two threads: the one that finds it in use gets
/// `.busy` and nothing happens; every other call succeeds.
final class ConcurrencyTests: XCTestCase {
    func testSessionFromTwoThreadsIsBusyNotRacy() throws {
        let fixtures = try Fixtures.load()
        let input = try Npy(fixtures.data("x.npy"))
        let expected = try Npy(fixtures.data("out/probs.npy")).values
        // One worker thread per session: longer runs, and both test threads
        // get a core of their own on a small machine.
        let session = try Model(path: fixtures.model, options: LoadOptions(threads: 1)).makeSession()

        let maxRounds = 20_000
        let deadline = Date().addingTimeInterval(60)
        let state = Tally()

        let inputBytes = UnsafeMutableRawBufferPointer.allocate(byteCount: input.bytes.count, alignment: 64)
        defer { inputBytes.deallocate() }
        input.bytes.copyBytes(to: inputBytes)
        let shared = SharedInput(buffer: UnsafeRawBufferPointer(inputBytes))

        let done = DispatchGroup()
        let start = DispatchSemaphore(value: 0)
        for t in 0..<2 {
            done.enter()
            let thread = Thread {
                defer { done.leave() }
                var probs = [Float](repeating: .nan, count: 10)
                start.wait()
                for round in 0..<maxRounds {
                    var status: String?
                    do {
                        try probs.withUnsafeMutableBytes { out in
                            try session.run(inputs: [shared.buffer], outputs: [out])
                        }
                    } catch let error as SqueezeError {
                        status = error.status == .busy ? "busy" : "\(error)"
                    } catch {
                        status = "\(error)"
                    }
                    let stop = state.locked { s -> Bool in
                        switch status {
                        case nil: s.ok[t] += 1
                        case "busy"?: s.busy[t] += 1
                        case let other?: s.unexpected.append(other)
                        }
                        // A few more rounds after the first busy, so that
                        // this thread also gets to run.
                        return (s.busy[0] + s.busy[1] >= 3 && s.ok[t] > 0)
                            || !s.unexpected.isEmpty || (round % 64 == 0 && Date() > deadline)
                    }
                    if stop { break }
                }
                state.locked { $0.lastOutputs[t] = probs }
            }
            thread.start()
        }
        start.signal()
        start.signal()
        XCTAssertEqual(done.wait(timeout: .now() + 120), .success, "the threads did not finish")

        state.locked { s in
            XCTAssertEqual(s.unexpected, [], "statuses other than OK and BUSY")
            XCTAssertGreaterThan(s.busy[0] + s.busy[1], 0, "no BUSY in \(s.ok[0] + s.ok[1]) runs from two threads")
            print("two threads on one session: ok \(s.ok), busy \(s.busy)")
            for t in 0..<2 where s.ok[t] > 0 {
                assertClose(s.lastOutputs[t], expected, "thread \(t)")
            }
            XCTAssertGreaterThan(s.ok[0] + s.ok[1], 0)
        }
    }

    /// One session per thread: all runs succeed, concurrently.
    func testOneSessionPerThread() throws {
        let fixtures = try Fixtures.load()
        let input = try Npy(fixtures.data("x.npy"))
        let expected = try Npy(fixtures.data("out/probs.npy")).values
        let model = try Model(path: fixtures.model, options: LoadOptions(threads: 1))
        let state = Tally()
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            do {
                let session = try model.makeSession()
                for _ in 0..<25 {
                    let probs = try session.run(inputs: [input.bytes])[0].elements(of: Float.self)
                    if zip(probs, expected).contains(where: { abs($0 - $1) > 1e-5 }) {
                        state.locked { $0.unexpected.append("thread \(t): \(probs)") }
                        return
                    }
                }
            } catch {
                state.locked { $0.unexpected.append("thread \(t): \(error)") }
            }
        }
        state.locked { XCTAssertEqual($0.unexpected, []) }
    }
}

/// The input every thread reads (and no one writes) while the test runs.
struct SharedInput: @unchecked Sendable {
    let buffer: UnsafeRawBufferPointer
}

/// What the test threads report, behind a lock.
final class Tally: @unchecked Sendable {
    struct Counts {
        var ok = [0, 0]
        var busy = [0, 0]
        var unexpected: [String] = []
        var lastOutputs: [[Float]] = [[], []]
    }

    private let lock = NSLock()
    private var counts = Counts()

    func locked<R>(_ body: (inout Counts) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&counts)
    }
}
