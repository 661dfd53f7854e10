// desktop_day.js - an agent's and a customer's working day on web/agent.html and
// web/chat.html in Debian's headless Chromium (playwright-core), against the real daemon. Run by
// tests/integration/test_desktop_day.py, one scenario per run:
//
//   node --experimental-websocket tests/browser/desktop_day.js SCENARIO
//
// Environment: as tests/browser/desktop_edges.js (OMR_BASE, OMR_AGENT_ID, OMR_AGENT_TOKEN,
// optional OMR_AGENT2_ID/OMR_AGENT2_TOKEN, OMR_CTL, OMR_CFG, OMR_SHOTS). Printing "CMD NAME"
// makes the Python side act (restart, redis-pause, redis-resume); it answers "done NAME" on
// stdin. Exit 0 when every check held, 1 otherwise.
"use strict";


const { WAIT_MS, BASE, AGENT_ID, AGENT_TOKEN, WS_BASE, log, check, fail, sleep,
	until, openPage, lines, waitText, startChat, customerSend, runScenario } =
	require("./edges_lib");
const { ctl, agentShow, Customer, desktopLogin, desktopPresence, desktopState, selectConv,
	pageChat, reply, closeCurrent, availableDesk, cmd } = require("./desktop_lib");


async function shot(page, name) {
	if (process.env.OMR_SHOTS)
		await page.screenshot({ path: `${process.env.OMR_SHOTS}/${name}.png` }).catch(() => {});
}

// ---- the desktop -----------------------------------------------------------------------------


async function online(page, timeout = 40000) {
	await page.waitForFunction(() => document.getElementById("status").textContent === "online" &&
		!document.getElementById("presence-box").hidden, null, { timeout });
}

function entryOf(st, name) {
	return st.list.find((l) => l.includes(name)) || "";
}

// ---- scenarios -------------------------------------------------------------------------------

// Routes the page's agent (or customer) websocket through a proxy: down() closes the page's
// connection (the browser sees it drop, as when the network goes) and refuses new ones until
// up().
async function agentProxy(page, path = /\/ws\/agent$/) {
	const p = { pages: [], down: false, connections: 0 };
	await page.routeWebSocket(path, (ws) => {
		if (p.down) {
			ws.close({ code: 1006 }).catch(() => {});
			return;
		}
		const server = ws.connectToServer();
		p.connections++;
		const conn = { ws, server };
		p.pages.push(conn);
		ws.onMessage((m) => { if (!p.blackhole) server.send(m); });
		server.onMessage((m) => { if (!p.blackhole) ws.send(m); });
		ws.onClose(() => server.close().catch(() => {}));
		server.onClose(() => { if (!p.blackhole) ws.close().catch(() => {}); });
	});
	p.cut = async () => {
		p.down = true;
		for (const c of p.pages) {
			await c.ws.close({ code: 1006 }).catch(() => {});
			await c.server.close().catch(() => {});
		}
		p.pages = [];
	};
	p.up = () => { p.down = false; };
	// the network goes silently: nothing passes either way, nobody is told
	p.silence = () => { p.blackhole = true; };
	// the server gives up on the connection (its pings unanswered); the page is not told
	p.serverDrops = async () => {
		for (const c of p.pages)
			await c.server.close().catch(() => {});
	};
	// the network is back: the page's connection is found dead (RST)
	p.restore = async () => {
		p.blackhole = false;
		for (const c of p.pages)
			await c.ws.close({ code: 1006 }).catch(() => {});
		p.pages = [];
	};
	return p;
}

// The desktop behind agentProxy, logged in and available.
async function proxiedDesk(browser) {
	const { page } = await openPage(browser, "desktop");
	const px = await agentProxy(page);
	await desktopLogin(page);
	await desktopPresence(page, "available");
	return { page, px };
}

// PROTOCOL.md "presence": "The router may put an agent on break by itself (reason
// missed-offers, after several offers in a row that the desktop received and acked timed out);
// no item announces that, but the presence of the next welcome or presence ack shows it."
// The agent is away from the desk for a minute while offers come and time out. Back at the
// desk, the desktop must not go on saying "Available" while the router has put it on break.
async function missedOffers(browser) {
	const page = await availableDesk(browser);
	const offered = [];
	for (const name of ["Olga", "Pia"]) {
		const o = await new Customer({ name, kind: "offer" }).start();
		offered.push(o);
		await page.locator("#offer-list li", { hasText: name }).waitFor({ timeout: WAIT_MS });
		await page.locator("#offer-list li", { hasText: name }).waitFor({ state: "detached",
			timeout: WAIT_MS });
		log(`${name}'s offer timed out on the desktop`);
	}
	await until(() => agentShow().presence === "break", "the router's break", 10000)
		.catch(() => {});
	const a = agentShow();
	log(`server: ${a.presence} (${a.reason})`);
	check(a.presence === "break" && a.reason === "missed-offers",
	      `precondition: the router put the agent on break: ${a.presence} (${a.reason})`);
	// a chat for anyone comes; the agent waits at the desk
	const c = await new Customer({ name: "Rosa" }).start();
	await c.send("hola, ¿hay alguien?");
	await sleep(10000); // the notice "Offer expired" is gone by now
	const st = await desktopState(page);
	await shot(page, "missed-offers");
	log(`desktop 10 s later: ${JSON.stringify(st)}; Rosa assigned: ${c.assigned()}`);
	check(st.presence !== "available" || c.assigned(),
	      `after ${offered.length} offers timed out the router put the agent on break ` +
	      `(missed-offers); Rosa waits and no chat comes, but the desktop still shows ` +
	      `presence "${st.presence}" (status "${st.status}", notice "${st.notice}"): nothing ` +
	      `says the agent is on break or how to get back`);
	// choosing Available again (the only way back) is impossible: it is already selected
	offered.forEach((o) => o.quit());
	c.quit();
}

// Three chats at once (capacity 3): the agent opens a second conversation to read its new
// messages, then reloads the page (F5). The desktop "keeps what it showed (per tab) to survive a
// reload": the conversation the agent was reading, with its messages read.
async function switchReload(browser) {
	const page = await availableDesk(browser);
	const r = await new Customer({ name: "Rosa" }).start();
	await r.send("hola soy Rosa");
	await waitText(page, "hola soy Rosa");
	const t = await new Customer({ name: "Tomas" }).start();
	for (const x of ["t1", "t2", "t3"])
		await t.send(x);
	const u = await new Customer({ name: "Uma" }).start();
	await u.send("u1");
	await until(async () => /3 new/.test(entryOf(await desktopState(page), "Tomas")) &&
		/1 new/.test(entryOf(await desktopState(page), "Uma")), "Tomas 3 new, Uma 1 new");
	await selectConv(page, "Tomas"); // reads Tomas's three messages
	let st = await desktopState(page);
	log(`after opening Tomas: ${JSON.stringify(st.list)}`);
	check(!/new/.test(entryOf(st, "Tomas")), `Tomas still marked new: ${entryOf(st, "Tomas")}`);
	await page.reload();
	await page.locator("#presence").waitFor({ state: "visible", timeout: WAIT_MS });
	await sleep(2500);
	st = await desktopState(page);
	log(`after the reload: title ${st.title}; ${JSON.stringify(st.list)}`);
	check(st.title === "Tomas", `the agent was reading Tomas's chat; after a reload the ` +
	      `desktop opens ${st.title}'s instead`);
	check(!/new/.test(entryOf(st, "Tomas")), `after a reload Tomas's messages the agent had ` +
	      `read are marked unread again: "${entryOf(st, "Tomas")}"`);
	r.quit(); t.quit(); u.quit();
}

// Two tabs of the same agent. The agent opens the desktop in a second tab (logs in there: the
// first tab is "logged in elsewhere"), works a bit in it, closes it and goes back to the first
// tab, which it reloads to log in again. The conversation must show what was said meanwhile.
async function twoTabs(browser) {
	const { ctx, page } = await openPage(browser, "desktop tab 1");
	await desktopLogin(page);
	await desktopPresence(page, "available");
	const c = await new Customer({ name: "Rosa" }).start();
	await c.send("uno: antes de la segunda pestaña");
	await waitText(page, "uno: antes");
	const tab2 = await ctx.newPage();
	await desktopLogin(tab2);
	await page.waitForFunction(() => /elsewhere/.test(document.getElementById("status")
		.textContent), null, { timeout: WAIT_MS });
	await selectConv(tab2, "Rosa");
	await c.send("dos: mientras la segunda pestaña");
	await waitText(tab2, "dos: mientras");
	await reply(tab2, "respuesta desde la segunda pestaña");
	await until(() => c.agentTexts().includes("respuesta desde la segunda pestaña"),
		"the reply at the customer");
	await tab2.close();
	await page.reload();
	await online(page, WAIT_MS);
	await selectConv(page, "Rosa");
	await c.send("tres: de vuelta en la primera");
	await waitText(page, "tres: de vuelta");
	await sleep(1000);
	const shown = await lines(page);
	log(`tab 1 after the reload: ${JSON.stringify(shown)}`);
	await shot(page, "two-tabs");
	for (const t of ["dos: mientras la segunda pestaña", "respuesta desde la segunda pestaña"])
		check(shown.filter((l) => l.includes(t)).length === 1,
		      `back in the first tab (reloaded, logged in again) Rosa's conversation lacks ` +
		      `"${t}", said while the second tab was in use: ${JSON.stringify(shown)}`);
	c.quit();
}

// Redis hiccups (a few seconds) while the agent sends a reply: the daemon answers
// `unavailable` ("resend it", PROTOCOL.md). The customer page resends its messages; the desktop
// must not lose the agent's reply either.
async function unavailableReply(browser) {
	const { page, cust } = await pageChat(browser);
	await customerSend(cust, "mi pedido 4521");
	await waitText(page, "mi pedido 4521");
	await cmd("redis-pause");
	await reply(page, "Lo reviso, un momento", false);
	await cust.locator("#text").fill("¿sigue ahí?");
	await cust.locator("#send").click();
	await sleep(2500);
	const during = await page.evaluate(() => {
		const li = Array.from(document.querySelectorAll("#messages li.me")).pop();
		return { cls: li.className, title: li.title,
			status: document.getElementById("status").textContent };
	});
	log(`the reply while Redis is stopped: ${JSON.stringify(during)}`);
	await cmd("redis-resume");
	await waitText(page, "¿sigue ahí?", 30000);
	await sleep(8000);
	const after = await page.evaluate(() => {
		const li = Array.from(document.querySelectorAll("#messages li.me")).pop();
		return { cls: li.className, title: li.title,
			status: document.getElementById("status").textContent };
	});
	const custLines = await lines(cust);
	log(`after Redis is back: reply ${JSON.stringify(after)}; customer sees ` +
	    `${JSON.stringify(custLines)}`);
	await shot(page, "unavailable-reply");
	const got = custLines.some((l) => l.includes("Lo reviso, un momento"));
	check(got && !/failed/.test(after.cls),
	      got ? `the agent's reply sent during a 2.5-s Redis stall got \`unavailable\` ` +
	      `("${during.title}"); it was stored and the customer has it, but the desktop shows it ` +
	      `failed for good (red outline, ${JSON.stringify(after.title)}) and nothing resends ` +
	      `it: an agent who retypes it sends it twice`
	      : `the agent's reply sent during a 2.5-s Redis stall got \`unavailable\` and was ` +
	      `never sent again (the customer's message of the same moment was): lost`);
}

// The agent's connection drops for ~8 s (the desktop says "reconnecting…"); the agent types a
// reply meanwhile, the customer asks something meanwhile. After the reconnect each line shows
// once on both sides, and in the same order (the stored one).
async function dropOrder(browser) {
	const { page, px } = await proxiedDesk(browser);
	const c = await new Customer({ name: "Rosa" }).start();
	await c.send("pregunta uno");
	await waitText(page, "pregunta uno");
	await px.cut();
	await page.waitForFunction(() => /reconnecting/.test(document.getElementById("status")
		.textContent), null, { timeout: WAIT_MS });
	await c.send("pregunta dos (durante el corte)");
	await reply(page, "respuesta a la pregunta uno", false);
	await sleep(8000);
	px.up();
	await online(page);
	await waitText(page, "pregunta dos");
	await until(() => c.agentTexts().includes("respuesta a la pregunta uno"), "reply at customer");
	await sleep(1500);
	const desk = (await lines(page)).filter((l) => /pregunta|respuesta/.test(l));
	const stored = c.transcript();
	log(`desktop: ${JSON.stringify(desk)}; customer (server order): ${JSON.stringify(stored)}`);
	for (const t of ["pregunta uno", "pregunta dos (durante el corte)",
		"respuesta a la pregunta uno"])
		check(desk.filter((l) => l === t).length === 1, `"${t}" not shown once: ${desk}`);
	check(JSON.stringify(desk) === JSON.stringify(stored),
	      `after an 8-s connection drop the desktop shows ${JSON.stringify(desk)}, the ` +
	      `customer (and the stored transcript) ${JSON.stringify(stored)}`);
	await page.reload();
	await online(page, WAIT_MS);
	await sleep(1500);
	const again = (await lines(page)).filter((l) => /pregunta|respuesta/.test(l));
	log(`desktop after a reload: ${JSON.stringify(again)}`);
	c.quit();
}

// The chat ends; the customer answers the survey just as the connection is down (the daemon is
// restarting, or the customer's network blinks). The page must send the answer once it can (it
// "keeps the connection open until the answer is acknowledged"), or say it could not: not sit
// with every control disabled and nothing said.
async function surveyWhileDown(browser) {
	const { page, cust } = await pageChat(browser);
	await customerSend(cust, "gracias por todo");
	await waitText(page, "gracias por todo");
	await reply(page, "¡A usted! 😊");
	await closeCurrent(page);
	await cust.locator("#survey").waitFor({ state: "visible", timeout: WAIT_MS });
	await cmd("stop");
	await cust.locator('#stars .star[data-score="4"]').click();
	await cust.locator("#rate-comment").fill("Muy amable 👍 شكرا");
	await cust.locator("#rate-send").click();
	await sleep(2000);
	await cmd("start");
	let st = null;
	const end = Date.now() + 25000;
	while (Date.now() < end) {
		st = await cust.evaluate(() => ({
			thanks: !document.getElementById("survey-thanks").hidden,
			survey: !document.getElementById("survey").hidden,
			sendDisabled: document.getElementById("rate-send").disabled,
			starsDisabled: document.querySelector("#stars .star").disabled,
			error: document.getElementById("survey-error").hidden ? ""
				: document.getElementById("survey-error").textContent,
			status: document.getElementById("status").textContent,
		}));
		if (st.thanks || st.error)
			break;
		await sleep(500);
	}
	await shot(cust, "survey-while-down");
	log(`survey 25 s after the daemon is back: ${JSON.stringify(st)}`);
	check(st.thanks || st.error, `the customer answered the survey while the daemon was down ` +
	      `for 2 s; 25 s after it is back the page still shows the survey with every control ` +
	      `disabled and nothing said (${JSON.stringify(st)}): the answer is never sent and the ` +
	      `customer cannot try again`);
}

// Offers with the keyboard: reject with a reason, Escape backs out, and an offer that times
// out while the agent is in its reject form leaves the focus somewhere usable.
async function offerKeyboard(browser) {
	const page = await availableDesk(browser);
	const o1 = await new Customer({ name: "Olga", kind: "offer" }).start();
	const card = page.locator("#offer-list li", { hasText: "Olga" });
	await card.waitFor({ timeout: WAIT_MS });
	await card.locator(".offer-actions button.reject").focus();
	await page.keyboard.press("Enter");
	let f = await page.evaluate(() => document.activeElement.className);
	check(f === "reject-reason", `Reject: focus on ${f}`);
	await page.keyboard.press("Escape");
	f = await page.evaluate(() => document.activeElement.textContent);
	check(f === "Reject", `Escape: focus on ${f}`);
	await page.keyboard.press("Enter");
	await page.keyboard.press("ArrowDown"); // busy
	await page.keyboard.press("Enter");
	await card.waitFor({ state: "detached", timeout: WAIT_MS });
	f = await page.evaluate(() => document.activeElement.tagName + "#" +
		document.activeElement.id);
	log(`after a keyboard reject, focus on ${f}`);
	check(!/^BODY/.test(f), `rejected with the keyboard (Enter on Reject, a reason, Enter): ` +
	      `the card goes and the focus falls to the page's top (${f}); the agent must Tab ` +
	      `through the header again`);
	const o2 = await new Customer({ name: "Pia", kind: "offer" }).start();
	const card2 = page.locator("#offer-list li", { hasText: "Pia" });
	await card2.waitFor({ timeout: WAIT_MS });
	await card2.locator(".offer-actions button.reject").focus();
	await page.keyboard.press("Enter");
	// another tab in front while the offer times out
	const other = await page.context().newPage();
	await other.goto(`${BASE}/healthz`);
	await other.bringToFront();
	await card2.waitFor({ state: "detached", timeout: 20000 });
	await page.bringToFront();
	const st = await desktopState(page);
	log(`after the offer timed out: ${JSON.stringify(st)}`);
	check(st.focus && !/^BODY/.test(st.focus), `an offer timed out while the agent was in its ` +
	      `reject form (keyboard): the focus falls to the page's top (${st.focus})`);
	o1.quit(); o2.quit();
}

// Capacity 3: the agent writes a reply to Rosa, and before sending it opens Tomas's chat to
// read what he just wrote (or accepts an offer, which opens the new chat by itself). The reply
// box is one for all conversations: Rosa's half-written reply is now in Tomas's conversation,
// and Enter sends it to Tomas. Expected: a draft belongs to its conversation.
async function draftSwitch(browser) {
	const page = await availableDesk(browser);
	const r = await new Customer({ name: "Rosa" }).start();
	await r.send("mi pedido 4521 no llegó");
	await waitText(page, "mi pedido 4521");
	const t = await new Customer({ name: "Tomas" }).start();
	await t.send("hola, una pregunta");
	await until(async () => /1 new/.test(entryOf(await desktopState(page), "Tomas")), "Tomas new");
	const draft = "Rosa, su pedido 4521 sale mañana a Calle Mayor 7";
	await page.locator("#text").fill(draft);
	await selectConv(page, "Tomas");
	const box = await page.locator("#text").inputValue();
	log(`in Tomas's conversation the reply box holds ${JSON.stringify(box)}`);
	check(box !== draft, `the agent's half-written reply to Rosa ("${draft}") is in the ` +
	      `reply box of Tomas's conversation after switching to it`);
	await page.locator("#text").press("Enter");
	await sleep(2000);
	log(`Tomas got ${JSON.stringify(t.agentTexts())}`);
	check(!t.agentTexts().includes(draft), `Enter in Tomas's conversation sent Rosa's reply ` +
	      `(her order number and address) to Tomas`);
	await selectConv(page, "Rosa");
	const back = await page.locator("#text").inputValue();
	log(`back in Rosa's conversation the box holds ${JSON.stringify(back)}`);
	// the same with an offer accepted: the new chat opens by itself
	await page.locator("#text").fill("Rosa, le escribo el número de seguimiento:");
	const o = await new Customer({ name: "Olga", kind: "offer" }).start();
	await page.locator("#offer-list li button.accept").click();
	await page.waitForFunction(() => document.getElementById("conv-title").textContent === "Olga",
		null, { timeout: WAIT_MS });
	const box2 = await page.locator("#text").inputValue();
	const focus = await page.evaluate(() => document.activeElement.id);
	log(`after accepting Olga's offer: box ${JSON.stringify(box2)}, focus ${focus}`);
	check(!box2, `after accepting an offer the new conversation (Olga) opens with the reply ` +
	      `box focused and holding the draft written to Rosa: ${JSON.stringify(box2)}`);
	r.quit(); t.quit(); o.quit();
}

// The agent's connection is gone longer than routing.agent_grace_s (5 s here); maria takes
// the chat. luis typed a reply meanwhile. Back online, luis's desktop says the chat was taken
// back and marks the reply failed (right), but its status bar says "error: ..." for good.
async function longDrop(browser) {
	const { page, px } = await proxiedDesk(browser);
	const { page: cust } = await openPage(browser, "customer");
	await cust.goto(`${BASE}/chat.html`);
	await startChat(cust);
	await customerSend(cust, "hola, necesito ayuda");
	await waitText(page, "hola, necesito ayuda");
	const { page: mp } = await openPage(browser, "desktop maria");
	await desktopLogin(mp, process.env.OMR_AGENT2_ID, process.env.OMR_AGENT2_TOKEN);
	await desktopPresence(mp, "available");
	await px.cut();
	await reply(page, "escrito sin conexión", false);
	await waitText(cust, "Your agent was disconnected", 30000);
	await waitText(mp, "hola, necesito ayuda", 30000);
	px.up();
	await online(page);
	await sleep(3000);
	const st = await desktopState(page);
	const l = await lines(page);
	const mine = await page.evaluate(() => Array.from(document.querySelectorAll("#messages li.me"))
		.map((li) => ({ cls: li.className, title: li.title })));
	log(`luis after the long drop: ${JSON.stringify(st)}\n  ${JSON.stringify(l)}\n  ` +
	    `${JSON.stringify(mine)}`);
	const cl = await lines(cust);
	log(`customer: ${JSON.stringify(cl)}`);
	check(!cl.some((x) => x.includes("escrito sin conexión")), "the offline reply reached " +
	      "the customer after the chat went to maria");
	check(/taken back|transferred|closed/i.test(entryOf(st, "Rosa")) && !st.compose,
	      `luis's desktop still offers to reply in a chat maria holds: ${JSON.stringify(st)}`);
	await sleep(9000);
	const later = await desktopState(page);
	check(later.status === "online", `12 s after the reconnect luis's status bar still says ` +
	      `"${later.status}" (the reply he typed offline was refused); the desktop is online ` +
	      `and working, and no later success clears it`);
}

// The site (a supervisor with omnirouterctl agent state) puts the agent on break for a
// meeting. The desktop must not go on showing "Available".
async function adminPresence(browser) {
	const page = await availableDesk(browser);
	ctl("agent", "state", AGENT_ID, "break", "--reason", "meeting");
	await sleep(3000);
	let st = await desktopState(page);
	let a = agentShow();
	log(`after agent state break: server ${a.presence} (${a.reason}); desktop ` +
	    `${JSON.stringify(st)}`);
	check(st.presence === a.presence, `the site put the agent on ${a.presence} (${a.reason}); ` +
	      `the desktop still shows "${st.presence}"`);
}

// A working day: the closed chats stay in the list (there is no way to remove them), new ones
// are added at its end. After 16 chats, while the agent answers Rosa, Tomas's new chat comes:
// where does the agent see it?
async function longDayList(browser) {
	const page = await availableDesk(browser);
	for (let k = 0; k < 16; k++) {
		const c = await new Customer({ name: `Cliente ${k}` }).start();
		await c.send(`hola ${k}`);
		await waitText(page, `hola ${k}`);
		await page.waitForFunction((n) => document.getElementById("conv-title").textContent === n,
			`Cliente ${k}`, { timeout: WAIT_MS });
		await closeCurrent(page);
		c.quit();
	}
	const r = await new Customer({ name: "Rosa" }).start();
	await r.send("hola soy Rosa");
	await waitText(page, "hola soy Rosa");
	await page.locator("#text").fill("escribiendo a Rosa");
	const t = await new Customer({ name: "Tomas" }).start();
	await t.send("¿hola? llevo esperando");
	await until(async () => /new/.test(entryOf(await desktopState(page), "Tomas")), "Tomas new");
	const vis = await page.evaluate(() => {
		const li = Array.from(document.querySelectorAll("#conv-list li"))
			.find((l) => l.textContent.includes("Tomas"));
		const nav = document.querySelector(".convs").getBoundingClientRect();
		const r = li.getBoundingClientRect();
		return { top: Math.round(r.top), bottom: Math.round(r.bottom),
			navTop: Math.round(nav.top), navBottom: Math.round(nav.bottom),
			notice: document.getElementById("notice").textContent,
			title: document.title };
	});
	await shot(page, "long-day-list");
	log(`Tomas's entry: ${JSON.stringify(vis)}`);
	check((vis.top >= vis.navTop && vis.bottom <= vis.navBottom) || /Tomas/.test(vis.notice),
	      `after 16 closed chats a new chat (Tomas, "1 new") lands below the visible part ` +
	      `of the list (entry at y ${vis.top}, the list shows ${vis.navTop}-${vis.navBottom}) ` +
	      `and nothing else says it came (notice "${vis.notice}"): the agent, answering Rosa, ` +
	      `does not see it`);
	r.quit(); t.quit();
}

// The agent's network goes silently (Wi-Fi gone: no close reaches either side). The server
// drops the connection when its pings go unanswered (websocket.ping_interval_s 2: after 14 s),
// the agent goes offline, and after routing.agent_grace_s (5 s) maria gets the chat. Meanwhile
// luis's desktop: what does it say?
async function silentDrop(browser) {
	const { page, px } = await proxiedDesk(browser);
	const c = await new Customer({ name: "Rosa" }).start();
	await c.send("hola, necesito ayuda");
	await waitText(page, "hola, necesito ayuda");
	const { page: mp } = await openPage(browser, "desktop maria");
	await desktopLogin(mp, process.env.OMR_AGENT2_ID, process.env.OMR_AGENT2_TOKEN);
	await desktopPresence(mp, "available");
	px.silence();
	const t0 = Date.now();
	await reply(page, "Un momento, lo reviso", false);
	await sleep(14000);
	await px.serverDrops();
	await waitText(mp, "hola, necesito ayuda", 30000);
	await c.send("¿hola? ¿sigue ahí?");
	await sleep(3000);
	const st = await desktopState(page);
	const pend = await page.evaluate(() => Array.from(document.querySelectorAll("#messages li.me"))
		.map((li) => ({ cls: li.className, title: li.title })));
	const a = agentShow();
	await shot(page, "silent-drop");
	log(`${Math.round((Date.now() - t0) / 1000)} s into a silent drop: server ${a.presence}, ` +
	    `conversations ${JSON.stringify(a.conversations)}; luis's desktop ` +
	    `${JSON.stringify(st)}; his reply ${JSON.stringify(pend)}`);
	check(st.status !== "online" || st.compose === false,
	      `${Math.round((Date.now() - t0) / 1000)} s after the network went: the server has ` +
	      `luis ${a.presence} and Rosa's chat went to maria, but luis's desktop says ` +
	      `"${st.status}", "${st.presence}", Rosa's chat open for replies; his reply waits ` +
	      `faded with no word (${JSON.stringify(pend)})`);
	await px.restore();
	await online(page);
	await sleep(2000);
	log(`after the network is back: ${JSON.stringify(await desktopState(page))}`);
	c.quit();
}

// The pages' liveness check (web/liveness.js), fast: a ping after 3 s without a frame, and a
// connection dead 3 s after an unanswered ping.
async function fastLiveness(page) {
	await page.addInitScript(() => {
		window.OMR_LIVENESS_MS = { idle: 3000, answer: 3000, check: 500 };
	});
}

// The agent waits for work, sending nothing, when the network goes silently (a laptop lid
// closed and opened, a NAT or proxy that forgot the connection: no close reaches either side).
// silentDrop's desktop had a reply in flight, whose unanswered request gave the loss away; an
// idle desktop has none. Was: it said "online" and "Available" for as long as the network
// stayed silent, while no chat could reach it.
async function idleSilentDrop(browser) {
	const { page } = await openPage(browser, "desktop");
	await fastLiveness(page);
	const px = await agentProxy(page);
	await desktopLogin(page);
	await desktopPresence(page, "available");
	await sleep(5000); // idle longer than the ping interval: pings answered, still online
	check((await desktopState(page)).status === "online", "an idle desktop with a working " +
	      `connection is not "online": ${JSON.stringify(await desktopState(page))}`);
	px.silence();
	const t0 = Date.now();
	await page.waitForFunction(() => document.getElementById("status").textContent !== "online",
		null, { timeout: 20000 }).catch(() => {});
	const st = await desktopState(page);
	const s = Math.round((Date.now() - t0) / 1000);
	log(`${s} s after the network went silent: ${JSON.stringify(st)}`);
	check(st.status !== "online", `${s} s after the network went silent the idle desktop ` +
	      `still says "${st.status}", "${st.presence}": no chat can reach it and nothing says so`);
	await px.restore();
	await online(page);
	const c = await new Customer({ name: "Rosa" }).start();
	await c.send("hola, ¿hay alguien?");
	await waitText(page, "hola, ¿hay alguien?", 20000);
	c.quit();
}

// The network goes silently just as the desktop connects: its login goes nowhere. Was: the
// liveness check ran only once logged in, so the desktop said "connecting…" for as long as the
// network stayed silent, on a connection that could never log in.
async function loginSilentDrop(browser) {
	const { page } = await openPage(browser, "desktop");
	await fastLiveness(page);
	const px = await agentProxy(page);
	px.silence();
	await page.goto(`${BASE}/agent.html#agent=${encodeURIComponent(AGENT_ID)}&token=` +
			encodeURIComponent(AGENT_TOKEN));
	await sleep(12000);
	const st = await desktopState(page);
	log(`12 s into a silent network from the start: ${px.connections} connection(s) tried; ` +
	    `desktop ${JSON.stringify(st)}`);
	check(px.connections >= 2, `the desktop's login went nowhere (the network silent) and ` +
	      `12 s later it still waits on its first connection: "${st.status}"`);
	await px.restore();
	await online(page);
}

// The same on the chat page: a customer waits for an agent, sending nothing, when the network
// goes silently. Was: the page went on saying it was connected; once the network was back the
// agent's answer never came, until the customer typed.
async function customerIdleSilentDrop(browser) {
	const { page: cust } = await openPage(browser, "customer");
	await fastLiveness(cust);
	const px = await agentProxy(cust, /\/ws\/customer$/);
	await cust.goto(`${BASE}/chat.html`);
	await startChat(cust, "es", "Rosa");
	await cust.locator("#status").filter({ hasText: "waiting for an agent" })
		.waitFor({ timeout: WAIT_MS });
	await cust.locator("#text").fill("hola, necesito ayuda");
	await cust.locator("#text").press("Enter");
	await sleep(5000);
	px.silence();
	const t0 = Date.now();
	await cust.waitForFunction(() => /connecting/.test(document.getElementById("status")
		.textContent), null, { timeout: 20000 }).catch(() => {});
	const status = await cust.locator("#status").textContent();
	const s = Math.round((Date.now() - t0) / 1000);
	log(`${s} s after the network went silent the chat page says "${status}"`);
	check(/connecting/.test(status), `${s} s after the network went silent the waiting ` +
	      `customer's page still says "${status}"`);
	await px.restore();
	const page = await availableDesk(browser);
	await waitText(page, "hola, necesito ayuda", 20000);
	await reply(page, "Hola Rosa, soy Luis");
	await waitText(cust, "Hola Rosa, soy Luis", 20000);
}

// A site that lets a request wait longer than the desktop's 15-s request watchdog
// (bus.ack_timeout_ms 5000 x bus.max_attempts 5: 25 s) has Redis stall for 20 s while the agent
// sends a reply. The connection is fine (the server answers pings meanwhile). Was: 15 s into the
// stall the desktop took its connection for dead, dropped it and logged in again.
async function longStallReply(browser) {
	const { page, cust } = await pageChat(browser);
	await customerSend(cust, "mi pedido 4521");
	await waitText(page, "mi pedido 4521");
	await page.evaluate(() => {
		window.statusSeen = [];
		const st = document.getElementById("status");
		new MutationObserver(() => window.statusSeen.push(st.textContent))
			.observe(st, { childList: true, characterData: true, subtree: true });
	});
	await cmd("redis-pause");
	await reply(page, "Lo reviso, un momento", false);
	await sleep(20000);
	await cmd("redis-resume");
	await waitText(cust, "Lo reviso, un momento", 30000);
	const seen = await page.evaluate(() => window.statusSeen);
	const st = await desktopState(page);
	log(`the desktop's status through a 20-s stall: ${JSON.stringify(seen)}; now ` +
	    `${JSON.stringify(st)}`);
	await shot(page, "long-stall-reply");
	check(seen.every((s) => s === "online"), `Redis stalled 20 s with a reply in flight ` +
	      `(the server holds requests up to 25 s here, and answers pings): the desktop took ` +
	      `its working connection for dead and reconnected: status ${JSON.stringify(seen)}`);
	check(st.status === "online",
	      `after the stall the desktop is not online: ${JSON.stringify(st)}`);
}

// Capacity 3, chats from two queues: the agent closes Rosa's (queue wrap, wrapup_s 60: "Wrap-up
// done" shows), then Tomas's (queue general, no wrap-up). The server keeps the wrap-up of the
// first close (a running wrap-up "is not cut short"), so no chat comes for a minute; the
// desktop must still offer "Wrap-up done".
async function wrapupTwoCloses(browser) {
	const page = await availableDesk(browser);
	const r = await new Customer({ name: "Rosa", kind: "wrap" }).start();
	await r.send("hola desde wrap");
	await waitText(page, "hola desde wrap");
	const t = await new Customer({ name: "Tomas" }).start();
	await t.send("hola desde general");
	await until(async () => entryOf(await desktopState(page), "Tomas"), "Tomas in the list");
	await selectConv(page, "Rosa");
	await closeCurrent(page);
	await page.locator("#wrapup-done").waitFor({ state: "visible", timeout: WAIT_MS });
	await selectConv(page, "Tomas");
	await closeCurrent(page);
	await sleep(1000);
	const u = await new Customer({ name: "Uma" }).start();
	await u.send("¿hay alguien?");
	await sleep(3000);
	const st = await desktopState(page);
	const a = agentShow();
	const left = a.wrapup_until_ms && a.wrapup_until_ms.chat ? a.wrapup_until_ms.chat - Date.now()
		: 0;
	await shot(page, "wrapup-two-closes");
	log(`after the second close: desktop ${JSON.stringify(st)}; server wrap-up ${left} ms more; ` +
	    `Uma assigned ${u.assigned()}`);
	check(left <= 0 || st.wrapup, `the agent closed a chat with wrap-up, then one without: ` +
	      `the server keeps the agent in wrap-up ${Math.round(left / 1000)} s more (Uma waits, ` +
	      `no chat comes) but the desktop hid "Wrap-up done" and shows no wrap-up at all`);
	r.quit(); t.quit(); u.quit();
}

// Two chats, a half-written reply in each; the agent reloads the page (F5, a desktop glitch).
async function draftReload(browser) {
	const page = await availableDesk(browser);
	const r = await new Customer({ name: "Rosa" }).start();
	await r.send("mi pedido 4521 no llegó");
	await waitText(page, "mi pedido 4521");
	const t = await new Customer({ name: "Tomas" }).start();
	await t.send("hola, una pregunta");
	await until(async () => entryOf(await desktopState(page), "Tomas"), "Tomas listed");
	await selectConv(page, "Rosa");
	const draft = "Rosa, su pedido 4521 sale mañana";
	await page.locator("#text").fill(draft);
	await selectConv(page, "Tomas");
	await page.locator("#text").fill("Tomas, la respuesta es");
	await selectConv(page, "Rosa");
	const before = await page.locator("#text").inputValue();
	log(`before the reload, Rosa's box: ${JSON.stringify(before)}`);
	await page.reload();
	await page.locator("#presence").waitFor({ state: "visible", timeout: WAIT_MS });
	await sleep(2500);
	const st = await desktopState(page);
	const box = await page.locator("#text").inputValue();
	log(`after the reload: title ${st.title}, box ${JSON.stringify(box)}`);
	check(box === draft, `after a reload Rosa's half-written reply is gone from the reply ` +
	      `box (${JSON.stringify(box)}; was ${JSON.stringify(draft)})`);
	if (st.title !== "Tomas") {
		await selectConv(page, "Tomas");
		const tb = await page.locator("#text").inputValue();
		log(`Tomas's box after the reload: ${JSON.stringify(tb)}`);
		check(tb === "Tomas, la respuesta es", `after a reload Tomas's draft is gone: ` +
		      JSON.stringify(tb));
	}
	r.quit(); t.quit();
}

const SCENARIOS = {
	missedOffers, adminPresence, draftSwitch, twoTabs, longDayList, silentDrop, longDrop,
	unavailableReply, surveyWhileDown, switchReload, dropOrder, offerKeyboard, wrapupTwoCloses,
	draftReload, idleSilentDrop, customerIdleSilentDrop, longStallReply, loginSilentDrop,
};

runScenario("desktop_day.js", Object.fromEntries(Object.entries(SCENARIOS).map(
	([name, fn]) => [name, { fn, agent: false }])));
