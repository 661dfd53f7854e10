// customer_edges.js - the customer side of web chat (web/chat.html, web/chat.js,
// web/widget.js) in Debian's headless Chromium (playwright-core), against the real daemon.
// Run by tests/integration/test_customer_edges.py, one scenario per run:
//
//   node --experimental-websocket tests/browser/customer_edges.js SCENARIO
//
// Environment: OMR_BASE (http://127.0.0.1:PORT), OMR_AGENT_ID, OMR_AGENT_TOKEN, optional
// OMR_CHROMIUM. The agent side is a plain websocket client (docs/PROTOCOL.md, agent endpoint),
// driven from this script. Exit 0 when every check held, 1 otherwise (each failure printed as
// "CHECK FAILED: ...").
"use strict";

const http = require("http");
const { WAIT_MS, SETTLE_MS, BASE, log, check, fail, sleep, until, watch, openPage, lines,
	waitText, waitAcked, startChat, customerSend, runScenario } = require("./edges_lib");

// Each of `expected` exactly once, in this order.
async function checkTranscript(frame, who, expected) {
	for (const t of expected)
		await waitText(frame, t);
	await sleep(SETTLE_MS);
	const got = await lines(frame);
	const dump = "\n  " + got.join("\n  ");
	let ok = true;
	for (const t of expected) {
		const n = got.filter((l) => l.includes(t)).length;
		ok = check(n === 1, `${who}: "${t}" shown ${n} times (want exactly once); ` +
			   `transcript:${dump}`) && ok;
	}
	const order = got.map((l) => expected.find((t) => l.includes(t))).filter(Boolean);
	ok = check(order.join("\u0000") === expected.join("\u0000"),
		   `${who}: messages out of order: shown\n  ${order.join("\n  ")}\nwant (the order ` +
		   `they were sent and stored)\n  ${expected.join("\n  ")}`) && ok;
	if (ok)
		log(`${who}: ${expected.length} messages once each, in order`);
}

// Routes the page's customer websocket through a proxy we control: `drop(text)` frames from the
// page are swallowed (as if the network lost them), `cut()` closes the connection to the page
// (a network drop), `holdUp` (ms) holds what the page sends on its next connection that long,
// then sends it all at once (a slow network).
async function proxy(page) {
	const p = { dropIds: new Set(), dropText: null, pages: [], connections: 0 };
	await page.routeWebSocket(/\/ws\/customer$/, (ws) => {
		const server = ws.connectToServer();
		p.pages.push(ws);
		p.connections++;
		let up = null;
		if (p.holdUp) {
			log(`proxy: what the page sends is held ${p.holdUp} ms`);
			up = [];
			setTimeout(() => {
				const held = up;
				up = null;
				held.forEach((m) => server.send(m));
			}, p.holdUp);
			p.holdUp = 0;
		}
		ws.onMessage((m) => {
			if (up) {
				up.push(m);
				return;
			}
			if (p.dropText) {
				try {
					const f = JSON.parse(m);
					if (f.type === "message" && f.text && f.text.includes(p.dropText)) {
						log(`proxy: dropped the customer's frame ${f.id} "${f.text}"`);
						return;
					}
				} catch (e) { /* not JSON: pass */ }
			}
			server.send(m);
		});
		server.onMessage((m) => {
			if (p.cutOnWelcome && /"type":"welcome"/.test(m)) {
				p.cutOnWelcome = false;
				log("proxy: the network drops as the welcome comes back");
				ws.close({ code: 1006 }).catch(() => {});
				server.close().catch(() => {});
				return;
			}
			ws.send(m);
		});
	});
	p.cut = async () => {
		for (const ws of p.pages)
			try { await ws.close({ code: 1006 }); } catch (e) { /* closed */ }
		p.pages = [];
	};
	return p;
}

// ---- scenarios -------------------------------------------------------------------------------

const A_TEXT = "Primero: mi pedido 5512 no llegó";
const B_TEXT = "Hola Rosa, lo reviso ahora";
const C_TEXT = "Tercero: escrito cuando la red falló";
const D_TEXT = "Cuarto: después de recargar";

// A customer page behind proxy(), in a chat an agent took, that said A_TEXT.
async function proxiedChat(browser, agent) {
	const { ctx, page } = await openPage(browser, "customer");
	const p = await proxy(page);
	await page.goto(`${BASE}/chat.html`);
	await startChat(page);
	const conv = await agent.assignedConv();
	await customerSend(page, A_TEXT);
	return { ctx, page, p, conv };
}

// A message the server never acknowledged (lost on the way) is resent after a reload; it must
// be shown once, after what was said before it (PROTOCOL.md "Delivery guarantees"; issue 4: "no
// message lost, none shown twice, order kept").
async function reloadPending(browser, agent) {
	const { ctx, page, p, conv } = await proxiedChat(browser, agent);
	await agent.reply(conv, B_TEXT);
	await waitText(page, B_TEXT);
	p.dropText = C_TEXT; // this one never reaches the server
	await customerSend(page, C_TEXT, false);
	await sleep(500);
	p.dropText = null;
	log("customer: reload with one message not acknowledged");
	await page.reload();
	await page.locator("#compose").waitFor({ state: "visible", timeout: WAIT_MS });
	await until(async () => (await agent.customerTexts(conv)).includes(C_TEXT),
		"resent message at the agent");
	await checkTranscript(page, "customer after reload", [A_TEXT, B_TEXT, C_TEXT]);
	await customerSend(page, D_TEXT);
	await checkTranscript(page, "customer after one more message", [A_TEXT, B_TEXT, C_TEXT, D_TEXT]);
	await page.reload();
	await page.locator("#compose").waitFor({ state: "visible", timeout: WAIT_MS });
	await checkTranscript(page, "customer after a second reload", [A_TEXT, B_TEXT, C_TEXT, D_TEXT]);
	await agent.close(conv);
	await ctx.close();
}

// The agent closes while the customer still reads; the customer reloads the page before
// answering the survey. PROTOCOL.md "Leaving": "the customer can come back with resume until
// then, and after it for the survey"; issue 4: the chat survives a reload and ends with the
// survey. Expect the ended conversation (its transcript and the survey) after the reload, and
// the answer stored.
async function surveyAfterReload(browser, agent) {
	const { ctx, page } = await openPage(browser, "customer");
	await page.goto(`${BASE}/chat.html`);
	await startChat(page);
	const conv = await agent.assignedConv();
	await customerSend(page, A_TEXT);
	await agent.reply(conv, B_TEXT);
	await waitText(page, B_TEXT);
	await agent.close(conv);
	await page.locator("#survey").waitFor({ state: "visible", timeout: WAIT_MS });
	log("customer: the survey is shown; reload before answering it");
	await page.reload();
	await sleep(3000);
	const v = await page.evaluate(() => ({
		start: !document.getElementById("start").hidden,
		survey: !document.getElementById("survey").hidden &&
			!document.getElementById("conversation").hidden,
		lines: Array.from(document.querySelectorAll("#messages li")).map((l) => l.textContent),
	}));
	check(v.survey && !v.start,
	      `after a reload of the ended chat the survey should still be offered; the page shows ` +
	      `${v.start ? "the start form (transcript and survey gone)" : "no survey"}; ` +
	      `transcript: ${JSON.stringify(v.lines)}`);
	if (v.survey) {
		await page.locator("#rate-4").click();
		await page.locator("#rate-send").click();
		await page.locator("#survey-thanks").waitFor({ state: "visible", timeout: WAIT_MS });
	}
	console.log(`CONV ${conv}`);
	await ctx.close();
}

// A network drop while talking: the agent writes during the drop, the customer types during
// the drop; after the page reconnects everything is shown once and reaches the other side.
async function networkDrop(browser, agent) {
	const { ctx, page, p, conv } = await proxiedChat(browser, agent);
	await agent.reply(conv, B_TEXT);
	await waitText(page, B_TEXT);
	p.dropText = "\u0001never"; // nothing dropped; cut instead
	await p.cut();
	await page.waitForFunction(() => /reconnecting/.test(
		document.getElementById("status").textContent), null, { timeout: WAIT_MS });
	await agent.reply(conv, "Agente durante el corte");
	await page.locator("#text").fill(C_TEXT);
	await page.locator("#send").click();
	await waitText(page, C_TEXT);
	await waitAcked(page, C_TEXT);
	await until(() => agent.customerTexts(conv).includes(C_TEXT), "C at the agent");
	await waitText(page, "Agente durante el corte");
	await sleep(SETTLE_MS);
	const got = await lines(page);
	for (const t of [A_TEXT, B_TEXT, C_TEXT, "Agente durante el corte"])
		check(got.filter((l) => l.includes(t)).length === 1,
		      `after a network drop "${t}" is not shown exactly once: ${JSON.stringify(got)}`);
	await page.reload();
	await page.locator("#compose").waitFor({ state: "visible", timeout: WAIT_MS });
	await checkTranscript(page, "customer after drop and reload",
			      [A_TEXT, B_TEXT, "Agente durante el corte", C_TEXT]);
	await agent.close(conv);
	await ctx.close();
}

// The network drops and the page reconnects over a slow network; the customer sends a message
// before the server's welcome came back, so it reaches the server right behind the resume. The
// server refuses anything before the welcome, so the page must hold the message until then: it
// must reach the agent, acknowledged, not be shown as failed (seen in CI as a timing-dependent
// failure of networkDrop).
async function sendBeforeWelcome(browser, agent) {
	const { ctx, page, p, conv } = await proxiedChat(browser, agent);
	p.holdUp = 2000;
	const before = p.connections;
	await p.cut();
	await until(() => p.connections > before, "the page reconnects");
	await sleep(500); // its resume is on its way
	await page.locator("#text").fill(C_TEXT);
	await page.locator("#send").click();
	await waitAcked(page, C_TEXT);
	await until(() => agent.customerTexts(conv).includes(C_TEXT), "C at the agent");
	const failed = await page.locator("#messages li.failed").count();
	check(failed === 0, `${failed} message(s) shown as failed`);
	await agent.close(conv);
	await ctx.close();
}

// A brand page on `siteHost` (another origin than the daemon) carrying the widget.
async function brandSite(siteHost) {
	const host = http.createServer((req, res) => {
		res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
		res.end(`<!doctype html><html><head><title>Brand</title></head><body>
<h1>Brand site</h1>
<script src="${BASE}/widget.js" data-language="es" data-topic="billing"
        data-name="Rosa" data-label="Ayuda" async></script></body></html>`);
	});
	await new Promise((r) => host.listen(0, "127.0.0.1", r));
	host.url = `http://${siteHost}:${host.address().port}/`;
	return host;
}

async function chatFrame(page) {
	return until(() => page.frames().find((f) => f.url().includes("/chat.html")),
		"the chat iframe");
}

// The widget on a page of another origin (same site: 127.0.0.1, another port): the button
// opens the chat iframe with the widget's language, topic and name, a reload of the site
// reopens the window and resumes the same conversation (PROTOCOL.md "Embedding the chat on a
// site": "A conversation in progress survives reloads of the site").
async function widgetCrossOrigin(browser, agent) {
	const host = await brandSite("127.0.0.1");
	const { ctx, page } = await openPage(browser, "site");
	await page.goto(host.url);
	await page.locator("#omr-chat-button").click();
	const chat = await chatFrame(page);
	await chat.locator("#start-chat").waitFor({ state: "visible", timeout: WAIT_MS });
	const pre = await chat.evaluate(() => ({
		lang: document.getElementById("lang").value,
		topic: document.getElementById("topic").value,
		name: document.getElementById("name").value,
	}));
	check(pre.lang === "es" && pre.topic === "billing" && pre.name === "Rosa",
	      `widget options not preselected: ${JSON.stringify(pre)}`);
	await chat.locator("#start-chat").click();
	await chat.locator("#compose").waitFor({ state: "visible", timeout: WAIT_MS });
	const conv = await agent.assignedConv();
	await customerSend(chat, A_TEXT);
	await agent.reply(conv, B_TEXT);
	await waitText(chat, B_TEXT);
	log("site: reload");
	await page.reload();
	await page.locator("#omr-chat-frame").waitFor({ state: "visible", timeout: WAIT_MS });
	const chat2 = await chatFrame(page);
	await chat2.locator("#compose").waitFor({ state: "visible", timeout: WAIT_MS });
	await checkTranscript(chat2, "widget after site reload", [A_TEXT, B_TEXT]);
	await customerSend(chat2, D_TEXT);
	await until(() => agent.customerTexts(conv).includes(D_TEXT), "D at the agent");
	await agent.close(conv);
	await ctx.close();
	host.close();
}

// The widget on a page of another SITE (localhost embedding 127.0.0.1), in a browser that
// denies storage to third-party frames (Chromium's default here, as in an Incognito window or
// with third-party cookies blocked): web storage throws SecurityError. chat.js says it copes
// without storage ("no storage (private mode): recognized for this page only"); the customer
// must still be able to start a chat and talk (only reload survival may be lost).
async function widgetNoStorage(browser, agent) {
	const host = await brandSite("localhost");
	const { ctx, page } = await openPage(browser, "site");
	await page.goto(host.url);
	await page.locator("#omr-chat-button").click();
	const chat = await chatFrame(page);
	await chat.locator("#start-chat").waitFor({ state: "visible", timeout: WAIT_MS });
	const storage = await chat.evaluate(() => {
		try {
			sessionStorage.getItem("x");
			return "available";
		} catch (e) {
			return String(e);
		}
	});
	log(`chat iframe's sessionStorage: ${storage}`);
	await chat.locator("#start-chat").click();
	try {
		await chat.locator("#compose").waitFor({ state: "visible", timeout: WAIT_MS });
	} catch (e) {
		const st = await chat.evaluate(() => document.getElementById("status").textContent);
		fail(`the chat never opened on a third-party site (storage: ${storage}); the page ` +
		     `still shows the start form, status "${st}"`);
	}
	const conv = await agent.assignedConv();
	await customerSend(chat, A_TEXT);
	await agent.reply(conv, B_TEXT);
	await waitText(chat, B_TEXT);
	await agent.close(conv);
	await ctx.close();
	host.close();
}

// Waiting: the page shows the place in line (and keeps showing it after a reload), hides it
// once an agent joins, shows "joined" once; a message written while waiting reaches the agent;
// the agent's typing shows "Agent is typing…" and the agent's message hides it; the customer's
// typing reaches the agent.
async function waitingAndTyping(browser, agent) {
	const { ctx, page } = await openPage(browser, "customer");
	await page.goto(`${BASE}/chat.html`);
	await startChat(page);
	await page.locator("#position").waitFor({ state: "visible", timeout: WAIT_MS });
	const p1 = await page.locator("#position").textContent();
	check(/number 1 in line/.test(p1), `position text: "${p1}"`);
	await customerSend(page, A_TEXT);
	await page.reload();
	await page.locator("#position").waitFor({ state: "visible", timeout: WAIT_MS });
	await agent.request({ type: "presence", presence: "available" });
	const conv = await agent.assignedConv();
	await until(() => agent.customerTexts(conv).includes(A_TEXT), "A at the agent");
	await page.locator("#position").waitFor({ state: "hidden", timeout: WAIT_MS });
	await waitText(page, "joined the chat");
	agent.typing(conv);
	await page.locator("#typing").waitFor({ state: "visible", timeout: WAIT_MS });
	await agent.reply(conv, B_TEXT);
	await waitText(page, B_TEXT);
	check(await page.locator("#typing").isHidden(), "typing still shown after the agent's message");
	await page.locator("#text").focus();
	await page.keyboard.type("escribo");
	await until(() => agent.frames.find((f) => f.type === "typing" && f.conversation_id === conv),
		"customer typing at the agent");
	await sleep(SETTLE_MS);
	const got = await lines(page);
	check(got.filter((l) => /joined the chat/.test(l)).length === 1,
	      `"joined" shown ${got.filter((l) => /joined the chat/.test(l)).length} times: ` +
	      JSON.stringify(got));
	check(got.filter((l) => l.includes(A_TEXT)).length === 1, `A not once: ${JSON.stringify(got)}`);
	await agent.close(conv);
	await ctx.close();
}

// The message box takes up to 4096 characters (maxlength), the daemon up to
// chat.max_text_bytes = 4096 BYTES of UTF-8 (PROTOCOL.md "Limits"). A Hindi customer (Hindi is
// on the page's language list) writes 2,000 characters, well under the box's limit: about
// 5,300 bytes. What the customer was allowed to type must reach the agent (in one message or
// several), not be refused after the fact.
async function longNonAscii(browser, agent) {
	const { ctx, page } = await openPage(browser, "customer");
	await page.goto(`${BASE}/chat.html`);
	await startChat(page, "hi");
	const conv = await agent.assignedConv();
	const text = ("नमस्ते मेरा ऑर्डर ".repeat(150)).slice(0, 2000).trim();
	const bytes = Buffer.byteLength(text, "utf8");
	log(`typing ${text.length} characters (${bytes} bytes of UTF-8)`);
	await page.locator("#text").fill(text);
	const accepted = await page.locator("#text").inputValue();
	check(accepted.length === text.length, `the box cut the text to ${accepted.length}`);
	await page.locator("#send").click();
	await sleep(3000);
	const st = await page.evaluate(() => Array.from(document.querySelectorAll("#messages li.me"))
		.map((li) => ({ cls: li.className, title: li.title })));
	const got = agent.customerTexts(conv).join("");
	check(got.replace(/\s+/g, "") === text.replace(/\s+/g, ""),
	      `a ${text.length}-character (${bytes}-byte) message the box accepted did not reach ` +
	      `the agent (agent got ${got.length} characters); the page shows: ${JSON.stringify(st)}`);
	await agent.close(conv);
	await ctx.close();
}

// Arabic is on the page's language list. Arabic and Hebrew run right to left: a line of
// Arabic that ends in a number or punctuation, shown left to right, reads scrambled (the "!"
// and the order number jump to the wrong end). Each message, the agent's too, and the text
// box must take its direction from its own text, and the messages carry the conversation's
// language (which also picks the right glyphs for CJK text).
async function rightToLeft(browser, agent) {
	const { ctx, page } = await openPage(browser, "customer");
	await page.goto(`${BASE}/chat.html`);
	await startChat(page, "ar", "سارة");
	const conv = await agent.assignedConv();
	const mine = "مرحبا، رقم طلبي 4521!";
	await page.locator("#text").fill(mine);
	const box = await page.locator("#text").evaluate((el) => el.matches(":dir(rtl)"));
	await page.locator("#send").click();
	await waitText(page, mine);
	const theirs = "أهلا سارة، سأتحقق من الطلب 4521.";
	await agent.reply(conv, theirs);
	await waitText(page, theirs);
	await agent.reply(conv, "Order 4521 shipped today.");
	await waitText(page, "Order 4521 shipped today.");
	const lines = await page.evaluate(() => Array.from(
		document.querySelectorAll("#messages li .text")).map((el) => ({ text: el.textContent,
		rtl: el.matches(":dir(rtl)"), lang: el.closest("[lang]").getAttribute("lang") })));
	log(`box rtl ${box}; lines ${JSON.stringify(lines)}`);
	check(box, "the message box shows Arabic typed into it left to right");
	for (const [text, rtl] of [[mine, true], [theirs, true], ["Order 4521 shipped today.", false]]) {
		const l = lines.find((x) => x.text === text);
		check(l && l.rtl === rtl && l.lang === "ar", `"${text}" is shown ` +
		      `${JSON.stringify(l)}: want ${rtl ? "right to left" : "left to right"}, lang ar`);
	}
	await agent.close(conv);
	await ctx.close();
}

// The network drops while the hello is answered (the welcome never reaches the page). The
// page reconnects by itself and says hello again. The customer asked for one chat: the daemon
// must not end up with two conversations for it, one of them taking an agent's capacity for a
// customer who is not there.
async function dropDuringHello(browser, agent) {
	const { ctx, page } = await openPage(browser, "customer");
	const p = await proxy(page);
	p.cutOnWelcome = true;
	await page.goto(`${BASE}/chat.html`);
	await startChat(page);
	await customerSend(page, A_TEXT);
	await sleep(3000);
	const assigned = agent.frames.filter((f) => f.type === "assigned");
	log(`agent was assigned: ${JSON.stringify(assigned.map((f) => f.conversation_id))}`);
	check(assigned.length === 1,
	      `one customer starting one chat across a network drop gave the agent ` +
	      `${assigned.length} conversations (one has no customer behind it and holds a unit of ` +
	      `capacity until the agent closes it)`);
	await ctx.close();
}

// The customer duplicates the chat tab (the browser copies the tab's sessionStorage, as
// window.open does here): both tabs resume the same conversation and both write. Each line
// must reach the agent; none may be shown as sent and silently dropped by the daemon's
// de-duplication (PROTOCOL.md: message ids are "unique within the conversation").
async function duplicatedTab(browser, agent) {
	const { ctx, page } = await openPage(browser, "tab 1");
	await page.goto(`${BASE}/chat.html`);
	await startChat(page);
	const conv = await agent.assignedConv();
	await customerSend(page, A_TEXT);
	const [page2] = await Promise.all([
		ctx.waitForEvent("page"),
		page.evaluate(() => { window.open(location.href, "_blank"); }),
	]);
	watch(page2, "tab 2");
	await page2.waitForLoadState();
	await page2.locator("#compose").waitFor({ state: "visible", timeout: WAIT_MS });
	await waitText(page2, A_TEXT);
	await customerSend(page, "Desde la pestaña uno");
	await customerSend(page2, "Desde la pestaña dos");
	await sleep(SETTLE_MS);
	const got = agent.customerTexts(conv);
	log(`agent got: ${JSON.stringify(got)}`);
	check(got.includes("Desde la pestaña uno") && got.includes("Desde la pestaña dos"),
	      `both tabs showed their line as sent (acked), but the agent got ${JSON.stringify(got)}`);
	await agent.close(conv);
	await ctx.close();
}

// No horizontal scroll and the composer reachable at 1280x800 and at a narrow phone width;
// the whole chat usable with the keyboard alone (start, send with Enter, rate with arrows).
async function layoutKeyboard(browser, agent) {
	for (const vp of [{ width: 1280, height: 800 }, { width: 320, height: 568 }]) {
		const ctx = await browser.newContext({ viewport: vp });
		const page = await ctx.newPage();
		watch(page, `customer ${vp.width}`);
		await page.goto(`${BASE}/chat.html`);
		// keyboard only: Tab to the language, pick, Tab to start
		await page.keyboard.press("Tab");
		await page.keyboard.press("Tab");
		await page.locator("#lang").focus();
		await page.locator("#lang").selectOption("es");
		await page.locator("#name").focus();
		await page.keyboard.type("Rosa");
		await page.keyboard.press("Enter");
		await page.locator("#compose").waitFor({ state: "visible", timeout: WAIT_MS });
		const conv = await agent.assignedConv();
		const focused = await page.evaluate(() => document.activeElement &&
			document.activeElement.id);
		check(focused === "text", `${vp.width}: after starting, focus is on #${focused}, ` +
		      `not the message box`);
		await page.locator("#text").focus();
		await page.keyboard.type(A_TEXT);
		await page.keyboard.press("Enter");
		await waitAcked(page, A_TEXT);
		for (let i = 0; i < 12; i++)
			await agent.reply(conv, `Respuesta larga número ${i} ` + "palabra ".repeat(30));
		await waitText(page, "Respuesta larga número 11");
		const m = await page.evaluate(() => {
			const r = document.getElementById("send").getBoundingClientRect();
			const t = document.getElementById("text").getBoundingClientRect();
			return { scroll: document.documentElement.scrollWidth,
				 client: document.documentElement.clientWidth,
				 sendBottom: r.bottom, textTop: t.top, vh: window.innerHeight,
				 sendRight: r.right, vw: window.innerWidth };
		});
		check(m.scroll <= m.client, `${vp.width}x${vp.height}: horizontal scroll ` +
		      `(${m.scroll} > ${m.client})`);
		check(m.sendBottom <= m.vh && m.sendRight <= m.vw && m.textTop >= 0,
		      `${vp.width}x${vp.height}: the composer is out of view after many messages: ` +
		      JSON.stringify(m));
		await agent.close(conv);
		await page.locator("#survey").waitFor({ state: "visible", timeout: WAIT_MS });
		await page.locator("#rate-3").focus();
		await page.keyboard.press("ArrowRight");
		const pressed = await page.evaluate(() =>
			document.querySelector("#stars [aria-pressed=true]").dataset.score);
		check(pressed === "4", `${vp.width}: ArrowRight from star 3 selected ${pressed}`);
		for (let i = 0; i < 8; i++) {
			if (await page.evaluate(() => document.activeElement.id) === "rate-send")
				break;
			await page.keyboard.press("Tab");
		}
		await page.keyboard.press("Enter");
		await page.locator("#survey-thanks").waitFor({ state: "visible", timeout: WAIT_MS });
		agent.frames = [];
		await ctx.close();
	}
}

// The customer leaves the page while waiting and comes back after chat.abandon_after_s (1 s
// here): PROTOCOL.md `closed` reason `abandoned`. The page says the chat ended while the
// customer was away, offers a new chat and no survey (nobody served it), and no agent is
// handed the abandoned chat.
async function awayTooLong(browser, agent) {
	const { ctx, page } = await openPage(browser, "customer");
	await page.goto(`${BASE}/chat.html`);
	await startChat(page);
	await page.locator("#position").waitFor({ state: "visible", timeout: WAIT_MS });
	log("customer: leaves the page while waiting");
	await page.goto("about:blank");
	await sleep(3000);
	await page.goto(`${BASE}/chat.html`); // same tab: the conversation is resumed
	await waitText(page, "ended while you were away");
	await sleep(SETTLE_MS);
	const v = await page.evaluate(() => ({
		survey: !document.getElementById("survey").hidden,
		ended: !document.getElementById("ended").hidden,
	}));
	check(v.ended && !v.survey, `abandoned chat: ended box ${v.ended}, survey ${v.survey}`);
	await agent.request({ type: "presence", presence: "available" });
	await sleep(1500);
	check(agent.assignedConvs().length === 0,
	      `the agent was handed ${JSON.stringify(agent.assignedConvs())}`);
	await page.locator("#restart").click();
	await page.locator("#start").waitFor({ state: "visible", timeout: WAIT_MS });
	await startChat(page);
	await agent.assignedConv(); // a new chat goes through
	await ctx.close();
}

// All with the protocol agent logged in; available, except while waitingAndTyping and
// awayTooLong start.
const SCENARIOS = Object.fromEntries(Object.entries({ reloadPending, surveyAfterReload,
	networkDrop, sendBeforeWelcome, widgetCrossOrigin, widgetNoStorage, waitingAndTyping, longNonAscii,
	dropDuringHello, duplicatedTab, layoutKeyboard, rightToLeft, awayTooLong }).map(([name, fn]) =>
	[name, { fn, agent: true,
		 available: name !== "waitingAndTyping" && name !== "awayTooLong" }]));

runScenario("customer_edges.js", SCENARIOS);
