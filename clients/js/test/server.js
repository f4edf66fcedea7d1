// Spawns the real zaqar-server (ZAQAR_SERVER_BINARY, default the
// workspace's target/debug/zaqar-server) on free ports with its own data
// directory; restart() brings it back on the same ports and data.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const here = dirname(fileURLToPath(import.meta.url));

export function serverBinary() {
  const binary =
    process.env.ZAQAR_SERVER_BINARY || resolve(here, '../../../target/debug/zaqar-server');
  if (!existsSync(binary)) {
    throw new Error(
      `${binary} not found: build it (cargo build -p zaqar-host --bin zaqar-server) or set ZAQAR_SERVER_BINARY`,
    );
  }
  return binary;
}

/** A port nothing listens on right now. */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

export class TestServer {
  /**
   * @param {object} options
   * @param {boolean} [options.websocket] run the websocket transport too (default true)
   * @param {string} [options.extra] TOML appended to the configuration
   */
  static async start(options = {}) {
    return TestServer.startPrepared(new TestServer(options));
  }

  /** Starts a server made with `new TestServer` (whose `dir` may hold files its config names). */
  static async startPrepared(server) {
    server.wsgiPort = await freePort();
    server.websocketPort = server.websocket ? await freePort() : null;
    server.writeConfig();
    await server.spawn();
    return server;
  }

  constructor({ websocket = true, extra = '' } = {}) {
    this.websocket = websocket;
    this.extra = extra;
    this.dir = mkdtempSync(join(tmpdir(), 'zaqar-js-'));
    this.child = null;
    this.log = '';
  }

  writeConfig() {
    const data = JSON.stringify(join(this.dir, 'data'));
    const transports = this.websocket ? '["wsgi", "websocket"]' : '["wsgi"]';
    let text = `[server]
log_level = "info"
auth_strategy = "${this.authStrategy ?? 'noauth'}"

[drivers]
transports = ${transports}

[drivers.transport.wsgi]
bind = "127.0.0.1"
port = ${this.wsgiPort}

[drivers.message_store]
name = "embedded"
[drivers.message_store.embedded]
path = ${data}
[drivers.management_store]
name = "embedded"
[drivers.management_store.embedded]
path = ${data}
`;
    if (this.websocket) {
      text += `
[drivers.transport.websocket]
bind = "127.0.0.1"
port = ${this.websocketPort}
`;
    }
    text += `\n${this.extra}\n`;
    this.configPath = join(this.dir, 'zaqar.toml');
    writeFileSync(this.configPath, text);
  }

  get url() {
    return `http://127.0.0.1:${this.wsgiPort}`;
  }

  get websocketUrl() {
    return this.websocket ? `ws://127.0.0.1:${this.websocketPort}` : null;
  }

  spawn() {
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !name.startsWith('ZAQAR_') && name !== 'RUST_LOG'),
    );
    const child = spawn(serverBinary(), ['--config', this.configPath], {
      cwd: this.dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stderr.on('data', (chunk) => {
      this.log += chunk.toString();
    });
    const expected = this.websocket ? 2 : 1;
    return new Promise((resolveStart, reject) => {
      let listening = 0;
      const timer = setTimeout(() => reject(new Error(`server did not start:\n${this.log}`)), 60000);
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (line.startsWith('zaqar-server: transport ') && line.includes(' listening on ')) {
          listening += 1;
          if (listening === expected) {
            clearTimeout(timer);
            resolveStart();
          }
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited (${code}) during start-up:\n${this.log}`));
      });
    });
  }

  /** Kills the process, as a crash would. */
  async kill() {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    this.child = null;
  }

  /** Starts it again on the same ports, configuration and data. */
  async restart() {
    await this.kill();
    await this.spawn();
  }

  async stop() {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A request with a project's headers; resolves to `{status, body}`. */
  async http(method, path, { project = 'js-tests', body, headers = {} } = {}) {
    const response = await fetch(this.url + path, {
      method,
      headers: {
        'Client-ID': '3381af92-2b9e-11e3-b191-71861300734c',
        'X-Project-ID': project,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  }

  /** Posts bodies to a queue over HTTP; resolves to their message ids. */
  async post(queue, bodies, project = 'js-tests') {
    const { status, body } = await this.http('POST', `/v2/queues/${queue}/messages`, {
      project,
      body: { messages: bodies.map((b) => ({ body: b, ttl: 300 })) },
    });
    if (status !== 201) throw new Error(`post answered ${status}: ${JSON.stringify(body)}`);
    return body.resources.map((href) => href.split('/').pop());
  }
}
