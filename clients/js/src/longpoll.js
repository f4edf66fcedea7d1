// The long-poll transport: `GET /v2/queues/{queue}/events?wait=S` in a
// loop per subscription, each asking from the `last_seq` the previous
// answer named.

import { buildUrl, identityHeaders, queuePath } from './http.js';
import { eventsQuery, refusal, StreamConnection, TransportUnavailable } from './sse.js';

class LongPollConnection extends StreamConnection {
  constructor(client) {
    super(client, 'longpoll');
  }

  /** One poll; resolves when the answer was handed to the subscription. */
  async poll(subscription, signal, wait) {
    const client = this.client;
    const url = buildUrl(
      client.url,
      queuePath(subscription.queue, '/events'),
      eventsQuery(subscription, { wait, limit: client.pollLimit }),
    );
    let response;
    try {
      response = await client.fetch(url, {
        headers: { ...identityHeaders(client), Accept: 'application/json' },
        signal,
        cache: 'no-store',
      });
    } catch (error) {
      throw new TransportUnavailable(`long-poll ${url}: ${error.message}`);
    }
    if (!response.ok) throw await refusal(response, `long-poll ${url}`);
    const answer = await response.json();
    if (!answer || !Array.isArray(answer.events)) {
      throw new TransportUnavailable(`long-poll ${url}: not an events document`);
    }
    if (answer.gap) subscription.gap(answer.gap);
    for (const event of answer.events) subscription.deliver(event);
    // Events the filter skipped still move the cursor on.
    subscription.advance(answer.last_seq);
  }

  async open(subscription, signal) {
    // The first poll does not wait: it proves the route works, and hands
    // over the history (or the queue's last seq, for a live-only one).
    await this.poll(subscription, signal, 0);
    this.loop(subscription, signal);
  }

  async loop(subscription, signal) {
    while (!signal.aborted && !this.ended) {
      try {
        await this.poll(subscription, signal, this.client.pollWait);
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof TransportUnavailable) {
          this.fail(error);
        } else {
          subscription.fail(error);
        }
        return;
      }
    }
  }
}

export async function connectLongPoll(client, subscriptions) {
  const connection = new LongPollConnection(client);
  try {
    await Promise.all(subscriptions.map((subscription) => connection.start(subscription)));
  } catch (error) {
    connection.close();
    throw error;
  }
  return connection;
}
