import Foundation
import HTTPTypes
import Hummingbird
import LifelineWire
import NIOCore

/// The public status surface: `GET /status`, the Statuspage v2 documents under `/api/v2/`, and
/// the history feeds. Read-only and unauthenticated, like a hosted status page.
enum StatusRoutes {
    static func add(to router: Router<GatewayRequestContext>, runtime: GatewayRuntime) {
        let documents: [(String, @Sendable (StatuspageDocuments) -> JSONValue)] = [
            ("summary.json", { $0.summaryDocument }), ("status.json", { $0.statusDocument }), ("components.json", { $0.componentsDocument }),
            ("incidents.json", { $0.incidentsDocument }), ("incidents/unresolved.json", { $0.unresolvedDocument }),
            ("scheduled-maintenances.json", { $0.maintenancesDocument }),
            ("scheduled-maintenances/upcoming.json", { $0.upcomingDocument }), ("scheduled-maintenances/active.json", { $0.activeDocument }),
        ]
        for (path, document) in documents {
            router.get(RouterPath("/api/v2/" + path)) { _, _ in
                var response = jsonResponse(.ok, document(StatuspageDocuments(snapshot: runtime.statusSnapshot())))
                // Public data that other pages (status aggregators, widgets) read across origins, as Statuspage allows.
                response.headers[.accessControlAllowOrigin] = "*"
                response.headers[.cacheControl] = "no-cache"
                return response
            }
        }
        router.get("/history.atom") { _, _ in
            text(StatusFeeds.atom(runtime.statusSnapshot()), type: "application/atom+xml; charset=utf-8")
        }
        router.get("/history.rss") { _, _ in
            text(StatusFeeds.rss(runtime.statusSnapshot()), type: "application/rss+xml; charset=utf-8")
        }
        router.get("/status") { _, _ in
            text(StatusPage.render(runtime.statusSnapshot()), type: "text/html; charset=utf-8")
        }
    }

    static func text(_ body: String, type: String) -> Response {
        var headers = WebUIRoutes.securityHeaders
        headers[.contentType] = type
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}
