// The message list: one bubble per turn, the assistant's rendered as Markdown while it
// streams. Holds no conversation state; app.js owns that.

import { render } from "./markdown.js";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class ConversationView {
  constructor(container, empty) {
    this.container = container;
    this.empty = empty;
  }

  clear() {
    this.container.replaceChildren(this.empty);
    this.empty.hidden = false;
  }

  nearBottom() {
    const c = this.container;
    return c.scrollHeight - c.scrollTop - c.clientHeight < 80;
  }

  append(node) {
    const stick = this.nearBottom();
    this.empty.hidden = true;
    this.container.append(node);
    if (stick) this.scrollDown();
  }

  scrollDown() {
    this.container.scrollTop = this.container.scrollHeight;
  }

  addUser(text) {
    const msg = el("article", "msg user");
    msg.append(el("div", "body", text)); // the user's own text, shown as written
    this.append(msg);
    return msg;
  }

  // An assistant bubble; `text` renders as Markdown (also for replies loaded later).
  addAssistant(text = "") {
    const msg = el("article", "msg assistant");
    const body = el("div", "body markdown");
    const stats = el("div", "stats");
    // A reasoning model's thinking: folded above the answer, shown when it comes.
    const thinking = el("details", "reasoning");
    const thought = el("div", "reasoning-text");
    thinking.append(el("summary", null, "Thinking"), thought);
    thinking.hidden = true;
    msg.append(thinking, body, stats);
    this.append(msg);
    let frame = 0;
    let current = text;
    const paint = () => {
      frame = 0;
      const stick = this.nearBottom();
      body.replaceChildren(render(current));
      if (stick) this.scrollDown();
    };
    if (text) paint();
    return {
      element: msg,
      streaming(on) {
        msg.classList.toggle("streaming", on);
      },
      setText(value) {
        current = value;
        if (!frame) frame = requestAnimationFrame(paint);
      },
      flush() {
        if (frame) cancelAnimationFrame(frame);
        paint();
      },
      setReasoning(value) {
        thinking.hidden = !value;
        thought.textContent = value; // the model's own words, shown as written
      },
      setStats(value) {
        stats.textContent = value;
      },
      fail(message) {
        msg.classList.add("failed");
        const note = el("div", "error-note", message);
        msg.insertBefore(note, stats);
      },
    };
  }
}
