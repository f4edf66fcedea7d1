// The SSE transport over fetch streams (so identity headers can be sent,
// in browsers and in Node alike): one stream per subscription on
// `GET /v2/queues/{queue}/events`, resumed with `since_seq` from its cursor.

import { buildUrl, identityHeaders, queuePath, request, ZaqarError } from './http.js';

/** Why a transport is not usable here (no such route, a proxy in the way, no server). */
export class TransportUnavailable extends Error {
  constructor(message) {
    super(message);
    this.name = 'TransportUnavailable';
  }
}

/**
 * Refusals that concern the subscription itself (bad options or
 * credentials): another transport would refuse it just the same.
 */
export function refusesSubscription(status) {
  return status === 400 || status === 401 || status === 403;
}

/** The query of an events request: the history options and the filters. */
export function eventsQuery(subscription, extra = {}) {
  return { ...subscription.wireHistory(), filter: subscription.filter, ...extra };
}

/** Refusal of an events request: the subscription's fault, or the transport's. */
export async function refusal(response, what) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not Zaqar's JSON error: a proxy's page or nothing.
  }
  if (refusesSubscription(response.status)) return new ZaqarError(response.status, body);
  return new TransportUnavailable(`${what}: ${response.status}`);
}

/** A per-subscription transport: opens every stream, or rejects. */
class StreamConnection {
  constructor(client, name) {
    this.name = name;
    this.client = client;
    this.streams = new Map();
    this.ended = false;
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  /** Opens a subscription's stream and returns once its first answer came. */
  async start(subscription) {
    const controller = new AbortController();
    this.streams.set(subscription, controller);
    try {
      await this.open(subscription, controller.signal);
      subscription.taken();
    } catch (error) {
      this.streams.delete(subscription);
      if (error instanceof ZaqarError) {
        subscription.fail(error);
        return;
      }
      throw error;
    }
  }

  add(subscription) {
    this.start(subscription).catch((error) => this.fail(error));
  }

  remove(subscription) {
    this.streams.get(subscription)?.abort();
    this.streams.delete(subscription);
  }

  /** A stream broke: the whole connection is reconnected (every cursor resumes). */
  fail(error) {
    if (this.ended) return;
    this.client._emit('transport-error', { transport: this.name, error });
    this.close();
  }

  close() {
    if (this.ended) return;
    this.ended = true;
    for (const controller of this.streams.values()) controller.abort();
    this.streams.clear();
    this.resolveClosed();
  }
}

class SseConnection extends StreamConnection {
  constructor(client) {
    super(client, 'sse');
  }

  async open(subscription, signal) {
    const client = this.client;
    // A live-only subscription first learns the queue's last seq, so it
    // has a cursor to resume from even before its first message.
    if (!subscription.wantsHistory) {
      try {
        const answer = await request(client, 'GET', queuePath(subscription.queue, '/events'), {
          query: { wait: 0, limit: 1 },
          signal,
        });
        if (Number.isInteger(answer?.last_seq)) subscription.advance(answer.last_seq);
      } catch {
        // No long-poll answer: the stream starts live only.
      }
    }
    const url = buildUrl(client.url, queuePath(subscription.queue, '/events'), eventsQuery(subscription));
    let response;
    try {
      response = await client.fetch(url, {
        headers: { ...identityHeaders(client), Accept: 'text/event-stream' },
        signal,
        cache: 'no-store',
      });
    } catch (error) {
      throw new TransportUnavailable(`SSE ${url}: ${error.message}`);
    }
    if (!response.ok) throw await refusal(response, `SSE ${url}`);
    const type = response.headers.get('content-type') || '';
    if (!type.startsWith('text/event-stream') || !response.body) {
      throw new TransportUnavailable(`SSE ${url}: answered ${type || 'no content type'}`);
    }
    this.pump(subscription, response.body, signal);
  }

  async pump(subscription, body, signal) {
    const parser = new EventStreamParser((event) => {
      if (event.event === 'gap') {
        subscription.gap(JSON.parse(event.data));
      } else if (event.event === 'message' && event.data) {
        subscription.deliver(JSON.parse(event.data));
      }
    });
    const reader = body.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(decoder.decode(value, { stream: true }));
      }
    } catch (error) {
      if (signal.aborted) return;
      this.fail(error);
      return;
    }
    if (!signal.aborted) this.fail(new Error('the event stream ended'));
  }
}

/** The `text/event-stream` format: fields per line, a blank line ends an event. */
export class EventStreamParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = '';
    this.reset();
  }

  reset() {
    this.event = { event: 'message', data: '', id: undefined, hasData: false };
  }

  push(text) {
    this.buffer += text;
    // A trailing "\r" may be the first half of "\r\n": keep it for the next chunk.
    const end = this.buffer.endsWith('\r') ? this.buffer.length - 1 : this.buffer.length;
    const lines = this.buffer.slice(0, end).split(/\r\n|\r|\n/);
    this.buffer = lines.pop() + this.buffer.slice(end);
    for (const line of lines) this.line(line);
  }

  line(line) {
    if (line === '') {
      if (this.event.hasData) {
        this.onEvent({ event: this.event.event, data: this.event.data, id: this.event.id });
      }
      this.reset();
      return;
    }
    if (line.startsWith(':')) return; // a comment: the heartbeat
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') {
      this.event.data = this.event.hasData ? `${this.event.data}\n${value}` : value;
      this.event.hasData = true;
    } else if (field === 'event') {
      this.event.event = value;
    } else if (field === 'id') {
      this.event.id = value;
    }
  }
}

export async function connectSse(client, subscriptions) {
  const connection = new SseConnection(client);
  try {
    await Promise.all(subscriptions.map((subscription) => connection.start(subscription)));
  } catch (error) {
    connection.close();
    throw error;
  }
  return connection;
}

export { StreamConnection };
