// desktop_lib.js - what the desktop scenarios share (desktop_edges.js, desktop_day.js):
// omnirouterctl, a customer over the protocol (a plain websocket client, so its customer_id and
// attributes, which pick the queue, are under control) and the desktop page's controls.
"use strict";

const { execFileSync } = require("child_process");
const readline = require("readline");

const { WAIT_MS, AGENT_ID, AGENT_TOKEN, BASE, WS_BASE, log, fail, sleep, until, openPage,
	startChat } = require("./edges_lib");

function ctl(...args) {
	const env = Object.assign({}, process.env, { ASAN_OPTIONS: process.env.OMR_CTL_ASAN,
		UBSAN_OPTIONS: process.env.OMR_CTL_UBSAN });
	return execFileSync(process.env.OMR_CTL, ["-c", process.env.OMR_CFG, ...args],
		{ env, encoding: "utf8" });
}

function agentShow(id = AGENT_ID) {
	return JSON.parse(ctl("--json", "agent", "show", id));
}

// Prints "CMD NAME" for the Python side (test_desktop_edges.run_browser) to act on: restart,
// stop, start the daemon, redis-pause, redis-resume; it answers "done NAME" on stdin.
let stdinLines = null;
async function cmd(name) {
	if (!stdinLines) {
		stdinLines = [];
		const rl = readline.createInterface({ input: process.stdin });
		rl.on("line", (l) => stdinLines.push(l));
	}
	console.log(`CMD ${name}`);
	await until(() => stdinLines.includes(`done ${name}`), `${name} done`, 60000);
	stdinLines.length = 0;
	log(`${name} done`);
}

// ---- customers over the protocol -------------------------------------------------------------

let custN = 0;
class Customer {
	constructor(opts = {}) {
		this.opts = opts;
		this.frames = [];
		this.n = 0;
		this.label = opts.name || `customer ${++custN}`;
	}

	async open() {
		this.ws = new WebSocket(`${WS_BASE}/ws/customer`);
		this.ws.onmessage = (ev) => this.frames.push(JSON.parse(ev.data));
		await new Promise((res, rej) => {
			this.ws.onopen = res;
			this.ws.onerror = rej;
		});
	}

	async start() {
		await this.open();
		const hello = { type: "hello", v: 1, language: this.opts.language || "es",
			name: this.opts.name || "Rosa",
			key: "k" + Math.random().toString(36).slice(2) + Date.now().toString(36) +
				"0123456789abcdef" };
		if (this.opts.customer_id)
			hello.customer_id = this.opts.customer_id;
		if (this.opts.kind)
			hello.attributes = { kind: this.opts.kind };
		this.ws.send(JSON.stringify(hello));
		const w = await until(() => this.frames.find((f) => f.type === "welcome" ||
			f.type === "error"), `${this.label} welcome`);
		if (w.type !== "welcome")
			fail(`${this.label}: hello refused: ${JSON.stringify(w)}`);
		this.conv = w.conversation_id;
		this.resumeToken = w.resume_token;
		return this;
	}

	/* A new connection to the same conversation (a reload of the chat page). */
	async resume() {
		this.frames = [];
		await this.open();
		this.ws.send(JSON.stringify({ type: "resume", v: 1, conversation_id: this.conv,
			resume_token: this.resumeToken }));
		const w = await until(() => this.frames.find((f) => f.type === "welcome" ||
			f.type === "error"), `${this.label} welcome after resume`);
		if (w.type !== "welcome")
			fail(`${this.label}: resume refused: ${JSON.stringify(w)}`);
		return this;
	}

	async send(text) {
		const id = `c-${++this.n}`;
		this.ws.send(JSON.stringify({ type: "message", id, text }));
		await until(() => this.frames.find((f) => f.id === id && f.type === "ack"),
			`${this.label}: ack of "${text}"`);
	}

	typing() {
		this.ws.send(JSON.stringify({ type: "typing", id: `t-${++this.n}` }));
	}

	assigned() { return this.frames.some((f) => f.type === "event" && f.event === "assigned"); }
	closed() { return this.frames.some((f) => f.type === "event" && f.event === "closed"); }
	agentTexts() {
		return this.frames.filter((f) => f.type === "message" && f.from === "agent")
			.map((f) => f.text);
	}

	// customer and agent messages, in the order the server sent them (its transcript order)
	transcript() {
		return this.frames.filter((f) => f.type === "message").map((f) => f.text);
	}

	quit() { try { this.ws.close(); } catch (e) { /* gone */ } }
}

// ---- the desktop -----------------------------------------------------------------------------

async function desktopLogin(page, id = AGENT_ID, token = AGENT_TOKEN) {
	await page.goto(`${BASE}/agent.html#agent=${encodeURIComponent(id)}&token=` +
			encodeURIComponent(token));
	await page.locator("#presence").waitFor({ state: "visible", timeout: WAIT_MS });
}

async function desktopPresence(page, p, reason) {
	await page.locator("#presence").selectOption(p);
	if (reason) {
		await page.locator("#break-reason").waitFor({ state: "visible", timeout: WAIT_MS });
		await page.locator("#break-reason").selectOption(reason);
	}
	await page.waitForFunction((p) => {
		const s = document.getElementById("presence");
		return s.value === p && s.classList.contains(p);
	}, p, { timeout: WAIT_MS });
	await sleep(500);
}

async function desktopState(page) {
	return page.evaluate(() => ({
		presence: document.getElementById("presence").value,
		presenceShown: !document.getElementById("presence-box").hidden,
		reason: document.getElementById("break-reason").hidden ? null
			: document.getElementById("break-reason").value,
		wrapup: !document.getElementById("wrapup-done").hidden,
		status: document.getElementById("status").textContent,
		notice: document.getElementById("notice").textContent,
		title: document.getElementById("conv-title").textContent,
		compose: !document.getElementById("compose").hidden,
		list: Array.from(document.querySelectorAll("#conv-list li")).map((l) => l.textContent),
		offers: Array.from(document.querySelectorAll("#offer-list li")).map((l) => l.textContent),
		focus: document.activeElement ? document.activeElement.id ||
			document.activeElement.tagName + "." + document.activeElement.className : null,
	}));
}

async function selectConv(page, name) {
	await page.locator("#conv-list li", { hasText: name }).first().click();
	await page.waitForFunction((n) => document.getElementById("conv-title").textContent === n,
		name, { timeout: WAIT_MS });
}

// The customer chat page and the desktop, the agent available.
async function pageChat(browser, lang = "es", name = "Rosa") {
	const page = await availableDesk(browser);
	const { ctx: cctx, page: cust } = await openPage(browser, "customer");
	await cust.goto(`${BASE}/chat.html`);
	await startChat(cust, lang, name);
	await cust.locator("#status").filter({ hasText: "connected" }).waitFor({ timeout: WAIT_MS });
	return { page, cust, cctx };
}

// The desktop, logged in as the agent and available.
async function availableDesk(browser) {
	const { page } = await openPage(browser, "desktop");
	await desktopLogin(page);
	await desktopPresence(page, "available");
	return page;
}

// A reply through the desktop's box (Enter); acked: wait until the server took it.
async function reply(page, text, acked = true) {
	await page.locator("#text").fill(text);
	await page.locator("#text").press("Enter");
	if (!acked)
		return;
	await page.waitForFunction((t) => Array.from(document.querySelectorAll("#messages li.me"))
		.some((li) => li.textContent.includes(t) && li.classList.contains("acked")),
		text, { timeout: WAIT_MS });
}

async function closeCurrent(page, disposition = "resolved") {
	const title = await page.locator("#conv-title").textContent();
	await page.locator("#close-conv").click();
	await page.locator("#disposition").selectOption(disposition);
	await page.locator("#close-confirm").click();
	await page.waitForFunction((t) => Array.from(document.querySelectorAll("#conv-list li"))
		.some((li) => li.querySelector(".name").textContent === t &&
		      /closed/.test(li.textContent)), title, { timeout: WAIT_MS });
}

module.exports = { ctl, agentShow, Customer, desktopLogin, desktopPresence, desktopState,
	selectConv, pageChat, reply, closeCurrent, availableDesk, cmd };
