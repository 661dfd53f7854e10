#!/usr/bin/env node
// relay.js - the baseline of bench/chat: a Node `ws` server that does the
// forwarding part of omnirouterd's chat job in memory, with the same frames
// (docs/PROTOCOL.md), so the same load generator (load.js) drives both.
//
//   /ws/customer  hello   -> welcome (paired at once with the least loaded
//                            available agent, else queued until one is)
//                 message -> ack to the customer + message item to the agent
//   /ws/agent     login    -> welcome (any agent id, any token)
//                 presence -> ack; "available" takes queued customers
//                 ack      -> parsed and dropped (nothing is kept to re-send)
//
// What it does NOT do, on purpose: no persistence. omnirouterd stores every
// message in Redis (transcript stream + agent inbox stream, de-duplication)
// before it acks the customer, re-delivers what an agent did not ack, survives
// restarts and shares the work between instances; this relay loses everything
// when it stops and routes nothing but "least loaded". It is the floor the issue
// asks us to compare against, not an equivalent product.
//
// Usage: node relay.js --port 8090 [--host 127.0.0.1]
// Prints "relay listening on HOST:PORT pid PID" once it accepts connections.
'use strict';

const http = require('http');
const { WebSocketServer } = require('ws');

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const HOST = arg('host', '127.0.0.1');
const PORT = Number(arg('port', '8090'));
const MAX_FRAME = 16384;

let nextConv = 1;
let seqN = 0;
let seqMs = 0;
function nextSeq() {
  const now = Date.now();
  if (now !== seqMs) {
    seqMs = now;
    seqN = 0;
  }
  return `${now}-${seqN++}`;
}

const agents = new Map(); // agent_id -> agent state
const waiting = []; // customers waiting for an agent (FIFO)

function send(ws, obj) {
  if (ws.readyState === 1)
    ws.send(JSON.stringify(obj));
}

function error(ws, code, reason, id, close) {
  const e = { type: 'error', code, reason };
  if (id !== undefined)
    e.id = id;
  send(ws, e);
  if (close)
    ws.close(close, code);
}

// Least loaded available agent with room, or null.
function pickAgent() {
  let best = null;
  for (const a of agents.values()) {
    if (a.presence !== 'available' || a.customers.size >= a.capacity)
      continue;
    if (!best || a.customers.size < best.customers.size)
      best = a;
  }
  return best;
}

function assign(cust, agent) {
  cust.agent = agent;
  agent.customers.add(cust);
  const ts = Date.now();
  send(agent.ws, {
    type: 'assigned', seq: nextSeq(), conversation_id: cust.conv, language: cust.language,
    customer_name: cust.name, tenant: cust.tenant, ts,
  });
  send(cust.ws, { type: 'event', seq: nextSeq(), event: 'assigned', name: agent.name, ts });
}

function drainWaiting() {
  while (waiting.length) {
    const a = pickAgent();
    if (!a)
      return;
    const c = waiting.shift();
    if (c.ws.readyState === 1)
      assign(c, a);
  }
}

function onCustomer(ws) {
  const c = { ws, conv: null, agent: null, name: '', language: 'en', tenant: 'default' };
  ws.on('message', (data, isBinary) => {
    let f;
    try {
      f = isBinary ? null : JSON.parse(data);
    } catch (_) {
      f = null;
    }
    if (!f || typeof f !== 'object' || typeof f.type !== 'string')
      return error(ws, 'bad-json', 'not a JSON object with a type', undefined, 1007);
    if (f.type === 'message') {
      if (!c.conv)
        return error(ws, 'unauthorized', 'hello first', f.id);
      if (typeof f.id !== 'string' || typeof f.text !== 'string' || f.text.length === 0)
        return error(ws, 'bad-request', 'message needs id and text', f.id);
      const seq = nextSeq();
      send(ws, { type: 'ack', id: f.id, seq });
      if (c.agent)
        send(c.agent.ws, {
          type: 'message', seq, conversation_id: c.conv, id: f.id, from: 'customer',
          name: c.name, text: f.text, ts: Date.now(),
        });
      return;
    }
    if (f.type === 'hello') {
      if (c.conv)
        return error(ws, 'bad-request', 'second hello', f.id);
      c.conv = (nextConv++).toString(16).padStart(32, '0');
      if (typeof f.name === 'string')
        c.name = f.name;
      if (typeof f.language === 'string')
        c.language = f.language;
      const a = pickAgent();
      send(ws, {
        type: 'welcome', conversation_id: c.conv, resume_token: c.conv, tenant: c.tenant,
        state: a ? 'assigned' : 'queued',
      });
      if (a)
        assign(c, a);
      else
        waiting.push(c);
      return;
    }
    error(ws, 'bad-request', 'unknown type', f.id);
  });
  ws.on('close', () => {
    if (c.agent)
      c.agent.customers.delete(c);
    else {
      const i = waiting.indexOf(c);
      if (i >= 0)
        waiting.splice(i, 1);
    }
  });
}

function onAgent(ws) {
  let a = null;
  ws.on('message', (data, isBinary) => {
    let f;
    try {
      f = isBinary ? null : JSON.parse(data);
    } catch (_) {
      f = null;
    }
    if (!f || typeof f !== 'object' || typeof f.type !== 'string')
      return error(ws, 'bad-json', 'not a JSON object with a type', undefined, 1007);
    if (f.type === 'ack')
      return; // an in-memory relay has nothing to re-deliver
    if (f.type === 'login') {
      if (typeof f.agent_id !== 'string')
        return error(ws, 'unauthorized', 'bad agent', f.id, 1008);
      const old = agents.get(f.agent_id);
      a = { id: f.agent_id, name: f.agent_id, ws, presence: 'away', capacity: 100,
        customers: old ? old.customers : new Set() };
      if (old && old.ws !== ws)
        error(old.ws, 'replaced', 'a newer login took over', undefined, 1008);
      agents.set(a.id, a);
      send(ws, { type: 'welcome', agent_id: a.id, name: a.name, presence: a.presence,
        languages: ['en'], capacity: a.capacity, tenant: 'default' });
      return;
    }
    if (!a)
      return error(ws, 'unauthorized', 'login first', f.id);
    if (f.type === 'presence') {
      a.presence = f.presence === 'available' ? 'available' : 'away';
      send(ws, { type: 'ack', id: f.id, presence: a.presence });
      drainWaiting();
      return;
    }
    error(ws, 'bad-request', 'unknown type', f.id);
  });
  ws.on('close', () => {
    if (a && agents.get(a.id) === a) {
      agents.delete(a.id);
      for (const c of a.customers)
        c.agent = null;
    }
  });
}

const server = http.createServer((req, res) => {
  res.writeHead(req.url === '/healthz' ? 200 : 404, { 'content-type': 'text/plain' });
  res.end(req.url === '/healthz' ? 'ok\n' : 'not found\n');
});
const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME, perMessageDeflate: false });
server.on('upgrade', (req, socket, head) => {
  if (req.url !== '/ws/customer' && req.url !== '/ws/agent') {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (req.url === '/ws/customer')
      onCustomer(ws);
    else
      onAgent(ws);
  });
});
server.listen(PORT, HOST, 4096, () => {
  console.log(`relay listening on ${HOST}:${PORT} pid ${process.pid}`);
});
for (const sig of ['SIGINT', 'SIGTERM'])
  process.on(sig, () => process.exit(0));
