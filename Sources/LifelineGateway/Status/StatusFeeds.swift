import Foundation
import LifelineCore

/// `/history.atom` and `/history.rss`: one entry per published incident, its updates in the content.
/// Written by hand: two small fixed formats, and every value goes through `Markup.escape`.
enum StatusFeeds {
    static func atom(_ snapshot: StatusCenter.Snapshot) -> String {
        let page = snapshot.pageURL + "/status"
        var xml = """
        <?xml version="1.0" encoding="UTF-8"?>
        <feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">
        <id>\(Markup.escape(page))</id>
        <title>\(Markup.escape(snapshot.pageName)) status history</title>
        <updated>\(Timestamp.iso8601(snapshot.updatedAt))</updated>
        <link rel="alternate" type="text/html" href="\(Markup.escape(page))"/>
        <link rel="self" type="application/atom+xml" href="\(Markup.escape(snapshot.pageURL + "/history.atom"))"/>
        <author><name>\(Markup.escape(snapshot.pageName))</name></author>

        """
        for incident in snapshot.incidents.prefix(50) {
            xml += """
            <entry>
            <id>\(Markup.escape(page))#incident-\(incident.id)</id>
            <title>\(Markup.escape(incident.name))</title>
            <published>\(Timestamp.iso8601(incident.createdAt))</published>
            <updated>\(Timestamp.iso8601(incident.updatedAt))</updated>
            <link rel="alternate" type="text/html" href="\(Markup.escape(page))#incident-\(incident.id)"/>
            <content type="html">\(Markup.escape(content(incident)))</content>
            </entry>

            """
        }
        return xml + "</feed>\n"
    }

    static func rss(_ snapshot: StatusCenter.Snapshot) -> String {
        let page = snapshot.pageURL + "/status"
        var xml = """
        <?xml version="1.0" encoding="UTF-8"?>
        <rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">
        <channel>
        <title>\(Markup.escape(snapshot.pageName)) status history</title>
        <link>\(Markup.escape(page))</link>
        <description>Incidents of \(Markup.escape(snapshot.pageName)) and their updates.</description>
        <language>en</language>
        <lastBuildDate>\(rfc822(snapshot.updatedAt))</lastBuildDate>
        <atom:link href="\(Markup.escape(snapshot.pageURL + "/history.rss"))" rel="self" type="application/rss+xml"/>

        """
        for incident in snapshot.incidents.prefix(50) {
            xml += """
            <item>
            <title>\(Markup.escape(incident.name))</title>
            <link>\(Markup.escape(page))#incident-\(incident.id)</link>
            <guid isPermaLink="false">\(incident.id)</guid>
            <pubDate>\(rfc822(incident.createdAt))</pubDate>
            <description>\(Markup.escape(content(incident)))</description>
            </item>

            """
        }
        return xml + "</channel>\n</rss>\n"
    }

    /// The updates, newest first, as a small HTML fragment (escaped again by the feed).
    static func content(_ incident: Incident) -> String {
        var postmortem = ""
        if let body = incident.postmortemBody, incident.postmortemPublishedAt != nil {
            postmortem = "<h3>Postmortem</h3>" + StatusPage.postmortem(body)
        }
        return postmortem + incident.updates.reversed().map { update in
            "<p><small>\(Timestamp.iso8601(update.createdAt))</small><br><strong>\(update.status.rawValue.capitalized)</strong> - "
                + "\(Markup.escape(update.body))</p>"
        }.joined()
    }

    static func rfc822(_ seconds: Double) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }
}

/// Escaping for HTML and XML text and attribute values.
enum Markup {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
