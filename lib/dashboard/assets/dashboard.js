// The Gearman dashboard page: reads the state once (api/state), then follows it (api/events, server-sent
// events) and redraws. No framework and no build step; every text from the server goes in through
// textContent, never as HTML.
const $ = (id) => document.getElementById(id);
let state;

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'className') node.className = value;
    else if (name.startsWith('data-')) node.setAttribute(name, value);
    else node[name] = value;
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function cell(text, field, numeric = false) {
  return element('td', { className: numeric ? 'num' : '', 'data-field': field }, text);
}

function fill(tableId, emptyId, rows) {
  $(tableId).tBodies[0].replaceChildren(...rows);
  $(tableId).hidden = rows.length === 0;
  if (emptyId) $(emptyId).hidden = rows.length > 0;
}

async function act(path, what) {
  $('message').textContent = '';
  try {
    const response = await fetch(path, { method: 'POST', headers: { 'X-Gearman-Dashboard': '1' } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error ?? `${response.status} ${response.statusText}`);
  } catch (error) {
    $('message').textContent = `${what} failed: ${error.message}`;
  }
}

function actionButton(label, path, what) {
  const button = element('button', { type: 'button' }, label);
  button.addEventListener('click', () => act(path, what));
  return element('td', { className: 'action-column' }, button);
}

function renderServers(servers) {
  $('servers').replaceChildren(
    ...servers.map((server) => {
      const detail = server.reachable
        ? `version ${server.version ?? '?'} · echo ${server.rttMs?.toFixed(1) ?? '?'} ms · ${server.connections ?? '?'} connections`
        : (server.error ?? 'unreachable');
      return element(
        'div',
        { className: server.reachable ? 'card' : 'card down', 'data-server': server.server },
        element('div', { className: 'name' }, `${server.server} — ${server.reachable ? 'up' : 'down'}`),
        element('div', { className: 'detail' }, detail),
      );
    }),
  );
}

function renderFunctions(servers, actions) {
  const rows = [];
  for (const server of servers) {
    const paused = new Set(server.paused ?? []);
    for (const fn of [...server.functions].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const priority = fn.queuedByPriority;
      const row = element(
        'tr',
        { 'data-function': fn.name, 'data-server': server.server, className: paused.has(fn.name) ? 'paused' : '' },
        cell(fn.name, 'name'),
        element('td', { className: 'server-column' }, server.server),
        cell(fn.queued, 'queued', true),
        cell(fn.running, 'running', true),
        cell(fn.workers, 'workers', true),
        cell(priority?.high ?? '–', 'high', true),
        cell(priority?.normal ?? '–', 'normal', true),
        cell(priority?.low ?? '–', 'low', true),
      );
      // Only a server that tells which functions it holds back can pause them (gearmand cannot).
      if (actions && server.paused) {
        const verb = paused.has(fn.name) ? 'resume' : 'pause';
        const path = `api/servers/${encodeURIComponent(server.server)}/functions/${encodeURIComponent(fn.name)}/${verb}`;
        row.append(actionButton(verb === 'pause' ? 'Pause' : 'Resume', path, `${verb} ${fn.name}`));
      }
      rows.push(row);
    }
  }
  fill('functions', 'functions-empty', rows);
}

function renderJobs(servers, actions) {
  const rows = [];
  for (const server of servers) {
    for (const job of server.runningJobs ?? []) {
      const progress = progressCell(
        job.numerator,
        job.denominator,
        job.denominator > 0 ? `${job.numerator}/${job.denominator}` : 'no progress reported',
      );
      const row = element(
        'tr',
        { 'data-job': job.handle },
        cell(job.handle, 'handle'),
        element('td', { className: 'server-column' }, server.server),
        progress,
      );
      if (actions) {
        const path = `api/servers/${encodeURIComponent(server.server)}/jobs/${encodeURIComponent(job.handle)}/cancel`;
        row.append(actionButton('Cancel', path, `cancel ${job.handle}`));
      }
      rows.push(row);
    }
  }
  fill('jobs', 'jobs-empty', rows);
}

function progressCell(numerator, denominator, text) {
  const fraction = denominator > 0 ? Math.min(1, Math.max(0, numerator / denominator)) : 0;
  const bar = element('div', { className: 'bar', title: `${numerator}/${denominator}` }, element('div'));
  bar.firstChild.style.width = `${(fraction * 100).toFixed(1)}%`;
  return element('td', { 'data-field': 'progress' }, bar, element('span', { className: 'progress-text' }, text));
}

// What the job servers keep of ended jobs (counts and bytes, never a result) and their running
// batches, listed where the dashboard may run every admin command.
function renderResults(servers) {
  const keeping = servers.filter((server) => server.results);
  $('results-section').hidden = keeping.length === 0;
  if (keeping.length === 0) return;
  const kept = keeping.reduce((sum, server) => sum + server.results.kept, 0);
  const bytes = keeping.reduce((sum, server) => sum + server.results.bytes, 0);
  const running = keeping.reduce((sum, server) => sum + server.results.batchesRunning, 0);
  const size = bytes >= 1048576 ? `${(bytes / 1048576).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
  $('results-kept').textContent = `results kept: ${kept} (${size}) · batches running: ${running}`;
  const rows = [];
  for (const server of keeping) {
    for (const batch of server.results.batches ?? []) {
      const text = batch.gathering ? `${batch.ended}/${batch.total}, gathering` : `${batch.ended}/${batch.total}`;
      rows.push(
        element(
          'tr',
          { 'data-batch': batch.handle },
          cell(batch.handle, 'handle'),
          element('td', { className: 'server-column' }, server.server),
          cell(batch.functionName, 'function'),
          progressCell(batch.ended, batch.total, text),
          cell(batch.failed, 'failed', true),
        ),
      );
    }
  }
  fill('batches', 'batches-empty', rows);
}

function renderWorkers(servers) {
  const rows = [];
  for (const server of servers) {
    for (const worker of server.workers) {
      rows.push(
        element(
          'tr',
          { 'data-worker': worker.clientId },
          element('td', { className: 'server-column' }, server.server),
          cell(worker.ip, 'ip'),
          cell(worker.clientId, 'client-id'),
          cell(worker.functions.join(' '), 'functions'),
        ),
      );
    }
  }
  fill('workers', 'workers-empty', rows);
}

function renderAppWorkers(appWorkers) {
  $('app-section').hidden = !appWorkers;
  if (!appWorkers) return;
  fill(
    'app-workers',
    undefined,
    appWorkers.map((worker) =>
      element(
        'tr',
        {},
        cell(worker.functions.join(' ') || '–', 'functions'),
        cell(worker.connectedServers.join(' ') || 'none', 'connected'),
        cell(worker.jobsInFlight, 'in-flight', true),
      ),
    ),
  );
}

const SVG = 'http://www.w3.org/2000/svg';
/** The chart spans at least this many intervals, so that a young history does not crowd into one edge. */
const MIN_SPAN = 60;

function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

function renderThroughput(throughput) {
  $('throughput-section').hidden = !throughput;
  if (!throughput) return;
  $('throughput-source').textContent = throughput.source ? `(${throughput.source})` : '';
  const interval = throughput.intervalMs / 1000;
  // Rates over the time each sample really covered: timers drift, and a late sample holds more jobs.
  const points = throughput.points.map(([at, completed, failed], i, all) => {
    const seconds = i === 0 ? interval : Math.max(0.001, (at - all[i - 1][0]) / 1000);
    return [at, completed / seconds, failed / seconds];
  });
  const span = Math.min(throughput.capacity, Math.max(points.length, MIN_SPAN));
  const max = Math.max(1, ...points.map(([, completed, failed]) => Math.max(completed, failed)));
  const x = (i) => (((span - points.length + i) / Math.max(1, span - 1)) * 600).toFixed(1);
  const y = (rate) => (156 - (rate / max) * 146).toFixed(1);
  const coordinates = (index) => points.map((point, i) => `${x(i)},${y(point[index])}`).join(' ');
  const grid = [0.25, 0.5, 0.75, 1].map((fraction) =>
    svg('line', { x1: 0, x2: 600, y1: y(max * fraction), y2: y(max * fraction), class: 'grid' }),
  );
  const shapes = [...grid];
  if (points.length > 0) {
    shapes.push(svg('polygon', { points: `${x(0)},156 ${coordinates(1)} ${x(points.length - 1)},156`, class: 'area' }));
    shapes.push(svg('polyline', { points: coordinates(1), class: 'completed', 'vector-effect': 'non-scaling-stroke' }));
    shapes.push(svg('polyline', { points: coordinates(2), class: 'failed', 'vector-effect': 'non-scaling-stroke' }));
  }
  $('throughput').replaceChildren(...shapes);
  const last = points.at(-1) ?? [0, 0, 0];
  $('rate-completed').textContent = last[1].toFixed(1);
  $('rate-failed').textContent = last[2].toFixed(1);
  const window = span * interval;
  $('chart-max').textContent =
    `top ${max.toFixed(1)}/s · last ${window >= 120 ? `${Math.round(window / 60)} min` : `${Math.round(window)} s`}`;
}

function render() {
  if (!state) return;
  document.body.classList.toggle('hide-servers', state.servers.length < 2);
  document.body.classList.toggle('read-only', !state.actions);
  renderServers(state.servers);
  renderThroughput(state.throughput);
  renderFunctions(state.servers, state.actions);
  renderJobs(state.servers, state.actions);
  renderResults(state.servers);
  renderWorkers(state.servers);
  renderAppWorkers(state.appWorkers);
  $('updated').textContent = `updated ${new Date(state.at).toLocaleTimeString()}`;
}

function setLive(live) {
  $('live').textContent = live ? 'live' : 'reconnecting…';
  $('live').classList.toggle('off', !live);
}

async function start() {
  try {
    state = await (await fetch('api/state')).json();
    render();
  } catch {
    // The event stream below retries on its own.
  }
  const events = new EventSource('api/events');
  events.addEventListener('state', (event) => {
    state = JSON.parse(event.data);
    setLive(true);
    render();
  });
  events.addEventListener('error', () => setLive(false));
}

start();
