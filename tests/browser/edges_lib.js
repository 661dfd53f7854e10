// edges_lib.js - what customer_edges.js and pages_edges.js share: the environment, checks that
// collect problems, a minimal agent over the protocol (docs/PROTOCOL.md, agent endpoint), the
// customer page's helpers, and the scenario runner.
//
// Environment: OMR_BASE (http://127.0.0.1:PORT), OMR_AGENT_ID, OMR_AGENT_TOKEN, optional
// OMR_CHROMIUM. Needs `node --experimental-websocket` (the agent's WebSocket).
"use strict";

const { chromium } = require("playwright-core");

const T0 = Date.now();
const WAIT_MS = 25000;
const SETTLE_MS = 1500;

const BASE = process.env.OMR_BASE;
const AGENT_ID = process.env.OMR_AGENT_ID;
const AGENT_TOKEN = process.env.OMR_AGENT_TOKEN;
const CHROMIUM = process.env.OMR_CHROMIUM || "/usr/bin/chromium";
const WS_BASE = BASE.replace(/^http/, "ws");

const problems = [];
const pageErrors = [];

function log(msg) {
	const s = ((Date.now() - T0) / 1000).toFixed(1).padStart(5);
	console.log(`[${s}s] ${msg}`);
}

function check(cond, msg) {
	if (!cond) {
		problems.push(msg);
		log(`CHECK FAILED: ${msg}`);
	}
	return cond;
}

class Failure extends Error {}
function fail(msg) { throw new Failure(msg); }

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

async function until(pred, what, timeout = WAIT_MS) {
	const end = Date.now() + timeout;
	for (;;) {
		const v = await pred();
		if (v)
			return v;
		if (Date.now() > end)
			fail(`no ${what} within ${timeout} ms`);
		await sleep(100);
	}
}

// ---- a minimal agent over the protocol -------------------------------------------------------

class Agent {
	constructor(id, token) {
		this.id = id;
		this.token = token;
		this.frames = [];
		this.n = 0;
	}

	async login(available = true) {
		this.ws = new WebSocket(`${WS_BASE}/ws/agent`);
		this.ws.onmessage = (ev) => {
			const f = JSON.parse(ev.data);
			this.frames.push(f);
			if (f.seq && ["assigned", "message", "closed", "offer", "revoked", "event"]
				.includes(f.type))
				this.ws.send(JSON.stringify({ type: "ack", seq: f.seq }));
		};
		await new Promise((res, rej) => {
			this.ws.onopen = res;
			this.ws.onerror = rej;
		});
		this.ws.send(JSON.stringify({ type: "login", v: 1, agent_id: this.id, token: this.token }));
		await until(() => this.frames.find((f) => f.type === "welcome"), "agent welcome");
		if (available)
			await this.request({ type: "presence", presence: "available" });
	}

	async request(obj) {
		const id = `r-${++this.n}`;
		obj.id = id;
		this.ws.send(JSON.stringify(obj));
		const r = await until(() => this.frames.find((f) => f.id === id &&
			(f.type === "ack" || f.type === "error")), `answer to ${obj.type}`);
		if (r.type !== "ack")
			fail(`agent: ${obj.type} refused: ${JSON.stringify(r)}`);
		return r;
	}

	async assignedConv() {
		const a = await until(() => this.frames.find((f) => f.type === "assigned"),
			"assigned item at the agent");
		return a.conversation_id;
	}

	assignedConvs() {
		return this.frames.filter((f) => f.type === "assigned").map((f) => f.conversation_id);
	}

	async reply(conv, text) {
		return this.request({ type: "message", conversation_id: conv, text });
	}

	async close(conv) {
		return this.request({ type: "close", conversation_id: conv });
	}

	typing(conv) {
		this.ws.send(JSON.stringify({ type: "typing", conversation_id: conv }));
	}

	customerTexts(conv) {
		return this.frames.filter((f) => f.type === "message" && f.conversation_id === conv &&
			f.from === "customer").map((f) => f.text);
	}

	quit() {
		try { this.ws.close(); } catch (e) { /* gone */ }
	}
}

// ---- pages -----------------------------------------------------------------------------------

function watch(page, who) {
	page.on("pageerror", (e) => pageErrors.push(`${who}: page error: ${e}`));
	page.on("console", (m) => {
		if (m.type() === "error" && !/WebSocket|ERR_INTERNET_DISCONNECTED|net::/.test(m.text()))
			pageErrors.push(`${who}: console error: ${m.text()}`);
	});
}

// A new browser context (1280x800 unless given) and its page, watched for errors as `who`.
async function openPage(browser, who, viewport = { width: 1280, height: 800 }) {
	const ctx = await browser.newContext({ viewport });
	const page = await ctx.newPage();
	watch(page, who);
	return { ctx, page };
}

// The transcript as shown: one entry per <li> of sel (its .text).
async function lines(frame, sel = "#messages li") {
	return frame.$$eval(sel, (lis) => lis.map((li) => {
		const t = li.querySelector(".text");
		return (t ? t.textContent : li.textContent).trim();
	}));
}

async function waitText(frame, text, timeout = WAIT_MS, sel = "#messages li") {
	try {
		await frame.waitForFunction(([t, s]) => Array.from(document.querySelectorAll(s))
			.some((li) => li.textContent.includes(t)), [text, sel], { timeout });
	} catch (e) {
		fail(`"${text}" not shown within ${timeout} ms; transcript:\n  ` +
		     (await lines(frame, sel).catch(() => [])).join("\n  "));
	}
}

async function waitAcked(frame, text) {
	try {
		await frame.waitForFunction((t) => Array.from(document.querySelectorAll("#messages li"))
			.some((li) => li.textContent.includes(t) && li.classList.contains("acked")),
			text, { timeout: WAIT_MS });
	} catch (e) {
		fail(`customer: "${text}" not acknowledged within ${WAIT_MS} ms`);
	}
}

async function startChat(frame, lang = "es", name = "Rosa") {
	await frame.locator("#lang").selectOption(lang);
	await frame.locator("#name").fill(name);
	await frame.locator("#start-chat").click();
	await frame.locator("#compose").waitFor({ state: "visible", timeout: WAIT_MS });
}

async function customerSend(frame, text, acked = true) {
	await frame.locator("#text").fill(text);
	await frame.locator("#send").click();
	await waitText(frame, text);
	if (acked)
		await waitAcked(frame, text);
}

// ---- the runner ------------------------------------------------------------------------------

// Runs scenario process.argv[2] of `scenarios` (name -> {fn, agent, available}): fn(browser,
// agent), with the protocol agent logged in first when `agent` (available unless `available` is
// false). Exits 0 when every check held, else prints each problem and exits 1.
async function runScenario(script, scenarios) {
	const name = process.argv[2];
	const sc = scenarios[name];
	if (!sc) {
		console.error(`usage: ${script} ${Object.keys(scenarios).join("|")}`);
		process.exit(2);
	}
	const browser = await chromium.launch({ executablePath: CHROMIUM,
		args: ["--no-sandbox", "--disable-dev-shm-usage"] });
	const agent = sc.agent ? new Agent(AGENT_ID, AGENT_TOKEN) : null;
	let code = 0;
	try {
		if (agent)
			await agent.login(sc.available !== false);
		await sc.fn(browser, agent);
	} catch (e) {
		problems.push(e instanceof Failure ? e.message : (e && e.stack) || String(e));
		log(`FAILED: ${problems[problems.length - 1]}`);
	} finally {
		if (agent)
			agent.quit();
		await browser.close().catch(() => {});
	}
	for (const e of pageErrors)
		problems.push(e);
	if (problems.length) {
		console.log(`${problems.length} problem(s):\n  ` + problems.join("\n  "));
		code = 1;
	} else {
		log(`${name}: all checks held`);
	}
	process.exit(code);
}

module.exports = {
	WAIT_MS, SETTLE_MS, BASE, AGENT_ID, AGENT_TOKEN, WS_BASE, log, check, fail, sleep, until,
	Agent, watch, openPage, lines, waitText, waitAcked, startChat, customerSend, runScenario,
};
