// The chat page: conversations kept in this browser, answers streamed from /v1/chat/completions.

import { ApiFailure, listModels, streamChat } from "./api.js";
import { fetchStatus, statusBanner } from "./banner.js";
import { formatSeconds, h, preservingFocus, replaceChildren } from "./dom.js";
import { renderMarkdown } from "./markdown.js";
import { conversationTitle, loadConversations, newConversation, saveConversations, settings } from "./store.js";

const STATUS_POLL_MS = 30_000;
const SAVE_WHILE_STREAMING_MS = 1_000;
const NARROW = window.matchMedia("(max-width: 760px)");

const $ = (selector) => document.querySelector(selector);
const ui = {
  sidebar: $("#sidebar"),
  main: $(".chat-main"),
  skipLink: $(".skip-link"),
  openSidebar: $("#open-sidebar"),
  closeSidebar: $("#close-sidebar"),
  newChat: $("#new-chat"),
  list: $("#conversation-list"),
  noConversations: $("#no-conversations"),
  keyForm: $("#key-form"),
  keyInput: $("#api-key"),
  keyState: $("#key-state"),
  forgetKey: $("#forget-key"),
  model: $("#model"),
  banner: $("#status-banner"),
  notice: $("#notice"),
  title: $("#conversation-title"),
  messages: $("#messages"),
  announcer: $("#announcer"),
  composer: $("#composer"),
  prompt: $("#prompt"),
  send: $("#send"),
  stop: $("#stop"),
};

const state = {
  conversations: loadConversations(),
  currentId: null,
  draft: null, // a new conversation, stored once its first message is sent
  active: null, // the answer being streamed: { conversationId, controller, message }
  failure: null, // the last failed request: { conversationId, error, retryAt }
  editing: null, // { conversationId, index } of a user message being edited
  renaming: null, // id of the conversation being renamed
  confirmingDelete: null, // id of the conversation whose deletion awaits confirmation
};

// An answer that was streaming when the page closed is no longer coming.
for (const conversation of state.conversations) {
  for (const message of conversation.messages) if (message.state === "streaming") message.state = "interrupted";
}
state.currentId = state.conversations[0]?.id ?? null;

function current() {
  const found = state.conversations.find((c) => c.id === state.currentId);
  if (found) return found;
  state.draft ??= newConversation(ui.model.value || settings.model);
  return state.draft;
}

function persist() {
  if (!saveConversations(state.conversations)) {
    showNotice("This browser would not save the conversations (storage is full or turned off); they last until the page closes.");
  }
}

let saveTimer = 0;
function persistSoon() {
  if (saveTimer) return;
  saveTimer = window.setTimeout(() => { saveTimer = 0; persist(); }, SAVE_WHILE_STREAMING_MS);
}

function touch(conversation) {
  conversation.updatedAt = Date.now();
  state.conversations.sort((a, b) => b.updatedAt - a.updatedAt);
}

function showNotice(text) {
  ui.notice.hidden = !text;
  replaceChildren(ui.notice, text ?? "");
}

function announce(text) {
  ui.announcer.textContent = text;
}

// ---------------------------------------------------------------- rendering

/** Re-renders while keeping keyboard focus on the same control (by its data-focus-key). */
function render() {
  preservingFocus(() => {
    renderSidebar();
    renderConversation();
    renderComposer();
  });
}

function renderSidebar() {
  ui.noConversations.hidden = state.conversations.length > 0;
  replaceChildren(ui.list, state.conversations.map(conversationItem));
}

function conversationItem(conversation) {
  const title = conversationTitle(conversation);
  const isCurrent = conversation.id === state.currentId;
  const key = (what) => `${what}:${conversation.id}`;
  if (state.renaming === conversation.id) {
    const input = h("input", { id: `rename-${conversation.id}`, value: title, maxlength: 120, autocomplete: "off", "data-focus-key": key("rename-input") });
    const finish = (save) => {
      if (save && input.value.trim()) {
        conversation.title = input.value.trim().slice(0, 120);
        conversation.renamed = true;
        persist();
      }
      state.renaming = null;
      render();
      document.querySelector(`[data-focus-key="${CSS.escape(key("open"))}"]`)?.focus();
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { event.preventDefault(); finish(false); }
    });
    return h("li", { class: "conversation renaming" },
      h("form", { class: "rename-form", onsubmit: (event) => { event.preventDefault(); finish(true); } },
        h("label", { for: input.id, class: "visually-hidden" }, "New name for this conversation"),
        input,
        h("div", { class: "row" },
          h("button", { type: "submit", class: "small primary" }, "Save"),
          h("button", { type: "button", class: "small", onclick: () => finish(false) }, "Cancel"))));
  }
  if (state.confirmingDelete === conversation.id) {
    return h("li", { class: "conversation confirming" },
      h("p", { class: "confirm-text" }, "Delete ", h("q", {}, title), "?"),
      h("div", { class: "row" },
        h("button", { type: "button", class: "small danger", "data-focus-key": key("confirm-delete"), onclick: () => deleteConversation(conversation.id) }, "Delete"),
        h("button", { type: "button", class: "small", "data-focus-key": key("keep"), onclick: () => {
          state.confirmingDelete = null;
          render();
          document.querySelector(`[data-focus-key="${CSS.escape(key("delete"))}"]`)?.focus();
        } }, "Keep")));
  }
  const streaming = state.active?.conversationId === conversation.id;
  return h("li", { class: `conversation${isCurrent ? " current" : ""}` },
    h("button", {
      type: "button", class: "open-conversation", "aria-current": isCurrent ? "true" : null, "data-focus-key": key("open"),
      onclick: () => selectConversation(conversation.id),
    }, h("span", { class: "conversation-name" }, title), streaming ? h("span", { class: "badge" }, "answering") : null),
    h("div", { class: "conversation-actions" },
      h("button", { type: "button", class: "small", "aria-label": `Rename “${title}”`, "data-focus-key": key("rename"), onclick: () => {
        state.renaming = conversation.id;
        state.confirmingDelete = null;
        render();
        document.getElementById(`rename-${conversation.id}`)?.select();
      } }, "Rename"),
      h("button", { type: "button", class: "small", "aria-label": `Delete “${title}”`, "data-focus-key": key("delete"), onclick: () => {
        state.confirmingDelete = conversation.id;
        state.renaming = null;
        render();
        document.querySelector(`[data-focus-key="${CSS.escape(key("keep"))}"]`)?.focus();
      } }, "Delete")));
}

function renderConversation() {
  const conversation = current();
  ui.title.textContent = conversationTitle(conversation);
  const nodes = conversation.messages.map((message, index) => messageView(conversation, message, index));
  if (nodes.length === 0) nodes.push(emptyState());
  const failure = state.failure?.conversationId === conversation.id ? failureView(conversation) : null;
  const wasNearBottom = isNearBottom();
  replaceChildren(ui.messages, nodes, failure);
  if (wasNearBottom) scrollToBottom();
}

function emptyState() {
  return h("div", { class: "empty" },
    h("p", { class: "empty-title" }, "Ask anything."),
    h("p", {}, "Answers stream from the model you pick above. If an upstream provider fails mid-answer, Lifeline continues it on another one."),
    h("p", {}, "Conversations stay in this browser."));
}

function messageView(conversation, message, index) {
  const busy = Boolean(state.active);
  const key = (what) => `${what}:${conversation.id}:${index}`;
  if (message.role === "user") {
    if (state.editing?.conversationId === conversation.id && state.editing.index === index) return editorView(conversation, message, index);
    return h("article", { class: "message user", "data-role": "user" },
      h("p", { class: "who" }, "You"),
      h("div", { class: "body plain" }, message.content),
      h("div", { class: "message-actions" },
        h("button", { type: "button", class: "small", disabled: busy, "data-focus-key": key("edit"), "aria-label": "Edit this message and send it again",
          onclick: () => { state.editing = { conversationId: conversation.id, index }; render(); document.getElementById("edit-message")?.focus(); } },
        "Edit")));
  }
  const streaming = state.active?.message === message;
  const isLast = index === conversation.messages.length - 1;
  return h("article", { class: "message assistant", "data-role": "assistant", "data-state": message.state ?? "done", "aria-busy": streaming ? "true" : null },
    h("p", { class: "who" }, "Lifeline", message.model ? h("span", { class: "muted" }, ` · ${message.model}`) : null),
    assistantBody(message, streaming),
    h("div", { class: "message-footer" },
      h("p", { class: "meta" }, assistantMeta(message)),
      h("div", { class: "message-actions" },
        !streaming && isLast ? h("button", { type: "button", class: "small", disabled: busy, "data-focus-key": key("retry"), "aria-label": "Retry: ask for this answer again",
          onclick: () => retry(conversation) }, "Retry") : null,
        !streaming && message.content ? h("button", { type: "button", class: "small", "data-focus-key": key("copy"), onclick: (event) => copyText(event.currentTarget, message.content) }, "Copy") : null)));
}

function assistantBody(message, streaming) {
  const body = h("div", { class: "body markdown" }, renderMarkdown(message.content));
  if (streaming) body.append(h("span", { class: "caret", "aria-hidden": "true" }));
  if (!message.content && !streaming) body.append(h("p", { class: "muted" }, "No text arrived."));
  return body;
}

function assistantMeta(message) {
  const parts = [];
  if (message.state === "stopped") parts.push("Stopped.");
  if (message.state === "interrupted") parts.push("Interrupted before it finished.");
  const cache = message.meta?.cache;
  if (cache === "stale") parts.push("Served from earlier answers while the service recovers");
  else if (cache === "hit") parts.push("Answered from the cache");
  else if (message.meta?.deployment) parts.push(`Answered by ${message.meta.deployment}`);
  for (const name of message.meta?.resumedOn ?? []) parts.push(`resumed on ${name} after a failure`);
  return parts.join(" · ");
}

function editorView(conversation, message, index) {
  const textarea = h("textarea", { id: "edit-message", rows: 3, "data-focus-key": "edit-message" }, message.content);
  const cancel = () => { state.editing = null; render(); };
  const submit = () => {
    const text = textarea.value.trim();
    if (!text || state.active) return;
    state.editing = null;
    conversation.messages = conversation.messages.slice(0, index);
    conversation.messages.push({ role: "user", content: text });
    state.failure = null;
    touch(conversation);
    persist();
    generate(conversation);
  };
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); submit(); }
    if (event.key === "Escape") { event.preventDefault(); cancel(); }
  });
  return h("form", { class: "message user editing", onsubmit: (event) => { event.preventDefault(); submit(); } },
    h("label", { for: "edit-message", class: "who" }, "Edit your message"),
    textarea,
    h("p", { class: "hint" }, "Sending replaces this message and everything after it."),
    h("div", { class: "row" },
      h("button", { type: "submit", class: "small primary" }, "Send"),
      h("button", { type: "button", class: "small", onclick: cancel }, "Cancel")));
}

let countdownTimer = 0;

function failureView(conversation) {
  const { error, retryAt } = state.failure;
  const countdown = h("p", { class: "retry-after", "data-retry-after": error.retryAfterSeconds ?? null });
  const tick = () => {
    if (retryAt === null) {
      countdown.textContent = "";
      countdown.hidden = true;
      return;
    }
    const remaining = (retryAt - Date.now()) / 1000;
    countdown.textContent = remaining > 0
      ? `The server asks to wait ${formatSeconds(remaining)} before trying again.`
      : "You can try again now.";
    if (remaining <= 0) window.clearInterval(countdownTimer);
  };
  window.clearInterval(countdownTimer);
  tick();
  if (retryAt !== null) countdownTimer = window.setInterval(tick, 250);
  const title = error.status ? `The request failed (HTTP ${error.status})` : "The request failed";
  return h("div", { class: "failure", id: "request-failure" },
    h("div", { role: "alert" }, h("p", { class: "failure-title" }, title), h("p", { class: "failure-message" }, error.message)),
    countdown,
    h("div", { class: "row" },
      h("button", { type: "button", class: "primary", "data-focus-key": "failure-retry", disabled: Boolean(state.active), onclick: () => retry(conversation) }, "Retry")));
}

function renderComposer() {
  const busy = Boolean(state.active);
  ui.send.hidden = busy;
  ui.stop.hidden = !busy;
}

let frame = 0;
/** During a stream only the answer being written is redrawn, at most once per frame. */
function renderStreamSoon() {
  if (frame) return;
  frame = window.requestAnimationFrame(() => {
    frame = 0;
    const active = state.active;
    if (!active || active.conversationId !== state.currentId) return;
    const node = ui.messages.querySelector('.message.assistant[aria-busy="true"]');
    if (!node) return render();
    const wasNearBottom = isNearBottom();
    node.querySelector(".body").replaceWith(assistantBody(active.message, true));
    node.querySelector(".meta").textContent = assistantMeta(active.message);
    if (wasNearBottom) scrollToBottom();
  });
}

function isNearBottom() {
  const m = ui.messages;
  return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
}

function scrollToBottom() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function copyText(button, text) {
  navigator.clipboard?.writeText(text).then(
    () => { button.textContent = "Copied"; },
    () => { button.textContent = "Copy failed"; },
  );
}

// ---------------------------------------------------------------- actions

function selectConversation(id) {
  state.currentId = id;
  state.draft = null;
  state.editing = null;
  const conversation = current();
  if (conversation.model && [...ui.model.options].some((o) => o.value === conversation.model)) ui.model.value = conversation.model;
  render();
  scrollToBottom();
  if (NARROW.matches) setSidebarOpen(false);
  ui.prompt.focus();
}

function deleteConversation(id) {
  if (state.active?.conversationId === id) state.active.controller.abort();
  state.conversations = state.conversations.filter((c) => c.id !== id);
  if (state.failure?.conversationId === id) state.failure = null;
  state.confirmingDelete = null;
  if (state.currentId === id) {
    state.currentId = null;
    state.draft = null;
  }
  persist();
  render();
  ui.newChat.focus();
}

function startNewChat() {
  state.currentId = null;
  state.draft = newConversation(ui.model.value);
  state.editing = null;
  render();
  if (NARROW.matches) setSidebarOpen(false);
  ui.prompt.focus();
}

function send(text) {
  if (state.active) return;
  const conversation = current();
  if (conversation === state.draft) {
    state.conversations.unshift(conversation);
    state.currentId = conversation.id;
    state.draft = null;
  }
  conversation.messages.push({ role: "user", content: text });
  state.failure = null;
  touch(conversation);
  persist();
  generate(conversation);
}

/** Asks again for the answer to the conversation's last question. */
function retry(conversation) {
  if (state.active) return;
  const last = conversation.messages.at(-1);
  if (last?.role === "assistant") conversation.messages.pop();
  if (conversation.messages.at(-1)?.role !== "user") return;
  state.failure = null;
  generate(conversation);
}

async function generate(conversation) {
  const model = ui.model.value;
  if (!model) {
    state.failure = { conversationId: conversation.id, error: new ApiFailure({ message: "No model is available to answer. Reload the page, or check the API key under Settings." }), retryAt: null };
    render();
    return;
  }
  conversation.model = model;
  // An answer stopped before any text arrived has nothing to tell the model; leave it out.
  const history = conversation.messages
    .filter((m) => m.role === "user" || m.content)
    .map(({ role, content }) => ({ role, content }));
  const message = { role: "assistant", content: "", state: "streaming", model, meta: {} };
  conversation.messages.push(message);
  const controller = new AbortController();
  state.active = { conversationId: conversation.id, controller, message };
  render();
  scrollToBottom();
  try {
    await streamChat({
      model, messages: history, apiKey: settings.apiKey, signal: controller.signal,
      onText: (text) => { message.content += text; renderStreamSoon(); persistSoon(); },
      onNote: (note) => {
        if (note.deployment) message.meta.deployment = note.deployment;
        if (note.cache === "hit" || note.cache === "stale") message.meta.cache = note.cache;
        if (note.resumedOn) (message.meta.resumedOn ??= []).push(note.resumedOn);
        renderStreamSoon();
      },
    });
    message.state = "done";
    announce("Answer complete.");
  } catch (error) {
    if (error?.name === "AbortError") {
      message.state = "stopped";
      announce("Answer stopped.");
    } else {
      const failure = error instanceof ApiFailure ? error : new ApiFailure({ message: `Could not reach the server: ${error?.message ?? error}` });
      if (message.content) message.state = "interrupted";
      else conversation.messages.pop();
      state.failure = {
        conversationId: conversation.id,
        error: failure,
        retryAt: failure.retryAfterSeconds === null ? null : Date.now() + failure.retryAfterSeconds * 1000,
      };
    }
  } finally {
    state.active = null;
    window.clearTimeout(saveTimer);
    saveTimer = 0;
    touch(conversation);
    persist();
    render();
  }
}

function setSidebarOpen(open) {
  ui.sidebar.classList.toggle("open", open);
  ui.openSidebar.setAttribute("aria-expanded", String(open));
  // On a phone the open list covers the chat: keep keyboard and taps inside it until it closes.
  ui.main.inert = open && NARROW.matches;
  ui.skipLink.inert = open && NARROW.matches;
  if (open) ui.newChat.focus();
  else if (ui.sidebar.contains(document.activeElement)) ui.openSidebar.focus();
}

async function loadModels() {
  try {
    const models = await listModels(settings.apiKey);
    const preferred = current().model || settings.model;
    replaceChildren(ui.model, models.map((id) => h("option", { value: id }, id)));
    if (models.includes(preferred)) ui.model.value = preferred;
    showNotice(models.length ? null : "The server lists no models.");
  } catch (error) {
    replaceChildren(ui.model);
    const needsKey = error instanceof ApiFailure && error.status === 401;
    showNotice(needsKey
      ? `This server needs an API key: add yours under “API key” in the sidebar. (${error.message})`
      : `Could not load the list of models: ${error.message}`);
  }
}

function showBanner(banner) {
  if (!banner) {
    ui.banner.hidden = true;
    replaceChildren(ui.banner);
    return;
  }
  ui.banner.className = `banner banner-${banner.level}`;
  replaceChildren(ui.banner,
    h("strong", {}, banner.headline),
    banner.description ? [" ", h("span", {}, `Current status: ${banner.description}.`)] : null,
    " ", h("a", { href: banner.link }, "See the status page"));
  ui.banner.hidden = false;
}

async function refreshStatus() {
  showBanner(statusBanner(await fetchStatus()));
}

// ---------------------------------------------------------------- wiring

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.prompt.value.trim();
  if (!text || state.active) return;
  ui.prompt.value = "";
  send(text);
});

ui.prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ui.composer.requestSubmit();
  } else if (event.key === "Escape" && state.active) {
    event.preventDefault();
    state.active.controller.abort();
  }
});

ui.stop.addEventListener("click", () => {
  state.active?.controller.abort();
  ui.prompt.focus();
});

ui.model.addEventListener("change", () => {
  settings.model = ui.model.value;
  const conversation = current();
  conversation.model = ui.model.value;
  if (conversation !== state.draft) persist();
});

ui.newChat.addEventListener("click", startNewChat);
ui.openSidebar.addEventListener("click", () => setSidebarOpen(true));
ui.closeSidebar.addEventListener("click", () => setSidebarOpen(false));
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && ui.sidebar.classList.contains("open")) setSidebarOpen(false);
});
document.addEventListener("click", (event) => {
  if (ui.sidebar.classList.contains("open") && !ui.sidebar.contains(event.target) && !ui.openSidebar.contains(event.target)) {
    setSidebarOpen(false);
  }
});
NARROW.addEventListener("change", () => { if (!NARROW.matches) setSidebarOpen(false); });

ui.keyInput.value = settings.apiKey;
ui.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  settings.apiKey = ui.keyInput.value.trim();
  ui.keyState.textContent = settings.apiKey ? "Key saved in this browser." : "No key set.";
  loadModels();
});
ui.forgetKey.addEventListener("click", () => {
  settings.apiKey = "";
  ui.keyInput.value = "";
  ui.keyState.textContent = "Key removed from this browser.";
  loadModels();
});

window.addEventListener("storage", (event) => {
  // Another tab changed the conversations: show them, unless this tab is mid-answer.
  if (event.key && event.key.startsWith("lifeline.chat.conversations") && !state.active) {
    state.conversations = loadConversations();
    render();
  }
});

render();
scrollToBottom();
loadModels();
refreshStatus();
window.setInterval(refreshStatus, STATUS_POLL_MS);
document.body.dataset.ready = "true";
