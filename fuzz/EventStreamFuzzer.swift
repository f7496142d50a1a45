// libFuzzer entry point for the AWS event-stream decoder (Sources/LifelineWire/Bedrock/AWSEventStream.swift).
// Built by fuzz/event-stream.sh together with that one file, which needs nothing but the standard
// library. Each input is fed whole, then again split at a point the input's first byte picks; the
// decoder must return or throw (never trap), hold no more than its cap, and agree with itself.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEventStream(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    let cap = 64 * 1024
    var whole = AWSEventStreamDecoder(maximumMessageBytes: cap)
    let wholeResult = try? whole.feed(bytes)
    precondition(whole.bufferedByteCount <= max(cap, bytes.count))

    var split = AWSEventStreamDecoder(maximumMessageBytes: cap)
    let cut = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
    var splitMessages: [AWSEventStreamMessage]? = []
    for part in [bytes[..<cut], bytes[cut...]] {
        guard let messages = try? split.feed(part) else { splitMessages = nil; break }
        splitMessages? += messages
    }
    if let wholeResult, let splitMessages {
        precondition(wholeResult == splitMessages, "the same bytes decoded differently when split")
    }
    // Whatever decoded must encode back to bytes that decode to the same messages.
    for message in wholeResult ?? [] {
        var again = AWSEventStreamDecoder(maximumMessageBytes: Int.max)
        precondition((try? again.feed(message.encoded())) == [message], "a decoded message does not survive encoding")
    }
    return 0
}
