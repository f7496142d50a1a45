import Foundation
import LifelineCore
import LifelineStore

/// `GET /status`: the public status page, rendered on the server as plain HTML so it reads
/// without JavaScript. Built with string interpolation rather than a template engine (one page,
/// and no extra build time); every value from data goes through `Markup.escape`. Styles come from
/// `/assets/status.css` — the page carries no inline style or script, as the CSP requires.
/// Every state is shown as words and an icon as well as a colour.
enum StatusPage {
    static let days = 90

    static func render(_ snapshot: StatusCenter.Snapshot) -> String {
        let documents = StatuspageDocuments(snapshot: snapshot)
        let (indicator, description) = documents.indicator
        let name = Markup.escape(snapshot.pageName)
        var html = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="color-scheme" content="light dark">
        <title>\(name) status</title>
        <link rel="stylesheet" href="/assets/status.css">
        <link rel="icon" href="/assets/icon.svg" type="image/svg+xml">
        <link rel="alternate" type="application/atom+xml" title="\(name) status history (Atom)" href="/history.atom">
        <link rel="alternate" type="application/rss+xml" title="\(name) status history (RSS)" href="/history.rss">
        </head>
        <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
        <h1>\(name) status</h1>
        <nav aria-label="Status page links"><a href="/">Chat</a> <a href="/history.atom">Atom feed</a> <a href="/history.rss">RSS feed</a> <a href="/api/v2/summary.json">JSON</a></nav>
        </header>
        <main id="main">
        <section class="banner level-\(indicator)" aria-labelledby="overall">
        <h2 id="overall"><span class="icon" aria-hidden="true">\(icon(indicator))</span> \(Markup.escape(description))</h2>
        <p>Last updated <time datetime="\(Timestamp.iso8601(snapshot.updatedAt))">\(human(snapshot.updatedAt))</time>.</p>
        </section>

        """
        let active = snapshot.incidents.filter { !$0.isResolved }
        if !active.isEmpty {
            html += "<section aria-labelledby=\"active-incidents\">\n<h2 id=\"active-incidents\">Active incidents</h2>\n"
            for incident in active { html += article(incident, open: true) }
            html += "</section>\n"
        }
        let maintenances = documents.active + documents.upcoming
        if !maintenances.isEmpty {
            html += "<section aria-labelledby=\"maintenance\">\n<h2 id=\"maintenance\">Maintenance</h2>\n"
            for maintenance in maintenances { html += article(maintenance) }
            html += "</section>\n"
        }
        html += "<section aria-labelledby=\"components\">\n<h2 id=\"components\">Components</h2>\n<ul class=\"components\">\n"
        let today = StatusCenter.day(snapshot.now)
        for entry in snapshot.components {
            html += component(entry.component, entry.status, snapshot.uptime[entry.component.name] ?? [:], today: today)
        }
        html += "</ul>\n</section>\n"
        let past = snapshot.incidents.filter(\.isResolved).prefix(20)
        html += "<section aria-labelledby=\"history\">\n<h2 id=\"history\">Past incidents</h2>\n"
        if past.isEmpty { html += "<p class=\"quiet\">No incidents reported.</p>\n" }
        for incident in past { html += article(incident, open: false) }
        html += """
        </section>
        </main>
        <footer><p>Times are in UTC. Subscribe with the <a href="/history.atom">Atom</a> or <a href="/history.rss">RSS</a> feed.</p></footer>
        </body>
        </html>

        """
        return html
    }

    static func icon(_ level: String) -> String {
        switch level {
        case "none", "operational": "✓"
        case "maintenance", "under_maintenance": "🔧"
        case "minor", "degraded_performance": "!"
        default: "✕"
        }
    }

    static func human(_ seconds: Double) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "d MMM yyyy, HH:mm:ss 'UTC'"
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }

    static func time(_ seconds: Double) -> String {
        "<time datetime=\"\(Timestamp.iso8601(seconds))\">\(human(seconds))</time>"
    }

    static func article(_ incident: Incident, open: Bool) -> String {
        var html = "<article class=\"incident impact-\(incident.impact.rawValue)\" id=\"incident-\(incident.id)\">\n"
        html += "<h3>\(Markup.escape(incident.name))</h3>\n"
        html += "<p class=\"meta\"><span class=\"tag\">\(incident.status.rawValue.capitalized)</span> Impact: \(incident.impact.rawValue) · "
        html += "started \(time(incident.startedAt))"
        if let resolved = incident.resolvedAt, incident.isResolved { html += " · resolved \(time(resolved))" }
        html += "</p>\n"
        let updates = incident.updates.reversed().map { update in
            "<li><p><strong>\(update.status.rawValue.capitalized)</strong> · \(time(update.createdAt))</p><p>\(Markup.escape(update.body))</p></li>"
        }.joined(separator: "\n")
        if let body = incident.postmortemBody, let published = incident.postmortemPublishedAt {
            html += "<section class=\"postmortem\" aria-label=\"Postmortem of \(Markup.escape(incident.name))\"><details open>"
                + "<summary>Postmortem, published \(time(published))</summary>\n\(postmortem(body))</details></section>\n"
        }
        if open {
            html += "<ol class=\"updates\">\n\(updates)\n</ol>\n"
        } else {
            html += "<details><summary>\(incident.updates.count) update\(incident.updates.count == 1 ? "" : "s")</summary>\n<ol class=\"updates\">\n\(updates)\n</ol>\n</details>\n"
        }
        return html + "</article>\n"
    }

    static func article(_ maintenance: Maintenance) -> String {
        var html = "<article class=\"incident impact-maintenance\" id=\"maintenance-\(maintenance.id)\">\n"
        html += "<h3>\(Markup.escape(maintenance.name))</h3>\n"
        let status = maintenance.status == .inProgress ? "In progress" : maintenance.status.rawValue.capitalized
        html += "<p class=\"meta\"><span class=\"tag\">\(status)</span> \(time(maintenance.scheduledFor)) to \(time(maintenance.scheduledUntil))"
        if !maintenance.components.isEmpty {
            html += " · affects \(maintenance.components.map(Markup.escape).joined(separator: ", "))"
        }
        html += "</p>\n<p>\(Markup.escape(maintenance.message))</p>\n"
        return html + "</article>\n"
    }

    static func component(_ component: StatusComponent, _ status: ComponentStatus, _ uptime: [Int: UptimeRecord], today: Int) -> String {
        var observed = 0.0
        var down = 0.0
        var bars = ""
        for day in (today - days + 1)...today {
            guard let record = uptime[day], let share = record.uptime else {
                // Days without data carry no title: the page stays small with many components.
                bars += "<i class=\"u-none\"></i>"
                continue
            }
            observed += record.observedSeconds
            down += record.majorOutageSeconds + 0.3 * record.partialOutageSeconds
            let level = share >= 0.9995 ? (record.degradedSeconds > 0 ? "minor" : "ok") : share >= 0.99 ? "major" : "critical"
            bars += "<i class=\"u-\(level)\" title=\"\(date(day)): \(percent(share)) up\"></i>"
        }
        let total = observed > 0 ? percent(max(0, 1 - down / observed)) : "no data"
        let id = "component-\(component.id)"
        return """
        <li class="component status-\(status.rawValue)" id="\(id)">
        <div class="component-head"><h3>\(Markup.escape(component.name))</h3><span class="badge"><span aria-hidden="true">\(icon(status.rawValue))</span> \(status.label)</span></div>
        <p class="description">\(Markup.escape(component.description))</p>
        <div class="bars" role="img" aria-label="\(Markup.escape(component.name)) uptime over the last \(days) days: \(total)">\(bars)</div>
        <p class="bars-legend"><span>\(days) days ago</span><span>\(total == "no data" ? "No data yet" : "\(total) uptime")</span><span>Today</span></p>
        </li>

        """
    }

    /// `2026-11-28` for days since 1970.
    static func date(_ day: Int) -> String { UTCTime.date(day: day) }

    /// A postmortem's Markdown as HTML: `##` headings, `-` lists and paragraphs, every word escaped.
    static func postmortem(_ body: String) -> String {
        var html = ""
        var listOpen = false
        func closeList() {
            if listOpen { html += "</ul>\n" }
            listOpen = false
        }
        for raw in body.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("- ") || line.hasPrefix("* ") {
                if !listOpen { html += "<ul>\n" }
                listOpen = true
                html += "<li>\(Markup.escape(String(line.dropFirst(2))))</li>\n"
                continue
            }
            closeList()
            if line.isEmpty { continue }
            if line.hasPrefix("#") {
                html += "<h4>\(Markup.escape(line.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces)))</h4>\n"
            } else {
                html += "<p>\(Markup.escape(line))</p>\n"
            }
        }
        closeList()
        return html
    }

    static func percent(_ share: Double) -> String {
        let value = (share * 10_000).rounded(.down) / 100
        return String(format: "%.2f %%", value)
    }
}
