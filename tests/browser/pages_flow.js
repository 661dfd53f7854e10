// pages_flow.js - the shipped pages (web/chat.js, web/agent.js) through the real
// daemon, in Debian's headless Chromium driven by playwright-core. Run by
// tests/integration/test_web_pages.py, which starts redis-server + omnirouterd with one queue
// "offers" (auto_accept: false, a short offer_timeout_s) and creates two agents.
//
// Environment: OMR_CHAT_URL, OMR_AGENT_URL, OMR_AGENT1_ID/_TOKEN/_NAME (Luis),
// OMR_AGENT2_ID/_TOKEN/_NAME (Maria), OMR_OFFER_TIMEOUT_S, OMR_SCREENSHOT_DIR; optional
// OMR_CHROMIUM.
//
// Checks (each failure is collected; the run goes on where it can; exit 1 if any):
//  X  no HTML injection: a customer name, message texts (both ways) and a transfer note carrying
//     <img src=x onerror=...> / <svg onload=...> payloads are shown as text everywhere (offer
//     card, conversation list, header, transcript); detected by a console message "XSS-FIRED",
//     a request for /x, or an <img>/<svg> inside the transcripts.
//  O  two offers at once: Accept on the second card opens the second conversation, the first
//     card stays open; an unanswered offer's card goes when it expires (revoked timeout).
//  T  a transfer to another agent: the first desktop marks it transferred and read-only, the
//     second shows the note as text and the earlier messages; the customer sees "transferred"
//     then the new agent joining, each once; after reloads nothing is shown twice or lost.
//  C  a close: the customer sees the end and answers the survey ("thank you"); the desktop
//     shows the conversation closed.
//  R  an agent who goes away (page closed): the customer sees "requeued", waits, and the other
//     agent's offer/accept brings a new agent.
//  E  no console error, page error, failed request or HTTP error in normal use.
"use strict";

const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

const T0 = Date.now();
const WAIT_MS = 15000;
const SETTLE_MS = 400;

function env(name) {
	const v = process.env[name];
	if (!v) {
		console.error(`pages_flow.js: ${name} is not set`);
		process.exit(2);
	}
	return v;
}

const CHAT_URL = env("OMR_CHAT_URL");
const AGENT_URL = env("OMR_AGENT_URL");
const A1 = { id: env("OMR_AGENT1_ID"), token: env("OMR_AGENT1_TOKEN"), name: env("OMR_AGENT1_NAME") };
const A2 = { id: env("OMR_AGENT2_ID"), token: env("OMR_AGENT2_TOKEN"), name: env("OMR_AGENT2_NAME") };
const A3 = { id: env("OMR_AGENT3_ID"), token: env("OMR_AGENT3_TOKEN"), name: env("OMR_AGENT3_NAME") };
const OFFER_TIMEOUT_S = Number(env("OMR_OFFER_TIMEOUT_S"));
const SHOT_DIR = env("OMR_SCREENSHOT_DIR");
const CHROMIUM = process.env.OMR_CHROMIUM || "/usr/bin/chromium";

// Payloads: each one, when parsed as HTML, logs XSS-FIRED and/or requests /x.
const XSS_NAME = `Zoe<img src=x onerror="console.log('XSS-FIRED name')">`;
const XSS_CUST_MSG = `hola <img src=x onerror="console.log('XSS-FIRED cmsg')"> fin`;
const XSS_AGENT_MSG = `<svg onload="console.log('XSS-FIRED amsg')"></svg>respuesta`;
const XSS_NOTE = `nota <img src=x onerror="console.log('XSS-FIRED note')"><b>bold</b>`;
const B_NAME = "Bea Ruiz";
const B1 = "Necesito ayuda con la factura 77";
const B2 = "Gracias, sigo aquí";
const M1 = "Hola Bea, soy Maria, continúo yo.";
const Z1 = "Mi pedido no llegó";
const Z2 = "¿Sigue ahí?";
const LOST = "Esta respuesta nunca salió del navegador";

const problems = [];   // defects found (soft checks)
const pageErrors = []; // console errors, page errors, failed requests, HTTP errors
const xss = [];        // script execution through injected markup
const shots = [];

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

function watch(page, who) {
	page.on("pageerror", (e) => pageErrors.push(`${who}: page error: ${e && e.stack ? e.stack : e}`));
	page.on("console", (m) => {
		if (/XSS-FIRED/.test(m.text()))
			xss.push(`${who}: ${m.text()}`);
		if (m.type() === "error") {
			const loc = m.location();
			pageErrors.push(`${who}: console error: ${m.text()}` +
				(loc && loc.url ? ` (${loc.url}:${loc.lineNumber})` : ""));
		}
	});
	page.on("request", (r) => {
		if (/\/x$/.test(new URL(r.url()).pathname))
			xss.push(`${who}: injected <img src=x> requested ${r.url()}`);
	});
	page.on("requestfailed", (r) => {
		const f = r.failure();
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
	try {
		const file = path.join(SHOT_DIR, `${name}.png`);
		await page.screenshot({ path: file });
		shots.push(file);
	} catch (e) { /* page closed */ }
}

async function lines(page, sel = "#messages li") {
	return page.$$eval(sel, (lis) => lis.map((li) => {
		const t = li.querySelector(".text");
		return (t ? t.textContent : li.textContent).trim();
	}));
}

async function waitText(page, who, text, sel = "#messages li", timeout = WAIT_MS) {
	try {
		await page.waitForFunction(([t, s]) => Array.from(document.querySelectorAll(s))
			.some((li) => li.textContent.includes(t)), [text, sel], { timeout });
		return true;
	} catch (e) {
		fail(`${who}: "${text}" not shown within ${timeout} ms; transcript:\n  ` +
		     (await lines(page, sel).catch(() => [])).join("\n  "));
	}
}

async function waitFor(page, who, fn, arg, what, timeout = WAIT_MS) {
	try {
		await page.waitForFunction(fn, arg, { timeout });
		return true;
	} catch (e) {
		fail(`${who}: ${what} (not within ${timeout} ms)`);
	}
}

// Every expected text shown exactly once, in this order; no line shown twice.
async function transcriptOnce(page, who, expected) {
	for (const t of expected)
		await waitText(page, who, t);
	await page.waitForTimeout(SETTLE_MS);
	const got = await lines(page);
	const dump = "\n  " + got.join("\n  ");
	for (const t of expected) {
		const n = got.filter((l) => l.includes(t)).length;
		check(n === 1, `${who}: "${t}" shown ${n} times (want once);${dump}`);
	}
	const order = got.map((l) => expected.find((t) => l.includes(t))).filter(Boolean);
	const dedup = order.filter((t, i) => order.indexOf(t) === i);
	check(dedup.join("\u0000") === expected.join("\u0000"),
	      `${who}: out of order: got ${JSON.stringify(dedup)} want ${JSON.stringify(expected)}`);
	const twice = got.filter((l, i) => got.indexOf(l) !== i);
	check(!twice.length, `${who}: lines shown more than once: ${JSON.stringify(twice)};${dump}`);
	return got;
}

// No element was created from the injected markup inside the page's dynamic areas.
async function noInjectedMarkup(page, who) {
	const found = await page.evaluate(() => {
		const out = [];
		for (const e of document.querySelectorAll("main img, main svg, main b, ul img, ol img, ol svg"))
			out.push(e.outerHTML.slice(0, 80));
		return out;
	});
	check(!found.length, `${who}: injected markup became elements: ${JSON.stringify(found)}`);
}

async function login(page, who, a) {
	await page.goto(AGENT_URL);
	await page.locator("#agent-id").waitFor({ state: "visible" });
	await page.locator("#agent-id").fill(a.id);
	await page.locator("#token").fill(a.token);
	await page.locator("#token").press("Enter");
	await page.locator("#presence").waitFor({ state: "visible" });
	log(`${who}: logged in`);
}

async function setAvailable(page, who) {
	await page.locator("#presence").selectOption("available");
	await waitFor(page, who, () => {
		const p = document.getElementById("presence");
		return p.value === "available" && p.classList.contains("available");
	}, null, "presence did not become available");
}

async function startCustomer(page, name) {
	await page.goto(CHAT_URL);
	await page.locator("#lang").selectOption("es");
	await page.locator("#name").fill(name);
	await page.locator("#start [type=submit]").click();
	await page.locator("#text").waitFor({ state: "visible" });
}

async function customerSend(page, who, text) {
	await page.locator("#text").fill(text);
	await page.locator("#send").click();
	await waitFor(page, who, (t) => Array.from(document.querySelectorAll("#messages li"))
		.some((li) => li.textContent.includes(t) && li.classList.contains("acked")), text,
		`message "${text}" not acknowledged`);
}

async function agentReply(page, who, text) {
	await page.locator("#text").fill(text);
	await page.locator("#compose [type=submit]").click();
	await waitFor(page, who, (t) => Array.from(document.querySelectorAll("#messages li"))
		.some((li) => li.textContent.includes(t) && li.classList.contains("acked")), text,
		`reply "${text}" not acknowledged`);
}

function offerCard(page, name) {
	return page.locator("#offer-list li.offer").filter({ hasText: name });
}

async function main() {
	fs.mkdirSync(SHOT_DIR, { recursive: true });
	for (const f of fs.readdirSync(SHOT_DIR))
		if (/^pages-.*\.png$/.test(f))
			fs.unlinkSync(path.join(SHOT_DIR, f));
	const browser = await chromium.launch({
		executablePath: CHROMIUM, headless: true, timeout: 30000,
		args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		       "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
	});
	log(`chromium ${browser.version()}`);
	const pages = {};
	try {
		const opts = { viewport: { width: 1280, height: 800 }, locale: "es-MX" };
		for (const who of ["luis", "maria", "custZ", "custB", "pablo"]) {
			const ctx = await browser.newContext(opts);
			pages[who] = await ctx.newPage();
			pages[who].setDefaultTimeout(WAIT_MS);
			watch(pages[who], who);
		}
		const { luis, maria, custZ, custB } = pages;

		await login(luis, "luis", A1);
		await login(maria, "maria", A2);
		await setAvailable(luis, "luis");

		// ---- O: two offers; accept the second; the first expires --------------------
		await startCustomer(custZ, XSS_NAME);
		const cardZ = offerCard(luis, "Zoe");
		await cardZ.waitFor({ state: "visible" });
		const zName = await cardZ.locator(".name").textContent();
		check(zName === XSS_NAME, `luis: offer card name is ${JSON.stringify(zName)}, want the ` +
		      `raw text ${JSON.stringify(XSS_NAME)}`);
		const tOfferZ = Date.now();
		log("luis: offer for Zoe shown");
		await startCustomer(custB, B_NAME);
		const cardB = offerCard(luis, B_NAME);
		await cardB.waitFor({ state: "visible" });
		check(await luis.locator("#offer-list li.offer").count() === 2, "luis: two offers not both shown");
		await shot(luis, "pages-luis-1-two-offers");
		await cardB.locator("button.accept").click();
		await waitFor(luis, "luis", (n) => document.getElementById("conv-title").textContent === n,
			B_NAME, "accepting Bea's offer did not open Bea's conversation");
		check(await cardZ.isVisible(), "luis: accepting Bea's offer removed Zoe's card");
		if (await cardZ.isVisible())
			check(!(await cardZ.locator("button.accept").isDisabled()),
			      "luis: Zoe's Accept button disabled after accepting Bea's offer");
		const titles = await luis.$$eval("#conv-list li .name", (e) => e.map((x) => x.textContent));
		check(titles.length === 1 && titles[0] === B_NAME,
		      `luis: conversation list after accepting Bea: ${JSON.stringify(titles)}`);
		log("luis: accepted Bea's offer (the second card)");
		await waitText(custB, "custB", `${A1.name} joined`);

		// Zoe's offer is left to expire: the card must go at the latest a few s after the deadline.
		const left = OFFER_TIMEOUT_S * 1000 - (Date.now() - tOfferZ);
		try {
			await cardZ.waitFor({ state: "detached", timeout: Math.max(0, left) + 8000 });
			log(`luis: Zoe's offer card gone ${((Date.now() - tOfferZ) / 1000).toFixed(1)} s after it came`);
		} catch (e) {
			check(false, `luis: Zoe's offer card still shown ${((Date.now() - tOfferZ) / 1000).toFixed(1)} s ` +
			      `after it came (offer_timeout_s ${OFFER_TIMEOUT_S})`);
		}
		check(!(await luis.locator("#conv-list li").filter({ hasText: "Zoe" }).count()),
		      "luis: the expired offer became a conversation on the desktop");

		// ---- X + T: messages with markup, then a transfer with a note ----------------
		await customerSend(custB, "custB", B1);
		await customerSend(custB, "custB", XSS_CUST_MSG);
		await waitText(luis, "luis", XSS_CUST_MSG);
		await agentReply(luis, "luis", XSS_AGENT_MSG);
		await waitText(custB, "custB", XSS_AGENT_MSG);
		await noInjectedMarkup(luis, "luis");
		await noInjectedMarkup(custB, "custB");

		// Maria takes Zoe now (offer, accept), so she is available for the transfer.
		await setAvailable(maria, "maria");
		let zHolder = null;
		for (let i = 0; i < 40 && !zHolder; i++) {
			for (const [p, who] of [[maria, "maria"], [luis, "luis"]]) {
				const c = offerCard(p, "Zoe");
				if (await c.count()) {
					await c.locator("button.accept").click();
					zHolder = who;
					break;
				}
			}
			if (!zHolder)
				await maria.waitForTimeout(500);
		}
		if (!zHolder)
			fail("Zoe's conversation was offered to nobody after its first offer expired");
		log(`${zHolder}: accepted Zoe`);
		const zPage = pages[zHolder];
		await waitFor(zPage, zHolder, (n) => document.getElementById("conv-title").textContent === n,
			XSS_NAME, "Zoe's conversation did not open with her name as text");
		await customerSend(custZ, "custZ", Z1);
		await waitText(zPage, zHolder, Z1);
		await noInjectedMarkup(zPage, zHolder);
		// Back to Bea on luis's desktop if it switched.
		await luis.locator("#conv-list li").filter({ hasText: B_NAME }).click();

		// Transfer Bea from luis to maria, with a note carrying markup.
		await luis.locator("#transfer-conv").click();
		await luis.locator("#transfer-to-agent").check();
		await luis.locator("#transfer-target").fill(A2.id);
		await luis.locator("#transfer-note").fill(XSS_NOTE);
		await luis.locator("#transfer-send").click();
		try {
			await luis.locator("#transfer-dialog").waitFor({ state: "hidden" });
		} catch (e) {
			fail("luis: transfer dialog still open: " +
			     JSON.stringify(await luis.locator("#transfer-error").textContent()));
		}
		// maria: maybe an offer first
		try {
			await maria.waitForFunction((n) => Array.from(document.querySelectorAll(
				"#offer-list li.offer, #conv-list li")).some((e) => e.textContent.includes(n)),
				B_NAME, { timeout: WAIT_MS });
		} catch (e) {
			fail("maria: the transferred conversation did not reach her desktop");
		}
		if (await offerCard(maria, B_NAME).count()) {
			log("maria: the transfer came as an offer; accepting");
			await offerCard(maria, B_NAME).locator("button.accept").click();
		}
		await maria.locator("#conv-list li").filter({ hasText: B_NAME }).click();
		await waitText(maria, "maria", "Note: " + XSS_NOTE);
		await transcriptOnce(maria, "maria", [B1, XSS_CUST_MSG, XSS_AGENT_MSG]);
		await noInjectedMarkup(maria, "maria");
		await shot(maria, "pages-maria-1-transferred");
		// luis: Bea is transferred, read-only
		await waitFor(luis, "luis", (n) => Array.from(document.querySelectorAll("#conv-list li"))
			.some((li) => li.textContent.includes(n) && li.textContent.includes("transferred")),
			B_NAME, "Bea's entry not marked transferred");
		await luis.locator("#conv-list li").filter({ hasText: B_NAME }).click();
		check(await luis.locator("#compose").isHidden(), "luis: can still write in the transferred conversation");
		check(await luis.locator("#transfer-conv").isHidden(), "luis: transfer button still shown after the transfer");
		check(await luis.locator("#close-conv").isHidden(), "luis: close button still shown after the transfer");
		// the customer: transferred, then Maria joined, once each
		await waitText(custB, "custB", "transferred");
		await waitText(custB, "custB", `${A2.name} joined`);
		await agentReply(maria, "maria", M1);
		const custExpect = [`${A1.name} joined`, B1, XSS_CUST_MSG, XSS_AGENT_MSG,
			"transferred", `${A2.name} joined`, M1];
		await transcriptOnce(custB, "custB", custExpect);
		check(!(await custB.locator("#messages").textContent()).includes("nota"),
		      "custB: the transfer note (meant for the agent) is shown to the customer");
		check(/connected/.test(await custB.locator("#status").textContent()),
		      `custB: status after the new agent joined: ${await custB.locator("#status").textContent()}`);

		// ---- reloads: nothing twice, nothing lost ----------------------------------
		await custB.reload();
		await custB.locator("#text").waitFor({ state: "visible" });
		await transcriptOnce(custB, "custB (after reload)", custExpect);
		await customerSend(custB, "custB", B2);
		await maria.reload();
		await maria.locator("#presence").waitFor({ state: "visible" });
		await maria.locator("#conv-list li").filter({ hasText: B_NAME }).click();
		await transcriptOnce(maria, "maria (after reload)", [B1, XSS_CUST_MSG, XSS_AGENT_MSG, M1, B2]);
		await luis.reload();
		await luis.locator("#presence").waitFor({ state: "visible" });
		await luis.locator("#conv-list li").filter({ hasText: B_NAME }).click();
		await transcriptOnce(luis, "luis (after reload)", [B1, XSS_CUST_MSG, XSS_AGENT_MSG]);
		check(await luis.locator("#compose").isHidden(),
		      "luis: after a reload the transferred conversation is writable again");
		check((await luis.locator("#messages").textContent()).indexOf(B2) < 0,
		      "luis: sees a message sent after he transferred the conversation away");
		for (const [p, who] of [[luis, "luis"], [maria, "maria"], [custB, "custB"], [custZ, "custZ"]])
			await noInjectedMarkup(p, who);

		// ---- C: maria closes Bea; survey ------------------------------------------
		await maria.locator("#conv-list li").filter({ hasText: B_NAME }).click();
		await maria.locator("#close-conv").click();
		await maria.locator("#disposition").selectOption("resolved");
		await maria.locator("#close-confirm").click();
		await maria.locator("#close-conv").waitFor({ state: "hidden" });
		await waitFor(maria, "maria", (n) => Array.from(document.querySelectorAll("#conv-list li"))
			.some((li) => li.textContent.includes(n) && li.classList.contains("closed")), B_NAME,
			"Bea's entry not shown closed");
		check(await maria.locator("#compose").isHidden(), "maria: compose still shown after the close");
		await custB.locator("#ended").waitFor({ state: "visible" });
		await custB.locator("#survey").waitFor({ state: "visible" });
		check(/closed/.test(await custB.locator("#status").textContent()), "custB: status not 'closed'");
		await custB.locator("#rate-4").click();
		await custB.locator("#rate-comment").fill(`<img src=x onerror="console.log('XSS-FIRED survey')">`);
		await custB.locator("#rate-send").click();
		try {
			await custB.locator("#survey-thanks").waitFor({ state: "visible" });
			log("custB: survey answered, thanks shown");
		} catch (e) {
			check(false, "custB: no thanks after the survey: " +
			      JSON.stringify(await custB.locator("#survey-error").textContent()));
		}
		await shot(custB, "pages-custB-closed");
		// A reload after the end: no stale conversation, the start form.
		await custB.reload();
		await custB.locator("#start").waitFor({ state: "visible" });

		// ---- L: a reply that never reached the server must not look delivered after a reload
		await zPage.locator("#conv-list li").filter({ hasText: "Zoe" }).click();
		await zPage.evaluate(() => {
			const orig = WebSocket.prototype.send;
			window.__omrRestoreSend = () => { WebSocket.prototype.send = orig; };
			WebSocket.prototype.send = function (data) {
				if (/"type":"message"/.test(data))
					return; /* lost on the way */
				return orig.call(this, data);
			};
		});
		await zPage.locator("#text").fill(LOST);
		await zPage.locator("#compose [type=submit]").click();
		await waitText(zPage, zHolder, LOST);
		await zPage.evaluate(() => window.__omrRestoreSend());
		await customerSend(custZ, "custZ", Z2);   /* the desktop saves its state on this */
		await waitText(zPage, zHolder, Z2);
		const before = await zPage.$$eval("#messages li", (lis) => lis.filter((li) =>
			li.textContent.includes("nunca salió")).map((li) => li.className));
		await zPage.reload();
		await zPage.locator("#presence").waitFor({ state: "visible" });
		await zPage.locator("#conv-list li").filter({ hasText: "Zoe" }).click();
		await waitText(zPage, zHolder, Z2);
		await zPage.waitForTimeout(1500);
		const after = await zPage.$$eval("#messages li", (lis) => lis.filter((li) =>
			li.textContent.includes("nunca salió")).map((li) => li.className));
		const custSaw = (await custZ.locator("#messages").textContent()).includes(LOST);
		log(`${zHolder}: unacknowledged reply classes before reload ${JSON.stringify(before)}, ` +
		    `after ${JSON.stringify(after)}; customer saw it: ${custSaw}`);
		check(custSaw || !after.some((c) => /\backed\b/.test(c)),
		      `${zHolder}: a reply the server never acknowledged (the customer never got it) is ` +
		      `shown as delivered ("acked") after a reload, and is not sent again ` +
		      `(classes before reload ${JSON.stringify(before)}, after ${JSON.stringify(after)})`);

		// ---- R: Zoe's agent goes away; the customer is requeued -------------------
		// A third agent takes her: luis let her first offer time out, so he is not asked again.
		const other = "pablo";
		await login(pages.pablo, "pablo", A3);
		await setAvailable(pages[other], other);
		log(`${zHolder}: the desktop that holds Zoe goes away (the tab leaves the page)`);
		await zPage.goto("about:blank");
		await waitText(custZ, "custZ", "finding you another one", "#messages li", 30000);
		log("custZ: requeued");
		let took = false;
		for (let i = 0; i < 60 && !took; i++) {
			const c = offerCard(pages[other], "Zoe");
			if (await c.count()) {
				await c.locator("button.accept").click();
				took = true;
			} else {
				await pages[other].waitForTimeout(500);
			}
		}
		check(took, `${other}: Zoe (requeued) was never offered`);
		if (took) {
			const nm = A3.name;
			await waitFor(custZ, "custZ", (n) => Array.from(document.querySelectorAll("#messages li"))
				.filter((li) => li.textContent.includes(n + " joined")).length >= 1, nm,
				"the new agent's join not shown");
			await pages[other].locator("#conv-list li").filter({ hasText: "Zoe" }).click();
			await transcriptOnce(pages[other], other, [Z1, Z2]);
		}
		await transcriptOnce(custZ, "custZ", [Z1, Z2, "finding you another one"]);
		await custZ.waitForTimeout(SETTLE_MS);

		// The desktop that went away comes back (same tab: it logs in from sessionStorage):
		// Zoe is no longer its conversation and shows as taken back, with no composer.
		await zPage.goto(AGENT_URL);
		await zPage.locator("#presence").waitFor({ state: "visible", timeout: WAIT_MS });
		const zEntry = zPage.locator("#conv-list li").filter({ hasText: "Zoe" });
		await zEntry.first().waitFor({ state: "visible", timeout: WAIT_MS });
		await zEntry.first().click();
		await waitText(zPage, zHolder, "Taken back");
		check(await zPage.locator("#compose").isHidden(),
		      `${zHolder}: Zoe's conversation, taken back, still has the composer`);
		await shot(zPage, "pages-taken-back");
	} catch (e) {
		problems.push(`ABORTED: ${e instanceof Failure ? e.message : e && e.stack ? e.stack : e}`);
		for (const [who, p] of Object.entries(pages)) {
			try {
				console.error(`${who} transcript:\n  ${(await lines(p)).join("\n  ")}`);
				await shot(p, `pages-${who}-failure`);
			} catch (e2) { /* closed */ }
		}
	} finally {
		await browser.close();
	}
	if (xss.length)
		problems.push(`script ran from injected markup:\n  ${xss.join("\n  ")}`);
	if (pageErrors.length)
		problems.push(`errors in the pages:\n  ${pageErrors.join("\n  ")}`);
	console.log("screenshots:\n  " + shots.join("\n  "));
	if (problems.length) {
		console.error(`FAILED (${problems.length}):\n- ${problems.join("\n- ")}`);
		return 1;
	}
	log("PASS");
	return 0;
}

main().then((rc) => process.exit(rc), (e) => { console.error(e); process.exit(1); });
