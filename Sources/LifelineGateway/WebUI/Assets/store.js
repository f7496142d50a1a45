// Conversations and settings kept in this browser (localStorage); nothing is stored on the server.

const CONVERSATIONS = "lifeline.chat.conversations.v1";
const API_KEY = "lifeline.chat.apiKey";
const MODEL = "lifeline.chat.model";

/** Every stored conversation, newest first. A damaged store reads as empty rather than breaking the page. */
export function loadConversations(storage = window.localStorage) {
  try {
    const list = JSON.parse(storage.getItem(CONVERSATIONS) ?? "[]");
    if (!Array.isArray(list)) return [];
    return list
      .filter((c) => c && typeof c.id === "string" && Array.isArray(c.messages))
      .map((c) => ({
        ...c,
        title: typeof c.title === "string" ? c.title : "",
        messages: c.messages.filter((m) => m && typeof m.content === "string" && (m.role === "user" || m.role === "assistant")),
      }))
      .sort((a, b) => (b.updatedAt ?? 0) - (a.updatedAt ?? 0));
  } catch {
    return [];
  }
}

/** Writes all conversations; reports whether the browser accepted them (storage can be full or off). */
export function saveConversations(conversations, storage = window.localStorage) {
  try {
    storage.setItem(CONVERSATIONS, JSON.stringify(conversations));
    return true;
  } catch {
    return false;
  }
}

export function newConversation(model) {
  const now = Date.now();
  const id = globalThis.crypto?.randomUUID?.() ?? `c${now.toString(36)}${Math.random().toString(36).slice(2)}`;
  return { id, title: "", renamed: false, model, messages: [], createdAt: now, updatedAt: now };
}

/** The name shown in the list: the chosen one, else the start of the first question. */
export function conversationTitle(conversation) {
  if (conversation.title) return conversation.title;
  const first = conversation.messages.find((m) => m.role === "user")?.content.trim().replace(/\s+/g, " ") ?? "";
  if (!first) return "New chat";
  return first.length > 48 ? `${first.slice(0, 47)}…` : first;
}

function readSetting(key) {
  try {
    return window.localStorage.getItem(key) ?? "";
  } catch {
    return "";
  }
}

function writeSetting(key, value) {
  try {
    if (value) window.localStorage.setItem(key, value);
    else window.localStorage.removeItem(key);
  } catch {
    // Storage off: the value lasts until the page closes.
  }
}

export const settings = {
  get apiKey() { return readSetting(API_KEY); },
  set apiKey(value) { writeSetting(API_KEY, value); },
  get model() { return readSetting(MODEL); },
  set model(value) { writeSetting(MODEL, value); },
};
