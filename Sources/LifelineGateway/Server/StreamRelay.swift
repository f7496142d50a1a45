import Foundation
import Hummingbird
import LifelineCore
import LifelineWire
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Tracing

/// Streams one answer to the client and keeps it going when an upstream fails.
///
/// Before the first event, a failed attempt moves on to the next deployment unseen. After it,
/// the stream resumes on another deployment from the text already sent (an assistant prefill),
/// and a `ContinuationSplicer` removes any overlap, so the client reads one unbroken answer.
struct StreamRelay: Sendable {
    let chat: ChatRequest
    let api: ClientAPI
    /// Every available deployment in preference order; resumption may use any of them.
    let order: [Deployment]
    let failover: Failover
    let runtime: GatewayRuntime
    let requestID: String
    let logger: Logger
    /// Set when the model has a cache and the request is cacheable: a whole answer is stored,
    /// and a stale entry answers if every deployment fails before the first byte.
    var cache: AnswerCacheLookup?

    func response(record: RequestRecord, headers extra: HTTPFields) async -> Response {
        var record = record
        var result: Result<(value: OpenedStream, deployment: Deployment), GatewayError>
        var remaining = order
        if let delay = failover.group.hedgeDelay, order.count >= 2 {
            if let hedged = await failover.hedgedOpen(chat, order: order, delay: delay, record: &record) {
                result = .success(hedged)
            } else {
                remaining = Array(order.dropFirst(record.attempts))
                result = await failover.run(remaining, phase: .beforeFirstByte, record: &record, outcomeLater: true) { deployment throws(UpstreamFailure) in
                    try await Self.open(chat.upstreamRequest(for: deployment), on: deployment)
                }
            }
        } else {
            result = await failover.run(order, phase: .beforeFirstByte, record: &record, outcomeLater: true) { deployment throws(UpstreamFailure) in
                try await Self.open(chat.upstreamRequest(for: deployment), on: deployment)
            }
        }
        switch result {
        case .failure(let error):
            if let cache, let stale = await cache.staleResponse(for: error, chat: chat, api: api, requestID: requestID, headers: extra,
                                                                record: record, runtime: runtime)
            {
                return stale
            }
            record.status = error.status
            runtime.finish(record)
            var headers = extra
            headers[.lifelineAttempts] = String(record.attempts)
            return error.response(for: api.errorShape, headers: headers)
        case .success(let (opened, deployment)):
            record.deployment = deployment.name
            record.answeredSystem = deployment.config.protocol.genAISystem
            record.responseModel = deployment.config.model
            record.firstTokenAt = runtime.clock()
            record.hostAtFirstToken = SchedulingLag.shared.now
            failover.group.recordFirstToken(seconds: runtime.clock() - record.started)
            var headers = extra
            headers[.contentType] = "text/event-stream"
            headers[.cacheControl] = "no-cache"
            headers[.lifelineDeployment] = deployment.name
            headers[.lifelineAttempts] = String(record.attempts)
            let started = record
            // If the client is gone before the body is written, the server drops the body
            // unrun: the lease then frees the deployment's slot and closes the record.
            let lease = StreamLease { [runtime, failover] in
                var record = started
                record.status = 499
                failover.group.release(deployment)
                runtime.finish(record)
            }
            return Response(status: .ok, headers: headers, body: ResponseBody { [self] writer in
                lease.disarm()
                var record = started
                defer { runtime.finish(record) }
                // The body runs after the handler returned: the request's span is made current again for it.
                if let context = started.span?.context {
                    try await InstrumentationContext.$current.withValue(context) {
                        try await relay(opened, from: deployment, record: &record, to: &writer)
                    }
                } else {
                    try await relay(opened, from: deployment, record: &record, to: &writer)
                }
            })
        }
    }

    /// Runs its action once: when the stream's body takes over (`disarm`), never; when the response
/// is dropped without its body ever running, on deinit.
final class StreamLease: Sendable {
    private let action: Mutex<(@Sendable () -> Void)?>

    init(_ action: @escaping @Sendable () -> Void) { self.action = Mutex(action) }

    func disarm() { action.withLock { $0 = nil } }

    deinit { action.withLock { $0 }?() }
}

/// An upstream stream with its first event already read.
    struct OpenedStream: @unchecked Sendable {
        // Safe: the stream is created in a task of its own and handed over only after that task has
        // finished, so it is never used by two tasks at once.
        var stream: UpstreamEventStream
        var first: ChatEvent?
    }

    /// Opens a stream and waits for its first event, within the deployment's first-token timeout.
    ///
    /// The timeout is a timer on the event loop this runs on, which cancels the attempt. (A
    /// `Task.sleep` beside it would set a timer on the runtime's own threads, and waking them and
    /// then the loop again cost every stream several thread switches before its first byte.)
    static func open(_ chat: ChatRequest, on deployment: Deployment) async throws(UpstreamFailure) -> OpenedStream {
        let timeout = deployment.config.timeouts.firstTokenMilliseconds
        let attempt = Task { () async throws -> OpenedStream in
            var stream = try await deployment.stream(chat)
            let first = try await stream.next()
            return OpenedStream(stream: stream, first: first)
        }
        let expired = Expiry()
        let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .milliseconds(Int64(timeout))) {
            expired.happened.store(true, ordering: .releasing)
            attempt.cancel()
        }
        defer { timer.cancel() }
        do {
            return try await withTaskCancellationHandler { try await attempt.value } onCancel: { attempt.cancel() }
        } catch {
            if expired.happened.load(ordering: .acquiring) { throw UpstreamFailure(.timeout, "no first token within \(timeout) ms") }
            throw UpstreamClient.failure(from: error)
        }
    }

    /// Set by the first-token timer when it fires.
    private final class Expiry: Sendable {
        let happened = Atomic(false)
    }

    /// The answer as the client has it so far; text flows upstream → splicer → stop scanner → client.
    private struct Progress {
        var text = ""
        var textEvents = 0
        var sawToolCall = false
        var usage = Usage(promptTokens: 0, completionTokens: 0)
        var attemptUsage: Usage?
        var splicer: ContinuationSplicer?
        var scanner: StopSequenceScanner?
        /// Set when the gateway's own stop scan ended the answer.
        var stoppedBySequence = false
        /// After a resumption: the completion tokens the client may still get under its `max_tokens`.
        /// A continuation is asked for the whole budget (an upstream that restarts the answer
        /// spends it on the part the client already has too), and the gateway ends the answer here.
        var tokensLeft: Int?
        /// Set when the gateway ended a resumed answer at the client's `max_tokens`.
        var stoppedAtLimit = false
        /// Events and characters the splicer held back before telling a continuation from a restart.
        var heldEvents = 0
        var heldCharacters = 0
        /// The gateway ended the answer itself; what the upstream still sends is dropped.
        var stopped: Bool { stoppedBySequence || stoppedAtLimit }
        /// Set once the stream has been resumed: a continuation's reasoning is not the answer's.
        var resumed = false
        /// How the first choice ended, once it has.
        var finishReason: FinishReason?
        var stopSequence: String?

        /// Counts tokens the client got after a resumption against what it may still get.
        mutating func spend(_ tokens: Int) {
            if let left = tokensLeft { tokensLeft = left - tokens }
        }

        /// Spends what the splicer released when it decided, and cuts it at the client's limit.
        /// Its tokens are all the events it held when the upstream continued the answer, and a
        /// share of them in proportion to the characters kept when it restarted the answer and the
        /// repeat was dropped.
        mutating func spendReleased(_ released: String) -> String {
            guard !released.isEmpty, heldEvents > 0, let left = tokensLeft else { return released }
            let tokens = heldCharacters > released.count ? max(1, (heldEvents * released.count + heldCharacters - 1) / heldCharacters) : heldEvents
            tokensLeft = left - tokens
            guard tokens > left else { return released }
            // More than the client may still get: cut at its limit, at the upstream's characters per token.
            tokensLeft = 0
            return String(released.prefix(max(0, left) * max(1, heldCharacters / heldEvents)))
        }

        /// Closes an attempt's usage: reported by the upstream, or else its text events counted as
        /// completion tokens (a cut stream reports nothing, nor do some servers, llama.cpp's among
        /// them, that send one event per token).
        mutating func closeAttempt() {
            usage = usage + (attemptUsage ?? Usage(promptTokens: 0, completionTokens: textEvents))
            attemptUsage = nil
            textEvents = 0
        }
    }

    private func relay(_ opened: OpenedStream, from first: Deployment, record: inout RequestRecord,
                       to writer: inout any ResponseBodyWriter) async throws
    {
        // message_start carries the prompt's size: the upstream's own count when it announced one
        // before its first token, else Lifeline's estimate; message_delta then carries the final usage.
        let promptTokens = opened.stream.announcedPromptTokens ?? TokenEstimate.promptTokens(for: chat)
        var encoder = ClientStreamEncoder(api: api, id: api.answerID(requestID: requestID), model: chat.model,
                                          created: Int(Date().timeIntervalSince1970), includeUsage: chat.includeUsage,
                                          promptTokens: promptTokens)
        var progress = Progress()
        if api.isAnthropic, !chat.stop.isEmpty { progress.scanner = StopSequenceScanner(sequences: chat.stop) }
        var current = opened
        var deployment = first
        var attemptRequest = chat
        let deadline = record.started + Double(first.config.timeouts.totalMilliseconds) / 1000
        var out: [UInt8] = []
        if let event = current.first { out += forward(event, &encoder, &progress) }
        do {
            streaming: while true {
                do {
                    // The first event (and a resumption's splice comment) go out before waiting for more.
                    if !out.isEmpty { try await write(&out, to: &writer) }
                    while !progress.stopped, let event = try await current.stream.next() {
                        out += forward(event, &encoder, &progress)
                        // Events that came in one read of the upstream go out in one write: a
                        // busy host that reads several at once spends one write on them, not one each.
                        if !out.isEmpty, !current.stream.hasReadyEvent {
                            try await write(&out, to: &writer)
                        }
                        if runtime.clock() > deadline {
                            throw UpstreamFailure(.timeout, "the answer took longer than the total timeout")
                        }
                    }
                    out += finishText(&encoder, &progress)
                    if progress.attemptUsage == nil, !progress.stopped, deployment.config.streamUsage == .ask,
                       let prompt = await deployment.client.promptTokens(attemptRequest.upstreamRequest(for: deployment))
                    {
                        progress.attemptUsage = Usage(promptTokens: prompt, completionTokens: progress.textEvents)
                    }
                    record.closeAttemptSpan(failure: nil, usage: progress.attemptUsage ?? Usage(promptTokens: 0, completionTokens: progress.textEvents),
                                            responseModel: deployment.config.model)
                    progress.closeAttempt()
                    failover.group.report(deployment, failure: nil)
                    break streaming
                } catch let error as UpstreamFailure where !error.isCancellation {
                    failover.group.report(deployment, failure: error)
                    logger.warning("stream failed mid-answer", metadata: [
                        "deployment": .string(deployment.name), "failure": .string(error.description),
                        "bytes_sent": .stringConvertible(progress.text.utf8.count)])
                    record.closeAttemptSpan(failure: error, usage: progress.attemptUsage ?? Usage(promptTokens: 0, completionTokens: progress.textEvents))
                    record.event("stream_failed", ["lifeline.deployment": .string(deployment.name), "lifeline.outcome": .string(error.kind.outcome),
                                                   "lifeline.bytes_sent": .int64(Int64(progress.text.utf8.count))])
                    progress.closeAttempt()
                    // Tokens the client may still get: the limit less what it has (a second
                    // resumption carries on from the first's count, which leaves out dropped repeats).
                    if let limit = chat.maxTokens { progress.tokensLeft = progress.tokensLeft ?? max(0, limit - progress.usage.completionTokens) }
                    if progress.tokensLeft == 0, !progress.sawToolCall {
                        // Cut after the client's last token: there is nothing left to resume.
                        out += endAtLimit(&encoder, &progress)
                        break streaming
                    }
                    guard let resumed = await resume(after: deployment, failure: error, progress: progress, record: &record) else {
                        let why = interruption(failure: error, progress: progress, record: record)
                        record.event("stream_interrupted", ["lifeline.reason": .string(why.reason)])
                        logger.warning("stream interrupted", metadata: [
                            "deployment": .string(deployment.name), "reason": .string(why.reason),
                            "resumptions": .stringConvertible(record.resumptions)])
                        let reason = why.safe
                            ? "The upstream failed mid-stream and no other deployment could continue it."
                            : "This stream cannot be resumed safely after its upstream failed."
                        out += encoder.error(GatewayError(status: 503, message: reason, code: "stream_interrupted", retryAfterSeconds: 1))
                        record.status = 503
                        try await write(&out, to: &writer)
                        try await writer.finish(nil)
                        return
                    }
                    record.resumptions += 1
                    attemptRequest = continuation(of: progress, on: resumed.deployment)
                    out += SSE.comment("lifeline resumed on \(resumed.deployment.name) after \(progress.text.utf8.count) bytes")
                    deployment = resumed.deployment
                    record.answeredSystem = deployment.config.protocol.genAISystem
                    record.responseModel = deployment.config.model
                    current = resumed.value
                    progress.splicer = ContinuationSplicer(sent: progress.text)
                    progress.heldEvents = 0
                    progress.heldCharacters = 0
                    progress.resumed = true
                    // Held-back text was never sent; the continuation brings it again.
                    if let scanner = progress.scanner { progress.scanner = StopSequenceScanner(sequences: scanner.sequences) }
                    if let event = current.first { out += forward(event, &encoder, &progress) }
                }
            }
        } catch {
            // The client went away (or this task was cancelled): the upstream stream is dropped
            // (and cancelled) with it, and nothing failed.
            failover.group.release(deployment)
            record.status = 499
            record.closeAttemptSpan(failure: nil, outcome: "client_closed")
            throw error
        }
        record.usage = progress.usage
        // Only a whole text answer is kept: ended by the model, one choice, no tool call.
        if let cache, chat.choiceCount == 1, !progress.sawToolCall, let reason = progress.finishReason, CachedAnswer.keeps(reason) {
            cache.store(CachedAnswer(text: progress.text, finishReason: reason, stopSequence: progress.stopSequence, usage: progress.usage), in: runtime)
        }
        out += encoder.encode(.usage(progress.usage))
        out += encoder.finish()
        // Kept before the last bytes go out, so a client that reads it back at once finds it.
        if case .responses(let exchange) = api, let response = encoder.completedResponse { await exchange.keep(response, runtime: runtime) }
        try await write(&out, to: &writer)
        try await writer.finish(nil)
    }

    private func write(_ out: inout [UInt8], to writer: inout any ResponseBodyWriter) async throws {
        try await writer.write(ByteBuffer(bytes: out))
        out.removeAll(keepingCapacity: true)
    }

    /// Passes one upstream event toward the client.
    private func forward(_ event: ChatEvent, _ encoder: inout ClientStreamEncoder, _ progress: inout Progress) -> [UInt8] {
        guard !progress.stopped else { return [] }
        switch event {
        case .textDelta(let choice, let text, let logprobs):
            guard choice == 0 else { return encoder.encode(event) }
            progress.textEvents += 1
            if progress.splicer == nil, progress.scanner == nil {
                progress.text += text
                return encoder.encode(.textDelta(choice: 0, text: text, logprobs: logprobs))
            }
            guard progress.splicer != nil else { return sendText(text, &encoder, &progress) }
            let wasHolding = progress.splicer!.isHolding
            var spliced = progress.splicer!.accept(text)
            if wasHolding {
                progress.heldEvents += 1
                progress.heldCharacters += text.count
                if !progress.splicer!.isHolding { spliced = progress.spendReleased(spliced) }
            } else {
                progress.spend(1)
            }
            return sendText(spliced, &encoder, &progress) + endAtLimit(&encoder, &progress)
        case .toolCallDelta:
            progress.sawToolCall = true
            return encoder.encode(event)
        case .reasoningDelta:
            return progress.resumed ? [] : encoder.encode(event)
        case .usage(let usage):
            progress.attemptUsage = usage
            return []
        case .finish(let choice, let reason, let sequence):
            guard choice == 0 else { return encoder.encode(event) }
            var out = finishText(&encoder, &progress)
            if !progress.stopped {
                out += encoder.encode(.finish(choice: 0, reason: reason, stopSequence: sequence))
                progress.finishReason = reason
                progress.stopSequence = sequence
            }
            return out
        }
    }

    /// Text after splicing: through the stop scanner, then to the client.
    private func sendText(_ text: String, _ encoder: inout ClientStreamEncoder, _ progress: inout Progress) -> [UInt8] {
        var text = text
        if progress.scanner != nil {
            text = progress.scanner!.accept(text)
        }
        var out: [UInt8] = []
        if !text.isEmpty {
            progress.text += text
            out += encoder.encode(.textDelta(choice: 0, text: text, logprobs: nil))
        }
        if let matched = progress.scanner?.matched, !progress.stopped {
            progress.stoppedBySequence = true
            progress.finishReason = .stopSequence
            progress.stopSequence = matched
            out += encoder.encode(.finish(choice: 0, reason: .stopSequence, stopSequence: matched))
        }
        return out
    }

    /// Releases text still held by the splicer and the stop scanner at the end of an attempt.
    private func finishText(_ encoder: inout ClientStreamEncoder, _ progress: inout Progress) -> [UInt8] {
        var out: [UInt8] = []
        if progress.splicer != nil {
            let wasHolding = progress.splicer!.isHolding
            var rest = progress.splicer!.finish()
            progress.splicer = nil
            if wasHolding { rest = progress.spendReleased(rest) }
            out += sendText(rest, &encoder, &progress)
        }
        return out + releaseScanned(&encoder, &progress)
    }

    /// Sends what the stop scanner still holds back: the start of a stop sequence that never came.
    private func releaseScanned(_ encoder: inout ClientStreamEncoder, _ progress: inout Progress) -> [UInt8] {
        guard progress.scanner != nil, !progress.stoppedBySequence else { return [] }
        let rest = progress.scanner!.finish()
        guard !rest.isEmpty else { return [] }
        progress.text += rest
        return encoder.encode(.textDelta(choice: 0, text: rest, logprobs: nil))
    }

    /// Ends a resumed answer once the client has had its `max_tokens`, as the upstream would have.
    private func endAtLimit(_ encoder: inout ClientStreamEncoder, _ progress: inout Progress) -> [UInt8] {
        guard let left = progress.tokensLeft, left <= 0, !progress.stopped, progress.splicer?.isHolding != true else { return [] }
        // Text the stop scanner still holds is within the limit: it goes out before the end.
        let out = releaseScanned(&encoder, &progress)
        progress.stoppedAtLimit = true
        progress.finishReason = .length
        return out + encoder.encode(.finish(choice: 0, reason: .length, stopSequence: nil))
    }

    /// What `deployment` is asked to go on from the text sent so far: the original request with
    /// that text as an assistant prefill, or, when it is configured to `replay`, the original
    /// request alone. `max_tokens` stays the client's: an upstream that restarts the answer needs
    /// it all, and the relay ends the answer at the client's limit itself.
    private func continuation(of progress: Progress, on deployment: Deployment) -> ChatRequest {
        var continuation = chat
        let prefill = ContinuationSplicer(sent: progress.text).prefill
        if !prefill.isEmpty, deployment.config.continuation == .prefill { continuation.messages.append(.text(.assistant, prefill)) }
        return continuation
    }

    /// Why a failed stream was not resumed, for the log; `safe` when resuming it would have been.
    private func interruption(failure: UpstreamFailure, progress: Progress, record: RequestRecord) -> (reason: String, safe: Bool) {
        if progress.sawToolCall { return ("a tool call was under way", false) }
        if chat.choiceCount > 1 { return ("several choices were streaming", false) }
        if !failure.isRetryable { return ("the upstream's failure is not one another deployment can fix", true) }
        if record.resumptions >= failover.routing.maxResumptions { return ("the stream was already resumed routing.max_resumptions times", true) }
        if record.failoverRefused { return ("the retry budget is spent and no healthy deployment had room", true) }
        return ("no other deployment could take the continuation", true)
    }

    /// Opens a continuation on the next deployment that can take it: others first, the failed one last.
    private func resume(after failed: Deployment, failure: UpstreamFailure, progress: Progress, record: inout RequestRecord)
        async -> (value: OpenedStream, deployment: Deployment)?
    {
        guard record.resumptions < failover.routing.maxResumptions, chat.choiceCount == 1, !progress.sawToolCall, failure.isRetryable
        else { return nil }
        // The failed deployment comes last, and not at all while its managed process is down.
        let candidates = failover.group.attemptOrder(openAIOnly: false).filter { $0 !== failed }
            + (failed.processAcceptsTraffic ? [failed] : [])
        let result = await failover.run(candidates, phase: .midStream, record: &record, outcomeLater: true, after: failed) { deployment throws(UpstreamFailure) in
            try await Self.open(continuation(of: progress, on: deployment).upstreamRequest(for: deployment), on: deployment)
        }
        return try? result.get()
    }
}
