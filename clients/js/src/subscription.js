// One subscription to one queue: its options and its cursor, the last seq
// it delivered. Whatever transport carries it, and however often it
// reconnects, each seq reaches the handlers once: anything at or below the
// cursor is dropped.

const HISTORY_OPTIONS = ['sinceSeq', 'lastN', 'since'];

export class Subscription {
  /**
   * @param {object} client the ZaqarClient
   * @param {string} queue queue name
   * @param {object} options sinceSeq | lastN | since, filter, ttl,
   *   onMessage(message), onGap(gap), onError(error)
   */
  constructor(client, queue, options = {}) {
    const given = HISTORY_OPTIONS.filter((key) => options[key] !== undefined);
    if (given.length > 1) {
      throw new TypeError(`at most one of ${HISTORY_OPTIONS.join(', ')} may be given`);
    }
    this.client = client;
    this.queue = queue;
    this.options = options;
    this.filter =
      options.filter === undefined ? [] : [].concat(options.filter).map((f) => String(f));
    /** The last seq delivered (or known to be passed); null before anything is known. */
    this.cursor = options.sinceSeq ?? null;
    this.closed = false;
    this.delivered = 0;
    /**
     * Resolves once the server has taken the subscription: a live-only
     * one gets every message posted after that. Rejects if the server
     * refuses it or it is closed first.
     */
    this.ready = new Promise((resolve, reject) => {
      this.markReady = resolve;
      this.markNotReady = reject;
    });
    // A refusal also reaches onError and the client's 'error' event.
    this.ready.catch(() => {});
  }

  /** The server has taken the subscription (again, after a reconnect). */
  taken() {
    this.markReady(this);
  }

  /** True when the first subscription should ask for history, not live only. */
  get wantsHistory() {
    return this.cursor !== null || HISTORY_OPTIONS.some((key) => this.options[key] !== undefined);
  }

  /**
   * The history options for the next (re)subscription, in wire names: once
   * a cursor is known it is always `since_seq`, so a resume starts right
   * after the last delivered seq.
   */
  wireHistory() {
    if (this.cursor !== null) return { since_seq: this.cursor };
    if (this.options.lastN !== undefined) return { last_n: this.options.lastN };
    if (this.options.since !== undefined) {
      const since = this.options.since;
      return { since: since instanceof Date ? since.toISOString() : String(since) };
    }
    return {};
  }

  /** Moves the cursor forward to `seq` without delivering anything (skipped by a filter). */
  advance(seq) {
    if (Number.isInteger(seq) && (this.cursor === null || seq > this.cursor)) this.cursor = seq;
  }

  /** Hands a pushed document to the handlers unless its seq was delivered already. */
  deliver(document) {
    if (this.closed) return;
    const seq = document.sequence;
    if (Number.isInteger(seq)) {
      if (this.cursor !== null && seq <= this.cursor) return;
      this.cursor = seq;
    }
    this.delivered += 1;
    const message = {
      queue: document.queue_name ?? this.queue,
      seq,
      id: document.message_id,
      body: document.body,
      ttl: document.ttl,
      document,
    };
    this.client._emit('message', { subscription: this, message });
    this.options.onMessage?.(message, this);
  }

  /** The server no longer retains what the cursor asked for: say so, then go on from there. */
  gap({ requested_seq: requestedSeq, first_available_seq: firstAvailable }) {
    if (this.closed) return;
    if (Number.isInteger(firstAvailable)) this.cursor = firstAvailable - 1;
    const gap = { queue: this.queue, requestedSeq, firstAvailableSeq: firstAvailable };
    this.client._emit('gap', { subscription: this, gap });
    this.options.onGap?.(gap, this);
  }

  /** The server refused the subscription (bad filter, unknown queue options, auth): it ends. */
  fail(error) {
    if (this.closed) return;
    this.markNotReady(error);
    this.client._emit('error', { subscription: this, error });
    this.options.onError?.(error, this);
    this.close();
  }

  /** Stops it on the server and here. */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.markNotReady(new Error('the subscription was closed before the server took it'));
    this.client._unsubscribe(this);
  }
}
