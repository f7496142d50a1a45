import Foundation
import Hummingbird
import LifelineCore
import LifelineWire
import Logging
import NIOCore

/// Streams one answer to the client and keeps it going when an upstream fails.
///
/// Before the first event, a failed attempt moves on to the next deployment unseen. After it,
/// the stream resumes on another deployment from the text already sent (an assistant prefill),
/// and a `ContinuationSplicer` removes any overlap, so the client reads one unbroken answer.
struct StreamRelay: Sendable {
    let chat: ChatRequest
    let api: WireProtocol
    /// Every available deployment in preference order; resumption may use any of them.
    let order: [Deployment]
    /// The deployments tried before the first byte.
    let attempts: [Deployment]
    let routing: RoutingConfig
    let requestID: String
    let logger: Logger

    func response() async -> Response {
        var failures: [UpstreamFailure] = []
        for (number, deployment) in attempts.enumerated() {
            do {
                let opened = try await Self.open(chat, on: deployment)
                let headers: HTTPFields = [
                    .contentType: "text/event-stream", .cacheControl: "no-cache",
                    .lifelineDeployment: deployment.name, .lifelineAttempts: String(number + 1),
                ]
                return Response(status: .ok, headers: headers, body: ResponseBody { [self] writer in
                    try await relay(opened, from: deployment, to: &writer)
                })
            } catch {
                logger.warning("upstream stream attempt failed", metadata: [
                    "deployment": .string(deployment.name), "failure": .string(error.description)])
                guard error.isRetryable else {
                    return ChatEndpoint.clientFault(error).response(for: api, headers: [
                        .lifelineDeployment: deployment.name, .lifelineAttempts: String(number + 1)])
                }
                failures.append(error)
            }
        }
        return ChatEndpoint.allFailed(model: chat.model, failures: failures)
            .response(for: api, headers: [.lifelineAttempts: String(attempts.count)])
    }

    /// An upstream stream with its first event already read.
    struct OpenedStream: @unchecked Sendable {
        // Safe: the stream is created in a child task and handed over only after that task has
        // finished, so it is never used by two tasks at once.
        var stream: UpstreamEventStream
        var first: ChatEvent?
    }

    /// Opens a stream and waits for its first event, within the deployment's first-token timeout.
    static func open(_ chat: ChatRequest, on deployment: Deployment) async throws(UpstreamFailure) -> OpenedStream {
        let timeout = deployment.config.timeouts.firstTokenMilliseconds
        do {
            return try await withThrowingTaskGroup(of: OpenedStream.self) { group in
                group.addTask {
                    var stream = try await deployment.client.stream(chat)
                    let first = try await stream.next()
                    return OpenedStream(stream: stream, first: first)
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(timeout))
                    throw UpstreamFailure(.timeout, "no first token within \(timeout) ms")
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
        } catch {
            throw UpstreamClient.failure(from: error)
        }
    }

    /// What the client has been sent so far, for resumption and usage.
    private struct Progress {
        var text = ""
        var textEvents = 0
        var sawToolCall = false
        var usage = Usage(promptTokens: 0, completionTokens: 0)
        var attemptUsage: Usage?
        var finished = false
    }

    private func relay(_ opened: OpenedStream, from first: Deployment, to writer: inout any ResponseBodyWriter) async throws {
        var encoder = ClientStreamEncoder(api: api, id: (api == .openai ? "chatcmpl-" : "msg_") + requestID, model: chat.model,
                                          created: Int(Date().timeIntervalSince1970), includeUsage: chat.includeUsage)
        var progress = Progress()
        var current = opened
        var deployment = first
        var splicer: ContinuationSplicer?
        var resumptions = 0
        var out: [UInt8] = []
        if let event = current.first { out += forward(event, &encoder, &progress, &splicer) }
        while true {
            do {
                while let event = try await current.stream.next() {
                    out += forward(event, &encoder, &progress, &splicer)
                    if !out.isEmpty {
                        try await writer.write(ByteBuffer(bytes: out))
                        out.removeAll(keepingCapacity: true)
                    }
                }
                if var done = splicer { out += forwardText(done.finish(), &encoder, &progress); splicer = nil }
                progress.usage = progress.usage + (progress.attemptUsage ?? Usage(promptTokens: 0, completionTokens: 0))
                break
            } catch let failure as UpstreamFailure {
                logger.warning("stream failed mid-answer", metadata: [
                    "deployment": .string(deployment.name), "failure": .string(failure.description),
                    "characters_sent": .stringConvertible(progress.text.count)])
                progress.usage = progress.usage + (progress.attemptUsage ?? Usage(promptTokens: 0, completionTokens: progress.textEvents))
                progress.attemptUsage = nil
                progress.textEvents = 0
                guard resumptions < routing.maxResumptions, chat.choiceCount == 1, !progress.sawToolCall, failure.isRetryable,
                      let resumed = await resume(after: deployment, sent: progress.text, tokensSent: progress.usage.completionTokens)
                else {
                    let reason = progress.sawToolCall || chat.choiceCount > 1
                        ? "This stream cannot be resumed safely after its upstream failed."
                        : "The upstream failed mid-stream and no other deployment could continue it."
                    out += encoder.error(GatewayError(status: 503, message: reason, code: "stream_interrupted", retryAfterSeconds: 1))
                    try await writer.write(ByteBuffer(bytes: out))
                    try await writer.finish(nil)
                    return
                }
                resumptions += 1
                out += SSE.comment("lifeline resumed on \(resumed.deployment.name) after \(progress.text.utf8.count) bytes")
                deployment = resumed.deployment
                current = resumed.opened
                splicer = ContinuationSplicer(sent: progress.text)
                if let event = current.first { out += forward(event, &encoder, &progress, &splicer) }
            }
        }
        out += encoder.finish()
        try await writer.write(ByteBuffer(bytes: out))
        try await writer.finish(nil)
    }

    /// Passes one upstream event to the client encoder, splicing text after a resumption.
    private func forward(_ event: ChatEvent, _ encoder: inout ClientStreamEncoder, _ progress: inout Progress,
                         _ splicer: inout ContinuationSplicer?) -> [UInt8]
    {
        switch event {
        case .textDelta(let choice, let text, let logprobs):
            if choice == 0 { progress.textEvents += 1 }
            if choice == 0, splicer != nil {
                return forwardText(splicer!.accept(text), &encoder, &progress)
            }
            if choice == 0 { progress.text += text }
            return encoder.encode(.textDelta(choice: choice, text: text, logprobs: logprobs))
        case .toolCallDelta:
            progress.sawToolCall = true
            return encoder.encode(event)
        case .usage(let usage):
            progress.attemptUsage = usage
            // Summed usage is sent once the stream ends.
            return []
        case .finish:
            if var pending = splicer {
                let rest = forwardText(pending.finish(), &encoder, &progress)
                splicer = pending
                return rest + encoder.encode(event)
            }
            return encoder.encode(event)
        }
    }

    private func forwardText(_ text: String, _ encoder: inout ClientStreamEncoder, _ progress: inout Progress) -> [UInt8] {
        guard !text.isEmpty else { return [] }
        progress.text += text
        return encoder.encode(.textDelta(choice: 0, text: text, logprobs: nil))
    }

    /// Opens a continuation on the next deployment that can take it: others first, the failed one last.
    private func resume(after failed: Deployment, sent: String, tokensSent: Int) async -> (deployment: Deployment, opened: OpenedStream)? {
        var continuation = chat
        let splicer = ContinuationSplicer(sent: sent)
        if !splicer.prefill.isEmpty { continuation.messages.append(.text(.assistant, splicer.prefill)) }
        if let limit = chat.maxTokens { continuation.maxTokens = max(1, limit - tokensSent) }
        let candidates = order.filter { $0 !== failed } + [failed]
        for deployment in candidates.prefix(routing.maxAttempts) {
            do {
                return (deployment, try await Self.open(continuation, on: deployment))
            } catch {
                logger.warning("resumption attempt failed", metadata: [
                    "deployment": .string(deployment.name), "failure": .string(error.description)])
            }
        }
        return nil
    }
}
