// The WebSocket transport: Zaqar's JSON frames, one socket carrying every
// subscription, each (re)subscribed with `since_seq` from its cursor.

import { identityHeaders, ZaqarError } from './http.js';

/** Opens the socket (and authenticates it when there is a token); rejects if it cannot. */
export async function connectWebSocket(client, subscriptions) {
  const WebSocketImpl = await client.webSocketImpl();
  const socket = new WebSocketImpl(client.websocketUrl);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`WebSocket ${client.websocketUrl}: no answer in ${client.connectTimeout} ms`));
      try {
        socket.close();
      } catch {
        // Closing a socket that never opened may throw; it is gone either way.
      }
    }, client.connectTimeout);
    socket.onopen = () => {
      clearTimeout(timer);
      resolve();
    };
    socket.onerror = () => {
      clearTimeout(timer);
      reject(new Error(`WebSocket ${client.websocketUrl} could not connect`));
    };
    socket.onclose = (event) => {
      clearTimeout(timer);
      reject(new Error(`WebSocket ${client.websocketUrl} closed (${event.code}) before opening`));
    };
  });
  const connection = new WebSocketConnection(client, socket);
  if (client.token) {
    const reply = await connection.call('authenticate', {});
    if (reply.status >= 300) {
      connection.close();
      throw new ZaqarError(reply.status, reply.body);
    }
  }
  for (const subscription of subscriptions) connection.add(subscription);
  return connection;
}

class WebSocketConnection {
  constructor(client, socket) {
    this.name = 'websocket';
    this.client = client;
    this.socket = socket;
    /** Requests awaiting their reply, in the order sent. */
    this.pending = [];
    /** Server subscription id → Subscription. */
    this.byId = new Map();
    /** Subscription → server subscription id, once known. */
    this.ids = new Map();
    /** Pushes naming a subscription whose reply has not come yet, in order. */
    this.early = [];
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    socket.onmessage = (event) => this.receive(event.data);
    socket.onerror = () => {};
    socket.onclose = () => this.dropped();
  }

  /** Sends one request frame; resolves with `{status, body}` of its reply. */
  call(action, body) {
    return new Promise((resolve, reject) => {
      this.pending.push({ action, queue: body.queue_name, resolve, reject });
      try {
        this.socket.send(JSON.stringify({ action, headers: identityHeaders(this.client), body }));
      } catch (error) {
        this.pending.pop();
        reject(error);
      }
    });
  }

  add(subscription) {
    const body = {
      queue_name: subscription.queue,
      ttl: subscription.options.ttl ?? this.client.subscriptionTtl,
      ...subscription.wireHistory(),
    };
    if (subscription.filter.length) body.filter = subscription.filter;
    const live = !subscription.wantsHistory;
    // Pushes may arrive before the reply names the subscription: until
    // then they are matched by queue name.
    this.ids.set(subscription, null);
    this.call('subscription_create', body).then(
      ({ status, body: reply }) => {
        if (status >= 300) {
          this.ids.delete(subscription);
          subscription.fail(new ZaqarError(status, reply));
          return;
        }
        const id = reply?.subscription_id;
        if (subscription.closed || !this.ids.has(subscription)) {
          if (id) this.call('subscription_delete', { queue_name: subscription.queue, subscription_id: id }).catch(() => {});
          return;
        }
        this.ids.set(subscription, id ?? null);
        subscription.taken();
        if (id) {
          this.byId.set(id, subscription);
          const early = this.early.filter((frame) => frame.subscription_id === id);
          this.early = this.early.filter((frame) => frame.subscription_id !== id);
          for (const frame of early) this.dispatch(subscription, frame);
        }
        // A live-only subscription starts at the queue's last seq, so a
        // resume after a drop replays what was posted in between.
        if (live && subscription.cursor === null && Number.isInteger(reply?.last_seq)) {
          subscription.cursor = reply.last_seq;
        }
      },
      () => {},
    );
  }

  remove(subscription) {
    const id = this.ids.get(subscription);
    this.ids.delete(subscription);
    if (id) {
      this.byId.delete(id);
      this.call('subscription_delete', { queue_name: subscription.queue, subscription_id: id }).catch(
        () => {},
      );
    }
  }

  receive(data) {
    if (typeof data !== 'string') return; // JSON frames only: binary answers never come to text requests
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame.Message_Type === 'Notification' || frame.Message_Type === 'Gap') {
      if (frame.subscription_id && !this.byId.has(frame.subscription_id)) {
        // Replayed before the reply named its subscription: kept until then.
        if (this.early.length < 10000) this.early.push(frame);
        return;
      }
      const subscription = this.subscriptionFor(frame);
      if (subscription) this.dispatch(subscription, frame);
      return;
    }
    if (frame.request) {
      const action = frame.request.action;
      const queue = frame.request.body?.queue_name;
      let index = this.pending.findIndex((p) => p.action === action && p.queue === queue);
      if (index < 0) index = this.pending.findIndex((p) => p.action === action);
      if (index < 0) return;
      const [waiting] = this.pending.splice(index, 1);
      waiting.resolve({ status: frame.headers?.status ?? 0, body: frame.body });
    }
  }

  dispatch(subscription, frame) {
    if (frame.Message_Type === 'Gap') subscription.gap(frame);
    else subscription.deliver(frame);
  }

  subscriptionFor(frame) {
    if (frame.subscription_id && this.byId.has(frame.subscription_id)) {
      return this.byId.get(frame.subscription_id);
    }
    for (const [subscription, id] of this.ids) {
      if (subscription.queue === frame.queue_name && (id === null || !frame.subscription_id || id === frame.subscription_id)) {
        return subscription;
      }
    }
    return null;
  }

  dropped() {
    for (const waiting of this.pending.splice(0)) waiting.reject(new Error('socket closed'));
    this.resolveClosed();
  }

  close() {
    try {
      this.socket.close();
    } catch {
      // Already closed.
    }
    this.dropped();
  }
}
