// The chat page: picks a model from /v1/models and chats over /v1/ws. Each chat is a
// conversation stored on the server (the conversations API): its first message creates
// it, and each turn sends only the new message with the conversation's id, the server
// holding the history. The sidebar lists past chats (history.js). Settings and the API
// key live in localStorage.

import { ConversationView } from "./conversation.js";
import { HistoryList } from "./history.js";
import { ChatSocket, POLICY_VIOLATION, SocketClosed } from "./socket.js";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "hearth.apiKey";
const SETTINGS_STORE = "hearth.settings";
const MODEL_STORE = "hearth.model";
const DEFAULTS = { system: "", temperature: 0.7, top_p: 0.9, repetition_penalty: 1.1, max_tokens: 512 };
const NUMERIC = ["temperature", "top_p", "repetition_penalty", "max_tokens"];

const store = {
  get(name, fallback) {
    try {
      return localStorage.getItem(name) ?? fallback;
    } catch {
      return fallback;
    }
  },
  set(name, value) {
    try {
      if (value === null) localStorage.removeItem(name);
      else localStorage.setItem(name, value);
    } catch {
      /* storage off (private mode): the page still works for this visit */
    }
  },
};

const state = {
  conversation: { id: null, title: "", messages: [] },
  inFlight: null, // {id, view, text}
};

const view = new ConversationView($("messages"), $("empty"));
const socket = new ChatSocket({
  url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws`,
  getKey: () => store.get(KEY_STORE, ""),
  onAuthRejected: () => askKey("The server did not accept this API key."),
});

// ---- banner and status ---------------------------------------------------------------

function showBanner(text, action) {
  const banner = $("banner");
  banner.querySelector(".banner-text").textContent = text;
  const button = banner.querySelector(".banner-action");
  button.hidden = !action;
  if (action) {
    button.textContent = action.label;
    button.onclick = action.run;
  }
  banner.hidden = false;
}

function hideBanner() {
  $("banner").hidden = true;
}

function setStatus(text) {
  $("status").textContent = text;
}

// ---- the API key ---------------------------------------------------------------------

function askKey(reason) {
  const dialog = $("key-dialog");
  $("key-reason").textContent = reason;
  showBanner(reason, { label: "Enter key", run: () => askKey(reason) });
  // Several calls may each meet the 401 (models, chat list): only the first one fills the
  // field, so a later one never replaces what the user has typed since.
  if (dialog.open) return;
  $("key-input").value = store.get(KEY_STORE, "");
  dialog.showModal();
  $("key-input").focus();
}

$("key-form").addEventListener("submit", () => {
  store.set(KEY_STORE, $("key-input").value.trim() || null);
  socket.ws?.close(1000);
  hideBanner();
  loadModels();
  chatList.refresh();
});
$("key-cancel").addEventListener("click", () => $("key-dialog").close());
$("change-key").addEventListener("click", () => askKey("Enter the API key for this server."));

// What a 401 means: no key yet, or one the server refuses.
function keyProblem() {
  return store.get(KEY_STORE, "") ? "The server did not accept this API key." : "This server needs an API key.";
}

function authHeaders() {
  const key = store.get(KEY_STORE, "");
  return key ? { Authorization: `Bearer ${key}` } : {};
}

// A call to the HTTP API with the key: the parsed JSON, or an Error with a readable
// message (and the HTTP status, when there was an answer).
async function request(method, path, body) {
  const init = { method, headers: authHeaders(), cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new Error("Lost the connection to the server. Is it still running?");
  }
  if (!response.ok) {
    // A refused key reads the same here as on the socket.
    const err = new Error(response.status === 401 ? keyProblem() : await errorMessage(response));
    err.status = response.status;
    if (response.status === 401) askKey(err.message);
    throw err;
  }
  return response.json();
}

// ---- models --------------------------------------------------------------------------

async function loadModels() {
  const select = $("model");
  setStatus("Connecting…");
  let response;
  try {
    response = await fetch("/v1/models", { headers: authHeaders(), cache: "no-store" });
  } catch {
    setStatus("Offline");
    showBanner("Cannot reach the Hearth server. Is it running?", { label: "Retry", run: loadModels });
    return;
  }
  if (response.status === 401) {
    setStatus("Needs a key");
    askKey(keyProblem());
    return;
  }
  if (!response.ok) {
    setStatus("");
    showBanner(`Could not list the models: ${await errorMessage(response)}`, { label: "Retry", run: loadModels });
    return;
  }
  const models = (await response.json()).data.map((m) => m.id);
  const wanted = store.get(MODEL_STORE, "") || select.value;
  select.replaceChildren(
    ...models.map((id) => {
      const option = document.createElement("option");
      option.value = id;
      option.textContent = id;
      return option;
    })
  );
  if (models.includes(wanted)) select.value = wanted;
  hideBanner();
  setStatus(models.length ? "" : "No models");
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    return body.error?.message || body.error || response.statusText;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

$("model").addEventListener("change", (e) => store.set(MODEL_STORE, e.target.value));

// ---- settings ------------------------------------------------------------------------

function readSettings() {
  let saved = {};
  try {
    saved = JSON.parse(store.get(SETTINGS_STORE, "{}")) || {};
  } catch {
    saved = {};
  }
  return { ...DEFAULTS, ...saved };
}

function showSettings(values) {
  for (const [name, value] of Object.entries(values)) {
    const input = $(name);
    if (!input) continue;
    input.value = value;
    const out = document.querySelector(`output[for="${name}"]`);
    if (out) out.textContent = value;
  }
}

function currentSettings() {
  const values = { system: $("system").value };
  for (const name of NUMERIC) {
    const number = Number($(name).value);
    values[name] = Number.isFinite(number) && $(name).value !== "" ? number : DEFAULTS[name];
  }
  values.max_tokens = Math.max(1, Math.round(values.max_tokens));
  return values;
}

$("settings").addEventListener("input", () => {
  const values = currentSettings();
  store.set(SETTINGS_STORE, JSON.stringify(values));
  for (const name of NUMERIC) {
    const out = document.querySelector(`output[for="${name}"]`);
    if (out) out.textContent = values[name];
  }
});
$("settings").addEventListener("submit", (e) => e.preventDefault());
$("reset-settings").addEventListener("click", () => {
  store.set(SETTINGS_STORE, null);
  showSettings(DEFAULTS);
});

// ---- the conversation ----------------------------------------------------------------

export function newConversation() {
  stop();
  state.conversation = { id: null, title: "", messages: [] };
  chatList.setActive(null);
  view.clear();
  $("prompt").focus();
}

// A conversation from elsewhere (the server's store): {id, title, messages: [{role, content}]}.
export function openConversation(conversation) {
  stop();
  state.conversation = { ...conversation, messages: [...conversation.messages] };
  view.clear();
  for (const m of conversation.messages) {
    if (m.role === "user") view.addUser(m.content);
    else if (m.role === "assistant") {
      const reply = view.addAssistant(m.content);
      if (m.unfinished) reply.setStats("Unfinished");
    }
  }
}

// After a turn that did not happen: a chat whose first message it was holds nothing, so
// it leaves the list (the page starts a new one with the next message).
// The id is dropped at once, so a retry right away starts a new chat rather than racing
// the delete; it comes back if the server turns out to hold items of that chat.
async function forgetIfEmpty(conversation) {
  const id = conversation.id;
  if (conversation.messages.length || !id) return;
  conversation.id = null;
  if (state.conversation === conversation) chatList.setActive(null);
  if (!(await chatList.discardIfEmpty(id)) && conversation.id === null) {
    conversation.id = id;
    if (state.conversation === conversation) chatList.setActive(id);
  }
}

const chatList = new HistoryList($("sidebar-sections"), {
  request,
  onOpen(conversation) {
    openConversation(conversation);
    toggleSidebar(false);
  },
  onDeleted(id) {
    if (state.conversation.id === id) newConversation();
  },
});

// The open chat's stored conversation, created (titled after its first message) when
// the chat has none yet.
async function conversationId(text) {
  const conversation = state.conversation;
  if (!conversation.id) {
    const title = text.replace(/\s+/g, " ").slice(0, 60);
    const created = await request("POST", "/v1/conversations", { metadata: { title } });
    conversation.id = created.id;
    conversation.title = title;
    chatList.added(created);
  }
  return conversation.id;
}

function formatStats(done) {
  const u = done.usage;
  if (!u) return "Stopped";
  const t = done.timings || {};
  let rate = t.tokens_per_second;
  if (rate == null && t.generation_ms > 0) rate = (u.completion_tokens / t.generation_ms) * 1000;
  const parts = [`${u.completion_tokens} tokens`];
  if (rate != null) parts.push(`${rate.toFixed(1)} tok/s`);
  const cached = u.prompt_tokens_details?.cached_tokens;
  parts.push(`prompt ${u.prompt_tokens}${cached ? ` (${cached} cached)` : ""}`);
  if (done.finish_reason === "length") parts.push("cut at max tokens");
  if (done.finish_reason === "cancelled") parts.unshift("Stopped");
  return parts.join(" · ");
}

function describeError(err) {
  if (err instanceof SocketClosed) {
    if (err.code === POLICY_VIOLATION) return "The server did not accept the API key.";
    if (err.code === 1009) return "That message is too large for this server.";
    if (err.code === 1006 || err.message === "Cannot reach the server.") {
      return "Lost the connection to the server. Is it still running?";
    }
    return err.message;
  }
  if (err && err.type === "error") {
    if (err.code === "rate_limit_exceeded" || err.code === "server_overloaded") {
      const wait = err.retry_after ? ` Try again in ${Math.ceil(err.retry_after)} s.` : " Try again shortly.";
      return `The server is busy. ${err.message}${wait}`;
    }
    if (err.code === "model_not_found") return `${err.message}. Pick another model.`;
    if (err.code === "not_found" && err.param === "conversation") {
      return "This chat is no longer on the server (deleted elsewhere). Sending again starts a new chat.";
    }
    return err.message;
  }
  return String(err?.message || err);
}

function setBusy(busy) {
  const send = $("send");
  send.textContent = busy ? "Stop" : "Send";
  send.classList.toggle("stop", busy);
  send.setAttribute("aria-label", busy ? "Stop the reply" : "Send");
}

function stop() {
  const inFlight = state.inFlight;
  if (!inFlight) return;
  if (inFlight.id) socket.cancel(inFlight.id);
  else inFlight.stopped = true; // still creating its conversation: it is never sent
}

async function submit() {
  if (state.inFlight) {
    stop();
    return;
  }
  const input = $("prompt");
  const text = input.value.trim();
  const model = $("model").value;
  if (!text) return;
  if (!model) {
    showBanner("No model to talk to yet.", { label: "Retry", run: loadModels });
    return;
  }
  input.value = "";
  autosize();
  const conversation = state.conversation;
  const messages = conversation.messages;
  messages.push({ role: "user", content: text });
  const sent = view.addUser(text);
  const reply = view.addAssistant();
  reply.streaming(true);
  const { system, ...params } = currentSettings();
  // Only the new message: the server adds the conversation's history (and stores the
  // turn, a stopped reply as far as it got).
  const fields = { model, messages: [{ role: "user", content: text }], ...params };
  if (system.trim()) fields.system = system;
  let streamed = "";
  const started = { stopped: false };
  state.inFlight = started;
  setBusy(true);
  try {
    fields.conversation = await conversationId(text);
    if (started.stopped) {
      // Stopped (or left for another chat) before it was sent: as if it had not been.
      reply.setStats("Stopped");
      messages.pop();
      sent.classList.add("unsent");
      forgetIfEmpty(conversation);
      return;
    }
    let thought = "";
    const { id, result } = socket.chat(
      fields,
      (delta) => {
        streamed += delta;
        reply.setText(streamed);
      },
      (delta) => {
        thought += delta;
        reply.setReasoning(thought);
      },
    );
    started.id = id;
    const done = await result;
    reply.flush();
    reply.setStats(formatStats(done));
    if (streamed) {
      messages.push({ role: "assistant", content: streamed }); // a stopped reply counts too
    } else {
      messages.pop(); // stopped before a word: as if it had not been sent
      sent.classList.add("unsent");
      forgetIfEmpty(conversation);
    }
    hideBanner();
  } catch (err) {
    reply.flush();
    reply.fail(describeError(err));
    if (err.param === "conversation" && state.conversation === conversation) {
      conversation.id = null; // gone from the server: the next message starts anew
      chatList.refresh();
    }
    // The turn did not happen: take it back out of the history and offer it again.
    messages.pop();
    sent.classList.add("unsent");
    forgetIfEmpty(conversation);
    if (!input.value) {
      input.value = text;
      autosize();
    }
  } finally {
    reply.streaming(false);
    if (state.inFlight === started) {
      state.inFlight = null;
      setBusy(false);
    }
  }
}

// ---- composer and layout -------------------------------------------------------------

function autosize() {
  const input = $("prompt");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
}

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  submit();
});
$("prompt").addEventListener("input", autosize);
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    submit();
  }
});
$("new-chat").addEventListener("click", () => {
  newConversation();
  toggleSidebar(false);
});

function toggleSidebar(open) {
  document.body.classList.toggle("sidebar-open", open);
  $("menu").setAttribute("aria-expanded", String(open));
  $("scrim").hidden = !open;
}
$("menu").addEventListener("click", () => toggleSidebar(!document.body.classList.contains("sidebar-open")));
$("scrim").addEventListener("click", () => toggleSidebar(false));
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && document.body.classList.contains("sidebar-open")) toggleSidebar(false);
});

showSettings(readSettings());
loadModels();
chatList.refresh();
