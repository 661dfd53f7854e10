// chat_flow.js - a customer page and an agent page chat through the real daemon, in Debian's
// headless Chromium driven by playwright-core. Run by tests/integration/test_browser.py, which
// starts redis-server + omnirouterd and creates the agent; this script only drives the pages.
//
// Environment (all required):
//   OMR_CHAT_URL        the customer page, e.g. http://127.0.0.1:PORT/chat.html
//   OMR_AGENT_URL       the agent desktop, e.g. http://127.0.0.1:PORT/agent.html
//   OMR_AGENT_ID        the agent's id, OMR_AGENT_TOKEN its token (omnirouterctl agent add)
//   OMR_SUPERVISOR_ID   an agent that supervises OMR_AGENT_ID, OMR_SUPERVISOR_TOKEN its token
//   OMR_SCREENSHOT_DIR  where customer-*.png, agent-*.png and supervisor-*.png go (created; old
//                       ones removed)
// Optional: OMR_CHROMIUM (default /usr/bin/chromium).
//
// The flow: the agent logs in with the form and goes available; the customer picks Spanish,
// starts and sends 3 messages; the agent sees them and replies twice; the customer page is
// RELOADED and must show every message exactly once, in order; the customer sends one more; the
// agent page is RELOADED, logs in again by itself (sessionStorage) and must show the whole
// conversation once; the agent replies, the customer sees it, the agent closes. Meanwhile a
// supervisor of the agent logs in: its Team panel shows the agent and the conversation, and the
// keyboard alone opens the conversation's transcript, read-only (the agent, who supervises
// nobody, has no Team panel). No page error or console error may happen, and no page may scroll
// sideways at 1280x800.
//
// Only the pages' stable element ids are used (customer: #lang #name #start #text #send
// #messages #ended; agent: #agent-id #token #presence #messages #text #compose #close-conv
// #close-confirm #disposition #team; supervisor: #team #team-refresh #monitor-view
// #monitor-messages).
// Every wait has a timeout; a failure prints what the pages showed and saves *-failure.png.
// Exit status 0 when everything held, 1 otherwise.
"use strict";

const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

const T0 = Date.now();
const WAIT_MS = 15000;   // any single wait (selectors, text); generous for ASan builds
const SETTLE_MS = 300;   // after a transcript is complete: time for a late duplicate to show

function env(name) {
	const v = process.env[name];
	if (!v) {
		console.error(`chat_flow.js: ${name} is not set`);
		process.exit(2);
	}
	return v;
}

const CHAT_URL = env("OMR_CHAT_URL");
const AGENT_URL = env("OMR_AGENT_URL");
const AGENT_ID = env("OMR_AGENT_ID");
const AGENT_TOKEN = env("OMR_AGENT_TOKEN");
const SUPERVISOR_ID = env("OMR_SUPERVISOR_ID");
const SUPERVISOR_TOKEN = env("OMR_SUPERVISOR_TOKEN");
const SHOT_DIR = env("OMR_SCREENSHOT_DIR");
const CHROMIUM = process.env.OMR_CHROMIUM || "/usr/bin/chromium";

// Each text is unique and none contains another, so bubbles can be counted by text.
const C1 = "Hola, tengo un problema con mi pedido";
const C2 = "El número de pedido es 4417";
const C3 = "Llegó incompleto: falta una caja";
const A1 = "¡Hola! Soy Luis, reviso el pedido ahora mismo.";
const A2 = "Veo el envío: la segunda caja sale mañana.";
const C4 = "Perfecto, ¿me llegará un correo de seguimiento?";
const A3 = "Sí, recibirás el número de seguimiento por correo hoy.";
const CS = "Gracias, espero"; // sent while the supervisor reads the conversation

function log(msg) {
	const s = ((Date.now() - T0) / 1000).toFixed(1).padStart(5);
	console.log(`[${s}s] ${msg}`);
}

class Failure extends Error {}

function fail(msg) {
	throw new Failure(msg);
}

const pageErrors = [];   // page errors, console errors, failed requests, HTTP errors
const shots = [];

function watch(page, who) {
	page.on("pageerror", (e) => {
		pageErrors.push(`${who}: page error: ${e && e.stack ? e.stack : e}`);
	});
	page.on("console", (m) => {
		if (m.type() === "error") {
			const loc = m.location();
			pageErrors.push(`${who}: console error: ${m.text()}` +
				(loc && loc.url ? ` (${loc.url}:${loc.lineNumber})` : ""));
		}
	});
	page.on("requestfailed", (r) => {
		const f = r.failure();
		// A reload aborts what the old document still had in flight: not an error.
		if (f && /ERR_ABORTED/.test(f.errorText))
			return;
		pageErrors.push(`${who}: request failed: ${r.method()} ${r.url()}: ${f && f.errorText}`);
	});
	page.on("response", (r) => {
		if (r.status() >= 400)
			pageErrors.push(`${who}: HTTP ${r.status()} for ${r.url()}`);
	});
}

async function shot(page, name) {
	const file = path.join(SHOT_DIR, `${name}.png`);
	await page.screenshot({ path: file });
	shots.push(file);
	log(`screenshot ${file}`);
}

// The transcript as shown: one entry per #messages <li>, its .text when it has one.
async function lines(page) {
	return page.$$eval("#messages li", (lis) => lis.map((li) => {
		const t = li.querySelector(".text");
		return (t ? t.textContent : li.textContent).trim();
	}));
}

async function waitText(page, who, text, timeout = WAIT_MS) {
	try {
		await page.waitForFunction((t) => Array.from(document.querySelectorAll("#messages li"))
			.some((li) => li.textContent.includes(t)), text, { timeout });
	} catch (e) {
		fail(`${who}: "${text}" not shown within ${timeout} ms; transcript:\n  ` +
		     (await lines(page).catch(() => [])).join("\n  "));
	}
}

async function waitVisible(page, who, selector, what, timeout = WAIT_MS) {
	try {
		await page.locator(selector).waitFor({ state: "visible", timeout });
	} catch (e) {
		fail(`${who}: ${what} (${selector}) not visible within ${timeout} ms`);
	}
}

async function waitHidden(page, who, selector, what, timeout = WAIT_MS) {
	try {
		await page.locator(selector).waitFor({ state: "hidden", timeout });
	} catch (e) {
		fail(`${who}: ${what} (${selector}) still visible after ${timeout} ms`);
	}
}

// Waits until every text in `expected` is shown, lets late items arrive, then asserts that each
// is shown exactly once, in this order, and that no line at all is shown twice (events too).
async function checkTranscript(page, who, expected) {
	for (const t of expected)
		await waitText(page, who, t);
	await page.waitForTimeout(SETTLE_MS);
	const got = await lines(page);
	const dump = "\n  " + got.join("\n  ");
	for (const t of expected) {
		const n = got.filter((l) => l.includes(t)).length;
		if (n !== 1)
			fail(`${who}: "${t}" shown ${n} times (want exactly once); transcript:${dump}`);
	}
	const order = got.map((l) => expected.find((t) => l.includes(t))).filter(Boolean);
	if (order.join("\u0000") !== expected.join("\u0000"))
		fail(`${who}: messages out of order: got\n  ${order.join("\n  ")}\nwant\n  ` +
		     `${expected.join("\n  ")}`);
	const twice = got.filter((l, i) => got.indexOf(l) !== i);
	if (twice.length)
		fail(`${who}: lines shown more than once: ${JSON.stringify(twice)}; transcript:${dump}`);
	log(`${who}: transcript has ${expected.length} messages once each, in order ` +
	    `(${got.length} lines)`);
}

async function noSideScroll(page, who, when) {
	const m = await page.evaluate(() => ({
		scroll: document.documentElement.scrollWidth,
		client: document.documentElement.clientWidth,
	}));
	if (m.scroll > m.client)
		fail(`${who}: horizontal scroll ${when}: scrollWidth ${m.scroll} > clientWidth ${m.client}`);
}

async function customerSend(page, text) {
	await page.locator("#text").fill(text);
	await page.locator("#send").click();
	await waitText(page, "customer", text);
	// The bubble is drawn at once; it is marked acked once the server stored it.
	try {
		await page.waitForFunction((t) => Array.from(document.querySelectorAll("#messages li"))
			.some((li) => li.textContent.includes(t) && li.classList.contains("acked")),
			text, { timeout: WAIT_MS });
	} catch (e) {
		fail(`customer: "${text}" not acknowledged within ${WAIT_MS} ms`);
	}
}

async function agentReply(page, text) {
	await page.locator("#text").fill(text);
	await page.locator("#compose [type=submit]").click();
	await waitText(page, "agent", text);
	try {
		await page.waitForFunction((t) => Array.from(document.querySelectorAll("#messages li"))
			.some((li) => li.textContent.includes(t) && li.classList.contains("acked")),
			text, { timeout: WAIT_MS });
	} catch (e) {
		fail(`agent: reply "${text}" not acknowledged within ${WAIT_MS} ms`);
	}
}

async function waitPresence(page, value) {
	try {
		await page.waitForFunction((v) => {
			const p = document.getElementById("presence");
			return p && p.value === v && p.classList.contains(v);
		}, value, { timeout: WAIT_MS });
	} catch (e) {
		fail(`agent: presence did not become ${value} within ${WAIT_MS} ms`);
	}
}

// The supervisor's desktop: the Team panel lists the agent and its conversation with the
// customer; Tab and Enter open it read-only; Escape goes back.
async function superviseTeam(sup, agentHasTeam, customer) {
	if (agentHasTeam)
		fail("agent: the Team panel is shown to an agent who supervises nobody");
	await sup.goto(AGENT_URL);
	await waitVisible(sup, "supervisor", "#agent-id", "login form");
	await sup.locator("#agent-id").fill(SUPERVISOR_ID);
	await sup.locator("#token").fill(SUPERVISOR_TOKEN);
	await sup.locator("#token").press("Enter");
	await waitVisible(sup, "supervisor", "#team", "the Team panel");
	const conv = sup.locator("#team-list button.team-conv");
	try {
		await conv.first().waitFor({ state: "visible", timeout: WAIT_MS });
	} catch (e) {
		fail("supervisor: no conversation in the Team panel; it shows: " +
		     JSON.stringify(await sup.locator("#team").textContent()));
	}
	const team = await sup.locator("#team-list").textContent();
	for (const want of ["Luis Ortega", "available", "chat 1/2", "Ana", "es"])
		if (!team.includes(want))
			fail(`supervisor: the Team panel lacks ${JSON.stringify(want)}: ${JSON.stringify(team)}`);
	if (await sup.locator("#no-convs").isHidden())
		fail("supervisor: its own (empty) conversation list should say so");
	// Keyboard only: Tab from the Refresh button reaches the conversation; Enter opens it.
	await sup.locator("#team-refresh").focus();
	await sup.keyboard.press("Enter");
	await conv.first().waitFor({ state: "visible" });
	await sup.locator("#team-refresh").focus();
	await sup.keyboard.press("Tab");
	const focused = await sup.evaluate(() => document.activeElement &&
		document.activeElement.classList.contains("team-conv"));
	if (!focused)
		fail("supervisor: Tab from Refresh does not reach the team's conversation");
	await sup.keyboard.press("Enter");
	await waitVisible(sup, "supervisor", "#monitor-view", "the read-only transcript");
	try {
		await sup.waitForFunction((texts) => {
			const t = document.getElementById("monitor-messages").textContent;
			return texts.every((x) => t.includes(x));
		}, [C1, C2, C3, A1, A2], { timeout: WAIT_MS });
	} catch (e) {
		fail("supervisor: the transcript lacks messages: " +
		     JSON.stringify(await sup.locator("#monitor-messages").textContent()));
	}
	if (await sup.locator("#monitor-view textarea, #monitor-view input").count())
		fail("supervisor: the transcript is read-only, yet has a text box");
	// The transcript shown is read again every 5 s: a new message appears without Refresh.
	await customerSend(customer, CS);
	try {
		await sup.waitForFunction((t) => document.getElementById("monitor-messages")
			.textContent.includes(t), CS, { timeout: 12000 });
	} catch (e) {
		fail("supervisor: a message sent while reading did not appear within 12 s: " +
		     JSON.stringify(await sup.locator("#monitor-messages").textContent()));
	}
	await noSideScroll(sup, "supervisor", "reading the team's conversation");
	await shot(sup, "supervisor-1-monitor");
	await sup.keyboard.press("Escape");
	await waitHidden(sup, "supervisor", "#monitor-view", "the transcript after Escape");
	log("supervisor: team panel and read-only transcript, by keyboard");
}

async function main() {
	fs.mkdirSync(SHOT_DIR, { recursive: true });
	for (const f of fs.readdirSync(SHOT_DIR))
		if (/^(customer|agent|supervisor)-.*\.png$/.test(f))
			fs.unlinkSync(path.join(SHOT_DIR, f));

	const browser = await chromium.launch({
		executablePath: CHROMIUM,
		headless: true,
		args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		       "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
		timeout: 30000,
	});
	log(`chromium ${browser.version()} from ${CHROMIUM}`);
	let agent = null;
	let customer = null;
	let supervisor = null;
	try {
		// Two contexts: two people, each with their own sessionStorage and cookies.
		const opts = { viewport: { width: 1280, height: 800 }, locale: "es-MX" };
		const actx = await browser.newContext(opts);
		const cctx = await browser.newContext(opts);
		const sctx = await browser.newContext(opts);
		agent = await actx.newPage();
		customer = await cctx.newPage();
		supervisor = await sctx.newPage();
		for (const p of [agent, customer, supervisor])
			p.setDefaultTimeout(WAIT_MS);
		watch(agent, "agent");
		watch(customer, "customer");
		watch(supervisor, "supervisor");

		// --- agent logs in with the form and goes available
		await agent.goto(AGENT_URL);
		await waitVisible(agent, "agent", "#agent-id", "login form");
		await agent.locator("#agent-id").fill(AGENT_ID);
		await agent.locator("#token").fill(AGENT_TOKEN);
		await agent.locator("#token").press("Enter");
		await waitVisible(agent, "agent", "#presence", "presence menu after login");
		await waitHidden(agent, "agent", "#agent-id", "login form after login");
		await agent.locator("#presence").selectOption("available");
		await waitPresence(agent, "available");
		log("agent: logged in with the form, available");
		await noSideScroll(agent, "agent", "after login");
		await shot(agent, "agent-1-available");

		// --- customer picks Spanish, starts, sends 3 messages
		await customer.goto(CHAT_URL);
		await waitVisible(customer, "customer", "#lang", "language menu");
		await customer.locator("#lang").selectOption("es");
		await customer.locator("#name").fill("Ana");
		await noSideScroll(customer, "customer", "on the start form");
		await shot(customer, "customer-1-start");
		await customer.locator("#start [type=submit]").click();
		await waitVisible(customer, "customer", "#text", "message box after start");
		log("customer: started in Spanish");
		for (const t of [C1, C2, C3])
			await customerSend(customer, t);
		log("customer: 3 messages sent and acknowledged");

		// --- the agent sees them and replies twice
		await checkTranscript(agent, "agent", [C1, C2, C3]);
		await agentReply(agent, A1);
		await agentReply(agent, A2);
		log("agent: replied twice");
		await checkTranscript(customer, "customer", [C1, C2, C3, A1, A2]);
		await noSideScroll(customer, "customer", "in the conversation");
		await noSideScroll(agent, "agent", "in the conversation");
		await shot(customer, "customer-2-conversation");
		await shot(agent, "agent-2-conversation");
		await superviseTeam(supervisor, await agent.locator("#team").isVisible(), customer);

		// --- RELOAD the customer page mid-conversation
		log("customer: reload");
		await customer.reload();
		await waitVisible(customer, "customer", "#text", "message box after reload");
		await checkTranscript(customer, "customer (after reload)", [C1, C2, C3, A1, A2]);
		await noSideScroll(customer, "customer", "after reload");
		await shot(customer, "customer-3-after-reload");
		await customerSend(customer, C4);
		await checkTranscript(agent, "agent", [C1, C2, C3, A1, A2, C4]);

		// --- RELOAD the agent page: it logs in again by itself
		log("agent: reload");
		await agent.reload();
		await waitVisible(agent, "agent", "#presence", "presence menu after reload (login again)");
		if (await agent.locator("#agent-id").isVisible())
			fail("agent: the login form is shown again after a reload");
		await waitPresence(agent, "available");
		await checkTranscript(agent, "agent (after reload)", [C1, C2, C3, A1, A2, C4]);
		await noSideScroll(agent, "agent", "after reload");
		await shot(agent, "agent-3-after-reload");

		// --- the agent replies after its reload; the customer sees it once
		await agentReply(agent, A3);
		await checkTranscript(customer, "customer", [C1, C2, C3, A1, A2, C4, A3]);
		await checkTranscript(agent, "agent", [C1, C2, C3, A1, A2, C4, A3]);

		// --- the agent closes the conversation; the customer sees it end
		await waitVisible(agent, "agent", "#close-conv", "close button");
		await agent.locator("#close-conv").click();
		// Close asks for the outcome (disposition) first.
		await waitVisible(agent, "agent", "#close-confirm", "close outcome form");
		await agent.locator("#disposition").selectOption("resolved");
		await agent.locator("#close-confirm").click();
		await waitHidden(agent, "agent", "#close-conv", "close button after closing");
		await waitVisible(customer, "customer", "#ended", "the conversation-ended notice");
		log("agent: closed; customer: conversation ended");
		await noSideScroll(customer, "customer", "after the close");
		await noSideScroll(agent, "agent", "after the close");
		await shot(customer, "customer-4-closed");
		await shot(agent, "agent-4-closed");

		// A last look for errors that came late (the close, websocket shutdown).
		await customer.waitForTimeout(SETTLE_MS);
		if (pageErrors.length)
			fail(`errors in the pages:\n  ${pageErrors.join("\n  ")}`);
	} catch (e) {
		console.error(`FAILED: ${e instanceof Failure ? e.message : e && e.stack ? e.stack : e}`);
		if (pageErrors.length)
			console.error(`errors in the pages:\n  ${pageErrors.join("\n  ")}`);
		for (const [p, who] of [[customer, "customer"], [agent, "agent"],
					[supervisor, "supervisor"]]) {
			if (!p)
				continue;
			try {
				console.error(`${who} transcript:\n  ${(await lines(p)).join("\n  ")}`);
				const st = await p.evaluate(() => {
					const s = document.getElementById("status");
					return s ? s.textContent : "";
				});
				console.error(`${who} status: ${JSON.stringify(st)}`);
				await shot(p, `${who}-failure`);
			} catch (e2) {
				console.error(`${who}: could not read the page: ${e2}`);
			}
		}
		throw e;
	} finally {
		await browser.close();
		console.log("screenshots:");
		for (const f of shots)
			console.log(`  ${f}`);
	}
	log("PASS: chat, reloads and close through the real daemon; no page errors");
}

main().then(() => process.exit(0), () => process.exit(1));
