#!/usr/bin/env node
// load.js - load generator of bench/chat. Speaks docs/PROTOCOL.md with the `ws`
// client against omnirouterd or relay.js (same frames, same client behaviour).
//
// Chat scenarios (--scenarios sat,rate):
//   1. open M agents (login, presence available) and N customers (hello, wait
//      until assigned);
//   sat:  --inflight messages in flight in all (sent and not yet both acked
//         to the customer and delivered to the agent), at most one per
//         customer, the customers taking turns: a new message as soon as one
//         completes. Saturation with a bounded backlog: queueing stays well
//         under omnirouterd's bus.ack_timeout_ms (2 s), so resends do not add
//         work. Reported: messages/s delivered to agents.
//   rate: a fixed --rate messages/s in all, round robin over the customers,
//         from a 1 ms scheduler. Reported: p50/p99/... customer->agent latency.
//         --rate takes a list: "20000,auto50" runs 20000/s, then 50 % of the
//         saturation rate just measured.
//   Each scenario: --*-warmup seconds, then a measured window of --*-seconds:
//   messages delivered to agents in the window, server CPU over the window
//   (utime+stime from /proc of every --pid, per thread too), the load
//   generator's own CPU, Redis INFO commandstats (--redis-port) reset at the
//   start of the window.
// Idle scenario (--scenarios idle): --customers connections that said hello
//   and got welcome (no agents), held open; RSS of every --pid before and with
//   them.
//
// Every message text starts with "SENT:SCHED:IDX:" (IDX: the customer, so the
// agent side can credit it; SENT, SCHED: CLOCK_MONOTONIC, µs, via
// process.hrtime: the same clock in every worker thread), padded so that the
// customer's frame is --size bytes. An agent computes the latency when the
// item arrives: send->delivery, and scheduled->delivery (the latter counts
// the generator's own lag as latency: no coordinated omission).
//
// Agents ack every item with a seq (one frame each, as the protocol says),
// batched per connection per event-loop turn (cork/uncork: one write).
//
// Output: one JSON object on stdout (or --out FILE). Progress on stderr.
//
// Options (defaults): --url ws://127.0.0.1:8080 --label target --customers 2000
//   --agents 100 --agents-file FILE (CSV "id,token", as `omnirouterctl agent
//   import` prints; without it agents are agent0.. with any token, for the
//   relay) --scenarios sat,rate|idle --inflight 400 --sat-warmup 3
//   --sat-seconds 10 --rate 20000 --rate-warmup 2 --rate-seconds 10 --size 256
//   --workers 1 (worker threads; customers and agents are dealt round robin)
//   --pid NAME=PID (repeatable) --redis-port PORT --idle-hold 3
//   --connect-concurrency 200 --clk-tck 100 --setup-timeout 120 --out FILE
// run.sh is the intended driver.
'use strict';

const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const fs = require('fs');
const net = require('net');

function nowUs() {
  const t = process.hrtime();
  return t[0] * 1e6 + t[1] / 1e3;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ============================================================================
// main thread: orchestration and measurement

function parseArgs(argv) {
  const o = {
    url: 'ws://127.0.0.1:8080', label: 'target', customers: 2000, agents: 100, agentsFile: null,
    scenarios: 'sat,rate', inflight: 400, satWarmup: 3, satSeconds: 10, rate: '20000', rateWarmup: 2,
    rateSeconds: 10, size: 256, workers: 1, pids: [], redisPort: 0, idleHold: 3,
    connectConcurrency: 200, clkTck: 100, out: null, setupTimeout: 120,
  };
  const num = new Set(['customers', 'agents', 'inflight', 'satWarmup', 'satSeconds',
    'rateWarmup', 'rateSeconds', 'size', 'workers', 'redisPort', 'idleHold',
    'connectConcurrency', 'clkTck', 'setupTimeout']);
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--'))
      throw new Error(`unexpected argument ${a}`);
    const key = a.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    const v = argv[++i];
    if (v === undefined)
      throw new Error(`${a} needs a value`);
    if (key === 'pid') {
      const [name, pid] = v.split('=');
      if (!name || !/^[0-9]+$/.test(pid || ''))
        throw new Error(`--pid wants NAME=PID, got ${v}`);
      o.pids.push({ name, pid: Number(pid) });
    } else if (!(key in o)) {
      throw new Error(`unknown option ${a}`);
    } else {
      o[key] = num.has(key) ? Number(v) : v;
      if (num.has(key) && !Number.isFinite(o[key]))
        throw new Error(`${a}: not a number: ${v}`);
    }
  }
  return o;
}

function log(msg) {
  process.stderr.write(`[load ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

// ---- /proc ----

function readStat(path) {
  // utime and stime are fields 14 and 15; the comm (field 2) may hold spaces.
  const s = fs.readFileSync(path, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { utime: Number(f[11]), stime: Number(f[12]) };
}

// Context switches: voluntary ones are mostly event-loop wake-ups.
function ctxt(path) {
  try {
    const t = fs.readFileSync(path, 'utf8');
    return Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(t)[1]) +
      Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(t)[1]);
  } catch (_) {
    return 0;
  }
}

function cpuSnapshot(pids) {
  const out = {};
  for (const { name, pid } of pids) {
    try {
      const p = readStat(`/proc/${pid}/stat`);
      const threads = {};
      for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
        try {
          const t = readStat(`/proc/${pid}/task/${tid}/stat`);
          const comm = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
          threads[tid] = { comm: Number(tid) === pid ? `${comm} (main)` : comm, ...t,
            cs: ctxt(`/proc/${pid}/task/${tid}/status`) };
        } catch (_) { /* thread gone */ }
      }
      out[name] = { pid, ...p, threads };
    } catch (e) {
      out[name] = { pid, error: String(e.message) };
    }
  }
  return out;
}

function cpuDelta(a, b, clkTck, messages, seconds) {
  const res = {};
  let totalTicks = 0;
  for (const name of Object.keys(b)) {
    const x = a[name], y = b[name];
    if (!x || !y || x.error || y.error) {
      res[name] = { error: (y && y.error) || 'not measured' };
      continue;
    }
    const ticks = (y.utime - x.utime) + (y.stime - x.stime);
    totalTicks += ticks;
    const threads = {};
    let cs = 0;
    for (const tid of Object.keys(y.threads)) {
      const tx = x.threads[tid] || { utime: 0, stime: 0, cs: 0 };
      const ty = y.threads[tid];
      const tt = (ty.utime - tx.utime) + (ty.stime - tx.stime);
      const key = `${ty.comm} [${tid}]`;
      threads[key] = {
        cpu_s: tt / clkTck, user_s: (ty.utime - tx.utime) / clkTck, sys_s: (ty.stime - tx.stime) / clkTck,
        cores: +(tt / clkTck / seconds).toFixed(3),
        us_per_msg: messages ? +((tt / clkTck) * 1e6 / messages).toFixed(2) : null,
        ctx_switches_per_msg: messages ? +((ty.cs - tx.cs) / messages).toFixed(3) : null,
      };
      cs += ty.cs - tx.cs;
    }
    res[name] = {
      pid: y.pid,
      cpu_s: ticks / clkTck,
      user_s: (y.utime - x.utime) / clkTck,
      sys_s: (y.stime - x.stime) / clkTck,
      cores: +(ticks / clkTck / seconds).toFixed(3),
      us_per_msg: messages ? +((ticks / clkTck) * 1e6 / messages).toFixed(2) : null,
      ctx_switches_per_msg: messages ? +(cs / messages).toFixed(3) : null,
      threads,
    };
  }
  res.total = {
    cpu_s: totalTicks / clkTck,
    cores: +(totalTicks / clkTck / seconds).toFixed(3),
    us_per_msg: messages ? +((totalTicks / clkTck) * 1e6 / messages).toFixed(2) : null,
  };
  return res;
}

// Machine contention over a window: /proc/pressure/cpu "some" (share of the
// time at least one runnable task waited for a CPU) and the 1-minute load.
function pressure() {
  const o = { t: nowUs() };
  try {
    o.some = Number(/some .*total=(\d+)/.exec(fs.readFileSync('/proc/pressure/cpu', 'utf8'))[1]);
  } catch (_) { /* no PSI */ }
  try {
    o.load1 = Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch (_) { /* no loadavg */ }
  return o;
}

function pressureDelta(a, b) {
  const r = { loadavg1_end: b.load1 };
  if (a.some !== undefined && b.some !== undefined)
    r.cpu_pressure_some_pct = +((b.some - a.some) / (b.t - a.t) * 100).toFixed(1);
  return r;
}

function rssKb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch (_) {
    return null;
  }
}

// ---- a minimal RESP client (INFO, CONFIG RESETSTAT) ----

function redisCmd(port, args) {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('redis timeout'));
    }, 5000);
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.on('connect', () => {
      s.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''));
    });
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const nl = buf.indexOf('\r\n');
      if (nl < 0)
        return;
      const head = buf.slice(0, nl).toString();
      let val;
      if (head[0] === '+' || head[0] === '-' || head[0] === ':') {
        val = head.slice(1);
      } else if (head[0] === '$') {
        const n = Number(head.slice(1));
        if (buf.length < nl + 2 + n + 2)
          return;
        val = buf.slice(nl + 2, nl + 2 + n).toString();
      } else {
        val = head;
      }
      clearTimeout(timer);
      s.end();
      if (head[0] === '-')
        reject(new Error(val));
      else
        resolve(val);
    });
  });
}

function parseCommandstats(text) {
  const out = {};
  for (const line of text.split('\r\n')) {
    const m = /^cmdstat_([^:]+):(.*)$/.exec(line);
    if (!m)
      continue;
    const kv = {};
    for (const p of m[2].split(',')) {
      const [k, v] = p.split('=');
      kv[k] = Number(v);
    }
    out[m[1]] = kv;
  }
  return out;
}

// ---- workers ----

class Pool {
  constructor(n, data) {
    this.workers = [];
    this.waiters = [];
    for (let i = 0; i < n; i++) {
      const w = new Worker(__filename, { workerData: { ...data, index: i, count: n } });
      w.on('message', (m) => this.onMessage(i, m));
      w.on('error', (e) => {
        console.error(`load.js worker ${i} failed:`, e);
        process.exit(1);
      });
      this.workers.push(w);
    }
  }

  onMessage(i, m) {
    if (m.type === 'log') {
      log(`w${i}: ${m.msg}`);
      return;
    }
    if (m.type === 'dlv') { // delivery credits for customers another worker owns
      this.workers[m.to].postMessage({ cmd: 'dlv', idxs: m.idxs }, [m.idxs.buffer]);
      return;
    }
    for (const w of this.waiters)
      if (w.type === m.type && !(i in w.replies)) {
        w.replies[i] = m;
        if (Object.keys(w.replies).length === this.workers.length) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          clearTimeout(w.timer);
          w.resolve(this.workers.map((_, k) => w.replies[k]));
        }
        return;
      }
  }

  // Sends cmd to every worker and waits for one `reply` message from each.
  ask(cmd, reply, timeoutS) {
    return new Promise((resolve, reject) => {
      const w = { type: reply, replies: {}, resolve };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no '${reply}' from all workers within ${timeoutS}s after '${cmd.cmd}'`));
      }, timeoutS * 1000);
      this.waiters.push(w);
      for (const x of this.workers)
        x.postMessage(cmd);
    });
  }

  tell(cmd) {
    for (const x of this.workers)
      x.postMessage(cmd);
  }

  async close() {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

function percentiles(arrays) {
  let n = 0;
  for (const a of arrays)
    n += a.length;
  if (n === 0)
    return null;
  const all = new Float64Array(n);
  let o = 0;
  for (const a of arrays) {
    all.set(a, o);
    o += a.length;
  }
  all.sort();
  const q = (p) => all[Math.min(n - 1, Math.floor(p * n))];
  const ms = (v) => +(v / 1000).toFixed(3);
  let sum = 0;
  for (let i = 0; i < n; i++)
    sum += all[i];
  return {
    samples: n, mean_ms: ms(sum / n), p50_ms: ms(q(0.5)), p90_ms: ms(q(0.9)),
    p99_ms: ms(q(0.99)), p999_ms: ms(q(0.999)), max_ms: ms(all[n - 1]),
  };
}

function sumField(replies, f) {
  return replies.reduce((s, r) => s + (r[f] || 0), 0);
}

function mergeCounts(replies, f) {
  const out = {};
  for (const r of replies)
    for (const [k, v] of Object.entries(r[f] || {}))
      out[k] = (out[k] || 0) + v;
  return out;
}

async function measuredScenario(o, pool, name, start, warmupS, seconds) {
  log(`${o.label}: ${name}: warm-up ${warmupS}s`);
  pool.tell(start);
  await sleep(warmupS * 1000);
  if (o.redisPort)
    await redisCmd(o.redisPort, ['CONFIG', 'RESETSTAT']);
  const cpu0 = cpuSnapshot(o.pids);
  const ps0 = pressure();
  const lg0 = process.cpuUsage();
  const t0 = nowUs();
  pool.tell({ cmd: 'mark' });
  log(`${o.label}: ${name}: measuring ${seconds}s`);
  await sleep(seconds * 1000);
  const cpu1 = cpuSnapshot(o.pids);
  const ps1 = pressure();
  const lg1 = process.cpuUsage(lg0);
  const t1 = nowUs();
  const replies = await pool.ask({ cmd: 'end' }, 'ended', 30);
  let cmdstats = null;
  if (o.redisPort)
    cmdstats = parseCommandstats(await redisCmd(o.redisPort, ['INFO', 'commandstats']));
  const secs = (t1 - t0) / 1e6;
  const delivered = sumField(replies, 'delivered');
  const res = {
    window_s: +secs.toFixed(3),
    sent: sumField(replies, 'sent'),
    acked: sumField(replies, 'acked'),
    delivered,
    delivered_per_s: Math.round(delivered / secs),
    sent_per_s: Math.round(sumField(replies, 'sent') / secs),
    echoes: sumField(replies, 'echoes'),
    errors: mergeCounts(replies, 'errors'),
    unexpected_closes: sumField(replies, 'closes'),
    latency_send_to_agent: percentiles(replies.map((r) => r.lat)),
    latency_scheduled_to_agent: percentiles(replies.map((r) => r.latSched).filter((a) => a.length)),
    generator_lag_max_ms: +(Math.max(...replies.map((r) => r.lagMaxUs)) / 1000).toFixed(3),
    server_cpu: cpuDelta(cpu0, cpu1, o.clkTck, delivered, secs),
    machine: pressureDelta(ps0, ps1),
    loadgen_cpu: {
      cpu_s: +((lg1.user + lg1.system) / 1e6).toFixed(3),
      cores: +((lg1.user + lg1.system) / 1e6 / secs).toFixed(3),
    },
  };
  if (res.latency_scheduled_to_agent === null)
    delete res.latency_scheduled_to_agent;
  if (cmdstats) {
    const calls = {};
    let total = 0;
    for (const [cmd, s] of Object.entries(cmdstats)) {
      if (cmd === 'config' || cmd === 'info')
        continue;
      calls[cmd] = {
        calls: s.calls, per_msg: delivered ? +(s.calls / delivered).toFixed(3) : null,
        usec_per_call: s.usec_per_call, usec_per_msg: delivered ? +(s.usec / delivered).toFixed(2) : null,
      };
      total += s.calls;
    }
    res.redis_commandstats = calls;
    res.redis_calls_per_msg_all = delivered ? +(total / delivered).toFixed(2) : null;
  }
  log(`${o.label}: ${name}: ${res.delivered_per_s} msg/s delivered, server ${res.server_cpu.total.us_per_msg} µs CPU/msg` +
    (res.latency_send_to_agent ? `, p50 ${res.latency_send_to_agent.p50_ms} ms p99 ${res.latency_send_to_agent.p99_ms} ms` : '') +
    (Object.keys(res.errors).length ? `, errors ${JSON.stringify(res.errors)}` : ''));
  // Let what is in flight land before the next scenario.
  const d = await pool.ask({ cmd: 'drain' }, 'drained', 60);
  res.drain_left = { unacked: sumField(d, 'unacked'), undelivered: sumField(d, 'undelivered'),
    seconds: Math.max(...d.map((x) => x.seconds)) };
  if (res.drain_left.unacked || res.drain_left.undelivered)
    log(`${o.label}: ${name}: NOT drained after ${res.drain_left.seconds}s: ${JSON.stringify(res.drain_left)}`);
  return res;
}

async function main() {
  const o = parseArgs(process.argv);
  const scenarios = o.scenarios.split(',').filter(Boolean);
  const result = {
    target: o.label, url: o.url, customers: o.customers, agents: o.agents, frame_bytes: o.size,
    workers: o.workers, started: new Date().toISOString(), scenarios: {},
  };
  let agents = [];
  if (o.agentsFile) {
    for (const line of fs.readFileSync(o.agentsFile, 'utf8').split('\n')) {
      const [id, token] = line.trim().split(',');
      if (id && token && id !== 'id')
        agents.push({ id, token });
    }
  } else {
    for (let i = 0; i < o.agents; i++)
      agents.push({ id: `agent${i}`, token: 'x' });
  }
  agents = agents.slice(0, o.agents);
  if (agents.length < o.agents)
    throw new Error(`only ${agents.length} agents in ${o.agentsFile}, want ${o.agents}`);

  const idle = scenarios.includes('idle');
  if (idle && scenarios.length > 1)
    throw new Error('the idle scenario runs alone');
  const pool = new Pool(o.workers, { url: o.url, size: o.size, agents: idle ? [] : agents,
    customers: o.customers, connectConcurrency: o.connectConcurrency, idle });

  if (idle) {
    const before = {};
    for (const { name, pid } of o.pids)
      before[name] = rssKb(pid);
    const t0 = Date.now();
    log(`${o.label}: idle: opening ${o.customers} customer connections (hello)`);
    const r = await pool.ask({ cmd: 'customers' }, 'customers-ready', o.setupTimeout);
    const open = sumField(r, 'ready');
    log(`${o.label}: idle: ${open} connections open with a conversation in ${((Date.now() - t0) / 1000).toFixed(1)}s; holding ${o.idleHold}s`);
    await sleep(o.idleHold * 1000);
    const after = {};
    for (const { name, pid } of o.pids)
      after[name] = rssKb(pid);
    const still = sumField(await pool.ask({ cmd: 'count' }, 'counted', 30), 'open');
    result.scenarios.idle = {
      connections_requested: o.customers, connections_ready: open, connections_open_at_end: still,
      setup_s: +((Date.now() - t0) / 1000 - o.idleHold).toFixed(1),
      errors: mergeCounts(r, 'errors'),
      rss_kb_before: before, rss_kb_with_connections: after,
      rss_kb_per_connection: Object.fromEntries(Object.keys(after).map((k) => [k,
        after[k] !== null && before[k] !== null && open ? +((after[k] - before[k]) / open).toFixed(2) : null])),
    };
    log(`${o.label}: idle: RSS ${JSON.stringify(after)} kB (before ${JSON.stringify(before)})`);
  } else {
    const t0 = Date.now();
    log(`${o.label}: logging in ${o.agents} agents`);
    const ra = await pool.ask({ cmd: 'agents' }, 'agents-ready', o.setupTimeout);
    const agentsReady = sumField(ra, 'ready');
    if (agentsReady < o.agents)
      throw new Error(`only ${agentsReady} of ${o.agents} agents logged in: ${JSON.stringify(mergeCounts(ra, 'errors'))}`);
    log(`${o.label}: opening ${o.customers} customers, waiting for assignment`);
    const rc = await pool.ask({ cmd: 'customers' }, 'customers-ready', o.setupTimeout);
    const custReady = sumField(rc, 'ready');
    result.setup = { agents_ready: agentsReady, customers_assigned: custReady,
      setup_s: +((Date.now() - t0) / 1000).toFixed(1), errors: mergeCounts(rc, 'errors') };
    if (custReady < o.customers)
      throw new Error(`only ${custReady} of ${o.customers} customers assigned: ${JSON.stringify(mergeCounts(rc, 'errors'))}`);
    log(`${o.label}: ${agentsReady} agents, ${custReady} customers assigned in ${result.setup.setup_s}s`);
    for (const s of scenarios) {
      if (s === 'sat') {
        result.scenarios.saturation = await measuredScenario(o, pool, 'saturation',
          { cmd: 'start', mode: 'sat', inflight: Math.ceil(o.inflight / o.workers) }, o.satWarmup, o.satSeconds);
        result.scenarios.saturation.inflight = o.inflight;
      } else if (s === 'rate') {
        for (const spec of String(o.rate).split(',')) {
          // "autoNN": NN % of the saturation rate measured just before.
          let rate = Number(spec);
          const m = /^auto(\d+)$/.exec(spec);
          if (m) {
            const sat = result.scenarios.saturation;
            if (!sat)
              throw new Error(`--rate ${spec} needs the sat scenario first`);
            rate = Math.max(100, Math.round(sat.delivered_per_s * Number(m[1]) / 100 / 100) * 100);
          }
          if (!(rate > 0))
            throw new Error(`bad rate ${spec}`);
          const r = await measuredScenario(o, pool, `fixed ${rate}/s`,
            { cmd: 'start', mode: 'rate', rate: rate / o.workers }, o.rateWarmup, o.rateSeconds);
          r.target_rate = rate;
          if (m)
            r.rate_rule = `${m[1]}% of the saturation rate`;
          result.scenarios[`fixed_rate_${rate}`] = r;
        }
      } else {
        throw new Error(`unknown scenario ${s}`);
      }
    }
  }
  const rss = {};
  for (const { name, pid } of o.pids)
    rss[name] = rssKb(pid);
  result.rss_kb_at_end = rss;
  await pool.ask({ cmd: 'close' }, 'closed', 30).catch(() => {});
  await pool.close();
  const text = JSON.stringify(result, null, 2) + '\n';
  if (o.out)
    fs.writeFileSync(o.out, text);
  else
    process.stdout.write(text);
}

// ============================================================================
// worker: connections

function workerMain(d) {
  const WebSocket = require('ws');
  const post = (m) => parentPort.postMessage(m);
  const wlog = (msg) => post({ type: 'log', msg });

  const myAgents = d.agents.filter((_, i) => i % d.count === d.index);
  const myCustomerCount = Math.floor(d.customers / d.count) + (d.index < d.customers % d.count ? 1 : 0);
  const agents = [];
  const customers = [];

  // Counters of the measured window.
  let measuring = false;
  let st;
  const LAT_CAP = 4e6;
  function resetStats() {
    st = { sent: 0, acked: 0, delivered: 0, echoes: 0, errors: {}, closes: 0,
      lat: new Float64Array(1 << 16), latN: 0, latSched: new Float64Array(1 << 16), latSchedN: 0,
      lagMaxUs: 0 };
  }
  resetStats();
  const setupErrors = {};
  function countError(code) {
    const tbl = measuring ? st.errors : setupErrors;
    tbl[code] = (tbl[code] || 0) + 1;
  }
  function pushLat(which, v) {
    const arrKey = which, nKey = which + 'N';
    if (st[nKey] >= LAT_CAP)
      return;
    if (st[nKey] === st[arrKey].length) {
      const b = new Float64Array(st[arrKey].length * 2);
      b.set(st[arrKey]);
      st[arrKey] = b;
    }
    st[arrKey][st[nKey]++] = v;
  }

  // Mode of the current scenario.
  let mode = null; // 'sat' | 'rate' | null (stopped)
  let inflightCap = 1;
  let inflight = 0; // messages of this worker's customers not yet acked and delivered
  const idleQ = []; // customers with nothing in flight, in turn
  let idleHead = 0;
  const pad = 'x'.repeat(Math.max(0, d.size));

  // ---- connection opening with bounded concurrency ----
  let opening = 0;
  const openQueue = [];
  function openLimited(path, setup) {
    return new Promise((resolve) => {
      openQueue.push({ path, setup, resolve });
      pump();
    });
  }
  function pump() {
    while (opening < d.connectConcurrency && openQueue.length) {
      const job = openQueue.shift();
      opening++;
      const ws = new WebSocket(d.url + job.path, { perMessageDeflate: false, handshakeTimeout: 30000 });
      let done = false;
      const finish = (ok) => {
        if (done)
          return;
        done = true;
        opening--;
        job.resolve(ok);
        pump();
      };
      job.setup(ws, finish);
    }
  }

  // ---- agents ----
  function flushAcks(a) {
    a.flushScheduled = false;
    const seqs = a.pendingAcks;
    if (!seqs.length || a.ws.readyState !== 1)
      return;
    a.pendingAcks = [];
    const sock = a.ws._socket;
    sock.cork();
    for (const s of seqs)
      a.ws.send('{"type":"ack","seq":"' + s + '"}');
    sock.uncork();
  }

  function agentSetup(a) {
    return (ws, finish) => {
      a.ws = ws;
      a.pendingAcks = [];
      a.flushScheduled = false;
      ws.on('open', () => {
        ws.send(JSON.stringify({ type: 'login', v: 1, agent_id: a.id, token: a.token }));
      });
      ws.on('message', (data) => {
        let f;
        try {
          f = JSON.parse(data);
        } catch (_) {
          countError('bad-json-from-server');
          return;
        }
        if (typeof f.seq === 'string' && f.type !== 'ack') {
          a.pendingAcks.push(f.seq);
          if (!a.flushScheduled) {
            a.flushScheduled = true;
            setImmediate(flushAcks, a);
          }
          if (f.type === 'message' && f.from === 'customer') {
            const text = f.text;
            const c1 = text.indexOf(':');
            const c2 = text.indexOf(':', c1 + 1);
            const c3 = text.indexOf(':', c2 + 1);
            credit(Number(text.slice(c2 + 1, c3)));
            if (measuring) {
              const t = nowUs();
              st.delivered++;
              pushLat('lat', t - Number(text.slice(0, c1)));
              const sched = Number(text.slice(c1 + 1, c2));
              if (sched > 0)
                pushLat('latSched', t - sched);
            }
          }
          return;
        }
        if (f.type === 'welcome') {
          ws.send(JSON.stringify({ type: 'presence', presence: 'available', id: 'p1' }));
        } else if (f.type === 'ack' && f.id === 'p1') {
          a.ready = true;
          finish(true);
        } else if (f.type === 'error') {
          countError(f.code);
          if (!a.ready)
            finish(false);
        }
      });
      ws.on('error', (e) => {
        countError('ws-error:' + (e.code || e.message));
        finish(false);
      });
      ws.on('close', () => {
        if (a.ready && !closingAll)
          measuring ? st.closes++ : countError('closed');
        a.ready = false;
        finish(false);
      });
    };
  }

  // ---- customers ----
  // Delivery credits: the agent side tells the customer's owner (this worker,
  // or another through the main thread) that one of its messages arrived.
  const byIdx = new Map();
  const outbox = new Map(); // worker -> [idx]
  let outboxScheduled = false;
  function flushOutbox() {
    outboxScheduled = false;
    for (const [to, list] of outbox)
      post({ type: 'dlv', to, idxs: Int32Array.from(list) });
    outbox.clear();
  }
  function credit(idx) {
    const owner = idx % d.count;
    if (owner === d.index) {
      const c = byIdx.get(idx);
      if (!c)
        return;
      if (c.undelivered > 0)
        c.undelivered--;
      if (mode === 'sat')
        trySend(c);
      return;
    }
    let list = outbox.get(owner);
    if (!list)
      outbox.set(owner, list = []);
    list.push(idx);
    if (!outboxScheduled) {
      outboxScheduled = true;
      setImmediate(flushOutbox);
    }
  }
  // A customer's message is complete once acked and delivered: in sat mode the
  // customer then queues for its next turn.
  function trySend(c) {
    if (!c.busy || c.unacked > 0 || c.undelivered > 0)
      return;
    c.busy = false;
    inflight--;
    if (c.ready)
      idleQ.push(c);
    pumpSat();
  }
  function pumpSat() {
    while (mode === 'sat' && inflight < inflightCap && idleHead < idleQ.length) {
      const c = idleQ[idleHead++];
      if (!c.ready)
        continue;
      c.busy = true;
      inflight++;
      sendMessage(c, 0);
    }
    if (idleHead > 4096 && idleHead * 2 > idleQ.length) {
      idleQ.splice(0, idleHead);
      idleHead = 0;
    }
  }

  function sendMessage(c, schedUs) {
    const t = nowUs();
    if (schedUs > 0 && t - schedUs > st.lagMaxUs && measuring)
      st.lagMaxUs = t - schedUs;
    const head = Math.round(t) + ':' + Math.round(schedUs) + ':' + c.idx + ':';
    const id = 'm' + (c.n++);
    // {"type":"message","id":"ID","text":"TEXT"}
    const fixed = 36 + id.length;
    const text = head + pad.slice(0, Math.max(1, d.size - fixed - head.length));
    c.ws.send('{"type":"message","id":"' + id + '","text":"' + text + '"}');
    c.unacked++;
    c.undelivered++;
    if (measuring)
      st.sent++;
  }

  function customerSetup(c) {
    return (ws, finish) => {
      c.ws = ws;
      ws.on('open', () => {
        ws.send(JSON.stringify({ type: 'hello', v: 1, language: 'en', name: 'cust' + c.idx }));
      });
      ws.on('message', (data) => {
        let f;
        try {
          f = JSON.parse(data);
        } catch (_) {
          countError('bad-json-from-server');
          return;
        }
        const type = f.type;
        if (type === 'ack') {
          if (c.unacked > 0)
            c.unacked--;
          if (measuring)
            st.acked++;
          if (mode === 'sat')
            trySend(c);
        } else if (type === 'message') {
          if (measuring)
            st.echoes++;
        } else if (type === 'welcome') {
          c.welcomed = true;
          if (d.idle || f.state === 'assigned') {
            c.ready = true;
            finish(true);
          }
        } else if (type === 'event') {
          if (f.event === 'assigned' && !c.ready) {
            c.ready = true;
            finish(true);
          }
        } else if (type === 'error') {
          countError(f.code);
          if (typeof f.id === 'string' && f.id[0] === 'm') { // refused: never delivered
            if (c.unacked > 0)
              c.unacked--;
            if (c.undelivered > 0)
              c.undelivered--;
            if (mode === 'sat')
              trySend(c);
          }
          if (!c.ready)
            finish(false);
        }
      });
      ws.on('error', (e) => {
        countError('ws-error:' + (e.code || e.message));
        finish(false);
      });
      ws.on('close', () => {
        if (c.ready && !closingAll)
          measuring ? st.closes++ : countError('closed');
        c.ready = false;
        finish(false);
      });
    };
  }

  // ---- fixed rate ----
  let rateTimer = null;
  function startRate(rate) {
    const live = customers.filter((c) => c.ready);
    const t0 = nowUs();
    let k = 0;
    let rr = 0;
    const tick = () => {
      if (mode !== 'rate')
        return;
      const now = nowUs();
      const due = Math.floor((now - t0) * rate / 1e6);
      while (k < due) {
        const c = live[rr++ % live.length];
        if (c.ready)
          sendMessage(c, t0 + k * 1e6 / rate);
        k++;
      }
      rateTimer = setTimeout(tick, 1);
    };
    tick();
  }

  let closingAll = false;
  parentPort.on('message', async (m) => {
    switch (m.cmd) {
      case 'agents': {
        const r = await Promise.all(myAgents.map((x) => {
          const a = { id: x.id, token: x.token, ready: false };
          agents.push(a);
          return openLimited('/ws/agent', agentSetup(a));
        }));
        post({ type: 'agents-ready', ready: r.filter(Boolean).length, errors: setupErrors });
        break;
      }
      case 'customers': {
        const jobs = [];
        for (let i = 0; i < myCustomerCount; i++) {
          const c = { idx: d.index + i * d.count, n: 0, unacked: 0, undelivered: 0, ready: false };
          customers.push(c);
          byIdx.set(c.idx, c);
          jobs.push(openLimited('/ws/customer', customerSetup(c)));
        }
        const r = await Promise.all(jobs);
        post({ type: 'customers-ready', ready: r.filter(Boolean).length, errors: setupErrors });
        break;
      }
      case 'count':
        post({ type: 'counted', open: customers.filter((c) => c.ready && c.ws.readyState === 1).length });
        break;
      case 'start':
        resetStats();
        measuring = false;
        mode = m.mode;
        if (m.mode === 'sat') {
          inflightCap = m.inflight;
          inflight = 0;
          idleQ.length = 0;
          idleHead = 0;
          for (const c of customers) {
            c.busy = false;
            if (c.ready && c.unacked === 0 && c.undelivered === 0)
              idleQ.push(c);
          }
          pumpSat();
        } else {
          startRate(m.rate);
        }
        break;
      case 'mark':
        resetStats();
        measuring = true;
        break;
      case 'end': {
        measuring = false;
        mode = null;
        if (rateTimer)
          clearTimeout(rateTimer);
        const lat = st.lat.slice(0, st.latN);
        const latSched = st.latSched.slice(0, st.latSchedN);
        post({ type: 'ended', sent: st.sent, acked: st.acked, delivered: st.delivered,
          echoes: st.echoes, errors: st.errors, closes: st.closes, lagMaxUs: st.lagMaxUs,
          lat, latSched }, [lat.buffer, latSched.buffer]);
        break;
      }
      case 'dlv':
        for (const idx of m.idxs)
          credit(idx);
        break;
      case 'drain': {
        // Everything sent acked and delivered (other workers' agents credit
        // our customers asynchronously), or 30 s.
        const t0 = Date.now();
        const left = (k) => customers.reduce((s, c) => s + (c.ready ? c[k] : 0), 0);
        while ((left('unacked') > 0 || left('undelivered') > 0) && Date.now() - t0 < 30000)
          await sleep(50);
        await sleep(200); // the agents' acks of the last items
        post({ type: 'drained', unacked: left('unacked'), undelivered: left('undelivered'),
          seconds: +((Date.now() - t0) / 1000).toFixed(1) });
        break;
      }
      case 'close': {
        closingAll = true;
        for (const x of [...agents, ...customers])
          if (x.ws)
            x.ws.terminate();
        post({ type: 'closed' });
        break;
      }
      default:
        wlog(`unknown command ${m.cmd}`);
    }
  });
}

if (isMainThread)
  main().catch((e) => {
    console.error('load.js:', e && e.stack ? e.stack : e);
    process.exit(1);
  });
else
  workerMain(workerData);
