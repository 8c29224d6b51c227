// The pesc dashboard: one page, hash routes, only the /api/v1 endpoints, live through server-sent events.
'use strict';
(() => {
  const API = '/api/v1';
  const STATES = ['queued', 'running', 'done', 'failed', 'cancelled'];
  const PAGE_SIZE = 50;
  const session = { user: null, admin: false, csrf: null };
  let events = null;
  let page = {};

  // ---------- DOM ----------
  // Text always goes in as text nodes, so names and outputs from the farm can never become markup.
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else if (key === 'dataset') Object.assign(node.dataset, value);
      else if (key === 'style') node.style.cssText = value;
      else node.setAttribute(key, value === true ? '' : value);
    }
    return append(node, ...children);
  }
  function append(node, ...children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  function replace(node, ...children) {
    node.replaceChildren();
    return append(node, ...children);
  }
  // Draws a page unless the user has moved on: a slow answer for a page left behind must not cover the new one.
  function show(here, ...children) {
    if (here === page) replace(document.getElementById('main'), ...children);
  }

  // ---------- formatting ----------
  function age(t) {
    if (!t) return '';
    const s = Math.max(0, Date.now() / 1000 - t);
    if (s < 60) return `${Math.round(s)} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} d ago`;
  }
  function duration(s) {
    if (s === null || s === undefined || Number.isNaN(s)) return '–';
    if (s < 10) return `${s.toFixed(2)} s`;
    if (s < 120) return `${s.toFixed(1)} s`;
    if (s < 7200) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
    return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  }
  function bytes(n) {
    if (n === null || n === undefined) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return `${i ? n.toFixed(1) : n} ${units[i]}`;
  }
  function when(t) { return t ? new Date(t * 1000).toLocaleString() : '–'; }
  // 0,1,2,3,7,9,10 -> "0–3, 7, 9–10": a distribution map stays short for a big job.
  function ranges(ranks) {
    const sorted = [...ranks].sort((a, b) => a - b);
    const parts = [];
    for (let i = 0; i < sorted.length;) {
      let j = i;
      while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
      parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}–${sorted[j]}`);
      i = j + 1;
    }
    return parts.join(', ');
  }
  function totalOf(job) {
    return job.repetitions || (job.done + job.failed + job.running + job.queued) || 0;
  }
  function cancelledOf(job) {
    if (typeof job.cancelled === 'number') return job.cancelled;
    return Math.max(0, totalOf(job) - job.done - job.failed - job.running - job.queued);
  }
  function throttle(fn, ms) {
    let timer = null;
    let again = false;
    return function run() {
      if (timer) { again = true; return; }
      fn();
      timer = setTimeout(() => { timer = null; if (again) { again = false; run(); } }, ms);
    };
  }

  // ---------- API ----------
  class ApiError extends Error {
    constructor(message, status) { super(message); this.status = status; }
  }
  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (method !== 'GET' && session.csrf) headers['X-CSRF-Token'] = session.csrf;
    let payload = body;
    if (body !== undefined && !(body instanceof FormData)) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const response = await fetch(API + path, { method, headers, body: payload, credentials: 'same-origin' });
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : {}; } catch (e) { data = { error: text }; }
    if (response.status === 401 && path !== '/login' && path !== '/me') {
      signedOut();
      throw new ApiError('Your session ended; log in again.', 401);
    }
    if (!response.ok) throw new ApiError((data && data.error) || `${response.status} ${response.statusText}`, response.status);
    return data;
  }
  async function text(path) {
    const response = await fetch(API + path, { credentials: 'same-origin' });
    if (!response.ok) throw new ApiError(`${response.status} ${response.statusText}`, response.status);
    return response.text();
  }
  const jobPath = (id) => `/jobs/${encodeURIComponent(id)}`;

  // ---------- session and live events ----------
  function signedIn(me) {
    session.user = me.user;
    session.admin = !!me.admin;
    session.csrf = me.csrf_token;
    document.getElementById('nav').hidden = false;
    document.getElementById('who').hidden = false;
    document.getElementById('nav-admin').hidden = !session.admin;
    document.getElementById('who-name').textContent = session.user + (session.admin ? ' (admin)' : '');
    // A new login is a new session: a stream opened under the last one must not keep feeding this page.
    if (events) events.close();
    events = null;
    openEvents();
  }
  function signedOut() {
    session.user = null;
    session.csrf = null;
    if (events) events.close();
    events = null;
    document.getElementById('nav').hidden = true;
    document.getElementById('who').hidden = true;
    document.getElementById('live').hidden = true;
    if (location.hash !== '#/login') location.hash = '#/login';
  }
  function openEvents() {
    if (events) return;
    const live = document.getElementById('live');
    live.hidden = false;
    events = new EventSource(`${API}/events`, { withCredentials: true });
    events.onopen = () => { live.classList.add('on'); live.title = 'live updates: connected'; };
    events.onerror = () => { live.classList.remove('on'); live.title = 'live updates: reconnecting'; };
    // The server ends the stream with an error event when the token behind the session is revoked.
    events.addEventListener('error', (e) => {
      if (!e.data) return;
      events.close();
      events = null;
      api('GET', '/me').then(() => openEvents(), () => signedOut());
    });
    events.addEventListener('job', (e) => deliver('onJob', e.data));
    events.addEventListener('worker', (e) => deliver('onWorker', e.data));
  }
  function deliver(handler, data) {
    if (!page[handler]) return;
    try { page[handler](JSON.parse(data)); } catch (e) { console.error(e); }
  }

  // ---------- router ----------
  const routes = [
    [/^\/login$/, loginPage],
    [/^\/farm$/, farmPage],
    [/^\/jobs$/, jobsPage],
    [/^\/jobs\/([^/]+)$/, jobPage],
    [/^\/jobs\/([^/]+)\/ranks\/(\d+)$/, rankPage],
    [/^\/submit$/, submitPage],
    [/^\/admin$/, adminPage],
  ];
  function parseHash() {
    const raw = location.hash.replace(/^#/, '') || '/jobs';
    const [path, query] = raw.split('?');
    return { path, query: new URLSearchParams(query || '') };
  }
  async function route() {
    if (page.dispose) page.dispose();
    const here = {};
    page = here;
    const { path, query } = parseHash();
    if (!session.user && path !== '/login') {
      try { signedIn(await api('GET', '/me')); } catch (e) { signedOut(); return; }
    }
    for (const link of document.querySelectorAll('nav a')) {
      link.classList.toggle('active', path.startsWith('/' + link.dataset.route));
    }
    for (const [pattern, render] of routes) {
      const match = path.match(pattern);
      if (match) {
        try {
          await render(here, query, ...match.slice(1).map(decodeURIComponent));
        } catch (e) {
          show(here, failure(e));
        }
        return;
      }
    }
    location.hash = '#/jobs';
  }
  function failure(error) {
    const message = error.status === 404 ? 'Not found: it does not exist, or it is not yours.' : error.message;
    return h('div', { class: 'card' }, h('div', { class: 'error', id: 'page-error' }, message),
      h('a', { href: '#/jobs' }, '‹ Back to the jobs'));
  }
  function errorBox(id) { return h('div', { class: 'error', id, hidden: true }); }
  function showError(box, error) { box.textContent = error.message || String(error); box.hidden = false; }
  function head(title, subtitle, ...actions) {
    return h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, title), subtitle ? h('div', { class: 'sub' }, subtitle) : null),
      actions.length ? h('div', { class: 'row' }, actions) : null);
  }

  // ---------- login ----------
  async function loginPage(here) {
    const error = errorBox('login-error');
    const token = h('input', { type: 'password', id: 'token', autocomplete: 'off', placeholder: 'paste your token',
      required: true });
    const form = h('form', { class: 'card login stack', id: 'login-form', onsubmit: async (e) => {
      e.preventDefault();
      error.hidden = true;
      try {
        signedIn(await api('POST', '/login', { token: token.value.trim() }));
        location.hash = '#/jobs';
      } catch (err) { showError(error, err); }
    } },
    h('h1', {}, 'Log in to the farm'),
    h('p', { class: 'sub' }, 'Use the token your admin gave you (the same one `pesc` reads from PESC_TOKEN).'),
    h('label', { for: 'token' }, 'Token'), token, error,
    h('p', {}, h('button', { class: 'btn', type: 'submit', id: 'login-button' }, 'Log in')));
    show(here, form);
    token.focus();
  }

  // ---------- farm ----------
  async function farmPage(here, query) {
    const data = await api('GET', '/workers');
    const workers = new Map(data.workers.map((w) => [w.id, w]));
    const grid = h('div', { class: 'grid', id: 'workers' });
    const summary = h('div', { class: 'sub' });
    const drawWorkers = () => {
      const list = [...workers.values()].sort((a, b) => (a.host + a.id).localeCompare(b.host + b.id));
      const online = list.filter((w) => w.state === 'online');
      const slots = list.reduce((n, w) => n + (w.state === 'lost' ? 0 : w.slots), 0);
      const busy = list.reduce((n, w) => n + (w.state === 'lost' ? 0 : w.busy), 0);
      summary.textContent = `${list.length} workers, ${online.length} online; ${busy} of ${slots} slots busy`;
      replace(grid, list.length ? list.map(workerCard) : h('div', { class: 'card empty' }, 'No worker has joined yet.'));
    };
    drawWorkers();
    const distribution = h('div', { id: 'distribution' });
    const picker = h('select', { id: 'distribution-job', onchange: () => showDistribution(picker.value, distribution) },
      h('option', { value: '' }, 'choose a job…'));
    show(here,
      head('Farm', summary),
      grid,
      h('div', { class: 'card' },
        h('div', { class: 'spread' }, h('h2', {}, 'Distribution map'), h('div', { style: 'min-width:14rem' }, picker)),
        h('p', { class: 'sub' }, 'Which worker ran which ranks of a job.'), distribution));
    here.onWorker = (worker) => { workers.set(worker.id, worker); drawWorkers(); };
    const jobs = await api('GET', '/jobs?limit=100');
    for (const job of jobs.jobs) {
      append(picker, h('option', { value: job.id }, `${job.name || job.id} — ${job.state}${session.admin ? ` (${job.owner})` : ''}`));
    }
    // The newest job that has run something, unless the link names one.
    const ran = jobs.jobs.find((job) => job.done + job.failed + job.running > 0) || jobs.jobs[0];
    const wanted = query.get('job') || (ran && ran.id);
    if (wanted) { picker.value = wanted; showDistribution(wanted, distribution); }
  }
  function workerCard(w) {
    const reasons = [];
    if (w.reason) reasons.push(h('div', { class: 'waiting' }, w.reason));
    if (w.owner_present) reasons.push(h('span', { class: 'chip warn' }, 'owner present'));
    if (w.disk_full) reasons.push(h('span', { class: 'chip warn' }, 'disk full'));
    if (w.throttled && w.throttled !== w.reason) reasons.push(h('div', { class: 'waiting' }, w.throttled));
    const busyShare = w.slots ? (100 * w.busy) / w.slots : 0;
    const hasCpu = typeof w.cpu_percent === 'number';
    const cpu = Math.max(0, Math.min(100, w.cpu_percent || 0));
    const chips = (label, items, warn) => (items && items.length
      ? h('div', {}, h('span', { class: 'muted' }, `${label}: `), items.map((x) => h('span', { class: warn ? 'chip warn' : 'chip' }, x)))
      : null);
    const gpuName = (g) => (typeof g === 'string' ? g
      : `${g.name || 'GPU'}${g.compute_capability ? ` (${g.compute_capability})` : ''}${g.memory_bytes ? `, ${bytes(g.memory_bytes)}` : ''}`);
    const unavailable = (w.unavailable_domains || []).map((d) => (typeof d === 'string' ? d : `${d.domain}: ${d.why}`));
    const footer = [w.version ? `version ${w.version}` : null, w.ranks_done !== undefined ? `${w.ranks_done} ranks done` : null,
      w.state !== 'online' && w.last_seen ? `last seen ${age(w.last_seen)}` : null].filter(Boolean).join(' · ');
    return h('div', { class: 'card worker', dataset: { workerId: w.id, state: w.state } },
      h('div', { class: 'spread' },
        h('div', {}, h('div', { class: 'title', style: 'font-weight:600' }, w.host || w.id),
          h('div', { class: 'sub mono' }, w.id)),
        h('span', { class: `badge ${w.state}` }, w.state)),
      reasons.length ? h('div', { style: 'margin:.4rem 0' }, reasons) : null,
      h('div', { style: 'margin-top:.6rem' },
        h('div', { class: 'spread sub' }, h('span', {}, 'Slots'), h('span', {}, `${w.busy} busy of ${w.slots}`)),
        h('div', { class: 'bar' }, h('i', { class: 'busy', style: `width:${busyShare}%` })),
        hasCpu ? [h('div', { class: 'spread sub', style: 'margin-top:.35rem' }, h('span', {}, 'Host CPU'),
          h('span', {}, `${cpu.toFixed(0)} %`)),
        h('div', { class: 'bar' }, h('i', { class: 'cpu', style: `width:${cpu}%` }))] : null),
      h('div', { style: 'margin-top:.6rem;font-size:.88rem' },
        chips('Rooms', w.rooms), chips('GPUs', (w.gpus || []).map(gpuName)), chips('Domains', w.domains),
        chips('Cannot run', unavailable, true),
        h('div', { class: 'sub' }, footer)));
  }
  async function showDistribution(id, box) {
    if (!id) { replace(box); return; }
    try {
      const data = await api('GET', `${jobPath(id)}/distribution`);
      const rows = data.workers.filter((w) => w.ranks.length);
      replace(box, rows.length ? rows.map((w) => h('div', { class: 'dist-row', dataset: { worker: w.worker } },
        h('div', { class: 'spread' }, h('b', {}, w.worker), h('span', { class: 'sub' }, `${w.ranks.length} ranks`)),
        h('div', { class: 'ranks' }, ranges(w.ranks))))
        : h('div', { class: 'empty' }, 'No rank of this job has run yet.'));
    } catch (e) { replace(box, failure(e)); }
  }

  // ---------- jobs ----------
  function progressBar(job) {
    const total = totalOf(job) || 1;
    const part = (cls, n) => h('i', { class: cls, style: `width:${(100 * n) / total}%`, title: `${n} ${cls}` });
    return h('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': total,
      'aria-valuenow': job.done + job.failed },
    part('done', job.done), part('failed', job.failed), part('cancelled', cancelledOf(job)), part('running', job.running));
  }
  function progressText(job) {
    const total = totalOf(job);
    const bits = [`${job.done} of ${total} done`];
    if (job.failed) bits.push(`${job.failed} failed`);
    if (job.running) bits.push(`${job.running} running`);
    if (job.queued) bits.push(`${job.queued} queued`);
    if (cancelledOf(job)) bits.push(`${cancelledOf(job)} cancelled`);
    return bits.join(' · ');
  }
  function jobCard(job) {
    return h('a', { class: 'card job-card', href: `#/jobs/${encodeURIComponent(job.id)}`,
      dataset: { jobId: job.id, state: job.state, done: job.done } },
    h('div', { class: 'spread' },
      h('div', {}, h('div', { class: 'title' }, job.name || job.id),
        h('div', { class: 'sub' }, h('span', { class: 'mono' }, job.id), ` · ${job.owner} · ${age(job.submitted_at)}`)),
      h('span', { class: `badge ${job.state}` }, job.state)),
    h('div', { style: 'margin-top:.6rem' }, progressBar(job)),
    h('div', { class: 'sub', style: 'margin-top:.3rem' }, progressText(job)),
    job.waiting_reason ? h('div', { class: 'waiting' }, `Waiting: ${job.waiting_reason}`) : null,
    job.failure ? h('div', { class: 'waiting' }, job.failure) : null);
  }
  function usageCard(usage) {
    if (!usage || !usage.length) return null;
    const most = Math.max(1, ...usage.map((u) => u.running_slots));
    return h('div', { class: 'card', id: 'usage' },
      h('h2', {}, 'Fair share'),
      h('p', { class: 'sub' }, 'Slots each user holds now, against the share the scheduler gives them.'),
      usage.every((u) => !u.running_slots) ? h('div', { class: 'sub' }, 'No one holds a slot right now.') : usage.map((u) => h('div', { style: 'margin:.45rem 0' },
        h('div', { class: 'spread sub' }, h('b', { style: 'color:var(--ink)' }, u.user),
          h('span', {}, `${u.running_slots} slots · share ${(100 * (u.share || 0)).toFixed(0)} %`)),
        h('div', { class: 'bar' }, h('i', { class: 'busy', style: `width:${(100 * u.running_slots) / most}%` })))));
  }
  function tabs(id, choices, current, pick) {
    return h('div', { class: 'tabs', id },
      choices.map(([value, label]) => h('button', { type: 'button', class: value === current ? 'on' : null,
        dataset: { value }, onclick: () => pick(value) }, label)));
  }
  function pager(offset, count, total, move) {
    if (total <= count && offset === 0) return h('div', { class: 'pager sub' }, `${total} in all`);
    return h('div', { class: 'pager' },
      h('button', { class: 'btn secondary', type: 'button', disabled: offset === 0, id: 'page-prev',
        onclick: () => move(Math.max(0, offset - PAGE_SIZE)) }, '‹ Previous'),
      h('span', { class: 'sub' }, `${total ? offset + 1 : 0}–${offset + count} of ${total}`),
      h('button', { class: 'btn secondary', type: 'button', disabled: offset + count >= total, id: 'page-next',
        onclick: () => move(offset + PAGE_SIZE) }, 'Next ›'));
  }
  async function jobsPage(here, query) {
    const state = query.get('state') || '';
    const offset = Number(query.get('offset') || 0);
    const go = (s, o) => { location.hash = `#/jobs?state=${s}&offset=${o}`; };
    const data = await api('GET', `/jobs?state=${state}&offset=${offset}&limit=${PAGE_SIZE}`);
    const list = h('div', { id: 'jobs' });
    const cards = new Map();
    for (const job of data.jobs) cards.set(job.id, jobCard(job));
    append(list, data.jobs.length ? [...cards.values()]
      : h('div', { class: 'card empty' }, state ? `No ${state} job.` : 'No job yet. ', state ? null : h('a', { href: '#/submit' }, 'Submit one.')));
    show(here,
      head(session.admin ? 'All jobs' : 'Your jobs', session.admin ? 'Every user\'s jobs, newest first' : 'Newest first',
        h('a', { class: 'btn', href: '#/submit' }, 'New job')),
      usageCard(data.usage),
      tabs('job-states', [['', 'All'], ...STATES.map((s) => [s, s[0].toUpperCase() + s.slice(1)])], state, (s) => go(s, 0)),
      list,
      pager(offset, data.jobs.length, data.total, (o) => go(state, o)));
    const reload = throttle(() => { if (page === here) route(); }, 2000);
    here.onJob = (job) => {
      const card = cards.get(job.id);
      if (card && (!state || job.state === state)) {
        const fresh = jobCard(job);
        card.replaceWith(fresh);
        cards.set(job.id, fresh);
      } else if (!card && offset === 0 && (!state || job.state === state)) {
        reload();
      }
    };
  }

  // ---------- one job ----------
  async function jobPage(here, query, id) {
    let job = await api('GET', jobPath(id));
    if (here !== page) return;
    const badge = h('span', { id: 'job-state' });
    const progress = h('div', { id: 'job-progress' });
    const stats = h('div', { class: 'stats', id: 'job-stats' });
    const cancelError = errorBox('cancel-error');
    const cancel = h('button', { class: 'btn danger', type: 'button', id: 'cancel-job', onclick: async () => {
      if (!confirm(`Cancel every unfinished rank of ${job.name || job.id}?`)) return;
      cancel.disabled = true;
      try { await api('POST', `${jobPath(id)}/cancel`); } catch (e) { showError(cancelError, e); cancel.disabled = false; }
    } }, 'Cancel job');
    const remove = h('button', { class: 'btn danger', type: 'button', id: 'delete-job', onclick: async () => {
      if (!confirm(`Delete ${job.name || job.id} and every output it kept?`)) return;
      try { await api('DELETE', jobPath(id)); location.hash = '#/jobs'; } catch (e) { showError(cancelError, e); }
    } }, 'Delete');
    const archive = h('a', { class: 'btn', id: 'download-job', href: `${API}${jobPath(id)}/archive`,
      download: `${id}.tar.gz` }, 'Download all');
    const timeline = h('div', { class: 'timeline', id: 'timeline' });
    const ranks = h('div', { id: 'rank-table' });
    const report = h('div', { class: 'report', id: 'report' });
    const rankView = { status: query.get('status') || '', offset: 0 };

    const drawJob = () => {
      replace(badge, h('span', { class: `badge ${job.state}` }, job.state));
      cancel.hidden = !(job.state === 'queued' || job.state === 'running');
      remove.hidden = !cancel.hidden;
      replace(progress, progressBar(job), h('div', { class: 'spread sub', style: 'margin-top:.35rem' },
        h('span', { id: 'job-progress-text', dataset: { done: job.done, failed: job.failed, total: totalOf(job) } },
          progressText(job)),
        h('span', {}, `${Math.round((100 * (job.done + job.failed)) / (totalOf(job) || 1))} %`)),
      job.waiting_reason ? h('div', { class: 'waiting' }, `Waiting: ${job.waiting_reason}`) : null,
      job.failure ? h('div', { class: 'waiting' }, job.failure) : null);
      const stat = (label, value, id) => h('div', { class: 'stat' }, h('span', {}, label), h('b', { id }, value));
      replace(stats,
        stat('Ranks', totalOf(job)),
        stat('Wall time', duration(wallOf(job, extra)), 'job-wall'),
        stat('Speedup', extra.speedup ? `${extra.speedup.toFixed(2)}×` : '–'),
        stat('Workers', extra.workers ?? '–'),
        stat('Submitted', age(job.submitted_at)));
    };
    // Speedup comes with the timeline and the workers with the distribution: both need every rank.
    const extra = { speedup: job.speedup, workers: job.workers_used };
    let lastTimeline = null;
    const redrawOnResize = throttle(() => {
      if (lastTimeline) replace(timeline, timelineSvg(lastTimeline, timeline.clientWidth));
    }, 300);
    window.addEventListener('resize', redrawOnResize);
    const clock = setInterval(() => {
      const wall = document.getElementById('job-wall');
      if (wall && !job.finished_at) wall.textContent = duration(wallOf(job, extra));
    }, 1000);
    here.dispose = () => { window.removeEventListener('resize', redrawOnResize); clearInterval(clock); };
    const drawTimeline = async () => {
      try {
        const [spans, spread] = await Promise.all([api('GET', `${jobPath(id)}/timeline`), api('GET', `${jobPath(id)}/distribution`)]);
        lastTimeline = spans;
        replace(timeline, timelineSvg(spans, timeline.clientWidth));
        extra.speedup = spans.speedup ?? extra.speedup;
        extra.wall = spans.wall_s ?? extra.wall;
        extra.workers = spread.workers.filter((w) => w.ranks.length).length;
        drawJob();
      } catch (e) { replace(timeline, failure(e)); }
    };
    // Only the newest request draws: an older one answering late would show the page the user left.
    let rankRequests = 0;
    const drawRanks = async () => {
      const request = ++rankRequests;
      try {
        const data = await api('GET',
          `${jobPath(id)}/ranks?status=${rankView.status}&offset=${rankView.offset}&limit=${PAGE_SIZE}`);
        if (request !== rankRequests) return;
        replace(ranks,
          tabs('rank-states', [['', 'All'], ...STATES.map((s) => [s, s[0].toUpperCase() + s.slice(1)])], rankView.status,
            (s) => { rankView.status = s; rankView.offset = 0; drawRanks(); }),
          rankTable(id, data.ranks),
          pager(rankView.offset, data.ranks.length, data.total, (o) => { rankView.offset = o; drawRanks(); }));
      } catch (e) { replace(ranks, failure(e)); }
    };
    const drawReport = () => {
      if (!['done', 'failed', 'cancelled'].includes(job.state) || report.firstChild) return;
      replace(report, h('h2', {}, 'Speedup report'),
        h('img', { src: `${API}${jobPath(id)}/report.svg`, alt: 'the job\'s speedup report', id: 'report-svg' }));
      report.classList.add('card');
    };

    show(here,
      head(job.name || job.id, h('span', {}, badge, ' ', h('span', { class: 'mono' }, job.id), ` · ${job.owner}`),
        h('a', { class: 'btn secondary', href: `#/farm?job=${encodeURIComponent(id)}` }, 'Distribution'), archive, cancel, remove),
      cancelError,
      h('div', { class: 'card' }, progress, h('div', { style: 'margin-top:.9rem' }, stats)),
      h('div', { class: 'card' }, h('h2', {}, 'Timeline'),
        h('p', { class: 'sub' }, 'One row per worker slot; each bar is a rank.'), timeline),
      h('div', { class: 'card' }, h('h2', {}, 'Ranks'), ranks),
      report);
    drawJob();
    drawReport();
    await Promise.all([drawTimeline(), drawRanks()]);
    const refresh = throttle(() => { drawTimeline(); drawRanks(); }, 1000);
    here.onJob = (update) => {
      if (update.id !== id) return;
      job = Object.assign(job, update);
      drawJob();
      drawReport();
      refresh();
    };
  }
  function rankTable(id, ranks) {
    if (!ranks.length) return h('div', { class: 'empty' }, 'No rank here.');
    const cells = (r) => [
      h('td', { class: 'num' }, h('a', { href: `#/jobs/${encodeURIComponent(id)}/ranks/${r.rank}` }, r.rank)),
      h('td', {}, h('span', { class: `badge ${r.status}` }, r.status)),
      h('td', { class: 'wide' }, r.failure_class || ''),
      h('td', {}, r.worker || '–'),
      h('td', { class: 'num wide' }, r.attempts ?? ''),
      h('td', { class: 'num' }, r.status === 'running' && r.start ? `${duration(Date.now() / 1000 - r.start)}…` : duration(r.duration_s)),
      h('td', { class: 'num wide' }, duration(r.cpu_s)),
      h('td', { class: 'num wide' }, r.max_rss_kb ? bytes(r.max_rss_kb * 1024) : '–')];
    return h('div', { style: 'overflow-x:auto' }, h('table', { class: 'list' },
      h('thead', {}, h('tr', {}, h('th', { class: 'num' }, 'Rank'), h('th', {}, 'Status'), h('th', { class: 'wide' }, 'Failure'),
        h('th', {}, 'Worker'), h('th', { class: 'num wide' }, 'Attempts'), h('th', { class: 'num' }, 'Time'),
        h('th', { class: 'num wide' }, 'CPU'), h('th', { class: 'num wide' }, 'Memory'))),
      h('tbody', {}, ranks.map((r) => h('tr', { class: 'clickable', dataset: { rank: r.rank, status: r.status },
        onclick: () => { location.hash = `#/jobs/${encodeURIComponent(id)}/ranks/${r.rank}`; } }, cells(r))))));
  }
  // The same picture as the SVG report: one row per worker slot, one bar per rank attempt.
  // A finished job's wall time is the report's; a running one's counts up from its submission.
  function wallOf(job, extra) {
    if (job.finished_at) return extra.wall ?? job.finished_at - job.submitted_at;
    return job.submitted_at ? Date.now() / 1000 - job.submitted_at : job.wall_s;
  }
  function timelineSvg(data, available) {
    const NS = 'http://www.w3.org/2000/svg';
    const svg = (tag, attrs, ...kids) => {
      const node = document.createElementNS(NS, tag);
      for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
      for (const kid of kids) node.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
      return node;
    };
    if (!data.spans.length) return h('div', { class: 'empty' }, 'No rank has finished yet: each bar appears as its rank ends.');
    const now = Date.now() / 1000;
    const start = Math.min(...data.spans.map((s) => s.start));
    const end = Math.max(...data.spans.map((s) => s.end || now), start + 1);
    const slotKey = (s) => `${s.worker}#${s.slot}`;
    const slots = data.slots.length ? data.slots : [...new Map(data.spans.map((s) => [slotKey(s), s])).values()];
    const row = new Map(slots.map((s, i) => [slotKey(s), i]));
    const laneOf = (s) => (typeof s.lane === 'number' ? s.lane : row.get(slotKey(s)));
    // Drawn at the width it is shown at, so its labels stay readable on a phone.
    const width = Math.max(300, Math.round(available || 900));
    const label = width < 560 ? 96 : 150;
    const nameLength = width < 560 ? 10 : 18;
    const rowHeight = 20;
    const plot = width - label - 10;
    const x = (t) => label + ((t - start) / (end - start)) * plot;
    const height = slots.length * rowHeight + 24;
    const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, width: '100%', role: 'img',
      'aria-label': 'timeline of the job' });
    slots.forEach((s, i) => {
      const y = i * rowHeight;
      if (i % 2) root.append(svg('rect', { x: label, y, width: plot, height: rowHeight, fill: '#f6f8fb' }));
      const name = `${s.worker}`.length > nameLength ? `…${`${s.worker}`.slice(1 - nameLength)}` : s.worker;
      root.append(svg('text', { x: label - 6, y: y + 14, 'text-anchor': 'end' }, `${name} · ${s.slot}`));
    });
    for (const p of data.paused || []) {
      const x0 = x(Math.max(p.start, start));
      root.append(svg('rect', { x: x0, y: p.first_lane * rowHeight, width: Math.max(1.5, x(Math.min(p.end || now, end)) - x0),
        height: p.lanes * rowHeight, fill: '#d9932b', 'fill-opacity': 0.22 }, svg('title', {}, `paused: ${p.reason}`)));
    }
    const colour = { done: '#2e9e5b', failed: '#d64545', running: '#2f6fdf', cancelled: '#8d7b68', queued: '#b4bfcc' };
    for (const s of data.spans) {
      const i = laneOf(s);
      if (i === undefined) continue;
      const x0 = x(s.start);
      const bar = svg('rect', { x: x0, y: i * rowHeight + 3, width: Math.max(1.5, x(s.end || now) - x0 - 1),
        height: rowHeight - 6, rx: 3, fill: colour[s.status] || '#999' },
      svg('title', {}, `rank ${s.rank}: ${s.status}, ${duration((s.end || now) - s.start)}`));
      root.append(bar);
      const barWidth = x(s.end || now) - x0;
      if (barWidth > 8 * (`${s.rank}`.length + 1)) {
        root.append(svg('text', { x: x0 + barWidth / 2, y: i * rowHeight + 14, 'text-anchor': 'middle', class: 'in-bar' }, s.rank));
      }
    }
    const axisY = slots.length * rowHeight + 16;
    const ticks = width < 560 ? 2 : 4;
    for (let k = 0; k <= ticks; k++) {
      const t = start + ((end - start) * k) / ticks;
      root.append(svg('text', { x: x(t), y: axisY, 'text-anchor': k === 0 ? 'start' : k === ticks ? 'end' : 'middle' },
        duration(t - start)));
    }
    return h('div', {}, root, h('div', { class: 'legend' },
      Object.entries(colour).slice(0, 4).map(([k, c]) => h('span', {}, h('i', { style: `background:${c}` }), k))));
  }

  // ---------- one rank ----------
  async function rankPage(here, query, id, rank) {
    const path = `${jobPath(id)}/ranks/${rank}`;
    const info = await api('GET', path);
    const output = h('pre', { class: 'output', id: 'rank-output' }, 'loading…');
    const files = info.files || [];
    show(here,
      head(`Rank ${info.rank}`, h('span', {}, h('a', { href: `#/jobs/${encodeURIComponent(id)}` }, `job ${id}`), ' · ',
        h('span', { class: `badge ${info.status}` }, info.status)),
      h('a', { class: 'btn', id: 'download-rank', href: `${API}${path}/archive`, download: `${id}-rank-${rank}.tar.gz` },
        'Download rank')),
      h('div', { class: 'card' }, h('div', { class: 'stats' },
        [['Worker', info.worker || '–'], ['Attempts', info.attempts ?? '–'], ['Time', duration(info.duration_s)],
          ['CPU', duration(info.cpu_s)], ['Memory', info.max_rss_kb ? bytes(info.max_rss_kb * 1024) : '–'],
          ['Failure', info.failure_class || 'none'], ['Exit code', info.signal ? `signal ${info.signal}` : info.exit_code ?? '–']].map(([k, v]) => h('div', { class: 'stat' }, h('span', {}, k), h('b', {}, v))))),
      info.error ? h('div', { class: 'error', id: 'rank-error' }, info.error) : null,
      h('div', { class: 'card' }, h('h2', {}, 'output.txt'), output),
      h('div', { class: 'card' }, h('h2', {}, 'Files'),
        files.length ? h('table', { class: 'list', id: 'rank-files' }, h('tbody', {}, files.map((f) => h('tr', {},
          h('td', {}, h('a', { href: `${API}${path}/files/${encodeURIComponent(f.name)}`, download: f.name.split('/').pop() },
            f.name)),
          h('td', { class: 'num' }, bytes(f.size))))))
          : h('div', { class: 'empty' }, 'This rank left no files.')));
    try {
      const body = await text(`${path}/output`);
      output.textContent = body || '(empty)';
    } catch (e) {
      output.textContent = e.status === 404 ? '(no output yet)' : e.message;
    }
  }

  // ---------- submit ----------
  function field(label, input, hint) {
    return h('div', {}, h('label', { for: input.id }, label, hint ? h('span', { class: 'hint' }, ` — ${hint}`) : null), input);
  }
  function input(id, attrs) { return h('input', { id, name: id, type: 'text', ...attrs }); }
  function check(id, label) {
    return h('label', { class: 'check' }, h('input', { type: 'checkbox', id, name: id }), label);
  }
  function listOf(value, separator) {
    return value.split(separator).map((s) => s.trim()).filter(Boolean);
  }
  async function submitPage(here) {
    const error = errorBox('submit-error');
    const domains = h('datalist', { id: 'domain-list' }, ['native', 'python', 'R', 'shell', 'java'].map((d) => h('option', { value: d })));
    const form = h('form', { class: 'card stack', id: 'submit-form' },
      h('div', { class: 'form-grid' },
        field('Process', input('process', { type: 'file', required: true }), 'a script, a binary or a .zip / .tar.gz'),
        field('Repetitions', input('repetitions', { type: 'number', min: 1, value: 10, required: true }), 'how many ranks'),
        field('Domain', input('domain', { list: 'domain-list', placeholder: 'from the file name' }),
          'native, python, R, shell, java or a template with {entry}'),
        field('Name', input('name', { placeholder: 'a label for the job' }))),
      domains,
      field('Parameters', h('textarea', { id: 'params', name: 'params', placeholder: 'one per line' }),
        'given to every rank, one per line, byte for byte'),
      h('div', { class: 'form-grid' },
        field('Rooms', input('rooms', { placeholder: 'public' }), 'comma separated'),
        field('GPUs per rank', input('gpus', { type: 'number', min: 0, value: 0 })),
        field('Shared files', input('shared', { type: 'file', multiple: true }), 'every rank finds them in its app_dir')),
      h('details', {}, h('summary', {}, 'More options (retries, limits, placement)'),
        h('div', { class: 'form-grid' },
          field('Entry', input('entry'), 'the file to run inside an archive'),
          field('Timeout (s)', input('timeout_s', { type: 'number', min: 0, step: 'any' }), '0: none'),
          field('Max attempts', input('max_attempts', { type: 'number', min: 1 })),
          field('Checkpoint interval (s)', input('checkpoint_interval_s', { type: 'number', min: 0, step: 'any' })),
          field('Seed', input('seed', { inputmode: 'numeric' }), 'given as PESC_SEED'),
          field('Memory', input('memory', { placeholder: 'e.g. 512M' }), 'K, M, G: powers of 1024'),
          field('CPU time (s)', input('cpu_time', { type: 'number', min: 0, step: 'any' })),
          field('Output size', input('output_size', { placeholder: 'e.g. 100M' }), 'output_dir in all'),
          field('Open files', input('open_files', { type: 'number', min: 0 })),
          field('Processes', input('processes', { type: 'number', min: 0 }), 'and threads at once'),
          field('Min GPU capability', input('min_capability', { placeholder: 'e.g. 7.5' })),
          field('Notify', input('notify', { placeholder: 'mailto:you@lab, https://…' }), 'comma separated')),
        h('div', { class: 'row', style: 'margin-top:.8rem;gap:1.2rem' },
          check('same_machine', 'All ranks on one worker'), check('parallel', 'Parallel gang'),
          check('network', 'Network access'), check('no_duplicates', 'No duplicate runs'))),
      error,
      h('p', {}, h('button', { class: 'btn', type: 'submit', id: 'submit-button' }, 'Submit job')));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.hidden = true;
      const button = document.getElementById('submit-button');
      button.disabled = true;
      try {
        const created = await api('POST', '/jobs', submission(form));
        location.hash = `#/jobs/${encodeURIComponent(created.id)}`;
      } catch (err) { showError(error, err); } finally { button.disabled = false; }
    });
    show(here, head('Submit a job', 'The same options as `pesc run`; the coordinator checks them as it does for every client.'),
      form);
  }
  // Only what the user filled in goes into the spec, so the coordinator's defaults stay its own.
  function submission(form) {
    const value = (id) => form.querySelector(`#${id}`).value.trim();
    const spec = {};
    const number = (id) => { if (value(id) !== '') spec[id] = Number(value(id)); };
    const string = (id) => { if (value(id) !== '') spec[id] = value(id); };
    const flag = (id) => { if (form.querySelector(`#${id}`).checked) spec[id] = true; };
    ['name', 'domain', 'entry'].forEach(string);
    ['repetitions', 'timeout_s', 'max_attempts', 'checkpoint_interval_s', 'cpu_time', 'min_capability', 'open_files',
      'processes'].forEach(number);
    ['memory', 'output_size'].forEach(string);
    if (value('gpus') !== '' && Number(value('gpus')) > 0) spec.gpus = Number(value('gpus'));
    ['same_machine', 'parallel', 'network', 'no_duplicates'].forEach(flag);
    const params = form.querySelector('#params').value.split('\n').filter((line) => line !== '');
    if (params.length) spec.params = params;
    if (value('rooms')) spec.rooms = listOf(value('rooms'), ',');
    if (value('notify')) spec.notify = listOf(value('notify'), ',');
    const body = new FormData();
    const process = form.querySelector('#process').files[0];
    if (process) body.append('process', process, process.name);
    let json = JSON.stringify(spec);
    // A seed is a 64-bit number: spliced in as written, since a JavaScript number would round it.
    const seed = value('seed');
    if (seed !== '') json = `${json.slice(0, -1)}${json === '{}' ? '' : ','}"seed":${/^\d+$/.test(seed) ? seed : JSON.stringify(seed)}}`;
    body.append('spec', new Blob([json], { type: 'application/json' }), 'spec.json');
    for (const file of form.querySelector('#shared').files) body.append('shared', file, file.name);
    return body;
  }

  // ---------- admin ----------
  // The store keeps one record per token; a person or a worker name is one row, revoked when all of its tokens are.
  function byName(tokens) {
    const rows = new Map();
    for (const t of tokens) {
      const row = rows.get(t.name) || { name: t.name, role: t.role, created_at: t.created_at, valid: 0, revoked_at: t.revoked_at };
      row.created_at = Math.min(row.created_at || Infinity, t.created_at || Infinity);
      if (!t.revoked_at) row.valid += 1;
      row.revoked_at = row.valid ? null : Math.max(row.revoked_at || 0, t.revoked_at || 0);
      if (t.role === 'admin') row.role = 'admin';
      rows.set(t.name, row);
    }
    return [...rows.values()];
  }
  async function adminPage(here) {
    if (!session.admin) { show(here, failure(new ApiError('Only the admin sees this page.', 403))); return; }
    const notice = h('div', { class: 'notice', id: 'new-token', hidden: true });
    const error = errorBox('admin-error');
    const users = h('div', { id: 'admin-users' });
    const workerTokens = h('div', { id: 'admin-worker-tokens' });
    const rooms = h('div', { id: 'admin-rooms' });
    const act = async (fn) => {
      error.hidden = true;
      try { await fn(); await drawAll(); } catch (e) { showError(error, e); }
    };
    const showToken = (who, token) => {
      replace(notice, h('b', {}, `New token for ${who}`), ' (shown only now; copy it): ', h('code', { id: 'new-token-value' }, token));
      notice.hidden = false;
    };
    const tokenTable = (list, actions) => (list.length ? h('table', { class: 'list' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', { class: 'wide' }, 'Created'), h('th', {}, 'State'), h('th', {}))),
      h('tbody', {}, list.map((t) => h('tr', { dataset: { name: t.name } },
        h('td', {}, h('b', {}, t.name), t.role && !['user', 'worker'].includes(t.role)
          ? h('span', { class: 'chip', style: 'margin-left:.4rem' }, t.role) : null,
        t.valid > 1 ? h('span', { class: 'sub' }, ` · ${t.valid} tokens`) : null),
        h('td', { class: 'wide sub' }, when(t.created_at)),
        h('td', {}, t.revoked_at ? h('span', { class: 'badge cancelled' }, 'revoked') : h('span', { class: 'badge done' }, 'valid')),
        h('td', { class: 'num' }, t.revoked_at ? null : actions(t))))))
      : h('div', { class: 'empty' }, 'None yet.'));
    const revoke = (t) => h('button', { class: 'btn danger', type: 'button', dataset: { revoke: t.name },
      onclick: () => act(async () => {
        if (confirm(`Revoke every token of ${t.name}?`)) await api('DELETE', `/admin/tokens/${encodeURIComponent(t.name)}`);
      }) }, 'Revoke');
    const drawAll = async () => {
      const [u, w, r] = await Promise.all([api('GET', '/admin/users'), api('GET', '/admin/worker-tokens'), api('GET', '/admin/rooms')]);
      replace(users, tokenTable(byName(u.users || u.tokens), (t) => h('span', { class: 'row', style: 'justify-content:flex-end' },
        h('button', { class: 'btn secondary', type: 'button', dataset: { issue: t.name },
          onclick: () => act(async () => {
            const made = await api('POST', `/admin/users/${encodeURIComponent(t.name)}/tokens`);
            showToken(t.name, made.token);
          }) }, 'New token'), t.role === 'admin' ? null : revoke(t))));
      replace(workerTokens, tokenTable(byName(w.tokens), revoke));
      replace(rooms, r.rooms.length ? r.rooms.map((room) => h('div', { class: 'dist-row spread', dataset: { room: room.room } },
        h('div', {}, h('b', {}, room.room), h('div', { class: 'sub' },
          room.users && room.users.length ? `only ${room.users.join(', ')}` : 'open to everyone')),
        room.users && room.users.length ? h('button', { class: 'btn secondary', type: 'button',
          onclick: () => act(() => api('POST', '/admin/rooms', { room: room.room, users: [] })) }, 'Open to all') : null))
        : h('div', { class: 'empty' }, 'No room is restricted.'));
    };
    const inlineForm = (id, fields, label, submit) => {
      const form = h('form', { class: 'row', id, style: 'margin-top:.8rem' }, fields,
        h('button', { class: 'btn', type: 'submit' }, label));
      form.addEventListener('submit', (e) => { e.preventDefault(); act(() => submit(form)); });
      return form;
    };
    const newUser = input('new-user', { placeholder: 'user name', style: 'flex:1;min-width:10rem', required: true });
    const newWorker = input('new-worker-token', { placeholder: 'name (optional)', style: 'flex:1;min-width:10rem' });
    const roomName = input('room-name', { placeholder: 'room', style: 'flex:1;min-width:7rem', required: true });
    const roomUsers = input('room-users', { placeholder: 'users, comma separated', style: 'flex:2;min-width:10rem' });
    show(here, head('Admin', 'Users and their tokens, worker join tokens, and who may use each room.'),
      notice, error,
      h('div', { class: 'card' }, h('h2', {}, 'Users'), users,
        inlineForm('add-user', newUser, 'Add user', async () => {
          const made = await api('POST', '/admin/users', { name: newUser.value.trim() });
          showToken(made.name || newUser.value.trim(), made.token);
          newUser.value = '';
        })),
      h('div', { class: 'card' }, h('h2', {}, 'Worker tokens'), h('p', { class: 'sub' }, 'Workers join the farm with one of these.'),
        workerTokens,
        inlineForm('add-worker-token', newWorker, 'New worker token', async () => {
          const made = await api('POST', '/admin/worker-tokens', { name: newWorker.value.trim() });
          showToken(made.name || 'a worker', made.token);
          newWorker.value = '';
        })),
      h('div', { class: 'card' }, h('h2', {}, 'Rooms'), rooms,
        inlineForm('restrict-room', [roomName, roomUsers], 'Restrict', async () => {
          await api('POST', '/admin/rooms', { room: roomName.value.trim(), users: listOf(roomUsers.value, ',') });
          roomName.value = '';
          roomUsers.value = '';
        })));
    await drawAll();
  }

  // ---------- start ----------
  document.getElementById('logout').addEventListener('click', async () => {
    try { await api('POST', '/logout'); } catch (e) { console.error(e); }
    signedOut();
  });
  window.addEventListener('hashchange', route);
  route();
})();
