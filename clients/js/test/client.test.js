// The client against the real server: live tail, history, filters,
// fallbacks, resume across a server restart, and the HTTP helpers.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import { WebSocket } from 'ws';

import { EventStreamParser, Subscription, ZaqarClient, ZaqarError } from '../src/index.js';
import { freePort, TestServer } from './server.js';

/** Resolves once `predicate()` is true; rejects after `ms`, saying what it waited for. */
async function waitFor(what, predicate, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let queueCounter = 0;
const freshQueue = () => `js-${process.pid}-${++queueCounter}`;

/** A client of `server` recording what it receives and the states it went through. */
function recordingClient(server, options = {}) {
  const client = new ZaqarClient({
    url: server.url,
    websocketUrl: server.websocketUrl,
    project: 'js-tests',
    WebSocket,
    reconnectDelay: 100,
    maxReconnectDelay: 500,
    connectTimeout: 2000,
    pollWait: 2,
    ...options,
  });
  const states = [];
  client.on('state', (event) => states.push(event));
  return { client, states };
}

function tail(client, queue, options = {}) {
  const received = [];
  const gaps = [];
  const errors = [];
  const subscription = client.subscribe(queue, {
    ...options,
    onMessage: (message) => received.push(message),
    onGap: (gap) => gaps.push(gap),
    onError: (error) => errors.push(error),
  });
  return { subscription, received, gaps, errors };
}

const opened = (states, transport) => () =>
  states.some((s) => s.state === 'open' && s.transport === transport);

describe('event stream parser', () => {
  test('reassembles events split anywhere, with CRLF, LF or CR line ends', () => {
    const text =
      'retry: 2000\r\n\r\n: keepalive\n\nid: 7\r\nevent: message\r\ndata: {"a":\r\ndata: 1}\r\n\r\n' +
      'event: gap\rdata: {"requested_seq":1,"first_available_seq":5}\r\r\n';
    for (let size = 1; size <= text.length; size += 1) {
      const events = [];
      const parser = new EventStreamParser((event) => events.push(event));
      for (let i = 0; i < text.length; i += size) parser.push(text.slice(i, i + size));
      assert.deepEqual(
        events,
        [
          { event: 'message', data: '{"a":\n1}', id: '7' },
          { event: 'gap', data: '{"requested_seq":1,"first_available_seq":5}', id: undefined },
        ],
        `chunks of ${size}`,
      );
    }
  });
});

describe('subscription cursor', () => {
  test('a seq at or below the cursor is dropped, so each is delivered once', () => {
    const client = new ZaqarClient({ url: 'http://127.0.0.1:1', project: 'p' });
    const seen = [];
    const subscription = new Subscription(client, 'q', { onMessage: (m) => seen.push(m.seq) });
    for (const seq of [1, 2, 2, 1, 3, 5, 4, 5, 6]) subscription.deliver({ sequence: seq, body: {} });
    assert.deepEqual(seen, [1, 2, 3, 5, 6]);
    assert.equal(subscription.cursor, 6);
    assert.deepEqual(subscription.wireHistory(), { since_seq: 6 });
  });

  test('a gap moves the cursor to just before the first available seq', () => {
    const client = new ZaqarClient({ url: 'http://127.0.0.1:1', project: 'p' });
    const gaps = [];
    const subscription = new Subscription(client, 'q', { sinceSeq: 3, onGap: (g) => gaps.push(g) });
    subscription.gap({ requested_seq: 4, first_available_seq: 9 });
    assert.deepEqual(gaps, [{ queue: 'q', requestedSeq: 4, firstAvailableSeq: 9 }]);
    assert.equal(subscription.cursor, 8);
  });

  test('at most one history option', () => {
    const client = new ZaqarClient({ url: 'http://127.0.0.1:1', project: 'p' });
    assert.throws(() => client.subscribe('q', { sinceSeq: 1, lastN: 2 }), TypeError);
  });
});

describe('against the real server', () => {
  let server;
  before(async () => {
    server = await TestServer.start();
  });
  after(async () => {
    await server?.stop();
  });

  test('posts over the HTTP API and reads the project queues and stats', async () => {
    const { client } = recordingClient(server);
    const queue = freshQueue();
    const posted = await client.post(queue, [{ body: { n: 1 } }, { body: { n: 2 }, ttl: 120 }]);
    assert.equal(posted.resources.length, 2);
    const queues = await client.listQueues();
    assert.ok(queues.some((q) => q.name === queue), JSON.stringify(queues));
    const stats = await client.stats(queue);
    assert.equal(stats.messages.total, 2);
    const claimed = await client.claim(queue, { limit: 1 });
    assert.equal(claimed.messages.length, 1);
    assert.ok(claimed.claimId);
    const id = claimed.messages[0].href.split('?')[0].split('/').pop();
    await client.deleteMessage(queue, id, claimed.claimId);
    assert.equal((await client.stats(queue)).messages.total, 1);
    const empty = await client.claim(freshQueue());
    assert.deepEqual(empty, { claimId: null, messages: [] });
    await assert.rejects(client.post(queue, []), (error) => error instanceof ZaqarError && error.status === 400);
    await client.close();
  });

  test('a subscription closed before the server took it is never ready', async () => {
    const { client } = recordingClient(server);
    const { subscription } = tail(client, freshQueue());
    subscription.close();
    await assert.rejects(subscription.ready, /closed before the server took it/);
    await client.close();
  });

  test('a live tail over WebSocket delivers messages posted over HTTP with their seq', async () => {
    const { client, states } = recordingClient(server);
    const queue = freshQueue();
    const { subscription, received } = tail(client, queue);
    await waitFor('the websocket transport to open', opened(states, 'websocket'));
    // "open" is the transport; `ready` is the server taking the subscription.
    await subscription.ready;
    await server.post(queue, [{ n: 1 }, { n: 2 }, { n: 3 }]);
    await waitFor('three messages', () => received.length === 3);
    assert.deepEqual(received.map((m) => m.body.n), [1, 2, 3]);
    const seqs = received.map((m) => m.seq);
    assert.ok(seqs.every(Number.isInteger), JSON.stringify(seqs));
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
    await client.close();
    assert.equal(states.at(-1).state, 'closed');
  });

  for (const transport of ['websocket', 'sse', 'longpoll']) {
    test(`${transport}: history (since_seq, last_n), then live, each once and in order`, async () => {
      const queue = freshQueue();
      await server.post(queue, [1, 2, 3, 4, 5].map((n) => ({ n })));
      // Two clients: over WebSocket a socket holds one subscription per
      // queue (a second one is refused with 409, as Zaqar refuses a
      // duplicate subscriber).
      const { client, states } = recordingClient(server, { transports: [transport] });
      const other = recordingClient(server, { transports: [transport] });
      const all = tail(client, queue, { sinceSeq: 0 });
      const lastTwo = tail(other.client, queue, { lastN: 2 });
      await waitFor(`${transport} to open`, opened(states, transport));
      await waitFor('the history', () => all.received.length === 5 && lastTwo.received.length === 2);
      await server.post(queue, [{ n: 6 }]);
      await waitFor('the live message', () => all.received.length === 6 && lastTwo.received.length === 3);
      assert.deepEqual(all.received.map((m) => m.body.n), [1, 2, 3, 4, 5, 6]);
      assert.deepEqual(lastTwo.received.map((m) => m.body.n), [4, 5, 6]);
      assert.deepEqual(all.received.map((m) => m.seq), [1, 2, 3, 4, 5, 6]);
      await client.close();
      await other.client.close();
    });

    test(`${transport}: a resume from a seq no longer retained gets a gap, then the rest`, async () => {
      const queue = freshQueue();
      const ids = await server.post(queue, [1, 2, 3].map((n) => ({ n })));
      for (const id of ids.slice(0, 2)) {
        const { status } = await server.http('DELETE', `/v2/queues/${queue}/messages/${id}`);
        assert.equal(status, 204);
      }
      const { client, states } = recordingClient(server, { transports: [transport] });
      const { received, gaps } = tail(client, queue, { sinceSeq: 0 });
      await waitFor(`${transport} to open`, opened(states, transport));
      await waitFor('the remaining message', () => received.length === 1);
      assert.deepEqual(gaps, [{ queue, requestedSeq: 1, firstAvailableSeq: 3 }]);
      assert.deepEqual(received.map((m) => [m.seq, m.body.n]), [[3, 3]]);
      await client.close();
    });

    test(`${transport}: filters deliver only matching bodies`, async () => {
      const queue = freshQueue();
      const { client, states } = recordingClient(server, { transports: [transport] });
      const deploys = tail(client, queue, { sinceSeq: 0, filter: ['kind==deploy', 'host^=web-'] });
      await waitFor(`${transport} to open`, opened(states, transport));
      await server.post(queue, [
        { kind: 'deploy', host: 'web-1' },
        { kind: 'deploy', host: 'db-1' },
        { kind: 'log', host: 'web-2' },
        { kind: 'deploy', host: 'web-3' },
      ]);
      await waitFor('two matching messages', () => deploys.received.length === 2);
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(deploys.received.map((m) => m.body.host), ['web-1', 'web-3']);
      await client.close();
    });

    test(`${transport}: a malformed filter is refused with 400 and ends only that subscription`, async () => {
      const queue = freshQueue();
      const { client, states } = recordingClient(server, { transports: [transport] });
      const bad = tail(client, queue, { filter: 'no operator here' });
      const good = tail(client, queue);
      await assert.rejects(bad.subscription.ready, (error) => error instanceof ZaqarError && error.status === 400);
      await waitFor('the refusal', () => bad.errors.length === 1);
      assert.ok(bad.errors[0] instanceof ZaqarError, String(bad.errors[0]));
      assert.equal(bad.errors[0].status, 400);
      await waitFor(`${transport} to open`, opened(states, transport));
      // Live only: what is posted once the server took it arrives.
      assert.equal(await good.subscription.ready, good.subscription);
      await server.post(queue, [{ ok: true }]);
      await waitFor('the good subscription to go on', () => good.received.length === 1);
      await client.close();
    });
  }

  test('falls back to SSE when the WebSocket cannot connect, and says so', async () => {
    const nobody = await freePort();
    const { client, states } = recordingClient(server, { websocketUrl: `ws://127.0.0.1:${nobody}` });
    const queue = freshQueue();
    const { received } = tail(client, queue);
    await waitFor('SSE to open', opened(states, 'sse'));
    assert.ok(states.some((s) => s.state === 'connecting' && s.transport === 'websocket'));
    await server.post(queue, [{ via: 'sse' }]);
    await waitFor('the message', () => received.length === 1);
    assert.equal(client.transport, 'sse');
    await client.close();
  });

  test('moves back from SSE to the WebSocket once it answers, each message once', async () => {
    // The WebSocket's address forwards to the server's only from midway:
    // until then the client can only open SSE.
    const port = await freePort();
    const sockets = new Set();
    const forwarder = createServer((socket) => {
      const upstream = connect(server.websocketPort, '127.0.0.1');
      for (const end of [socket, upstream]) {
        sockets.add(end);
        end.on('error', () => {});
      }
      socket.pipe(upstream).pipe(socket);
    });
    const { client, states } = recordingClient(server, {
      websocketUrl: `ws://127.0.0.1:${port}`,
      upgradeDelay: 200,
      maxUpgradeDelay: 400,
    });
    try {
      const queue = freshQueue();
      const { received } = tail(client, queue);
      await waitFor('SSE to open', opened(states, 'sse'));
      await server.post(queue, [{ n: 1 }]);
      await waitFor('the message over SSE', () => received.length === 1);

      await new Promise((r) => forwarder.listen(port, '127.0.0.1', r));
      await waitFor('the WebSocket to open', opened(states, 'websocket'));
      assert.ok(states.some((s) => s.state === 'reconnecting' && s.upgrade), JSON.stringify(states));
      await server.post(queue, [{ n: 2 }, { n: 3 }]);
      await waitFor('the messages over the WebSocket', () => received.length >= 3);
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(received.map((m) => m.body.n), [1, 2, 3]);
      assert.equal(client.transport, 'websocket');
    } finally {
      await client.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => forwarder.close(r));
    }
  });

  test('falls back to long-poll when SSE cannot connect either', async () => {
    // A fetch that refuses event streams, as a proxy that buffers them would.
    const noStreams = (url, init) =>
      init?.headers?.Accept === 'text/event-stream'
        ? Promise.reject(new TypeError('event streams blocked'))
        : fetch(url, init);
    const nobody = await freePort();
    const { client, states } = recordingClient(server, {
      websocketUrl: `ws://127.0.0.1:${nobody}`,
      fetch: noStreams,
    });
    const queue = freshQueue();
    const { received } = tail(client, queue);
    await waitFor('long-poll to open', opened(states, 'longpoll'));
    await server.post(queue, [{ via: 'longpoll' }]);
    await waitFor('the message', () => received.length === 1);
    await client.close();
  });
});

describe('resuming across a server restart', () => {
  for (const transport of ['websocket', 'sse', 'longpoll']) {
    test(`${transport}: messages posted while the server was down arrive once, in order`, async () => {
      const server = await TestServer.start();
      try {
        const queue = freshQueue();
        const { client, states } = recordingClient(server, { transports: [transport] });
        // From the fresh queue's start, so a post that beats the
        // subscription's reply is not missed.
        const { received } = tail(client, queue, { sinceSeq: 0 });
        await waitFor(`${transport} to open`, opened(states, transport));
        await server.post(queue, [{ n: 1 }]);
        await waitFor('the first message', () => received.length === 1);

        await server.kill();
        await waitFor('the client to notice', () => client.state !== 'open');
        // The server is back (same data, same ports), but the client has
        // not reconnected yet when these are posted: it must catch up.
        await server.spawn();
        await server.post(queue, [{ n: 2 }, { n: 3 }]);
        await waitFor('the messages posted during the outage', () => received.length >= 3, 15000);
        await server.post(queue, [{ n: 4 }]);
        await waitFor('the live message after the resume', () => received.length >= 4);
        await new Promise((r) => setTimeout(r, 300));
        assert.deepEqual(received.map((m) => m.body.n), [1, 2, 3, 4]);
        assert.ok(states.filter((s) => s.state === 'open').length >= 2);
        await client.close();
      } finally {
        await server.stop();
      }
    });
  }

  test('reconnects with backoff while the server is away', async () => {
    const server = await TestServer.start();
    try {
      const { client, states } = recordingClient(server);
      tail(client, freshQueue());
      await waitFor('open', opened(states, 'websocket'));
      await server.kill();
      await waitFor('two failed rounds', () => states.filter((s) => s.state === 'reconnecting').length >= 3);
      const delays = states.filter((s) => s.state === 'reconnecting' && s.failures > 0).map((s) => s.delay);
      assert.ok(delays.every((d) => d <= 500), JSON.stringify(delays));
      await server.spawn();
      const before = states.length;
      await waitFor('open again', () => states.slice(before).some((s) => s.state === 'open'));
      await client.close();
    } finally {
      await server.stop();
    }
  });
});

describe('with tokens checked (auth_strategy = "static")', () => {
  let server;
  before(async () => {
    server = new TestServer({});
    const tokens = `${server.dir}/tokens.toml`;
    const { writeFileSync } = await import('node:fs');
    writeFileSync(tokens, '[[tokens]]\ntoken = "js-secret"\nproject = "js-tests"\nuser = "js"\n');
    server.extra = `[drivers.auth.static]\ntokens_file = ${JSON.stringify(tokens)}\n`;
    server.authStrategy = 'static';
    server = await TestServer.startPrepared(server);
  });
  after(async () => {
    await server?.stop();
  });

  for (const transport of ['websocket', 'sse', 'longpoll']) {
    test(`${transport}: the token is sent, and a client without one is refused`, async () => {
      const queue = freshQueue();
      const { client, states } = recordingClient(server, { transports: [transport], token: 'js-secret' });
      const { received } = tail(client, queue, { sinceSeq: 0 });
      await waitFor(`${transport} to open`, opened(states, transport));
      await client.post(queue, { body: { authed: true } });
      await waitFor('the message', () => received.length === 1);
      await client.close();

      const anonymous = recordingClient(server, { transports: [transport] });
      const refused = tail(anonymous.client, queue);
      await waitFor('the refusal', () => refused.errors.length === 1);
      assert.equal(refused.errors[0].status, 401, String(refused.errors[0]));
      await anonymous.client.close();
    });
  }
});
