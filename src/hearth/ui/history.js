// Past chats in the sidebar, stored on the server through the conversations API: listed
// newest first, opened, renamed (metadata.title) and deleted. Titles and messages are
// text from the store, so every one goes in with textContent, never as HTML.

const PAGE = 30; // conversations per request; "More" fetches the next page
const ITEMS_PAGE = 100; // the API's largest page of items

export const UNTITLED = "Untitled chat";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(className, text, label) {
  const node = el("button", className, text);
  node.type = "button";
  if (label) {
    node.setAttribute("aria-label", label);
    node.title = label;
  }
  return node;
}

// A stored conversation's items as the page's messages: the text of user and assistant
// messages (other items, such as tool calls made through the API, are not shown).
export function itemsToMessages(items) {
  return items
    .filter((item) => item.type === "message" && (item.role === "user" || item.role === "assistant"))
    .map((item) => ({
      role: item.role,
      content: (item.content || []).map((part) => (typeof part.text === "string" ? part.text : "")).join(""),
      // A reply stopped, or cut off at its token limit, before it was done.
      unfinished: item.status === "incomplete",
    }));
}

export class HistoryList {
  // request(method, path, body) → the parsed JSON, or throws an Error with a readable
  // message; onOpen({id, title, messages}); onDeleted(id).
  constructor(mount, { request, onOpen, onDeleted }) {
    this.request = request;
    this.onOpen = onOpen;
    this.onDeleted = onDeleted;
    this.activeId = null;
    this.rows = new Map(); // id → {row, conversation}
    this.after = null; // the cursor of the next page, when there is one

    const section = el("section", "history");
    section.setAttribute("aria-labelledby", "history-title");
    const title = el("h2", "", "Chats");
    title.id = "history-title";
    this.list = el("ul", "history-list");
    this.list.id = "history";
    this.note = el("p", "history-note");
    this.more = button("link history-more", "More chats…");
    this.more.hidden = true;
    this.more.addEventListener("click", () => this.load(this.after));
    section.append(title, this.list, this.note, this.more);
    mount.append(section);
  }

  // The first page again (on start, and after the key changes).
  async refresh() {
    await this.load(null);
  }

  async load(after) {
    const query = new URLSearchParams({ limit: String(PAGE), order: "desc" });
    if (after) query.set("after", after);
    let page;
    try {
      page = await this.request("GET", `/v1/conversations?${query}`);
    } catch (err) {
      this.showNote(`Could not load the chats: ${err.message}`);
      return;
    }
    if (!after) {
      this.list.replaceChildren();
      this.rows.clear();
    }
    for (const conversation of page.data) this.list.append(this.row(conversation));
    this.after = page.has_more ? page.last_id : null;
    this.more.hidden = !this.after;
    this.showNote(this.rows.size ? "" : "No saved chats yet.");
  }

  showNote(text) {
    this.note.textContent = text;
    this.note.hidden = !text;
  }

  // A conversation the page just created: at the top, and the open one.
  added(conversation) {
    this.rows.get(conversation.id)?.row.remove();
    this.list.prepend(this.row(conversation));
    this.showNote("");
    this.setActive(conversation.id);
  }

  setActive(id) {
    this.activeId = id;
    for (const [rowId, { row }] of this.rows) {
      const active = rowId === id;
      row.classList.toggle("active", active);
      row.querySelector(".history-open").setAttribute("aria-current", active ? "true" : "false");
    }
  }

  row(conversation) {
    const row = el("li", "history-row");
    row.dataset.id = conversation.id;
    const entry = { row, conversation };
    this.rows.set(conversation.id, entry);
    this.showIdle(entry);
    row.classList.toggle("active", conversation.id === this.activeId);
    return row;
  }

  // The row as it normally is: its title (opens it), rename and delete.
  showIdle(entry) {
    const { row, conversation } = entry;
    const title = conversation.metadata?.title || UNTITLED;
    const open = button("history-open", title);
    open.title = title;
    open.setAttribute("aria-current", conversation.id === this.activeId ? "true" : "false");
    open.addEventListener("click", () => this.open(conversation));
    const rename = button("icon history-rename", "✎", `Rename “${title}”`);
    rename.addEventListener("click", () => this.showRename(entry));
    const remove = button("icon history-delete", "×", `Delete “${title}”`);
    remove.addEventListener("click", () => this.showDelete(entry));
    row.replaceChildren(open, rename, remove);
  }

  showRename(entry) {
    const { row, conversation } = entry;
    const input = el("input", "history-title-input");
    input.value = conversation.metadata?.title || "";
    input.maxLength = 512; // the API's limit for a metadata value
    input.setAttribute("aria-label", "New title");
    let settled = false;
    const finish = async (save) => {
      if (settled) return;
      settled = true;
      const title = input.value.trim();
      if (save && title && title !== conversation.metadata?.title) {
        const metadata = { ...(conversation.metadata || {}), title };
        try {
          const updated = await this.request("POST", `/v1/conversations/${encodeURIComponent(conversation.id)}`, {
            metadata,
          });
          entry.conversation = updated;
        } catch (err) {
          this.showNote(`Could not rename the chat: ${err.message}`);
        }
      }
      this.showIdle(entry);
      row.querySelector(".history-open").focus();
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        finish(true);
      } else if (e.key === "Escape") {
        e.preventDefault();
        e.stopPropagation(); // Escape here leaves the rename, not the drawer
        finish(false);
      }
    });
    input.addEventListener("blur", () => finish(true));
    row.replaceChildren(input);
    input.focus();
    input.select();
  }

  showDelete(entry) {
    const { row, conversation } = entry;
    const question = el("span", "history-question", "Delete this chat?");
    const yes = button("history-confirm", "Delete");
    const no = button("history-keep", "Keep");
    yes.addEventListener("click", async () => {
      try {
        await this.request("DELETE", `/v1/conversations/${encodeURIComponent(conversation.id)}`);
      } catch (err) {
        if (err.status !== 404) {
          this.showNote(`Could not delete the chat: ${err.message}`);
          this.showIdle(entry);
          return;
        }
      }
      this.removeRow(conversation.id);
      this.onDeleted(conversation.id);
    });
    no.addEventListener("click", () => this.showIdle(entry));
    row.replaceChildren(question, yes, no);
    no.focus();
  }

  removeRow(id) {
    this.rows.get(id)?.row.remove();
    this.rows.delete(id);
    if (!this.rows.size) this.showNote("No saved chats yet.");
  }

  // A chat the page created for a first message that never became a turn (it failed, or
  // was stopped before a word): deleted, unless something was stored in it after all.
  // True when it is gone.
  async discardIfEmpty(id) {
    const path = `/v1/conversations/${encodeURIComponent(id)}`;
    try {
      const page = await this.request("GET", `${path}/items?limit=1`);
      if (page.data.length) return false;
      await this.request("DELETE", path);
    } catch (err) {
      if (err.status !== 404) return false; // unreachable: the row stays, as on the server
    }
    this.removeRow(id);
    return true;
  }

  async open(conversation) {
    const path = `/v1/conversations/${encodeURIComponent(conversation.id)}/items`;
    const items = [];
    let after = null;
    try {
      do {
        const query = new URLSearchParams({ limit: String(ITEMS_PAGE), order: "asc" });
        if (after) query.set("after", after);
        const page = await this.request("GET", `${path}?${query}`);
        items.push(...page.data);
        after = page.has_more ? page.last_id : null;
      } while (after);
    } catch (err) {
      this.showNote(`Could not open the chat: ${err.message}`);
      return;
    }
    this.showNote(this.rows.size ? "" : "No saved chats yet.");
    this.setActive(conversation.id);
    this.onOpen({
      id: conversation.id,
      title: conversation.metadata?.title || UNTITLED,
      messages: itemsToMessages(items),
    });
  }
}
