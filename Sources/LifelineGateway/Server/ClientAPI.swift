import LifelineWire

/// The API a client speaks on an inference route: its answer, stream and errors take that API's shape.
///
/// Every client API decodes into the same `ChatRequest` and is served by `ChatEndpoint.serve`, so
/// routing, failover, resumption, admission, metrics and the status page are written once.
enum ClientAPI: Sendable {
    /// `POST /v1/chat/completions`
    case openai
    /// `POST /v1/messages`
    case anthropic
    /// `POST /v1/responses`: the answer is a response object, kept when the request asks.
    case responses(ResponsesExchange)

    init(_ wire: WireProtocol) {
        self = wire == .anthropic ? .anthropic : .openai
    }

    /// The route's name in metrics, logs and the status page.
    var route: String {
        switch self {
        case .openai: "chat_completions"
        case .anthropic: "messages"
        case .responses: "responses"
        }
    }

    /// The shape of error bodies: Responses errors are OpenAI's.
    var errorShape: WireProtocol {
        if case .anthropic = self { return .anthropic }
        return .openai
    }

    var isAnthropic: Bool { errorShape == .anthropic }

    /// The id of the answer to request `requestID`.
    func answerID(requestID: String) -> String {
        switch self {
        case .openai: "chatcmpl-" + requestID
        case .anthropic: "msg_" + requestID
        case .responses(let exchange): exchange.header.id
        }
    }
}
