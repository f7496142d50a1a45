// A small Markdown renderer for model answers that builds DOM nodes directly.
//
// Written here rather than taken from a library because the page has no build step and loads
// nothing from elsewhere, and because it must be safe by construction: every piece of the
// source ends up as a text node or as an attribute we chose (links only to http, https and
// mailto). There is no path from model text to innerHTML. It renders half-finished text
// sensibly too (an unclosed code fence is a code block so far), since answers stream.

import { h } from "./dom.js";

const SAFE_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);

/** The URL if it is safe to link to, else null. */
export function safeHref(url) {
  try {
    const parsed = new URL(url, window.location.origin);
    return SAFE_PROTOCOLS.has(parsed.protocol) ? parsed.href : null;
  } catch {
    return null;
  }
}

/** Renders Markdown source as a DocumentFragment. */
export function renderMarkdown(source) {
  const fragment = document.createDocumentFragment();
  appendBlocks(fragment, String(source ?? "").replace(/\r\n?/g, "\n").split("\n"));
  return fragment;
}

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$/;
const RULE = /^ {0,3}([-*_])(?: *\1){2,} *$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const LIST_ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])\s+(.*)$/;
const TABLE_DIVIDER = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || LIST_ITEM.test(line);
}

function appendBlocks(parent, lines) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === "") {
      i++;
      continue;
    }
    let match;
    if ((match = FENCE.exec(line))) {
      const marker = match[1];
      const closing = new RegExp(`^ {0,3}${marker[0] === "`" ? "`" : "~"}{${marker.length},}\\s*$`);
      const body = [];
      i++;
      while (i < lines.length && !closing.test(lines[i])) body.push(lines[i++]);
      i++; // the closing fence, if the answer got that far
      parent.append(codeBlock(body.join("\n"), match[2]));
    } else if (RULE.test(line)) {
      parent.append(h("hr"));
      i++;
    } else if ((match = HEADING.exec(line))) {
      // The page itself uses h1 and h2, so an answer's headings start at h3.
      const level = Math.min(match[1].length + 2, 6);
      parent.append(h(`h${level}`, {}, inline(match[2])));
      i++;
    } else if (QUOTE.test(line)) {
      const quoted = [];
      while (i < lines.length && (match = QUOTE.exec(lines[i]))) {
        quoted.push(match[1]);
        i++;
      }
      const quote = h("blockquote");
      appendBlocks(quote, quoted);
      parent.append(quote);
    } else if (LIST_ITEM.test(line)) {
      i = appendList(parent, lines, i);
    } else if (line.includes("|") && i + 1 < lines.length && TABLE_DIVIDER.test(lines[i + 1]) && lines[i + 1].includes("-")) {
      i = appendTable(parent, lines, i);
    } else {
      const paragraph = [];
      while (i < lines.length && lines[i].trim() !== "" && (paragraph.length === 0 || !startsBlock(lines[i]))) {
        paragraph.push(lines[i++].trim());
      }
      parent.append(h("p", {}, inline(paragraph.join("\n"))));
    }
  }
}

function appendList(parent, lines, start) {
  const first = LIST_ITEM.exec(lines[start]);
  const ordered = /\d/.test(first[2]);
  const list = ordered ? h("ol", { start: parseInt(first[2], 10) !== 1 ? parseInt(first[2], 10) : null }) : h("ul");
  let i = start;
  while (i < lines.length) {
    const item = LIST_ITEM.exec(lines[i]);
    if (!item || /\d/.test(item[2]) !== ordered) break;
    const body = [item[3]];
    i++;
    // Continuation: indented lines (a nested list among them), and blank lines inside the item.
    while (i < lines.length) {
      const next = lines[i];
      if (next.trim() === "") {
        const following = lines.slice(i + 1).find((l) => l.trim() !== "");
        if (following === undefined || !/^\s{2,}\S/.test(following)) break;
        body.push("");
        i++;
      } else if (/^\s{2,}\S/.test(next)) {
        body.push(next.replace(/^\s{2,4}/, ""));
        i++;
      } else if (!LIST_ITEM.test(next) && !startsBlock(next)) {
        body.push(next.trim()); // a lazy continuation line
        i++;
      } else {
        break;
      }
    }
    const li = h("li");
    if (body.length === 1) li.append(...inline(body[0]));
    else appendBlocks(li, body);
    list.append(li);
    // A blank line between items of the same list keeps the list going.
    if (i < lines.length && lines[i].trim() === "") {
      const j = lines.findIndex((l, index) => index > i && l.trim() !== "");
      const again = j > 0 ? LIST_ITEM.exec(lines[j]) : null;
      if (again && /\d/.test(again[2]) === ordered) i = j;
    }
  }
  parent.append(list);
  return i;
}

function tableCells(line) {
  let text = line.trim();
  if (text.startsWith("|")) text = text.slice(1);
  if (text.endsWith("|") && !text.endsWith("\\|")) text = text.slice(0, -1);
  return text.split(/(?<!\\)\|/).map((cell) => cell.replace(/\\\|/g, "|").trim());
}

function appendTable(parent, lines, start) {
  const header = tableCells(lines[start]);
  const alignments = tableCells(lines[start + 1]).map((cell) =>
    cell.startsWith(":") && cell.endsWith(":") ? "center" : cell.endsWith(":") ? "right" : null);
  const cell = (tag, text, column) => h(tag, { class: alignments[column] ? `align-${alignments[column]}` : null }, inline(text));
  const body = h("tbody");
  let i = start + 2;
  while (i < lines.length && lines[i].includes("|") && lines[i].trim() !== "") {
    const cells = tableCells(lines[i++]);
    body.append(h("tr", {}, header.map((_, column) => cell("td", cells[column] ?? "", column))));
  }
  const table = h("table", {}, h("thead", {}, h("tr", {}, header.map((text, column) => cell("th", text, column)))), body);
  parent.append(h("div", { class: "table-scroll", tabindex: "0", role: "region", "aria-label": "Table" }, table));
  return i;
}

function codeBlock(code, language) {
  const name = (language ?? "").replace(/[^\w+#.-]/g, "").slice(0, 24);
  const copy = h("button", { type: "button", class: "copy-code small" }, "Copy");
  copy.addEventListener("click", () => {
    navigator.clipboard?.writeText(code).then(
      () => { copy.textContent = "Copied"; },
      () => { copy.textContent = "Copy failed"; },
    );
  });
  return h("div", { class: "code-block" },
    h("div", { class: "code-head" }, h("span", { class: "code-language" }, name || "code"), copy),
    h("pre", { tabindex: "0", "aria-label": name ? `Code, ${name}` : "Code" }, h("code", { class: name ? `language-${name}` : null }, code)));
}

// One pattern per inline form; the earliest match wins, its inside is rendered recursively.
const INLINE = new RegExp([
  "(`+)([^`]|[^`][\\s\\S]*?[^`])\\1(?!`)", // 1-2 code span
  "\\*\\*(?=\\S)([\\s\\S]*?\\S)\\*\\*", // 3 strong
  "(?<!\\w)__(?=\\S)([\\s\\S]*?\\S)__(?!\\w)", // 4 strong
  "\\*(?=[^\\s*])([\\s\\S]*?[^\\s*])\\*(?!\\*)", // 5 emphasis
  "(?<!\\w)_(?=[^\\s_])([\\s\\S]*?[^\\s_])_(?!\\w)", // 6 emphasis
  "~~(?=\\S)([\\s\\S]*?\\S)~~", // 7 strikethrough
  "\\[([^\\]\\n]+)\\]\\(\\s*<?([^)\\s>]+)>?(?:\\s+\"[^\"]*\")?\\s*\\)", // 8-9 link
  "(https?:\\/\\/[^\\s<>]*[^\\s<>.,;:!?'\")\\]])", // 10 bare URL
].join("|"), "g");

/** Inline Markdown as an array of nodes. */
export function inline(text) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    pushText(nodes, text.slice(last, match.index));
    last = match.index + match[0].length;
    if (match[2] !== undefined) nodes.push(h("code", {}, match[2].replace(/^ (.*) $/, "$1")));
    else if (match[3] !== undefined || match[4] !== undefined) nodes.push(h("strong", {}, inline(match[3] ?? match[4])));
    else if (match[5] !== undefined || match[6] !== undefined) nodes.push(h("em", {}, inline(match[5] ?? match[6])));
    else if (match[7] !== undefined) nodes.push(h("del", {}, inline(match[7])));
    else if (match[8] !== undefined) nodes.push(link(match[9], inline(match[8]), match[0]));
    else if (match[10] !== undefined) nodes.push(link(match[10], [match[10]], match[0]));
  }
  pushText(nodes, text.slice(last));
  return nodes;
}

function link(url, content, original) {
  const href = safeHref(url);
  if (!href) return document.createTextNode(original);
  return h("a", { href, rel: "noopener noreferrer nofollow", target: "_blank" }, content);
}

function pushText(nodes, text) {
  if (!text) return;
  text.split("\n").forEach((part, index) => {
    if (index > 0) nodes.push(h("br"));
    if (part) nodes.push(document.createTextNode(part));
  });
}
