// desktop_edges.js - a floor agent's working day on web/agent.html, in Debian's headless
// Chromium (playwright-core), against the real daemon. Run by
// tests/integration/test_desktop_edges.py, one scenario per run:
//
//   node --experimental-websocket tests/browser/desktop_edges.js SCENARIO
//
// Environment: OMR_BASE, OMR_AGENT_ID, OMR_AGENT_TOKEN (the desktop's agent), optional
// OMR_AGENT2_ID/OMR_AGENT2_TOKEN, OMR_CTL and OMR_CFG (omnirouterctl and the daemon's
// configuration), OMR_CHROMIUM. Customers are plain websocket clients (so their customer_id and
// attributes, which pick the queue, are under control). cmd("restart") has the Python side
// restart the daemon (desktop_lib.js). Exit 0 when every check held, 1 otherwise (each failure
// printed as "CHECK FAILED: ...").
"use strict";


const { WAIT_MS, BASE, AGENT_ID, AGENT_TOKEN, WS_BASE, log, check, fail, sleep,
	until, openPage, lines, waitText, startChat, customerSend, runScenario } =
	require("./edges_lib");
const { ctl, agentShow, Customer, desktopLogin, desktopPresence, desktopState, selectConv,
	pageChat, reply, closeCurrent, availableDesk, cmd } = require("./desktop_lib");


// ---- the desktop -----------------------------------------------------------------------------


// The desktop logged in and available, with Rosa's chat open (in the queue for `kind`) and her
// "hola" shown.
async function chatOnDesk(browser, kind) {
	const page = await availableDesk(browser);
	const c1 = await new Customer({ name: "Rosa", kind }).start();
	await c1.send("hola");
	await waitText(page, "hola");
	return { page, c1 };
}

// Rosa's chat in the wrap-up queue closed: the desktop shows "Wrap-up done".
async function closedIntoWrapup(browser) {
	const { page, c1 } = await chatOnDesk(browser, "wrap");
	await closeCurrent(page);
	await page.locator("#wrapup-done").waitFor({ state: "visible", timeout: WAIT_MS });
	return { page, c1 };
}

// ---- scenarios -------------------------------------------------------------------------------

// PROTOCOL.md "presence": break with a reason code. The server stores what the desktop chose;
// a reload keeps it, on the server and on screen.
async function presenceReasons(browser) {
	const page = await availableDesk(browser);
	let a = agentShow();
	check(a.presence === "available", `after Available: server has ${a.presence}`);
	await desktopPresence(page, "break", "coffee");
	await until(() => { a = agentShow(); return a.reason === "coffee"; }, "coffee stored", 10000)
		.catch(() => {});
	check(a.presence === "break" && a.reason === "coffee",
	      `after Break + Coffee: server has ${a.presence} (${a.reason})`);
	await page.locator("#break-reason").selectOption("training");
	await sleep(1500);
	a = agentShow();
	check(a.presence === "break" && a.reason === "training",
	      `after changing the reason to Training: server has ${a.presence} (${a.reason})`);
	let st = await desktopState(page);
	log(`desktop before reload: ${JSON.stringify(st)}`);
	for (let i = 0; i < 3; i++) {
		await page.reload();
		await page.locator("#presence").waitFor({ state: "visible", timeout: WAIT_MS });
		await sleep(2500);
		st = await desktopState(page);
		a = agentShow();
		log(`reload ${i + 1}: desktop ${JSON.stringify({ p: st.presence, r: st.reason })}, ` +
		    `server ${a.presence} (${a.reason})`);
		check(a.presence === "break" && a.reason === "training",
		      `after reload ${i + 1}: server has ${a.presence} (${a.reason}); want break ` +
		      `(training)`);
		check(st.presence === "break" && st.reason === "training",
		      `after reload ${i + 1}: desktop shows ${st.presence} (reason select ` +
		      `${JSON.stringify(st.reason)}); the server has ${a.presence} (${a.reason})`);
	}
	await desktopPresence(page, "away");
	a = agentShow();
	check(a.presence === "away" && !a.reason, `after Away: ${a.presence} (${a.reason})`);
	await page.reload();
	await page.locator("#presence").waitFor({ state: "visible", timeout: WAIT_MS });
	await sleep(2500);
	a = agentShow();
	check(a.presence === "away", `after Away and a reload: server has ${a.presence}`);
}

// Break while holding a chat: it stays, replies and close work; nothing new comes.
async function breakHolding(browser) {
	const page = await availableDesk(browser);
	const c1 = await new Customer({ name: "Rosa" }).start();
	await c1.send("hola uno");
	await waitText(page, "hola uno");
	await desktopPresence(page, "break", "lunch");
	const a = agentShow();
	check(a.presence === "break" && a.reason === "lunch", `break: ${a.presence} (${a.reason})`);
	const c2 = await new Customer({ name: "Tomas" }).start();
	await c2.send("hola dos");
	await c1.send("sigo aqui");
	await waitText(page, "sigo aqui");
	await reply(page, "Un momento por favor");
	await until(() => c1.agentTexts().includes("Un momento por favor"), "reply at customer");
	await sleep(3000);
	let st = await desktopState(page);
	check(!st.list.some((l) => l.includes("Tomas")) && !c2.assigned(),
	      `a chat came while on break: ${JSON.stringify(st.list)}`);
	await closeCurrent(page);
	await until(() => c1.closed(), "customer told closed");
	await desktopPresence(page, "available");
	await waitText(page, "hola dos");
	st = await desktopState(page);
	check(st.presence === "available", `presence ${st.presence}`);
	c1.quit();
	c2.quit();
}

// Wrap-up: close in a queue with wrapup_s 120, reload: the server still holds the wrap-up; the
// desktop must still let the agent end it.
async function wrapupReload(browser) {
	const { page, c1 } = await closedIntoWrapup(browser);
	let a = agentShow();
	log(`after the close: wrapup_until_ms ${JSON.stringify(a.wrapup_until_ms)}`);
	check(a.wrapup_until_ms && a.wrapup_until_ms.chat > Date.now(), "server not in wrap-up");
	await page.reload();
	await page.locator("#presence").waitFor({ state: "visible", timeout: WAIT_MS });
	await sleep(2500);
	const st = await desktopState(page);
	a = agentShow();
	const inWrapup = a.wrapup_until_ms && a.wrapup_until_ms.chat > Date.now();
	log(`after the reload: desktop ${JSON.stringify(st)}; server wrap-up until ` +
	    `${JSON.stringify(a.wrapup_until_ms)}`);
	check(!inWrapup || st.wrapup, `after a reload during wrap-up (the server holds it ` +
	      `${Math.round((a.wrapup_until_ms.chat - Date.now()) / 1000)} s more: no new chat ` +
	      `comes) the desktop no longer shows "Wrap-up done" nor any wrap-up state: the agent ` +
	      `cannot end it and does not know why no chat comes`);
	c1.quit();
}

// Wrap-up longer than the desktop's fixed 60 s.
async function wrapupLong(browser) {
	const { page, c1 } = await closedIntoWrapup(browser);
	const c2 = await new Customer({ name: "Tomas" }).start();
	await c2.send("espero");
	log("waiting 70 s of wrap-up (wrapup_s 120)");
	await sleep(70000);
	const st = await desktopState(page);
	const a = agentShow();
	const left = a.wrapup_until_ms && a.wrapup_until_ms.chat ? a.wrapup_until_ms.chat - Date.now()
		: 0;
	log(`70 s after the close: desktop ${JSON.stringify(st)}; server wrap-up ${left} ms more; ` +
	    `Tomas assigned: ${c2.assigned()}`);
	check(!c2.assigned(), "a chat came during the wrap-up");
	check(left <= 0 || st.wrapup, `70 s after the close the agent is still in wrap-up for ` +
	      `${Math.round(left / 1000)} s (a customer waits, no chat comes), but the desktop ` +
	      `hid "Wrap-up done" and shows nothing of the wrap-up`);
	if (st.wrapup) {
		await page.locator("#wrapup-done").click();
		await waitText(page, "espero");
	}
	c1.quit();
	c2.quit();
}

// Wrap-up of 8 s: no new chat meanwhile, then one arrives; "Wrap-up done" ends it at once.
async function wrapupNext(browser) {
	const { page, c1 } = await closedIntoWrapup(browser);
	const t0 = Date.now();
	const c2 = await new Customer({ name: "Tomas" }).start();
	await c2.send("espero");
	await sleep(3000);
	check(!c2.assigned(), "a chat came 3 s into an 8 s wrap-up");
	await waitText(page, "espero", 30000);
	const dt = Date.now() - t0;
	log(`Tomas came ${dt} ms after the close`);
	await sleep(1000);
	let st = await desktopState(page);
	check(st.title === "Tomas", `new chat not opened: ${JSON.stringify(st)}`);
	check(!st.wrapup, `the wrap-up is over (a new chat came ${Math.round(dt / 1000)} s after ` +
	      `the close) but the desktop still offers "Wrap-up done": ${JSON.stringify(st)}`);
	// the button ends it at once
	const c3 = await new Customer({ name: "Uma", kind: "wrap" }).start();
	await c3.send("tres");
	await until(() => c3.assigned(), "Uma assigned");
	await selectConv(page, "Uma");
	await waitText(page, "tres", 10000);
	await closeCurrent(page); // Uma (wrap-up)
	await page.locator("#wrapup-done").waitFor({ state: "visible", timeout: WAIT_MS });
	const c4 = await new Customer({ name: "Vera" }).start();
	await c4.send("cuatro");
	await sleep(2000);
	check(!c4.assigned(), "chat during wrap-up 2");
	await page.locator("#wrapup-done").click();
	await until(() => c4.assigned(), "Vera after Wrap-up done", 10000);
	await page.locator("#wrapup-done").waitFor({ state: "hidden", timeout: 5000 })
		.catch(() => check(false, "Wrap-up done still shown after it was used"));
	// a close in a queue without wrap-up: nothing to end
	await selectConv(page, "Vera");
	await closeCurrent(page);
	await sleep(1000);
	st = await desktopState(page);
	check(!st.wrapup, `after closing a conversation of a queue without wrap-up ` +
	      `(general, wrapup_s 0) the desktop offers "Wrap-up done" for a wrap-up that is not ` +
	      `there: ${JSON.stringify(st)}`);
	c1.quit(); c2.quit(); c3.quit(); c4.quit();
}

// Reject with a reason; capacity 2: a third chat waits; a close frees a slot.
async function rejectCapacity(browser) {
	const page = await availableDesk(browser);
	const o1 = await new Customer({ name: "Olga", kind: "offer" }).start();
	await page.locator("#offer-list li", { hasText: "Olga" }).waitFor({ timeout: WAIT_MS });
	const card = page.locator("#offer-list li", { hasText: "Olga" });
	const cd = await card.locator(".countdown").textContent();
	log(`offer countdown: ${cd}`);
	check(/expires in/.test(cd), `countdown: ${cd}`);
	await card.locator(".offer-actions button.reject").click();
	await card.locator("select.reject-reason").selectOption("wrong-language");
	await card.locator(".reject-form button.reject").click();
	await page.locator("#offer-list li", { hasText: "Olga" }).waitFor({ state: "detached",
		timeout: WAIT_MS });
	console.log(`REJECTED ${o1.conv}`);
	const c1 = await new Customer({ name: "Ana" }).start();
	await c1.send("uno");
	await waitText(page, "uno");
	const c2 = await new Customer({ name: "Bea" }).start();
	await c2.send("dos");
	await until(() => c2.assigned(), "second chat");
	const c3 = await new Customer({ name: "Carla" }).start();
	await c3.send("tres");
	await sleep(3000);
	let st = await desktopState(page);
	check(!c3.assigned() && !st.list.some((l) => l.includes("Carla")),
	      `a third chat came at capacity 2: ${JSON.stringify(st.list)}`);
	await selectConv(page, "Ana");
	await closeCurrent(page);
	await until(() => c3.assigned(), "third chat after a close", 15000);
	await until(async () => (await desktopState(page)).list.some((l) => l.includes("Carla")),
		"Carla in the list");
	c1.quit(); c2.quit(); c3.quit(); o1.quit();
}

// History of the same customer: listed, readable; another customer's is not.
async function historySameCustomer(browser) {
	const page = await availableDesk(browser);
	const x1 = await new Customer({ name: "Xavi", customer_id: "cust-x" }).start();
	await x1.send("primera vez de Xavi");
	await waitText(page, "primera vez de Xavi");
	await reply(page, "respuesta a Xavi");
	await closeCurrent(page);
	const y1 = await new Customer({ name: "Yago", customer_id: "cust-y" }).start();
	await y1.send("secreto de Yago");
	await waitText(page, "secreto de Yago");
	await closeCurrent(page);
	const x2 = await new Customer({ name: "Xavi", customer_id: "cust-x" }).start();
	await x2.send("segunda vez de Xavi");
	await waitText(page, "segunda vez de Xavi");
	const st = await page.evaluate(() => ({
		items: Array.from(document.querySelectorAll("#earlier-list button"))
			.map((b) => b.dataset.earlier),
		cid: document.getElementById("conv-customer-id").textContent,
	}));
	log(`earlier list: ${JSON.stringify(st)}`);
	check(st.items.length === 1 && st.items[0] === x1.conv,
	      `earlier conversations listed: ${JSON.stringify(st.items)}; want [${x1.conv}]`);
	check(st.cid === "cust-x", `customer id shown: ${st.cid}`);
	await page.locator(`#earlier-list button`).first().click();
	await waitText(page, "primera vez de Xavi", WAIT_MS, "#history-messages li");
	await waitText(page, "respuesta a Xavi", WAIT_MS, "#history-messages li");
	const hist = await lines(page, "#history-messages li");
	check(!hist.some((l) => l.includes("Yago")), `another customer's text: ${hist}`);
	// switch to the old (closed) conversation of Yago and back
	await selectConv(page, "Yago");
	const st2 = await page.evaluate(() => Array.from(document.querySelectorAll(
		"#earlier-list button")).map((b) => b.dataset.earlier));
	check(st2.length === 0, `Yago's earlier list: ${JSON.stringify(st2)}`);
	x1.quit(); x2.quit(); y1.quit();
}

// Transfer to a queue with a note: the next agent (maria, on her own desktop) sees the note;
// close with a disposition.
async function transferNoteDisposition(browser) {
	const { page } = await openPage(browser, "desktop luis");
	const { page: mp } = await openPage(browser, "desktop maria");
	await desktopLogin(page);
	await desktopPresence(page, "available");
	const c1 = await new Customer({ name: "Rosa" }).start();
	await c1.send("quiero un reembolso");
	await waitText(page, "quiero un reembolso");
	await desktopLogin(mp, process.env.OMR_AGENT2_ID, process.env.OMR_AGENT2_TOKEN);
	await desktopPresence(mp, "available");
	await page.locator("#transfer-conv").click();
	await page.locator("#transfer-target").fill("second");
	await page.locator("#transfer-note").fill("Pide reembolso del pedido 77");
	await page.locator("#transfer-send").click();
	await page.locator("#transfer-dialog").waitFor({ state: "hidden", timeout: WAIT_MS });
	await waitText(mp, "Pide reembolso del pedido 77");
	await waitText(mp, "quiero un reembolso");
	const st = await desktopState(page);
	check(!st.compose && st.list.some((l) => l.includes("transferred")),
	      `luis after the transfer: ${JSON.stringify(st)}`);
	const mst = await mp.evaluate(() => document.getElementById("conv-queue").textContent);
	log(`maria sees queue ${mst}`);
	check(mst === "second", `queue shown to maria: ${mst}`);
	await mp.locator("#text").fill("Hola, soy Maria");
	await mp.locator("#text").press("Enter");
	await until(() => c1.agentTexts().includes("Hola, soy Maria"), "maria's reply");
	check(!c1.frames.some((f) => JSON.stringify(f).includes("pedido 77")),
	      "the customer saw the note");
	await closeCurrent(mp, "follow-up");
	console.log(`CLOSED ${c1.conv}`);
	c1.quit();
}

// Keyboard only.
async function keyboardOnly(browser) {
	const { page } = await openPage(browser, "desktop");
	await page.goto(`${BASE}/agent.html`);
	await page.locator("#agent-id").waitFor({ timeout: WAIT_MS });
	await page.keyboard.press("Tab"); // into the form
	let f = await page.evaluate(() => document.activeElement.id);
	// tab until the agent id field
	for (let i = 0; i < 6 && f !== "agent-id"; i++) {
		await page.keyboard.press("Tab");
		f = await page.evaluate(() => document.activeElement.id);
	}
	check(f === "agent-id", `Tab does not reach the agent id: ${f}`);
	await page.keyboard.type(AGENT_ID);
	await page.keyboard.press("Tab");
	await page.keyboard.type(AGENT_TOKEN);
	await page.keyboard.press("Enter");
	await page.locator("#presence").waitFor({ state: "visible", timeout: WAIT_MS });
	// presence by keyboard: focus the select with Tab
	async function tabTo(pred, what, max = 40, back = false) {
		for (let i = 0; i < max; i++) {
			const ok = await page.evaluate(pred);
			if (ok)
				return true;
			await page.keyboard.press(back ? "Shift+Tab" : "Tab");
		}
		const st = await desktopState(page);
		fail(`keyboard: Tab never reaches ${what}; focus on ${st.focus}`);
	}
	await tabTo(() => document.activeElement.id === "presence", "the presence select");
	// Chromium: ArrowUp on a closed select changes it (Available is first)
	await page.keyboard.press("ArrowUp");
	await page.keyboard.press("ArrowUp");
	await page.waitForFunction(() => document.getElementById("presence").classList
		.contains("available"), null, { timeout: WAIT_MS });
	check(agentShow().presence === "available", "not available");
	const c1 = await new Customer({ name: "Rosa" }).start();
	await c1.send("hola por teclado");
	await waitText(page, "hola por teclado");
	let st = await desktopState(page);
	log(`after the first chat: focus ${st.focus}`);
	// an offer comes; accept it by keyboard
	const o = await new Customer({ name: "Olga", kind: "offer" }).start();
	await page.locator("#offer-list li").waitFor({ timeout: WAIT_MS });
	await tabTo(() => document.activeElement.classList.contains("accept"), "the Accept button",
		40, true);
	await page.keyboard.press("Enter");
	await page.waitForFunction(() => document.getElementById("conv-title").textContent === "Olga",
		null, { timeout: WAIT_MS });
	st = await desktopState(page);
	check(st.focus === "text", `after accepting, the focus is on ${st.focus} (want the reply box)`);
	await o.send("soy Olga");
	await waitText(page, "soy Olga");
	// reply by keyboard
	await page.keyboard.type("Hola Olga");
	await page.keyboard.press("Enter");
	await until(() => o.agentTexts().includes("Hola Olga"), "Olga got the reply");
	// switch to Rosa by keyboard
	await tabTo(() => document.activeElement.tagName === "LI" &&
		document.activeElement.textContent.includes("Rosa"), "Rosa in the list", 40, true);
	await page.keyboard.press("Enter");
	await page.waitForFunction(() => document.getElementById("conv-title").textContent === "Rosa",
		null, { timeout: WAIT_MS });
	st = await desktopState(page);
	check(st.focus === "text", `after switching, focus on ${st.focus}`);
	await page.keyboard.type("Hola Rosa");
	await page.keyboard.press("Enter");
	await until(() => c1.agentTexts().includes("Hola Rosa"), "Rosa got the reply");
	// close with a disposition by keyboard
	await tabTo(() => document.activeElement.id === "close-conv", "the Close button", 40, true);
	await page.keyboard.press("Enter");
	st = await desktopState(page);
	check(st.focus === "disposition", `close form: focus on ${st.focus}`);
	await page.keyboard.press("ArrowDown"); // follow-up
	await page.keyboard.press("Enter");
	await until(() => c1.closed(), "Rosa closed");
	await sleep(1000);
	st = await desktopState(page);
	log(`after the close: ${JSON.stringify(st)}`);
	check(st.focus && !st.focus.startsWith("BODY") && st.focus !== "disposition",
	      `after closing with the keyboard the focus is lost (${st.focus}): the agent must ` +
	      `Tab from the top of the page to get back to work`);
	// back to Olga by keyboard (the list)
	await tabTo(() => document.activeElement.tagName === "LI" &&
		document.activeElement.textContent.includes("Olga"), "Olga in the list", 60);
	await page.keyboard.press("Enter");
	await page.waitForFunction(() => document.getElementById("conv-title").textContent === "Olga",
		null, { timeout: WAIT_MS });
	c1.quit(); o.quit();
}

// Layout with long names and ids, many conversations.
async function layoutLong(browser) {
	const results = [];
	const page = await availableDesk(browser);
	const custs = [];
	const longName = "maximiliano_alejandro_fernandez_villavicencio@gmail.com";
	const longId = "customer-" + "x".repeat(110) + "-42";
	for (let i = 0; i < 10; i++) {
		const c = await new Customer({ name: i === 0 ? longName : `Cliente numero ${i}`,
			customer_id: i === 0 ? longId : `cust-${i}` }).start();
		await c.send(`mensaje ${i} ` + (i === 0 ? "y".repeat(300) : ""));
		custs.push(c);
	}
	await until(async () => (await desktopState(page)).list.length >= 10, "10 conversations");
	await selectConv(page, longName);
	const o = await new Customer({ name: longName + "-offer", kind: "offer" }).start();
	await page.locator("#offer-list li").waitFor({ timeout: WAIT_MS });
	async function overflow() {
		return page.evaluate(() => {
			const out = [];
			const de = document.documentElement;
			if (de.scrollWidth > de.clientWidth)
				out.push(`page ${de.scrollWidth} > ${de.clientWidth}`);
			for (const e of document.querySelectorAll("body *")) {
				if (e.offsetParent === null && getComputedStyle(e).position !== "fixed")
					continue;
				const cs = getComputedStyle(e);
				if ((cs.overflowX === "auto" || cs.overflowX === "scroll") &&
				    e.scrollWidth > e.clientWidth + 1)
					out.push(`${e.tagName}#${e.id}.${e.className} scrolls sideways ` +
						 `(${e.scrollWidth} > ${e.clientWidth})`);
			}
			return out;
		});
	}
	for (const w of [1280, 1024, 800, 640]) {
		await page.setViewportSize({ width: w, height: 800 });
		await sleep(500);
		const o2 = await overflow();
		const tw = await page.evaluate(() => Math.round(document.getElementById("text")
			.getBoundingClientRect().width));
		log(`width ${w}: the reply box is ${tw} px wide`);
		if (w === 640)
			check(tw >= 250, `in a half-screen window (640x800) the reply box is ${tw} px ` +
			      `wide: the two fixed side columns (18rem + 19rem) leave the conversation ` +
			      `no room`);
		if (process.env.OMR_SCREENSHOT_DIR)
			await page.screenshot({ path: `${process.env.OMR_SCREENSHOT_DIR}/review-desktop-${w}.png` });
		log(`width ${w}: ${JSON.stringify(o2)}`);
		results.push([w, o2]);
	}
	await page.setViewportSize({ width: 1280, height: 800 });
	const o1280 = results[0][1];
	check(o1280.length === 0, `at 1280x800 with a long customer name (an e-mail address, as ` +
	      `customers often type) parts of the desktop scroll sideways: ${o1280.join("; ")}`);
	const o800 = results[2][1];
	check(o800.length === 0, `at 800x800 parts of the desktop scroll sideways: ` +
	      `${o800.join("; ")}`);
	custs.forEach((c) => c.quit());
	o.quit();
}

// Typing both ways; unread counts.
async function typingUnread(browser) {
	const { page, c1 } = await chatOnDesk(browser);
	c1.typing();
	await page.locator("#typing").waitFor({ state: "visible", timeout: 5000 }).catch(() => {});
	let st = await page.evaluate(() => !document.getElementById("typing").hidden);
	check(st, "customer typing not shown");
	await c1.send("escribi esto");
	await waitText(page, "escribi esto");
	st = await page.evaluate(() => !document.getElementById("typing").hidden);
	check(!st, "typing shown after the message");
	await page.locator("#text").pressSequentially("escribo", { delay: 50 });
	await until(() => c1.frames.some((f) => f.type === "typing"), "agent typing at customer",
		5000).catch(() => check(false, "the customer was not told the agent types"));
	await page.locator("#text").fill("");
	const c2 = await new Customer({ name: "Tomas" }).start();
	await c2.send("t1");
	await until(async () => (await desktopState(page)).list.some((l) => l.includes("Tomas")),
		"Tomas in the list");
	await c2.send("t2");
	await c2.send("t3");
	await sleep(1000);
	const c3 = await new Customer({ name: "Uma" }).start();
	await until(async () => (await desktopState(page)).list.some((l) => l.includes("Uma")),
		"Uma in the list");
	await sleep(500);
	let lst = (await desktopState(page)).list;
	log(`list: ${JSON.stringify(lst)}`);
	const tl = lst.find((l) => l.includes("Tomas")) || "";
	check(/3 new/.test(tl), `Tomas's entry: ${tl} (want 3 new)`);
	// still on Rosa; a reload
	await page.reload();
	await page.locator("#presence").waitFor({ state: "visible", timeout: WAIT_MS });
	await sleep(2500);
	st = await desktopState(page);
	log(`after reload: ${JSON.stringify(st)}`);
	const tl2 = st.list.find((l) => l.includes("Tomas")) || "";
	check(/3 new/.test(tl2),
	      `after a reload Tomas's 3 unread messages are no longer marked (entry: ` +
	      `${JSON.stringify(tl2)}, shown: ${st.title}): the agent can miss a customer waiting ` +
	      `for an answer`);
	check(st.title === "Rosa", `after a reload the desktop shows ${st.title}, not Rosa, the ` +
	      `conversation the agent was in`);
	c1.quit(); c2.quit(); c3.quit();
}

// The customer closes the chat page mid-conversation, then comes back (PROTOCOL.md, agent
// events customer-left and customer-back): the desktop says so in the conversation and in the
// list, and still after a reload.
async function customerLeft(browser) {
	const { page, c1 } = await chatOnDesk(browser);
	c1.quit();
	await waitText(page, "The customer left");
	const entry = async () => (await desktopState(page)).list.find((l) => l.includes("Rosa")) || "";
	await until(async () => /customer left/.test(await entry()), "the list marks Rosa left");
	await page.reload();
	await page.locator("#presence").waitFor({ state: "visible", timeout: WAIT_MS });
	await waitText(page, "The customer left");
	check(/customer left/.test(await entry()), `after a reload: ${await entry()}`);
	await c1.resume();
	await waitText(page, "The customer is back");
	await until(async () => !/customer left/.test(await entry()), "the mark gone");
	await c1.send("sigo aquí");
	await waitText(page, "sigo aquí");
	c1.quit();
}

// The site ends chats (omnirouterctl conversation close). One from the chat page that luis
// transferred to a queue where it waits: the page says the team ended it and still offers the
// survey (an agent served it). One in the wrap-up queue that luis holds: the desktop shows the
// note and starts no wrap-up; the customer never sees the note.
async function endedBySite(browser) {
	const { page, cust } = await pageChat(browser);
	await customerSend(cust, "necesito ayuda");
	await waitText(page, "necesito ayuda");
	const conv = await until(() => agentShow().conversations[0], "the chat's id");
	await page.locator("#transfer-conv").click();
	await page.locator("#transfer-target").fill("second");
	await page.locator("#transfer-send").click();
	await page.locator("#transfer-dialog").waitFor({ state: "hidden", timeout: WAIT_MS });
	await waitText(cust, "You are being transferred");
	ctl("conversation", "close", conv, "--reason", "duplicate of a call");
	await waitText(cust, "This chat was ended by the support team");
	await cust.locator("#survey").waitFor({ state: "visible", timeout: WAIT_MS })
		.catch(() => fail("no survey on the chat page after the site ended a chat an agent " +
			"had served and transferred"));
	const shown = (await lines(cust)).join(" | ");
	check(!shown.includes("duplicate"), `the note reached the customer: ${shown}`);
	const c2 = await new Customer({ name: "Tomas", kind: "wrap" }).start();
	await c2.send("hola");
	await waitText(page, "hola");
	ctl("conversation", "close", c2.conv, "--reason", "spam");
	await waitText(page, "Conversation ended by the site: spam");
	await until(() => c2.frames.find((f) => f.event === "closed"), "Tomas's closed event");
	const ev = c2.frames.find((f) => f.event === "closed");
	check(ev.reason === "admin" && !JSON.stringify(c2.frames).includes("spam"),
	      `the customer's closed event: ${JSON.stringify(ev)}`);
	await sleep(1000);
	check(await page.locator("#wrapup-done").isHidden(),
	      "the desktop shows a wrap-up after a chat the site ended");
	const a = agentShow();
	check(Object.keys(a.wrapup_until_ms).length === 0 && a.load.chat === 0,
	      `server after the ends: wrap-up ${JSON.stringify(a.wrapup_until_ms)}, load ` +
	      `${JSON.stringify(a.load)}`);
	c2.quit();
}

// The daemon restarts mid-day.
async function daemonRestart(browser) {
	const { page } = await openPage(browser, "desktop");
	await desktopLogin(page);
	await desktopPresence(page, "break", "meeting");
	await desktopPresence(page, "available");
	const c1 = await new Customer({ name: "Rosa" }).start();
	await c1.send("antes del reinicio");
	await waitText(page, "antes del reinicio");
	const c2 = await new Customer({ name: "Tomas", kind: "offer" }).start();
	await page.locator("#offer-list li").waitFor({ timeout: WAIT_MS });
	await cmd("restart");
	await page.waitForFunction(() => document.getElementById("status").textContent === "online" &&
		!document.getElementById("presence-box").hidden, null, { timeout: 40000 })
		.catch(() => fail("the desktop did not log in again within 40 s of the restart"));
	await sleep(2000);
	let st = await desktopState(page);
	let a = agentShow();
	log(`after the restart: desktop ${JSON.stringify(st)}; server ${a.presence} (${a.reason})`);
	check(st.presence === "available" && a.presence === "available",
	      `presence after the restart: desktop ${st.presence}, server ${a.presence}`);
	check(st.offers.length === 1, `offer after the restart: ${JSON.stringify(st.offers)}`);
	// the customer resumes
	c1.quit();
	const r = new Customer({ name: "Rosa" });
	r.n = 100; // (message ids go on from the first connection's)
	r.ws = new WebSocket(`${WS_BASE}/ws/customer`);
	r.ws.onmessage = (ev) => r.frames.push(JSON.parse(ev.data));
	await new Promise((res) => { r.ws.onopen = res; });
	const w = c1.frames.find((f) => f.type === "welcome");
	r.ws.send(JSON.stringify({ type: "resume", v: 1, conversation_id: w.conversation_id,
		resume_token: w.resume_token }));
	await until(() => r.frames.find((f) => f.type === "welcome"), "resume welcome");
	await r.send("despues del reinicio");
	await waitText(page, "despues del reinicio");
	await reply(page, "sigo aqui");
	await until(() => r.agentTexts().includes("sigo aqui"), "reply after restart");
	await page.locator("#offer-list li button.accept").click();
	await page.waitForFunction(() => document.getElementById("conv-title").textContent === "Tomas",
		null, { timeout: WAIT_MS });
	// a second restart while on break
	await desktopPresence(page, "break", "meeting");
	await cmd("restart");
	await page.waitForFunction(() => document.getElementById("status").textContent === "online" &&
		!document.getElementById("presence-box").hidden, null, { timeout: 40000 })
		.catch(() => fail("no login after the 2nd restart"));
	await sleep(2000);
	st = await desktopState(page);
	a = agentShow();
	log(`after the 2nd restart: desktop ${JSON.stringify({ p: st.presence, r: st.reason })}; ` +
	    `server ${a.presence} (${a.reason})`);
	check(a.presence === "break" && a.reason === "meeting" && st.presence === "break" &&
	      st.reason === "meeting", `break (meeting) after a restart: desktop ${st.presence} ` +
	      `(${st.reason}), server ${a.presence} (${a.reason})`);
	r.quit(); c2.quit();
}

// A network drop just as the agent clicks Accept: the accept never reached the server, the
// offer is still open there (PROTOCOL.md "offer": "keep the buttons until revoked comes (the
// server decides)"). Once the desktop is back, the agent must be able to accept it.
async function acceptLostInDrop(browser) {
	const { page } = await openPage(browser, "desktop");
	const st = { dropAccept: false, open: [] };
	await page.routeWebSocket(/\/ws\/agent$/, (ws) => {
		const server = ws.connectToServer();
		const conn = { ws, server };
		st.open.push(conn);
		ws.onMessage((m) => {
			if (st.dropAccept && /"type":"accept"/.test(m)) {
				log("proxy: the accept is lost with the connection");
				st.dropAccept = false;
				ws.close({ code: 1006 }).catch(() => {});
				server.close().catch(() => {});
				return;
			}
			server.send(m);
		});
		server.onMessage((m) => ws.send(m));
	});
	await desktopLogin(page);
	await desktopPresence(page, "available");
	const o = await new Customer({ name: "Olga", kind: "offer" }).start();
	await page.locator("#offer-list li").waitFor({ timeout: WAIT_MS });
	st.dropAccept = true;
	await page.locator("#offer-list li button.accept").click();
	await page.waitForFunction(() => document.getElementById("status").textContent ===
		"online" && !document.getElementById("presence-box").hidden, null, { timeout: 30000 });
	await sleep(2000);
	const v = await page.evaluate(() => {
		const li = document.querySelector("#offer-list li");
		return li ? { accept: !li.querySelector("button.accept").disabled,
			text: li.querySelector(".countdown").textContent } : null;
	});
	const a = agentShow();
	log(`after the reconnect: offer card ${JSON.stringify(v)}; customer assigned ` +
	    `${o.assigned()}; server conversations ${JSON.stringify(a.conversations)}`);
	check(o.assigned() || (v && v.accept), `the accept was lost in a network drop; the offer ` +
	      `is still open on the server, but after the reconnect the desktop's card is ` +
	      `${JSON.stringify(v)}: Accept stays disabled until the offer times out`);
	if (v && v.accept) {
		await page.locator("#offer-list li button.accept").click();
		await until(() => o.assigned(), "accepted after the reconnect");
	}
	o.quit();
}

// A supervisor issues the agent a new token mid-chat (PROTOCOL.md `logged-out`): the desktop
// says why it was signed out, shows the login form (not "logged in elsewhere", which sends the
// agent looking for another window), and a login with the new token keeps the chat.
async function tokenReissued(browser) {
	const page = await availableDesk(browser);
	const c = await new Customer({ name: "Rosa" }).start();
	await c.send("hola");
	await waitText(page, "hola");
	const token = ctl("token", "issue", AGENT_ID).trim();
	await page.locator("#login").waitFor({ state: "visible", timeout: WAIT_MS })
		.catch(() => {});
	const st = await page.evaluate(() => ({
		login: !document.getElementById("login").hidden,
		error: document.getElementById("login-error").textContent,
		status: document.getElementById("status").textContent,
	}));
	log(`after the token was reissued: ${JSON.stringify(st)}`);
	check(st.login && /new token/.test(st.error), `the desktop of a reissued token shows ` +
	      `${JSON.stringify(st)}, not the login form saying why it was signed out`);
	await page.locator("#agent-id").fill(AGENT_ID);
	await page.locator("#token").fill(token);
	await page.locator("#token").press("Enter");
	await page.locator("#presence").waitFor({ state: "visible", timeout: WAIT_MS });
	await c.send("sigo aqui");
	await waitText(page, "sigo aqui");
	await selectConv(page, "Rosa");
	await reply(page, "Aqui estoy");
	await until(() => c.agentTexts().includes("Aqui estoy"), "reply after the new login");
	c.quit();
}

// Arabic runs right to left: shown left to right, a line ending in a number or "!" reads
// scrambled. Each message takes its direction from its text, and carries its conversation's
// language (screen readers; Japanese glyphs for Japanese text rather than Chinese ones).
async function rightToLeft(browser) {
	const page = await availableDesk(browser);
	const ar = await new Customer({ name: "سارة", language: "ar" }).start();
	const line = "مرحبا، رقم طلبي 4521!";
	await ar.send(line);
	await waitText(page, line);
	await selectConv(page, "سارة");
	await page.locator("#text").fill("أهلا سارة، سأتحقق 4521.");
	const box = await page.locator("#text").evaluate((el) => el.matches(":dir(rtl)"));
	await page.locator("#text").press("Enter");
	await until(() => ar.agentTexts().includes("أهلا سارة، سأتحقق 4521."), "Arabic reply");
	await ar.send("Order 4521?");
	await waitText(page, "Order 4521?");
	const ja = await new Customer({ name: "Yuki", language: "ja" }).start();
	await ja.send("注文番号は4521です");
	await page.locator("#conv-list li", { hasText: "Yuki" }).waitFor({ timeout: WAIT_MS });
	await selectConv(page, "Yuki");
	await waitText(page, "注文番号は4521です");
	await selectConv(page, "سارة");
	const shown = async () => page.evaluate(() => Array.from(
		document.querySelectorAll("#messages li .text")).map((el) => ({ text: el.textContent,
		rtl: el.matches(":dir(rtl)"), lang: (el.closest("[lang]") || {}).lang })));
	const lines = await shown();
	await selectConv(page, "Yuki");
	const jaLines = await shown();
	await selectConv(page, "سارة");
	if (process.env.OMR_SHOTS)
		await page.screenshot({ path: `${process.env.OMR_SHOTS}/desktop-arabic.png` });
	log(`box rtl ${box}; Arabic chat ${JSON.stringify(lines)}; Japanese ${JSON.stringify(jaLines)}`);
	check(box, "the reply box shows Arabic typed into it left to right");
	for (const [text, rtl] of [[line, true], ["أهلا سارة، سأتحقق 4521.", true],
		["Order 4521?", false]]) {
		const l = lines.find((x) => x.text === text);
		check(l && l.rtl === rtl && l.lang === "ar", `"${text}" is shown ${JSON.stringify(l)}: ` +
		      `want ${rtl ? "right to left" : "left to right"}, lang ar`);
	}
	const j = jaLines.find((x) => x.text === "注文番号は4521です");
	check(j && j.lang === "ja", `the Japanese line is shown ${JSON.stringify(j)}, not lang ja`);
	ar.quit();
	ja.quit();
}

// The agent's browser dies mid-chat and the agent logs in from another one (PROTOCOL.md login
// `conversations`): the new desktop shows the chat it holds, with its transcript, and the
// conversation goes on; a reload of that desktop shows each line once.
async function newBrowser(browser) {
	const first = await openPage(browser, "desktop");
	await desktopLogin(first.page);
	await desktopPresence(first.page, "available");
	const c = await new Customer({ name: "Rosa" }).start();
	await c.send("mi pedido no llego");
	await waitText(first.page, "mi pedido no llego");
	await reply(first.page, "Lo reviso ahora");
	await first.ctx.close();
	const { page } = await openPage(browser, "desktop");
	await desktopLogin(page);
	let shown = true;
	try {
		await page.locator("#conv-list li", { hasText: "Rosa" }).waitFor({ timeout: 10000 });
	} catch (e) {
		shown = false;
	}
	const st = await desktopState(page);
	log(`the new browser shows ${JSON.stringify(st.list)}`);
	check(shown, `the agent still holds Rosa's chat, but the desktop in a new browser shows ` +
	      `${JSON.stringify(st.list)}: Rosa waits for an agent who cannot see her`);
	if (!shown)
		return;
	await selectConv(page, "Rosa");
	await waitText(page, "mi pedido no llego");
	await waitText(page, "Lo reviso ahora");
	await reply(page, "Ya lo encontre");
	await until(() => c.agentTexts().includes("Ya lo encontre"), "reply from the new browser");
	await page.reload();
	await page.locator("#presence").waitFor({ state: "visible", timeout: WAIT_MS });
	await selectConv(page, "Rosa");
	await c.send("gracias");
	await waitText(page, "gracias");
	const all = await lines(page);
	const twice = all.filter((t, i) => all.indexOf(t) !== i);
	check(!twice.length, `after a reload the chat shows lines twice: ${JSON.stringify(all)}`);
	c.quit();
}

const SCENARIOS = {
	acceptLostInDrop, tokenReissued, rightToLeft, newBrowser,
	presenceReasons, breakHolding, wrapupReload, wrapupLong, wrapupNext, rejectCapacity,
	historySameCustomer, transferNoteDisposition, keyboardOnly, layoutLong, typingUnread,
	daemonRestart, customerLeft, endedBySite,
};

runScenario("desktop_edges.js", Object.fromEntries(Object.entries(SCENARIOS).map(
	([name, fn]) => [name, { fn, agent: false }])));
