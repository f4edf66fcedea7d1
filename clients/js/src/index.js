// zaqar-rs client: resumable queue streams (WebSocket, SSE, long-poll) and
// the Zaqar v2 HTTP API, for browsers and Node 20+.

export { ZaqarClient, TRANSPORTS } from './client.js';
export { Subscription } from './subscription.js';
export { ZaqarError } from './http.js';
export { EventStreamParser, TransportUnavailable } from './sse.js';
