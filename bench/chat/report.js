#!/usr/bin/env node
// report.js DIR - the markdown tables of docs/BENCHMARKS.md from a run.sh
// results directory (chat-SYSTEM-rN.json, idle-SYSTEM.json, machine.txt).
'use strict';

const fs = require('fs');
const path = require('path');

const dir = process.argv[2];
if (!dir) {
  console.error('usage: report.js RESULTS_DIR');
  process.exit(2);
}
const read = (f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
const files = fs.readdirSync(dir);
const rounds = [...new Set(files.map((f) => /^chat-.*-r(\d+)\.json$/.exec(f)).filter(Boolean)
  .map((m) => Number(m[1])))].sort((a, b) => a - b);

const fmt = (v, d = 0) => (v === null || v === undefined || Number.isNaN(v) ? 'n/a'
  : Number(v).toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }));
const out = [];
const p = (s = '') => out.push(s);

function rateScenarios(r) {
  return Object.entries(r.scenarios).filter(([k]) => k.startsWith('fixed_rate_'))
    .map(([, v]) => v);
}

function cpuCell(s, name) {
  const c = s.server_cpu;
  return c[name] ? fmt(c[name].us_per_msg, 1) : 'n/a';
}

p('| round | system | saturation msg/s | server CPU µs/msg | of which | load generator cores | CPU pressure % | ' +
  'latency at 50 % of saturation: rate, p50 / p99 ms | at 20,000 msg/s offered: delivered msg/s, p50 / p99 ms |');
p('|---|---|---:|---:|---|---:|---:|---|---|');
const perRound = [];
const errs = (x) => Object.entries(x.errors).map(([k, v]) => `${k} ${v}`).join(', ');
const lat = (x) => (x ? `${fmt(x.latency_send_to_agent?.p50_ms, 1)} / ${fmt(x.latency_send_to_agent?.p99_ms, 1)}` +
  (errs(x) ? ` (errors: ${errs(x)})` : '') : 'not run');
for (const n of rounds) {
  const row = {};
  for (const sys of ['omnirouterd', 'relay']) {
    const f = `chat-${sys}-r${n}.json`;
    if (!files.includes(f))
      continue;
    const r = read(f);
    const s = r.scenarios.saturation;
    row[sys] = r;
    const split = sys === 'omnirouterd'
      ? `omnirouterd ${cpuCell(s, 'omnirouterd')} + redis ${cpuCell(s, 'redis-server')}` : 'node';
    const auto = rateScenarios(r).find((x) => x.rate_rule);
    const f20 = r.scenarios.fixed_rate_20000;
    p(`| ${n} | ${sys} | ${fmt(s.delivered_per_s)} | ${fmt(s.server_cpu.total.us_per_msg, 1)} | ${split} | ` +
      `${fmt(s.loadgen_cpu.cores, 2)} | ${fmt(s.machine.cpu_pressure_some_pct)} | ` +
      `${auto ? fmt(auto.target_rate) + '/s: ' + lat(auto) : 'not run'} | ` +
      `${f20 ? fmt(f20.delivered_per_s) + ': ' + lat(f20) : 'not run'} |`);
  }
  perRound.push({ n, ...row });
}
p();

p('Ratios against the targets (omnirouterd / relay, same round):');
p();
p('| round | msg/s ratio (target >= 1.5) | CPU/msg ratio (target <= 1.0) | p99 at 20,000/s (target < 5 ms) |');
p('|---|---:|---:|---|');
for (const r of perRound) {
  if (!r.omnirouterd || !r.relay)
    continue;
  const a = r.omnirouterd.scenarios.saturation, b = r.relay.scenarios.saturation;
  const f20 = r.omnirouterd.scenarios.fixed_rate_20000;
  const p99 = f20 ? `${fmt(f20.latency_send_to_agent?.p99_ms, 1)} ms, ${fmt(f20.delivered_per_s)} of 20,000 msg/s delivered` : 'not run';
  p(`| ${r.n} | ${fmt(a.delivered_per_s / b.delivered_per_s, 2)} | ` +
    `${fmt(a.server_cpu.total.us_per_msg / b.server_cpu.total.us_per_msg, 1)} | ${p99} |`);
}
p();

const idle = ['omnirouterd', 'relay'].filter((s) => files.includes(`idle-${s}.json`));
if (idle.length) {
  p('| idle connections | system | process | RSS before MB | RSS with connections MB | KB per connection |');
  p('|---:|---|---|---:|---:|---:|');
  for (const sys of idle) {
    const s = read(`idle-${sys}.json`).scenarios.idle;
    for (const proc of Object.keys(s.rss_kb_with_connections))
      p(`| ${fmt(s.connections_ready)} | ${sys} | ${proc} | ${fmt(s.rss_kb_before[proc] / 1024, 1)} | ` +
        `${fmt(s.rss_kb_with_connections[proc] / 1024, 1)} | ${fmt(s.rss_kb_per_connection[proc], 1)} |`);
  }
  p();
}

// Where the time goes (last round's saturation), both systems.
const last = perRound.filter((r) => r.omnirouterd).pop();
if (last) {
  const s = last.omnirouterd.scenarios.saturation;
  p(`At saturation, round ${last.n}: CPU per delivered message by thread ` +
    `(omnirouterd ${fmt(s.delivered_per_s)} msg/s, relay ${fmt(last.relay?.scenarios.saturation.delivered_per_s)} msg/s)`);
  p();
  p('| process | thread | µs/msg | cores | user:sys % | context switches/msg |');
  p('|---|---|---:|---:|---:|---:|');
  const rows = [[s, 'omnirouterd'], [s, 'redis-server']];
  if (last.relay)
    rows.push([last.relay.scenarios.saturation, 'relay']);
  for (const [sc, proc] of rows) {
    const c = sc.server_cpu[proc];
    if (!c || !c.threads)
      continue;
    for (const [t, v] of Object.entries(c.threads)) {
      let name = t.replace(/ \[\d+\]$/, '');
      if (proc === 'omnirouterd')
        name = name === 'omnirouterd (main)' ? 'router (main thread)'
          : name === 'omnirouterd' ? 'websocket thread' : name;
      if (v.cpu_s > 0)
        p(`| ${proc} | ${name} | ${fmt(v.us_per_msg, 1)} | ${fmt(v.cores, 2)} | ` +
          `${fmt(100 * v.user_s / v.cpu_s)}:${fmt(100 * v.sys_s / v.cpu_s)} | ${fmt(v.ctx_switches_per_msg, 2)} |`);
    }
  }
  p();
  if (s.redis_commandstats) {
    p(`Redis commands per delivered message (INFO commandstats over the window; commands run inside ` +
      `FCALL are counted too): ${fmt(s.redis_calls_per_msg_all, 1)} in all`);
    p();
    p('| command | calls/msg | µs/call | µs/msg |');
    p('|---|---:|---:|---:|');
    const rows = Object.entries(s.redis_commandstats).filter(([, v]) => v.per_msg >= 0.01)
      .sort((x, y) => y[1].usec_per_msg - x[1].usec_per_msg);
    for (const [cmd, v] of rows)
      p(`| ${cmd} | ${fmt(v.per_msg, 2)} | ${fmt(v.usec_per_call, 1)} | ${fmt(v.usec_per_msg, 1)} |`);
    p();
  }
}
if (files.includes('machine.txt'))
  p('```\n' + fs.readFileSync(path.join(dir, 'machine.txt'), 'utf8').trim() + '\n```');
process.stdout.write(out.join('\n') + '\n');
