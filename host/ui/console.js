// The console: a project's queues with their stats, a live tail of one
// queue through the JavaScript client, posting, claiming and deleting.
// Every piece of server data reaches the page through textContent, never
// as HTML.

import { ZaqarClient } from './client/index.js';

const STORAGE_KEY = 'zaqar-console';
const TAIL_HISTORY = 20;
const TAIL_KEEP = 200;

const $ = (id) => document.getElementById(id);

/** An element with text (never parsed as HTML) and attributes. */
function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

function loadSettings() {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY)) ?? {};
  } catch {
    return {};
  }
}

function saveSettings(settings) {
  localStorage.setItem(STORAGE_KEY, JSON.stringify(settings));
}

function showError(error) {
  const box = $('error');
  if (!error) {
    box.hidden = true;
    box.textContent = '';
    return;
  }
  box.hidden = false;
  box.textContent = error.message ?? String(error);
}

const page = {
  client: null,
  config: { websocket_url: null },
  tail: null,
  claim: null,
  refreshTimer: null,
};

async function loadConfig() {
  try {
    const response = await fetch('config.json', { cache: 'no-store' });
    if (response.ok) page.config = await response.json();
  } catch {
    // Without it the console goes by SSE on its own origin.
  }
}

function showConnection({ state, transport }) {
  const box = $('connection');
  box.className = `connection ${state}`;
  $('state').textContent = state;
  $('transport').textContent = transport ?? '';
  box.dataset.state = state;
  box.dataset.transport = transport ?? '';
}

async function openProject(settings) {
  if (page.client) await page.client.close();
  page.tail = null;
  clearChildren($('tail'));
  clearChildren($('claimed'));
  page.client = new ZaqarClient({
    url: window.location.origin,
    websocketUrl: page.config.websocket_url,
    project: settings.project,
    token: settings.token || undefined,
    clientId: settings.clientId,
  });
  page.client.on('state', showConnection);
  page.client.on('error', ({ error }) => showError(error));
  $('client-id').textContent = `Client-ID ${settings.clientId}`;
  $('workspace').hidden = false;
  showError(null);
  await refreshQueues();
  clearInterval(page.refreshTimer);
  page.refreshTimer = setInterval(() => refreshQueues().catch(() => {}), 5000);
  if (settings.queue) startTail(settings.queue);
}

function clearChildren(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

async function refreshQueues() {
  const client = page.client;
  if (!client) return;
  let queues;
  try {
    queues = await client.listQueues();
  } catch (error) {
    showError(error);
    return;
  }
  const stats = await Promise.all(
    queues.slice(0, 100).map((queue) => client.stats(queue.name).catch(() => null)),
  );
  const body = $('queues').tBodies[0];
  clearChildren(body);
  queues.slice(0, 100).forEach((queue, index) => {
    const messages = stats[index]?.messages ?? {};
    const row = element('tr', undefined, { 'data-queue': queue.name });
    const name = element('td');
    const link = element('button', queue.name, { type: 'button', class: 'link' });
    link.addEventListener('click', () => startTail(queue.name));
    name.append(link);
    row.append(
      name,
      element('td', messages.free ?? '-', { class: 'num' }),
      element('td', messages.claimed ?? '-', { class: 'num' }),
      element('td', messages.total ?? '-', { class: 'num' }),
    );
    if (page.tail?.queue === queue.name) row.classList.add('selected');
    body.append(row);
  });
  $('queues-empty').hidden = queues.length > 0;
}

function startTail(queue) {
  const settings = loadSettings();
  saveSettings({ ...settings, queue });
  page.tail?.close();
  clearChildren($('tail'));
  clearChildren($('claimed'));
  page.claim = null;
  showClaim();
  $('tail-queue').value = queue;
  $('tail-name').textContent = queue;
  $('tail-count').textContent = '0';
  $('tail-cursor').textContent = '-';
  for (const row of $('queues').tBodies[0].rows) {
    row.classList.toggle('selected', row.dataset.queue === queue);
  }
  let count = 0;
  page.tail = page.client.subscribe(queue, {
    lastN: TAIL_HISTORY,
    onMessage: (message, subscription) => {
      count += 1;
      $('tail-count').textContent = String(count);
      $('tail-cursor').textContent = String(subscription.cursor);
      appendTail(message);
    },
    onGap: (gap) => {
      const note = element(
        'li',
        `Gap: messages ${gap.requestedSeq}–${gap.firstAvailableSeq - 1} are no longer retained`,
        { class: 'gap' },
      );
      $('tail').prepend(note);
    },
    onError: (error) => showError(error),
  });
}

function appendTail(message) {
  const item = element('li', undefined, { 'data-seq': message.seq ?? '' });
  const head = element('div', undefined, { class: 'meta' });
  head.append(
    element('span', `#${message.seq}`, { class: 'seq' }),
    element('span', new Date().toLocaleTimeString(), { class: 'muted' }),
    element('span', message.id ?? '', { class: 'muted id' }),
  );
  item.append(head, element('pre', JSON.stringify(message.body, null, 2), { class: 'body' }));
  const list = $('tail');
  list.prepend(item);
  while (list.children.length > TAIL_KEEP) list.lastChild.remove();
}

async function postMessage(event) {
  event.preventDefault();
  const queue = page.tail?.queue;
  if (!queue) {
    showError(new Error('Choose a queue to tail first.'));
    return;
  }
  let body;
  try {
    body = JSON.parse($('post-body').value);
  } catch (error) {
    showError(new Error(`The body is not JSON: ${error.message}`));
    return;
  }
  try {
    const answer = await page.client.post(queue, { body, ttl: Number($('post-ttl').value) || 300 });
    $('post-result').textContent = `Posted ${answer.resources.length}`;
    showError(null);
    refreshQueues();
  } catch (error) {
    showError(error);
  }
}

function showClaim() {
  $('claim-id').textContent = page.claim ? page.claim.claimId : 'none';
  $('claim-release').disabled = !page.claim;
}

async function claimMessages(event) {
  event.preventDefault();
  const queue = page.tail?.queue;
  if (!queue) {
    showError(new Error('Choose a queue to tail first.'));
    return;
  }
  try {
    const claim = await page.client.claim(queue, { limit: Number($('claim-limit').value) || 5 });
    showError(null);
    clearChildren($('claimed'));
    page.claim = claim.claimId ? { ...claim, queue } : null;
    showClaim();
    if (!claim.messages.length) {
      $('claimed').append(element('li', 'Nothing to claim.', { class: 'muted' }));
    }
    for (const message of claim.messages) {
      const id = new URL(message.href, window.location.origin).pathname.split('/').pop();
      const item = element('li', undefined, { 'data-id': id });
      const remove = element('button', 'Delete', { type: 'button', class: 'danger' });
      remove.addEventListener('click', async () => {
        try {
          await page.client.deleteMessage(queue, id, claim.claimId);
          item.remove();
          refreshQueues();
        } catch (error) {
          showError(error);
        }
      });
      const head = element('div', undefined, { class: 'meta' });
      head.append(element('span', id, { class: 'id' }), element('span', `age ${message.age}s`, { class: 'muted' }), remove);
      item.append(head, element('pre', JSON.stringify(message.body, null, 2), { class: 'body' }));
      $('claimed').append(item);
    }
    refreshQueues();
  } catch (error) {
    showError(error);
  }
}

async function releaseClaim() {
  if (!page.claim) return;
  try {
    await page.client.releaseClaim(page.claim.queue, page.claim.claimId);
    page.claim = null;
    showClaim();
    clearChildren($('claimed'));
    refreshQueues();
  } catch (error) {
    showError(error);
  }
}

function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

async function main() {
  await loadConfig();
  const settings = loadSettings();
  if (!settings.clientId) {
    settings.clientId = newClientId();
    saveSettings(settings);
  }
  $('project').value = settings.project ?? '';
  $('token').value = settings.token ?? '';
  $('identity').addEventListener('submit', (event) => {
    event.preventDefault();
    const next = {
      ...loadSettings(),
      project: $('project').value.trim(),
      token: $('token').value,
    };
    saveSettings(next);
    openProject(next).catch(showError);
  });
  $('queues-refresh').addEventListener('click', () => refreshQueues());
  $('tail-form').addEventListener('submit', (event) => {
    event.preventDefault();
    startTail($('tail-queue').value.trim());
  });
  $('post-form').addEventListener('submit', postMessage);
  $('claim-form').addEventListener('submit', claimMessages);
  $('claim-release').addEventListener('click', releaseClaim);
  if (settings.project) await openProject(settings);
}

main().catch(showError);
