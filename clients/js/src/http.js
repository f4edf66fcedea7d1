// The Zaqar v2 HTTP API: headers every request carries, and errors in
// Zaqar's shape turned into exceptions.

/** An answer other than 2xx: `status`, and Zaqar's `title`/`description`. */
export class ZaqarError extends Error {
  constructor(status, body) {
    const title = body && typeof body === 'object' ? body.title || body.error?.title : undefined;
    const description =
      body && typeof body === 'object' ? body.description || body.error?.message : undefined;
    super(`${status}${title ? ` ${title}` : ''}${description ? `: ${description}` : ''}`);
    this.name = 'ZaqarError';
    this.status = status;
    this.title = title;
    this.description = description;
    this.body = body;
  }
}

/** The identity headers of a client (`Client-ID`, `X-Project-ID`, `X-Auth-Token`). */
export function identityHeaders({ clientId, project, token }) {
  const headers = { 'Client-ID': clientId, 'X-Project-ID': project };
  if (token) headers['X-Auth-Token'] = token;
  return headers;
}

/** `base` + `path` + the query (values that are arrays repeat the key). */
export function buildUrl(base, path, query = {}) {
  const url = new URL(base.replace(/\/+$/, '') + path);
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    for (const one of Array.isArray(value) ? value : [value]) {
      url.searchParams.append(key, String(one));
    }
  }
  return url.toString();
}

/**
 * One request; resolves to the parsed JSON body (null when there is none),
 * rejects with a ZaqarError for any status outside 2xx.
 */
export async function request(client, method, path, { body, query, signal, headers } = {}) {
  const init = {
    method,
    headers: { ...identityHeaders(client), Accept: 'application/json', ...headers },
    signal,
  };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  const response = await client.fetch(buildUrl(client.url, path, query), init);
  const text = await response.text();
  let parsed = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (!response.ok) throw new ZaqarError(response.status, parsed);
  return parsed;
}

/** The queue name as a path segment. */
export function queuePath(queue, tail = '') {
  return `/v2/queues/${encodeURIComponent(queue)}${tail}`;
}
