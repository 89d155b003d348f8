// The page's client for /v1/ws: one connection, opened when first needed and again after
// it closes; requests multiplexed by id. The API key goes in as a `bearer.<key>`
// subprotocol when it is a valid protocol token, else in an auth frame.

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export const POLICY_VIOLATION = 1008;

export class SocketClosed extends Error {
  constructor(code, reason) {
    super(reason || `The connection closed (code ${code}).`);
    this.code = code;
  }
}

export class ChatSocket {
  // getKey(): the stored key or ""; onAuthRejected(): the server refused it (1008).
  constructor({ url, getKey, onAuthRejected }) {
    this.url = url;
    this.getKey = getKey;
    this.onAuthRejected = onAuthRejected;
    this.ws = null;
    this.ready = null;
    this.pending = new Map(); // id → {onDelta, resolve, reject}
    this.counter = 0;
  }

  // Resolves with the done frame; rejects with the error frame, or SocketClosed.
  // onReasoning gets a reasoning model's thinking, which comes before the answer.
  chat(fields, onDelta, onReasoning = () => {}) {
    const id = `r${Date.now().toString(36)}${(this.counter++).toString(36)}`;
    const result = new Promise((resolve, reject) => {
      this.pending.set(id, { onDelta, onReasoning, resolve, reject });
    });
    this.connect()
      .then(() => this.send({ ...fields, type: "chat", id }))
      .catch((err) => this.settle(id, "reject", err));
    return { id, result };
  }

  cancel(id) {
    if (this.pending.has(id) && this.ws?.readyState === WebSocket.OPEN) {
      this.send({ type: "cancel", id });
    }
  }

  send(frame) {
    this.ws.send(JSON.stringify(frame));
  }

  connect() {
    if (this.ready && this.ws && this.ws.readyState <= WebSocket.OPEN) return this.ready;
    const key = this.getKey();
    const protocols = key && TOKEN.test(key) ? [`bearer.${key}`] : [];
    const ws = new WebSocket(this.url, protocols);
    this.ws = ws;
    this.ready = new Promise((resolve, reject) => {
      let opened = false;
      ws.addEventListener("open", () => {
        opened = true;
        if (key && !protocols.length) {
          this.authed = resolve;
          ws.send(JSON.stringify({ type: "auth", key }));
        } else {
          resolve();
        }
      });
      ws.addEventListener("message", (event) => this.receive(event.data));
      ws.addEventListener("close", (event) => {
        const closed = new SocketClosed(event.code, event.reason);
        if (!opened) closed.message = "Cannot reach the server.";
        reject(closed);
        if (this.ws === ws) this.ready = null;
        for (const id of [...this.pending.keys()]) this.settle(id, "reject", closed);
        if (event.code === POLICY_VIOLATION) this.onAuthRejected(event.reason);
      });
    });
    return this.ready;
  }

  receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    const entry = frame.id ? this.pending.get(frame.id) : null;
    if (frame.type === "ping") {
      this.send({ type: "pong" });
    } else if (frame.type === "authenticated" && this.authed) {
      this.authed();
      this.authed = null;
    } else if (entry && frame.type === "delta") {
      entry.onDelta(frame.content);
    } else if (entry && frame.type === "reasoning") {
      entry.onReasoning(frame.content);
    } else if (entry && frame.type === "done") {
      this.settle(frame.id, "resolve", frame);
    } else if (entry && frame.type === "error") {
      this.settle(frame.id, "reject", frame);
    }
  }

  settle(id, how, value) {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    entry[how](value);
  }
}
