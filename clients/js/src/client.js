// The client: identity, subscriptions, and the loop that keeps one
// transport connected — WebSocket, else SSE, else long-poll — reconnecting
// with backoff and resuming every subscription from its cursor.

import { request, queuePath } from './http.js';
import { connectLongPoll } from './longpoll.js';
import { connectSse } from './sse.js';
import { Subscription } from './subscription.js';
import { connectWebSocket } from './websocket.js';

const CONNECTORS = {
  websocket: connectWebSocket,
  sse: connectSse,
  longpoll: connectLongPoll,
};

export const TRANSPORTS = Object.freeze(Object.keys(CONNECTORS));

function randomId() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  const hex = [...Array(32)].map(() => Math.floor(Math.random() * 16).toString(16)).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20)}`;
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

export class ZaqarClient {
  /**
   * @param {object} options
   * @param {string} options.url the HTTP API's base URL (`http://127.0.0.1:8888`)
   * @param {string|null} [options.websocketUrl] the WebSocket transport (`ws://127.0.0.1:9000`); none: SSE first
   * @param {string} options.project the project (X-Project-ID)
   * @param {string} [options.clientId] the Client-ID (a fresh UUID by default)
   * @param {string} [options.token] X-Auth-Token, when the server checks one
   * @param {string[]} [options.transports] the order to try (default websocket, sse, longpoll)
   * @param {Function} [options.WebSocket] a WebSocket class (Node 20: `ws`'s; found by itself when installed)
   * @param {Function} [options.fetch] a fetch function (default the global one)
   * @param {number} [options.reconnectDelay] first reconnect delay in ms (default 250), doubled per failure
   * @param {number} [options.maxReconnectDelay] longest delay in ms (default 5000)
   * @param {number} [options.connectTimeout] ms a transport may take to connect (default 5000)
   * @param {number} [options.pollWait] seconds a long-poll waits (default 20)
   * @param {number} [options.upgradeDelay] ms on a fallback transport before trying the WebSocket again (default 5000), doubled per try
   * @param {number} [options.maxUpgradeDelay] longest wait between two such tries (default 60000)
   */
  constructor(options) {
    if (!options?.url) throw new TypeError('url is required');
    if (!options.project) throw new TypeError('project is required');
    this.url = options.url.replace(/\/+$/, '');
    this.websocketUrl = options.websocketUrl ?? null;
    this.project = options.project;
    this.clientId = options.clientId ?? randomId();
    this.token = options.token ?? null;
    this.transports = (options.transports ?? TRANSPORTS).filter((name) => {
      if (!CONNECTORS[name]) throw new TypeError(`unknown transport ${name}`);
      return true;
    });
    this.WebSocketClass = options.WebSocket ?? null;
    const fetchImpl = options.fetch ?? globalThis.fetch;
    this.fetch = (...args) => fetchImpl(...args);
    this.reconnectDelay = options.reconnectDelay ?? 250;
    this.maxReconnectDelay = options.maxReconnectDelay ?? 5000;
    this.connectTimeout = options.connectTimeout ?? 5000;
    this.pollWait = options.pollWait ?? 20;
    this.upgradeDelay = options.upgradeDelay ?? 5000;
    this.maxUpgradeDelay = options.maxUpgradeDelay ?? 60000;
    this.pollLimit = options.pollLimit ?? 100;
    this.subscriptionTtl = options.subscriptionTtl ?? 604800;
    this.subscriptions = new Set();
    this.listeners = new Map();
    this.state = 'idle';
    this.transport = null;
    this.connection = null;
    this.stopping = new AbortController();
    this.running = null;
  }

  /** Listens to `state`, `message`, `gap`, `error`, `transport-error`; returns an unsubscribe function. */
  on(type, listener) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(listener);
    return () => this.listeners.get(type)?.delete(listener);
  }

  _emit(type, event) {
    for (const listener of this.listeners.get(type) ?? []) {
      try {
        listener(event);
      } catch (error) {
        // A listener's bug must not stop delivery to the others.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  _setState(state, transport = this.transport, detail = {}) {
    this.state = state;
    this.transport = transport;
    this._emit('state', { state, transport, ...detail });
  }

  /** The WebSocket class: the one given, the global one, or the `ws` package's. */
  async webSocketImpl() {
    if (this.WebSocketClass) return this.WebSocketClass;
    if (globalThis.WebSocket) return globalThis.WebSocket;
    const module = await import('ws');
    this.WebSocketClass = module.WebSocket ?? module.default;
    return this.WebSocketClass;
  }

  /**
   * Subscribes to a queue. Options: `sinceSeq` (everything after it),
   * `lastN`, or `since` (a Date or ISO 8601 string); `filter` (a string or
   * an array: `path==value`, `path^=prefix`); `onMessage(message)`,
   * `onGap(gap)`, `onError(error)`. Connects if not connected yet.
   */
  subscribe(queue, options = {}) {
    const subscription = new Subscription(this, queue, options);
    this.subscriptions.add(subscription);
    this.connection?.add(subscription);
    this.connect();
    return subscription;
  }

  _unsubscribe(subscription) {
    this.subscriptions.delete(subscription);
    this.connection?.remove(subscription);
  }

  /** Starts the connection loop (subscribe does it too). */
  connect() {
    if (!this.running && !this.stopping.signal.aborted) {
      this.running = this._run();
    }
    return this;
  }

  async _run() {
    let failures = 0;
    // Tries to move back to the WebSocket since it last held: each waits twice as long.
    let upgradeTries = 0;
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      let connection = null;
      for (const name of this.transports) {
        if (name === 'websocket' && !this.websocketUrl) continue;
        this._setState('connecting', name);
        const snapshot = [...this.subscriptions];
        try {
          connection = await CONNECTORS[name](this, snapshot);
        } catch (error) {
          this._emit('transport-error', { transport: name, error });
          continue;
        }
        if (signal.aborted) {
          connection.close();
          return;
        }
        // Subscriptions made while connecting join now.
        for (const subscription of this.subscriptions) {
          if (!snapshot.includes(subscription)) connection.add(subscription);
        }
        break;
      }
      if (!connection) {
        const delay = this._backoff(failures++);
        this._setState('reconnecting', null, { delay, failures });
        await sleep(delay, signal);
        continue;
      }
      failures = 0;
      if (connection.name === 'websocket') upgradeTries = 0;
      this.connection = connection;
      this._setState('open', connection.name);
      const leaving = new AbortController();
      let stopped;
      const upgrade = await Promise.race([
        connection.closed.then(() => false),
        this._websocketAgain(connection.name, upgradeTries, leaving.signal),
        new Promise((r) => {
          stopped = () => r(false);
          signal.addEventListener('abort', stopped, { once: true });
        }),
      ]);
      leaving.abort();
      signal.removeEventListener('abort', stopped);
      this.connection = null;
      connection.close();
      if (signal.aborted) break;
      if (upgrade) {
        // The WebSocket answers again: reconnect now, WebSocket first;
        // every subscription resumes from its cursor.
        upgradeTries += 1;
        this._setState('reconnecting', connection.name, { delay: 0, failures: 0, upgrade: true });
        continue;
      }
      const delay = this._backoff(0);
      this._setState('reconnecting', connection.name, { delay, failures: 0 });
      await sleep(delay, signal);
    }
  }

  /**
   * On a fallback transport while the WebSocket comes first: resolves true
   * once a WebSocket opens again (tried after `upgradeDelay`, doubled per
   * try since it last held), so that one failed attempt (the server was
   * starting, the network blinked) does not leave the client on SSE or
   * long-poll for good. Never resolves otherwise; stops when `leaving`
   * aborts. Where a proxy blocks WebSockets, this costs one refused
   * attempt per `maxUpgradeDelay` at most.
   */
  _websocketAgain(current, tries, leaving) {
    const order = this.transports;
    const preferred = this.websocketUrl && order.includes('websocket');
    if (!preferred || current === 'websocket' || order.indexOf(current) < order.indexOf('websocket')) {
      return new Promise(() => {});
    }
    return (async () => {
      for (let attempt = tries; !leaving.aborted; attempt += 1) {
        await sleep(Math.min(this.maxUpgradeDelay, this.upgradeDelay * 2 ** attempt), leaving);
        if (leaving.aborted) break;
        try {
          const probe = await connectWebSocket(this, []);
          probe.close();
          if (!leaving.aborted) return true;
        } catch {
          // Not yet: try again later.
        }
      }
      return new Promise(() => {});
    })();
  }

  /** Exponential backoff with jitter (half to full of the doubled delay). */
  _backoff(failures) {
    const full = Math.min(this.maxReconnectDelay, this.reconnectDelay * 2 ** failures);
    return Math.round(full / 2 + (Math.random() * full) / 2);
  }

  /** Closes every subscription and the connection. */
  async close() {
    this.stopping.abort();
    this.connection?.close();
    await this.running;
    this.running = null;
    this._setState('closed', null);
  }

  /** Any v2 request: `request('GET', '/v2/queues', {query})`; resolves to the JSON body. */
  request(method, path, options) {
    return request(this, method, path, options);
  }

  /** Posts messages (`{body, ttl?, delay?}` each, or one); resolves to `{resources: [...]}`. */
  post(queue, messages) {
    const list = Array.isArray(messages) ? messages : [messages];
    return request(this, 'POST', queuePath(queue, '/messages'), { body: { messages: list } });
  }

  /** The project's queues (with metadata), following pages. */
  async listQueues() {
    const queues = [];
    let marker;
    for (;;) {
      const page = await request(this, 'GET', '/v2/queues', {
        query: { detailed: true, limit: 20, marker },
      });
      const batch = page?.queues ?? [];
      queues.push(...batch);
      if (batch.length < 20) return queues;
      marker = batch[batch.length - 1].name;
    }
  }

  /** A queue's stats (`{messages: {free, claimed, total, ...}}`). */
  stats(queue) {
    return request(this, 'GET', queuePath(queue, '/stats'));
  }

  /** Claims up to `limit` messages; resolves to `{claimId, messages}` (none: `{claimId: null, messages: []}`). */
  async claim(queue, { limit = 10, ttl = 60, grace = 60 } = {}) {
    const answer = await request(this, 'POST', queuePath(queue, '/claims'), {
      query: { limit },
      body: { ttl, grace },
    });
    const messages = answer?.messages ?? [];
    // Each claimed message's href carries the claim id.
    const href = messages[0]?.href ?? '';
    const claimId = new URL(href, this.url).searchParams.get('claim_id');
    return { claimId, messages };
  }

  /** Deletes a message (with the claim id when it is claimed). */
  deleteMessage(queue, id, claimId) {
    return request(this, 'DELETE', queuePath(queue, `/messages/${encodeURIComponent(id)}`), {
      query: { claim_id: claimId ?? undefined },
    });
  }

  /** Releases a claim: its messages become free again. */
  releaseClaim(queue, claimId) {
    return request(this, 'DELETE', queuePath(queue, `/claims/${encodeURIComponent(claimId)}`));
  }
}
